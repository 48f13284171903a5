package app

import (
	"context"
	"encoding/json"
	"strconv"
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

// TestWeComWelcomeAndReplySentByTheirHandlersWithRedis: a welcome and a
// bot's answer are sent by the handler of the delivery that made them,
// with no send task of their own: the critical queue ran the recorder's
// batch and the contact event only, WeCom got the welcome (with its code) and the
// customer-service reply as the gateway sends them, each once, and their
// outbox rows are sent after one attempt.
func TestWeComWelcomeAndReplySentByTheirHandlersWithRedis(t *testing.T) {
	s, fake, _ := startWithWeCom(t)
	ins := asynq.NewInspector(s.app.Redis)
	defer ins.Close()
	processed := func(lane string) int {
		info, err := ins.GetQueueInfo(lane)
		if err != nil {
			return 0 // no task ran on it yet
		}
		return info.ProcessedTotal
	}

	// The metrics are the test process's: count from here.
	const inlineSeries, queuedSeries = `scrmgw_outbox_handler_sends_total{channel="wecom",path="inline"}`,
		`scrmgw_outbox_handler_sends_total{channel="wecom",path="queued"}`
	inlineBefore, queuedBefore := metricValue(t, s, inlineSeries), metricValue(t, s, queuedSeries)

	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmChen", Name: "陈女士",
		FollowUsers: []wecom.FollowUser{{UserID: "li", State: "s:sh-1"}}})
	code := fake.IssueWelcomeCode("wmChen")
	ev := wecomfake.AddExternalContact("li", "wmChen", "s:sh-1", code)
	ev.CreateTime = time.Now().Truncate(time.Second)
	if status, body := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 || body != "success" {
		t.Fatalf("contact callback: %d %q", status, body)
	}
	waitFor(t, "the welcome", func() bool { return len(fake.Welcomes()) > 0 })
	waitFor(t, "the contact's task done", func() bool { return processed(queue.Critical) >= 2 })
	time.Sleep(500 * time.Millisecond) // let any other task surface
	if n := processed(queue.Critical); n != 2 {
		t.Errorf("the critical queue ran %d tasks, want 2 (the recorder's batch and the contact event; the welcome has no task of its own)", n)
	}
	welcomes := fake.Welcomes()
	if len(welcomes) != 1 {
		t.Fatalf("%d welcomes, want 1", len(welcomes))
	}
	var body struct {
		WelcomeCode string `json:"welcome_code"`
		Text        struct {
			Content string `json:"content"`
		} `json:"text"`
	}
	if err := json.Unmarshal(welcomes[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.WelcomeCode != code || welcomes[0].ExternalUserID != "wmChen" || !strings.Contains(body.Text.Content, "李娜") ||
		!strings.Contains(body.Text.Content, "静安店") {
		t.Errorf("welcome request = %s", welcomes[0].Body)
	}
	key := "welcome:evt:" + fake.Config().CorpID + ":" + strconv.FormatInt(ev.CreateTime.Unix(), 10) + ":" +
		wecom.ChangeTypeAddExternalContact + ":li:wmChen"
	sentOnce(t, s, key)

	token := fake.QueueKFMessages("wkKF1", wecomfake.KFMessage{MsgID: "kfmsg-points-1", ExternalUserID: "wmKF", MsgType: "text", Text: "我的积分"})
	if status, _ := deliver(t, s.base+wecom.CallbackPath, wecomfake.KfMsgOrEvent{Token: token, OpenKfID: "wkKF1"}.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatalf("kf callback: %d", status)
	}
	waitFor(t, "the kf reply", func() bool { return len(fake.KFSent()) > 0 })
	time.Sleep(300 * time.Millisecond)
	sent := fake.KFSent()
	if len(sent) != 1 || sent[0].ToUser != "wmKF" || sent[0].OpenKfID != "wkKF1" || sent[0].MsgType != "text" ||
		!strings.Contains(sent[0].Text, "积分：0") {
		t.Fatalf("kf replies = %+v", sent)
	}
	sentOnce(t, s, "reply:wecom:kfmsg:kfmsg-points-1:0")
	if got := metricValue(t, s, inlineSeries) - inlineBefore; got != 2 {
		t.Errorf("%s grew by %v, want 2 (the welcome and the reply)", inlineSeries, got)
	}
	if got := metricValue(t, s, queuedSeries) - queuedBefore; got != 0 {
		t.Errorf("%s grew by %v, want 0", queuedSeries, got)
	}
}

// sentOnce checks that the outbox row of key is sent after one attempt.
func sentOnce(t *testing.T, s *started, key string) {
	t.Helper()
	ctx := context.Background()
	row, err := s.app.Store.OutboxByKey(ctx, key)
	if err != nil {
		t.Fatalf("outbox row %s: %v", key, err)
	}
	atts, _ := s.app.Store.SendAttempts(ctx, row.ID)
	if row.State != store.OutboxSent || row.Attempts != 1 || len(atts) != 1 || atts[0].Outcome != "sent" {
		t.Errorf("outbox row %s: %s after %d attempts %+v, want sent after one", key, row.State, row.Attempts, atts)
	}
}

// TestDingTalkReplySentByItsHandlerWithRedis: the guide bot's answer to a
// message on the DingTalk stream reaches the message's session webhook
// from the message's handler: the default queue ran the recorder's batch
// and the message's task only, and the reply was sent once, inline.
func TestDingTalkReplySentByItsHandlerWithRedis(t *testing.T) {
	openapi := dingtalkfake.NewOpenAPI(t)
	gw := dingtalkfake.New(t, dingtalkfake.WithOpenAPI(openapi))
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "dingtalk-inline-admin-token-01"
	cfg.Security.PhoneKey = strings.Repeat("ef", 32)
	cfg.DingTalk = dingtalk.Config{ClientID: gw.ClientID(), ClientSecret: gw.ClientSecret(), Brand: "acme",
		StreamHost: gw.URL(), APIBase: openapi.URL()}
	s := startServe(t, cfg)
	ctx := context.Background()
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/guides", `{"id":"g-wu","store_id":"sh-1","name":"吴敏","dingtalk_userid":"staff-wu"}`},
		{"/api/v1/members", `{"phone":"13900139000","name":"周先生","brand":"acme"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, cfg.AdminToken, req.body); code/100 != 2 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	v, err := s.app.Store.MemberByPhone(ctx, "13900139000", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.app.Store.Bind(ctx, &store.Binding{MemberID: v.ID, BrandID: "acme", GuideID: "g-wu", StoreID: "sh-1", Reason: "manual"}); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := gw.WaitConnected(waitCtx); err != nil {
		t.Fatalf("stream never connected: %v", err)
	}
	ins := asynq.NewInspector(s.app.Redis)
	defer ins.Close()
	processed := func() int {
		info, err := ins.GetQueueInfo(queue.Default)
		if err != nil {
			return 0
		}
		return info.ProcessedTotal
	}
	const inlineSeries, queuedSeries = `scrmgw_outbox_handler_sends_total{channel="dingtalk",path="inline"}`,
		`scrmgw_outbox_handler_sends_total{channel="dingtalk",path="queued"}`
	inlineBefore, queuedBefore, before := metricValue(t, s, inlineSeries), metricValue(t, s, queuedSeries), processed()

	id := gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid-wu", SenderStaffID: "staff-wu", SenderNick: "吴敏",
		Text: &dingtalkfake.Text{Content: "我的会员"}})
	if ack, err := gw.WaitAck(waitCtx, id); err != nil || ack.Code != 200 {
		t.Fatalf("ack = %+v, %v", ack, err)
	}
	waitFor(t, "the reply at the session webhook", func() bool { return len(openapi.Replies()) > 0 })
	waitFor(t, "the message's task done", func() bool { return processed()-before >= 2 })
	time.Sleep(500 * time.Millisecond) // let any other task surface
	replies := openapi.Replies()
	if len(replies) != 1 || !strings.Contains(string(replies[0].Body), "周先生") {
		t.Fatalf("session webhook replies = %d: %s", len(replies), replies)
	}
	if n := processed() - before; n != 2 {
		t.Errorf("the default queue ran %d tasks, want 2 (the recorder's batch and the message; the reply has no task of its own)", n)
	}
	if got := metricValue(t, s, inlineSeries) - inlineBefore; got != 1 {
		t.Errorf("%s grew by %v, want 1", inlineSeries, got)
	}
	if got := metricValue(t, s, queuedSeries) - queuedBefore; got != 0 {
		t.Errorf("%s grew by %v, want 0", queuedSeries, got)
	}
}
