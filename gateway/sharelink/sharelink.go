// Package sharelink makes and verifies the tokens of guides' share links
// (云店): a link a guide sends a member, to a product or a campaign page
// on the brand's shop, carries a token naming the brand, the guide and
// their store (and the product), signed with an HMAC-SHA256 key of the
// brand derived from the gateway's key. The shop passes the token on
// with the order (purchase.completed data.share_token), and the order is
// credited to that guide and store. A token cannot be made or altered
// without the gateway's key, and expires.
//
// It imports only store (what a store carries, for a product's link): the
// wiring gives it the key, the API and the guide bot make links, the
// event schema and the commerce ingester verify them.
package sharelink

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of a token that does not verify.
var (
	// ErrInvalid: not a share token, or tampered with, or made with
	// another key.
	ErrInvalid = errors.New("share token does not verify")
	// ErrExpired: a genuine token past its expiry.
	ErrExpired = errors.New("share token expired")
)

// DefaultTTL is how long a share link credits its guide unless asked
// otherwise; MaxTTL the longest.
const (
	DefaultTTL = 30 * 24 * time.Hour
	MaxTTL     = 180 * 24 * time.Hour
)

// prefix starts every token (its version).
const prefix = "s1."

// macBytes is the length of a token's MAC.
const macBytes = 16

// Link is what a token says.
type Link struct {
	Brand string `json:"b"`
	Guide string `json:"g"`
	Store string `json:"s"`
	// SKU is the product the link is for; empty for a campaign page.
	SKU       string `json:"p,omitempty"`
	ExpiresAt int64  `json:"x"`
}

// Expires is the link's expiry.
func (l Link) Expires() time.Time { return time.Unix(l.ExpiresAt, 0).UTC() }

// Signer makes and verifies tokens with per-brand keys derived from one
// key.
type Signer struct {
	key []byte
}

// New returns a signer over key (the gateway's security.phone_key bytes;
// share link keys are derived from it, separated from its other uses).
func New(key []byte) *Signer {
	if len(key) == 0 {
		panic("sharelink: empty key")
	}
	return &Signer{key: append([]byte(nil), key...)}
}

func (s *Signer) brandKey(brand string) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte("scrmgw share link v1\x00" + brand))
	return h.Sum(nil)
}

func (s *Signer) mac(brand, payload string) []byte {
	h := hmac.New(sha256.New, s.brandKey(brand))
	h.Write([]byte(payload))
	return h.Sum(nil)[:macBytes]
}

// Make returns the token of l.
func (s *Signer) Make(l Link) (string, error) {
	if l.Brand == "" || l.Guide == "" || l.Store == "" || l.ExpiresAt == 0 {
		return "", errors.New("a share link names a brand, a guide, a store and an expiry")
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "", fmt.Errorf("encoding share link: %w", err)
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	return prefix + payload + "." + base64.RawURLEncoding.EncodeToString(s.mac(l.Brand, payload)), nil
}

// Verify returns what a token says when it verifies and has not expired
// at now: ErrInvalid for anything made up or altered (nothing of it is
// trusted then), ErrExpired for a genuine token past its expiry.
func (s *Signer) Verify(token string, now time.Time) (Link, error) {
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok || len(token) > 512 {
		return Link{}, ErrInvalid
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return Link{}, ErrInvalid
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(mac) != macBytes {
		return Link{}, ErrInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return Link{}, ErrInvalid
	}
	var l Link
	if err := json.Unmarshal(raw, &l); err != nil || l.Brand == "" || l.Guide == "" || l.Store == "" {
		return Link{}, ErrInvalid
	}
	if !hmac.Equal(mac, s.mac(l.Brand, payload)) {
		return Link{}, ErrInvalid
	}
	if !now.Before(l.Expires()) {
		return l, ErrExpired
	}
	return l, nil
}
