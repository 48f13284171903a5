package dingtalk

import (
	"context"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
)

// TestInstanceKeys: an app configured as instance cn records what it
// receives on channel dingtalk:cn, names its config keys
// dingtalk.instances.cn.*, and caches its token under its app's key, as
// the default instance does.
func TestInstanceKeys(t *testing.T) {
	env := newEnv(t, nil, func(c *Config, d *Deps) { c.Brand, d.Instance = "acme", "cn" })
	env.run(t)
	if env.c.Name() != "dingtalk:cn" {
		t.Errorf("Name() = %q, want dingtalk:cn", env.c.Name())
	}
	bot := env.gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid1==", SenderStaffID: "m1", Text: &dingtalkfake.Text{Content: "hi"}})
	waitAck(t, env.gw, bot)
	ev := env.gw.PushEvent(dingtalkfake.EventUserLeaveOrg, map[string]any{"timeStamp": "1700000000000", "userId": []string{"u3"}})
	waitAck(t, env.gw, ev)
	got := env.rec.Recorded()
	if len(got) != 2 {
		t.Fatalf("recorded %d, want 2", len(got))
	}
	for _, in := range got {
		if in.Channel != "dingtalk:cn" || in.Brand != "acme" {
			t.Errorf("%s %s recorded on %q for %q, want dingtalk:cn for acme", in.Kind, in.Event, in.Channel, in.Brand)
		}
	}
	if _, err := env.c.Send(context.Background(), &adapters.Outbound{IdempotencyKey: "k", To: "m1", ToParty: adapters.PartyMember, Kind: "text", Text: "hi"}); err != nil {
		t.Fatalf("send: %v", err)
	}
	env.tokens.mu.Lock()
	_, cached := env.tokens.m["dingtalk:token:"+env.gw.ClientID()]
	env.tokens.mu.Unlock()
	if !cached {
		t.Errorf("no token cached under dingtalk:token:%s", env.gw.ClientID())
	}

	_, err := New(Config{ClientID: "x"}, Deps{Instance: "cn", Recorder: env.rec, Tokens: env.tokens, Guides: guidesNamed()})
	if err == nil || !strings.Contains(err.Error(), "dingtalk.instances.cn.client_secret: required") {
		t.Errorf("error %v, want one naming dingtalk.instances.cn.client_secret", err)
	}
}
