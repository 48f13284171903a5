package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// SaveContactWay creates or updates the contact way with cw's channel
// and state.
func (s *Store) SaveContactWay(ctx context.Context, cw *ContactWay) error {
	if cw.State == "" || cw.Channel == "" || (cw.StoreID == "") == (cw.GuideID == "") {
		return invalid("state", "a contact way needs a channel, a state and exactly one of store_id or guide_id")
	}
	return translate(s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "channel"}, {Name: "state"}},
		DoUpdates: clause.AssignmentColumns([]string{"config_id", "qr_code", "expires_at", "updated_at"}),
	}).Create(cw).Error)
}

func migrateContactWayChannels(tx *gorm.DB) error {
	if err := tx.Exec(`DROP INDEX IF EXISTS idx_contact_ways_state`).Error; err != nil {
		return fmt.Errorf("dropping the contact ways' state index: %w", err)
	}
	if err := tx.AutoMigrate(&ContactWay{}); err != nil {
		return fmt.Errorf("migrating contact_ways: %w", err)
	}
	return nil
}

// ContactWays lists contact ways, of a store or a guide when given.
func (s *Store) ContactWays(ctx context.Context, storeID, guideID string) ([]ContactWay, error) {
	q := s.db.WithContext(ctx).Order("id")
	if storeID != "" {
		q = q.Where("store_id = ?", storeID)
	}
	if guideID != "" {
		q = q.Where("guide_id = ?", guideID)
	}
	var out []ContactWay
	return out, translate(q.Find(&out).Error)
}

// ContactWayByState returns a contact way a state belongs to: any of
// the channels' codes with that state, which all name one store or guide.
func (s *Store) ContactWayByState(ctx context.Context, state string) (*ContactWay, error) {
	var cw ContactWay
	if err := s.db.WithContext(ctx).Where("state = ?", state).Order("id").Take(&cw).Error; err != nil {
		return nil, translate(err)
	}
	return &cw, nil
}
