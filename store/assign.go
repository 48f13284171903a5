package store

import (
	"context"
	"time"
)

// AssignableGuides returns a store's active guides with room for another
// member, least loaded first, ties broken by id.
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
