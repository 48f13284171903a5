package commerce

import (
	"context"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// ParseCouponBatches reads a coupon batches file (b, named name in
// errors). Unknown keys, bad values and bad ids are errors.
func ParseCouponBatches(name string, b []byte) (engine.CouponBatches, error) {
	var file struct {
		Batches map[string]struct {
			Value       string `yaml:"value"`
			ValidDays   int    `yaml:"valid_days"`
			Description string `yaml:"description"`
		} `yaml:"batches"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	out := engine.CouponBatches{}
	for id, bt := range file.Batches {
		if err := store.ValidateID("batch", id); err != nil {
			return nil, fmt.Errorf("%s: batches.%s: %v", name, id, err)
		}
		v, err := events.ParseMoney(bt.Value)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%s: batches.%s.value: want yuan above 0 with at most 2 decimals, got %q", name, id, bt.Value)
		}
		if bt.ValidDays < 0 || bt.ValidDays > 3650 {
			return nil, fmt.Errorf("%s: batches.%s.valid_days: want 0-3650 (0: 30), got %d", name, id, bt.ValidDays)
		}
		out[id] = engine.CouponBatch{Value: templates.Money(v), ValidDays: bt.ValidDays}
	}
	return out, nil
}

// CouponIssuer issues coupons from the configured batches and records
// each one, so the brand's POS can honour it.
type CouponIssuer struct {
	Batches engine.CouponBatches
	Store   *store.Store
}

// Issue implements engine.Coupons.
func (c CouponIssuer) Issue(ctx context.Context, req engine.CouponRequest) (templates.Coupon, error) {
	cp, err := c.Batches.Coupon(req)
	if err != nil {
		return cp, err
	}
	ic := &store.IssuedCoupon{Key: req.Key, Code: cp.Code, Batch: req.Batch, BrandID: req.Brand, MemberID: req.MemberID,
		ValueCents: int64(cp.Value), ExpiresAt: cp.ExpiresAt.UTC(), IssuedAt: req.At.UTC(), Workflow: req.Workflow, GuideID: req.GuideID}
	if req.RunID != 0 {
		ic.RunID = &req.RunID
	}
	got, err := c.Store.IssueCoupon(ctx, ic)
	if err != nil {
		return cp, fmt.Errorf("recording coupon: %w", err)
	}
	return templates.Coupon{Code: got.Code, Value: templates.Money(got.ValueCents), ExpiresAt: got.ExpiresAt}, nil
}
