package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/scrmgw/scrmgw/events"
)

// MemberProfile is everything the workflow engine reads of a member for
// one brand: expressions, message data, channel and guide, consent.
type MemberProfile struct {
	Member Member
	// Membership is nil when the member has none with the brand.
	Membership *Membership
	Identities []MemberIdentity
	// Binding is the current binding with the brand, with its Guide and
	// Store; nil when the member has no guide.
	Binding *Binding
	Guide   *Guide
	Store   *RetailStore
	Tags    []string
	// Unsubscribed lists the channels (or ConsentAll) the member
	// unsubscribed from, for this brand or all brands.
	Unsubscribed []string
	// Purchases are the member's purchase.completed and purchase.refunded
	// events with the brand, oldest first.
	Purchases []Event
}

// Identity returns the member's id on a channel, or "".
func (p *MemberProfile) Identity(channel string) string {
	for _, id := range p.Identities {
		if id.Channel == channel {
			return id.ExternalID
		}
	}
	return ""
}

// IsUnsubscribed reports whether the member unsubscribed from a channel.
func (p *MemberProfile) IsUnsubscribed(channel string) bool {
	return slices.Contains(p.Unsubscribed, channel) || slices.Contains(p.Unsubscribed, ConsentAll)
}

// MemberProfile returns one member's profile for a brand.
func (s *Store) MemberProfile(ctx context.Context, brand string, id int64) (*MemberProfile, error) {
	ps, err := s.MemberProfiles(ctx, brand, []int64{id})
	if err != nil {
		return nil, err
	}
	p, ok := ps[id]
	if !ok {
		return nil, ErrNotFound
	}
	return p, nil
}

