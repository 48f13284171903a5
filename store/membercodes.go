package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// MemberCodeSecret is a brand's key for the member codes shown at the
// till (gateway/membercode). It is made on first use, kept sealed with
// security.phone_key, never logged nor answered; during a rotation the
// previous secret stays valid until PrevValidUntil, so codes on
// members' screens keep scanning.
type MemberCodeSecret struct {
	BrandID        string `gorm:"primaryKey;size:64"`
	Brand          *Brand `gorm:"foreignKey:BrandID;constraint:OnDelete:CASCADE"`
	Secret         []byte `gorm:"not null"`
	PrevSecret     []byte
	PrevValidUntil *time.Time
	CreatedAt      time.Time
	RotatedAt      *time.Time
}

// memberCodeSecretBytes is the length of a new secret.
const memberCodeSecretBytes = 32

func migrateMemberCodeSecrets(tx *gorm.DB) error {
	return tx.AutoMigrate(&MemberCodeSecret{})
}

func newMemberCodeSecret() (string, error) {
	raw := make([]byte, memberCodeSecretBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generating a member code secret: %w", err)
	}
	return string(raw), nil
}

// EnsureMemberCodeSecret returns the brand's member code secrets
// (current first), making the brand's first secret when it has none;
// ErrNotFound for an unknown brand.
func (s *Store) EnsureMemberCodeSecret(ctx context.Context, brand string, now time.Time) ([][]byte, error) {
	out, err := s.MemberCodeSecrets(ctx, brand, now)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return out, err
	}
	if _, err := s.Brand(ctx, brand); err != nil {
		return nil, err
	}
	plain, err := newMemberCodeSecret()
	if err != nil {
		return nil, err
	}
	row := &MemberCodeSecret{BrandID: brand, Secret: s.secrets.seal(plain), CreatedAt: now.UTC()}
	// Two replicas making the first secret at once: one wins, both read it.
	if err := s.db.WithContext(ctx).Omit("Brand").Clauses(clause.OnConflict{DoNothing: true}).Create(row).Error; err != nil {
		return nil, translate(err)
	}
	return s.MemberCodeSecrets(ctx, brand, now)
}

// MemberCodeSecrets returns the brand's valid member code secrets, the
// current first; ErrNotFound when the brand never had one. It writes
// nothing.
func (s *Store) MemberCodeSecrets(ctx context.Context, brand string, now time.Time) ([][]byte, error) {
	var row MemberCodeSecret
	if err := s.db.WithContext(ctx).Where("brand_id = ?", brand).Take(&row).Error; err != nil {
		return nil, translate(err)
	}
	cur, err := s.secrets.open(row.Secret)
	if err != nil {
		return nil, fmt.Errorf("member code secret of %s: %w", brand, err)
	}
	out := [][]byte{[]byte(cur)}
	if len(row.PrevSecret) > 0 && row.PrevValidUntil != nil && now.Before(*row.PrevValidUntil) {
		prev, err := s.secrets.open(row.PrevSecret)
		if err != nil {
			return nil, fmt.Errorf("previous member code secret of %s: %w", brand, err)
		}
		out = append(out, []byte(prev))
	}
	return out, nil
}

// RotateMemberCodeSecret gives the brand a new member code secret; the
// current one stays valid for overlap (0: codes made with it stop at
// once). A brand without a secret gets its first. It returns when the
// previous secret stops (zero without overlap).
func (s *Store) RotateMemberCodeSecret(ctx context.Context, brand string, overlap time.Duration, now time.Time) (time.Time, error) {
	if _, err := s.Brand(ctx, brand); err != nil {
		return time.Time{}, err
	}
	plain, err := newMemberCodeSecret()
	if err != nil {
		return time.Time{}, err
	}
	sealed := s.secrets.seal(plain)
	var until time.Time
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var row MemberCodeSecret
		q := tx.Where("brand_id = ?", brand)
		if s.dialect == "postgres" {
			q = q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
		}
		err := q.Take(&row).Error
		if errors.Is(translate(err), ErrNotFound) {
			return tx.Omit("Brand").Create(&MemberCodeSecret{BrandID: brand, Secret: sealed, CreatedAt: now.UTC()}).Error
		}
		if err != nil {
			return err
		}
		at := now.UTC()
		upd := map[string]any{"secret": sealed, "prev_secret": nil, "prev_valid_until": nil, "rotated_at": at}
		if overlap > 0 {
			until = at.Add(overlap)
			upd["prev_secret"], upd["prev_valid_until"] = row.Secret, until
		}
		return tx.Model(&MemberCodeSecret{}).Where("brand_id = ?", brand).Updates(upd).Error
	})
	return until, translate(err)
}
