package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// A message sent by the handler that made it (a bot's reply, a welcome)
// skips the queue: it is saved already claimed by that handler, sent,
// and its outcome and attempt recorded in one statement. The claim is
// the same as ClaimOutbox's (state sending, its attempt counted,
// updated_at its start), so a handler that dies mid-send leaves a row
// that Recover settles once its lease is over, as for a queued send.

// AddOutboxClaimed saves a message already claimed for its first send
// (state sending, attempts 1, updated_at now: its lease starts), in one
// statement. A message to a member whose part was erased is saved failed
// instead, with its payload emptied, as ClaimOutbox would fail it, and is
// not claimed. A message with the same idempotency key is saved once:
// fresh is false, nothing is claimed, and m is filled from the saved row.
func (s *Store) AddOutboxClaimed(ctx context.Context, m *OutboxMessage) (fresh, claimed bool, err error) {
	if m.IdempotencyKey == "" || m.Channel == "" || m.Recipient == "" {
		return false, false, invalid("idempotency_key", "idempotency key, channel and recipient are required")
	}
	now := utc(time.Now())
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	m.CreatedAt = utc(m.CreatedAt)
	c := func(typ string) string { return "?" } // a parameter of SQL type typ
	if s.dialect == "postgres" {
		// Not "(?": gorm expands a slice (the payload) after "(" into a list.
		c = func(typ string) string { return "CAST( ? AS " + typ + ")" }
	}
	var member any
	if m.MemberID != nil {
		member = *m.MemberID
	}
	// The erasure check is the claim's guard (erasedOutboxGuard) on the
	// row to be: read once, in the insert's snapshot.
	q := `INSERT INTO outbox_messages (idempotency_key, channel, recipient, member_id, guide_id, brand_id, kind, payload,
	state, attempts, last_error, failure, external_id, delivery, delivery_detail, created_at, updated_at)
SELECT ` + c("text") + `, ` + c("text") + `, ` + c("text") + `, ` + c("bigint") + `, ` + c("text") + `, ` + c("text") + `, ` + c("text") + `,
	CASE WHEN x.erased THEN ` + c("bytea") + ` ELSE ` + c("bytea") + ` END,
	CASE WHEN x.erased THEN ` + c("text") + ` ELSE ` + c("text") + ` END, CASE WHEN x.erased THEN 0 ELSE 1 END,
	CASE WHEN x.erased THEN ` + c("text") + ` ELSE '' END, CASE WHEN x.erased THEN ` + c("text") + ` ELSE '' END, '', '', '',
	` + c("timestamptz") + `, ` + c("timestamptz") + `
FROM (SELECT EXISTS (SELECT 1 FROM member_erasures e WHERE e.member_id = ` + c("bigint") + `
	AND (e.brand_id = '' OR e.brand_id = ` + c("text") + `)) AS erased) x
WHERE true
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id, state`
	args := []any{m.IdempotencyKey, m.Channel, m.Recipient, member, m.GuideID, m.BrandID, m.Kind, emptyPayload, m.Payload,
		OutboxFailed, OutboxSending, "member erased", ErasedReason, m.CreatedAt, now, member, m.BrandID}
	rows, err := s.single(ctx).Raw(q, args...).Rows()
	if err != nil {
		return false, false, translate(err)
	}
	if rows.Next() {
		if err := rows.Scan(&m.ID, &m.State); err != nil {
			rows.Close()
			return false, false, translate(err)
		}
		if err := rows.Close(); err != nil {
			return false, false, translate(err)
		}
		m.UpdatedAt = now
		if m.State == OutboxSending {
			m.Attempts, m.Failure, m.LastError = 1, "", ""
			return true, true, nil
		}
		m.Attempts, m.Failure, m.LastError, m.Payload = 0, ErasedReason, "member erased", emptyPayload
		return true, false, nil
	}
	if err := rows.Close(); err != nil {
		return false, false, translate(err)
	}
	if err := rows.Err(); err != nil {
		return false, false, translate(err)
	}
	// Saved before (a handler handling its delivery again).
	return false, false, translate(s.db.WithContext(ctx).Where("idempotency_key = ?", m.IdempotencyKey).Take(m).Error)
}

