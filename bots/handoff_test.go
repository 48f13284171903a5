package bots

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recordingOutbox keeps what was queued, once per key, as the outbox does.
type recordingOutbox struct {
	mu     sync.Mutex
	byKey  map[string]Reply
	queued int
}

func (o *recordingOutbox) Queue(_ context.Context, r Reply) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.byKey == nil {
		o.byKey = map[string]Reply{}
	}
	if r.Key == "" || r.To == nil {
		return fmt.Errorf("reply without key or recipient: %+v", r)
	}
	o.byKey[r.Key] = r
	o.queued++
	return nil
}

// handoffRig runs the bots with handing over on, logging each member
// message as the pipeline does (message.received) before the bot sees it.
type handoffRig struct {
	t     *testing.T
	s     *store.Store
	d     Deps
	bot   Bot
	clock *clock
	n     int
}

func newHandoffRig(t *testing.T, s *store.Store) *handoffRig {
	d := setupDeps(t, s)
	c := &clock{t: time.Now()}
	d.Handoffs, d.Guides, d.Now, d.HandoffIdle = s, s, c.Now, 30*time.Minute
	return &handoffRig{t: t, s: s, d: d, clock: c,
		bot: Chain(&Router{Member: MemberBot(d), Guide: GuideBot(d)}, Recover(slog.New(slog.NewTextHandler(io.Discard, nil))), Normalize())}
}

func (r *handoffRig) say(channel string, from adapters.Party, sender, text string) []Reply {
	r.t.Helper()
	r.n++
	return r.again(channel, from, sender, text)
}

// again handles the last message again, as a retried delivery.
func (r *handoffRig) again(channel string, from adapters.Party, sender, text string) []Reply {
	r.t.Helper()
	ctx := context.Background()
	key := fmt.Sprintf("msg-%d", r.n)
	if from == adapters.PartyMember {
		if v, err := r.s.MemberByIdentity(ctx, channel, sender); err == nil {
			p, _ := json.Marshal(map[string]string{"kind": "text", "text": text})
			if _, err := r.s.AppendEvent(ctx, &store.Event{Type: "message.received", BrandID: "camellia", MemberID: &v.ID,
				Source: channel, SourceID: key, Payload: string(p), OccurredAt: r.clock.Now()}); err != nil {
				r.t.Fatal(err)
			}
		}
	}
	replyTo := map[string]string{"open_kfid": "wkKF1"}
	if channel == "dingtalk" {
		replyTo = map[string]string{"session_webhook": "https://oapi.example/robot/send?session=" + sender}
	}
	rs, err := r.bot.Handle(ctx, &Message{Channel: channel, From: from, SenderID: sender, Brand: "camellia", Text: text,
		DedupKey: key, ReplyTo: replyTo})
	if err != nil {
		r.t.Fatalf("%s %q: %v", sender, text, err)
	}
	return rs
}

// texts describes replies as "to: text" lines, "me" for the sender.
func texts(rs []Reply) string {
	var b strings.Builder
	for _, r := range rs {
		to := "me"
		if r.To != nil {
			to = r.To.Channel + "/" + r.To.ID
		}
		fmt.Fprintf(&b, "%s: %s\n", to, r.Text)
	}
	return b.String()
}

// outboxKeys are the keys the pipeline gives replies: their own, else
// their place among the unkeyed ones; with the recipient and text.
func outboxKeys(rs []Reply) map[string]string {
	out := map[string]string{}
	n := 0
	for _, r := range rs {
		k := r.Key
		if k == "" {
			k = fmt.Sprint(n)
			n++
		}
		out[k] = texts([]Reply{r})
	}
	return out
}

// wantSameOnRetry checks a retried message yields the replies of its first
// handling under the same keys, so the outbox sends each once.
func wantSameOnRetry(t *testing.T, what string, first, retry []Reply) {
	t.Helper()
	a, b := outboxKeys(first), outboxKeys(retry)
	for k, v := range b {
		if a[k] != v {
			t.Errorf("%s: retry reply %s = %q, first handling had %q", what, k, v, a[k])
		}
	}
	if len(a) != len(b) {
		t.Errorf("%s: %d replies on retry, %d first", what, len(b), len(a))
	}
}

func wantReplies(t *testing.T, what string, rs []Reply, want ...string) {
	t.Helper()
	got := texts(rs)
	if len(rs) != len(want) {
		t.Fatalf("%s: %d replies, want %d:\n%s", what, len(rs), len(want), got)
	}
	for i, w := range want {
		line := strings.SplitN(texts(rs[i:i+1]), ": ", 2)
		to, text, _ := strings.Cut(w, ": ")
		if line[0] != to || !strings.Contains(line[1], text) {
			t.Errorf("%s: reply %d = %q, want to %s containing %q", what, i, strings.TrimSpace(texts(rs[i:i+1])), to, text)
		}
	}
}

