package membercode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/scrmgw/scrmgw/store"
)

// Secrets keeps each brand's member code secrets; *store.Store is one.
type Secrets interface {
	// EnsureMemberCodeSecret returns the brand's secrets (current first),
	// making the first on first use.
	EnsureMemberCodeSecret(ctx context.Context, brand string, now time.Time) ([][]byte, error)
	// MemberCodeSecrets returns the brand's valid secrets, current first;
	// store.ErrNotFound if none was ever made. It writes nothing.
	MemberCodeSecrets(ctx context.Context, brand string, now time.Time) ([][]byte, error)
}

// Codes makes members' codes and checks those the till scans.
type Codes struct {
	// PublicURL is the gateway's address as members' phones reach it
	// (http.public_url), for links to the member code page; empty makes
	// no links.
	PublicURL string

	secrets Secrets
	now     func() time.Time
}

// New returns Codes keyed with the brands' secrets in s; now is the clock
// (nil: time.Now).
func New(s Secrets, now func() time.Time) *Codes {
	if now == nil {
		now = time.Now
	}
	return &Codes{secrets: s, now: now}
}

// MemberCode returns the member's current code for brand and when it
// stops scanning.
func (c *Codes) MemberCode(ctx context.Context, memberID int64, brand string) (string, time.Time, error) {
	if brand == "" {
		return "", time.Time{}, errors.New("making a member code: no brand")
	}
	now := c.now()
	secrets, err := c.secrets.EnsureMemberCodeSecret(ctx, brand, now)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("reading the member code secret of %s: %w", brand, err)
	}
	code, err := Make(secrets[0], memberID, now)
	if err != nil {
		return "", time.Time{}, err
	}
	return code, ValidUntil(now), nil
}

// Identify returns the member id a code of brand carries: ErrMalformed,
// ErrExpired or ErrUnknown when it does not verify (a brand that never
// issued a code knows none). It writes nothing.
func (c *Codes) Identify(ctx context.Context, brand, code string) (int64, error) {
	if !Wellformed(code) {
		return 0, ErrMalformed
	}
	now := c.now()
	secrets, err := c.secrets.MemberCodeSecrets(ctx, brand, now)
	if errors.Is(err, store.ErrNotFound) {
		return 0, ErrUnknown
	}
	if err != nil {
		return 0, fmt.Errorf("reading the member code secrets of %s: %w", brand, err)
	}
	return Check(secrets, code, now)
}
