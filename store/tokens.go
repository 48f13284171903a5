package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// TokenPrefix starts every API token scrmgw issues, so leaked tokens are
// easy to recognise and scan for.
const TokenPrefix = "scrmgw_"

// HashToken returns the stored form of a bearer token.
func HashToken(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}

// CreateAPIToken issues a token and returns its plaintext, which is shown
// once and never stored. A nil brandID makes an admin token.
func (s *Store) CreateAPIToken(ctx context.Context, name string, brandID *string, canViewPhone bool) (string, *APIToken, error) {
	errs := []error{requireText("name", name, 200)}
	if brandID != nil {
		errs = append(errs, ValidateID("brand", *brandID))
	}
	if err := errors.Join(errs...); err != nil {
		return "", nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, fmt.Errorf("generating token: %w", err)
	}
	plain := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	t := &APIToken{Name: name, BrandID: brandID, CanViewPhone: canViewPhone, Hash: HashToken(plain)}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if brandID != nil {
			if err := tx.Where("id = ?", *brandID).Take(&Brand{}).Error; err != nil {
				if errors.Is(err, gorm.ErrRecordNotFound) {
					return invalid("brand", "unknown brand %q", *brandID)
				}
				return translate(err)
			}
		}
		return translate(tx.Omit("Brand").Create(t).Error)
	})
	if err != nil {
		return "", nil, err
	}
	return plain, t, nil
}

// APITokenByPlain returns the live token with that plaintext.
func (s *Store) APITokenByPlain(ctx context.Context, plain string) (*APIToken, error) {
	return s.APITokenByHash(ctx, HashToken(plain))
}

// APITokenByHash returns the live token with that hash (HashToken): a
// console session keeps the hash, never the token.
func (s *Store) APITokenByHash(ctx context.Context, hash string) (*APIToken, error) {
	var t APIToken
	err := s.db.WithContext(ctx).Where("hash = ? AND revoked_at IS NULL", hash).Take(&t).Error
	if err != nil {
		return nil, translate(err)
	}
	return &t, nil
}

// APITokens lists tokens, newest first.
func (s *Store) APITokens(ctx context.Context) ([]APIToken, error) {
	var out []APIToken
	return out, translate(s.db.WithContext(ctx).Order("id DESC").Find(&out).Error)
}

// RevokeAPIToken revokes a token; revoking twice is not an error.
func (s *Store) RevokeAPIToken(ctx context.Context, id int64) error {
	now := time.Now().UTC()
	res := s.db.WithContext(ctx).Model(&APIToken{}).Where("id = ?", id).
		Where("revoked_at IS NULL").Update("revoked_at", now)
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		var n int64
		if err := s.db.WithContext(ctx).Model(&APIToken{}).Where("id = ?", id).Count(&n).Error; err != nil {
			return translate(err)
		}
		if n == 0 {
			return ErrNotFound
		}
	}
	return nil
}
