package store

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

// ConsentAll, as a MemberConsent channel, stands for every channel; as a
// brand, for every brand.
const ConsentAll = "*"

// MemberConsent records a member unsubscribing from a channel (or
// ConsentAll) for a brand (or ConsentAll). A nil UnsubscribedAt means
// they subscribed again.
type MemberConsent struct {
	MemberID       int64      `gorm:"primaryKey;autoIncrement:false" json:"member_id"`
	BrandID        string     `gorm:"primaryKey;size:64" json:"brand"`
	Channel        string     `gorm:"primaryKey;size:32" json:"channel"`
	UnsubscribedAt *time.Time `json:"unsubscribed_at,omitempty"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// TableName keeps the table named for the domain word.
func (MemberConsent) TableName() string { return "member_consent" }

// SetConsent records a member unsubscribing from (unsubscribed true) or
// subscribing again to a channel of a brand; ConsentAll stands for every
// channel or brand.
func (s *Store) SetConsent(ctx context.Context, memberID int64, brand, channel string, unsubscribed bool, at time.Time) error {
	if memberID == 0 || brand == "" || channel == "" {
		return invalid("channel", "member, brand and channel are required")
	}
	c := MemberConsent{MemberID: memberID, BrandID: brand, Channel: channel, UpdatedAt: utc(at)}
	if unsubscribed {
		c.UnsubscribedAt = &c.UpdatedAt
	}
	return translate(s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "member_id"}, {Name: "brand_id"}, {Name: "channel"}},
		DoUpdates: clause.AssignmentColumns([]string{"unsubscribed_at", "updated_at"}),
	}).Create(&c).Error)
}
