package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestSendNowSendsWithoutATask: a message sent by its handler reaches the
// channel at once, as it was made, with no send task queued; its row is
// sent after one attempt, recorded; the same message made again (the
// handler handling its delivery again) sends nothing and queues nothing.
func TestSendNowSendsWithoutATask(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ch := &fakeChannel{}
		reg := adapters.NewRegistry()
		reg.Register(ch)
		q := queuetest.New()
		snd := NewSender(s, reg, q, discard)
		metrics := NewMetrics()
		snd.Measure(metrics)
		member := int64(7)
		m := &adapters.Outbound{IdempotencyKey: "reply:fake:msg-1:0", To: "wm1", ToParty: adapters.PartyMember, Kind: "text", Text: "您的积分：120",
			ReplyTo: map[string]string{"open_kfid": "wkKF1"}}
		row, err := snd.SendNow(ctx, "fake", m, Meta{MemberID: &member, BrandID: "acme", GuideID: "g-li"})
		if err != nil {
			t.Fatal(err)
		}
		if row.State != store.OutboxSent || row.ExternalID != "ext-1" {
			t.Errorf("SendNow returned the row %s (%q), want sent with the channel's id", row.State, row.ExternalID)
		}
		if len(ch.sent) != 1 {
			t.Fatalf("channel got %d messages, want 1", len(ch.sent))
		}
		got := ch.sent[0]
		if got.IdempotencyKey != m.IdempotencyKey || got.To != "wm1" || got.ToParty != adapters.PartyMember || got.Text != "您的积分：120" ||
			got.ReplyTo["open_kfid"] != "wkKF1" || got.Brand != "acme" {
			t.Errorf("channel got %+v", got)
		}
		if tasks := q.Drain(); len(tasks) != 0 {
			t.Errorf("queued %d tasks (%s), want none", len(tasks), tasks[0].Type())
		}
		saved, err := s.Outbox(ctx, row.ID)
		if err != nil {
			t.Fatal(err)
		}
		var payload adapters.Outbound
		json.Unmarshal(saved.Payload, &payload)
		if saved.State != store.OutboxSent || saved.Attempts != 1 || saved.ExternalID != "ext-1" || saved.SentAt == nil ||
			saved.MemberID == nil || *saved.MemberID != 7 || saved.BrandID != "acme" || saved.GuideID != "g-li" || saved.Recipient != "wm1" ||
			saved.Kind != "text" || payload.Text != "您的积分：120" || saved.LastError != "" {
			t.Errorf("saved row = %+v", saved)
		}
		atts, _ := s.SendAttempts(ctx, row.ID)
		if len(atts) != 1 || atts[0].Outcome != "sent" || atts[0].Attempt != 1 || atts[0].Error != "" {
			t.Errorf("attempts = %+v, want one sent", atts)
		}
		again, err := snd.SendNow(ctx, "fake", m, Meta{MemberID: &member, BrandID: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if again.ID != row.ID || again.State != store.OutboxSent || len(ch.sent) != 1 || len(q.Drain()) != 0 {
			t.Errorf("made again: row %d %s, %d sends; want the same row, sent once", again.ID, again.State, len(ch.sent))
		}
		if n := testutil.ToFloat64(metrics.Handler.WithLabelValues("fake", "inline")); n != 1 {
			t.Errorf("scrmgw_outbox_handler_sends_total{fake,inline} = %v, want 1", n)
		}
	})
}

