package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// PendingDeliveries returns the ids of the sent messages whose
// idempotency key starts with keyPrefix and whose delivery is still
// pending (a WeCom message task its guide has not confirmed), oldest
// first. It runs each time a run ends at a goal or an exit, while a
// campaign may have 100,000 tasks pending: the pending rows' keys have an
// index of their own (migration 0045_outbox_pending_keys; on PostgreSQL
// with text_pattern_ops, byte order whatever the database's collation).
// With 200,000 pending sends: 0.08 ms, where the delivery index took 30.
func (s *Store) PendingDeliveries(ctx context.Context, keyPrefix string) ([]int64, error) {
	if keyPrefix == "" || keyPrefix[len(keyPrefix)-1] == 0xff {
		return nil, invalid("key_prefix", "a key prefix is required")
	}
	// The keys from the prefix up to the prefix with its last byte one
	// higher: a range the index serves in a generic plan too (a LIKE
	// prefix is used only when its pattern is known at planning).
	upper := keyPrefix[:len(keyPrefix)-1] + string([]byte{keyPrefix[len(keyPrefix)-1] + 1})
	ge, lt := ">=", "<" // SQLite's BINARY collation compares bytes
	if s.dialect == "postgres" {
		ge, lt = "~>=~", "~<~" // bytewise, as the index's text_pattern_ops
	}
	var ids []int64
	err := s.db.WithContext(ctx).Model(&OutboxMessage{}).
		// 'pending' written out, not a parameter: a generic plan uses
		// the partial index only when it sees its condition.
		Where("delivery = 'pending' AND idempotency_key "+ge+" ? AND idempotency_key "+lt+" ? AND state = ?", keyPrefix, upper, OutboxSent).
		Order("id").Pluck("id", &ids).Error
	return ids, translate(err)
}

// SettlePendingDelivery records what became of a sent message whose
// delivery is pending, in one guarded update: settled is false when it
// is not pending any more (a check or another withdrawal settled it).
func (s *Store) SettlePendingDelivery(ctx context.Context, id int64, delivery, detail string) (settled bool, err error) {
	res := s.single(ctx).Model(&OutboxMessage{}).Where("id = ? AND state = ? AND delivery = ?", id, OutboxSent, "pending").
		Updates(map[string]any{"delivery": delivery, "delivery_detail": truncate(detail, 500), "updated_at": time.Now().UTC()})
	return res.RowsAffected == 1, translate(res.Error)
}

// migrateOutboxPendingKeys indexes the keys of the sends whose delivery
// is pending (PendingDeliveries).
func migrateOutboxPendingKeys(tx *gorm.DB) error {
	q := `CREATE INDEX IF NOT EXISTS idx_outbox_pending_keys ON outbox_messages (idempotency_key) WHERE delivery = 'pending'`
	if tx.Dialector.Name() == "postgres" {
		q = `CREATE INDEX IF NOT EXISTS idx_outbox_pending_keys ON outbox_messages (idempotency_key text_pattern_ops) WHERE delivery = 'pending'`
	}
	return tx.Exec(q).Error
}
