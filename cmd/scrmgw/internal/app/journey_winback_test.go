package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// TestJourneyDormantWinBackWeCom: three WeCom members with purchases sent
// as signed CloudEvents: 陈女士 last bought 100 days ago, 周女士 (gold)
// 95 days ago, 王先生 30 days ago. At 10:00 (Shanghai) the daily schedule
// fires: the two dormant members, and only they, get win_back through
// their guide as a message task with a link attachment. Nobody answers
// for seven days: 周女士, gold, goes on her guide's call list (an app
// message), 陈女士 is tagged dormant. One message per member and step; the
// stats agree.
func TestJourneyDormantWinBackWeCom(t *testing.T) {
	start := time.Date(2027, 1, 4, 9, 50, 0, 0, shanghai) // a Monday, ten minutes before the schedule
	j := startJourney(t, journeyChannels{wecom: true}, start)
	fake := j.wecom
	ctx := context.Background()
	j.enableShipped("dormant-win-back")
	type member struct {
		ext, name, phone string
		bought           time.Duration // ago
		level            string
		id               int64
	}
	chen := &member{ext: "wmChen", name: "陈女士", phone: "13800138000", bought: 100 * 24 * time.Hour}
	zhou := &member{ext: "wmZhou", name: "周女士", phone: "13800138001", bought: 95 * 24 * time.Hour, level: "gold"}
	wang := &member{ext: "wmWang", name: "王先生", phone: "13800138002", bought: 30 * 24 * time.Hour}
	all := []*member{chen, zhou, wang}
	for i, m := range all {
		j.wecomJoin(m.ext, m.name, m.phone)
		waitFor(t, "the welcome of "+m.name, func() bool { return len(fake.Welcomes()) > i })
		j.event("p-"+m.ext, purchase("p-"+m.ext, m.phone, "SO-"+m.ext, start.Add(-m.bought)))
		if m.level != "" {
			j.event("lv-"+m.ext, fmt.Sprintf(`{"specversion":"1.0","id":"lv-%s","source":"/crm","type":"member.updated","brand":"camellia",
			  "data":{"member":{"phone":%q},"level":%q}}`, m.ext, m.phone, m.level))
		}
		waitFor(t, "the purchase of "+m.name, func() bool {
			v, err := j.s.app.Store.MemberByPhone(ctx, m.phone, journeyBrand)
			if err != nil {
				return false
			}
			m.id = v.ID
			p, err := j.s.app.Store.MemberProfile(ctx, journeyBrand, v.ID)
			return err == nil && len(p.Purchases) == 1 && (m.level == "" || p.Membership != nil && p.Membership.Level == m.level)
		})
	}
	j.settle()
	for _, m := range all {
		if rs := j.runs("dormant-win-back", m.id); len(rs) != 0 {
			t.Fatalf("%s has runs before the schedule fired: %+v", m.name, rs)
		}
	}

	// 10:00: the schedule fires.
	j.advance(10*time.Minute+30*time.Second, "the dormant members' runs waiting for a reply", func() bool {
		for _, m := range []*member{chen, zhou} {
			rs := j.runs("dormant-win-back", m.id)
			if len(rs) != 1 || rs[0].Step != "wait_reply" {
				return false
			}
		}
		return true
	})
	if waitCount(t, "two win-back message tasks", 2, func() int { return len(fake.MsgTemplates()) }) {
		for _, m := range []*member{chen, zhou} {
			i := slices.IndexFunc(fake.MsgTemplates(), func(mt wecomfake.MsgTemplateRequest) bool {
				return slices.Equal(mt.ExternalUserIDs, []string{m.ext})
			})
			if i < 0 {
				t.Errorf("no message task to %s: %+v", m.name, fake.MsgTemplates())
				continue
			}
			mt := fake.MsgTemplates()[i]
			c := j.coupon(m.id, "WIN-BACK-30")
			p, err := j.s.app.Store.MemberProfile(ctx, journeyBrand, m.id)
			if err != nil {
				t.Fatal(err)
			}
			if mt.ChatType != "single" || mt.Sender != "li" || mt.Text != "" {
				t.Errorf("win-back task to %s = %s from %q with text %q, want single from li without text", m.name, mt.ChatType, mt.Sender, mt.Text)
			}
			jsonEq(t, "win-back attachments to "+m.name, attachmentsJSON(mt.Attachments), fmt.Sprintf(`[{"msgtype":"link","link":{
			  "title":"%s，山茶花想您了：¥30回归券",
			  "picurl":"https://shop.example.com/static/coupon-win-back.png",
			  "desc":"李娜给您留的回归券，%s前有效；您还有%d积分可用。",
			  "url":"https://shop.example.com/coupons/%s"}}]`, m.name, cnDate(c.ExpiresAt), p.Membership.Points, c.Code))
		}
	}
	if rs := j.runs("dormant-win-back", wang.id); len(rs) != 0 {
		t.Errorf("王先生, who bought 30 days ago, entered win-back: %+v", rs)
	}

	// Seven days without a reply.
	j.advance(7*24*time.Hour, "both runs done", func() bool {
		for _, m := range []*member{chen, zhou} {
			if rs := j.runs("dormant-win-back", m.id); len(rs) != 1 || rs[0].State == store.RunActive {
				return false
			}
		}
		return true
	})
	j.settle()
	for _, m := range []*member{chen, zhou} {
		if rs := j.runs("dormant-win-back", m.id); len(rs) != 1 || rs[0].State != store.RunDone {
			t.Errorf("%s's runs = %+v, want one done", m.name, rs)
		}
	}
	if p, err := j.s.app.Store.MemberProfile(ctx, journeyBrand, chen.id); err != nil || !slices.Contains(p.Tags, "dormant") {
		t.Errorf("陈女士's tags = %v (%v), want dormant", p.Tags, err)
	}
	tasks, err := j.s.app.Store.GuideTasks(ctx, store.GuideTaskFilter{GuideID: "g-li"})
	if err != nil {
		t.Fatal(err)
	}
	var call *store.GuideTask
	for i := range tasks {
		if tasks[i].MemberID == zhou.id && tasks[i].RunID != nil && slices.Contains([]string{"回访沉睡会员 周女士（gold，0 积分）"}, tasks[i].Title) {
			call = &tasks[i]
		}
	}
	if call == nil {
		t.Fatalf("no call task for 周女士 among %+v", tasks)
	}
	// The guide gets, as app messages, a task to confirm each win-back
	// sent through them, and the call task.
	want := []string{"【任务】回访沉睡会员 周女士（gold，0 积分）\n截止：" + call.DueAt.In(shanghai).Format("01-02 15:04")}
	for _, m := range []*member{chen, zhou} {
		tk := j.guideTask("确认发送「win_back」给 " + m.name)
		if wantNote := m.name + "，山茶花想您了：¥30回归券"; tk.Note != wantNote {
			t.Errorf("confirmation task of %s: note %q, want %q", m.name, tk.Note, wantNote)
		}
		want = append(want, taskText(tk))
	}
	if waitCount(t, "three tasks (app messages)", 3, func() int { return len(fake.AppMessages()) }) {
		var got []string
		for _, a := range fake.AppMessages() {
			if !slices.Equal(a.ToUser, []string{"li"}) || a.MsgType != "text" {
				t.Errorf("app message %s to %v, want text to [li]", a.MsgType, a.ToUser)
			}
			got = append(got, a.Content)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("guide's app messages =\n  %q\nwant\n  %q", got, want)
		}
	}
	j.confirmAll()
	var st engine.Stats
	var body string
	waitFor(t, "both message tasks delivered", func() bool {
		st, body = j.stats("dormant-win-back")
		return st.Sends.Delivered == 2
	})
	j.settle()
	if w, a, mt := len(fake.Welcomes()), len(fake.AppMessages()), len(fake.MsgTemplates()); w != 3 || a != 3 || mt != 2 {
		t.Errorf("WeCom got %d welcomes, %d app messages, %d message tasks; want 3, 3, 2", w, a, mt)
	}
	st, body = j.stats("dormant-win-back")
	if st.Entered != 2 || st.Done != 2 || st.Active != 0 || st.Failed != 0 {
		t.Errorf("stats = %s\nwant entered 2, done 2", body)
	}
	checkSends(t, st, body, map[string]int64{"win_back": int64(len(fake.MsgTemplates()))}, 2)
	for id, reached := range map[string]int64{"keep_guide": 2, "win_back": 2, "wait_reply": 2, "by_level": 2, "call": 1, "tag_dormant": 1} {
		if sc := step(t, st, id); sc.Reached != reached || sc.Skipped != 0 || sc.Failed != 0 {
			t.Errorf("step %s = %+v, want reached %d, none skipped or failed", id, sc, reached)
		}
	}
}