// TestSendNowFailures: what the channel answers maps to the row's state
// and failure as for a queued send: a permanent refusal fails it with its
// reason (and counts it), a temporary one releases it to pending and
// queues its retry on the message's lane, which then sends it once.
func TestSendNowFailures(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ch := &fakeChannel{}
		reg := adapters.NewRegistry()
		reg.Register(ch)
		q := queuetest.New()
		snd := NewSender(s, reg, q, discard)
		metrics := NewMetrics()
		snd.Measure(metrics)
		for i, tc := range []struct {
			err     error
			failure string // "": released for a retry
		}{
			{&adapters.APIError{Channel: "fake", Code: 84061, Kind: adapters.ErrInvalidRecipient}, "invalid_recipient"},
			{fmt.Errorf("text too long: %w", adapters.ErrInvalidMessage), "invalid_message"},
			{&adapters.APIError{Channel: "fake", Code: 95001, Message: "refused"}, "refused"},
			{&adapters.APIError{Channel: "fake", Code: 45009, Kind: adapters.ErrRateLimited}, ""},
			{&adapters.APIError{Channel: "fake", Code: -1, Kind: adapters.ErrTemporary}, ""},
		} {
			ch.fails = []error{tc.err}
			key := fmt.Sprintf("reply:fake:m%d:0", i)
			row, err := snd.SendNow(ctx, "fake", &adapters.Outbound{IdempotencyKey: key, To: "wm1", Kind: "text", Text: "hi"}, Meta{Queue: queue.Critical})
			if err != nil {
				t.Fatal(err)
			}
			saved, _ := s.Outbox(ctx, row.ID)
			atts, _ := s.SendAttempts(ctx, row.ID)
			tasks := q.Drain()
			if tc.failure != "" {
				if row.State != store.OutboxFailed || saved.State != store.OutboxFailed || saved.Failure != tc.failure ||
					saved.LastError != tc.err.Error() || len(atts) != 1 || atts[0].Outcome != "failed" || len(tasks) != 0 {
					t.Errorf("%v: row %s/%s (%s) %q, attempts %+v, %d tasks; want failed, %s, no retry", tc.err, row.State, saved.State,
						saved.Failure, saved.LastError, atts, len(tasks), tc.failure)
				}
				if n := testutil.ToFloat64(metrics.Failures.WithLabelValues("fake", tc.failure)); n != 1 {
					t.Errorf("scrmgw_outbox_failures_total{fake,%s} = %v, want 1", tc.failure, n)
				}
				continue
			}
			if row.State != store.OutboxPending || saved.State != store.OutboxPending || saved.Attempts != 1 || len(atts) != 1 ||
				atts[0].Outcome != "retry" || !strings.Contains(saved.LastError, tc.err.Error()) {
				t.Errorf("%v: row %s/%s after %d attempts %+v, %q; want pending after one retry attempt", tc.err, row.State, saved.State,
					saved.Attempts, atts, saved.LastError)
			}
			if len(tasks) != 1 || tasks[0].Type() != TypeSend || q.ByQueue()[queue.Critical] != i-2 {
				t.Fatalf("%v: queued %d tasks (on critical: %d), want its retry on its lane", tc.err, len(tasks), q.ByQueue()[queue.Critical])
			}
			for range 2 { // the retry, and a duplicate of it
				if err := snd.SendTask(ctx, tasks[0]); err != nil {
					t.Fatalf("retry: %v", err)
				}
			}
			saved, _ = s.Outbox(ctx, row.ID)
			if saved.State != store.OutboxSent || saved.Attempts != 2 {
				t.Errorf("%v, retried: %s after %d attempts, want sent after 2", tc.err, saved.State, saved.Attempts)
			}
		}
		if len(ch.sent) != 2 {
			t.Errorf("channel accepted %d messages, want the 2 retried", len(ch.sent))
		}
	})
}

// dyingChannel takes a message and then its handler dies (the goroutine
// ends before Send returns, as when the process is killed after the
// request reached the platform): nothing after Send runs.
type dyingChannel struct {
	reconChannel
	plain bool // cannot reconcile
}

func (c *dyingChannel) Send(_ context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	c.mu.Lock()
	c.have[m.To] = "ext-" + m.To
	c.sent = append(c.sent, m)
	c.mu.Unlock()
	runtime.Goexit()
	return nil, nil
}

// plainDying is a dyingChannel that cannot tell what it received.
type plainDying struct{ ch *dyingChannel }

func (c plainDying) Name() string { return "plain" }
func (c plainDying) Send(ctx context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	return c.ch.Send(ctx, m)
}

