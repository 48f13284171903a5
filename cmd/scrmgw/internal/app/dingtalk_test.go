package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestDingTalkGuideBotWithRedis: a guide's "my members" pushed by the
// DingTalk stream gateway (twice, as a redelivery) reaches the guide bot
// once, and the reply arrives at the message's session webhook once.
func TestDingTalkGuideBotWithRedis(t *testing.T) {
	openapi := dingtalkfake.NewOpenAPI(t)
	gw := dingtalkfake.New(t, dingtalkfake.WithOpenAPI(openapi))
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "dingtalk-e2e-admin-token-01"
	cfg.Security.PhoneKey = strings.Repeat("ef", 32)
	cfg.DingTalk = dingtalk.Config{ClientID: gw.ClientID(), ClientSecret: gw.ClientSecret(), Brand: "acme",
		StreamHost: gw.URL(), APIBase: openapi.URL()}
	s := startServe(t, cfg)
	ctx := context.Background()
	tok := cfg.AdminToken
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/guides", `{"id":"g-wu","store_id":"sh-1","name":"吴敏","dingtalk_userid":"staff-wu"}`},
		{"/api/v1/members", `{"phone":"13900139000","name":"周先生","brand":"acme"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code/100 != 2 {
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
	if code, body := request(t, "GET", s.base+"/readyz", "", ""); code != 200 || !strings.Contains(body, `"dingtalk":"ok"`) {
		t.Errorf("/readyz with the stream up = %d %s", code, body)
	}
	id := gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid-wu", SenderStaffID: "staff-wu", SenderNick: "吴敏",
		Text: &dingtalkfake.Text{Content: "我的会员"}})
	ack, err := gw.WaitAck(waitCtx, id)
	if err != nil || ack.Code != 200 {
		t.Fatalf("ack = %+v, %v", ack, err)
	}
	if err := gw.Redeliver(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reply at the session webhook", func() bool { return len(openapi.Replies()) > 0 })
	time.Sleep(500 * time.Millisecond) // let a duplicate surface
	replies := openapi.Replies()
	if len(replies) != 1 || !strings.Contains(string(replies[0].Body), "周先生") {
		t.Fatalf("session webhook replies = %d: %s", len(replies), replies)
	}
}
