package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// untilNext is how long from now the next window of length per starts,
// on the epoch-aligned windows the limiter counts in.
func untilNext(per time.Duration) time.Duration {
	now := time.Now()
	return now.Truncate(per).Add(per).Sub(now)
}

// windowLimiter is a Limiter of channel wecom with no steady rate and
// the given call windows, on keys of its own.
func windowLimiter(t *testing.T, windows ...Rate) *Limiter {
	t.Helper()
	return NewLimiter(redisClient(t), LimiterOptions{Windows: map[string][]Rate{"wecom": windows},
		Prefix: "test:" + t.Name() + ":" + time.Now().Format("150405.000000") + ":"})
}

// TestLimiterWindows: sends are kept within each call window; the other
// lanes take all but the critical share of a window; a welcome (the
// critical lane) takes the rest, and when it finds a window full the
// others leave the next window to welcomes; a welcome with no slot
// before its deadline takes none. Days stand in for WeCom's minutes, so
// no window ends during the test.
func TestLimiterWindows(t *testing.T) {
	ctx := context.Background()
	day := 24 * time.Hour
	l := windowLimiter(t, Rate{N: 5, Per: day})
	// The others: 4 of the day's 5 (critical share 0.2).
	for i := range 4 {
		if w, err := l.Reserve(ctx, "wecom", false); err != nil || w > time.Second {
			t.Fatalf("other send %d: wait %v, %v; want a slot today", i, w, err)
		}
	}
	if w, err := l.Reserve(ctx, "wecom", false); err != nil || w < untilNext(day)-time.Minute {
		t.Fatalf("5th other send: wait %v, %v; want tomorrow's window (%v away)", w, err, untilNext(day))
	}
	// A welcome takes the day's last call.
	if w, err := l.ReserveBy(ctx, "wecom", true, time.Now().Add(20*time.Second)); err != nil || w > time.Second {
		t.Fatalf("a welcome: wait %v, %v; want the day's last call", w, err)
	}
	// The next welcome finds the day full: no slot within 20 s, nothing
	// taken.
	_, err := l.ReserveBy(ctx, "wecom", true, time.Now().Add(20*time.Second))
	var noSlot *NoSlotError
	if !errors.As(err, &noSlot) || noSlot.Wait < untilNext(day)-time.Minute {
		t.Fatalf("a welcome with the day full: %v, want a NoSlotError about tomorrow", err)
	}
	// It found the window full: the others leave tomorrow to welcomes
	// (the 5th took its slot there before).
	if w, err := l.Reserve(ctx, "wecom", false); err != nil || w < untilNext(day)+day-time.Minute {
		t.Fatalf("an other send after a welcome found the day full: wait %v, %v; want the day after tomorrow", w, err)
	}
	// Without a deadline welcomes take tomorrow's window, where the
	// welcome turned away took nothing: 4 fit (the 5th other holds one).
	for i := range 4 {
		w, err := l.Reserve(ctx, "wecom", true)
		if err != nil {
			t.Fatal(err)
		}
		if tomorrow := w >= untilNext(day)-time.Minute && w < untilNext(day)+day-time.Minute; !tomorrow {
			t.Fatalf("welcome %d without a deadline: wait %v, want tomorrow's window", i, w)
		}
	}
	if w, _ := l.Reserve(ctx, "wecom", true); w < untilNext(day)+day-time.Minute {
		t.Errorf("a welcome after tomorrow's 5 calls: wait %v, want the day after", w)
	}
}

// TestLimiterLongerWindowBinds: a send fits every window; the longer
// window's budget moves it past a shorter one that has room.
func TestLimiterLongerWindowBinds(t *testing.T) {
	ctx := context.Background()
	day, twoDays := 24*time.Hour, 48*time.Hour
	l := NewLimiter(redisClient(t), LimiterOptions{Windows: map[string][]Rate{"wecom": {{N: 10, Per: day}, {N: 3, Per: twoDays}}},
		CriticalShare: -1, Prefix: "test:" + t.Name() + ":" + time.Now().Format("150405.000000") + ":"})
	for i := range 3 {
		if w, err := l.Reserve(ctx, "wecom", false); err != nil || w > time.Second {
			t.Fatalf("send %d: wait %v, %v", i, w, err)
		}
	}
	if w, err := l.Reserve(ctx, "wecom", false); err != nil || w < untilNext(twoDays)-time.Minute {
		t.Fatalf("4th send: wait %v, %v; want the next two-day window (%v away)", w, err, untilNext(twoDays))
	}
}

// TestLimiterWindowsFromSpecs: a channel's windows come from its spec
// (WeCom's 10,000 a minute and 150,000 an hour) unless configured.
func TestLimiterWindowsFromSpecs(t *testing.T) {
	chs := adapters.SpecList{{Name: "wecom", Rate: adapters.Rate{N: 40, Per: time.Second},
		Windows: []adapters.Rate{{N: 10_000, Per: time.Minute}, {N: 150_000, Per: time.Hour}}}, {Name: "dingtalk", Rate: adapters.Rate{N: 20, Per: time.Second}}}
	l := NewLimiter(redisClient(t), LimiterOptions{Channels: chs})
	if got := l.Rates(); got != "dingtalk=20/s wecom=40/s,10000/min,150000/h" {
		t.Errorf("rates = %q", got)
	}
}

