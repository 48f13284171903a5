package store

import (
	"context"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// AddOutbox saves a message to send. A message with the same idempotency
// key is saved once: fresh is false and m is filled from the saved row.
func (s *Store) AddOutbox(ctx context.Context, m *OutboxMessage) (fresh bool, err error) {
	if m.IdempotencyKey == "" || m.Channel == "" || m.Recipient == "" {
		return false, invalid("idempotency_key", "idempotency key, channel and recipient are required")
	}
	if m.State == "" {
		m.State = OutboxPending
	}
	res := s.single(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(m)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	return false, translate(s.db.WithContext(ctx).Where("idempotency_key = ?", m.IdempotencyKey).Take(m).Error)
}

// Outbox returns one outbox row.
func (s *Store) Outbox(ctx context.Context, id int64) (*OutboxMessage, error) {
	return byID[OutboxMessage](ctx, s.db, id)
}

// ClaimOutbox moves a pending message to sending in one guarded update and
// returns it; claimed is false when another handler has it or it is done,
// so a duplicate or retried task sends nothing twice.
func (s *Store) ClaimOutbox(ctx context.Context, id int64) (m *OutboxMessage, claimed bool, err error) {
	// A message to a member whose part was erased is never sent, even one
	// written after the erasure by a run that was mid-step: the claim's
	// own update fails it instead (its guard is read once, in the
	// update's snapshot), and it is not claimed.
	erased := func(then, otherwise string, args ...any) clause.Expr {
		return gorm.Expr("CASE WHEN "+erasedOutboxGuard+" THEN "+then+" ELSE "+otherwise+" END", args...)
	}
	claim := func(tx *gorm.DB, row *OutboxMessage) *gorm.DB {
		return tx.Model(row).
			Where("id = ? AND state = ?", id, OutboxPending).
			Updates(map[string]any{"state": erased("?", "?", OutboxFailed, OutboxSending),
				"attempts": erased("attempts", "attempts + 1"), "failure": erased("?", "failure", ErasedReason),
				"last_error": erased("?", "last_error", "member erased"), "payload": erased("?", "payload", emptyPayload),
				"updated_at": time.Now().UTC()})
	}
	if s.dialect == "postgres" {
		// The claim returns the row it claimed: one statement.
		var row OutboxMessage
		res := claim(s.single(ctx).Clauses(clause.Returning{}), &row)
		if res.Error != nil {
			return nil, false, translate(res.Error)
		}
		if res.RowsAffected == 1 {
			return &row, row.State == OutboxSending, nil
		}
		// Not pending: another handler has it, or it is done.
		m, err := s.Outbox(ctx, id)
		return m, false, err
	}
	// The claim and the read-back commit together: if the read fails (the
	// database went away between them), the claim is rolled back and a
	// retry can claim the row, instead of it staying "sending" for ever.
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := claim(tx, &OutboxMessage{})
		if res.Error != nil {
			return res.Error
		}
		var row OutboxMessage
		if err := tx.Where("id = ?", id).Take(&row).Error; err != nil {
			return err
		}
		m, claimed = &row, res.RowsAffected == 1 && row.State == OutboxSending
		return nil
	})
	if err != nil {
		return nil, false, translate(err)
	}
	return m, claimed, nil
}

// FinishOutbox records a message the channel accepted; delivery is
// "pending" for one that completes later (see SetDelivery), else "".
func (s *Store) FinishOutbox(ctx context.Context, id int64, externalID, delivery string) error {
	now := time.Now().UTC()
	return s.moveOutbox(ctx, id, OutboxSending, map[string]any{"state": OutboxSent, "external_id": externalID,
		"sent_at": now, "last_error": "", "updated_at": now, "delivery": delivery})
}

// SetDelivery records what became of a sent message that was pending.
func (s *Store) SetDelivery(ctx context.Context, id int64, delivery, detail string) error {
	return translate(s.db.WithContext(ctx).Model(&OutboxMessage{}).Where("id = ? AND state = ?", id, OutboxSent).
		Updates(map[string]any{"delivery": delivery, "delivery_detail": truncate(detail, 500), "updated_at": time.Now().UTC()}).Error)
}

// ReleaseOutbox returns a message whose send failed transiently to pending,
// for the next attempt.
func (s *Store) ReleaseOutbox(ctx context.Context, id int64, reason string) error {
	return s.moveOutbox(ctx, id, OutboxSending, map[string]any{"state": OutboxPending, "last_error": truncate(reason, 1000),
		"updated_at": time.Now().UTC()})
}

// FailOutbox records a message that will not be sent.
func (s *Store) FailOutbox(ctx context.Context, id int64, reason string) error {
	return s.FailOutboxFor(ctx, id, "", reason)
}

// FailOutboxFor records a message that will not be sent, with its failure
// in a word (see OutboxMessage.Failure) and the channel's reason.
func (s *Store) FailOutboxFor(ctx context.Context, id int64, failure, reason string) error {
	return translate(s.db.WithContext(ctx).Model(&OutboxMessage{}).Where("id = ? AND state IN ?", id, []string{OutboxPending, OutboxSending}).
		Updates(map[string]any{"state": OutboxFailed, "failure": truncate(failure, 32), "last_error": truncate(reason, 1000),
			"updated_at": time.Now().UTC()}).Error)
}

func (s *Store) moveOutbox(ctx context.Context, id int64, from string, set map[string]any) error {
	return translate(s.single(ctx).Model(&OutboxMessage{}).Where("id = ? AND state = ?", id, from).Updates(set).Error)
}

// PendingOutbox lists messages pending since before cutoff: saved but
// never handed to a worker, or released for a retry that was lost.
func (s *Store) PendingOutbox(ctx context.Context, cutoff time.Time, limit int) ([]OutboxMessage, error) {
	var out []OutboxMessage
	err := s.db.WithContext(ctx).Where("state = ? AND updated_at < ?", OutboxPending, cutoff.UTC()).
		Order("id").Limit(Page{Limit: limit}.limit()).Find(&out).Error
	return out, translate(err)
}

// truncate cuts s to at most n bytes, at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// SendAttempt is one try at delivering an outbox message, kept for
// operators: when, how long it took, and what the channel answered.
type SendAttempt struct {
	ID         int64     `gorm:"primaryKey;autoIncrement" json:"id"`
	OutboxID   int64     `gorm:"not null;index" json:"outbox_id"`
	Attempt    int       `gorm:"not null" json:"attempt"`
	At         time.Time `gorm:"not null" json:"at"`
	DurationMS int64     `gorm:"not null" json:"duration_ms"`
	// Outcome is sent, retry (a temporary failure) or failed.
	Outcome string `gorm:"size:16;not null" json:"outcome"`
	Error   string `gorm:"size:500;not null;default:''" json:"error,omitempty"`
}

// RecordSendAttempt appends an attempt to the log.
func (s *Store) RecordSendAttempt(ctx context.Context, a *SendAttempt) error {
	a.Error = truncate(a.Error, 500)
	return translate(s.single(ctx).Create(a).Error)
}

// SendAttempts lists a message's attempts in order.
func (s *Store) SendAttempts(ctx context.Context, outboxID int64) ([]SendAttempt, error) {
	var out []SendAttempt
	err := s.db.WithContext(ctx).Where("outbox_id = ?", outboxID).Order("id").Find(&out).Error
	return out, translate(err)
}
