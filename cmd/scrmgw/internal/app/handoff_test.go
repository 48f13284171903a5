package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// handoffWeCom runs the gateway with WeCom on a fake, guide g-li (WeCom
// userid li) of store sh-1, and member 陈女士 (kf customer wmKF) bound to
// her; idle is bots.handoff_idle.
func handoffWeCom(t *testing.T, idle time.Duration) (*started, *wecomfake.Server) {
	t.Helper()
	fake := wecomfake.New(t)
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "handoff-e2e-admin-token-01"
	cfg.Security.PhoneKey = strings.Repeat("cd", 32)
	cfg.WeCom = fake.Config()
	cfg.WeCom.Brand = "acme"
	cfg.Bots.HandoffIdle = idle
	s := startServe(t, cfg)
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, cfg.AdminToken, req.body); code != 201 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	fake.AddEmployees("li")
	ctx := context.Background()
	m, _, err := s.app.Store.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Name: "陈女士", BrandID: "acme",
		Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmKF"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.app.Store.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: "acme", GuideID: "g-li", StoreID: "sh-1", Reason: "state"}); err != nil {
		t.Fatal(err)
	}
	return s, fake
}

// kfSay delivers member messages through WeCom customer service: the
// kf_msg_or_event callback, then sync_msg.
func kfSay(t *testing.T, s *started, fake *wecomfake.Server, texts ...string) {
	t.Helper()
	var msgs []wecomfake.KFMessage
	for _, text := range texts {
		msgs = append(msgs, wecomfake.KFText("wmKF", text))
	}
	notify := wecomfake.KfMsgOrEvent{Token: fake.QueueKFMessages("wkKF1", msgs...), OpenKfID: "wkKF1"}
	if status, _ := deliver(t, s.base+wecom.CallbackPath, notify.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatalf("kf callback: %d", status)
	}
}

// guideSay delivers a guide's message to the WeCom app.
func guideSay(t *testing.T, s *started, fake *wecomfake.Server, text string) {
	t.Helper()
	if status, _ := deliver(t, s.base+wecom.CallbackPath, wecomfake.EmployeeText(fake.AgentID(), "li", text).XML(), wecomfake.Callback{}); status != 200 {
		t.Fatalf("app callback: %d", status)
	}
}

// waitKF waits for the n-th kf message and returns it.
func waitKF(t *testing.T, fake *wecomfake.Server, n int, want string) wecomfake.KFSendRequest {
	t.Helper()
	waitFor(t, fmt.Sprintf("kf message %d (%q)", n, want), func() bool { return len(fake.KFSent()) >= n })
	m := fake.KFSent()[n-1]
	if m.ToUser != "wmKF" || m.OpenKfID != "wkKF1" || !strings.Contains(m.Text, want) {
		t.Fatalf("kf message %d = to %s via %s: %q, want %q", n, m.ToUser, m.OpenKfID, m.Text, want)
	}
	return m
}

// waitApp waits for the n-th app message and returns it.
func waitApp(t *testing.T, fake *wecomfake.Server, n int, want string) wecomfake.AppMessageRequest {
	t.Helper()
	waitFor(t, fmt.Sprintf("app message %d (%q)", n, want), func() bool { return len(fake.AppMessages()) >= n })
	m := fake.AppMessages()[n-1]
	if len(m.ToUser) != 1 || m.ToUser[0] != "li" || !strings.Contains(m.Content, want) {
		t.Fatalf("app message %d = to %v: %q, want %q", n, m.ToUser, m.Content, want)
	}
	return m
}

// TestWeComHandoffWithRedis: a member on WeCom customer service asks for
// a person; the guide gets the message with context as a WeCom app
// message; the member's next message goes to the guide, the guide's
// reply to the member's kf session; the guide ends it and both are told.
func TestWeComHandoffWithRedis(t *testing.T) {
	s, fake := handoffWeCom(t, 30*time.Minute)
	kfSay(t, s, fake, "转人工")
	waitKF(t, fake, 1, "已为您转接专属导购 李娜（静安店）")
	req := waitApp(t, fake, 1, "【转人工 #")
	for _, w := range []string{"陈女士", "尾号8000", "静安店", "转人工"} {
		if !strings.Contains(req.Content, w) {
			t.Errorf("guide's request lacks %q: %s", w, req.Content)
		}
	}
	if strings.Contains(req.Content, "13800138000") {
		t.Errorf("guide's request shows the full phone: %s", req.Content)
	}
	kfSay(t, s, fake, "这款有小样吗？")
	waitApp(t, fake, 2, "陈女士：这款有小样吗？")
	guideSay(t, s, fake, "有的，给您留一份")
	waitKF(t, fake, 2, "李娜：有的，给您留一份")
	guideSay(t, s, fake, "结束")
	waitKF(t, fake, 3, "对话已结束")
	waitApp(t, fake, 3, "与陈女士的对话已结束")
	// The bot answers the member again.
	kfSay(t, s, fake, "我的导购")
	waitKF(t, fake, 4, "您的专属导购是 李娜")
	time.Sleep(300 * time.Millisecond) // let duplicates surface
	if n, m := len(fake.KFSent()), len(fake.AppMessages()); n != 4 || m != 3 {
		t.Errorf("%d kf and %d app messages, want 4 and 3", n, m)
	}
}