// SendOutcome is what became of a claimed send, for SettleSend.
type SendOutcome struct {
	// State is OutboxSent (the channel accepted it), OutboxFailed (it
	// will not be sent) or OutboxPending (released for another attempt).
	State string
	// ExternalID and Delivery, of a sent message: the channel's id, and
	// "pending" for one that completes later (see SetDelivery).
	ExternalID, Delivery string
	// Failure, of a failed message, in a word (OutboxMessage.Failure).
	Failure string
	// Reason, of a failed or released message, is the channel's answer.
	Reason string
}

// SettleSend records the outcome of the claim of message id and its
// attempt, together: in one statement on PostgreSQL (one transaction on
// SQLite). Both are guarded by the claim (state sending): settling a row
// that is no longer sending (Recover took it back, or this ran before and
// only its answer was lost) changes nothing and records no attempt, so it
// may be run again. settled reports whether it moved the row.
func (s *Store) SettleSend(ctx context.Context, id int64, o SendOutcome, a *SendAttempt) (settled bool, err error) {
	now := utc(time.Now())
	set := "state = ?, updated_at = ?"
	args := []any{o.State, now}
	switch o.State {
	case OutboxSent:
		set += ", external_id = ?, sent_at = ?, delivery = ?, last_error = ''"
		args = append(args, o.ExternalID, now, o.Delivery)
	case OutboxFailed:
		set += ", failure = ?, last_error = ?"
		args = append(args, truncate(o.Failure, 32), truncate(o.Reason, 1000))
	case OutboxPending:
		set += ", last_error = ?"
		args = append(args, truncate(o.Reason, 1000))
	default:
		return false, invalid("state", "a send settles as sent, failed or pending, not %q", o.State)
	}
	update := "UPDATE outbox_messages SET " + set + " WHERE id = ? AND state = ?"
	args = append(args, id, OutboxSending)
	a.OutboxID, a.Error = id, truncate(a.Error, 500)
	attempt := []any{a.Attempt, utc(a.At), a.DurationMS, a.Outcome, a.Error}
	if s.dialect == "postgres" {
		q := "WITH u AS (" + update + " RETURNING id) INSERT INTO send_attempts (outbox_id, attempt, at, duration_ms, outcome, error) " +
			"SELECT u.id, CAST(? AS bigint), CAST(? AS timestamptz), CAST(? AS bigint), CAST(? AS text), CAST(? AS text) FROM u"
		res := s.single(ctx).Exec(q, append(args, attempt...)...)
		if res.Error != nil {
			return false, translate(res.Error)
		}
		return res.RowsAffected == 1, nil
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(update, args...)
		if res.Error != nil || res.RowsAffected != 1 {
			return res.Error
		}
		settled = true
		a.ID = 0
		return tx.Create(a).Error
	})
	return settled, translate(err)
}

// ReleaseUnsentClaim gives back to pending the message of key if it is
// claimed by its first send and that send was never settled (no outcome,
// no attempt): for the handler that saved it claimed (AddOutboxClaimed)
// but lost the insert's answer, and so never called the channel. It
// reports whether there was such a row.
func (s *Store) ReleaseUnsentClaim(ctx context.Context, key string) (bool, error) {
	res := s.single(ctx).Exec(`UPDATE outbox_messages SET state = ?, updated_at = ?
		WHERE idempotency_key = ? AND state = ? AND attempts = 1
		AND NOT EXISTS (SELECT 1 FROM send_attempts a WHERE a.outbox_id = outbox_messages.id)`,
		OutboxPending, utc(time.Now()), key, OutboxSending)
	return res.RowsAffected == 1, translate(res.Error)
}
