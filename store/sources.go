package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// EventSource is a brand's system (POS, online shop, CRM) that posts
// signed events. It belongs to one brand and has its own signing secret;
// during a rotation the previous secret stays valid until PrevValidUntil.
// Secrets are stored encrypted with the key security.phone_key.
type EventSource struct {
	ID          string `gorm:"primaryKey;size:64" json:"id"`
	BrandID     string `gorm:"size:64;not null;index" json:"brand"`
	Brand       *Brand `gorm:"foreignKey:BrandID;constraint:OnDelete:RESTRICT" json:"-"`
	Description string `gorm:"size:200;not null;default:''" json:"description,omitempty"`
	// Secret and PrevSecret are sealed; the API shows a secret only once,
	// when it is made.
	Secret         []byte     `gorm:"not null" json:"-"`
	PrevSecret     []byte     `json:"-"`
	PrevValidUntil *time.Time `json:"previous_secret_valid_until,omitempty"`
	Active         bool       `gorm:"not null" json:"active"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// SourceSecrets are an event source's secrets in the clear, current first.
type SourceSecrets struct {
	ID      string
	BrandID string
	Secrets []string
}

// secretBox seals secrets kept in the database.
type secretBox struct{ aead cipher.AEAD }

func newSecretBox(key []byte) (*secretBox, error) {
	block, err := aes.NewCipher(derive(key, "scrmgw secret encryption v1"))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &secretBox{aead: aead}, nil
}

func (b *secretBox) seal(plain string) []byte {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	rand.Read(nonce)
	return b.aead.Seal(nonce, nonce, []byte(plain), nil)
}

func (b *secretBox) open(sealed []byte) (string, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return "", errors.New("sealed secret too short")
	}
	plain, err := b.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return "", errors.New("opening a stored secret failed (wrong security.phone_key?)")
	}
	return string(plain), nil
}

// CreateEventSource stores a source with its secret; ErrConflict if the id
// exists.
func (s *Store) CreateEventSource(ctx context.Context, src *EventSource, secret string) error {
	errs := []error{ValidateID("id", src.ID), ValidateID("brand", src.BrandID), limitText("description", src.Description, 200)}
	if secret == "" {
		errs = append(errs, invalid("secret", "is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	src.Secret = s.secrets.seal(secret)
	src.PrevSecret, src.PrevValidUntil = nil, nil
	src.Active = true
	err := translate(s.db.WithContext(ctx).Create(src).Error)
	if isConflict(err) {
		return fmt.Errorf("%w: event source %q already exists, or brand %q does not exist", ErrConflict, src.ID, src.BrandID)
	}
	return err
}

// EventSources lists sources, of one brand when brand is set.
func (s *Store) EventSources(ctx context.Context, brand string) ([]EventSource, error) {
	var out []EventSource
	q := s.db.WithContext(ctx).Order("id")
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	return out, translate(q.Find(&out).Error)
}

// EventSource returns one source, only if it belongs to brand when brand
// is set.
func (s *Store) EventSource(ctx context.Context, id, brand string) (*EventSource, error) {
	var src EventSource
	q := s.db.WithContext(ctx).Where("id = ?", id)
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	if err := q.Take(&src).Error; err != nil {
		return nil, translate(err)
	}
	return &src, nil
}

// RotateEventSource gives a source a new secret; the current one stays
// valid for overlap (0: it stops at once).
func (s *Store) RotateEventSource(ctx context.Context, id, brand, secret string, overlap time.Duration) (*EventSource, error) {
	if secret == "" {
		return nil, invalid("secret", "is required")
	}
	var out *EventSource
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		src, err := s.with(tx).EventSource(ctx, id, brand)
		if err != nil {
			return err
		}
		upd := map[string]any{"secret": s.secrets.seal(secret), "prev_secret": nil, "prev_valid_until": nil, "updated_at": time.Now().UTC()}
		if overlap > 0 {
			until := time.Now().Add(overlap).UTC()
			upd["prev_secret"], upd["prev_valid_until"] = src.Secret, until
		}
		if err := tx.Model(&EventSource{}).Where("id = ?", id).Updates(upd).Error; err != nil {
			return err
		}
		out = src
		return tx.Where("id = ?", id).Take(out).Error
	})
	return out, translate(err)
}

// SetEventSourceActive turns a source on or off.
func (s *Store) SetEventSourceActive(ctx context.Context, id, brand string, active bool) error {
	q := s.db.WithContext(ctx).Model(&EventSource{}).Where("id = ?", id)
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	res := q.Updates(map[string]any{"active": active, "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("event source %q: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteEventSource removes a source; its events stay.
func (s *Store) DeleteEventSource(ctx context.Context, id, brand string) error {
	q := s.db.WithContext(ctx).Where("id = ?", id)
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	res := q.Delete(&EventSource{})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("event source %q: %w", id, ErrNotFound)
	}
	return nil
}

// ActiveSourceSecrets returns every active source with its valid secrets
// in the clear, for verifying signatures.
func (s *Store) ActiveSourceSecrets(ctx context.Context, now time.Time) ([]SourceSecrets, error) {
	var srcs []EventSource
	if err := s.db.WithContext(ctx).Where("active = ?", true).Order("id").Find(&srcs).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]SourceSecrets, 0, len(srcs))
	for _, src := range srcs {
		cur, err := s.secrets.open(src.Secret)
		if err != nil {
			return nil, fmt.Errorf("event source %q: %w", src.ID, err)
		}
		ss := SourceSecrets{ID: src.ID, BrandID: src.BrandID, Secrets: []string{cur}}
		if len(src.PrevSecret) > 0 && src.PrevValidUntil != nil && now.Before(*src.PrevValidUntil) {
			prev, err := s.secrets.open(src.PrevSecret)
			if err != nil {
				return nil, fmt.Errorf("event source %q: %w", src.ID, err)
			}
			ss.Secrets = append(ss.Secrets, prev)
		}
		out = append(out, ss)
	}
	return out, nil
}

// WebhookEndpoint is where a brand takes scrmgw's messages on the webhook
// channel (its app push service, SMS gateway or CRM): a URL and the
// secret scrmgw signs with, sealed at rest.
type WebhookEndpoint struct {
	BrandID   string    `gorm:"primaryKey;size:64" json:"brand"`
	Brand     *Brand    `gorm:"foreignKey:BrandID;constraint:OnDelete:CASCADE" json:"-"`
	URL       string    `gorm:"size:500;not null" json:"url"`
	Secret    []byte    `gorm:"not null" json:"-"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// PutWebhookEndpoint sets a brand's endpoint URL; secret, when not empty,
// replaces the signing secret (required for a new endpoint).
func (s *Store) PutWebhookEndpoint(ctx context.Context, brand, url, secret string) (*WebhookEndpoint, error) {
	errs := []error{ValidateID("brand", brand), limitText("url", url, 500)}
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		errs = append(errs, invalid("url", "want an http(s) URL"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out WebhookEndpoint
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Where("brand_id = ?", brand).Take(&out).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			if secret == "" {
				return invalid("secret", "a new endpoint needs a secret")
			}
			out = WebhookEndpoint{BrandID: brand, URL: url, Secret: s.secrets.seal(secret)}
			return tx.Create(&out).Error
		case err != nil:
			return err
		}
		upd := map[string]any{"url": url, "updated_at": time.Now().UTC()}
		if secret != "" {
			upd["secret"] = s.secrets.seal(secret)
		}
		if err := tx.Model(&WebhookEndpoint{}).Where("brand_id = ?", brand).Updates(upd).Error; err != nil {
			return err
		}
		return tx.Where("brand_id = ?", brand).Take(&out).Error
	})
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return nil, err
		}
		return nil, translate(err)
	}
	return &out, nil
}

// WebhookEndpointOf returns a brand's endpoint with its secret in the
// clear; ErrNotFound when the brand has none.
func (s *Store) WebhookEndpointOf(ctx context.Context, brand string) (*WebhookEndpoint, string, error) {
	var ep WebhookEndpoint
	if err := s.db.WithContext(ctx).Where("brand_id = ?", brand).Take(&ep).Error; err != nil {
		return nil, "", translate(err)
	}
	secret, err := s.secrets.open(ep.Secret)
	if err != nil {
		return nil, "", fmt.Errorf("webhook endpoint of %q: %w", brand, err)
	}
	return &ep, secret, nil
}

// DeleteWebhookEndpoint removes a brand's endpoint.
func (s *Store) DeleteWebhookEndpoint(ctx context.Context, brand string) error {
	res := s.db.WithContext(ctx).Where("brand_id = ?", brand).Delete(&WebhookEndpoint{})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("webhook endpoint of %q: %w", brand, ErrNotFound)
	}
	return nil
}
