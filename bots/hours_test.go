package bots

import (
	"testing"
	"time"
)

func TestParseHours(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"10:00-22:00", "10:00-22:00"},
		{"9:30 ~ 21:30", "09:30-21:30"},
		{"周一至周日 10：00—22：00", "10:00-22:00"},
		{"10:00-14:00, 17:00-22:00", "10:00-14:00,17:00-22:00"},
		{"22:00-次日02:00", "22:00-02:00"},
		{"10:00 to 24:00", "10:00-00:00"},
		{"10:00至22:00", "10:00-22:00"},
		{"00:00-24:00", "always open"},
		{"24小时营业", "always open"},
		{"", "always open"},
		{"25:00-26:00", "always open"},
		{"10:60-22:00", "always open"},
		{"open late", "always open"},
	} {
		t.Run(tc.text, func(t *testing.T) {
			if got := ParseHours(tc.text).String(); got != tc.want {
				t.Errorf("ParseHours(%q) = %s, want %s", tc.text, got, tc.want)
			}
		})
	}
}

func TestHoursNext(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	day := func(loc *time.Location, d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, loc) }
	for _, tc := range []struct {
		name, hours string
		at, want    time.Time
	}{
		{"inside", "10:00-22:00", day(shanghai, 5, 15, 0), day(shanghai, 5, 15, 0)},
		{"at opening", "10:00-22:00", day(shanghai, 5, 10, 0), day(shanghai, 5, 10, 0)},
		{"before opening", "10:00-22:00", day(shanghai, 5, 7, 30), day(shanghai, 5, 10, 0)},
		{"at closing", "10:00-22:00", day(shanghai, 5, 22, 0), day(shanghai, 6, 10, 0)},
		{"after closing", "10:00-22:00", day(shanghai, 5, 23, 15), day(shanghai, 6, 10, 0)},
		{"lunch break", "10:00-14:00,17:00-22:00", day(shanghai, 5, 15, 0), day(shanghai, 5, 17, 0)},
		{"overnight, late evening", "22:00-02:00", day(shanghai, 5, 23, 0), day(shanghai, 5, 23, 0)},
		{"overnight, after midnight", "22:00-02:00", day(shanghai, 6, 1, 30), day(shanghai, 6, 1, 30)},
		{"overnight, closed by day", "22:00-02:00", day(shanghai, 6, 2, 0), day(shanghai, 6, 22, 0)},
		{"unparseable is always open", "by appointment", day(shanghai, 5, 3, 0), day(shanghai, 5, 3, 0)},
		{"empty is always open", "", day(shanghai, 5, 3, 0), day(shanghai, 5, 3, 0)},
		// 01:00 UTC is 09:00 in Shanghai: before a 10:00 opening there,
		// though it is past 10:00 nowhere in UTC.
		{"store's zone", "10:00-22:00", time.Date(2026, 3, 5, 1, 0, 0, 0, time.UTC).In(shanghai), day(shanghai, 5, 10, 0)},
		{"other zone", "10:00-22:00", time.Date(2026, 3, 5, 16, 0, 0, 0, time.UTC).In(newYork), day(newYork, 5, 11, 0)},
		// New York springs forward on 8 March 2026: 02:00 is 03:00 EDT.
		{"daylight saving", "09:00-18:00", day(newYork, 7, 20, 0), day(newYork, 8, 9, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseHours(tc.hours).Next(tc.at)
			if !got.Equal(tc.want) {
				t.Errorf("%q: Next(%v) = %v, want %v", tc.hours, tc.at, got, tc.want)
			}
		})
	}
}