// TestSendNowKilledMidSend: a handler that dies after the channel took
// its message leaves the row claimed; the handler's retry sends nothing;
// recovery leaves the row alone while its lease runs and then settles it
// once: sent when the channel can tell it has it, failed for an operator
// when it cannot. The message reached the channel once.
func TestSendNowKilledMidSend(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		recon := &dyingChannel{reconChannel: reconChannel{have: map[string]string{}}}
		reg := adapters.NewRegistry()
		reg.Register(recon)
		reg.Register(plainDying{recon})
		q := queuetest.New()
		snd := NewSender(s, reg, q, discard)
		sendDying := func(channel, to string) {
			t.Helper()
			done := make(chan struct{})
			go func() {
				defer close(done)
				snd.SendNow(ctx, channel, &adapters.Outbound{IdempotencyKey: "reply:" + to, To: to, Kind: "text", Text: "您好"}, Meta{})
				t.Errorf("SendNow to %s returned: the handler was to die mid-send", to)
			}()
			<-done
		}
		sendDying("recon", "wmA")
		sendDying("plain", "wmB")
		rows := map[string]*store.OutboxMessage{}
		for _, to := range []string{"wmA", "wmB"} {
			row, err := s.OutboxByKey(ctx, "reply:"+to)
			if err != nil {
				t.Fatal(err)
			}
			if row.State != store.OutboxSending || row.Attempts != 1 {
				t.Fatalf("%s after its handler died: %s after %d attempts, want sending (claimed) after 1", to, row.State, row.Attempts)
			}
			rows[to] = row
			// The inbox retries the delivery: its handler makes the reply again.
			again, err := snd.SendNow(ctx, rows[to].Channel, &adapters.Outbound{IdempotencyKey: "reply:" + to, To: to, Kind: "text", Text: "您好"}, Meta{})
			if err != nil || again.ID != row.ID || again.State != store.OutboxSending {
				t.Fatalf("%s made again: %+v, %v; want the claimed row", to, again, err)
			}
		}
		if len(recon.sent) != 2 || len(q.Drain()) != 0 {
			t.Fatalf("channel got %d messages, want 2 (one each), and no task", len(recon.sent))
		}
		// The lease runs: the rows are the (dead) handler's.
		if rec, err := snd.Recover(ctx, DefaultLease); err != nil || rec != (Recovery{}) {
			t.Fatalf("recovery within the lease: %+v, %v; want nothing done", rec, err)
		}
		time.Sleep(5 * time.Millisecond)
		for range 2 { // the lease is over; a second sweep finds nothing more
			if _, err := snd.recoverBefore(ctx, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		a, _ := s.Outbox(ctx, rows["wmA"].ID)
		b, _ := s.Outbox(ctx, rows["wmB"].ID)
		if a.State != store.OutboxSent || a.ExternalID != "ext-wmA" {
			t.Errorf("reconciled: %s %q, want sent with the channel's id", a.State, a.ExternalID)
		}
		if b.State != store.OutboxFailed || b.Failure != store.FailureOutcomeUnknown || !strings.Contains(b.LastError, "cannot tell whether it went out") {
			t.Errorf("cannot tell: %s (%s) %q, want failed for an operator", b.State, b.Failure, b.LastError)
		}
		for _, row := range []*store.OutboxMessage{a, b} {
			atts, _ := s.SendAttempts(ctx, row.ID)
			if len(atts) != 1 || (atts[0].Outcome != RecoveredSent && atts[0].Outcome != RecoveredFailed) {
				t.Errorf("%s attempts = %+v, want the recovery's one", row.IdempotencyKey, atts)
			}
		}
		for _, task := range q.Drain() {
			if task.Type() == TypeSend {
				t.Errorf("recovery queued a send again")
			}
		}
		if len(recon.sent) != 2 {
			t.Errorf("channel got %d messages, want 2", len(recon.sent))
		}
	})
}

// TestSendNowOverTheRate: a message whose send slot is not free at once
// goes the queued way, holding its slot: saved pending (left alone by the
// sweep until its slot), a task queued for the slot, sent once by it. A
// welcome with no slot before its code expires, or reached after it, is
// saved failed as expired and never sent.
func TestSendNowOverTheRate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		// 4/s: a slot every 250 ms; a handler waits at most 50 ms.
		snd, ch, q := limitedSender(s, NewLimiter(redisClient(t), LimiterOptions{Rates: map[string]Rate{"wecom": {4, time.Second}}, CriticalShare: -1,
			Prefix: "test:" + t.Name() + ":"}), 50*time.Millisecond)
		metrics := NewMetrics()
		snd.Measure(metrics)
		var rows []*store.OutboxMessage
		for i := range 2 {
			row, err := snd.SendNow(ctx, "wecom", &adapters.Outbound{IdempotencyKey: fmt.Sprintf("reply:wecom:m:%d", i), To: "wm1", Kind: "text", Text: "hi"}, Meta{})
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, row)
		}
		if rows[0].State != store.OutboxSent || rows[1].State != store.OutboxPending || len(ch.times()) != 1 {
			t.Fatalf("rows %s, %s, %d sent; want the first sent at once, the second queued", rows[0].State, rows[1].State, len(ch.times()))
		}
		saved, _ := s.Outbox(ctx, rows[1].ID)
		if saved.State != store.OutboxPending || saved.Attempts != 0 || !saved.UpdatedAt.After(time.Now()) {
			t.Errorf("queued row: %s after %d attempts, updated %v; want pending, no attempt, updated at its (future) slot", saved.State,
				saved.Attempts, saved.UpdatedAt)
		}
		tasks := q.Drain()
		if len(tasks) != 1 || tasks[0].Type() != TypeSend {
			t.Fatalf("queued %d tasks, want the send's", len(tasks))
		}
		var pl sendPayload
		json.Unmarshal(tasks[0].Payload(), &pl)
		if pl.ID != rows[1].ID || pl.Slot == 0 {
			t.Fatalf("queued task %s, want row %d with its slot", tasks[0].Payload(), rows[1].ID)
		}
		time.Sleep(time.Until(time.UnixMilli(pl.Slot)) - slotLead/2) // its task, due before its slot, waits for it
		for range 2 {
			if err := snd.SendTask(ctx, tasks[0]); err != nil {
				t.Fatal(err)
			}
		}
		times := ch.times()
		if saved, _ := s.Outbox(ctx, rows[1].ID); saved.State != store.OutboxSent || len(times) != 2 || times[1].Sub(times[0]) < 240*time.Millisecond {
			t.Errorf("queued send: %s, %d sent (%v); want sent once, a slot after the first", saved.State, len(times), times)
		}
		if len(q.Drain()) != 0 {
			t.Error("the slot's task was queued again")
		}
		if in, queued := testutil.ToFloat64(metrics.Handler.WithLabelValues("wecom", "inline")), testutil.ToFloat64(metrics.Handler.WithLabelValues("wecom", "queued")); in != 1 || queued != 1 {
			t.Errorf("handler sends: %v inline, %v queued; want 1 and 1", in, queued)
		}
	})
}

