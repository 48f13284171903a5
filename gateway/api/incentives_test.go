package api

import (
	"testing"
	"time"
)

func TestPeriod(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	// 2026-11-30 16:30 UTC is already 1 December in Shanghai.
	now := time.Date(2026, 11, 30, 16, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		period, want string
		ok           bool
	}{
		{"", "2026-12", true},
		{PeriodThisMonth, "2026-12", true},
		{PeriodLastMonth, "2026-11", true},
		{"2026-02", "2026-02", true},
		{"2026-13", "", false},
		{"2026-1", "", false},
		{"last_week", "", false},
	} {
		got, ok := Period(tc.period, now, sh)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("Period(%q) = %q, %v; want %q, %v", tc.period, got, ok, tc.want, tc.ok)
		}
	}
	if got, _ := Period("", now, time.UTC); got != "2026-11" {
		t.Errorf("this month in UTC = %s, want 2026-11", got)
	}
}
