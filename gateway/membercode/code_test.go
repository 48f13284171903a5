package membercode

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	keyA = []byte("brand-a-member-code-secret-0123456789")
	keyB = []byte("brand-b-member-code-secret-0123456789")
)

// t0 is the start of a step (its Unix seconds are a multiple of 60).
var t0 = time.Unix(1_796_000_040, 0)

func mustMake(t *testing.T, key []byte, id int64, at time.Time) string {
	t.Helper()
	c, err := Make(key, id, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// flip changes the digit at i.
func flip(code string, i int) string {
	b := []byte(code)
	b[i] = '0' + (b[i]-'0'+1)%10
	return string(b)
}

func TestMemberCodeFormat(t *testing.T) {
	if t0.Unix()%60 != 0 {
		t.Fatalf("t0 is not the start of a step")
	}
	for _, id := range []int64{1, 42, 123456, MaxMemberID} {
		c := mustMake(t, keyA, id, t0)
		if len(c) != Length || !strings.HasPrefix(c, Prefix) || !Wellformed(c) {
			t.Errorf("Make(%d) = %q: want 18 digits starting %s", id, c, Prefix)
		}
		if got, err := Check([][]byte{keyA}, c, t0); err != nil || got != id {
			t.Errorf("Check(Make(%d)) = %d, %v", id, got, err)
		}
	}
	// The same member's code changes every step, all of it but the prefix
	// (no stable member number for a scanner to collect).
	a, b := mustMake(t, keyA, 42, t0), mustMake(t, keyA, 42, t0.Add(Step))
	if a[3:12] == b[3:12] || a[12:] == b[12:] {
		t.Errorf("codes of consecutive steps share parts: %s %s", a, b)
	}
	// Two brands give the same member different codes.
	if mustMake(t, keyA, 42, t0) == mustMake(t, keyB, 42, t0) {
		t.Errorf("brands share a code")
	}
	for _, id := range []int64{0, -1, MaxMemberID + 1} {
		if _, err := Make(keyA, id, t0); err == nil {
			t.Errorf("Make(%d) succeeded", id)
		}
	}
	if _, err := Make([]byte("short"), 1, t0); err == nil {
		t.Errorf("Make with a short key succeeded")
	}
	if got := ValidUntil(t0.Add(59 * time.Second)); !got.Equal(t0.Add(2 * Step)) {
		t.Errorf("ValidUntil = %v, want %v", got, t0.Add(2*Step))
	}
}

func TestMemberCodeCheck(t *testing.T) {
	const id = 80517
	code := mustMake(t, keyA, id, t0.Add(30*time.Second)) // made mid-step
	rotated := [][]byte{keyB, keyA}                       // keyA being rotated out
	tests := []struct {
		name    string
		secrets [][]byte
		code    string
		now     time.Time
		want    error
	}{
		{"same instant", [][]byte{keyA}, code, t0.Add(30 * time.Second), nil},
		{"start of its step", [][]byte{keyA}, code, t0, nil},
		{"last second of its step", [][]byte{keyA}, code, t0.Add(Step - time.Second), nil},
		{"next step (clock skew at the till)", [][]byte{keyA}, code, t0.Add(Step), nil},
		{"last second of the next step", [][]byte{keyA}, code, t0.Add(2*Step - time.Second), nil},
		{"two steps on", [][]byte{keyA}, code, t0.Add(2 * Step), ErrExpired},
		{"nine steps on", [][]byte{keyA}, code, t0.Add(9 * Step), ErrExpired},
		{"ten steps on (same last digit)", [][]byte{keyA}, code, t0.Add(10 * Step), ErrExpired},
		{"a day on", [][]byte{keyA}, code, t0.Add(ExpiredLookback - time.Second), ErrExpired},
		{"past the lookback", [][]byte{keyA}, code, t0.Add(ExpiredLookback + 10*Step), ErrUnknown},
		{"a step early (made in the future)", [][]byte{keyA}, code, t0.Add(-time.Second), ErrUnknown},
		{"another brand's secret", [][]byte{keyB}, code, t0, ErrUnknown},
		{"previous secret during a rotation", rotated, code, t0, nil},
		{"no secrets", nil, code, t0, ErrUnknown},
		{"tampered step digit", [][]byte{keyA}, flip(code, 2), t0, ErrUnknown},
		{"tampered member number", [][]byte{keyA}, flip(code, 7), t0, ErrUnknown},
		{"tampered first member digit", [][]byte{keyA}, flip(code, 3), t0, ErrUnknown},
		{"tampered check value", [][]byte{keyA}, flip(code, 17), t0, ErrUnknown},
		{"wrong prefix", [][]byte{keyA}, "98" + code[2:], t0, ErrMalformed},
		{"too short", [][]byte{keyA}, code[:17], t0, ErrMalformed},
		{"too long", [][]byte{keyA}, code + "0", t0, ErrMalformed},
		{"letters", [][]byte{keyA}, code[:10] + "a" + code[11:], t0, ErrMalformed},
		{"spaces", [][]byte{keyA}, code[:4] + " " + code[5:], t0, ErrMalformed},
		{"empty", [][]byte{keyA}, "", t0, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Check(tc.secrets, tc.code, tc.now)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("Check = %d, %v; want %v", got, err, tc.want)
			}
			if tc.want == nil && got != id {
				t.Errorf("Check = member %d, want %d", got, id)
			}
			if tc.want != nil && got != 0 {
				t.Errorf("Check returned member %d with %v", got, err)
			}
		})
	}
}

// TestMemberCodeGuessing: of codes made up by changing one digit of a
// real one, none verifies (a single-digit typo at the till never names
// another member).
func TestMemberCodeGuessing(t *testing.T) {
	for _, id := range []int64{1, 7, 80517, MaxMemberID} {
		code := mustMake(t, keyA, id, t0)
		for i := len(Prefix); i < Length; i++ {
			for d := 1; d < 10; d++ {
				b := []byte(code)
				b[i] = '0' + (b[i]-'0'+byte(d))%10
				if got, err := Check([][]byte{keyA}, string(b), t0); err == nil {
					t.Fatalf("%s (digit %d of %s changed) verifies as member %d", b, i, code, got)
				}
			}
		}
	}
}
