package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
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

// RecordInboundBatch writes many deliveries in one statement and reports,
// per message, whether it was new; m.ID is set for every message (new or
// already recorded). Duplicates inside the batch count once.
//
// Rows are inserted in key order, so that concurrent batches sharing keys
// take the unique index's locks in the same order and cannot deadlock.
// Deliveries already recorded are read back with one query per channel.
func (s *Store) RecordInboundBatch(ctx context.Context, msgs []*InboxMessage) ([]bool, error) {
	fresh := make([]bool, len(msgs))
	if len(msgs) == 0 {
		return fresh, nil
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	first := make(map[inboxKey]int, len(msgs))
	uniq := make([]*InboxMessage, 0, len(msgs))
	for i, m := range msgs {
		if m.Channel == "" || m.DedupKey == "" {
			return nil, invalid("dedup_key", "channel and dedup key are required")
		}
		k := inboxKey{m.Channel, m.DedupKey}
		if _, dup := first[k]; dup {
			continue
		}
		first[k] = i
		if m.State == "" {
			m.State = InboxPending
		}
		if m.CreatedAt.IsZero() {
			m.CreatedAt = now
		}
		uniq = append(uniq, m)
	}
	slices.SortFunc(uniq, func(a, b *InboxMessage) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.DedupKey, b.DedupKey))
	})
	var (
		inserted map[inboxKey]int64
		err      error
	)
	if s.dialect == "postgres" {
		inserted, err = s.insertInboxArrays(ctx, uniq)
	} else {
		inserted, err = s.insertInboxValues(ctx, uniq)
	}
	if err != nil {
		return nil, err
	}
	// Deliveries recorded before: read them back, one query per channel.
	var missing map[string][]string
	for _, m := range uniq {
		if _, ok := inserted[inboxKey{m.Channel, m.DedupKey}]; !ok {
			if missing == nil {
				missing = map[string][]string{}
			}
			missing[m.Channel] = append(missing[m.Channel], m.DedupKey)
		}
	}
	existing := make(map[inboxKey]*InboxMessage)
	for ch, keys := range missing {
		var rows []*InboxMessage
		if err := s.db.WithContext(ctx).Where("channel = ? AND dedup_key IN ?", ch, keys).Find(&rows).Error; err != nil {
			return nil, translate(err)
		}
		for _, r := range rows {
			existing[inboxKey{r.Channel, r.DedupKey}] = r
		}
	}
	for i, m := range msgs {
		k := inboxKey{m.Channel, m.DedupKey}
		if id, ok := inserted[k]; ok {
			m.ID = id
			fresh[i] = first[k] == i
			continue
		}
		e, ok := existing[k]
		if !ok {
			// Neither inserted nor there: a row deleted in between
			// (pruned); the caller retries the delivery.
			return nil, fmt.Errorf("recording inbound %s/%s: %w", m.Channel, m.DedupKey, ErrNotFound)
		}
		*m = *e
	}
	return fresh, nil
}

type inboxKey struct{ ch, k string }

// insertInboxArrays inserts rows on PostgreSQL with one statement whose
// text does not depend on the batch size: five array parameters, unnested
// in order. It stays prepared on every connection and binds five values
// instead of five per row.
func (s *Store) insertInboxArrays(ctx context.Context, rows []*InboxMessage) (map[inboxKey]int64, error) {
	chans := make([]string, len(rows))
	keys := make([]string, len(rows))
	payloads := make([][]byte, len(rows))
	states := make([]string, len(rows))
	created := make([]time.Time, len(rows))
	for i, m := range rows {
		chans[i], keys[i], payloads[i], states[i], created[i] = m.Channel, m.DedupKey, m.Payload, m.State, m.CreatedAt
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, err
	}
	res, err := sqlDB.QueryContext(ctx, `INSERT INTO inbox_messages (channel, dedup_key, payload, state, attempts, last_error, created_at)
SELECT u.channel, u.dedup_key, u.payload, u.state, 0, '', u.created_at
FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::timestamptz[]) WITH ORDINALITY
	AS u(channel, dedup_key, payload, state, created_at, n)
ORDER BY u.n
ON CONFLICT (channel, dedup_key) DO NOTHING
RETURNING id, channel, dedup_key`, chans, keys, payloads, states, created)
	if err != nil {
		return nil, translate(err)
	}
	return scanInserted(res, len(rows))
}

