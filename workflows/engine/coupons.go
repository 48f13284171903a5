package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/templates"
)

// ErrUnknownCouponBatch is what issuing from a batch that is not
// configured returns; the send step fails at once (retrying cannot help).
var ErrUnknownCouponBatch = errors.New("unknown coupon batch")

// CouponBatch is a batch coupons are issued from: what each is worth and
// how long it is valid.
type CouponBatch struct {
	Value     templates.Money
	ValidDays int
}

// CouponBatches are the configured batches by id.
type CouponBatches map[string]CouponBatch

// Coupon derives a batch's coupon for a request: the code comes from the
// batch and the request's key, so the same step visit always shows the
// same coupon.
func (b CouponBatches) Coupon(req CouponRequest) (templates.Coupon, error) {
	batch, ok := b[req.Batch]
	if !ok {
		return templates.Coupon{}, fmt.Errorf("%w %q (configure it in coupons.file)", ErrUnknownCouponBatch, req.Batch)
	}
	days := batch.ValidDays
	if days <= 0 {
		days = 30
	}
	return templates.Coupon{Code: couponCode(req), Value: batch.Value, ExpiresAt: req.At.Add(time.Duration(days) * 24 * time.Hour)}, nil
}

// Issue makes CouponBatches a Coupons that records nothing.
func (b CouponBatches) Issue(_ context.Context, req CouponRequest) (templates.Coupon, error) {
	return b.Coupon(req)
}

func couponCode(req CouponRequest) string {
	return req.Batch + "-" + strings.ToUpper(strconv.FormatUint(hash64(req.Key)%(36*36*36*36*36*36), 36))
}
