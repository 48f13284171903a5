package adapters

import (
	"testing"
	"time"
)

func TestSpecInWindow(t *testing.T) {
	now := time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC)
	oa := Spec{Window: 48 * time.Hour, OutsideKinds: []string{KindTemplate}}
	for _, tc := range []struct {
		name string
		spec Spec
		last time.Time
		want bool
	}{
		{"no window: always", Spec{}, time.Time{}, true},
		{"never wrote", oa, time.Time{}, false},
		{"wrote an hour ago", oa, now.Add(-time.Hour), true},
		{"just inside", oa, now.Add(-48*time.Hour + time.Second), true},
		{"48 hours ago: closed", oa, now.Add(-48 * time.Hour), false},
		{"three days ago", oa, now.Add(-72 * time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.spec.InWindow(tc.last, now); got != tc.want {
				t.Errorf("InWindow(%v) = %v, want %v", tc.last, got, tc.want)
			}
		})
	}
}
