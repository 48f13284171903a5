package inbox

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/outbox"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
)

// Sweep queues inbox and outbox rows that were saved but whose task was
// lost (Redis unavailable at the time, or a crash between commit and
// enqueue). Queueing is keyed by row id, so a row already queued is not
// queued twice, and handlers skip rows already done.
func Sweep(ctx context.Context, s *store.Store, q queue.Enqueuer, olderThan time.Duration, log *slog.Logger) error {
	cutoff := time.Now().Add(-olderThan)
	ids, err := s.PendingInbox(ctx, cutoff, 1000)
	if err != nil {
		return fmt.Errorf("sweeping inbox: %w", err)
	}
	for _, id := range ids {
		// On the queue the recorder used: asynq's TaskIDs are unique per
		// queue only, and a second task of the row on another queue would
		// have it handled twice at once.
		lane := queue.Default
		if row, err := s.Inbox(ctx, id); err == nil {
			var in adapters.Inbound
			if json.Unmarshal(row.Payload, &in) == nil {
				lane = inboxQueue(&in)
			}
		}
		if err := queue.EnqueueID(ctx, q, TypeProcess, id, lane); err != nil {
			return fmt.Errorf("sweeping inbox: %w", err)
		}
	}
	msgs, err := s.PendingOutbox(ctx, cutoff, 1000)
	if err != nil {
		return fmt.Errorf("sweeping outbox: %w", err)
	}
	for _, m := range msgs {
		// A welcome keeps its critical lane: its code expires in 20 s.
		lane := queue.Default
		if strings.HasPrefix(m.IdempotencyKey, outbox.WelcomeKeyPrefix) {
			lane = queue.Critical
		}
		if err := queue.EnqueueID(ctx, q, outbox.TypeSend, m.ID, lane); err != nil {
			return fmt.Errorf("sweeping outbox: %w", err)
		}
	}
	if len(ids)+len(msgs) > 0 {
		log.Info("swept pending work", slog.Int("inbox", len(ids)), slog.Int("outbox", len(msgs)))
	}
	return nil
}