func TestHandoffBothWays(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := newHandoffRig(t, s)
		ctx := context.Background()
		v, _ := s.MemberByIdentity(ctx, "wecom", "wmChen")
		s.SetMembership(ctx, v.ID, "camellia", "gold", ptr(int64(300)))
		r.say("wecom", adapters.PartyMember, "wmChen", "我的积分")

		rs := r.say("wecom", adapters.PartyMember, "wmChen", "转人工")
		wantReplies(t, "asking for a person", rs, "me: 已为您转接专属导购 李娜（静安店）", "wecom/li: 【转人工 #")
		wantSameOnRetry(t, "asking for a person", rs, r.again("wecom", adapters.PartyMember, "wmChen", "转人工"))
		req := rs[1].Text
		for _, w := range []string{"陈女士", "尾号8000", "等级 gold", "静安店", "我的积分", "转人工"} {
			if !strings.Contains(req, w) {
				t.Errorf("guide's request lacks %q:\n%s", w, req)
			}
		}
		if strings.Contains(req, "13800138000") || strings.Contains(req, "138001") {
			t.Errorf("guide's request shows the phone number:\n%s", req)
		}
		h, err := s.OpenHandoffOf(ctx, v.ID, "camellia")
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprint(h.ID)

		wantReplies(t, "member writes", r.say("wecom", adapters.PartyMember, "wmChen", "这款有小样吗？"), "wecom/li: #"+id+" 陈女士：这款有小样吗？")
		wantReplies(t, "member's keyword goes to the guide too", r.say("wecom", adapters.PartyMember, "wmChen", "我的导购"), "wecom/li: 我的导购")
		rs = r.say("wecom", adapters.PartyGuide, "li", "有的，给您留一份")
		wantReplies(t, "guide answers", rs, "wecom/wmChen: 李娜：有的，给您留一份")
		if rs[0].To.ReplyTo["open_kfid"] != "wkKF1" || rs[0].To.Party != adapters.PartyMember || rs[0].To.MemberID != v.ID {
			t.Errorf("guide's answer goes to %+v, want the member's kf session", rs[0].To)
		}
		wantReplies(t, "guide's chat that contains a keyword", r.say("wecom", adapters.PartyGuide, "li", "好的，任务我记下了"), "wecom/wmChen: 任务我记下了")
		wantReplies(t, "guide command sent exactly", r.say("wecom", adapters.PartyGuide, "li", "我的任务"), "me: 您没有待办任务")
		wantReplies(t, "done-like text", r.say("wecom", adapters.PartyGuide, "li", "已完成，给您寄出了"), "wecom/wmChen: 已完成，给您寄出了")
		wantReplies(t, "lookup-like text", r.say("wecom", adapters.PartyGuide, "li", "找到了！"), "wecom/wmChen: 找到了！")
		wantReplies(t, "lookup by tail in a handoff", r.say("wecom", adapters.PartyGuide, "li", "查 8000"), "me: 陈女士（尾号8000）")
		wantReplies(t, "numbered", r.say("wecom", adapters.PartyGuide, "li", "#"+id+" 明天到店"), "wecom/wmChen: 李娜：明天到店")
		wantReplies(t, "unknown number", r.say("wecom", adapters.PartyGuide, "li", "#99999 你好"), "me: 没有编号为 #99999 的进行中对话。进行中： #"+id+" 陈女士")
		wantReplies(t, "number without text", r.say("wecom", adapters.PartyGuide, "li", "#"+id), "me: 请在编号后写上要发给会员的内容")
		wantReplies(t, "unknown end number", r.say("wecom", adapters.PartyGuide, "li", "结束 99999"), "me: 没有编号为 #99999")

		rs = r.say("wecom", adapters.PartyGuide, "li", "结束")
		wantReplies(t, "guide ends it", rs, "wecom/wmChen: 本次与导购 李娜 的对话已结束", "me: #"+id+" 与陈女士的对话已结束")
		wantSameOnRetry(t, "guide ends it", rs, r.again("wecom", adapters.PartyGuide, "li", "结束"))
		if rs[0].Key != "handoff:"+id+":ended:member" {
			t.Errorf("member's notice key %q", rs[0].Key)
		}
		if got, _ := s.Handoff(ctx, h.ID); got.State != store.HandoffEnded || got.EndReason != store.HandoffEndedByGuide || got.NotifiedAt == nil {
			t.Errorf("handoff after end: %+v", got)
		}
		wantReplies(t, "the bot answers again", r.say("wecom", adapters.PartyMember, "wmChen", "我的导购"), "me: 您的专属导购是 李娜")
		wantReplies(t, "guide ends with nothing open", r.say("wecom", adapters.PartyGuide, "li", "end"), "me: no open chats")
		wantReplies(t, "guide text with nothing open", r.say("wecom", adapters.PartyGuide, "li", "在吗"), "me: 导购助手可以帮您")
	})
}

