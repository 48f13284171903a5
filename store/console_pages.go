package store

import (
	"context"
	"slices"
	"strings"
	"time"
)

// This file holds the queries of the console's members, commerce and
// operations pages that no other caller needs: a brand's members by name,
// store or guide; the coupons redeemed at a brand's tills; what each
// CloudEvent source sent; the inbox and outbox backlogs. Each pages by a
// keyset or is an aggregate.

// MemberSearch selects a brand's members: by a part of their name (as
// the brand knows it), by the store or guide they are bound to now.
// Members come in id order, after After.
type MemberSearch struct {
	Brand   string
	Name    string
	StoreID string
	GuideID string
	After   int64
	// Limit is 100 by default, at most 1000.
	Limit int
}

// SearchMembers lists a brand's members (merged and erased ones left
// out) that q selects.
func (s *Store) SearchMembers(ctx context.Context, q MemberSearch) ([]MemberRow, error) {
	if q.Brand == "" {
		return nil, invalid("brand", "a brand is required")
	}
	name := strings.TrimSpace(q.Name)
	members := "JOIN members m ON m.id = ms.member_id AND m.merged_into IS NULL AND m.erased_at IS NULL"
	db := s.db.WithContext(ctx).Table("memberships AS ms").
		Select("m.id AS id, "+brandName+" AS name, CASE WHEN ms.phone_known THEN m.phone_tail ELSE '' END AS phone_tail, "+
			"COALESCE(ms.level, '') AS level, ms.points AS points, COALESCE(b.guide_id, '') AS guide_id, COALESCE(b.store_id, '') AS store_id, ms.created_at AS joined_at").
		Joins(members).
		Joins("LEFT JOIN bindings b ON b.member_id = ms.member_id AND b.brand_id = ms.brand_id AND b.ended_at IS NULL").
		Where("ms.brand_id = ? AND ms.member_id > ?", q.Brand, q.After)
	if q.StoreID != "" {
		db = db.Where("b.store_id = ?", q.StoreID)
	}
	if q.GuideID != "" {
		db = db.Where("b.guide_id = ?", q.GuideID)
	}
	if name != "" {
		like := "%" + likeEscaper.Replace(strings.ToLower(name)) + "%"
		// The membership's search name: LOWER(brandName), kept by
		// triggers (member_search.go).
		db = db.Where(`ms.search_name LIKE ? ESCAPE '\'`, like)
	}
	var out []MemberRow
	err := db.Order("ms.member_id").Limit(Page{Limit: q.Limit}.limit()).Scan(&out).Error
	return out, translate(err)
}

// RedemptionQuery selects a brand's coupon redemptions (of one store
// when StoreID is set), newest first, before the id Before (0: from the
// newest).
type RedemptionQuery struct {
	Brand   string
	StoreID string
	Before  int64
	Limit   int
}

// CouponRedemptions lists the redemptions q selects, reversed ones too.
func (s *Store) CouponRedemptions(ctx context.Context, q RedemptionQuery) ([]CouponRedemption, error) {
	db := s.db.WithContext(ctx).Where("brand_id = ?", q.Brand)
	if q.StoreID != "" {
		db = db.Where("store_id = ?", q.StoreID)
	}
	if q.Before > 0 {
		db = db.Where("id < ?", q.Before)
	}
	var out []CouponRedemption
	err := db.Order("id DESC").Limit(Page{Limit: q.Limit}.limit()).Find(&out).Error
	return out, translate(err)
}

// SourceActivity is what one CloudEvent source of a brand sent since a
// time: its events received, those failed and those still waiting, and
// when the last one (and the last failed one) arrived.
type SourceActivity struct {
	Brand       string
	Source      string
	Received    int64
	Failed      int64
	Waiting     int64
	LastAt      time.Time
	LastFailure *time.Time
}

// sourceCols are the brand and CloudEvent source of a webhook inbox row,
// from its dedup key "brand source id" (webhook.DedupKey; a key too long
// to keep whole is "brand sha256:…", whose source shows as "sha256:…").
func (s *Store) sourceCols() (brand, source string) {
	if s.dialect == "postgres" {
		return "split_part(dedup_key, ' ', 1)", "split_part(dedup_key, ' ', 2)"
	}
	rest := "substr(dedup_key, instr(dedup_key, ' ') + 1)"
	return "substr(dedup_key, 1, instr(dedup_key, ' ') - 1)", "substr(" + rest + ", 1, instr(" + rest + ", ' ') - 1)"
}