// MemberProfiles returns the profiles of members for a brand, by id, in a
// few queries per thousand members; ids not found are left out.
func (s *Store) MemberProfiles(ctx context.Context, brand string, ids []int64) (map[int64]*MemberProfile, error) {
	out := make(map[int64]*MemberProfile, len(ids))
	for chunk := range slices.Chunk(ids, 1000) {
		if err := s.memberProfiles(ctx, brand, chunk, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) memberProfiles(ctx context.Context, brand string, ids []int64, out map[int64]*MemberProfile) error {
	db := s.db.WithContext(ctx)
	var members []Member
	if err := db.Where("id IN ?", ids).Find(&members).Error; err != nil {
		return translate(err)
	}
	for _, m := range members {
		out[m.ID] = &MemberProfile{Member: m}
	}
	var memberships []Membership
	if err := db.Where("member_id IN ? AND brand_id = ?", ids, brand).Find(&memberships).Error; err != nil {
		return translate(err)
	}
	for i := range memberships {
		if p := out[memberships[i].MemberID]; p != nil {
			p.Membership = &memberships[i]
			if !memberships[i].PhoneKnown {
				p.Member.PhoneTail = "" // the brand was not given the phone
			}
			if memberships[i].Name != "" {
				// The name the member gave this brand (docs/security.md).
				p.Member.Name = memberships[i].Name
			}
		}
	}
	var identities []MemberIdentity
	if err := db.Where("member_id IN ?", ids).Order("channel, external_id").Find(&identities).Error; err != nil {
		return translate(err)
	}
	for _, mi := range identities {
		if p := out[mi.MemberID]; p != nil {
			p.Identities = append(p.Identities, mi)
		}
	}
	var bindings []Binding
	if err := db.Where("member_id IN ? AND brand_id = ? AND ended_at IS NULL", ids, brand).Find(&bindings).Error; err != nil {
		return translate(err)
	}
	var guideIDs, storeIDs []string
	for i := range bindings {
		if p := out[bindings[i].MemberID]; p != nil {
			p.Binding = &bindings[i]
			guideIDs = append(guideIDs, bindings[i].GuideID)
			storeIDs = append(storeIDs, bindings[i].StoreID)
		}
	}
	if len(guideIDs) > 0 {
		var guides []Guide
		if err := db.Where("id IN ?", uniq(guideIDs)).Find(&guides).Error; err != nil {
			return translate(err)
		}
		if err := loadGuideIdentities(db, guidePtrs(guides)); err != nil {
			return err
		}
		var stores []RetailStore
		if err := db.Where("id IN ?", uniq(storeIDs)).Find(&stores).Error; err != nil {
			return translate(err)
		}
		for _, p := range out {
			if p.Binding == nil {
				continue
			}
			for i := range guides {
				if guides[i].ID == p.Binding.GuideID {
					p.Guide = &guides[i]
				}
			}
			for i := range stores {
				if stores[i].ID == p.Binding.StoreID {
					p.Store = &stores[i]
				}
			}
		}
	}
	var tags []MemberTag
	if err := db.Where("member_id IN ? AND brand_id = ?", ids, brand).Order("tag").Find(&tags).Error; err != nil {
		return translate(err)
	}
	for _, t := range tags {
		if p := out[t.MemberID]; p != nil {
			p.Tags = append(p.Tags, t.Tag)
		}
	}
	var consents []MemberConsent
	if err := db.Where("member_id IN ? AND brand_id IN ? AND unsubscribed_at IS NOT NULL", ids, []string{brand, ConsentAll}).
		Find(&consents).Error; err != nil {
		return translate(err)
	}
	for _, c := range consents {
		if p := out[c.MemberID]; p != nil && !slices.Contains(p.Unsubscribed, c.Channel) {
			p.Unsubscribed = append(p.Unsubscribed, c.Channel)
		}
	}
	var purchases []Event
	if err := db.Where("member_id IN ? AND brand_id = ? AND type IN ?", ids, brand, []string{events.TypePurchaseCompleted, events.TypePurchaseRefunded}).
		Order("occurred_at, id").Find(&purchases).Error; err != nil {
		return translate(err)
	}
	for _, e := range purchases {
		if p := out[*e.MemberID]; p != nil {
			p.Purchases = append(p.Purchases, e)
		}
	}
	return nil
}

// joinIDs writes ids as a comma-separated list of literals.
func joinIDs(ids []int64) string {
	b := make([]byte, 0, len(ids)*8)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(b)
}

func uniq(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// SegmentQuery selects members of a brand for a schedule trigger.
type SegmentQuery struct {
	Brand string
	// LastPurchaseFrom and LastPurchaseTo, when set, keep members whose
	// last purchase.completed with the brand was between them
	// (inclusive).
	LastPurchaseFrom, LastPurchaseTo *time.Time
	// JoinedFrom and JoinedTo, when set, keep members whose membership
	// began between them.
	JoinedFrom, JoinedTo *time.Time
	// Levels keeps members of one of these levels; empty keeps all.
	Levels []string
	// Tags keeps members with all of these tags; WithoutTags drops
	// members with any of these.
	Tags        []string
	WithoutTags []string
	// AfterID pages by member id.
	AfterID int64
	// Limit defaults to 1000, at most 10000.
	Limit int
}

// SegmentMembers returns the ids of the brand's members in a segment, in
// id order, after q.AfterID.
func (s *Store) SegmentMembers(ctx context.Context, q SegmentQuery) ([]int64, error) {
	var ids []int64
	return ids, translate(s.segment(s.db.WithContext(ctx), q).Scan(&ids).Error)
}

// SegmentPlan is PostgreSQL's plan of SegmentMembers' query for q, run
// (EXPLAIN (ANALYZE, BUFFERS)): what the data-scale measurements show to
// prove the segments read through indexes.
func (s *Store) SegmentPlan(ctx context.Context, q SegmentQuery) (string, error) {
	if s.dialect != "postgres" {
		return "", fmt.Errorf("segment plans: PostgreSQL only, not %s", s.dialect)
	}
	db := s.db.WithContext(ctx)
	stmt := db.ToSQL(func(tx *gorm.DB) *gorm.DB {
		var ids []int64
		return s.segment(tx, q).Scan(&ids)
	})
	var lines []string
	if err := db.Raw("EXPLAIN (ANALYZE, BUFFERS) " + stmt).Scan(&lines).Error; err != nil {
		return "", translate(err)
	}
	return stmt + "\n" + strings.Join(lines, "\n"), nil
}

// segment builds SegmentMembers' query.
func (s *Store) segment(db *gorm.DB, q SegmentQuery) *gorm.DB {
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	limit = min(limit, 10000)
	db = db.Table("memberships AS m").Select("m.member_id").
		Where("m.brand_id = ? AND m.member_id > ?", q.Brand, q.AfterID).Order("m.member_id").Limit(limit)
	if len(q.Levels) > 0 {
		db = db.Where("m.level IN ?", q.Levels)
	}
	if q.JoinedFrom != nil {
		db = db.Where("m.created_at >= ?", utc(*q.JoinedFrom))
	}
	if q.JoinedTo != nil {
		db = db.Where("m.created_at <= ?", utc(*q.JoinedTo))
	}
	for _, tag := range q.Tags {
		db = db.Where("EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.member_id AND t.brand_id = m.brand_id AND t.tag = ?)", tag)
	}
	if len(q.WithoutTags) > 0 {
		db = db.Where("NOT EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.member_id AND t.brand_id = m.brand_id AND t.tag IN ?)", q.WithoutTags)
	}
	if q.LastPurchaseFrom != nil || q.LastPurchaseTo != nil {
		from, to := time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		if q.LastPurchaseFrom != nil {
			from = utc(*q.LastPurchaseFrom)
		}
		if q.LastPurchaseTo != nil {
			to = utc(*q.LastPurchaseTo)
		}
		// member_stats keeps each member's last purchase (indexed by
		// brand and time), so this is a range scan, not a scan of the
		// event log.
		db = db.Where("EXISTS (SELECT 1 FROM member_stats ms WHERE ms.member_id = m.member_id AND ms.brand_id = m.brand_id "+
			"AND ms.last_purchase_at >= ? AND ms.last_purchase_at <= ?)", from, to)
	}
	return db
}
