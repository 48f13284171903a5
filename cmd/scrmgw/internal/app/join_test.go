package app

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store"
)

// TestWeComUnknownSenderJoinsWithRedis: a WeCom customer-service customer
// scrmgw has never seen says "你好". They become a member of the
// channel's brand with their WeCom identity and no guide, member.joined is
// logged once (the callback and the message delivered twice change
// nothing) and starts the brand's member.joined workflow, their first
// message is logged too, and the bot's help reaches the WeCom fake once.
func TestWeComUnknownSenderJoinsWithRedis(t *testing.T) {
	fake := wecomfake.New(t)
	cfg := weComConfig(t, fake, "join-e2e-admin-token-00001")
	s := startServe(t, cfg)
	tok := cfg.AdminToken
	if code, body := request(t, "POST", s.base+"/api/v1/brands", tok, `{"id":"acme","name":"ACME"}`); code != 201 {
		t.Fatalf("seeding the brand: %d %s", code, body)
	}
	wf := "name: hello-new\ntrigger:\n  event: member.joined\nentry:\n  brand: acme\n  re_entry: never\nsend_rules:\n  quiet_hours: none\nsteps:\n  - tag: new-on-kf\n"
	if code, body := putWorkflow(t, s, tok, "acme", "hello-new", wf); code/100 != 2 {
		t.Fatalf("PUT workflow: %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/workflows/hello-new/enable?brand=acme", tok, ""); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}

	ctx := context.Background()
	hello := wecomfake.KFText("wmHello", "你好")
	hello.MsgID = "kf-msg-hello-1"
	for range 2 { // WeCom delivers the message, and the callback, again
		token := fake.QueueKFMessages("wkKF1", hello)
		notify := wecomfake.KfMsgOrEvent{Token: token, OpenKfID: "wkKF1"}
		for range 2 {
			if status, _ := deliver(t, s.base+wecom.CallbackPath, notify.XML(), wecomfake.Callback{}); status != 200 {
				t.Fatalf("kf callback: %d", status)
			}
		}
	}
	waitFor(t, "the bot's reply", func() bool { return len(fake.KFSent()) >= 1 })
	var v *store.MemberView
	var err error
	waitFor(t, "the member's workflow run", func() bool {
		v, err = s.app.Store.MemberByIdentity(ctx, "wecom", "wmHello")
		if err != nil {
			return false
		}
		runs, _ := s.app.Store.Runs(ctx, store.RunFilter{MemberID: v.ID})
		return len(runs) == 1
	})
	time.Sleep(500 * time.Millisecond) // let a duplicate surface

	if len(v.Memberships) != 1 || v.Memberships[0].BrandID != "acme" || len(v.Bindings) != 0 {
		t.Errorf("memberships %+v bindings %+v, want acme and no guide", v.Memberships, v.Bindings)
	}
	joined, err := s.app.Store.Events(ctx, store.EventFilter{MemberID: v.ID, Type: "member.joined"})
	if err != nil || len(joined) != 1 || joined[0].BrandID != "acme" || joined[0].Source != "wecom" ||
		joined[0].SourceID != "bot-joined:acme:wmHello" ||
		joined[0].Payload != `{"message_id":"kfmsg:kf-msg-hello-1","new_member":"true","via":"bot_message"}` {
		t.Errorf("member.joined = %+v, %v", joined, err)
	}
	got, err := s.app.Store.Events(ctx, store.EventFilter{MemberID: v.ID, Type: "message.received"})
	if err != nil || len(got) != 1 || got[0].SourceID != "kfmsg:kf-msg-hello-1" || !strings.Contains(got[0].Payload, "你好") {
		t.Errorf("message.received = %+v, %v", got, err)
	}
	runs, _ := s.app.Store.Runs(ctx, store.RunFilter{MemberID: v.ID})
	if len(runs) != 1 || runs[0].Workflow != "hello-new" || runs[0].EventID == nil || *runs[0].EventID != joined[0].ID {
		t.Errorf("runs = %+v, want one of hello-new started by the join", runs)
	}

	sent := fake.KFSent()
	if len(sent) != 1 {
		t.Fatalf("%d kf messages, want 1", len(sent))
	}
	var body struct {
		ToUser   string `json:"touser"`
		OpenKfID string `json:"open_kfid"`
		MsgType  string `json:"msgtype"`
		Text     struct {
			Content string `json:"content"`
		} `json:"text"`
	}
	if err := json.Unmarshal(sent[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.ToUser != "wmHello" || body.OpenKfID != "wkKF1" || body.MsgType != "text" || !strings.HasPrefix(body.Text.Content, "您好！我是ACME的小助手") {
		t.Errorf("kf reply = %s, want text to wmHello via wkKF1", sent[0].Body)
	}
}