// TestJourneyDormantWinBackDingTalk: a member of the brand's DingTalk
// organisation who last bought 100 days ago (a CRM sign-up, then the
// purchase as a CloudEvent with its old time) gets win_back at 10:00 as a
// robot sampleActionCard; they answer in the robot chat (a stream frame),
// which puts them on their guide's call list (a robot message to the
// guide) and ends the run.
func TestJourneyDormantWinBackDingTalk(t *testing.T) {
	start := time.Date(2027, 1, 4, 9, 50, 0, 0, shanghai) // a Monday
	j := startJourney(t, journeyChannels{dingtalk: true}, start)
	ctx := context.Background()
	j.enableShipped("dormant-win-back")
	j.dingTalkSignUp()
	var id int64
	waitFor(t, "the member signed up and bound", func() bool {
		v, err := j.s.app.Store.MemberByPhone(ctx, "13900139000", journeyBrand)
		if err != nil || len(v.Bindings) != 1 {
			return false
		}
		id = v.ID
		return true
	})
	j.event("p-zhou", purchase("p-zhou", "13900139000", "SO-4001", start.Add(-100*24*time.Hour)))
	waitFor(t, "the member's old purchase", func() bool {
		p, err := j.s.app.Store.MemberProfile(ctx, journeyBrand, id)
		return err == nil && len(p.Purchases) == 1
	})

	j.advance(10*time.Minute+30*time.Second, "the run waiting for a reply", j.runIs("dormant-win-back", id, runAt("wait_reply")))
	c := j.coupon(id, "WIN-BACK-30")
	p, err := j.s.app.Store.MemberProfile(ctx, journeyBrand, id)
	if err != nil {
		t.Fatal(err)
	}
	if waitCount(t, "the win-back robot message", 1, func() int { return len(j.robotSent("zhou-uid")) }) {
		j.checkRobot("win-back", j.robotSent("zhou-uid")[0], "zhou-uid", "sampleActionCard", fmt.Sprintf(`{
		  "title":"山茶花想您了",
		  "text":"### 好久不见，周先生\n李娜给您留了一张 **¥30** 回归券，%s前有效。\n您还有 %d 积分，到静安店消费可以一起用。",
		  "singleTitle":"领取回归券",
		  "singleURL":"https://shop.example.com/coupons/%s"}`, cnDate(c.ExpiresAt), p.Membership.Points, c.Code))
	}

	// The member answers: the guide is to call them.
	j.clock.Advance(2 * time.Hour)
	j.gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid-zhou", SenderStaffID: "zhou-uid", SenderID: "$:LWCP_v1:$zhou",
		SenderNick: "周先生", Text: &dingtalkfake.Text{Content: "还有新品吗"}})
	j.sweepUntil("the run done", j.runIs("dormant-win-back", id, runEnded))
	tasks, err := j.s.app.Store.GuideTasks(ctx, store.GuideTaskFilter{GuideID: "g-li"})
	if err != nil {
		t.Fatal(err)
	}
	var call *store.GuideTask
	for i := range tasks {
		if tasks[i].MemberID == id && tasks[i].Title == fmt.Sprintf("回访沉睡会员 周先生（，%d 积分）", p.Membership.Points) {
			call = &tasks[i]
		}
	}
	if call == nil {
		t.Errorf("no call task for 周先生 among %+v", tasks)
	} else if waitCount(t, "the call task (robot message)", 1, func() int { return len(j.robotSent("staff-li")) }) {
		sent := j.robotSent("staff-li")
		i := slices.IndexFunc(sent, func(m dingtalkfake.SentMessage) bool { return strings.Contains(m.MsgParam, "回访沉睡会员") })
		if i < 0 {
			t.Fatalf("no call task among the guide's robot messages %+v", sent)
		}
		j.checkRobot("call task", sent[i], "staff-li", "sampleText", fmt.Sprintf(`{
		  "content":"【任务】回访沉睡会员 周先生（，%d 积分）\n截止：%s"}`, p.Membership.Points, call.DueAt.In(shanghai).Format("01-02 15:04")))
	}
	j.settle()
	j.wantRun("dormant-win-back", id, store.RunDone, "")
	// The robot sent the win-back itself: the guide has nothing to
	// confirm, and gets only the call task.
	if n, g, all := len(j.robotSent("zhou-uid")), len(j.robotSent("staff-li")), len(j.openapi.Sent()); n != 1 || g != 1 || all != 2 {
		var guide []string
		for _, m := range j.robotSent("staff-li") {
			guide = append(guide, m.MsgParam)
		}
		t.Errorf("robot sent %d to the member, %d to the guide (%q), %d in all; want 1, 1, 2", n, g, guide, all)
	}
	st, body := j.stats("dormant-win-back")
	if st.Entered != 1 || st.Done != 1 || st.Active != 0 || st.Failed != 0 {
		t.Errorf("stats = %s\nwant entered 1, done 1", body)
	}
	checkSends(t, st, body, map[string]int64{"win_back": int64(len(j.robotSent("zhou-uid")))}, 0)
	for id, reached := range map[string]int64{"keep_guide": 1, "win_back": 1, "wait_reply": 1, "by_level": 0, "call": 1, "tag_dormant": 0} {
		if sc := step(t, st, id); sc.Reached != reached || sc.Skipped != 0 || sc.Failed != 0 {
			t.Errorf("step %s = %+v, want reached %d, none skipped or failed", id, sc, reached)
		}
	}
}

