package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// ConsoleSession is a browser signed in to the console. The cookie holds a
// random secret; the row is keyed by its hash (HashToken), so a copy of
// the table signs no one in. It keeps the hash of the token signed in
// with, never the token: each request resolves the token again, so a
// revoked token ends its sessions at once.
type ConsoleSession struct {
	ID string `gorm:"primaryKey;size:64"`
	// TokenHash is HashToken of the admin or API token signed in with.
	TokenHash string `gorm:"size:64;not null;index"`
	// CSRF is the token every form and script request carries back.
	CSRF      string    `gorm:"column:csrf;size:64;not null"`
	CreatedAt time.Time `gorm:"not null"`
	// SeenAt is the last request (updated at most once a minute); the
	// session ends after the idle timeout without one.
	SeenAt time.Time `gorm:"not null"`
	// ExpiresAt is the absolute end of the session.
	ExpiresAt time.Time `gorm:"not null;index"`
}

// migrateConsole creates the sessions table and the indexes of the
// console's workflow list.
func migrateConsole(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&ConsoleSession{}); err != nil {
		return err
	}
	for _, stmt := range consoleIndexes {
		if err := tx.Exec(stmt).Error; err != nil {
			return err
		}
	}
	return nil
}

// CreateConsoleSession saves a new session.
func (s *Store) CreateConsoleSession(ctx context.Context, cs *ConsoleSession) error {
	cs.CreatedAt, cs.SeenAt, cs.ExpiresAt = utc(cs.CreatedAt), utc(cs.SeenAt), utc(cs.ExpiresAt)
	return translate(s.db.WithContext(ctx).Create(cs).Error)
}

// ConsoleSession returns a live session: one that has not reached its
// absolute end and was seen after idleSince. Others are ErrNotFound.
func (s *Store) ConsoleSession(ctx context.Context, id string, now, idleSince time.Time) (*ConsoleSession, error) {
	var cs ConsoleSession
	err := s.db.WithContext(ctx).Where("id = ? AND expires_at > ? AND seen_at > ?", id, utc(now), utc(idleSince)).Take(&cs).Error
	if err != nil {
		return nil, translate(err)
	}
	return &cs, nil
}

// TouchConsoleSession records a request of the session at.
func (s *Store) TouchConsoleSession(ctx context.Context, id string, at time.Time) error {
	return translate(s.db.WithContext(ctx).Model(&ConsoleSession{}).Where("id = ?", id).Update("seen_at", utc(at)).Error)
}

// DeleteConsoleSession ends a session (signing out); ending one that is
// gone is not an error.
func (s *Store) DeleteConsoleSession(ctx context.Context, id string) error {
	return translate(s.db.WithContext(ctx).Where("id = ?", id).Delete(&ConsoleSession{}).Error)
}

// DeleteExpiredConsoleSessions removes sessions past their absolute end or
// idle since idleSince, and returns how many.
func (s *Store) DeleteExpiredConsoleSessions(ctx context.Context, now, idleSince time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("expires_at <= ? OR seen_at <= ?", utc(now), utc(idleSince)).Delete(&ConsoleSession{})
	return res.RowsAffected, translate(res.Error)
}
