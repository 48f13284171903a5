package store

import (
	"context"
	"slices"
	"strings"
	"time"
)

// AssignableGuides returns a store's active guides with room for another
// member, least loaded first, ties broken by id (without their
// Identities).
func (s *Store) AssignableGuides(ctx context.Context, storeID string) ([]Guide, error) {
	var out []Guide
	err := s.db.WithContext(ctx).Where("store_id = ? AND active AND left_at IS NULL AND (capacity = 0 OR bound_count < capacity)", storeID).
		Order("bound_count, id").Find(&out).Error
	return out, translate(err)
}

// StoresChangedSince lists stores (with brands) updated after t, oldest
// change first, for keeping an in-memory index fresh; a zero t lists all.
func (s *Store) StoresChangedSince(ctx context.Context, t time.Time, afterID string, limit int) ([]RetailStore, error) {
	q := s.db.WithContext(ctx).Order("id").Limit(Page{Limit: limit}.limit())
	if !t.IsZero() {
		q = q.Where("updated_at >= ?", t.UTC())
	}
	if afterID != "" {
		q = q.Where("id > ?", afterID)
	}
	var out []RetailStore
	if err := q.Find(&out).Error; err != nil {
		return nil, translate(err)
	}
	return out, s.loadStoreBrands(ctx, s.db, out)
}

// StoreIDs lists every store id, for dropping deleted stores from an
// index.
func (s *Store) StoreIDs(ctx context.Context) ([]string, error) {
	var ids []string
	return ids, translate(s.db.WithContext(ctx).Model(&RetailStore{}).Order("id").Pluck("id", &ids).Error)
}

// CurrentBindings lists a guide's current bindings.
func (s *Store) CurrentBindings(ctx context.Context, guideID string) ([]Binding, error) {
	var out []Binding
	return out, translate(s.db.WithContext(ctx).Where("guide_id = ? AND ended_at IS NULL", guideID).Order("id").Find(&out).Error)
}

// MarkGuideLeft deactivates a guide who left: no new members are bound to
// them. It reports whether the guide was active.
func (s *Store) MarkGuideLeft(ctx context.Context, guideID string) (bool, error) {
	now := time.Now().UTC()
	res := s.db.WithContext(ctx).Model(&Guide{}).Where("id = ? AND left_at IS NULL", guideID).
		Updates(map[string]any{"active": false, "left_at": now, "updated_at": now})
	if res.Error != nil {
		return false, translate(res.Error)
	}
	if res.RowsAffected == 0 {
		if _, err := s.Guide(ctx, guideID, ""); err != nil {
			return false, err
		}
	}
	return res.RowsAffected == 1, nil
}

// MemberChannelID returns a member's id on a channel ("" when none).
func (s *Store) MemberChannelID(ctx context.Context, memberID int64, channel string) (string, error) {
	var ids []string
	err := s.db.WithContext(ctx).Model(&MemberIdentity{}).Where("member_id = ? AND channel = ?", memberID, channel).
		Order("id").Limit(1).Pluck("external_id", &ids).Error
	if err != nil || len(ids) == 0 {
		return "", translate(err)
	}
	return ids[0], nil
}

// GuideLoad is a guide's place in bulk assignment.
type GuideLoad struct {
	ID       string
	StoreID  string
	Capacity int
	Bound    int
}

// GuideLoads lists the active guides of every store carrying brand, with
// their capacity and current load, ordered by store and id.
func (s *Store) GuideLoads(ctx context.Context, brand string) ([]GuideLoad, error) {
	var out []GuideLoad
	err := s.db.WithContext(ctx).Model(&Guide{}).
		Select("id, store_id, capacity, bound_count AS bound").
		Where("active AND left_at IS NULL AND store_id IN (?)", s.db.Model(&StoreBrand{}).Select("store_id").Where("brand_id = ?", brand)).
		Order("store_id, id").Scan(&out).Error
	return out, translate(err)
}

// InsertBindings writes many new bindings in one statement; a member who
// already has a current binding for the brand keeps it and is skipped. It
// returns the bindings written. Guides' loads are not updated: call
// AddGuideLoads with what was written.
func (s *Store) InsertBindings(ctx context.Context, bs []Binding) ([]Binding, error) {
	if len(bs) == 0 {
		return nil, nil
	}
	now := time.Now().UTC()
	var sb strings.Builder
	args := make([]any, 0, len(bs)*7)
	sb.WriteString("INSERT INTO bindings (member_id, brand_id, guide_id, store_id, reason, distance_m, created_at) VALUES ")
	for i, b := range bs {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString("(?,?,?,?,?,?,?)")
		args = append(args, b.MemberID, b.BrandID, b.GuideID, b.StoreID, b.Reason, b.DistanceM, now)
	}
	sb.WriteString(" ON CONFLICT DO NOTHING RETURNING id, member_id, guide_id")
	rows, err := s.db.WithContext(ctx).Raw(sb.String(), args...).Rows()
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	byMember := make(map[int64]*Binding, len(bs))
	for i := range bs {
		byMember[bs[i].MemberID] = &bs[i]
	}
	var out []Binding
	for rows.Next() {
		var (
			id, member int64
			guide      string
		)
		if err := rows.Scan(&id, &member, &guide); err != nil {
			return nil, translate(err)
		}
		b := *byMember[member]
		b.ID, b.CreatedAt = id, now
		out = append(out, b)
	}
	return out, translate(rows.Err())
}

// AddGuideLoads adds to guides' loads (bindings written in bulk), in
// statements of up to 1000 guides.
func (s *Store) AddGuideLoads(ctx context.Context, deltas map[string]int) error {
	ids := make([]string, 0, len(deltas))
	for id := range deltas {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for start := 0; start < len(ids); start += 1000 {
		chunk := ids[start:min(start+1000, len(ids))]
		var sb strings.Builder
		args := make([]any, 0, 2*len(chunk))
		sb.WriteString("WITH v(id, n) AS (VALUES ")
		for i, id := range chunk {
			if i > 0 {
				sb.WriteString(",")
			}
			sb.WriteString("(?, CAST(? AS INTEGER))")
			args = append(args, id, deltas[id])
		}
		sb.WriteString(") UPDATE guides SET bound_count = bound_count + (SELECT v.n FROM v WHERE v.id = guides.id) WHERE id IN (SELECT id FROM v)")
		if err := s.db.WithContext(ctx).Exec(sb.String(), args...).Error; err != nil {
			return translate(err)
		}
	}
	return nil
}
