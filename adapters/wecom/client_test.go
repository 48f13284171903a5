package wecom_test

import (
	"context"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, *adapters.Inbound) error { return nil }

type nopCursors struct{}

func (nopCursors) Cursor(context.Context, string) (string, error)  { return "", nil }
func (nopCursors) SetCursor(context.Context, string, string) error { return nil }

// newSendClient is a client of cfg for sending: no inbox, tokens cached
// in memory.
func newSendClient(t *testing.T, cfg wecom.Config) *wecom.Client {
	t.Helper()
	c, err := wecom.New(cfg, wecom.Deps{Recorder: nopRecorder{}, Tokens: newMemTokens(), Cursors: nopCursors{}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMessageTaskDelivery: a member reached through their guide gets a
// message task that is pending until the guide confirms it in WeCom.
func TestMessageTaskDelivery(t *testing.T) {
	fake := wecomfake.New(t)
	fake.AddEmployees("li")
	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmChen", FollowUsers: []wecom.FollowUser{{UserID: "li"}}})
	cfg := fake.Config()
	cfg.Brand = "acme"
	c := newSendClient(t, cfg)
	ctx := context.Background()
	m := &adapters.Outbound{IdempotencyKey: "wf:1:recall:1", To: "wmChen", ToParty: adapters.PartyMember, Via: "li", Kind: "text", Text: "店里上新了"}
	r, err := c.Send(ctx, m)
	if err != nil || !r.Pending || r.ExternalID == "" {
		t.Fatalf("Send = %+v, %v; want a pending message task", r, err)
	}
	if tasks := fake.MsgTemplates(); len(tasks) != 1 {
		t.Fatalf("WeCom got %d message tasks", len(tasks))
	}
	if d, _, err := c.CheckDelivery(ctx, m, r.ExternalID); err != nil || d != adapters.DeliveryPending {
		t.Fatalf("before the guide confirms: %s, %v", d, err)
	}
	if !fake.ConfirmMsgTemplate(r.ExternalID) {
		t.Fatal("fake does not know the task")
	}
	if d, _, err := c.CheckDelivery(ctx, m, r.ExternalID); err != nil || d != adapters.DeliveryDelivered {
		t.Fatalf("after the guide confirmed: %s, %v", d, err)
	}
	if _, err := c.Send(ctx, &adapters.Outbound{To: "wmChen", ToParty: adapters.PartyMember, Text: "no route"}); err == nil {
		t.Error("a member with neither a guide nor a kf session was sent to")
	}
}
