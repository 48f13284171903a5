package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// MemberSend is one line of a member's send log: a message of a workflow
// counted against the member's frequency caps.
type MemberSend struct {
	ID       int64     `gorm:"primaryKey;autoIncrement"`
	Key      string    `gorm:"column:send_key;size:200;not null;uniqueIndex"`
	MemberID int64     `gorm:"not null;index:idx_member_sends_member"`
	BrandID  string    `gorm:"size:64;not null"`
	RunID    *int64    `gorm:"index"`
	Channel  string    `gorm:"size:32;not null"`
	SentAt   time.Time `gorm:"not null;index:idx_member_sends_member"`
}

// SendReservation asks to count one message against a member's caps.
type SendReservation struct {
	// Key identifies the message; reserving it again (a retry) is
	// granted without counting it twice.
	Key      string
	MemberID int64
	BrandID  string
	RunID    int64
	Channel  string
	At       time.Time
	// PerDay and PerWeek cap the member's messages since DayStart and
	// WeekStart; 0 is no cap.
	DayStart  time.Time
	PerDay    int
	WeekStart time.Time
	PerWeek   int
}

// ReserveSend records a message in the member's send log unless a cap is
// reached: reserved is false then. Caps count the member's messages of
// every workflow and brand. Reservations of one member are serialised
// (an advisory lock on PostgreSQL; SQLite has one writer), so concurrent
// sends of two workflows cannot both take the last slot.
func (s *Store) ReserveSend(ctx context.Context, r SendReservation) (reserved bool, err error) {
	if r.Key == "" || r.MemberID == 0 {
		return false, invalid("key", "key and member are required")
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == "postgres" {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", sendLockKey^r.MemberID).Error; err != nil {
				return translate(err)
			}
		}
		var n int64
		if err := tx.Model(&MemberSend{}).Where("send_key = ?", r.Key).Count(&n).Error; err != nil {
			return translate(err)
		}
		if n > 0 {
			reserved = true
			return nil
		}
		for _, c := range []struct {
			since time.Time
			max   int
		}{{r.DayStart, r.PerDay}, {r.WeekStart, r.PerWeek}} {
			if c.max <= 0 {
				continue
			}
			if err := tx.Model(&MemberSend{}).Where("member_id = ? AND sent_at >= ?", r.MemberID, utc(c.since)).Count(&n).Error; err != nil {
				return translate(err)
			}
			if n >= int64(c.max) {
				return nil
			}
		}
		var runID *int64
		if r.RunID != 0 {
			runID = &r.RunID
		}
		reserved = true
		return translate(tx.Create(&MemberSend{Key: r.Key, MemberID: r.MemberID, BrandID: r.BrandID, RunID: runID,
			Channel: r.Channel, SentAt: utc(r.At)}).Error)
	})
	return reserved, err
}

// sendLockKey is the PostgreSQL advisory lock space of send reservations.
const sendLockKey = 0x5c7a_0002 << 32

// ReleaseSend takes a reserved message back off the send log (it will not
// be sent).
func (s *Store) ReleaseSend(ctx context.Context, key string) error {
	return translate(s.db.WithContext(ctx).Where("send_key = ?", key).Delete(&MemberSend{}).Error)
}

// MemberSends lists a member's send log since a time, oldest first.
func (s *Store) MemberSends(ctx context.Context, memberID int64, since time.Time) ([]MemberSend, error) {
	var out []MemberSend
	err := s.db.WithContext(ctx).Where("member_id = ? AND sent_at >= ?", memberID, utc(since)).Order("sent_at, id").Find(&out).Error
	return out, translate(err)
}
