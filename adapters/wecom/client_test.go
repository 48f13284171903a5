package wecom_test

import (
	"context"
	"errors"
	"strings"
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

// TestMessageTaskWithdraw: a message task the guide has not confirmed is
// stopped with cancel_groupmsg_send (its msgid in the body) and then
// sends nothing when the guide confirms; one confirmed before stays
// delivered; a send with no task has nothing to stop, and WeCom's refusal
// of an unknown msgid is the caller's error.
func TestMessageTaskWithdraw(t *testing.T) {
	fake := wecomfake.New(t)
	fake.AddEmployees("li")
	for _, id := range []string{"wmChen", "wmZhao"} {
		fake.AddContact(wecomfake.Contact{ExternalUserID: id, FollowUsers: []wecom.FollowUser{{UserID: "li"}}})
	}
	cfg := fake.Config()
	cfg.Brand = "acme"
	c := newSendClient(t, cfg)
	ctx := context.Background()
	chen := &adapters.Outbound{IdempotencyKey: "wf:1:live:1", To: "wmChen", ToParty: adapters.PartyMember, Via: "li", Kind: "text", Text: "周六直播"}
	zhao := &adapters.Outbound{IdempotencyKey: "wf:2:live:1", To: "wmZhao", ToParty: adapters.PartyMember, Via: "li", Kind: "text", Text: "周六直播"}
	rc, err := c.Send(ctx, chen)
	if err != nil {
		t.Fatal(err)
	}
	rz, err := c.Send(ctx, zhao)
	if err != nil {
		t.Fatal(err)
	}
	fake.ConfirmMsgTemplate(rz.ExternalID)
	for _, w := range []struct {
		m  *adapters.Outbound
		id string
	}{{chen, rc.ExternalID}, {zhao, rz.ExternalID}} {
		if err := c.Withdraw(ctx, w.m, w.id); err != nil {
			t.Fatalf("withdrawing %s: %v", w.id, err)
		}
	}
	if got, want := fake.MsgTemplateStops(), []string{rc.ExternalID, rz.ExternalID}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("cancel_groupmsg_send msgids %v, want %v", got, want)
	}
	fake.ConfirmMsgTemplate(rc.ExternalID) // too late: stopped
	if d, _, err := c.CheckDelivery(ctx, chen, rc.ExternalID); err != nil || d != adapters.DeliveryPending {
		t.Errorf("a stopped task confirmed afterwards: %s, %v; want it still not sent", d, err)
	}
	if d, _, err := c.CheckDelivery(ctx, zhao, rz.ExternalID); err != nil || d != adapters.DeliveryDelivered {
		t.Errorf("a task sent before it was stopped: %s, %v; want delivered", d, err)
	}
	n := fake.CallCount(wecomfake.PathCancelGroupMsgSend)
	if err := c.Withdraw(ctx, &adapters.Outbound{To: "wmChen", Kind: "text", Text: "kf"}, ""); err != nil || fake.CallCount(wecomfake.PathCancelGroupMsgSend) != n {
		t.Errorf("a send without a task withdrew: %v", err)
	}
	var apiErr *adapters.APIError
	if err := c.Withdraw(ctx, chen, "msg-unknown"); !errors.As(err, &apiErr) || apiErr.Code != wecomfake.CodeInvalidMsgID || adapters.Retryable(err) {
		t.Errorf("an unknown msgid: %v, want WeCom's refusal 41047, not retried", err)
	}
}
