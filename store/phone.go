package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidPhone means a phone number cannot be normalised to E.164.
var ErrInvalidPhone = errors.New("invalid phone number")

// NormalizePhone returns the E.164 form of a phone number. Spaces, dashes,
// dots and parentheses are ignored; a Chinese mobile number may omit +86
// (11 digits starting with 1), and a leading 00 stands for +.
func NormalizePhone(s string) (string, error) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", fmt.Errorf("%w: unexpected character %q", ErrInvalidPhone, r)
		}
	}
	p := b.String()
	switch {
	case strings.HasPrefix(p, "+"):
	case strings.HasPrefix(p, "00"):
		p = "+" + p[2:]
	case len(p) == 11 && p[0] == '1':
		p = "+86" + p
	default:
		return "", fmt.Errorf("%w: want +<country code><number>, or an 11-digit Chinese mobile number", ErrInvalidPhone)
	}
	digits := p[1:]
	if len(digits) < 8 || len(digits) > 15 || digits[0] == '0' {
		return "", fmt.Errorf("%w: want 8 to 15 digits after +", ErrInvalidPhone)
	}
	if strings.HasPrefix(p, "+86") && len(digits) == 13 && digits[2] == '1' {
		if digits[3] < '3' {
			return "", fmt.Errorf("%w: not a Chinese mobile number", ErrInvalidPhone)
		}
	}
	return p, nil
}

// MaskPhone hides the middle of an E.164 number: +86138****8000.
func MaskPhone(e164 string) string {
	if len(e164) < 8 {
		return "****"
	}
	keep := 6
	if len(e164) < 14 {
		keep = 4
	}
	return e164[:keep] + "****" + e164[len(e164)-4:]
}

// PhoneCipher encrypts phone numbers at rest (AES-256-GCM) and hashes them
// with a keyed hash (HMAC-SHA256) for lookup. Both keys derive from one
// 32-byte secret.
type PhoneCipher struct {
	aead    cipher.AEAD
	hashKey []byte
}

// NewPhoneCipher builds a cipher from a 32-byte key.
func NewPhoneCipher(key []byte) (*PhoneCipher, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("phone key: want 32 bytes, got %d", len(key))
	}
	encKey := derive(key, "scrmgw phone encryption v1")
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, fmt.Errorf("phone key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("phone key: %w", err)
	}
	return &PhoneCipher{aead: aead, hashKey: derive(key, "scrmgw phone lookup v1")}, nil
}

func derive(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Hash returns the lookup hash of an E.164 number.
func (c *PhoneCipher) Hash(e164 string) string {
	m := hmac.New(sha256.New, c.hashKey)
	m.Write([]byte(e164))
	return hex.EncodeToString(m.Sum(nil))
}

// Encrypt seals an E.164 number: nonce followed by the ciphertext.
func (c *PhoneCipher) Encrypt(e164 string) ([]byte, error) {
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(e164)+c.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("encrypting phone: %w", err)
	}
	return c.aead.Seal(nonce, nonce, []byte(e164), nil), nil
}

// Decrypt opens what Encrypt sealed.
func (c *PhoneCipher) Decrypt(sealed []byte) (string, error) {
	n := c.aead.NonceSize()
	if len(sealed) < n+c.aead.Overhead() {
		return "", errors.New("decrypting phone: too short")
	}
	plain, err := c.aead.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		return "", fmt.Errorf("decrypting phone (wrong security.phone_key?): %w", err)
	}
	return string(plain), nil
}