func TestHandoffUnansweredTwiceAndNoGuide(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := newHandoffRig(t, s)
		ctx := context.Background()
		wantReplies(t, "first unknown", r.say("wecom", adapters.PartyMember, "wmChen", "今天天气怎么样"), "me: 转人工")
		wantReplies(t, "emoji, second unknown", r.say("wecom", adapters.PartyMember, "wmChen", "😀🎉"),
			"me: 抱歉，这个问题我暂时回答不了。已为您转接", "wecom/li: （机器人未能回答）")
		v, _ := s.MemberByIdentity(ctx, "wecom", "wmChen")
		if h, err := s.OpenHandoffOf(ctx, v.ID, "camellia"); err != nil || h.Reason != store.HandoffUnanswered {
			t.Fatalf("handoff = %+v, %v", h, err)
		}
		r.say("wecom", adapters.PartyGuide, "li", "结束")
		// After the handoff, one unknown message is a first miss again.
		wantReplies(t, "unknown after a handoff", r.say("wecom", adapters.PartyMember, "wmChen", "嗯嗯"), "me: 附近门店")
		// Unknown misses far apart are each a first.
		r.clock.Add(time.Hour)
		wantReplies(t, "unknown an hour later", r.say("wecom", adapters.PartyMember, "wmChen", "???"), "me: 附近门店")

		// Nobody to hand a stranger to: a clear answer, and an event.
		wantReplies(t, "stranger", r.say("wecom", adapters.PartyMember, "wmStranger", "talk to a person"), "me: You don't have a personal shopper who can take this yet")
		m2, _, _ := s.EnsureMember(ctx, store.NewMember{Name: "无导购", BrandID: "camellia", Identities: []store.Identity{{Channel: "dingtalk", ExternalID: "dtLone"}}})
		wantReplies(t, "member without a guide", r.say("dingtalk", adapters.PartyMember, "dtLone", "转人工"), "me: 您还没有可以为您服务的专属导购")
		evs, _ := s.Events(ctx, store.EventFilter{Type: handoffEventUnassigned})
		if len(evs) != 2 || evs[1].MemberID == nil || *evs[1].MemberID != m2.ID {
			t.Errorf("unassigned events = %+v", evs)
		}
		// A guide on no configured channel, or who left, cannot take it.
		onlyDingTalk := r.d
		onlyDingTalk.Channels = adapters.SpecList{testChannels[1]}
		rs, err := MemberBot(onlyDingTalk).Handle(ctx, &Message{Channel: "wecom", From: adapters.PartyMember, SenderID: "wmChen",
			Brand: "camellia", Text: "转人工", Locale: "zh", DedupKey: "only-dingtalk"})
		if err != nil {
			t.Fatal(err)
		}
		wantReplies(t, "guide on no configured channel", rs, "me: 您还没有可以为您服务的专属导购")
		// A very long message is passed on cut, not dropped.
		r.say("wecom", adapters.PartyMember, "wmChen", "转人工")
		rs = r.say("wecom", adapters.PartyMember, "wmChen", strings.Repeat("长", 5000))
		if len(rs) != 1 || rs[0].To == nil || len(rs[0].Text) > 2048 || !strings.HasSuffix(rs[0].Text, "长…") {
			t.Errorf("long message: %d replies, %d runes", len(rs), len([]rune(texts(rs))))
		}
		r.say("wecom", adapters.PartyGuide, "li", "结束")
		if _, err := s.MarkGuideLeft(ctx, "li"); err != nil {
			t.Fatal(err)
		}
		wantReplies(t, "guide left", r.say("wecom", adapters.PartyMember, "wmChen", "转人工"), "me: 您还没有可以为您服务的专属导购")
		if evs, _ := s.Events(ctx, store.EventFilter{Type: handoffEventUnassigned}); len(evs) != 4 {
			t.Errorf("%d unassigned events, want 4", len(evs))
		}
	})
}

