package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// This file holds the guides' incentives: the append-only guide points
// ledger and its leaderboards, and members' opt-ins to offers of the
// other brands their store carries (cross-brand nudges).

// Kinds of guide points entries.
const (
	// GuidePointsBound: a member was bound to the guide.
	GuidePointsBound = "member_bound"
	// GuidePointsTask: the guide completed a task before its due time.
	GuidePointsTask = "task_on_time"
	// GuidePointsNudge: a bound member bought within the rules' days of a
	// workflow nudge.
	GuidePointsNudge = "nudge_purchase"
	// GuidePointsSales: points per yuan of the sales attributed to the
	// guide.
	GuidePointsSales = "sales"
	// GuidePointsClawback: a refund reversing purchase points (or a
	// coupon's redemption reversed).
	GuidePointsClawback = "clawback"
	// GuidePointsCoupon: a coupon the guide's message carried was
	// redeemed at the till.
	GuidePointsCoupon = "coupon_redeemed"
)

// GuidePointsEntry is one entry of the append-only guide points ledger:
// points a guide earned, or (negative, kind clawback) points a refund took
// back. Key names what earned it ("bound:acme:42:g-li", "order:17:sales",
// "refund:9:sales"), so writing it again (a redelivered event, a retried
// task) writes nothing. Entries are never edited or deleted.
type GuidePointsEntry struct {
	ID      int64  `gorm:"primaryKey;autoIncrement" json:"id"`
	Key     string `gorm:"column:entry_key;size:200;not null;uniqueIndex" json:"key"`
	GuideID string `gorm:"size:64;not null;index:idx_guide_points_guide,priority:1" json:"guide_id"`
	BrandID string `gorm:"size:64;not null;index:idx_guide_points_board,priority:1" json:"brand"`
	// StoreID is the guide's store when the points were earned: the
	// store leaderboard they count on.
	StoreID string `gorm:"size:64;not null;index:idx_guide_points_store" json:"store_id"`
	// Month is the month (YYYY-MM in ledger.time_zone) of EarnedAt, the
	// leaderboard period the entry counts in.
	Month    string `gorm:"size:7;not null;index:idx_guide_points_board,priority:2;index:idx_guide_points_guide,priority:2;index:idx_guide_points_store" json:"month"`
	Kind     string `gorm:"size:32;not null" json:"kind"`
	Points   int64  `gorm:"not null" json:"points"`
	MemberID int64  `gorm:"not null;default:0" json:"member_id,omitempty"`
	// OrderID, TaskID and RefundID are what earned (or reversed) it.
	OrderID  int64 `gorm:"not null;default:0;index" json:"order_id,omitempty"`
	TaskID   int64 `gorm:"not null;default:0" json:"task_id,omitempty"`
	RefundID int64 `gorm:"not null;default:0" json:"refund_id,omitempty"`
	// Rule says which rule gave the points, for people reading the ledger.
	Rule      string    `gorm:"size:200;not null;default:''" json:"rule"`
	EarnedAt  time.Time `gorm:"not null" json:"earned_at"`
	CreatedAt time.Time `json:"created_at"`
}

// TableName names the ledger.
func (GuidePointsEntry) TableName() string { return "guide_points_ledger" }

