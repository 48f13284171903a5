package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// reconChannel is a channel that can tell what it received: have holds
// the recipients it has a message for, answers the Reconcile error per
// recipient.
type reconChannel struct {
	taskChannel
	mu      sync.Mutex
	have    map[string]string // recipient → external id
	answers map[string]error
	asked   []string
}

func (c *reconChannel) Name() string { return "recon" }

func (c *reconChannel) Reconcile(_ context.Context, m *adapters.Outbound, claimedAt time.Time) (*adapters.Receipt, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, m.To)
	if err := c.answers[m.To]; err != nil {
		return nil, false, err
	}
	if ext, ok := c.have[m.To]; ok {
		return &adapters.Receipt{ExternalID: ext, Pending: true}, true, nil
	}
	return nil, false, nil
}

// TestRecoverLostSends: sends claimed by a handler that died are settled
// by what the channel says: sent when it has the message, sent again (once)
// when it has not, left for the next sweep when it cannot be asked, and
// failed for an operator when it cannot tell, or cannot be asked at all.
// A claim younger than the cutoff is left to its handler.
func TestRecoverLostSends(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		recon := &reconChannel{have: map[string]string{"wmSent": "msgSent"},
			answers: map[string]error{"wmBusy": fmt.Errorf("listing: %w", adapters.ErrRateLimited),
				"wmUnknown": fmt.Errorf("cannot list: %w", adapters.ErrOutcomeUnknown)}}
		plain := &fakeChannel{}
		reg := adapters.NewRegistry()
		reg.Register(recon)
		reg.Register(plain)
		q := queuetest.New()
		snd := NewSender(s, reg, q, discard)
		rows := map[string]*store.OutboxMessage{}
		claim := func(channel, to string) {
			t.Helper()
			row, err := snd.Send(ctx, channel, &adapters.Outbound{IdempotencyKey: "nudge:" + to, To: to, Via: "li", Text: "回来看看"}, Meta{})
			if err != nil {
				t.Fatal(err)
			}
			// Claimed by a handler that dies before sending or before
			// recording the answer.
			if _, ok, err := s.ClaimOutbox(ctx, row.ID); err != nil || !ok {
				t.Fatalf("claiming %s: %v %v", to, ok, err)
			}
			rows[to] = row
		}
		for _, to := range []string{"wmSent", "wmNotSent", "wmUnknown", "wmBusy", "wmAfterBusy"} {
			claim("recon", to)
		}
		claim("fake", "wmPlain")
		q.Drain()
		time.Sleep(5 * time.Millisecond)
		cutoff := time.Now()
		time.Sleep(5 * time.Millisecond)
		claim("recon", "wmYoung") // claimed after the cutoff: its handler's
		q.Drain()

		rec, err := snd.recoverBefore(ctx, cutoff)
		if !errors.Is(err, adapters.ErrRateLimited) {
			t.Errorf("err = %v, want the temporary failure of wmBusy", err)
		}
		if rec != (Recovery{Sent: 1, Resent: 1, Failed: 2}) {
			t.Errorf("recovery = %+v, want 1 sent, 1 resent, 2 failed", rec)
		}
		state := func(to string) *store.OutboxMessage {
			t.Helper()
			got, err := s.Outbox(ctx, rows[to].ID)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		if got := state("wmSent"); got.State != store.OutboxSent || got.ExternalID != "msgSent" || got.Delivery != "pending" {
			t.Errorf("found at the channel: %s %q %q", got.State, got.ExternalID, got.Delivery)
		}
		for _, to := range []string{"wmBusy", "wmAfterBusy"} { // not asked again once it failed
			if got := state(to); got.State != store.OutboxSending {
				t.Errorf("%s, channel not answering: %s, want still sending (the next sweep asks again)", to, got.State)
			}
		}
		if slices.Contains(recon.asked, "wmAfterBusy") {
			t.Error("the channel was asked again in the same sweep after it failed")
		}
		if got := state("wmYoung"); got.State != store.OutboxSending {
			t.Errorf("young claim: %s, want left to its handler", got.State)
		}
		for _, to := range []string{"wmUnknown", "wmPlain"} {
			if got := state(to); got.State != store.OutboxFailed || !strings.Contains(got.LastError, "cannot tell whether it went out") {
				t.Errorf("%s: %s %q, want failed with the reason", to, got.State, got.LastError)
			}
		}
		if len(plain.sent) != 0 {
			t.Errorf("a channel that cannot tell got %d sends again", len(plain.sent))
		}
		// The one the channel does not have is queued and sent once; the
		// found one gets a delivery check.
		var sends, checks int
		for _, task := range q.Drain() {
			switch task.Type() {
			case TypeSend:
				sends++
				for range 2 { // and a duplicate delivery of the task
					if err := snd.SendTask(ctx, task); err != nil {
						t.Fatal(err)
					}
				}
			case TypeCheckDelivery:
				checks++
			}
		}
		if sends != 1 || checks != 1 {
			t.Errorf("queued %d sends and %d delivery checks, want 1 and 1", sends, checks)
		}
		if len(recon.sent) != 1 || recon.sent[0].To != "wmNotSent" {
			t.Errorf("sent again: %v, want wmNotSent once", recon.sent)
		}
		if got := state("wmNotSent"); got.State != store.OutboxSent || got.Attempts != 2 {
			t.Errorf("resent row: %s after %d claims", got.State, got.Attempts)
		}
		outcomes := map[string]string{}
		for to, row := range rows {
			as, _ := s.SendAttempts(ctx, row.ID)
			for _, a := range as {
				outcomes[to] += a.Outcome + " "
			}
		}
		want := map[string]string{"wmSent": "reconciled ", "wmNotSent": "resend sent ", "wmUnknown": "unknown ", "wmPlain": "unknown "}
		for to, w := range want {
			if outcomes[to] != w {
				t.Errorf("%s attempts: %q, want %q", to, outcomes[to], w)
			}
		}

		// Once the channel answers, the next sweep settles the rest; a
		// sweep after that has nothing to do.
		recon.answers = nil
		if rec, err := snd.recoverBefore(ctx, cutoff); err != nil || rec != (Recovery{Resent: 2}) {
			t.Errorf("second sweep: %+v, %v; want wmBusy and wmAfterBusy resent", rec, err)
		}
		if rec, err := snd.recoverBefore(ctx, cutoff); err != nil || rec != (Recovery{}) {
			t.Errorf("third sweep: %+v, %v; want nothing", rec, err)
		}
		// Recover never takes a claim younger than MinLease.
		if rec, err := snd.Recover(ctx, time.Millisecond); err != nil || rec != (Recovery{}) {
			t.Errorf("Recover with a tiny lease: %+v, %v; want nothing (the lease is at least %s)", rec, err, MinLease)
		}
	})
}