// EventSourceActivity counts the CloudEvents the webhook channel received
// since a time by brand (one brand when brand is set) and source, from
// the inbox, the most recently active first.
func (s *Store) EventSourceActivity(ctx context.Context, brand string, since time.Time) ([]SourceActivity, error) {
	bcol, scol := s.sourceCols()
	type row struct {
		Brand, Source             string
		Received, Failed, Waiting int64
		LastAt                    string
		LastFailure               *string
	}
	db := s.db.WithContext(ctx).Model(&InboxMessage{}).
		Select(bcol+" AS brand, "+scol+" AS source, COUNT(*) AS received, "+
			"SUM(CASE WHEN state = ? THEN 1 ELSE 0 END) AS failed, SUM(CASE WHEN state = ? THEN 1 ELSE 0 END) AS waiting, "+
			"MAX(created_at) AS last_at, MAX(CASE WHEN state = ? THEN created_at END) AS last_failure", InboxFailed, InboxPending, InboxFailed).
		Where("channel = ? AND created_at >= ?", "webhook", utc(since))
	if brand != "" {
		db = db.Where("dedup_key LIKE ?", strings.NewReplacer("%", "_").Replace(brand)+" %")
	}
	var rows []row
	if err := db.Group(bcol + ", " + scol).Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]SourceActivity, 0, len(rows))
	for _, r := range rows {
		if brand != "" && r.Brand != brand {
			continue
		}
		a := SourceActivity{Brand: r.Brand, Source: r.Source, Received: r.Received, Failed: r.Failed, Waiting: r.Waiting, LastAt: parseDBTime(r.LastAt)}
		if r.LastFailure != nil {
			if t := parseDBTime(*r.LastFailure); !t.IsZero() {
				a.LastFailure = &t
			}
		}
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(a, b SourceActivity) int { return b.LastAt.Compare(a.LastAt) })
	return out, nil
}

// parseDBTime reads a MAX() of a time column, which SQLite answers as
// text and PostgreSQL as a timestamp gorm scans into a string.
func parseDBTime(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// Backlog is how many rows of one channel wait in the inbox or outbox in
// one state, and since when the oldest does.
type Backlog struct {
	Channel string
	State   string
	// Failure is the outbox's one-word reason of failed rows.
	Failure string
	Count   int64
	Oldest  string
	Newest  string
}

// OldestAt and NewestAt are Oldest and Newest as times.
func (b Backlog) OldestAt() time.Time { return parseDBTime(b.Oldest) }
func (b Backlog) NewestAt() time.Time { return parseDBTime(b.Newest) }

// InboxBacklog counts the inbox rows not done (pending: waiting to be
// processed; failed: given up) by channel and state.
func (s *Store) InboxBacklog(ctx context.Context) ([]Backlog, error) {
	var out []Backlog
	err := s.db.WithContext(ctx).Model(&InboxMessage{}).
		Select("channel, state, COUNT(*) AS count, MIN(created_at) AS oldest, MAX(created_at) AS newest").
		Where("state IN ?", []string{InboxPending, InboxFailed}).Group("channel, state").Order("channel, state").Scan(&out).Error
	return out, translate(err)
}

// OutboxBacklog counts the outbox rows waiting to be sent (pending and
// sending) by channel and state, and those failed since a time by
// channel and failure.
func (s *Store) OutboxBacklog(ctx context.Context, failedSince time.Time) ([]Backlog, error) {
	var out []Backlog
	db := s.db.WithContext(ctx).Model(&OutboxMessage{})
	err := db.Select("channel, state, '' AS failure, COUNT(*) AS count, MIN(created_at) AS oldest, MAX(created_at) AS newest").
		Where("state IN ?", []string{OutboxPending, OutboxSending}).Group("channel, state").Order("channel, state").Scan(&out).Error
	if err != nil {
		return nil, translate(err)
	}
	var failed []Backlog
	err = s.db.WithContext(ctx).Model(&OutboxMessage{}).
		Select("channel, state, failure, COUNT(*) AS count, MIN(updated_at) AS oldest, MAX(updated_at) AS newest").
		Where("state = ? AND updated_at >= ?", OutboxFailed, utc(failedSince)).Group("channel, state, failure").
		Order("count DESC, channel, failure").Scan(&failed).Error
	return append(out, failed...), translate(err)
}

// FailedSends lists the outbox rows failed since a time, of one channel
// and failure when set, newest first, before the id Before.
func (s *Store) FailedSends(ctx context.Context, channel, failure string, since time.Time, before int64, limit int) ([]OutboxMessage, error) {
	db := s.db.WithContext(ctx).Select("id, channel, member_id, guide_id, brand_id, kind, state, attempts, last_error, failure, created_at, updated_at").
		Where("state = ? AND updated_at >= ?", OutboxFailed, utc(since))
	if channel != "" {
		db = db.Where("channel = ?", channel)
	}
	if failure != "" {
		db = db.Where("failure = ?", failure)
	}
	if before > 0 {
		db = db.Where("id < ?", before)
	}
	var out []OutboxMessage
	return out, translate(db.Order("id DESC").Limit(Page{Limit: limit}.limit()).Find(&out).Error)
}
