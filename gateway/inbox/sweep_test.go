package inbox

import (
	"context"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/gateway/outbox"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// The sweep re-queues a pending welcome on the critical queue, other
// messages on default.
func TestSweepKeepsWelcomesCritical(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	ctx := context.Background()
	for _, key := range []string{outbox.WelcomeKeyPrefix + "evt:1", "wf:1:nudge:1"} {
		if _, err := s.AddOutbox(ctx, &store.OutboxMessage{IdempotencyKey: key, Channel: "wecom", Recipient: "wm1", Kind: "text", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	q := queuetest.New()
	if err := Sweep(ctx, s, q, -time.Minute, discard); err != nil {
		t.Fatal(err)
	}
	byQueue := q.ByQueue()
	if byQueue[queue.Critical] != 1 || byQueue[queue.Default] != 1 {
		t.Errorf("swept to queues %v, want one critical (the welcome) and one default", byQueue)
	}
}
