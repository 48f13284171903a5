package app

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// LoadCouponBatches reads the coupon batches of coupons.file, or the
// built-in ones. Unknown keys, bad values and bad ids are errors.
func LoadCouponBatches(cfg configs.Config) (engine.CouponBatches, error) {
	var (
		b    []byte
		err  error
		name = cfg.Coupons.File
	)
	if name != "" {
		b, err = os.ReadFile(name)
	} else {
		var fsys fs.FS
		fsys, name = configs.CouponBatches()
		b, err = fs.ReadFile(fsys, name)
	}
	if err != nil {
		return nil, fmt.Errorf("coupons.file: %w", err)
	}
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
		v, err := webhook.ParseMoney(bt.Value)
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

// couponIssuer issues coupons from the configured batches and records
// each one, so the brand's POS can honour it.
type couponIssuer struct {
	batches engine.CouponBatches
	store   *store.Store
}

func (c couponIssuer) Issue(ctx context.Context, req engine.CouponRequest) (templates.Coupon, error) {
	cp, err := c.batches.Coupon(req)
	if err != nil {
		return cp, err
	}
	got, err := c.store.IssueCoupon(ctx, &store.IssuedCoupon{Key: req.Key, Code: cp.Code, Batch: req.Batch, BrandID: req.Brand,
		MemberID: req.MemberID, ValueCents: int64(cp.Value), ExpiresAt: cp.ExpiresAt.UTC(), IssuedAt: req.At.UTC()})
	if err != nil {
		return cp, fmt.Errorf("recording coupon: %w", err)
	}
	return templates.Coupon{Code: got.Code, Value: templates.Money(got.ValueCents), ExpiresAt: got.ExpiresAt}, nil
}