func TestHandoffEndsWhenIdle(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := newHandoffRig(t, s)
		ctx := context.Background()
		v, _ := s.MemberByIdentity(ctx, "wecom", "wmChen")
		r.say("wecom", adapters.PartyMember, "wmChen", "转人工")
		h, _ := s.OpenHandoffOf(ctx, v.ID, "camellia")
		out := &recordingOutbox{}
		r.clock.Add(29 * time.Minute)
		if n, err := r.d.EndIdleHandoffs(ctx, out); err != nil || n != 0 {
			t.Fatalf("sweep before the idle time: %d, %v", n, err)
		}
		r.clock.Add(2 * time.Minute)
		var wg sync.WaitGroup
		for range 2 { // two workers at once
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.d.EndIdleHandoffs(ctx, out); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if len(out.byKey) != 2 {
			t.Fatalf("notices = %v, want one to each side", out.byKey)
		}
		member, guide := out.byKey[fmt.Sprintf("handoff:%d:ended:member", h.ID)], out.byKey[fmt.Sprintf("handoff:%d:ended:guide", h.ID)]
		if member.To == nil || member.To.ID != "wmChen" || !strings.Contains(member.Text, "由于长时间没有新消息") {
			t.Errorf("member notice = %+v", member)
		}
		if guide.To == nil || guide.To.ID != "li" || !strings.Contains(guide.Text, "长时间无新消息") {
			t.Errorf("guide notice = %+v", guide)
		}
		if n, _ := r.d.EndIdleHandoffs(ctx, &recordingOutbox{}); n != 0 {
			t.Errorf("a later sweep ended %d more", n)
		}

		// Lazily: the next message ends an idle handoff the sweep missed.
		r.say("wecom", adapters.PartyMember, "wmChen", "转人工")
		r.clock.Add(31 * time.Minute)
		rs := r.say("wecom", adapters.PartyMember, "wmChen", "附近门店")
		wantReplies(t, "member writes after the idle time", rs,
			"wecom/wmChen: 由于长时间没有新消息", "wecom/li: 长时间无新消息", "me: 请发送您的位置")
		wantSameOnRetry(t, "member writes after the idle time", rs, r.again("wecom", adapters.PartyMember, "wmChen", "附近门店"))
		r.say("wecom", adapters.PartyMember, "wmChen", "转人工")
		r.clock.Add(31 * time.Minute)
		wantReplies(t, "guide writes after the idle time", r.say("wecom", adapters.PartyGuide, "li", "还在吗"),
			"wecom/wmChen: 由于长时间没有新消息", "me: 长时间无新消息")

		// An unsubscribe ends the handoff and tells the guide.
		r.say("wecom", adapters.PartyMember, "wmChen", "转人工")
		wantReplies(t, "unsubscribe", r.say("wecom", adapters.PartyMember, "wmChen", "退订"), "wecom/li: 会员已退订", "me: 已为您退订")
		if _, err := s.OpenHandoffOf(ctx, v.ID, "camellia"); err == nil {
			t.Error("handoff still open after unsubscribe")
		}
	})
}

