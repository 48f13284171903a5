package store

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

// PruneInbox deletes processed inbox rows recorded before cutoff, in
// batches, and returns how many it deleted. A platform redelivers within
// minutes, so rows older than the retention window no longer guard
// against duplicates. Pending and failed rows are kept.
func (s *Store) PruneInbox(ctx context.Context, cutoff time.Time) (int64, error) {
	const batch = 5000
	var total int64
	for {
		res := s.db.WithContext(ctx).Exec(`DELETE FROM inbox_messages WHERE id IN (
			SELECT id FROM inbox_messages WHERE state = ? AND created_at < ? ORDER BY id LIMIT ?)`,
			InboxDone, cutoff.UTC(), batch)
		if res.Error != nil {
			return total, translate(res.Error)
		}
		total += res.RowsAffected
		if res.RowsAffected < batch {
			return total, nil
		}
	}
}

// RecordInbound writes a platform delivery to the inbox before it is
// acknowledged. A redelivery (same channel and dedup key) writes nothing
// and returns the existing row with fresh false.
func (s *Store) RecordInbound(ctx context.Context, m *InboxMessage) (fresh bool, err error) {
	if m.Channel == "" || m.DedupKey == "" {
		return false, invalid("dedup_key", "channel and dedup key are required")
	}
	if m.State == "" {
		m.State = InboxPending
	}
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(m)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	existing, err := s.InboxByKey(ctx, m.Channel, m.DedupKey)
	if err != nil {
		return false, err
	}
	*m = *existing
	return false, nil
}

// InboxByKey returns the inbox row of a delivery.
func (s *Store) InboxByKey(ctx context.Context, channel, dedupKey string) (*InboxMessage, error) {
	var m InboxMessage
	err := s.db.WithContext(ctx).Where("channel = ? AND dedup_key = ?", channel, dedupKey).Take(&m).Error
	if err != nil {
		return nil, translate(err)
	}
	return &m, nil
}
