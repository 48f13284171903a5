package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// yunInStore is the docs' yun-in-store (docs/workflows.md, "Cross-brand
// offers") with a second offer a week later, to show that an offer due
// after the member declined is not sent.
const yunInStore = `name: yun-in-store
trigger:
  schedule: every monday at 11:00
  time_zone: Asia/Shanghai
  segment:
    last_purchase_between: [1d, 180d]
entry:
  brand: yun
  cross_brand_from: [camellia]
goal: purchase.completed
send_rules:
  caps: {per_week: 1}
steps:
  - id: offer
    send: cross_brand_offer
    via: guide
  - id: wait_7d
    wait: 7d
  - id: offer_again
    send: cross_brand_offer
    via: guide
`

// TestJourneyCrossBrandOfferWeCom: store sh-1 carries camellia and yun
// (云裳). Two camellia WeCom members of guide 李娜 bought ten days ago;
// 陈女士 accepts yun's offers on WeCom customer service ("接收云裳优惠"),
// 赵女士 does not. yun's yun-in-store runs every Monday at 11:00: only
// 陈女士 is entered, through camellia, and gets cross_brand_offer from li
// as a message task (the guide gets a task to confirm it). She then
// declines ("不接收其他品牌优惠"): the offer due a week later is skipped
// for that reason and nothing more goes out.
func TestJourneyCrossBrandOfferWeCom(t *testing.T) {
	start := time.Date(2027, 1, 4, 10, 40, 0, 0, shanghai) // a Monday, twenty minutes before the schedule
	j := startJourney(t, journeyChannels{wecom: true}, start)
	fake := j.wecom
	ctx := context.Background()

	// yun, and the store carrying both brands.
	if code, body := request(t, "POST", j.s.base+"/api/v1/brands", j.tok, `{"id":"yun","name":"云裳"}`); code != 201 {
		t.Fatalf("brand yun: %d %s", code, body)
	}
	if code, body := request(t, "PUT", j.s.base+"/api/v1/stores/sh-1", j.tok, `{"id":"sh-1","name":"静安店","brands":["camellia","yun"],
	  "lat":31.23,"lng":121.47,"time_zone":"Asia/Shanghai","address":"上海市静安区南京西路1601号","opening_hours":"10:00-22:00"}`); code != 200 {
		t.Fatalf("store sh-1 carrying yun: %d %s", code, body)
	}
	req, _ := http.NewRequest("PUT", j.s.base+"/api/v1/workflows/yun-in-store?brand=yun", strings.NewReader(yunInStore))
	req.Header.Set("Authorization", "Bearer "+j.tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("PUT yun-in-store: %d %s", resp.StatusCode, b)
	}
	if code, body := request(t, "POST", j.s.base+"/api/v1/workflows/yun-in-store/enable?brand=yun", j.tok, ""); code != 200 {
		t.Fatalf("enable yun-in-store: %d %s", code, body)
	}

	// Two camellia members of li who bought ten days ago. kfSay speaks
	// as wmKF: 陈女士.
	type member struct {
		ext, name, phone string
		id               int64
	}
	chen := &member{ext: "wmKF", name: "陈女士", phone: "13800138000"}
	zhao := &member{ext: "wmZhao", name: "赵女士", phone: "13800138001"}
	for i, m := range []*member{chen, zhao} {
		j.wecomJoin(m.ext, m.name, m.phone)
		waitFor(t, "the welcome of "+m.name, func() bool { return len(fake.Welcomes()) > i })
		j.event("p-"+m.ext, purchase("p-"+m.ext, m.phone, "SO-"+m.ext, start.Add(-10*24*time.Hour)))
		waitFor(t, "the purchase of "+m.name, func() bool {
			v, err := j.s.app.Store.MemberByPhone(ctx, m.phone, journeyBrand)
			if err != nil {
				return false
			}
			m.id = v.ID
			p, err := j.s.app.Store.MemberProfile(ctx, journeyBrand, v.ID)
			return err == nil && len(p.Purchases) == 1
		})
	}
	kfSay(t, j.s, fake, "接收云裳优惠")
	waitKF(t, fake, 1, "好的，之后您的专属导购 李娜 也可以为您推荐云裳的优惠。")
	allowed := func(m *member) bool {
		t.Helper()
		ok, _, err := j.s.app.Store.CrossBrandAllowed(ctx, m.id, journeyBrand, "yun", "wecom")
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !allowed(chen) || allowed(zhao) {
		t.Fatalf("yun allowed: 陈女士 %v, 赵女士 %v; want true, false", allowed(chen), allowed(zhao))
	}
	j.settle()
	if n := len(fake.MsgTemplates()); n != 0 {
		t.Fatalf("%d message tasks before the schedule", n)
	}

	// Monday 11:00: the schedule fires; 陈女士 alone is entered, through
	// camellia, and her offer goes out.
	j.advance(20*time.Minute+30*time.Second, "陈女士's run waiting a week", func() bool {
		rs := j.yunRuns(chen.id)
		return len(rs) == 1 && rs[0].Step == "wait_7d"
	})
	if rs := j.yunRuns(chen.id); rs[0].ViaBrandID != journeyBrand {
		t.Errorf("陈女士's run goes through %q, want camellia", rs[0].ViaBrandID)
	}
	wantText := "陈女士好，我是静安店的李娜。我们店里也有云裳，这周到了新品，想着您可能会喜欢，有空来店里我帮您介绍。\n" +
		"不想再收到其他品牌的推荐，回复“不接收云裳优惠”即可。"
	if waitCount(t, "the offer's message task", 1, func() int { return len(fake.MsgTemplates()) }) {
		mt := fake.MsgTemplates()[0]
		if mt.ChatType != "single" || mt.Sender != "li" || !slices.Equal(mt.ExternalUserIDs, []string{chen.ext}) || len(mt.Attachments) != 0 {
			t.Errorf("offer task = %s from %q to %v with %s, want single from li to [%s] without attachments",
				mt.ChatType, mt.Sender, mt.ExternalUserIDs, attachmentsJSON(mt.Attachments), chen.ext)
		}
		if mt.Text != wantText {
			t.Errorf("offer text =\n  %q\nwant\n  %q", mt.Text, wantText)
		}
	}
	tk := j.guideTask("确认发送「cross_brand_offer」给 陈女士")
	if tk.MemberID != chen.id || tk.BrandID != "yun" || tk.Note != wantText {
		t.Errorf("confirmation task for member %d of brand %q, note %q; want %d of yun, the offer's text", tk.MemberID, tk.BrandID, tk.Note, chen.id)
	}
	if waitCount(t, "the confirmation task (app message)", 1, func() int { return len(fake.AppMessages()) }) {
		a := fake.AppMessages()[0]
		if !slices.Equal(a.ToUser, []string{"li"}) || a.MsgType != "text" || a.Content != taskText(tk) {
			t.Errorf("app message %s to %v: %q, want text to [li]: %q", a.MsgType, a.ToUser, a.Content, taskText(tk))
		}
	}
	if rs := j.yunRuns(zhao.id); len(rs) != 0 {
		t.Errorf("赵女士, who did not accept yun's offers, entered: %+v", rs)
	}
	j.confirmAll()
	var st engine.Stats
	var body string
	waitFor(t, "the offer delivered", func() bool {
		st, body = j.yunStats()
		return st.Sends.Delivered == 1
	})
	j.settle()
	st, body = j.yunStats()
	if st.Entered != 1 || st.Active != 1 || st.Failed != 0 {
		t.Errorf("stats = %s\nwant entered 1, active 1", body)
	}
	checkSends(t, st, body, map[string]int64{"offer": int64(len(fake.MsgTemplates()))}, 1)

	// She declines; a week later the second offer is skipped, and the
	// schedule firing again enters nobody.
	kfSay(t, j.s, fake, "不接收其他品牌优惠")
	waitKF(t, fake, 2, "好的，您将不会再通过导购收到其他品牌的优惠。山茶花自己的消息不受影响。")
	if allowed(chen) {
		t.Fatal("yun still allowed after 陈女士 declined")
	}
	j.advance(7*24*time.Hour, "陈女士's run done", func() bool {
		rs := j.yunRuns(chen.id)
		return len(rs) == 1 && rs[0].State != store.RunActive
	})
	j.settle()
	rs := j.yunRuns(chen.id)
	if len(rs) != 1 || rs[0].State != store.RunDone {
		t.Fatalf("陈女士's runs = %+v, want one done", rs)
	}
	steps := j.steps(rs[0].ID)
	i := slices.IndexFunc(steps, func(s store.RunStep) bool { return s.StepID == "offer_again" })
	if i < 0 {
		t.Fatalf("no offer_again among the run's steps %+v", steps)
	}
	if s := steps[i]; s.State != store.StepSkipped || s.Reason != "cross_brand" || s.OutboxKey != "" ||
		!strings.Contains(s.Outcome, "cross-brand offer through camellia not allowed (member has not accepted the offering brand's offers)") {
		b, _ := json.Marshal(s)
		t.Errorf("offer_again = %s, want skipped (cross_brand): member has not accepted the offering brand's offers", b)
	}
	if rs := j.yunRuns(zhao.id); len(rs) != 0 {
		t.Errorf("赵女士 entered on the second Monday: %+v", rs)
	}
	if mt, a, kf := len(fake.MsgTemplates()), len(fake.AppMessages()), len(fake.KFSent()); mt != 1 || a != 1 || kf != 2 {
		t.Errorf("WeCom got %d message tasks, %d app messages, %d kf messages; want 1, 1, 2", mt, a, kf)
	}
	st, body = j.yunStats()
	if st.Entered != 1 || st.Done != 1 || st.Active != 0 || st.Failed != 0 {
		t.Errorf("stats = %s\nwant entered 1, done 1", body)
	}
	if sc := step(t, st, "offer_again"); sc.Reached != 1 || sc.Skipped != 1 || sc.SkippedBy["cross_brand"] != 1 {
		t.Errorf("step offer_again = %+v, want reached 1, skipped 1 (cross_brand)", sc)
	}
	if sc := step(t, st, "offer"); sc.Reached != 1 || sc.Done != 1 || sc.Skipped != 0 {
		t.Errorf("step offer = %+v, want reached 1, done 1", sc)
	}
	if s := st.Sends; st.Sent != 1 || s.Sent != 1 || s.Delivered != 1 || s.Failed != 0 || s.Queued != 0 {
		t.Errorf("stats = %s\nwant 1 sent, 1 delivered", body)
	}
}

// yunRuns returns the member's runs of yun-in-store.
func (j *journey) yunRuns(memberID int64) []store.WorkflowRun {
	j.t.Helper()
	rs, err := j.s.app.Store.Runs(context.Background(), store.RunFilter{Brand: "yun", Workflow: "yun-in-store", MemberID: memberID})
	if err != nil {
		j.t.Fatalf("runs of yun-in-store: %v", err)
	}
	return rs
}

// yunStats reads GET /api/v1/workflows/yun-in-store/stats?brand=yun.
func (j *journey) yunStats() (engine.Stats, string) {
	j.t.Helper()
	code, body := request(j.t, "GET", j.s.base+"/api/v1/workflows/yun-in-store/stats?brand=yun", j.tok, "")
	if code != 200 {
		j.t.Fatalf("stats of yun-in-store: %d %s", code, body)
	}
	var st engine.Stats
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		j.t.Fatalf("stats of yun-in-store: %v in %s", err, body)
	}
	return st, body
}