func TestGuideLookupAndStats(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := newHandoffRig(t, s)
		ctx := context.Background()
		v, _ := s.MemberByIdentity(ctx, "wecom", "wmChen")
		s.SetMembership(ctx, v.ID, "camellia", "gold", nil)
		if _, err := s.AwardPoints(ctx, &store.PointsLine{MemberID: v.ID, BrandID: "camellia", Delta: 200, Reason: "purchase", Ref: "p1", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		// Wu's member, with a phone of the same tail: li must never see her.
		other, _, _ := s.EnsureMember(ctx, store.NewMember{Phone: "13900008000", Name: "陈小姐", BrandID: "camellia"})
		s.Bind(ctx, &store.Binding{MemberID: other.ID, BrandID: "camellia", GuideID: "wu", StoreID: "xtd", Reason: "manual"})
		task := &store.GuideTask{MemberID: v.ID, GuideID: "li", BrandID: "camellia", Title: "回访", DueAt: time.Now()}
		s.CreateGuideTask(ctx, task)
		s.CompleteGuideTask(ctx, task.ID, time.Now())
		// Li's own points this month (in the store's zone), and last
		// month's, which do not count.
		month := r.clock.Now().In(zoneOf("Asia/Shanghai"))
		if _, err := s.AwardGuidePoints(ctx, []store.GuidePointsEntry{
			{Key: "t1", Kind: store.GuidePointsTask, GuideID: "li", BrandID: "camellia", StoreID: "ja", Points: 5, Month: month.Format("2006-01"), EarnedAt: month},
			{Key: "b1", Kind: store.GuidePointsBound, GuideID: "li", BrandID: "camellia", StoreID: "ja", Points: 30, Month: month.Format("2006-01"), EarnedAt: month},
			{Key: "old", Kind: store.GuidePointsBound, GuideID: "li", BrandID: "camellia", StoreID: "ja", Points: 1000, Month: month.AddDate(0, -1, -month.Day()+1).Format("2006-01"), EarnedAt: month.AddDate(0, -1, 0)},
		}); err != nil {
			t.Fatal(err)
		}

		li := func(text string) string {
			t.Helper()
			rs := r.say("wecom", adapters.PartyGuide, "li", text)
			if len(rs) != 1 || rs[0].To != nil {
				t.Fatalf("%q: %s", text, texts(rs))
			}
			return rs[0].Text
		}
		for _, tc := range []struct{ text, want, not string }{
			{"查 8000", "陈女士（尾号8000） 等级 gold 积分 200", "陈小姐"},
			{"查陈", "找到 1 位您的会员", "陈小姐"},
			{"find chen", "None of your members matches", ""},
			{"查 0000", "您的会员中没有找到“0000”", ""},
			{"查 12", "请在“查”后写上会员手机号后四位或姓名", ""},
			{"查", "请在“查”后写上", ""},
			{"lookup", `Send "find" with the last 4 digits`, ""},
			{"查 %", "没有找到“%”", "陈女士"},
			{"我的业绩", "绑定会员 1 人", ""},
			{"my stats", "tasks done: 1", ""},
			{"我的业绩", "本月获得导购积分 35", "积分 200"},
			{"my stats", "your points: 35", ""},
			{"order pizza 🍕", "Guide assistant commands", ""},
		} {
			got := li(tc.text)
			if !strings.Contains(got, tc.want) || tc.not != "" && strings.Contains(got, tc.not) || strings.Contains(got, "13800138000") {
				t.Errorf("%q → %q, want %q without %q", tc.text, got, tc.want, tc.not)
			}
		}
		rs := r.say("dingtalk", adapters.PartyGuide, "staff-wu", "查 8000")
		if len(rs) != 1 || !strings.Contains(rs[0].Text, "陈小姐") || strings.Contains(rs[0].Text, "陈女士") {
			t.Errorf("wu's lookup = %s", texts(rs))
		}
	})
}

func TestDigestOncePerGuideAndDay(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		r := newHandoffRig(t, s)
		ctx := context.Background()
		sh, _ := time.LoadLocation("Asia/Shanghai")
		v, _ := s.MemberByIdentity(ctx, "wecom", "wmChen")
		s.CreateGuideTask(ctx, &store.GuideTask{MemberID: v.ID, GuideID: "li", BrandID: "camellia", Title: "今天回访陈女士",
			DueAt: time.Date(2026, 11, 25, 18, 0, 0, 0, sh)})
		at := 9 * time.Hour
		r.clock.t = time.Date(2026, 11, 25, 8, 59, 0, 0, sh)
		out := &recordingOutbox{}
		if n, err := r.d.SendDigests(ctx, at, out); err != nil || n != 0 {
			t.Fatalf("before 09:00: %d, %v", n, err)
		}
		r.clock.t = time.Date(2026, 11, 25, 9, 1, 0, 0, sh)
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.d.SendDigests(ctx, at, out); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if len(out.byKey) != 2 {
			t.Fatalf("digests = %v, want one for li and one for wu", out.byKey)
		}
		d := out.byKey["digest:li:2026-11-25"]
		if d.To == nil || d.To.Channel != "wecom" || d.To.ID != "li" || !strings.Contains(d.Text, "早上好，李娜") ||
			!strings.Contains(d.Text, "今天到期（含逾期） 1 个") || !strings.Contains(d.Text, "今天回访陈女士") {
			t.Errorf("li's digest = %+v", d)
		}
		if w := out.byKey["digest:wu:2026-11-25"]; w.To == nil || w.To.Channel != "dingtalk" || w.To.ID != "staff-wu" {
			t.Errorf("wu's digest = %+v", w)
		}
		if n, _ := r.d.SendDigests(ctx, at, out); n != 0 {
			t.Errorf("a later run queued %d more", n)
		}
		r.clock.t = time.Date(2026, 11, 26, 13, 0, 0, 0, sh)
		if n, _ := r.d.SendDigests(ctx, at, out); n != 0 {
			t.Errorf("past the morning window: %d queued", n)
		}
		r.clock.t = time.Date(2026, 11, 26, 9, 0, 0, 0, sh)
		if n, _ := r.d.SendDigests(ctx, at, out); n != 2 {
			t.Errorf("next morning: %d queued, want 2", n)
		}
	})
}
