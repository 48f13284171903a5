package outbox

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// withdrawChannel is a taskChannel that can stop its tasks: a stopped
// task is not delivered, one sent before stays delivered.
type withdrawChannel struct {
	taskChannel
	mu        sync.Mutex
	sent      map[string]bool // external ids the guide sent
	withdrawn []string
	refuse    error
}

func (c *withdrawChannel) Withdraw(_ context.Context, m *adapters.Outbound, externalID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refuse != nil {
		return c.refuse
	}
	c.withdrawn = append(c.withdrawn, m.IdempotencyKey)
	return nil
}

func (c *withdrawChannel) CheckDelivery(_ context.Context, m *adapters.Outbound, externalID string) (adapters.Delivery, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sent[m.IdempotencyKey] {
		return adapters.DeliveryDelivered, "", nil
	}
	return adapters.DeliveryPending, "", nil
}

// TestWithdraw: a run's pending sends are withdrawn and recorded failed
// "withdrawn: <why>" (the engine told they will not be delivered); one the
// guide sent before is delivered; other runs' sends and settled ones are
// left alone; a task handled twice acts once; a refusal leaves the send
// to its checks, a transient error retries.
func TestWithdraw(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ch := &withdrawChannel{sent: map[string]bool{}}
		reg := adapters.NewRegistry()
		reg.Register(ch)
		q := queuetest.New()
		snd := NewSender(s, reg, q, discard)
		rec := &recOutcomes{}
		snd.Report(rec)
		rows := map[string]*store.OutboxMessage{}
		for _, key := range []string{"wf:7:invite:1", "wf:7:remind:1", "wf:7:done:1", "wf:70:invite:1", "wf:8:invite:1"} {
			row, err := snd.Send(ctx, "tasks", &adapters.Outbound{IdempotencyKey: key, To: "wm1", Via: "li", Text: "周六直播"}, Meta{})
			if err != nil {
				t.Fatal(err)
			}
			rows[key] = row
		}
		for _, task := range q.Drain() {
			if err := snd.SendTask(ctx, task); err != nil {
				t.Fatal(err)
			}
		}
		q.Drain() // the delivery checks
		if _, err := s.SettlePendingDelivery(ctx, rows["wf:7:done:1"].ID, "delivered", ""); err != nil {
			t.Fatal(err)
		}
		ch.sent["wf:7:remind:1"] = true // sent by the guide, not yet checked

		n, err := snd.Withdraw(ctx, "wf:7:", "live.cancelled")
		if err != nil || n != 2 {
			t.Fatalf("Withdraw = %d, %v; want the run's 2 pending sends", n, err)
		}
		if n, _ := snd.Withdraw(ctx, "wf:7:", "live.cancelled"); n != 2 {
			t.Fatalf("withdrawing again found %d", n)
		}
		tasks := q.Drain()
		if len(tasks) != 2 {
			t.Fatalf("withdrawing twice queued %d tasks, want the same 2", len(tasks))
		}
		for _, task := range append(tasks, tasks...) { // each handled twice
			if task.Type() != TypeWithdraw {
				t.Fatalf("queued %s", task.Type())
			}
			if err := snd.WithdrawTask(ctx, task); err != nil {
				t.Fatal(err)
			}
		}
		want := map[string]string{
			"wf:7:invite:1":  "failed: withdrawn: live.cancelled",
			"wf:7:remind:1":  "delivered: ",
			"wf:7:done:1":    "delivered: ",
			"wf:70:invite:1": "pending: ",
			"wf:8:invite:1":  "pending: ",
		}
		for key, w := range want {
			got, _ := s.Outbox(ctx, rows[key].ID)
			if got.Delivery+": "+got.DeliveryDetail != w {
				t.Errorf("%s: %s: %s, want %s", key, got.Delivery, got.DeliveryDetail, w)
			}
		}
		if diff := cmp.Diff([]string{"wf:7:invite:1", "wf:7:remind:1"}, ch.withdrawn); diff != "" {
			t.Errorf("withdrawn at the channel (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"wf:7:invite:1: withdrawn: live.cancelled"}, rec.undelivered); diff != "" {
			t.Errorf("undelivered (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"wf:7:remind:1"}, rec.delivered); diff != "" {
			t.Errorf("delivered (-want +got):\n%s", diff)
		}

		// Refused for good: left pending for its checks. Transient: retried.
		snd.Withdraw(ctx, "wf:8:", "goal: purchase.completed")
		task := q.Drain()[0]
		ch.refuse = &adapters.APIError{Channel: "tasks", Code: 41047, Message: "invalid msgid"}
		if err := snd.WithdrawTask(ctx, task); err != nil {
			t.Fatalf("a refused withdrawal: %v, want no retry", err)
		}
		ch.refuse = &adapters.APIError{Channel: "tasks", Code: -1, Kind: adapters.ErrTemporary}
		if err := snd.WithdrawTask(ctx, task); !errors.Is(err, adapters.ErrTemporary) {
			t.Fatalf("a transient failure: %v, want it retried", err)
		}
		if got, _ := s.Outbox(ctx, rows["wf:8:invite:1"].ID); got.Delivery != "pending" {
			t.Errorf("after failed withdrawals: %q, want pending", got.Delivery)
		}
		ch.refuse = nil
		if err := snd.WithdrawTask(ctx, task); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Outbox(ctx, rows["wf:8:invite:1"].ID); got.DeliveryDetail != "withdrawn: goal: purchase.completed" {
			t.Errorf("after the retry: %q %q", got.Delivery, got.DeliveryDetail)
		}
		if err := snd.WithdrawTask(ctx, asynq.NewTask(TypeWithdraw, []byte(`{}`))); !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("a bad payload: %v", err)
		}
	})
}
