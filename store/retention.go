package store

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Retained counts what one StripExpired batch stripped; More is true
// while a full batch of some kind was found (call again).
type Retained struct {
	Inbox, Outbox, Events int64
	More                  bool
}

// retentionCursor is the last event id StripExpired looked at.
const retentionCursor = "privacy.retention.events"

// StripExpired strips personal data recorded before cutoff, at most limit
// rows of each kind: inbox payloads (of settled rows: pending ones are
// still to be processed) and outbox payloads (of sent or failed messages)
// become "{}", events keep only their non-personal attributes
// (StripAttributes). Call it while More is true. Events are
// visited once, in id order (a cursor remembers where it stopped).
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
		Where("created_at < ? AND state IN ? AND "+lengthOver("payload", 2), cutoff, []string{OutboxSent, OutboxFailed}).Order("id").Limit(limit)).
		Updates(map[string]any{"payload": emptyPayload, "delivery_detail": ""})
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
	r.More = r.Inbox == int64(limit) || r.Outbox == int64(limit) || len(evs) == limit
	return r, nil
}