// TestJourneyDormantWinBackSundayWeCom: the schedule fires on Sunday too,
// but the workflow sends Monday to Saturday only: the win-back waits for
// Monday 10:00 (the end of the quiet hours), and goes once.
func TestJourneyDormantWinBackSundayWeCom(t *testing.T) {
	start := time.Date(2027, 1, 3, 9, 50, 0, 0, shanghai) // a Sunday
	j := startJourney(t, journeyChannels{wecom: true}, start)
	fake := j.wecom
	ctx := context.Background()
	j.enableShipped("dormant-win-back")
	m := j.welcomed("wmChen", "陈女士", "138 0013 8000")
	j.event("p-chen", purchase("p-chen", "13800138000", "SO-7001", start.Add(-100*24*time.Hour)))
	waitFor(t, "the old purchase", func() bool {
		p, err := j.s.app.Store.MemberProfile(ctx, journeyBrand, m.ID)
		return err == nil && len(p.Purchases) == 1
	})
	j.advance(10*time.Minute+30*time.Second, "the win-back held until Monday", func() bool {
		rs := j.runs("dormant-win-back", m.ID)
		return len(rs) == 1 && rs[0].Step == "win_back" && rs[0].WakeAt != nil && rs[0].WakeAt.After(j.clock.Now())
	})
	held := *j.runs("dormant-win-back", m.ID)[0].WakeAt
	monday := time.Date(2027, 1, 4, 10, 0, 0, 0, shanghai)
	if held.Before(monday) || held.After(monday.Add(5*time.Minute)) {
		t.Errorf("the win-back is held until %s, want Monday 10:00 to 10:05", held.In(shanghai))
	}
	j.settle()
	if n := len(fake.MsgTemplates()); n != 0 {
		t.Fatalf("%d message tasks on Sunday", n)
	}
	j.advance(held.Sub(j.clock.Now())+time.Second, "the win-back sent on Monday", j.runIs("dormant-win-back", m.ID, runAt("wait_reply")))
	if waitCount(t, "the win-back message task", 1, func() int { return len(fake.MsgTemplates()) }) {
		mt := fake.MsgTemplates()[0]
		if mt.Sender != "li" || !slices.Equal(mt.ExternalUserIDs, []string{"wmChen"}) || len(mt.Attachments) != 1 || mt.Attachments[0].MsgType != "link" {
			t.Errorf("win-back task = from %q to %v with %s, want a link from li to [wmChen]", mt.Sender, mt.ExternalUserIDs, attachmentsJSON(mt.Attachments))
		}
	}
	j.settle()
	if n, rs := len(fake.MsgTemplates()), j.runs("dormant-win-back", m.ID); n != 1 || len(rs) != 1 {
		t.Errorf("%d message tasks and %d runs after Monday's schedule, want 1 and 1", n, len(rs))
	}
}
