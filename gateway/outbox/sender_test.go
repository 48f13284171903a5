package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeChannel is a Channel whose Send fails as told.
type fakeChannel struct {
	mu    sync.Mutex
	sent  []*adapters.Outbound
	fails []error
}

func (c *fakeChannel) Name() string { return "fake" }

func (c *fakeChannel) Send(_ context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.fails) > 0 {
		err := c.fails[0]
		c.fails = c.fails[1:]
		return nil, err
	}
	c.sent = append(c.sent, m)
	return &adapters.Receipt{ExternalID: fmt.Sprintf("ext-%d", len(c.sent))}, nil
}

func TestSenderSendsOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ch := &fakeChannel{fails: []error{&adapters.APIError{Channel: "fake", Code: 45009, Kind: adapters.ErrRateLimited}}}
		reg := adapters.NewRegistry()
		reg.Register(ch)
		q := queuetest.New()
		snd := NewSender(s, reg, q, discard)
		metrics := NewMetrics()
		snd.Measure(metrics)
		m := &adapters.Outbound{IdempotencyKey: "welcome:evt:1", To: "wm1", Kind: "text", Text: "欢迎"}
		row, err := snd.Send(ctx, "fake", m, Meta{Queue: queue.Critical})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := snd.Send(ctx, "fake", m, Meta{}); err != nil { // the same message again
			t.Fatal(err)
		}
		tasks := q.Drain()
		if len(tasks) != 1 {
			t.Fatalf("queued %d send tasks, want 1", len(tasks))
		}
		if err := snd.SendTask(ctx, tasks[0]); !errors.Is(err, adapters.ErrRateLimited) {
			t.Fatalf("rate-limited send: %v, want a retryable ErrRateLimited", err)
		}
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ { // the retry and duplicates, at once
			wg.Add(1)
			go func() { defer wg.Done(); snd.SendTask(ctx, tasks[0]) }()
		}
		wg.Wait()
		if len(ch.sent) != 1 || ch.sent[0].Text != "欢迎" {
			t.Fatalf("channel got %d messages, want exactly 1", len(ch.sent))
		}
		got, _ := s.Outbox(ctx, row.ID)
		if got.State != store.OutboxSent || got.ExternalID != "ext-1" || got.Attempts != 2 {
			t.Errorf("outbox row = %s ext %q after %d attempts", got.State, got.ExternalID, got.Attempts)
		}

		ch.fails = []error{&adapters.APIError{Channel: "fake", Code: 84061, Kind: adapters.ErrInvalidRecipient}}
		bad, _ := snd.Send(ctx, "fake", &adapters.Outbound{IdempotencyKey: "k2", To: "gone", Text: "x"}, Meta{})
		err = snd.SendTask(ctx, q.Drain()[0])
		if !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("invalid recipient: %v, want SkipRetry", err)
		}
		got, _ = s.Outbox(ctx, bad.ID)
		if got.State != store.OutboxFailed || !strings.Contains(got.LastError, "84061") {
			t.Errorf("failed row = %s %q", got.State, got.LastError)
		}
		// The failure is counted by channel and reason; the retried
		// rate limit before it is not a failure.
		if n := testutil.ToFloat64(metrics.Failures.WithLabelValues("fake", "invalid_recipient")); n != 1 {
			t.Errorf("scrmgw_outbox_failures_total{fake,invalid_recipient} = %v, want 1", n)
		}
		if n := testutil.CollectAndCount(metrics.Failures); n != 1 {
			t.Errorf("%d failure series, want 1 (invalid_recipient)", n)
		}
	})
}

// taskChannel is a channel whose sends complete later, like a WeCom
// message task.
type taskChannel struct {
	fakeChannel
	delivery adapters.Delivery
	detail   string
}

func (c *taskChannel) Name() string { return "tasks" }

func (c *taskChannel) Send(ctx context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	r, err := c.fakeChannel.Send(ctx, m)
	if r != nil {
		r.Pending = true
	}
	return r, err
}

func (c *taskChannel) CheckDelivery(_ context.Context, _ *adapters.Outbound, _ string) (adapters.Delivery, string, error) {
	return c.delivery, c.detail, nil
}

