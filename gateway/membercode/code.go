package membercode

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Format of a code.
const (
	// Prefix starts every member code.
	Prefix = "97"
	// Length is the number of digits of a code.
	Length = 18
	// Step is how long a code is current; Check also accepts the step
	// before, so a code scans for 60 to 120 s after it was made.
	Step = 60 * time.Second
	// MaxMemberID is the largest member id a code can carry.
	MaxMemberID = 999_999_999
	// ExpiredLookback is how far back Check recognises a code of the
	// brand as expired (rather than unknown).
	ExpiredLookback = 24 * time.Hour

	numberDigits = 9
	macDigits    = 6
	numberMod    = 1_000_000_000
	macMod       = 1_000_000
)

// Errors of Check.
var (
	// ErrMalformed: not 18 digits starting with Prefix.
	ErrMalformed = errors.New("not a member code")
	// ErrExpired: a code of the brand whose window has passed.
	ErrExpired = errors.New("member code expired")
	// ErrUnknown: the code verifies with none of the brand's secrets.
	ErrUnknown = errors.New("member code unknown")
)

// step is the time step of t.
func step(t time.Time) int64 { return t.Unix() / int64(Step/time.Second) }

// Make returns the code of member id at time at, keyed with secret.
func Make(secret []byte, id int64, at time.Time) (string, error) {
	if id < 1 || id > MaxMemberID {
		return "", fmt.Errorf("member id %d: a member code carries ids from 1 to %d", id, MaxMemberID)
	}
	if len(secret) < 16 {
		return "", errors.New("member code secret: want at least 16 bytes")
	}
	s := step(at)
	number := (uint64(id) + pad(secret, s)) % numberMod
	return fmt.Sprintf("%s%d%0*d%0*d", Prefix, s%10, numberDigits, number, macDigits, mac(secret, s, id)), nil
}

// ValidUntil is when a code made at t stops scanning.
func ValidUntil(t time.Time) time.Time {
	return time.Unix((step(t)+2)*int64(Step/time.Second), 0)
}

// Check returns the member id code carries if it verifies with one of
// secrets (the brand's current secret first, then one being rotated out)
// at now's or the previous step.
func Check(secrets [][]byte, code string, now time.Time) (int64, error) {
	if !Wellformed(code) {
		return 0, ErrMalformed
	}
	digit := int64(code[len(Prefix)] - '0')
	var number uint64
	for _, c := range code[len(Prefix)+1 : len(Prefix)+1+numberDigits] {
		number = number*10 + uint64(c-'0')
	}
	var got uint32
	for _, c := range code[Length-macDigits:] {
		got = got*10 + uint32(c-'0')
	}
	cur := step(now)
	// The latest step not after now that ends in the code's digit; the
	// code is live if that is now's step or the one before.
	s := cur - ((cur%10-digit)+10)%10
	oldest := cur - int64(ExpiredLookback/Step)
	for ; s >= oldest; s -= 10 {
		for _, secret := range secrets {
			if len(secret) == 0 {
				continue
			}
			id := int64((number + numberMod - pad(secret, s)) % numberMod)
			if id < 1 {
				continue
			}
			if subtle.ConstantTimeEq(int32(mac(secret, s, id)), int32(got)) == 1 {
				if s >= cur-1 {
					return id, nil
				}
				return 0, ErrExpired
			}
		}
	}
	return 0, ErrUnknown
}

// Wellformed reports whether code looks like a member code (18 digits,
// Prefix first); it says nothing of whether it verifies.
func Wellformed(code string) bool {
	if len(code) != Length || code[:len(Prefix)] != Prefix {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// pad masks the member number at step s.
func pad(secret []byte, s int64) uint64 {
	h := hmac.New(sha256.New, secret)
	var buf [12]byte
	copy(buf[:4], "pad:")
	binary.BigEndian.PutUint64(buf[4:], uint64(s))
	h.Write(buf[:])
	return binary.BigEndian.Uint64(h.Sum(nil)[:8]) % numberMod
}

// mac is the code's check value: HMAC-SHA256 over the step and the
// member id, dynamically truncated (RFC 4226 §5.3) to 6 digits.
func mac(secret []byte, s, id int64) uint32 {
	h := hmac.New(sha256.New, secret)
	var buf [20]byte
	copy(buf[:4], "mac:")
	binary.BigEndian.PutUint64(buf[4:], uint64(s))
	binary.BigEndian.PutUint64(buf[12:], uint64(id))
	h.Write(buf[:])
	sum := h.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return v % macMod
}