// TestSenderExpiresWelcomes: a welcome with no send slot within its
// code's 20 s fails as expired, saying why, and is not sent; one queued
// more than 20 s ago fails so without taking a slot; an ordinary send
// waits for the next window instead.
func TestSenderExpiresWelcomes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		snd, ch, q := limitedSender(s, windowLimiter(t, Rate{N: 1, Per: 24 * time.Hour}), 50*time.Millisecond)
		send := func(key string) *store.OutboxMessage {
			row, err := snd.Send(ctx, "wecom", &adapters.Outbound{IdempotencyKey: key, To: "wm1", Kind: "text", Text: "欢迎",
				Fields: map[string]string{"welcome_code": "code-" + key}}, Meta{})
			if err != nil {
				t.Fatal(err)
			}
			return row
		}
		first, second := send(WelcomeKeyPrefix+"a"), send(WelcomeKeyPrefix+"b")
		for _, task := range q.Drain() {
			if err := snd.SendTask(ctx, task); err != nil {
				t.Fatalf("SendTask: %v", err)
			}
		}
		if got, _ := s.Outbox(ctx, first.ID); got.State != store.OutboxSent {
			t.Errorf("first welcome %s, want sent (the day's call)", got.State)
		}
		got, _ := s.Outbox(ctx, second.ID)
		if got.State != store.OutboxFailed || got.Failure != FailureExpired || got.Attempts != 0 ||
			!strings.Contains(got.LastError, "the first free wecom send slot (within its send rate and call windows) was") {
			t.Errorf("second welcome = %s (%s) after %d attempts: %q; want failed, expired, no attempt, saying why", got.State, got.Failure,
				got.Attempts, got.LastError)
		}
		if n := len(ch.sent[WelcomeKeyPrefix+"b"]); n != 0 {
			t.Errorf("the expired welcome was sent %d times", n)
		}
		if tasks := q.Drain(); len(tasks) != 0 {
			t.Errorf("%d tasks queued for the expired welcome, want none", len(tasks))
		}

		// A welcome whose task ran late (the workers were busy).
		late := &store.OutboxMessage{IdempotencyKey: WelcomeKeyPrefix + "late", Channel: "wecom", Recipient: "wm1", Kind: "text",
			Payload: []byte(`{"IdempotencyKey":"welcome:late","To":"wm1","Kind":"text","Text":"欢迎"}`), CreatedAt: time.Now().Add(-time.Minute)}
		if _, err := s.AddOutbox(ctx, late); err != nil {
			t.Fatal(err)
		}
		pl, _ := json.Marshal(sendPayload{ID: late.ID})
		if err := snd.SendTask(ctx, asynq.NewTask(TypeSend, pl)); err != nil {
			t.Fatalf("SendTask: %v", err)
		}
		if got, _ := s.Outbox(ctx, late.ID); got.State != store.OutboxFailed || got.Failure != FailureExpired ||
			!strings.Contains(got.LastError, "expired (valid 20s) before the send was reached") {
			t.Errorf("late welcome = %s (%s): %q; want expired before it was reached", got.State, got.Failure, got.LastError)
		}

		// A welcome whose handler died mid-send and that Recover took
		// back, its code expired since: it may have been delivered, and
		// WeCom can no longer tell, so its outcome is unknown, not expired.
		lost := &store.OutboxMessage{IdempotencyKey: WelcomeKeyPrefix + "lost", Channel: "wecom", Recipient: "wm1", Kind: "text",
			Payload: []byte(`{"IdempotencyKey":"welcome:lost","To":"wm1","Kind":"text","Text":"欢迎"}`), CreatedAt: time.Now().Add(-time.Minute)}
		if _, err := s.AddOutbox(ctx, lost); err != nil {
			t.Fatal(err)
		}
		claimed, ok, err := s.ClaimOutbox(ctx, lost.ID)
		if err != nil || !ok {
			t.Fatalf("claiming: %v %v", ok, err)
		}
		if err := s.RecordSendAttempt(ctx, &store.SendAttempt{OutboxID: lost.ID, Attempt: claimed.Attempts, At: time.Now(), Outcome: RecoveredResend,
			Error: "the channel does not have it"}); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.SettleStalePending(ctx, claimed, "the channel does not have it"); err != nil || !ok {
			t.Fatalf("taking it back: %v %v", ok, err)
		}
		pl, _ = json.Marshal(sendPayload{ID: lost.ID})
		if err := snd.SendTask(ctx, asynq.NewTask(TypeSend, pl)); err != nil {
			t.Fatalf("SendTask: %v", err)
		}
		if got, _ := s.Outbox(ctx, lost.ID); got.State != store.OutboxFailed || got.Failure != store.FailureOutcomeUnknown ||
			!strings.Contains(got.LastError, "an earlier attempt may have reached the channel") {
			t.Errorf("welcome taken back after its code expired = %s (%s): %q; want failed, outcome unknown", got.State, got.Failure, got.LastError)
		}
		if n := len(ch.sent[WelcomeKeyPrefix+"lost"]); n != 0 {
			t.Errorf("the lost welcome was sent again %d times", n)
		}

		// An ordinary send waits for tomorrow's window.
		nudge, err := snd.Send(ctx, "wecom", &adapters.Outbound{IdempotencyKey: "nudge", To: "wm1", Kind: "text", Text: "hi"}, Meta{})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range q.Drain() {
			if err := snd.SendTask(ctx, task); err != nil {
				t.Fatalf("SendTask: %v", err)
			}
		}
		if got, _ := s.Outbox(ctx, nudge.ID); got.State != store.OutboxPending || !got.UpdatedAt.After(time.Now().Add(untilNext(24*time.Hour)-time.Minute)) {
			t.Errorf("nudge = %s until %v, want pending until tomorrow's window", got.State, got.UpdatedAt)
		}
		if n := len(q.Drain()); n != 1 {
			t.Errorf("%d tasks queued for the nudge's slot, want 1", n)
		}
	})
}

