package app

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// visit is a store.visited CloudEvent at store sh-1.
func visit(id, phone string, at time.Time) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/pos/sh-1","type":"store.visited","brand":"camellia",
	  "time":%q,"data":{"member":{"phone":%q},"store":"sh-1"}}`, id, at.UTC().Format(time.RFC3339), phone)
}

// TestJourneyStoreVisitRecallWeCom: two WeCom members visit the store
// (signed CloudEvents). 王先生 buys the next day: his run converts, with
// no task and no message. 陈女士 visits again the next day (still one
// run) and does not buy: three days after her first visit the guide gets
// the call task (an app message) and she gets store_visit_recall through
// the guide (a message task, text), which the guide is asked to confirm
// and sends. One message per member and step; the stats agree.
func TestJourneyStoreVisitRecallWeCom(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai) // Tuesday; quiet hours are 21:00-10:00
	j := startJourney(t, journeyChannels{wecom: true}, start)
	fake := j.wecom
	j.enableShipped("store-visit-recall")
	j.wecomJoin("wmChen", "陈女士", "138 0013 8000")
	j.wecomJoin("wmWang", "王先生", "138 0013 8002")
	waitFor(t, "two welcomes", func() bool { return len(fake.Welcomes()) == 2 })
	chen, wang := j.memberByPhone("13800138000"), j.memberByPhone("13800138002")

	j.event("v-chen-1", visit("v-chen-1", "13800138000", j.clock.Now()))
	j.event("v-wang-1", visit("v-wang-1", "13800138002", j.clock.Now()))
	j.waitRun("store-visit-recall", chen.ID, "wait_3d")
	j.waitRun("store-visit-recall", wang.ID, "wait_3d")

	// The next day: 王先生 buys, 陈女士 comes back and does not.
	j.advance(24*time.Hour, "a day on", func() bool { return true })
	j.event("p-wang", purchase("p-wang", "13800138002", "SO-5001", j.clock.Now()))
	j.event("v-chen-2", visit("v-chen-2", "13800138000", j.clock.Now()))
	j.sweepUntil("王先生's run converted", j.runIs("store-visit-recall", wang.ID, runIn(store.RunConverted)))
	j.settle()
	if rs := j.runs("store-visit-recall", chen.ID); len(rs) != 1 || rs[0].State != store.RunActive {
		t.Errorf("陈女士's runs after her second visit = %+v, want the first one, still active", rs)
	}

	// Three days after her first visit.
	j.advance(2*24*time.Hour, "陈女士's run done", j.runIs("store-visit-recall", chen.ID, runEnded))
	j.wantRun("store-visit-recall", chen.ID, store.RunDone, "visited, no purchase within 3 days")
	wantNudge := "陈女士好，我是静安店的李娜。前几天您来店里看了看，不知道有没有合心意的？\n" +
		"需要的话我可以帮您留货，或者把尺码、颜色拍给您看。静安店每天 10:00-22:00，随时欢迎再来。"
	if waitCount(t, "the recall message task", 1, func() int { return len(fake.MsgTemplates()) }) {
		mt := fake.MsgTemplates()[0]
		if mt.ChatType != "single" || mt.Sender != "li" || !slices.Equal(mt.ExternalUserIDs, []string{"wmChen"}) || mt.Text != wantNudge || len(mt.Attachments) != 0 {
			t.Errorf("recall task = %s from %q to %v: %q with %s\nwant single from li to [wmChen]: %q", mt.ChatType, mt.Sender, mt.ExternalUserIDs,
				mt.Text, attachmentsJSON(mt.Attachments), wantNudge)
		}
	}
	call := j.guideTask("离店召回：陈女士（尾号8000），3 天前到店未购买，问问有没有看中的款")
	if call.Note != "会员等级 -，0 积分；门店 静安店" || call.MemberID != chen.ID {
		t.Errorf("call task = %+v, want 陈女士's with note %q", call, "会员等级 -，0 积分；门店 静安店")
	}
	confirm := j.guideTask("确认发送「store_visit_recall」给 陈女士")
	if confirm.Note != wantNudge {
		t.Errorf("confirmation task note = %q, want the recall", confirm.Note)
	}
	if waitCount(t, "two tasks (app messages)", 2, func() int { return len(fake.AppMessages()) }) {
		var got []string
		for _, a := range fake.AppMessages() {
			if !slices.Equal(a.ToUser, []string{"li"}) || a.MsgType != "text" {
				t.Errorf("app message %s to %v, want text to [li]", a.MsgType, a.ToUser)
			}
			got = append(got, a.Content)
		}
		want := []string{taskText(call), taskText(confirm)}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("guide's app messages =\n  %q\nwant\n  %q", got, want)
		}
	}
	j.confirmAll()
	var st engine.Stats
	var body string
	waitFor(t, "the message task delivered", func() bool {
		st, body = j.stats("store-visit-recall")
		return st.Sends.Delivered == 1
	})
	if tk := j.guideTask("确认发送「store_visit_recall」给 陈女士"); tk.State != store.GuideTaskDone {
		t.Errorf("confirmation task %s after the member got the recall, want done", tk.State)
	}
	j.settle()
	if w, a, mt := len(fake.Welcomes()), len(fake.AppMessages()), len(fake.MsgTemplates()); w != 2 || a != 2 || mt != 1 {
		t.Errorf("WeCom got %d welcomes, %d app messages, %d message tasks; want 2, 2, 1", w, a, mt)
	}
	st, body = j.stats("store-visit-recall")
	if st.Entered != 2 || st.Done != 1 || st.Converted != 1 || st.Active != 0 || st.Failed != 0 {
		t.Errorf("stats = %s\nwant entered 2, done 1, converted 1", body)
	}
	checkSends(t, st, body, map[string]int64{"nudge": int64(len(fake.MsgTemplates()))}, 1)
	for id, reached := range map[string]int64{"guide": 2, "wait_3d": 2, "call": 1, "nudge": 1, "done": 1} {
		if sc := step(t, st, id); sc.Reached != reached || sc.Skipped != 0 || sc.Failed != 0 {
			t.Errorf("step %s = %+v, want reached %d, none skipped or failed", id, sc, reached)
		}
	}
}

// TestJourneyStoreVisitRecallDingTalk: a member of the brand's DingTalk
// organisation visits the store and does not buy: three days later the
// guide gets the call task as a robot message and the member the
// store_visit_recall as a robot sampleMarkdown; the robot sent it, so the
// guide has nothing to confirm.
func TestJourneyStoreVisitRecallDingTalk(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai)
	j := startJourney(t, journeyChannels{dingtalk: true}, start)
	j.enableShipped("store-visit-recall")
	j.dingTalkSignUp()
	var m *store.MemberView
	waitFor(t, "the member signed up and bound", func() bool {
		v, err := j.s.app.Store.MemberByPhone(t.Context(), "13900139000", journeyBrand)
		m = v
		return err == nil && len(v.Bindings) == 1
	})
	j.event("v-zhou", visit("v-zhou", "13900139000", j.clock.Now()))
	j.waitRun("store-visit-recall", m.ID, "wait_3d")
	j.advance(3*24*time.Hour, "the run done", j.runIs("store-visit-recall", m.ID, runEnded))
	if waitCount(t, "the recall robot message", 1, func() int { return len(j.robotSent("zhou-uid")) }) {
		j.checkRobot("recall", j.robotSent("zhou-uid")[0], "zhou-uid", "sampleMarkdown", `{
		  "title":"李娜：上次到店的那几件",
		  "text":"周先生好，我是静安店的 **李娜**。\n前几天您来店里看了看，不知道有没有合心意的？需要的话我可以帮您 **留货**，或者把尺码、颜色拍给您看。\n> 静安店：上海市静安区南京西路1601号　营业时间：10:00-22:00"}`)
	}
	call := j.guideTask("离店召回：周先生（尾号9000），3 天前到店未购买，问问有没有看中的款")
	if waitCount(t, "the call task (robot message)", 1, func() int { return len(j.robotSent("staff-li")) }) {
		sent := j.robotSent("staff-li")
		i := slices.IndexFunc(sent, func(m dingtalkfake.SentMessage) bool { return strings.Contains(m.MsgParam, "离店召回") })
		if i < 0 {
			t.Fatalf("no call task among the guide's robot messages %+v", sent)
		}
		b, _ := json.Marshal(map[string]string{"content": taskText(call)})
		j.checkRobot("call task", sent[i], "staff-li", "sampleText", string(b))
	}
	j.settle()
	j.wantRun("store-visit-recall", m.ID, store.RunDone, "")
	if n, g, all := len(j.robotSent("zhou-uid")), len(j.robotSent("staff-li")), len(j.openapi.Sent()); n != 1 || g != 1 || all != 2 {
		var guide []string
		for _, m := range j.robotSent("staff-li") {
			guide = append(guide, m.MsgParam)
		}
		t.Errorf("robot sent %d to the member, %d to the guide (%q), %d in all; want 1, 1, 2", n, g, guide, all)
	}
	st, body := j.stats("store-visit-recall")
	if st.Entered != 1 || st.Done != 1 || st.Active != 0 || st.Failed != 0 {
		t.Errorf("stats = %s\nwant entered 1, done 1", body)
	}
	checkSends(t, st, body, map[string]int64{"nudge": int64(len(j.robotSent("zhou-uid")))}, 0)
}
