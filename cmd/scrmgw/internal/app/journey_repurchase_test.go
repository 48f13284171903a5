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

// purchase is a purchase.completed CloudEvent at at: 2 氨基酸洁面乳 (a
// 30-day replenishment cycle in the catalogue) and a 帆布包 (none) at
// store sh-1.
func purchase(id, phone, order string, at time.Time) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/pos/sh-1","type":"purchase.completed","brand":"camellia",
	  "time":%q,"data":{"member":{"phone":%q},"order_id":%q,"store":"sh-1",
	  "items":[{"sku":"CL-100","qty":2,"price":"129.00"},{"sku":"BG-1","qty":1,"price":"59.00"}]}}`,
		id, at.UTC().Format(time.RFC3339), phone, order)
}

// TestJourneyRepurchaseWeCom: a WeCom member's purchase (a signed
// CloudEvent) with a 30-day item starts repurchase-replenishment; 27
// virtual days later, three days before it runs out, the member gets the
// repurchase_reminder through their guide as a message task with a
// miniprogram attachment; nobody answers within three days and the run
// ends. One message; the stats agree.
func TestJourneyRepurchaseWeCom(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai) // Tuesday; +27d is Monday 11:00, inside 10:00-20:00
	j := startJourney(t, journeyChannels{wecom: true}, start)
	fake := j.wecom
	j.enableShipped("repurchase-replenishment")
	m := j.welcomed("wmChen", "陈女士", "138 0013 8000")

	placed := j.clock.Now().Truncate(time.Second)
	j.event("p-2001", purchase("p-2001", "13800138000", "SO-2001", placed))
	run := j.waitRun("repurchase-replenishment", m.ID, "wait_refill")
	if want := placed.Add(27 * 24 * time.Hour); !run.WakeAt.Equal(want) {
		t.Errorf("wait_refill wakes at %s, want %s (three days before the 30-day cycle ends)", run.WakeAt.In(shanghai), want.In(shanghai))
	}
	j.advance(26*24*time.Hour, "a day before the reminder", func() bool { return true })
	j.settle()
	if n := len(fake.MsgTemplates()); n != 0 {
		t.Fatalf("%d message tasks a day before the reminder is due", n)
	}

	j.advance(24*time.Hour, "the reminder step done", j.runIs("repurchase-replenishment", m.ID, runAtOrEnded("wait_reply")))
	if waitCount(t, "the reminder message task", 1, func() int { return len(fake.MsgTemplates()) }) {
		mt := fake.MsgTemplates()[0]
		if mt.ChatType != "single" || mt.Sender != "li" || !slices.Equal(mt.ExternalUserIDs, []string{"wmChen"}) || mt.Text != "" {
			t.Errorf("reminder task = %s from %q to %v with text %q, want single from li to [wmChen] without text",
				mt.ChatType, mt.Sender, mt.ExternalUserIDs, mt.Text)
		}
		// The template's cover (picurl) was fetched from the shop and
		// uploaded to WeCom once; the task names the upload.
		up := fake.Uploads()
		if len(up) != 1 || up[0].Type != "image" || j.shop.fetches("shop.example.com/static/reorder-cover.png") != 1 {
			t.Fatalf("uploads %+v, cover fetched %d times; want the cover fetched and uploaded once", up, j.shop.fetches("shop.example.com/static/reorder-cover.png"))
		}
		jsonEq(t, "reminder attachments", attachmentsJSON(mt.Attachments), `[{"msgtype":"miniprogram","miniprogram":{
		  "title":"氨基酸洁面乳、帆布包该补货啦",
		  "pic_media_id":"`+up[0].MediaID+`",
		  "appid":"wx0123456789abcdef",
		  "page":"pages/reorder/index?order=SO-2001"}}]`)
	}

	// Nobody answers: the run ends after three days.
	j.waitRun("repurchase-replenishment", m.ID, "wait_reply")
	j.advance(3*24*time.Hour, "the run done", j.runIs("repurchase-replenishment", m.ID, runEnded))
	j.settle()
	j.wantRun("repurchase-replenishment", m.ID, store.RunDone, "")
	// The guide sends the reminder in WeCom: they got one task to
	// confirm it (an app message).
	confirm := j.guideTask("确认发送「repurchase_reminder」给 陈女士")
	if w, a, mt := len(fake.Welcomes()), len(fake.AppMessages()), len(fake.MsgTemplates()); w != 1 || a != 1 || mt != 1 {
		t.Errorf("WeCom got %d welcomes, %d app messages, %d message tasks; want 1, 1 (the confirmation), 1", w, a, mt)
	} else if am := fake.AppMessages()[0]; !slices.Equal(am.ToUser, []string{"li"}) || am.Content != taskText(confirm) {
		t.Errorf("confirmation = to %v: %q, want to [li]: %q", am.ToUser, am.Content, taskText(confirm))
	}
	j.confirmAll()
	var st engine.Stats
	var body string
	waitFor(t, "the message task delivered", func() bool {
		st, body = j.stats("repurchase-replenishment")
		return st.Sends.Delivered == 1
	})
	if st.Entered != 1 || st.Done != 1 || st.Active != 0 || st.Failed != 0 {
		t.Errorf("stats = %s\nwant entered 1, done 1", body)
	}
	checkSends(t, st, body, map[string]int64{"reminder": int64(len(fake.MsgTemplates()))}, 1)
	for id, reached := range map[string]int64{"wait_refill": 1, "reminder": 1, "wait_reply": 1, "follow_up": 0} {
		if sc := step(t, st, id); sc.Reached != reached || sc.Skipped != 0 || sc.Failed != 0 {
			t.Errorf("step %s = %+v, want reached %d, none skipped or failed", id, sc, reached)
		}
	}
}

// dingTalkSignUp sends the brand CRM's member.signed_up for a member who
// is user zhou-uid of the brand's DingTalk organisation, home store sh-1.
func (j *journey) dingTalkSignUp() {
	j.t.Helper()
	j.event("su-zhou", `{"specversion":"1.0","id":"su-zhou","source":"/crm","type":"member.signed_up","brand":"camellia",
	  "data":{"member":{"phone":"13900139000"},"name":"周先生","home_store":"sh-1",
	  "identities":[{"channel":"dingtalk","external_id":"zhou-uid"}]}}`)
}

// robotSent returns the robot messages sent one-to-one to userID.
func (j *journey) robotSent(userID string) []dingtalkfake.SentMessage {
	var out []dingtalkfake.SentMessage
	for _, m := range j.openapi.Sent() {
		if slices.Equal(m.UserIDs, []string{userID}) {
			out = append(out, m)
		}
	}
	return out
}

// checkRobot checks a robot message: batchSend by the app's robot to the
// user, with msgKey and msgParam.
func (j *journey) checkRobot(what string, m dingtalkfake.SentMessage, userID, msgKey, msgParam string) {
	j.t.Helper()
	if m.Path != dingtalkfake.PathBatchSend || m.RobotCode != j.openapi.RobotCode() || !slices.Equal(m.UserIDs, []string{userID}) || m.MsgKey != msgKey {
		j.t.Errorf("%s = %s by %s to %v as %s, want batchSend by %s to [%s] as %s", what, m.Path, m.RobotCode, m.UserIDs, m.MsgKey,
			j.openapi.RobotCode(), userID, msgKey)
	}
	jsonEq(j.t, what+" msgParam", []byte(m.MsgParam), msgParam)
}

// TestJourneyRepurchaseDingTalk: a member of the brand's DingTalk
// organisation signs up (CRM CloudEvent) and buys; 27 virtual days later
// the repurchase_reminder reaches them as a robot sampleActionCard; they
// answer in the robot chat (a stream frame), which gives their guide the
// follow-up task as a robot message, and the run ends.
func TestJourneyRepurchaseDingTalk(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai)
	j := startJourney(t, journeyChannels{dingtalk: true}, start)
	j.enableShipped("repurchase-replenishment")
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
	placed := j.clock.Now().Truncate(time.Second)
	j.event("p-3001", purchase("p-3001", "13900139000", "SO-3001", placed))
	j.waitRun("repurchase-replenishment", m.ID, "wait_refill")

	j.advance(27*24*time.Hour, "the reminder step done", j.runIs("repurchase-replenishment", m.ID, runAtOrEnded("wait_reply")))
	if waitCount(t, "the reminder robot message", 1, func() int { return len(j.robotSent("zhou-uid")) }) {
		j.checkRobot("reminder", j.robotSent("zhou-uid")[0], "zhou-uid", "sampleActionCard", `{
		  "title":"该补货啦",
		  "text":"### 周先生好，该补货啦\n您1月5日买的这些差不多快用完了：\n\n- 氨基酸洁面乳 ×2\n- 帆布包 ×1",
		  "singleTitle":"一键补货",
		  "singleURL":"https://shop.example.com/reorder/SO-3001"}`)
	}

	// The member answers in the robot chat: the guide gets the task.
	j.waitRun("repurchase-replenishment", m.ID, "wait_reply")
	replied := j.clock.Now()
	j.gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid-zhou", SenderStaffID: "zhou-uid", SenderID: "$:LWCP_v1:$zhou",
		SenderNick: "周先生", Text: &dingtalkfake.Text{Content: "补货"}})
	j.sweepUntil("the run done", j.runIs("repurchase-replenishment", m.ID, runEnded))
	if waitCount(t, "the guide's follow-up task", 1, func() int { return len(j.robotSent("staff-li")) }) {
		tk := j.guideTask("周先生 回复了补货提醒：按订单 SO-3001 帮 TA 备货")
		if due := replied.Add(4 * time.Hour); tk.DueAt.Before(due) || tk.DueAt.After(due.Add(time.Minute)) {
			t.Errorf("follow-up task due %s, want 4 hours after the answer (%s)", tk.DueAt.In(shanghai), due.In(shanghai))
		}
		b, _ := json.Marshal(map[string]string{"content": taskText(tk)})
		j.checkRobot("guide task", j.robotSent("staff-li")[0], "staff-li", "sampleText", string(b))
	}
	j.settle()
	j.wantRun("repurchase-replenishment", m.ID, store.RunDone, "")
	if n, g, all := len(j.robotSent("zhou-uid")), len(j.robotSent("staff-li")), len(j.openapi.Sent()); n != 1 || g != 1 || all != 2 {
		t.Errorf("robot sent %d to the member, %d to the guide, %d in all; want 1, 1, 2", n, g, all)
	}
	st, body := j.stats("repurchase-replenishment")
	if st.Entered != 1 || st.Done != 1 || st.Active != 0 || st.Failed != 0 {
		t.Errorf("stats = %s\nwant entered 1, done 1", body)
	}
	checkSends(t, st, body, map[string]int64{"reminder": int64(len(j.robotSent("zhou-uid")))}, 0)
	for _, id := range []string{"wait_refill", "reminder", "wait_reply", "follow_up"} {
		if sc := step(t, st, id); sc.Reached != 1 || sc.Skipped != 0 || sc.Failed != 0 {
			t.Errorf("step %s = %+v, want reached 1, none skipped or failed", id, sc)
		}
	}
}

// TestJourneyRepurchaseWeComCoverMissing: the same journey when the
// reminder's cover is gone from the shop (404): the message cannot be
// made, nothing reaches the member, the step and the run fail with the
// reason, and the stats say failed (invalid_message), not sent.
func TestJourneyRepurchaseWeComCoverMissing(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai)
	j := startJourney(t, journeyChannels{wecom: true}, start)
	fake := j.wecom
	j.shop.miss("/static/reorder-cover.png")
	j.enableShipped("repurchase-replenishment")
	m := j.welcomed("wmChen", "陈女士", "138 0013 8000")
	j.event("p-2002", purchase("p-2002", "13800138000", "SO-2002", j.clock.Now().Truncate(time.Second)))
	j.waitRun("repurchase-replenishment", m.ID, "wait_refill")
	j.advance(27*24*time.Hour, "the run failed", j.runIs("repurchase-replenishment", m.ID, runEnded))
	j.settle()
	rs := j.runs("repurchase-replenishment", m.ID)
	if rs[0].State != store.RunFailed || !strings.Contains(rs[0].EndReason, "reorder-cover.png: HTTP 404") {
		t.Errorf("run ended %s (%s), want failed saying the cover answered 404", rs[0].State, rs[0].EndReason)
	}
	if n := len(fake.Uploads()); n != 0 {
		t.Errorf("%d uploads to WeCom, want none", n)
	}
	if n := len(fake.MsgTemplates()); n != 0 {
		t.Errorf("WeCom created %d message tasks, want none", n)
	}
	st, body := j.stats("repurchase-replenishment")
	sc := step(t, st, "reminder")
	if st.Failed != 1 || st.Sent != 0 || st.Sends.Sent != 0 || st.Sends.Failed != 1 || st.Sends.FailedBy["invalid_message"] != 1 ||
		sc.Failed != 1 || sc.Done != 0 || sc.Sends == nil || sc.Sends.Failed != 1 {
		t.Errorf("stats = %s\nwant the run and the reminder failed: 1 failed (invalid_message), 0 sent", body)
	}
}

// TestJourneyRepurchaseAgainWeCom: a member who buys again before the
// reminder converts the first run, and the new order starts the next one
// (re_entry: always): one reminder, for the new order, 27 days after it.
func TestJourneyRepurchaseAgainWeCom(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai)
	j := startJourney(t, journeyChannels{wecom: true}, start)
	fake := j.wecom
	j.enableShipped("repurchase-replenishment")
	m := j.welcomed("wmChen", "陈女士", "138 0013 8000")
	j.event("p-8001", purchase("p-8001", "13800138000", "SO-8001", j.clock.Now().Truncate(time.Second)))
	j.waitRun("repurchase-replenishment", m.ID, "wait_refill")

	j.advance(20*24*time.Hour, "twenty days on", func() bool { return true })
	again := j.clock.Now().Truncate(time.Second)
	j.event("p-8002", purchase("p-8002", "13800138000", "SO-8002", again))
	j.sweepUntil("the first run converted and the next waiting", func() bool {
		rs := j.runs("repurchase-replenishment", m.ID)
		return len(rs) == 2 && rs[0].State == store.RunConverted && rs[1].State == store.RunActive &&
			rs[1].WakeAt != nil && rs[1].WakeAt.Equal(again.Add(27*24*time.Hour))
	})
	j.advance(7*24*time.Hour+time.Minute, "the first order's reminder day", func() bool { return true })
	j.settle()
	if n := len(fake.MsgTemplates()); n != 0 {
		t.Fatalf("%d message tasks on the first order's reminder day, want none (that run converted)", n)
	}
	j.advance(20*24*time.Hour, "the second order's reminder", func() bool {
		rs := j.runs("repurchase-replenishment", m.ID)
		return len(rs) == 2 && rs[1].Step == "wait_reply"
	})
	if waitCount(t, "the reminder message task", 1, func() int { return len(fake.MsgTemplates()) }) {
		up := fake.Uploads()
		if len(up) != 1 {
			t.Fatalf("uploads %+v, want the cover once", up)
		}
		jsonEq(t, "reminder attachments", attachmentsJSON(fake.MsgTemplates()[0].Attachments), `[{"msgtype":"miniprogram","miniprogram":{
		  "title":"氨基酸洁面乳、帆布包该补货啦",
		  "pic_media_id":"`+up[0].MediaID+`",
		  "appid":"wx0123456789abcdef",
		  "page":"pages/reorder/index?order=SO-8002"}}]`)
	}
	j.settle()
	st, body := j.stats("repurchase-replenishment")
	if n := len(fake.MsgTemplates()); n != 1 || st.Entered != 2 || st.Converted != 1 || st.Active != 1 || st.Sent != 1 || st.Sends.Sent != 1 {
		t.Errorf("%d message tasks; stats = %s\nwant 1; entered 2, converted 1, active 1, sent 1", n, body)
	}
}

// TestJourneyRepurchaseWeComNotDelivered: the reminder's message task is
// created, but the member is no longer the guide's contact when the guide
// sends it (WeCom reports status 2): the stats say sent but undelivered,
// and the guide's task to confirm it is cancelled, not left overdue.
func TestJourneyRepurchaseWeComNotDelivered(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai)
	j := startJourney(t, journeyChannels{wecom: true}, start)
	fake := j.wecom
	j.enableShipped("repurchase-replenishment")
	m := j.welcomed("wmChen", "陈女士", "138 0013 8000")
	j.event("p-3001", purchase("p-3001", "13800138000", "SO-3001", j.clock.Now().Truncate(time.Second)))
	j.waitRun("repurchase-replenishment", m.ID, "wait_refill")
	j.advance(27*24*time.Hour, "the reminder step done", j.runIs("repurchase-replenishment", m.ID, runAtOrEnded("wait_reply")))
	if !waitCount(t, "the reminder message task", 1, func() int { return len(fake.MsgTemplates()) }) {
		return
	}
	confirm := j.guideTask("确认发送「repurchase_reminder」给 陈女士")
	if confirm.State != store.GuideTaskOpen {
		t.Fatalf("confirmation task %s before WeCom said anything, want open", confirm.State)
	}
	if !fake.RefuseMsgTemplate(fake.MsgTemplates()[0].MsgID, 2) {
		t.Fatal("no message task to refuse")
	}
	var st engine.Stats
	var body string
	waitFor(t, "the reminder undelivered", func() bool {
		st, body = j.stats("repurchase-replenishment")
		return st.Sends.Undelivered == 1
	})
	if st.Sends.Sent != 1 || st.Sends.Delivered != 0 || st.Sends.Failed != 0 {
		t.Errorf("stats = %s\nwant sent 1 (WeCom took it), delivered 0, undelivered 1", body)
	}
	waitFor(t, "the confirmation task cancelled", func() bool {
		return j.guideTask("确认发送「repurchase_reminder」给 陈女士").State == store.GuideTaskCancelled
	})
}