// doubtChannel fails its first send with an outcome it cannot know, after
// "the platform" took the message.
type doubtChannel struct {
	reconChannel
	doubted bool
}

func (c *doubtChannel) Name() string { return "doubt" }

func (c *doubtChannel) Send(ctx context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	c.mu.Lock()
	first := !c.doubted
	c.doubted = true
	c.mu.Unlock()
	if first {
		c.mu.Lock()
		c.have[m.To] = "msgTaken"
		c.mu.Unlock()
		return nil, fmt.Errorf("posting: timeout: %w: %w", adapters.ErrTemporary, adapters.ErrOutcomeUnknown)
	}
	return c.reconChannel.Send(ctx, m)
}

// TestSendInDoubt: a send whose answer was lost is neither retried nor
// failed: the row stays claimed until its lease is over, and Recover then
// finds it at the channel. A channel that cannot reconcile retries as
// before.
func TestSendInDoubt(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ch := &doubtChannel{reconChannel: reconChannel{have: map[string]string{}}}
		reg := adapters.NewRegistry()
		reg.Register(ch)
		q := queuetest.New()
		snd := NewSender(s, reg, q, discard)
		row, err := snd.Send(ctx, "doubt", &adapters.Outbound{IdempotencyKey: "nudge:1", To: "wm1", Via: "li", Text: "回来看看"}, Meta{})
		if err != nil {
			t.Fatal(err)
		}
		task := q.Drain()[0]
		if err := snd.SendTask(ctx, task); err != nil {
			t.Fatalf("SendTask in doubt = %v, want nil (no retry)", err)
		}
		got, _ := s.Outbox(ctx, row.ID)
		if got.State != store.OutboxSending {
			t.Fatalf("row in doubt is %s, want still sending", got.State)
		}
		if as, _ := s.SendAttempts(ctx, row.ID); len(as) != 1 || as[0].Outcome != OutcomeInDoubt {
			t.Errorf("attempts = %+v, want one in_doubt", as)
		}
		// A redelivered task does nothing; the lease is not over.
		if err := snd.SendTask(ctx, task); err != nil {
			t.Fatal(err)
		}
		if rec, _ := snd.recoverBefore(ctx, got.UpdatedAt); rec != (Recovery{}) {
			t.Errorf("recovered %+v before the lease was over", rec)
		}
		rec, err := snd.recoverBefore(ctx, time.Now().Add(time.Second))
		if err != nil || rec != (Recovery{Sent: 1}) {
			t.Fatalf("recovery = %+v, %v; want it found at the channel", rec, err)
		}
		got, _ = s.Outbox(ctx, row.ID)
		if got.State != store.OutboxSent || got.ExternalID != "msgTaken" {
			t.Errorf("after recovery: %s %q", got.State, got.ExternalID)
		}
		if len(ch.sent) != 0 {
			t.Errorf("sent again %d times", len(ch.sent))
		}

		// Without Reconcile the channel's error is an ordinary retry.
		plain := &fakeChannel{fails: []error{fmt.Errorf("timeout: %w: %w", adapters.ErrTemporary, adapters.ErrOutcomeUnknown)}}
		reg.Register(plain)
		if checks := q.Drain(); len(checks) != 1 || checks[0].Type() != TypeCheckDelivery {
			t.Errorf("queued after recovery: %v, want one delivery check", checks)
		}
		row2, _ := snd.Send(ctx, "fake", &adapters.Outbound{IdempotencyKey: "nudge:2", To: "wm2", Text: "x"}, Meta{})
		if err := snd.SendTask(ctx, q.Drain()[0]); !errors.Is(err, adapters.ErrTemporary) {
			t.Errorf("plain channel: %v, want a retry", err)
		}
		if got, _ := s.Outbox(ctx, row2.ID); got.State != store.OutboxPending {
			t.Errorf("plain channel's row is %s, want pending for the retry", got.State)
		}
	})
}