// insertInboxValues inserts rows with a multi-row VALUES list (SQLite).
func (s *Store) insertInboxValues(ctx context.Context, rows []*InboxMessage) (map[inboxKey]int64, error) {
	var sb strings.Builder
	args := make([]any, 0, len(rows)*5)
	sb.WriteString("INSERT INTO inbox_messages (channel, dedup_key, payload, state, attempts, last_error, created_at) VALUES ")
	for i, m := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(?, ?, ?, ?, 0, '', ?)")
		args = append(args, m.Channel, m.DedupKey, m.Payload, m.State, m.CreatedAt)
	}
	sb.WriteString(" ON CONFLICT (channel, dedup_key) DO NOTHING RETURNING id, channel, dedup_key")
	res, err := s.db.WithContext(ctx).Raw(sb.String(), args...).Rows()
	if err != nil {
		return nil, translate(err)
	}
	return scanInserted(res, len(rows))
}

func scanInserted(rows *sql.Rows, n int) (map[inboxKey]int64, error) {
	inserted := make(map[inboxKey]int64, n)
	for rows.Next() {
		var (
			id     int64
			ch, dk string
		)
		if err := rows.Scan(&id, &ch, &dk); err != nil {
			rows.Close()
			return nil, translate(err)
		}
		inserted[inboxKey{ch, dk}] = id
	}
	if err := rows.Close(); err != nil {
		return nil, translate(err)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return inserted, nil
}

// Inbox returns one inbox row.
func (s *Store) Inbox(ctx context.Context, id int64) (*InboxMessage, error) {
	return byID[InboxMessage](ctx, s.db, id)
}

// FinishInbox marks a delivery processed.
func (s *Store) FinishInbox(ctx context.Context, id int64) error {
	now := time.Now().UTC()
	return translate(s.single(ctx).Model(&InboxMessage{}).Where("id = ?", id).
		Updates(map[string]any{"state": InboxDone, "processed_at": now, "last_error": ""}).Error)
}

// FailInbox records a processing failure; final marks the delivery failed
// for good, otherwise it stays pending for the next attempt.
func (s *Store) FailInbox(ctx context.Context, id int64, reason string, final bool) error {
	set := map[string]any{"attempts": clause.Expr{SQL: "attempts + 1"}, "last_error": truncate(reason, 1000)}
	if final {
		set["state"] = InboxFailed
	}
	return translate(s.db.WithContext(ctx).Model(&InboxMessage{}).Where("id = ? AND state = ?", id, InboxPending).Updates(set).Error)
}

// PendingInbox lists ids of deliveries recorded before cutoff and not yet
// processed, oldest first, for the sweep that re-enqueues them.
func (s *Store) PendingInbox(ctx context.Context, cutoff time.Time, limit int) ([]int64, error) {
	var ids []int64
	err := s.db.WithContext(ctx).Model(&InboxMessage{}).Where("state = ? AND created_at < ?", InboxPending, cutoff.UTC()).
		Order("id").Limit(Page{Limit: limit}.limit()).Pluck("id", &ids).Error
	return ids, translate(err)
}

// Cursor returns a stored cursor ("" when none), e.g. a WeCom kf sync
// position.
func (s *Store) Cursor(ctx context.Context, key string) (string, error) {
	var c Cursor
	err := s.db.WithContext(ctx).Where("key = ?", key).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", nil
	}
	return c.Value, translate(err)
}

// SetCursor stores a cursor.
func (s *Store) SetCursor(ctx context.Context, key, value string) error {
	return translate(s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "key"}}, DoUpdates: clause.AssignmentColumns([]string{"value", "updated_at"}),
	}).Create(&Cursor{Key: key, Value: value}).Error)
}

// InboxRows lists a channel's inbox rows whose dedup key starts with
// prefix, oldest first.
func (s *Store) InboxRows(ctx context.Context, channel, prefix string, limit int) ([]InboxMessage, error) {
	// LIKE wildcards in the prefix become single-character matches; the
	// exact prefix is checked below.
	pattern := strings.NewReplacer("%", "_").Replace(prefix) + "%"
	var rows []InboxMessage
	err := s.db.WithContext(ctx).Where("channel = ? AND dedup_key LIKE ?", channel, pattern).
		Order("id").Limit(Page{Limit: limit}.limit()).Find(&rows).Error
	out := rows[:0]
	for _, r := range rows {
		if strings.HasPrefix(r.DedupKey, prefix) {
			out = append(out, r)
		}
	}
	return out, translate(err)
}

// InboxWaiting counts the deliveries recorded and not yet processed, and
// returns when the oldest of them was recorded (zero when none waits).
func (s *Store) InboxWaiting(ctx context.Context) (n int64, oldest time.Time, err error) {
	db := s.db.WithContext(ctx)
	if err := db.Model(&InboxMessage{}).Where("state = ?", InboxPending).Count(&n).Error; err != nil {
		return 0, time.Time{}, translate(err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	var first InboxMessage
	err = db.Select("id", "created_at").Where("state = ?", InboxPending).Order("id").Take(&first).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return n, time.Time{}, nil // processed meanwhile
	}
	if err != nil {
		return 0, time.Time{}, translate(err)
	}
	return n, first.CreatedAt, nil
}
