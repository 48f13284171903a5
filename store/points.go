package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// PointsLine is one line of the append-only points ledger. Ref is unique,
// so a line is written once however often its writer retries.
type PointsLine struct {
	ID        int64     `gorm:"primaryKey;autoIncrement" json:"id"`
	MemberID  int64     `gorm:"not null;index:idx_points_member" json:"member_id"`
	BrandID   string    `gorm:"size:64;not null;index:idx_points_member" json:"brand"`
	Delta     int64     `gorm:"not null" json:"delta"`
	Reason    string    `gorm:"size:200;not null" json:"reason"`
	Ref       string    `gorm:"size:200;not null;uniqueIndex" json:"ref"`
	CreatedAt time.Time `json:"created_at"`
}

// TableName names the ledger.
func (PointsLine) TableName() string { return "points_ledger" }

// AwardPoints appends a line to the points ledger and adds it to the
// member's balance with the brand, once per Ref: fresh is false when the
// line was already written (and nothing changes).
func (s *Store) AwardPoints(ctx context.Context, l *PointsLine) (fresh bool, err error) {
	if err := errors.Join(ValidateID("brand", l.BrandID), requireText("ref", l.Ref, 200), limitText("reason", l.Reason, 200)); err != nil {
		return false, err
	}
	if l.MemberID == 0 {
		return false, invalid("member_id", "is required")
	}
	l.CreatedAt = utc(l.CreatedAt)
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(l)
		if res.Error != nil {
			return translate(res.Error)
		}
		if fresh = res.RowsAffected == 1; !fresh {
			return translate(tx.Where("ref = ?", l.Ref).Take(l).Error)
		}
		ms := Membership{MemberID: l.MemberID, BrandID: l.BrandID, Points: l.Delta}
		return translate(tx.Omit("Member", "Brand").Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "member_id"}, {Name: "brand_id"}},
			DoUpdates: clause.Assignments(map[string]any{"points": gorm.Expr("memberships.points + ?", l.Delta)}),
		}).Create(&ms).Error)
	})
	return fresh, err
}

// PointsLines lists a member's ledger lines with a brand, oldest first.
func (s *Store) PointsLines(ctx context.Context, memberID int64, brand string) ([]PointsLine, error) {
	var out []PointsLine
	err := s.db.WithContext(ctx).Where("member_id = ? AND brand_id = ?", memberID, brand).Order("id").Find(&out).Error
	return out, translate(err)
}
