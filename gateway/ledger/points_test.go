package ledger

import (
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/configs"
)

func TestPointsRules(t *testing.T) {
	fsys, name := configs.GuidePointsRules()
	r, err := LoadPointsRules(fsys, name)
	if err != nil {
		t.Fatalf("the built-in rules: %v", err)
	}
	if rule, ok := r.For("any-brand"); !ok || rule.MemberBound <= 0 || rule.NudgeDays <= 0 || rule.PerYuan.Hundredths != 10 {
		t.Errorf("built-in default rule = %+v, %v", rule, ok)
	}
	for _, tc := range []struct{ name, yaml, err string }{
		{"unknown key", "brands:\n  '*':\n    member_bund: 3\n", "member_bund"},
		{"negative", "brands:\n  acme:\n    task_on_time: -1\n", "brands.acme.task_on_time"},
		{"nudge without days", "brands:\n  acme:\n    nudge_purchase: 5\n", "brands.acme.nudge_days"},
		{"three decimals", "brands:\n  acme:\n    per_yuan: '0.125'\n", "at most 2 decimals"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePointsRules("p.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
	r, _ = ParsePointsRules("p.yaml", []byte("brands:\n  acme:\n    per_yuan: '0.1'\n  '*':\n    member_bound: 1\n"))
	if rule, _ := r.For("acme"); rule.MemberBound != 0 || rule.SalesPoints(35750) != 36 || rule.SalesPoints(9950) != 10 || rule.SalesPoints(440) != 0 {
		t.Errorf("acme rule = %+v (357.50 → %d, 99.50 → %d, 4.40 → %d; want 36, 10, 0)", rule, rule.SalesPoints(35750), rule.SalesPoints(9950), rule.SalesPoints(440))
	}
	if rule, _ := r.For("zeta"); rule.MemberBound != 1 {
		t.Errorf("zeta falls back to *: %+v", rule)
	}
	var none *PointsRules
	if _, ok := none.For("acme"); ok {
		t.Error("nil rules have a rule")
	}
}

// TestSalesClawback: refunds of an order, in any order of amounts, take
// back exactly the points it earned.
func TestSalesClawback(t *testing.T) {
	for _, tc := range []struct {
		points, total int64
		refunds       []int64
		want          []int64
	}{
		{36, 35750, []int64{12900, 22850}, []int64{13, 23}},
		{36, 35750, []int64{22850, 12900}, []int64{23, 13}},
		{10, 300, []int64{100, 100, 100}, []int64{3, 4, 3}},
		{7, 1000, []int64{500}, []int64{4}},
		{0, 1000, []int64{1000}, []int64{0}},
	} {
		var cum, sum int64
		for i, r := range tc.refunds {
			got := SalesClawback(tc.points, tc.total, cum, cum+r)
			cum += r
			sum += got
			if got != tc.want[i] {
				t.Errorf("%d points on %d, refund %d of %d: %d, want %d", tc.points, tc.total, i, r, got, tc.want[i])
			}
		}
		if cum == tc.total && sum != tc.points {
			t.Errorf("%d points on %d: refunds took back %d", tc.points, tc.total, sum)
		}
	}
}
