package store

import (
	"context"
	"time"
)

// DeferOutbox notes that a pending message waits for a send slot at until
// (the channel's rate limit queued it again): its updated_at moves to
// until, so PendingOutbox, and the sweep that re-queues lost messages,
// leave it alone until its slot has passed.
func (s *Store) DeferOutbox(ctx context.Context, id int64, until time.Time) error {
	return translate(s.db.WithContext(ctx).Model(&OutboxMessage{}).Where("id = ? AND state = ?", id, OutboxPending).
		Update("updated_at", until.UTC()).Error)
}
