package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// recOutcomes records what the Sender tells the engine.
type recOutcomes struct {
	mu          sync.Mutex
	settled     []string
	delivered   []string
	undelivered []string
	fail        error
}

func (r *recOutcomes) SendSettled(_ context.Context, key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.settled = append(r.settled, key)
	return nil
}

func (r *recOutcomes) Delivered(_ context.Context, key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delivered = append(r.delivered, key)
	return r.fail
}

func (r *recOutcomes) Undelivered(_ context.Context, key, why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.undelivered = append(r.undelivered, key+": "+why)
	return r.fail
}

// TestSenderReportsOutcomes: the Sender tells the engine when a message
// settles (sent, failed for good, or settled by Recover), not when it is
// released for a retry; a failure is recorded with its reason in a word;
// a delivery is told, and told again when telling failed.
func TestSenderReportsOutcomes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ch := &taskChannel{delivery: adapters.DeliveryDelivered}
		ch.fails = []error{
			&adapters.APIError{Channel: "tasks", Code: 45009, Kind: adapters.ErrRateLimited},
			&adapters.APIError{Channel: "tasks", Code: 44004, Message: "empty content"},
		}
		reg := adapters.NewRegistry()
		reg.Register(ch)
		q := queuetest.New()
		snd := NewSender(s, reg, q, discard)
		rec := &recOutcomes{}
		snd.Report(rec)
		snd.CheckEvery(time.Second)

		ok, _ := snd.Send(ctx, "tasks", &adapters.Outbound{IdempotencyKey: "wf:1:nudge:1", To: "wm1", Via: "li", Text: "回来看看"}, Meta{})
		if err := snd.SendTask(ctx, q.Drain()[0]); !errors.Is(err, adapters.ErrRateLimited) {
			t.Fatalf("rate-limited: %v", err)
		}
		if len(rec.settled) != 0 {
			t.Fatalf("a send released for a retry was told settled: %v", rec.settled)
		}
		bad, _ := snd.Send(ctx, "tasks", &adapters.Outbound{IdempotencyKey: "wf:2:nudge:1", To: "wm2", Via: "li", Text: "x"}, Meta{})
		for _, task := range q.Drain() {
			snd.SendTask(ctx, task)
		}
		got, _ := s.Outbox(ctx, bad.ID)
		if got.State != store.OutboxFailed || got.Failure != "refused" || got.LastError != "tasks api error 44004: empty content" {
			t.Errorf("refused message: %+v", got)
		}
		// The retry of the first.
		if err := snd.SendTask(ctx, asynq.NewTask(TypeSend, fmt.Appendf(nil, `{"id":%d}`, ok.ID))); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"wf:2:nudge:1", "wf:1:nudge:1"}, rec.settled); diff != "" {
			t.Errorf("settled (-want +got):\n%s", diff)
		}

		// Delivered: told; when telling fails the check is retried and
		// tells again.
		checks := slices.DeleteFunc(q.Drain(), func(t2 *asynq.Task) bool { return t2.Type() != TypeCheckDelivery })
		if len(checks) != 1 {
			t.Fatalf("%d delivery checks queued, want 1", len(checks))
		}
		rec.fail = errors.New("database away")
		if err := snd.CheckTask(ctx, checks[0]); err == nil {
			t.Error("a delivery the engine was not told of did not fail its check")
		}
		rec.fail = nil
		if err := snd.CheckTask(ctx, checks[0]); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"wf:1:nudge:1", "wf:1:nudge:1"}, rec.delivered); diff != "" {
			t.Errorf("delivered (-want +got):\n%s", diff)
		}

		// Never delivered (the member left the guide): told, with why.
		ch.delivery, ch.detail = adapters.DeliveryFailed, "not a contact any more"
		gone, _ := snd.Send(ctx, "tasks", &adapters.Outbound{IdempotencyKey: "wf:4:nudge:1", To: "wm4", Via: "li", Text: "x"}, Meta{})
		for _, task := range q.Drain() {
			if err := snd.SendTask(ctx, task); err != nil {
				t.Fatal(err)
			}
		}
		checks = slices.DeleteFunc(q.Drain(), func(t2 *asynq.Task) bool { return t2.Type() != TypeCheckDelivery })
		if len(checks) != 1 {
			t.Fatalf("%d delivery checks queued, want 1", len(checks))
		}
		if err := snd.CheckTask(ctx, checks[0]); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Outbox(ctx, gone.ID); got.Delivery != string(adapters.DeliveryFailed) {
			t.Errorf("undelivered message: delivery %q", got.Delivery)
		}
		if diff := cmp.Diff([]string{"wf:4:nudge:1: not a contact any more"}, rec.undelivered); diff != "" {
			t.Errorf("undelivered (-want +got):\n%s", diff)
		}

		// A send whose worker died, on a channel that cannot tell:
		// failed for an operator, and told.
		lost, _ := snd.Send(ctx, "tasks", &adapters.Outbound{IdempotencyKey: "wf:3:nudge:1", To: "wm3", Via: "li", Text: "x"}, Meta{})
		q.Drain()
		if _, claimed, err := s.ClaimOutbox(ctx, lost.ID); err != nil || !claimed {
			t.Fatal(claimed, err)
		}
		if _, err := snd.recoverBefore(ctx, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Outbox(ctx, lost.ID)
		if got.State != store.OutboxFailed || got.Failure != store.FailureOutcomeUnknown || rec.settled[len(rec.settled)-1] != "wf:3:nudge:1" {
			t.Errorf("recovered: %+v; told %v", got, rec.settled)
		}
	})
}

func TestFailure(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&adapters.APIError{Code: 84061, Kind: adapters.ErrInvalidRecipient}, "invalid_recipient"},
		{errors.Join(errors.New("news"), adapters.ErrInvalidMessage), "invalid_message"},
		{&adapters.APIError{Code: 48002, Kind: adapters.ErrUnauthorized}, "unauthorized"},
		{&adapters.APIError{Code: 45009, Kind: adapters.ErrRateLimited}, "rate_limited"},
		{&adapters.APIError{Code: -1, Kind: adapters.ErrTemporary}, "gave_up"},
		{&adapters.APIError{Code: 44004}, "refused"},
		{errors.New("connection reset"), "error"},
	} {
		if got := failure(tc.err); got != tc.want {
			t.Errorf("failure(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
