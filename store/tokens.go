package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
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

// NewAPIToken is what CreateAPIToken issues.
type NewAPIToken struct {
	Name string
	// BrandID limits the token to a brand; nil makes an admin token.
	BrandID      *string
	CanViewPhone bool
	// ReadOnly limits the token to GET and HEAD.
	ReadOnly bool
	// Resources are the route groups the token may use; none allows all.
	// The caller checks the names (the API knows its groups).
	Resources []string
	// ExpiresAt, when set, must be in the future.
	ExpiresAt *time.Time
}

// ResourceList returns the token's resources; nil allows every group.
func (t *APIToken) ResourceList() []string {
	if t.Resources == "" {
		return nil
	}
	return strings.Split(t.Resources, ",")
}

// Expired reports whether the token has expired at now.
func (t *APIToken) Expired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// CreateAPIToken issues a token and returns its plaintext, which is shown
// once and never stored.
func (s *Store) CreateAPIToken(ctx context.Context, in NewAPIToken) (string, *APIToken, error) {
	errs := []error{requireText("name", in.Name, 200)}
	if in.BrandID != nil {
		errs = append(errs, ValidateID("brand", *in.BrandID))
	}
	seen := map[string]bool{}
	var resources []string
	for i, r := range in.Resources {
		if err := ValidateID(fmt.Sprintf("resources[%d]", i), r); err != nil {
			errs = append(errs, err)
			continue
		}
		if !seen[r] {
			seen[r] = true
			resources = append(resources, r)
		}
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.After(time.Now()) {
		errs = append(errs, invalid("expires_at", "must be in the future, got %s", in.ExpiresAt.UTC().Format(time.RFC3339)))
	}
	if err := errors.Join(errs...); err != nil {
		return "", nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, fmt.Errorf("generating token: %w", err)
	}
	plain := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	t := &APIToken{Name: in.Name, BrandID: in.BrandID, CanViewPhone: in.CanViewPhone, Hash: HashToken(plain),
		ReadOnly: in.ReadOnly, Resources: strings.Join(resources, ","), ExpiresAt: utcPtr(in.ExpiresAt)}
	brandID := in.BrandID
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

// APITokenByPlain returns the unrevoked token with that plaintext, expired
// or not (the caller tells an expired token apart, to say so).
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

// APIToken returns a token by id.
func (s *Store) APIToken(ctx context.Context, id int64) (*APIToken, error) {
	return byID[APIToken](ctx, s.db, id)
}

// TouchAPITokens records when tokens were last used: each token's
// last_used_at moves forward to its time, never back.
func (s *Store) TouchAPITokens(ctx context.Context, used map[int64]time.Time) error {
	for id, at := range used {
		at = utc(at)
		err := s.db.WithContext(ctx).Model(&APIToken{}).Where("id = ? AND (last_used_at IS NULL OR last_used_at < ?)", id, at).
			Update("last_used_at", at).Error
		if err != nil {
			return fmt.Errorf("recording the use of token %d: %w", id, translate(err))
		}
	}
	return nil
}

// migrateTokenScopes adds the scope columns to api_tokens (a database
// made before 0018 lacks them; one made since has them from 0001).
func migrateTokenScopes(tx *gorm.DB) error {
	for _, col := range []string{"ReadOnly", "Resources", "ExpiresAt", "LastUsedAt"} {
		if tx.Migrator().HasColumn(&APIToken{}, col) {
			continue
		}
		if err := tx.Migrator().AddColumn(&APIToken{}, col); err != nil {
			return fmt.Errorf("adding api_tokens.%s: %w", col, err)
		}
	}
	return nil
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
