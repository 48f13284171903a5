package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"
)

// Retained counts what one StripExpired batch stripped; More is true
// while a full batch of some kind was found (call again).
type Retained struct {
	Inbox, Outbox, Events int64
	// Steps, Attempts and Handovers count the run steps, send attempts
	// and handovers whose free text was cleared.
	Steps, Attempts, Handovers int64
	More                       bool
}

// Add adds the counts of o to r (More is o's).
func (r *Retained) Add(o Retained) {
	r.Inbox, r.Outbox, r.Events = r.Inbox+o.Inbox, r.Outbox+o.Outbox, r.Events+o.Events
	r.Steps, r.Attempts, r.Handovers = r.Steps+o.Steps, r.Attempts+o.Attempts, r.Handovers+o.Handovers
	r.More = o.More
}

// Total is how many rows were stripped.
func (r Retained) Total() int64 {
	return r.Inbox + r.Outbox + r.Events + r.Steps + r.Attempts + r.Handovers
}

// Cursors of StripExpired: the last event id, the last finished_at of the
// run steps and the last send attempt id it looked at.
const (
	retentionCursor         = "privacy.retention.events"
	retentionStepsCursor    = "privacy.retention.run_steps"
	retentionAttemptsCursor = "privacy.retention.send_attempts"
)

// ExpiredOutcome is what an expired run step's outcome becomes.
const ExpiredOutcome = "expired"

// StripExpired strips personal data recorded before cutoff, at most limit
// rows of each kind: inbox payloads (of settled rows: pending ones are
// still to be processed) and outbox payloads (of sent or failed messages)
// become "{}" and the outbox's last errors are emptied, events keep only
// their non-personal attributes (StripAttributes), run steps finished
// before cutoff lose their outcome (it becomes "expired") and error,
// send attempts their error and handovers last changed before cutoff
// their reason: the free text a channel's answer may fill with a
// person's name or channel id. What the funnel and the statistics count
// stays (states, reason codes, attempts, failures, times). Call it while
// More is true. Events, run steps and send attempts are visited once, in
// order (cursors remember where it stopped).
func (s *Store) StripExpired(ctx context.Context, cutoff time.Time, limit int) (Retained, error) {
	var r Retained
	cutoff = cutoff.UTC()
	db := s.db.WithContext(ctx)
	res := db.Model(&InboxMessage{}).Where("id IN (?)", db.Model(&InboxMessage{}).Select("id").
		Where("created_at < ? AND state <> ? AND "+lengthOver("payload", 2), cutoff, InboxPending).Order("id").Limit(limit)).
		Update("payload", emptyPayload)
	if res.Error != nil {
		return r, fmt.Errorf("stripping inbox payloads: %w", translate(res.Error))
	}
	r.Inbox = res.RowsAffected
	res = db.Model(&OutboxMessage{}).Where("id IN (?)", db.Model(&OutboxMessage{}).Select("id").
		Where("created_at < ? AND state IN ? AND ("+lengthOver("payload", 2)+" OR (last_error <> '' AND last_error <> ?))",
			cutoff, []string{OutboxSent, OutboxFailed}, erasedLastError).Order("id").Limit(limit)).
		Updates(map[string]any{"payload": emptyPayload, "delivery_detail": "",
			"last_error": gorm.Expr("CASE WHEN last_error = ? THEN last_error ELSE '' END", erasedLastError)})
	if res.Error != nil {
		return r, fmt.Errorf("stripping outbox payloads: %w", translate(res.Error))
	}
	r.Outbox = res.RowsAffected

	cur, err := s.Cursor(ctx, retentionCursor)
	if err != nil {
		return r, err
	}
	after, _ := strconv.ParseInt(cur, 10, 64)
	var evs []Event
	if err := db.Select("id", "payload").Where("id > ? AND created_at < ?", after, cutoff).Order("id").Limit(limit).Find(&evs).Error; err != nil {
		return r, fmt.Errorf("reading expired events: %w", translate(err))
	}
	removed := map[string]int64{}
	for _, e := range evs {
		if stripped := StripAttributes(e.Payload); stripped != e.Payload {
			if err := count(removed, "events", db.Model(&Event{}).Where("id = ?", e.ID).Update("payload", stripped)); err != nil {
				return r, fmt.Errorf("stripping event %d: %w", e.ID, err)
			}
		}
	}
	r.Events = removed["events"]
	if len(evs) > 0 {
		if err := s.SetCursor(ctx, retentionCursor, strconv.FormatInt(evs[len(evs)-1].ID, 10)); err != nil {
			return r, err
		}
	}
	steps, err := s.stripExpiredSteps(ctx, cutoff, limit, &r)
	if err != nil {
		return r, err
	}
	attempts, err := s.stripExpiredAttempts(ctx, cutoff, limit, &r)
	if err != nil {
		return r, err
	}
	res = db.Model(&Handover{}).Where("id IN (?)", db.Model(&Handover{}).Select("id").
		Where("updated_at < ? AND reason <> ''", cutoff).Order("id").Limit(limit)).
		Update("reason", "")
	if res.Error != nil {
		return r, fmt.Errorf("clearing expired handover reasons: %w", translate(res.Error))
	}
	r.Handovers = res.RowsAffected
	r.More = r.Inbox == int64(limit) || r.Outbox == int64(limit) || len(evs) == limit ||
		steps == limit || attempts == limit || r.Handovers == int64(limit)
	return r, nil
}