func TestDeliveryChecks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ch := &taskChannel{delivery: adapters.DeliveryPending}
		reg := adapters.NewRegistry()
		reg.Register(ch)
		q := queuetest.New()
		snd := NewSender(s, reg, q, discard)
		row, err := snd.Send(ctx, "tasks", &adapters.Outbound{IdempotencyKey: "k", To: "wm1", Via: "li", Text: "回来看看"}, Meta{})
		if err != nil {
			t.Fatal(err)
		}
		if err := snd.SendTask(ctx, q.Drain()[0]); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Outbox(ctx, row.ID)
		if got.State != store.OutboxSent || got.Delivery != "pending" {
			t.Fatalf("after send: %s / %q", got.State, got.Delivery)
		}
		checks := q.Drain()
		if len(checks) != 1 || checks[0].Type() != TypeCheckDelivery {
			t.Fatalf("queued %v, want one delivery check", checks)
		}
		// Still pending: checked again later.
		if err := snd.CheckTask(ctx, checks[0]); err != nil {
			t.Fatal(err)
		}
		next := q.Drain()
		if len(next) != 1 {
			t.Fatalf("pending check queued %d follow-ups, want 1", len(next))
		}
		ch.delivery = adapters.DeliveryDelivered
		if err := snd.CheckTask(ctx, next[0]); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Outbox(ctx, row.ID)
		if got.Delivery != "delivered" || len(q.Drain()) != 0 {
			t.Errorf("after the guide confirmed: delivery %q", got.Delivery)
		}
	})
}

// TestWebhookEndpointGetsOneDelivery: a brand endpoint answering 500 and
// then 200 gets the message twice with the same webhook-id (so it keeps
// one), a 400 is not retried, and every attempt is on record.
func TestWebhookEndpointGetsOneDelivery(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var mu sync.Mutex
		statuses := []int{500, 200, 400}
		var ids []string
		var bodies []map[string]any
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			var body map[string]any
			json.NewDecoder(r.Body).Decode(&body)
			ids, bodies = append(ids, r.Header.Get("webhook-id")), append(bodies, body)
			w.WriteHeader(statuses[0])
			statuses = statuses[1:]
		}))
		defer srv.Close()
		ch, err := webhook.New(webhook.Config{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", URL: srv.URL}, webhook.NewIngester(nil, nil, 0, nil), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		reg := adapters.NewRegistry()
		reg.Register(ch)
		q := queuetest.New()
		snd := NewSender(s, reg, q, discard)
		row, err := snd.Send(ctx, webhook.ChannelName, &adapters.Outbound{IdempotencyKey: "wf:7:nudge:1", To: "m-7", Kind: "text", Text: "hi"}, Meta{})
		if err != nil {
			t.Fatal(err)
		}
		task := q.Drain()[0]
		if err := snd.SendTask(ctx, task); !errors.Is(err, adapters.ErrTemporary) {
			t.Fatalf("500: %v, want a temporary error", err)
		}
		if err := snd.SendTask(ctx, task); err != nil {
			t.Fatalf("retry: %v", err)
		}
		snd.SendTask(ctx, task) // a duplicate task sends nothing
		mu.Lock()
		if len(ids) != 2 || ids[0] != "wf:7:nudge:1" || ids[1] != ids[0] || bodies[1]["id"] != ids[0] || bodies[1]["specversion"] != "1.0" ||
			bodies[1]["type"] != webhook.MessageType {
			t.Errorf("endpoint got ids %v, bodies %v", ids, bodies)
		}
		mu.Unlock()
		attempts, _ := s.SendAttempts(ctx, row.ID)
		if len(attempts) != 2 || attempts[0].Outcome != "retry" || !strings.Contains(attempts[0].Error, "500") || attempts[1].Outcome != "sent" {
			t.Errorf("attempts = %+v", attempts)
		}
		bad, _ := snd.Send(ctx, webhook.ChannelName, &adapters.Outbound{IdempotencyKey: "k-400", To: "m-8", Text: "x"}, Meta{})
		if err := snd.SendTask(ctx, q.Drain()[0]); !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("400: %v, want no retry", err)
		}
		if attempts, _ := s.SendAttempts(ctx, bad.ID); len(attempts) != 1 || attempts[0].Outcome != "failed" {
			t.Errorf("400 attempts = %+v", attempts)
		}
	})
}