// TestSenderWelcomeCountsFromTheContact: a welcome's 20 s run from when
// the contact was added (Meta.Since), not from when it was queued: one
// queued 21 s after the contact fails as expired without reaching the
// channel (WeCom would refuse its code, 41050); one queued 5 s after is
// sent. Its row says when the contact was added.
func TestSenderWelcomeCountsFromTheContact(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		snd, ch, q := limitedSender(s, windowLimiter(t, Rate{N: 100, Per: 24 * time.Hour}), 50*time.Millisecond)
		added := time.Now().Add(-21 * time.Second)
		send := func(key string, since time.Time) *store.OutboxMessage {
			row, err := snd.Send(ctx, "wecom", &adapters.Outbound{IdempotencyKey: key, To: "wm1", Kind: "text", Text: "欢迎",
				Fields: map[string]string{"welcome_code": "code-" + key}}, Meta{Since: since})
			if err != nil {
				t.Fatal(err)
			}
			return row
		}
		old, fresh := send(WelcomeKeyPrefix+"old", added), send(WelcomeKeyPrefix+"fresh", time.Now().Add(-5*time.Second))
		for _, task := range q.Drain() {
			if err := snd.SendTask(ctx, task); err != nil {
				t.Fatalf("SendTask: %v", err)
			}
		}
		got, _ := s.Outbox(ctx, old.ID)
		if got.State != store.OutboxFailed || got.Failure != FailureExpired || got.CreatedAt.Sub(added).Abs() > time.Millisecond {
			t.Errorf("welcome queued 21 s after its contact = %s (%s), created %v; want failed as expired, created %v",
				got.State, got.Failure, got.CreatedAt, added)
		}
		if n := len(ch.sent[WelcomeKeyPrefix+"old"]); n != 0 {
			t.Errorf("the welcome with an expired code reached the channel %d times", n)
		}
		if got, _ := s.Outbox(ctx, fresh.ID); got.State != store.OutboxSent {
			t.Errorf("welcome queued 5 s after its contact = %s, want sent", got.State)
		}
	})
}

// TestSenderWelcomeLateForItsSlot: a welcome that got its slot in time
// but whose task reached a worker after the code's time (the workers
// were held up) is failed as expired, not sent with a dead code.
func TestSenderWelcomeLateForItsSlot(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		snd, ch, _ := limitedSender(s, windowLimiter(t, Rate{N: 100, Per: 24 * time.Hour}), 50*time.Millisecond)
		row := &store.OutboxMessage{IdempotencyKey: WelcomeKeyPrefix + "held", Channel: "wecom", Recipient: "wm1", Kind: "text",
			Payload:   []byte(`{"IdempotencyKey":"welcome:held","To":"wm1","Kind":"text","Text":"欢迎","Fields":{"welcome_code":"c"}}`),
			CreatedAt: time.Now().Add(-19800 * time.Millisecond)}
		if _, err := s.AddOutbox(ctx, row); err != nil {
			t.Fatal(err)
		}
		// Its slot is now: the task was queued for it in time.
		pl, _ := json.Marshal(sendPayload{ID: row.ID, Slot: time.Now().UnixMilli()})
		if err := snd.SendTask(ctx, asynq.NewTask(TypeSend, pl)); err != nil {
			t.Fatalf("SendTask: %v", err)
		}
		got, _ := s.Outbox(ctx, row.ID)
		if got.State != store.OutboxFailed || got.Failure != FailureExpired || !strings.Contains(got.LastError, "before the send could start") {
			t.Errorf("welcome held up past its code = %s (%s): %q; want failed as expired before the send could start", got.State, got.Failure, got.LastError)
		}
		if n := len(ch.sent[WelcomeKeyPrefix+"held"]); n != 0 {
			t.Errorf("the welcome with a dead code reached the channel %d times", n)
		}
	})
}