// TestWeComHandoffIdleWithRedis: a handoff with no message for
// bots.handoff_idle ends on the sweep, and both sides are told once.
func TestWeComHandoffIdleWithRedis(t *testing.T) {
	s, fake := handoffWeCom(t, time.Second)
	kfSay(t, s, fake, "人工客服")
	waitKF(t, fake, 1, "已为您转接")
	waitApp(t, fake, 1, "【转人工 #")
	time.Sleep(1500 * time.Millisecond)
	for range 2 { // two sweeps (two replicas' schedulers)
		if _, err := s.app.Queue.Enqueue(asynq.NewTask(TypeHandoffSweep, nil), asynq.Queue(queue.Low)); err != nil {
			t.Fatal(err)
		}
	}
	waitKF(t, fake, 2, "由于长时间没有新消息")
	waitApp(t, fake, 2, "长时间无新消息")
	time.Sleep(500 * time.Millisecond)
	if n, m := len(fake.KFSent()), len(fake.AppMessages()); n != 2 || m != 2 {
		t.Errorf("%d kf and %d app messages, want 2 and 2", n, m)
	}
}

// TestWeComGuideDigestWithRedis: the digest task, run by several workers
// in the digest's hour, pushes the guide's digest once.
func TestWeComGuideDigestWithRedis(t *testing.T) {
	fake := wecomfake.New(t)
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "digest-e2e-admin-token-0123"
	cfg.Security.PhoneKey = strings.Repeat("cd", 32)
	cfg.WeCom = fake.Config()
	cfg.WeCom.Brand = "acme"
	sh, _ := time.LoadLocation("Asia/Shanghai")
	cfg.Bots.DigestTime = time.Now().In(sh).Add(-time.Minute).Format("15:04") // due now
	s := startServe(t, cfg)
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47,"time_zone":"Asia/Shanghai"}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, cfg.AdminToken, req.body); code != 201 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	fake.AddEmployees("li")
	for range 3 {
		if _, err := s.app.Queue.Enqueue(asynq.NewTask(TypeGuideDigest, nil), asynq.Queue(queue.Low)); err != nil {
			t.Fatal(err)
		}
	}
	waitApp(t, fake, 1, "早上好，李娜")
	time.Sleep(time.Second)
	if n := len(fake.AppMessages()); n != 1 {
		t.Errorf("%d digests sent, want 1", n)
	}
}

// dingTalkRig runs the gateway with DingTalk on fakes, guide g-wu
// (staff-wu) of store sh-1 and member 周先生 (an outside DingTalk user)
// bound to her.
type dingTalkRig struct {
	s       *started
	gw      *dingtalkfake.Gateway
	openapi *dingtalkfake.OpenAPI
}

const dingTalkMember = "$:LWCP_v1:$zhou"

func handoffDingTalk(t *testing.T, idle time.Duration) *dingTalkRig {
	t.Helper()
	openapi := dingtalkfake.NewOpenAPI(t)
	gw := dingtalkfake.New(t, dingtalkfake.WithOpenAPI(openapi))
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "dingtalk-handoff-admin-token"
	cfg.Security.PhoneKey = strings.Repeat("ef", 32)
	cfg.DingTalk = dingtalk.Config{ClientID: gw.ClientID(), ClientSecret: gw.ClientSecret(), Brand: "acme",
		StreamHost: gw.URL(), APIBase: openapi.URL()}
	cfg.Bots.HandoffIdle = idle
	s := startServe(t, cfg)
	ctx := context.Background()
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/guides", `{"id":"g-wu","store_id":"sh-1","name":"吴敏","dingtalk_userid":"staff-wu"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, cfg.AdminToken, req.body); code/100 != 2 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	m, _, err := s.app.Store.EnsureMember(ctx, store.NewMember{Phone: "13900139000", Name: "周先生", BrandID: "acme",
		Identities: []store.Identity{{Channel: "dingtalk", ExternalID: dingTalkMember}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.app.Store.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: "acme", GuideID: "g-wu", StoreID: "sh-1", Reason: "manual"}); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := gw.WaitConnected(waitCtx); err != nil {
		t.Fatalf("stream never connected: %v", err)
	}
	return &dingTalkRig{s: s, gw: gw, openapi: openapi}
}

