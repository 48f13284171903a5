package sharelink

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	now := time.Date(2027, 1, 5, 10, 0, 0, 0, time.UTC)
	s := New([]byte(strings.Repeat("k", 32)))
	l := Link{Brand: "camellia", Guide: "g-li", Store: "sh-1", SKU: "CL-100", ExpiresAt: now.Add(DefaultTTL).Unix()}
	tok, err := s.Make(l)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Verify(tok, now)
	if err != nil || got != l {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, l)
	}
	payload, sig, _ := strings.Cut(strings.TrimPrefix(tok, prefix), ".")
	forge := func(edit func(*Link)) string {
		m := l
		edit(&m)
		t2, _ := s.Make(m)
		p2, _, _ := strings.Cut(strings.TrimPrefix(t2, prefix), ".")
		return prefix + p2 + "." + sig // the payload changed, the MAC kept
	}
	flipped := []byte(sig)
	flipped[0] ^= 1
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"another guide", forge(func(m *Link) { m.Guide = "g-wang" }), ErrInvalid},
		{"another store", forge(func(m *Link) { m.Store = "sh-2" }), ErrInvalid},
		{"another brand", forge(func(m *Link) { m.Brand = "rose" }), ErrInvalid},
		{"longer life", forge(func(m *Link) { m.ExpiresAt += 86400 }), ErrInvalid},
		{"MAC altered", prefix + payload + "." + string(flipped), ErrInvalid},
		{"MAC missing", prefix + payload, ErrInvalid},
		{"no prefix", strings.TrimPrefix(tok, prefix), ErrInvalid},
		{"not base64", prefix + "!!." + sig, ErrInvalid},
		{"not JSON", prefix + base64.RawURLEncoding.EncodeToString([]byte("x")) + "." + sig, ErrInvalid},
		{"empty", "", ErrInvalid},
		{"another key", func() string { t2, _ := New([]byte(strings.Repeat("o", 32))).Make(l); return t2 }(), ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Verify(tc.token, now); !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := s.Verify(tok, l.Expires()); !errors.Is(err, ErrExpired) {
		t.Errorf("at expiry: %v, want ErrExpired", err)
	}
	if _, err := s.Verify(tok, l.Expires().Add(-time.Second)); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
}

func TestBrandKeysDiffer(t *testing.T) {
	s := New([]byte(strings.Repeat("k", 32)))
	if string(s.brandKey("a")) == string(s.brandKey("b")) {
		t.Error("two brands share a key")
	}
}
