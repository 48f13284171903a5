package app

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// wecomJoin plays a member adding guide li through store sh-1's QR code:
// the signed and encrypted add_external_contact callback, as WeCom sends
// it. It returns the welcome code WeCom issued.
func (j *journey) wecomJoin(externalID, name, phone string) string {
	j.t.Helper()
	j.wecom.AddContact(wecomfake.Contact{ExternalUserID: externalID, Name: name, UnionID: "union-" + externalID,
		FollowUsers: []wecom.FollowUser{{UserID: "li", State: "s:sh-1", RemarkMobiles: []string{phone}}}})
	code := j.wecom.IssueWelcomeCode(externalID)
	ev := wecomfake.AddExternalContact("li", externalID, "s:sh-1", code)
	ev.CreateTime = time.Now().Truncate(time.Second)
	if status, body := deliver(j.t, j.s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 || body != "success" {
		j.t.Fatalf("add_external_contact callback: %d %q", status, body)
	}
	return code
}

// waitCount waits (up to 20 s) for n of something and reports, without
// stopping the journey, when they do not come.
func waitCount(t *testing.T, what string, n int, count func() int) bool {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for count() < n {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for %s: %d of %d", what, count(), n)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// attachmentsJSON is a message task's attachments as WeCom received them.
func attachmentsJSON(atts []wecomfake.Attachment) []byte {
	if atts == nil {
		atts = []wecomfake.Attachment{}
	}
	b, _ := json.Marshal(atts)
	return b
}

// TestJourneyNewMemberWelcomeWeCom: a member adds guide 李娜 through the
// store's QR code (add_external_contact) and is welcomed at once with the
// welcome template (send_welcome_msg, text); new-member-welcome gives the
// guide a task (an app message); three virtual days later the member,
// who has not bought, gets the first_purchase_coupon through the guide
// (add_msg_template with a link attachment); 27 days after that the
// recall (add_msg_template, text); then the run ends. Every message once;
// the stats agree with what WeCom got.
func TestJourneyNewMemberWelcomeWeCom(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai) // a Tuesday, outside quiet hours
	j := startJourney(t, journeyChannels{wecom: true}, start)
	fake := j.wecom
	j.enableShipped("new-member-welcome")

	code := j.wecomJoin("wmChen", "陈女士", "138 0013 8000")
	waitFor(t, "the welcome", func() bool { return len(fake.Welcomes()) > 0 })
	w := fake.Welcomes()[0]
	wantWelcome := "陈女士好！我是山茶花静安店的导购李娜，很高兴认识您。\n" +
		"门店地址：上海市静安区南京西路1601号\n" +
		"营业时间：10:00-22:00\n" +
		"新品、尺码、售后，随时在这里找我。"
	if w.WelcomeCode != code || w.ExternalUserID != "wmChen" || w.Text != wantWelcome || len(w.Attachments) != 0 {
		t.Errorf("welcome = code %s to %s: %q with %s\nwant code %s to wmChen: %q", w.WelcomeCode, w.ExternalUserID, w.Text,
			attachmentsJSON(w.Attachments), code, wantWelcome)
	}
	m := j.memberByPhone("13800138000")

	// The run starts from member.joined: the guide's task goes out as a
	// WeCom app message, and the run waits three days.
	run := j.waitRun("new-member-welcome", m.ID, "wait_3d")
	if want := start.Add(3 * 24 * time.Hour); run.WakeAt.Before(want) || run.WakeAt.After(want.Add(time.Minute)) {
		t.Errorf("wait_3d wakes at %s, want %s", run.WakeAt.In(shanghai), want)
	}
	if waitCount(t, "the guide's task (app message)", 1, func() int { return len(fake.AppMessages()) }) {
		a := fake.AppMessages()[0]
		hello := j.guideTask("新会员 陈女士（尾号8000）：打个招呼，邀请到店体验")
		if hello.Note != "会员等级 ，绑定门店 静安店" {
			t.Errorf("hello task note = %q", hello.Note)
		}
		if due := start.Add(24 * time.Hour); hello.DueAt.Before(due) || hello.DueAt.After(due.Add(time.Minute)) {
			t.Errorf("hello task due %s, want a day after joining (%s)", hello.DueAt.In(shanghai), due)
		}
		wantTask := taskText(hello)
		if !slices.Equal(a.ToUser, []string{"li"}) || a.MsgType != "text" || a.Content != wantTask {
			t.Errorf("guide task = %s to %v: %q\nwant text to [li]: %q", a.MsgType, a.ToUser, a.Content, wantTask)
		}
	}
	if n := len(fake.MsgTemplates()); n != 0 {
		t.Fatalf("%d message tasks before the three days are up", n)
	}

	// Three days on: the first-purchase coupon, through the guide.
	j.advance(3*24*time.Hour, "the coupon step done", j.runIs("new-member-welcome", m.ID, runAtOrEnded("wait_27d")))
	c := j.coupon(m.ID, "NEW-MEMBER-50")
	if waitCount(t, "the coupon message task", 1, func() int { return len(fake.MsgTemplates()) }) {
		mt := fake.MsgTemplates()[0]
		wantLink := fmt.Sprintf(`[{"msgtype":"link","link":{
		  "title":"山茶花新人专享：¥50优惠券",
		  "picurl":"https://shop.example.com/static/coupon-new-member.png",
		  "desc":"李娜为您申请的新人券，%s前有效，门店和商城通用。",
		  "url":"https://shop.example.com/coupons/%s"}}]`, cnDate(c.ExpiresAt), c.Code)
		if mt.ChatType != "single" || mt.Sender != "li" || !slices.Equal(mt.ExternalUserIDs, []string{"wmChen"}) || mt.Text != "" {
			t.Errorf("coupon task = %s from %q to %v with text %q, want single from li to [wmChen] without text",
				mt.ChatType, mt.Sender, mt.ExternalUserIDs, mt.Text)
		}
		jsonEq(t, "coupon attachments", attachmentsJSON(mt.Attachments), wantLink)
	}
	if want := start.Add(33 * 24 * time.Hour); c.ExpiresAt.Before(want) || c.ExpiresAt.After(want.Add(time.Minute)) {
		t.Errorf("coupon %s expires %s, want 30 days after it was issued (%s)", c.Code, c.ExpiresAt, want)
	}
	// On WeCom a member is reached through their guide even when the step
	// does not say via: guide: the coupon goes out when the guide sends
	// the message task, so they get a task to confirm it (an app message).
	couponConfirm := j.guideTask("确认发送「first_purchase_coupon」给 陈女士")
	if couponConfirm.Note != "山茶花新人专享：¥50优惠券" {
		t.Errorf("coupon confirmation task note = %q, want the card's title", couponConfirm.Note)
	}
	if waitCount(t, "the coupon's confirmation task (app message)", 2, func() int { return len(fake.AppMessages()) }) {
		a := fake.AppMessages()[1]
		if !slices.Equal(a.ToUser, []string{"li"}) || a.MsgType != "text" || a.Content != taskText(couponConfirm) {
			t.Errorf("coupon confirmation task = %s to %v: %q\nwant text to [li]: %q", a.MsgType, a.ToUser, a.Content, taskText(couponConfirm))
		}
	}

	// 27 days more: the recall, through the guide, and the run ends.
	j.waitRun("new-member-welcome", m.ID, "wait_27d")
	j.advance(27*24*time.Hour, "the run done", j.runIs("new-member-welcome", m.ID, runEnded))
	j.wantRun("new-member-welcome", m.ID, store.RunDone, "no purchase in the first month")
	wantRecall := "陈女士好，我是静安店的李娜。店里这周到了不少新款，想着您可能会喜欢，\n" +
		"有空来静安店坐坐，我帮您挑几件试试？（营业时间 10:00-22:00）"
	recall := func() []wecomfake.MsgTemplateRequest {
		var out []wecomfake.MsgTemplateRequest
		for _, mt := range fake.MsgTemplates() {
			if mt.Text != "" {
				out = append(out, mt)
			}
		}
		return out
	}
	if waitCount(t, "the recall message task", 1, func() int { return len(recall()) }) {
		mt := recall()[0]
		if mt.Sender != "li" || !slices.Equal(mt.ExternalUserIDs, []string{"wmChen"}) || mt.Text != wantRecall || len(mt.Attachments) != 0 {
			t.Errorf("recall task = from %q to %v: %q with %s\nwant from li to [wmChen]: %q", mt.Sender, mt.ExternalUserIDs, mt.Text,
				attachmentsJSON(mt.Attachments), wantRecall)
		}
	}

	// The recall went through the guide: they get a task to confirm it
	// (an app message); the guide sends both message tasks in WeCom, and
	// the gateway sees them delivered, which closes the task.
	confirm := j.guideTask("确认发送「recall」给 陈女士")
	if confirm.Note != wantRecall {
		t.Errorf("confirmation task note = %q, want the recall", confirm.Note)
	}
	if waitCount(t, "the confirmation task (app message)", 3, func() int { return len(fake.AppMessages()) }) {
		a := fake.AppMessages()[2]
		if !slices.Equal(a.ToUser, []string{"li"}) || a.MsgType != "text" || a.Content != taskText(confirm) {
			t.Errorf("confirmation task = %s to %v: %q\nwant text to [li]: %q", a.MsgType, a.ToUser, a.Content, taskText(confirm))
		}
	}
	j.confirmAll()
	var st engine.Stats
	var body string
	waitFor(t, "both message tasks delivered", func() bool {
		st, body = j.stats("new-member-welcome")
		return st.Sends.Delivered == 2
	})
	for _, title := range []string{"确认发送「first_purchase_coupon」给 陈女士", "确认发送「recall」给 陈女士"} {
		if tk := j.guideTask(title); tk.State != store.GuideTaskDone {
			t.Errorf("task %q is %s after the member got the message, want done", title, tk.State)
		}
	}

	// Exactly one of each, and the stats say what WeCom got.
	j.settle()
	if n, a, mt := len(fake.Welcomes()), len(fake.AppMessages()), len(fake.MsgTemplates()); n != 1 || a != 3 || mt != 2 {
		t.Errorf("WeCom got %d welcomes, %d app messages, %d message tasks; want 1, 3 (hello, two confirmations), 2", n, a, mt)
	}
	st, body = j.stats("new-member-welcome")
	if st.Entered != 1 || st.Done != 1 || st.Active != 0 || st.Failed != 0 {
		t.Errorf("stats = %s\nwant entered 1, done 1", body)
	}
	checkSends(t, st, body, map[string]int64{"coupon": 1, "recall": 1}, int64(len(fake.MsgTemplates())))
	for _, id := range []string{"assign", "say_hello", "wait_3d", "not_bought_yet", "coupon", "wait_27d", "recall", "done"} {
		if sc := step(t, st, id); sc.Reached != 1 || sc.Skipped != 0 || sc.Failed != 0 {
			t.Errorf("step %s = %+v, want reached 1, none skipped or failed", id, sc)
		}
	}
}

// TestJourneyNewMemberWelcomeDingTalk: a member of the brand's DingTalk
// organisation signs up (the CRM's signed CloudEvent, home store sh-1):
// they join the brand (member.joined, docs/workflows.md) and
// new-member-welcome runs for them: the guide's task as a robot message,
// three virtual days later first_purchase_coupon as a robot
// sampleActionCard to the member's userId, 27 days after that the recall
// as sampleMarkdown; then the run ends. One message per step; the stats
// agree.
func TestJourneyNewMemberWelcomeDingTalk(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai)
	j := startJourney(t, journeyChannels{dingtalk: true}, start)
	j.enableShipped("new-member-welcome")
	j.dingTalkSignUp()
	var m *store.MemberView
	waitFor(t, "the member signed up and bound", func() bool {
		v, err := j.s.app.Store.MemberByPhone(t.Context(), "13900139000", journeyBrand)
		m = v
		return err == nil && len(v.Bindings) == 1
	})
	if m.Bindings[0].GuideID != "g-li" {
		t.Fatalf("member bound to %+v, want g-li", m.Bindings)
	}
	var joined []store.Event
	deadline := time.Now().Add(10 * time.Second)
	for len(joined) == 0 && time.Now().Before(deadline) {
		joined, _ = j.s.app.Store.Events(t.Context(), store.EventFilter{MemberID: m.ID, Type: "member.joined"})
		time.Sleep(100 * time.Millisecond)
	}
	if len(joined) != 1 {
		evs, _ := j.s.app.Store.Events(t.Context(), store.EventFilter{MemberID: m.ID})
		var types []string
		for _, e := range evs {
			types = append(types, e.Type)
		}
		t.Fatalf("the DingTalk member's sign-up logged %d member.joined (events: %v), want 1: new-member-welcome cannot start", len(joined), types)
	}
	j.waitRun("new-member-welcome", m.ID, "wait_3d")
	if waitCount(t, "the guide's task (robot message)", 1, func() int { return len(j.robotSent("staff-li")) }) {
		hello := j.guideTask("新会员 周先生（尾号9000）：打个招呼，邀请到店体验")
		if hello.Note != "会员等级 ，绑定门店 静安店" {
			t.Errorf("hello task note = %q", hello.Note)
		}
		b, _ := json.Marshal(map[string]string{"content": taskText(hello)})
		j.checkRobot("guide task", j.robotSent("staff-li")[0], "staff-li", "sampleText", string(b))
	}

	j.advance(3*24*time.Hour, "the coupon step done", j.runIs("new-member-welcome", m.ID, runAtOrEnded("wait_27d")))
	c := j.coupon(m.ID, "NEW-MEMBER-50")
	if waitCount(t, "the coupon robot message", 1, func() int { return len(j.robotSent("zhou-uid")) }) {
		j.checkRobot("coupon", j.robotSent("zhou-uid")[0], "zhou-uid", "sampleActionCard", fmt.Sprintf(`{
		  "title":"山茶花新人专享：¥50优惠券",
		  "text":"### ¥50 新人专享券\n周先生好，李娜为您申请了一张新人券，%s前有效。\n券码：**%s**",
		  "singleTitle":"立即使用",
		  "singleURL":"https://shop.example.com/coupons/%s"}`, cnDate(c.ExpiresAt), c.Code, c.Code))
	}

	j.waitRun("new-member-welcome", m.ID, "wait_27d")
	j.advance(27*24*time.Hour, "the run done", j.runIs("new-member-welcome", m.ID, runEnded))
	if waitCount(t, "the recall robot message", 2, func() int { return len(j.robotSent("zhou-uid")) }) {
		j.checkRobot("recall", j.robotSent("zhou-uid")[1], "zhou-uid", "sampleMarkdown", `{
		  "title":"李娜：店里上新了",
		  "text":"周先生好，我是静安店的 **李娜**。\n店里这周到了不少新款，有空来 **静安店** 坐坐，我帮您挑几件试试？\n> 地址：上海市静安区南京西路1601号　营业时间：10:00-22:00"}`)
	}
	j.settle()
	j.wantRun("new-member-welcome", m.ID, store.RunDone, "")
	// The robot sent the recall itself: the guide has nothing to
	// confirm, and gets only the hello task.
	if n, g, all := len(j.robotSent("zhou-uid")), len(j.robotSent("staff-li")), len(j.openapi.Sent()); n != 2 || g != 1 || all != 3 {
		var guide []string
		for _, m := range j.robotSent("staff-li") {
			guide = append(guide, m.MsgParam)
		}
		t.Errorf("robot sent %d to the member, %d to the guide (%q), %d in all; want 2, 1, 3", n, g, guide, all)
	}
	st, body := j.stats("new-member-welcome")
	if st.Entered != 1 || st.Done != 1 || st.Active != 0 || st.Failed != 0 {
		t.Errorf("stats = %s\nwant entered 1, done 1", body)
	}
	checkSends(t, st, body, map[string]int64{"coupon": 1, "recall": 1}, 0)
	for _, id := range []string{"assign", "say_hello", "wait_3d", "not_bought_yet", "coupon", "wait_27d", "recall", "done"} {
		if sc := step(t, st, id); sc.Reached != 1 || sc.Skipped != 0 || sc.Failed != 0 {
			t.Errorf("step %s = %+v, want reached 1, none skipped or failed", id, sc)
		}
	}
}

// TestJourneyNewMemberQuietHoursWeCom: a member who joins at 22:00 is
// welcomed at once (the welcome is the channel's, not held), but their
// coupon, due three days later at 22:00, inside the quiet hours
// (21:00-09:00), waits for the morning: nothing at night, the message
// task right after 09:00.
func TestJourneyNewMemberQuietHoursWeCom(t *testing.T) {
	start := time.Date(2027, 1, 5, 22, 0, 0, 0, shanghai)
	j := startJourney(t, journeyChannels{wecom: true}, start)
	fake := j.wecom
	j.enableShipped("new-member-welcome")
	m := j.welcomed("wmChen", "陈女士", "138 0013 8000")
	j.waitRun("new-member-welcome", m.ID, "wait_3d")

	j.advance(3*24*time.Hour, "the coupon held until the morning", func() bool {
		rs := j.runs("new-member-welcome", m.ID)
		return len(rs) == 1 && rs[0].Step == "coupon" && rs[0].WakeAt != nil && rs[0].WakeAt.After(j.clock.Now())
	})
	held := *j.runs("new-member-welcome", m.ID)[0].WakeAt
	morning := time.Date(2027, 1, 9, 9, 0, 0, 0, shanghai)
	if held.Before(morning) || held.After(morning.Add(5*time.Minute)) {
		t.Errorf("the coupon is held until %s, want 09:00 to 09:05 (the spread) on Jan 9", held.In(shanghai))
	}
	j.settle()
	if n := len(fake.MsgTemplates()); n != 0 {
		t.Fatalf("%d message tasks during the quiet hours", n)
	}
	j.advance(held.Sub(j.clock.Now())+time.Second, "the coupon sent in the morning", j.runIs("new-member-welcome", m.ID, runAt("wait_27d")))
	if waitCount(t, "the coupon message task", 1, func() int { return len(fake.MsgTemplates()) }) {
		mt := fake.MsgTemplates()[0]
		if mt.Sender != "li" || !slices.Equal(mt.ExternalUserIDs, []string{"wmChen"}) || len(mt.Attachments) != 1 || mt.Attachments[0].MsgType != "link" {
			t.Errorf("coupon task = from %q to %v with %s, want a link from li to [wmChen]", mt.Sender, mt.ExternalUserIDs, attachmentsJSON(mt.Attachments))
		}
	}
	for _, s := range j.steps(j.runs("new-member-welcome", m.ID)[0].ID) {
		if s.StepID == "coupon" && (s.FinishedAt == nil || s.FinishedAt.Before(held)) {
			t.Errorf("coupon step finished at %v, want after %s", s.FinishedAt, held.In(shanghai))
		}
	}
	j.settle()
	if n := len(fake.MsgTemplates()); n != 1 {
		t.Errorf("%d message tasks, want 1", n)
	}
}

// TestJourneyNewMemberConvertsWeCom: a member who buys the day after
// joining (a signed CloudEvent) converts the run: no coupon, no recall.
func TestJourneyNewMemberConvertsWeCom(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai)
	j := startJourney(t, journeyChannels{wecom: true}, start)
	fake := j.wecom
	j.enableShipped("new-member-welcome")
	m := j.welcomed("wmChen", "陈女士", "138 0013 8000")
	j.waitRun("new-member-welcome", m.ID, "wait_3d")
	j.advance(24*time.Hour, "a day on", func() bool { return true })
	j.event("p-6001", purchase("p-6001", "13800138000", "SO-6001", j.clock.Now()))
	j.sweepUntil("the run converted", j.runIs("new-member-welcome", m.ID, runIn(store.RunConverted)))
	j.advance(30*24*time.Hour, "a month on", func() bool { return true })
	j.settle()
	if n, a := len(fake.MsgTemplates()), len(fake.AppMessages()); n != 0 || a != 1 {
		t.Errorf("WeCom got %d message tasks and %d app messages, want none and the hello task", n, a)
	}
	st, body := j.stats("new-member-welcome")
	if st.Entered != 1 || st.Converted != 1 || st.Active != 0 || st.Sent != 0 || st.Sends.Sent != 0 || st.Sends.Failed != 0 {
		t.Errorf("stats = %s\nwant entered 1, converted 1, nothing sent", body)
	}
	if sc := step(t, st, "coupon"); sc.Reached != 0 {
		t.Errorf("coupon step = %+v, want never reached", sc)
	}
}