// stripExpiredSteps clears the outcome and error of the run steps
// finished before cutoff, visiting steps in finished_at order from its
// cursor: at most limit distinct times, and every step of the last one
// (so ties are never split between batches). It returns how many steps
// it looked at.
func (s *Store) stripExpiredSteps(ctx context.Context, cutoff time.Time, limit int, r *Retained) (int, error) {
	db := s.db.WithContext(ctx)
	cur, err := s.Cursor(ctx, retentionStepsCursor)
	if err != nil {
		return 0, err
	}
	after := time.Time{}
	if cur != "" {
		if after, err = time.Parse(time.RFC3339Nano, cur); err != nil {
			return 0, fmt.Errorf("reading the run steps' retention cursor %q: %w", cur, err)
		}
	}
	var times []time.Time
	if err := db.Model(&RunStep{}).Where("finished_at > ? AND finished_at < ?", after, cutoff).
		Order("finished_at").Limit(limit).Pluck("finished_at", &times).Error; err != nil {
		return 0, fmt.Errorf("reading expired run steps: %w", translate(err))
	}
	if len(times) == 0 {
		return 0, nil
	}
	upto := times[len(times)-1]
	res := db.Model(&RunStep{}).
		Where("finished_at > ? AND finished_at <= ? AND finished_at < ?", after, upto, cutoff).
		Where("(outcome <> '' AND outcome NOT IN ?) OR error <> ''", []string{ExpiredOutcome, ErasedReason}).
		Updates(map[string]any{"outcome": gorm.Expr("CASE WHEN outcome = '' OR outcome = ? THEN outcome ELSE ? END", ErasedReason, ExpiredOutcome), "error": ""})
	if res.Error != nil {
		return 0, fmt.Errorf("clearing expired run steps: %w", translate(res.Error))
	}
	r.Steps = res.RowsAffected
	if err := s.SetCursor(ctx, retentionStepsCursor, upto.UTC().Format(time.RFC3339Nano)); err != nil {
		return 0, err
	}
	return len(times), nil
}

// stripExpiredAttempts empties the errors of the send attempts made
// before cutoff, visiting attempts in id order (the order they were
// made) from its cursor, and returns how many it looked at.
func (s *Store) stripExpiredAttempts(ctx context.Context, cutoff time.Time, limit int, r *Retained) (int, error) {
	db := s.db.WithContext(ctx)
	cur, err := s.Cursor(ctx, retentionAttemptsCursor)
	if err != nil {
		return 0, err
	}
	after, _ := strconv.ParseInt(cur, 10, 64)
	var rows []SendAttempt
	if err := db.Select("id", "at").Where("id > ?", after).Order("id").Limit(limit).Find(&rows).Error; err != nil {
		return 0, fmt.Errorf("reading expired send attempts: %w", translate(err))
	}
	var ids []int64
	for _, a := range rows {
		if !a.At.Before(cutoff) {
			break // attempts are made in id order: the rest are newer
		}
		ids = append(ids, a.ID)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	res := db.Model(&SendAttempt{}).Where("id IN ? AND error <> ''", ids).Update("error", "")
	if res.Error != nil {
		return 0, fmt.Errorf("clearing expired send attempts: %w", translate(res.Error))
	}
	r.Attempts = res.RowsAffected
	if err := s.SetCursor(ctx, retentionAttemptsCursor, strconv.FormatInt(ids[len(ids)-1], 10)); err != nil {
		return 0, err
	}
	return len(ids), nil
}

// migrateRetentionSteps indexes run steps by when they finished, for
// StripExpired.
func migrateRetentionSteps(tx *gorm.DB) error {
	return tx.Exec(`CREATE INDEX IF NOT EXISTS idx_run_steps_finished ON run_steps (finished_at)`).Error
}
