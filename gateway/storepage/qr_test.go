package storepage

import (
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
)

// A store's card shows its newest permanent code; a temporary one only
// while it works, and never a picture that is not a web address.
func TestNewestQR(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	perm := func(u string) store.ContactWay { return store.ContactWay{QRCode: u} }
	temp := func(u string, exp time.Time) store.ContactWay { return store.ContactWay{QRCode: u, ExpiresAt: &exp} }
	for _, tc := range []struct {
		name string
		cws  []store.ContactWay
		want string
	}{
		{"none", nil, ""},
		{"newest permanent", []store.ContactWay{perm("https://qr/1"), perm("https://qr/2")}, "https://qr/2"},
		{"permanent before a newer temporary", []store.ContactWay{perm("https://qr/1"), temp("https://qr/t", future)}, "https://qr/1"},
		{"a working temporary", []store.ContactWay{temp("https://qr/t", future)}, "https://qr/t"},
		{"an expired temporary", []store.ContactWay{temp("https://qr/t", past)}, ""},
		{"expiring now", []store.ContactWay{temp("https://qr/t", now)}, ""},
		{"not a web address", []store.ContactWay{perm("javascript:alert(1)"), perm("qr/relative")}, ""},
	} {
		if got := newestQR(tc.cws, now); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
