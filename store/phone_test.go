package store

import (
	"bytes"
	"errors"
	"testing"
)

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"13800138000", "+8613800138000", true},
		{"+86 138-0013-8000", "+8613800138000", true},
		{"008613800138000", "+8613800138000", true},
		{"(+1) 415.555.0100", "", false}, // '+' not first
		{"+14155550100", "+14155550100", true},
		{"+85291234567", "+85291234567", true},
		{"12345", "", false},
		{"+8612800138000", "", false}, // 12x is not a mobile prefix
		{"138001380001", "", false},
		{"tel:13800138000", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		got, err := NormalizePhone(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidPhone) {
			t.Errorf("NormalizePhone(%q) error %v does not wrap ErrInvalidPhone", tc.in, err)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	if got := MaskPhone("+8613800138000"); got != "+86138****8000" {
		t.Errorf("MaskPhone = %q", got)
	}
	if got := MaskPhone("+85291234567"); got != "+852****4567" {
		t.Errorf("MaskPhone short = %q", got)
	}
}

func TestPhoneCipher(t *testing.T) {
	c, err := NewPhoneCipher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := c.Encrypt("+8613800138000")
	b, _ := c.Encrypt("+8613800138000")
	if bytes.Equal(a, b) {
		t.Error("two encryptions of one number are equal: nonce reuse")
	}
	if bytes.Contains(a, []byte("13800138000")) {
		t.Error("ciphertext contains the number")
	}
	if p, err := c.Decrypt(a); err != nil || p != "+8613800138000" {
		t.Errorf("Decrypt = %q, %v", p, err)
	}
	if c.Hash("+8613800138000") != c.Hash("+8613800138000") || c.Hash("+8613800138000") == c.Hash("+8613800138001") {
		t.Error("hash is not a stable, distinguishing function")
	}
	other, _ := NewPhoneCipher(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Decrypt(a); err == nil {
		t.Error("decrypted with the wrong key")
	}
	if other.Hash("+8613800138000") == c.Hash("+8613800138000") {
		t.Error("hash does not depend on the key")
	}
	if _, err := NewPhoneCipher([]byte("short")); err == nil {
		t.Error("short key accepted")
	}
}
