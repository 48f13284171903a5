package store

import (
	"context"
	"strings"
	"time"
)

// likeEscaper escapes a LIKE pattern's wildcards (with ESCAPE '\').
var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

// PendingDeliveries returns the ids of the sent messages whose
// idempotency key starts with keyPrefix and whose delivery is still
// pending (a WeCom message task its guide has not confirmed), oldest
// first. The pending ones are few (they settle within days), and the
// delivery index finds them.
func (s *Store) PendingDeliveries(ctx context.Context, keyPrefix string) ([]int64, error) {
	var ids []int64
	err := s.db.WithContext(ctx).Model(&OutboxMessage{}).
		Where(`delivery = ? AND state = ? AND idempotency_key LIKE ? ESCAPE '\'`, "pending", OutboxSent, likeEscaper.Replace(keyPrefix)+"%").
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
