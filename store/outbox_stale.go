package store

import (
	"context"
	"time"
)

// A claimed message (state sending) belongs to the handler that claimed
// it: only that handler knows whether the channel took it. When the
// handler's process dies (kill -9, OOM, a lost machine) the row would stay
// sending for ever. StaleSending finds such rows once their claim is
// older than a lease (longer than any send may take), and the Settle*
// methods below move one on after the channel was asked what became of
// it. Each is guarded by the claim it settles (state sending and the
// row's attempt count), so a row that its handler settled meanwhile, or
// that was claimed again since, is left alone.

// StaleSending lists messages claimed before cutoff and still sending,
// oldest claim first. Their claim time is updated_at: ClaimOutbox sets it,
// and nothing else touches a sending row until it leaves that state.
func (s *Store) StaleSending(ctx context.Context, cutoff time.Time, limit int) ([]OutboxMessage, error) {
	var out []OutboxMessage
	err := s.db.WithContext(ctx).Where("state = ? AND updated_at < ?", OutboxSending, cutoff.UTC()).
		Order("updated_at, id").Limit(Page{Limit: limit}.limit()).Find(&out).Error
	return out, translate(err)
}

// SettleStaleSent records that a stale claim did reach the channel (it
// listed the message): the row becomes sent with the channel's id, as
// FinishOutbox would have made it. settled is false when the claim was
// settled by someone else first.
func (s *Store) SettleStaleSent(ctx context.Context, m *OutboxMessage, externalID, delivery, note string) (settled bool, err error) {
	now := time.Now().UTC()
	return s.settleStale(ctx, m, map[string]any{"state": OutboxSent, "external_id": externalID, "sent_at": now,
		"delivery": delivery, "last_error": truncate(note, 1000), "updated_at": now})
}

// SettleStalePending returns a stale claim whose message did not reach
// the channel (or whose repeat the channel refuses) to pending, to be sent
// again.
func (s *Store) SettleStalePending(ctx context.Context, m *OutboxMessage, reason string) (settled bool, err error) {
	return s.settleStale(ctx, m, map[string]any{"state": OutboxPending, "last_error": truncate(reason, 1000),
		"updated_at": time.Now().UTC()})
}

// SettleStaleFailed fails a stale claim whose outcome cannot be learned:
// sending it again might deliver it twice, so an operator decides.
func (s *Store) SettleStaleFailed(ctx context.Context, m *OutboxMessage, reason string) (settled bool, err error) {
	return s.settleStale(ctx, m, map[string]any{"state": OutboxFailed, "failure": FailureOutcomeUnknown,
		"last_error": truncate(reason, 1000), "updated_at": time.Now().UTC()})
}

func (s *Store) settleStale(ctx context.Context, m *OutboxMessage, set map[string]any) (bool, error) {
	res := s.db.WithContext(ctx).Model(&OutboxMessage{}).
		Where("id = ? AND state = ? AND attempts = ?", m.ID, OutboxSending, m.Attempts).Updates(set)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}
