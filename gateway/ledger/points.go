package ledger

import (
	"fmt"
	"io/fs"
	"strings"

	"gopkg.in/yaml.v3"
)

// Guide points.
//
// A brand's guide points rule (configs/ledger/guide_points.yaml, or the
// file ledger.guide_points names) says how many points a guide earns for:
// a member bound to them (not by inheriting a leaver's members), a task
// completed before its due time, a purchase by one of their members
// within nudge_days of a workflow message to that member (sent through
// the guide or on the guide's behalf, or a purchase attributed to the
// guide), and per yuan of the sales attributed to them. Refunds take
// purchase points back: sales points in proportion to the money
// refunded, the nudge points once the whole order is refunded.

// PointsRule is one brand's guide points rule.
type PointsRule struct {
	// MemberBound are the points for a member bound to the guide.
	MemberBound int64 `yaml:"member_bound"`
	// TaskOnTime are the points for a guide task completed before it was
	// due.
	TaskOnTime int64 `yaml:"task_on_time"`
	// NudgePurchase are the points for a purchase by a bound member
	// within NudgeDays of a workflow message to them.
	NudgePurchase int64 `yaml:"nudge_purchase"`
	NudgeDays     int   `yaml:"nudge_days"`
	// PerYuan are the points per yuan of sales attributed to the guide
	// ("0.1": a point per 10 yuan), at most two decimals.
	PerYuan PointsRate `yaml:"per_yuan"`
	// CouponRedeemed are the points for a coupon redeemed at the till
	// that the guide's message carried (the guide the coupon was issued
	// through); taken back when the redemption is reversed.
	CouponRedeemed int64 `yaml:"coupon_redeemed"`
}

// PointsRate is a number of points with at most two decimals, kept in
// hundredths.
type PointsRate struct {
	Hundredths int64
	text       string
}

// UnmarshalYAML reads "0.1", "1" or "2.5".
func (r *PointsRate) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	h, err := hundredths(s)
	if err != nil {
		return fmt.Errorf("line %d: %q: want points per yuan with at most 2 decimals (0.1)", n.Line, s)
	}
	r.Hundredths, r.text = h, s
	return nil
}

// String is the rate as written.
func (r PointsRate) String() string { return r.text }

// PointsRules are the guide points rules of every brand.
type PointsRules struct {
	// Brands maps a brand id (or "*", for brands without a rule of their
	// own) to its rule.
	Brands map[string]PointsRule `yaml:"brands"`
}

// LoadPointsRules reads guide points rules from a YAML file (from fsys
// when it is not nil); unknown keys are errors.
func LoadPointsRules(fsys fs.FS, name string) (*PointsRules, error) {
	b, err := readRules(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("guide points rules: %w", err)
	}
	return ParsePointsRules(name, b)
}

// ParsePointsRules reads guide points rules from YAML and checks them.
func ParsePointsRules(name string, b []byte) (*PointsRules, error) {
	var r PointsRules
	if err := decodeRules(name, b, &r); err != nil {
		return nil, err
	}
	for brand, rule := range r.Brands {
		for field, v := range map[string]int64{"member_bound": rule.MemberBound, "task_on_time": rule.TaskOnTime, "nudge_purchase": rule.NudgePurchase} {
			if v < 0 || v > 1_000_000 {
				return nil, fmt.Errorf("%s: brands.%s.%s: want 0 to 1000000 points, got %d", name, brand, field, v)
			}
		}
		if rule.NudgePurchase > 0 && (rule.NudgeDays < 1 || rule.NudgeDays > 365) {
			return nil, fmt.Errorf("%s: brands.%s.nudge_days: want 1 to 365 days with nudge_purchase, got %d", name, brand, rule.NudgeDays)
		}
	}
	return &r, nil
}

// For returns a brand's rule, or "*"'s; ok is false when neither exists.
func (r *PointsRules) For(brand string) (PointsRule, bool) {
	if r == nil {
		return PointsRule{}, false
	}
	if rule, ok := r.Brands[brand]; ok {
		return rule, true
	}
	rule, ok := r.Brands["*"]
	return rule, ok
}

// SalesPoints are the points a rule gives for cents of attributed sales,
// rounded half away from zero.
func (p PointsRule) SalesPoints(cents int64) int64 {
	return mulDiv(cents, p.PerYuan.Hundredths, 100*100)
}

// SalesClawback is what a refund takes back of points awarded on an
// order of total cents: the share of the refunds recorded up to and
// including it (refundedAfter) less the share of those before it
// (refundedBefore), each rounded the same way, so the refunds of a whole
// order take back exactly what it earned whatever their order.
func SalesClawback(points, total, refundedBefore, refundedAfter int64) int64 {
	if total <= 0 {
		return 0
	}
	return mulDiv(points, min(refundedAfter, total), total) - mulDiv(points, min(refundedBefore, total), total)
}
