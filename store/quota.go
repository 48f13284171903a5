package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// QuotaSend is one message counted against a member's channel quota: the
// messages a platform lets one contact receive from the enterprise per
// period (WeCom's limit on group-send messages to an external contact).
// Key is unique, so a retried reservation is counted once.
type QuotaSend struct {
	ID       int64  `gorm:"primaryKey;autoIncrement"`
	Key      string `gorm:"column:send_key;size:200;not null;uniqueIndex"`
	MemberID int64  `gorm:"not null;index:idx_quota_sends_member"`
	Channel  string `gorm:"size:32;not null;index:idx_quota_sends_member"`
	// PeriodStart is the start of the period (a day, a month) the
	// message counts in.
	PeriodStart time.Time `gorm:"not null;index:idx_quota_sends_member"`
	RunID       *int64
	At          time.Time `gorm:"not null"`
}

// QuotaReservation asks for one message of a member's channel quota.
type QuotaReservation struct {
	// Key identifies the message; reserving it again is granted without
	// counting it twice.
	Key         string
	MemberID    int64
	Channel     string
	PeriodStart time.Time
	// Limit is how many messages the member may receive in the period.
	Limit int
	RunID int64
	At    time.Time
}

// quotaLockKey is the PostgreSQL advisory lock space of quota reservations.
const quotaLockKey = 0x5c7a_0003 << 32

// ReserveQuota counts a message against the member's quota on a channel
// for a period unless the quota is used up: reserved is false then.
// Reservations of one member are serialised (an advisory lock on
// PostgreSQL; SQLite has one writer), so concurrent sends cannot both take
// the last message of the period.
func (s *Store) ReserveQuota(ctx context.Context, r QuotaReservation) (reserved bool, err error) {
	switch {
	case r.Key == "" || r.MemberID == 0 || r.Channel == "":
		return false, invalid("key", "key, member and channel are required")
	case r.Limit <= 0:
		return false, invalid("limit", "must be at least 1, got %d", r.Limit)
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == "postgres" {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", quotaLockKey^r.MemberID).Error; err != nil {
				return translate(err)
			}
		}
		var n int64
		if err := tx.Model(&QuotaSend{}).Where("send_key = ?", r.Key).Count(&n).Error; err != nil {
			return translate(err)
		}
		if n > 0 {
			reserved = true
			return nil
		}
		if err := tx.Model(&QuotaSend{}).Where("member_id = ? AND channel = ? AND period_start = ?",
			r.MemberID, r.Channel, utc(r.PeriodStart)).Count(&n).Error; err != nil {
			return translate(err)
		}
		if n >= int64(r.Limit) {
			return nil
		}
		var runID *int64
		if r.RunID != 0 {
			runID = &r.RunID
		}
		reserved = true
		return translate(tx.Create(&QuotaSend{Key: r.Key, MemberID: r.MemberID, Channel: r.Channel,
			PeriodStart: utc(r.PeriodStart), RunID: runID, At: utc(r.At)}).Error)
	})
	return reserved, err
}

// ReleaseQuota gives a reserved message back (it will not be sent).
func (s *Store) ReleaseQuota(ctx context.Context, key string) error {
	return translate(s.db.WithContext(ctx).Where("send_key = ?", key).Delete(&QuotaSend{}).Error)
}

// QuotaUsed counts the messages reserved against a member's quota on a
// channel in the period starting at periodStart.
func (s *Store) QuotaUsed(ctx context.Context, memberID int64, channel string, periodStart time.Time) (int, error) {
	var n int64
	err := s.db.WithContext(ctx).Model(&QuotaSend{}).Where("member_id = ? AND channel = ? AND period_start = ?",
		memberID, channel, utc(periodStart)).Count(&n).Error
	return int(n), translate(err)
}

// SetMemberTimeZone sets a member's own IANA time zone; "" clears it.
func (s *Store) SetMemberTimeZone(ctx context.Context, id int64, zone string) error {
	if err := ValidateTimeZone("time_zone", zone); err != nil {
		return err
	}
	res := s.db.WithContext(ctx).Model(&Member{}).Where("id = ?", id).
		Updates(map[string]any{"time_zone": zone, "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// ValidateTimeZone checks an optional IANA time zone name.
func ValidateTimeZone(field, zone string) error {
	if zone == "" {
		return nil
	}
	if zone == "Local" || len(zone) > 64 {
		return invalid(field, "unknown time zone %q (want an IANA name such as Asia/Shanghai)", zone)
	}
	if _, err := time.LoadLocation(zone); err != nil {
		return invalid(field, "unknown time zone %q (want an IANA name such as Asia/Shanghai)", zone)
	}
	return nil
}