// TestSendNowExpiresWelcomes: a welcome with no send slot before its code
// expires, or reached after it expired, is saved failed as expired, with
// the reason, and never sent; a welcome in time is sent at once.
func TestSendNowExpiresWelcomes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		snd, ch, q := limitedSender(s, windowLimiter(t, Rate{N: 1, Per: 24 * time.Hour}), 50*time.Millisecond)
		send := func(key string, since time.Time) *store.OutboxMessage {
			t.Helper()
			row, err := snd.SendNow(ctx, "wecom", &adapters.Outbound{IdempotencyKey: WelcomeKeyPrefix + key, To: "wm-" + key, Kind: "text", Text: "欢迎",
				Fields: map[string]string{"welcome_code": "code-" + key}}, Meta{Queue: queue.Critical, Since: since})
			if err != nil {
				t.Fatal(err)
			}
			return row
		}
		late := send("late", time.Now().Add(-WelcomeValidity)) // its contact was processed 20 s after the callback
		first := send("first", time.Now().Add(-time.Second))
		second := send("second", time.Now())
		if first.State != store.OutboxSent || len(ch.sent[WelcomeKeyPrefix+"first"]) != 1 {
			t.Errorf("first welcome %s, want sent at once (the day's call)", first.State)
		}
		for _, tc := range []struct {
			row    *store.OutboxMessage
			reason string
		}{
			{late, "before the send was reached"},
			{second, "the first free wecom send slot (within its send rate and call windows) was"},
		} {
			got, _ := s.Outbox(ctx, tc.row.ID)
			if tc.row.State != store.OutboxFailed || got.State != store.OutboxFailed || got.Failure != FailureExpired || got.Attempts != 0 ||
				!strings.Contains(got.LastError, tc.reason) {
				t.Errorf("%s = %s (%s) after %d attempts: %q; want failed, expired, no attempt, saying %q", got.IdempotencyKey, got.State,
					got.Failure, got.Attempts, got.LastError, tc.reason)
			}
			if n := len(ch.sent[got.IdempotencyKey]); n != 0 {
				t.Errorf("the expired %s was sent %d times", got.IdempotencyKey, n)
			}
		}
		if tasks := q.Drain(); len(tasks) != 0 {
			t.Errorf("%d tasks queued, want none", len(tasks))
		}
	})
}

// TestSendNowErasedMember: a message made for a member whose part was
// erased (a handler that was mid-way) is saved failed, emptied, and never
// sent.
func TestSendNowErasedMember(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "acme"}); err != nil {
			t.Fatal(err)
		}
		m, _, err := s.EnsureMember(ctx, store.NewMember{BrandID: "acme", Identities: []store.Identity{{Channel: "fake", ExternalID: "wm-chen"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.EraseMember(ctx, m.ID, "acme", "acme-token"); err != nil {
			t.Fatal(err)
		}
		ch := &fakeChannel{}
		reg := adapters.NewRegistry()
		reg.Register(ch)
		q := queuetest.New()
		snd := NewSender(s, reg, q, discard)
		row, err := snd.SendNow(ctx, "fake", &adapters.Outbound{IdempotencyKey: "reply:late", To: "wm-chen", Kind: "text", Text: "Hi Chen"},
			Meta{MemberID: &m.ID, BrandID: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := s.Outbox(ctx, row.ID)
		if row.State != store.OutboxFailed || got.State != store.OutboxFailed || got.Failure != store.ErasedReason || string(got.Payload) != "{}" ||
			len(ch.sent) != 0 || len(q.Drain()) != 0 {
			t.Errorf("row %s/%s (%s) payload %s, %d sent; want failed as erased, emptied, not sent", row.State, got.State, got.Failure, got.Payload, len(ch.sent))
		}
	})
}
