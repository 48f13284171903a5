package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestReleaseUnsentClaim: a message saved claimed whose first send was
// never settled goes back to pending (once); one whose send recorded an
// attempt (in flight or lost after the channel had it) stays claimed for
// Recover; a settled one is left alone.
func TestReleaseUnsentClaim(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		add := func(key string) *store.OutboxMessage {
			m := &store.OutboxMessage{IdempotencyKey: key, Channel: "wecom", Recipient: "wm1", Kind: "text", Payload: []byte(`{"text":"hi"}`)}
			if fresh, claimed, err := s.AddOutboxClaimed(ctx, m); err != nil || !fresh || !claimed {
				t.Fatal(fresh, claimed, err)
			}
			return m
		}
		add("reply:lost")
		attempted := add("reply:attempted")
		if err := s.RecordSendAttempt(ctx, &store.SendAttempt{OutboxID: attempted.ID, Attempt: 1, At: time.Now(), Outcome: "sent"}); err != nil {
			t.Fatal(err)
		}
		done := add("reply:done")
		if ok, err := s.SettleSend(ctx, done.ID, store.SendOutcome{State: store.OutboxSent},
			&store.SendAttempt{OutboxID: done.ID, Attempt: 1, At: time.Now(), Outcome: "sent"}); err != nil || !ok {
			t.Fatal(ok, err)
		}
		for _, c := range []struct {
			key   string
			want  bool
			state string
		}{{"reply:lost", true, store.OutboxPending}, {"reply:lost", false, store.OutboxPending},
			{"reply:attempted", false, store.OutboxSending}, {"reply:done", false, store.OutboxSent}, {"reply:none", false, ""}} {
			released, err := s.ReleaseUnsentClaim(ctx, c.key)
			if err != nil || released != c.want {
				t.Errorf("%s: released %v, %v; want %v", c.key, released, err, c.want)
			}
			if c.state != "" {
				if got, _ := s.OutboxByKey(ctx, c.key); got.State != c.state {
					t.Errorf("%s: state %s, want %s", c.key, got.State, c.state)
				}
			}
		}
	})
}