// CrossBrandOptIn records a member's answer to offers of one brand through
// the guide they are bound to for another (a collection store carrying
// both). Without a row, or with OptedIn false, the brand may not nudge
// them through another brand's guide.
type CrossBrandOptIn struct {
	MemberID int64 `gorm:"primaryKey;autoIncrement:false" json:"member_id"`
	// BrandID is the brand whose offers the member accepts or declines.
	BrandID   string    `gorm:"primaryKey;size:64" json:"brand"`
	OptedIn   bool      `gorm:"not null" json:"opted_in"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TableName names the table for the domain word.
func (CrossBrandOptIn) TableName() string { return "member_cross_brand" }

var monthRe = regexp.MustCompile(`^\d{4}-(0[1-9]|1[0-2])$`)

// ValidMonth reports whether m is a month written YYYY-MM.
func ValidMonth(m string) bool { return monthRe.MatchString(m) }

// AwardGuidePoints appends entries to the guide points ledger, each once
// per Key, in one transaction, and returns those that were new (an entry
// whose key is already written changes nothing).
func (s *Store) AwardGuidePoints(ctx context.Context, entries []GuidePointsEntry) ([]GuidePointsEntry, error) {
	for i := range entries {
		e := &entries[i]
		if err := errors.Join(requireText("key", e.Key, 200), ValidateID("guide_id", e.GuideID), ValidateID("brand", e.BrandID),
			limitText("rule", e.Rule, 200), requireText("kind", e.Kind, 32)); err != nil {
			return nil, fmt.Errorf("guide points entry %q: %w", e.Key, err)
		}
		if !ValidMonth(e.Month) {
			return nil, fmt.Errorf("guide points entry %q: %w", e.Key, invalid("month", "want YYYY-MM, got %q", e.Month))
		}
		e.EarnedAt = utc(e.EarnedAt)
	}
	var fresh []GuidePointsEntry
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for i := range entries {
			e := entries[i]
			e.ID = 0
			res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&e)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 1 {
				fresh = append(fresh, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, translate(err)
	}
	return fresh, nil
}

// GuidePointsFilter selects guide points entries; empty fields select all.
type GuidePointsFilter struct {
	GuideID string
	BrandID string
	Month   string
	OrderID int64
}

// GuidePoints lists guide points entries in id order (at most 1000).
func (s *Store) GuidePoints(ctx context.Context, f GuidePointsFilter) ([]GuidePointsEntry, error) {
	q := s.db.WithContext(ctx).Order("id").Limit(1000)
	if f.GuideID != "" {
		q = q.Where("guide_id = ?", f.GuideID)
	}
	if f.BrandID != "" {
		q = q.Where("brand_id = ?", f.BrandID)
	}
	if f.Month != "" {
		q = q.Where("month = ?", f.Month)
	}
	if f.OrderID != 0 {
		q = q.Where("order_id = ?", f.OrderID)
	}
	var out []GuidePointsEntry
	return out, translate(q.Find(&out).Error)
}

// GuidePointsTotal is the sum of a guide's entries in a month (YYYY-MM),
// of one brand when brand is set.
func (s *Store) GuidePointsTotal(ctx context.Context, guideID, brand, month string) (int64, error) {
	var total int64
	q := s.db.WithContext(ctx).Model(&GuidePointsEntry{}).Where("guide_id = ? AND month = ?", guideID, month)
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	err := q.Select("COALESCE(SUM(points), 0)").Scan(&total).Error
	return total, translate(err)
}

// LeaderboardQuery selects a leaderboard: a brand's guides, or one
// store's (of one brand when Brand is set), in a month.
type LeaderboardQuery struct {
	Brand   string
	StoreID string
	Month   string
	// Limit caps the rows (default 100, at most 1000); the ranks are
	// those of the whole board.
	Limit int
}

// LeaderboardRow is one guide's place on a leaderboard.
type LeaderboardRow struct {
	// Rank is 1 for the most points; guides with equal points share a
	// rank and the next rank skips (1, 2, 2, 4).
	Rank      int    `json:"rank"`
	GuideID   string `json:"guide_id"`
	GuideName string `json:"guide_name"`
	StoreID   string `json:"store_id"`
	Points    int64  `json:"points"`
}

// Leaderboard ranks guides by the points they earned in a month: with
// StoreID set, the entries earned in that store, else the brand's. Guides
// with no entries in the month are not on it; ties are ordered by guide
// id.
func (s *Store) Leaderboard(ctx context.Context, q LeaderboardQuery) ([]LeaderboardRow, error) {
	if !ValidMonth(q.Month) {
		return nil, invalid("period", "want a month YYYY-MM, got %q", q.Month)
	}
	if q.Brand == "" && q.StoreID == "" {
		return nil, invalid("brand", "a brand or a store is required")
	}
	db := s.db.WithContext(ctx).Model(&GuidePointsEntry{}).Where("month = ?", q.Month)
	if q.Brand != "" {
		db = db.Where("brand_id = ?", q.Brand)
	}
	if q.StoreID != "" {
		db = db.Where("store_id = ?", q.StoreID)
	}
	var sums []struct {
		GuideID string
		Points  int64
	}
	if err := db.Select("guide_id, SUM(points) AS points").Group("guide_id").Order("points DESC, guide_id").Scan(&sums).Error; err != nil {
		return nil, translate(err)
	}
	limit := Page{Limit: q.Limit}.limit()
	out := make([]LeaderboardRow, 0, min(len(sums), limit))
	ids := make([]string, 0, cap(out))
	for i, r := range sums {
		if i == limit {
			break
		}
		rank := i + 1
		if i > 0 && r.Points == sums[i-1].Points {
			rank = out[i-1].Rank
		}
		out = append(out, LeaderboardRow{Rank: rank, GuideID: r.GuideID, Points: r.Points})
		ids = append(ids, r.GuideID)
	}
	if len(ids) == 0 {
		return out, nil
	}
	var guides []Guide
	if err := s.db.WithContext(ctx).Where("id IN ?", ids).Find(&guides).Error; err != nil {
		return nil, translate(err)
	}
	for _, g := range guides {
		for i := range out {
			if out[i].GuideID == g.ID {
				out[i].GuideName, out[i].StoreID = g.Name, g.StoreID
			}
		}
	}
	return out, nil
}

// BoardPlace is where one guide stands on a leaderboard: Rank 0 when they
// have no points on it; Of counts the guides ranked.
type BoardPlace struct {
	Rank   int
	Of     int
	Points int64
	// Top are the board's first rows.
	Top []LeaderboardRow
}

// GuidePlace returns a guide's place on a leaderboard and its top n rows.
func (s *Store) GuidePlace(ctx context.Context, q LeaderboardQuery, guideID string, n int) (*BoardPlace, error) {
	q.Limit = 1000
	rows, err := s.Leaderboard(ctx, q)
	if err != nil {
		return nil, err
	}
	p := &BoardPlace{Of: len(rows), Top: rows[:min(n, len(rows))]}
	for _, r := range rows {
		if r.GuideID == guideID {
			p.Rank, p.Points = r.Rank, r.Points
		}
	}
	return p, nil
}

// OrderRefunds lists an order's refunds in the order they were recorded.
func (s *Store) OrderRefunds(ctx context.Context, orderID int64) ([]Refund, error) {
	var out []Refund
	err := s.db.WithContext(ctx).Where("order_id = ?", orderID).Order("id").Find(&out).Error
	return out, translate(err)
}

// Nudge is a workflow message sent (or being sent) to a member.
type Nudge struct {
	RunID  int64
	SentAt time.Time
	// GuideID is the guide the message went through or on behalf of;
	// empty when it went without one.
	GuideID string
}

// MemberNudges lists the workflow messages of a brand to a member
// counted in [from, to] (the send log), with the guide of each, oldest
// first; messages that failed for good are left out.
func (s *Store) MemberNudges(ctx context.Context, memberID int64, brand string, from, to time.Time) ([]Nudge, error) {
	var rows []struct {
		RunID   int64
		SentAt  time.Time
		GuideID *string
	}
	err := s.db.WithContext(ctx).Table("member_sends").
		Select("member_sends.run_id AS run_id, member_sends.sent_at AS sent_at, outbox_messages.guide_id AS guide_id").
		Joins("LEFT JOIN outbox_messages ON outbox_messages.idempotency_key = member_sends.send_key").
		Where("member_sends.member_id = ? AND member_sends.brand_id = ? AND member_sends.run_id IS NOT NULL", memberID, brand).
		Where("member_sends.sent_at >= ? AND member_sends.sent_at <= ?", utc(from), utc(to)).
		Where("(outbox_messages.state IS NULL OR outbox_messages.state <> ?)", OutboxFailed).
		Order("member_sends.sent_at, member_sends.id").Scan(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	out := make([]Nudge, len(rows))
	for i, r := range rows {
		out[i] = Nudge{RunID: r.RunID, SentAt: r.SentAt}
		if r.GuideID != nil {
			out[i].GuideID = *r.GuideID
		}
	}
	return out, nil
}

// SetCrossBrandOptIn records a member accepting (optedIn) or declining
// offers of each of brands through the guide of another brand.
func (s *Store) SetCrossBrandOptIn(ctx context.Context, memberID int64, brands []string, optedIn bool, at time.Time) error {
	if memberID == 0 {
		return invalid("member_id", "is required")
	}
	if len(brands) == 0 {
		return nil
	}
	rows := make([]CrossBrandOptIn, 0, len(brands))
	seen := map[string]bool{}
	for _, b := range brands {
		if err := ValidateID("brand", b); err != nil {
			return err
		}
		if seen[b] {
			continue
		}
		seen[b] = true
		rows = append(rows, CrossBrandOptIn{MemberID: memberID, BrandID: b, OptedIn: optedIn, UpdatedAt: utc(at)})
	}
	return translate(s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "member_id"}, {Name: "brand_id"}},
		DoUpdates: clause.AssignmentColumns([]string{"opted_in", "updated_at"}),
	}).Create(&rows).Error)
}

// CrossBrandOptIns returns the brands a member accepts offers of through
// another brand's guide, sorted.
func (s *Store) CrossBrandOptIns(ctx context.Context, memberID int64) ([]string, error) {
	var brands []string
	err := s.db.WithContext(ctx).Model(&CrossBrandOptIn{}).Where("member_id = ? AND opted_in = ?", memberID, true).
		Order("brand_id").Pluck("brand_id", &brands).Error
	return brands, translate(err)
}

// Reasons CrossBrandAllowed refuses with.
const (
	CrossBrandNoBinding    = "member has no guide for the brand they are bound in"
	CrossBrandNotCarried   = "the guide's store does not carry the offering brand"
	CrossBrandGuideLeft    = "the guide is not active"
	CrossBrandNoOptIn      = "member has not accepted the offering brand's offers"
	CrossBrandUnsubscribed = "member unsubscribed from one of the brands"
)

// CrossBrandAllowed says whether toBrand may nudge a member through the
// guide the member is bound to for fromBrand, and if not, why (one of
// the CrossBrand* reasons). It is allowed when the member has a current
// binding for fromBrand to an active guide whose store carries toBrand,
// the member accepted toBrand's offers (SetCrossBrandOptIn), and has not
// unsubscribed from either brand (on channel, or on every channel; ""
// checks every-channel unsubscribes only). The same brand twice is
// allowed: that is no cross-brand offer, and ordinary consent applies.
func (s *Store) CrossBrandAllowed(ctx context.Context, memberID int64, fromBrand, toBrand, channel string) (allowed bool, reason string, err error) {
	if fromBrand == toBrand {
		return true, "", nil
	}
	db := s.db.WithContext(ctx)
	var b Binding
	err = db.Where("member_id = ? AND brand_id = ? AND ended_at IS NULL", memberID, fromBrand).Take(&b).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return false, CrossBrandNoBinding, nil
	}
	if err != nil {
		return false, "", translate(err)
	}
	var g Guide
	if err := db.Where("id = ?", b.GuideID).Take(&g).Error; err != nil {
		return false, "", translate(err)
	}
	if !g.Active {
		return false, CrossBrandGuideLeft, nil
	}
	var carried int64
	if err := db.Model(&StoreBrand{}).Where("store_id = ? AND brand_id = ?", g.StoreID, toBrand).Count(&carried).Error; err != nil {
		return false, "", translate(err)
	}
	if carried == 0 {
		return false, CrossBrandNotCarried, nil
	}
	var opt CrossBrandOptIn
	err = db.Where("member_id = ? AND brand_id = ?", memberID, toBrand).Take(&opt).Error
	if errors.Is(err, gorm.ErrRecordNotFound) || err == nil && !opt.OptedIn {
		return false, CrossBrandNoOptIn, nil
	}
	if err != nil {
		return false, "", translate(err)
	}
	channels := []string{ConsentAll}
	if channel != "" && channel != ConsentAll {
		channels = append(channels, channel)
	}
	var unsub int64
	if err := db.Model(&MemberConsent{}).Where("member_id = ? AND brand_id IN ? AND channel IN ? AND unsubscribed_at IS NOT NULL",
		memberID, []string{fromBrand, toBrand, ConsentAll}, channels).Count(&unsub).Error; err != nil {
		return false, "", translate(err)
	}
	if unsub > 0 {
		return false, CrossBrandUnsubscribed, nil
	}
	return true, "", nil
}

// CrossBrandEligible keeps the members toBrand may offer to through their
// fromBrand guide, in the order given: the bulk form of CrossBrandAllowed
// for entering a cross-brand workflow (every-channel unsubscribes only;
// the send re-checks its channel). Members with a current guide of
// toBrand are left out: their own guide reaches them.
func (s *Store) CrossBrandEligible(ctx context.Context, ids []int64, fromBrand, toBrand string) ([]int64, error) {
	if fromBrand == toBrand {
		return nil, invalid("brand", "a cross-brand offer needs two different brands")
	}
	keep := make(map[int64]bool, len(ids))
	for chunk := range slices.Chunk(ids, 1000) {
		var got []int64
		err := s.db.WithContext(ctx).Table("bindings AS b").Select("b.member_id").
			Joins("JOIN guides g ON g.id = b.guide_id AND g.active = ?", true).
			Joins("JOIN store_brands sb ON sb.store_id = g.store_id AND sb.brand_id = ?", toBrand).
			Joins("JOIN member_cross_brand o ON o.member_id = b.member_id AND o.brand_id = ? AND o.opted_in = ?", toBrand, true).
			Where("b.member_id IN ? AND b.brand_id = ? AND b.ended_at IS NULL", chunk, fromBrand).
			Where(`NOT EXISTS (SELECT 1 FROM member_consent c WHERE c.member_id = b.member_id AND c.brand_id IN ?
				AND c.channel = ? AND c.unsubscribed_at IS NOT NULL)`, []string{fromBrand, toBrand, ConsentAll}, ConsentAll).
			Where(`NOT EXISTS (SELECT 1 FROM bindings own WHERE own.member_id = b.member_id AND own.brand_id = ?
				AND own.ended_at IS NULL)`, toBrand).
			Pluck("b.member_id", &got).Error
		if err != nil {
			return nil, translate(err)
		}
		for _, id := range got {
			keep[id] = true
		}
	}
	out := make([]int64, 0, len(keep))
	for _, id := range ids {
		if keep[id] {
			out = append(out, id)
			delete(keep, id)
		}
	}
	return out, nil
}

// CrossBrandOffers returns the other brands the store of a member's guide
// for brand carries (the brands that could offer through that guide),
// sorted; none when the member has no guide for brand.
func (s *Store) CrossBrandOffers(ctx context.Context, memberID int64, brand string) ([]Brand, error) {
	db := s.db.WithContext(ctx)
	var b Binding
	err := db.Where("member_id = ? AND brand_id = ? AND ended_at IS NULL", memberID, brand).Take(&b).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err)
	}
	var g Guide
	if err := db.Where("id = ?", b.GuideID).Take(&g).Error; err != nil {
		return nil, translate(err)
	}
	var ids []string
	if err := db.Model(&StoreBrand{}).Where("store_id = ? AND brand_id <> ?", g.StoreID, brand).Order("brand_id").
		Pluck("brand_id", &ids).Error; err != nil {
		return nil, translate(err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var out []Brand
	if err := db.Where("id IN ?", ids).Order("id").Find(&out).Error; err != nil {
		return nil, translate(err)
	}
	return out, nil
}