func (r *dingTalkRig) member(text string) {
	r.gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid-zhou", SenderID: dingTalkMember, SenderNick: "周先生",
		Text: &dingtalkfake.Text{Content: text}})
}

func (r *dingTalkRig) guide(text string) {
	r.gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid-wu", SenderStaffID: "staff-wu", SenderNick: "吴敏",
		Text: &dingtalkfake.Text{Content: text}})
}

// reply waits for the n-th session webhook reply and checks where it went
// and what it says.
func (r *dingTalkRig) reply(t *testing.T, n int, conversation, want string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("webhook reply %d (%q)", n, want), func() bool { return len(r.openapi.Replies()) >= n })
	got := r.openapi.Replies()[n-1]
	var body struct {
		Text struct{ Content string } `json:"text"`
	}
	json.Unmarshal(got.Body, &body)
	if got.ConversationID != conversation || !strings.Contains(body.Text.Content, want) {
		t.Fatalf("webhook reply %d = %s %s, want %s %q", n, got.ConversationID, got.Body, conversation, want)
	}
}

// proactive waits for the n-th robot message sent to the guide.
func (r *dingTalkRig) proactive(t *testing.T, n int, want string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("robot message %d (%q)", n, want), func() bool { return len(r.openapi.Sent()) >= n })
	m := r.openapi.Sent()[n-1]
	if len(m.UserIDs) != 1 || m.UserIDs[0] != "staff-wu" || !strings.Contains(m.MsgParam, want) {
		t.Fatalf("robot message %d = %+v, want to staff-wu %q", n, m, want)
	}
}

// TestDingTalkHandoffWithRedis: a member in a DingTalk robot chat asks
// for a person; the guide (DingTalk staff) gets it as a robot message; the
// guide's reply goes to the member's session webhook; "end" ends it.
func TestDingTalkHandoffWithRedis(t *testing.T) {
	r := handoffDingTalk(t, 30*time.Minute)
	openapi := r.openapi
	member, guide := r.member, r.guide
	reply := func(n int, conversation, want string) { t.Helper(); r.reply(t, n, conversation, want) }
	proactive := func(n int, want string) { t.Helper(); r.proactive(t, n, want) }
	member("talk to a person")
	reply(1, "cid-zhou", "passed you to your personal shopper 吴敏")
	proactive(1, "周先生")
	member("有现货吗")
	proactive(2, "周先生：有现货吗")
	guide("有的，今天可以来取")
	reply(2, "cid-zhou", "吴敏: 有的，今天可以来取") // the member wrote English
	guide("结束")
	waitFor(t, "both end notices", func() bool { return len(openapi.Replies()) >= 4 })
	var ended, closed bool
	for _, r := range openapi.Replies()[2:4] {
		ended = ended || r.ConversationID == "cid-zhou" && strings.Contains(string(r.Body), "has ended")
		closed = closed || r.ConversationID == "cid-wu" && strings.Contains(string(r.Body), "对话已结束")
	}
	if !ended || !closed {
		t.Errorf("end notices = %v", openapi.Replies()[2:4])
	}
	// The guide bot answers the guide again: a lookup of her own member.
	guide("查 9000")
	reply(5, "cid-wu", "周先生（尾号9000）")
	guide("查 12")
	reply(6, "cid-wu", "请在“查”后写上")
	time.Sleep(500 * time.Millisecond)
	if n, p := len(openapi.Replies()), len(openapi.Sent()); n != 6 || p != 2 {
		t.Errorf("%d webhook replies and %d robot messages, want 6 and 2", n, p)
	}
}

// TestDingTalkHandoffIdleWithRedis: a handoff idle past bots.handoff_idle
// ends when the member writes again: the member is told and answered by
// the bot, the guide is told.
func TestDingTalkHandoffIdleWithRedis(t *testing.T) {
	r := handoffDingTalk(t, time.Second)
	r.member("转人工")
	r.reply(t, 1, "cid-zhou", "已为您转接专属导购 吴敏")
	r.proactive(t, 1, "【转人工 #")
	time.Sleep(1500 * time.Millisecond)
	r.member("我的导购")
	waitFor(t, "the end notice and the answer", func() bool { return len(r.openapi.Replies()) >= 3 })
	r.proactive(t, 2, "长时间无新消息")
	var all []string
	for _, rep := range r.openapi.Replies()[1:3] {
		all = append(all, string(rep.Body))
	}
	joined := strings.Join(all, "\n")
	if !strings.Contains(joined, "由于长时间没有新消息") || !strings.Contains(joined, "您的专属导购是 吴敏") {
		t.Errorf("member got %s", joined)
	}
	time.Sleep(500 * time.Millisecond)
	if n, p := len(r.openapi.Replies()), len(r.openapi.Sent()); n != 3 || p != 2 {
		t.Errorf("%d webhook replies and %d robot messages, want 3 and 2", n, p)
	}
}
