package engine

import (
	"errors"
	"testing"
	"time"
)

func TestCouponBatches(t *testing.T) {
	b := CouponBatches{"NEW-50": {Value: 5000, ValidDays: 7}, "ANY": {Value: 100}}
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	c, err := b.Coupon(CouponRequest{Batch: "NEW-50", Key: "wf:1:coupon:1", At: at})
	if err != nil || c.Value != 5000 || !c.ExpiresAt.Equal(at.AddDate(0, 0, 7)) || len(c.Code) < len("NEW-50-X") || c.Code[:7] != "NEW-50-" {
		t.Fatalf("coupon = %+v, %v", c, err)
	}
	again, _ := b.Coupon(CouponRequest{Batch: "NEW-50", Key: "wf:1:coupon:1", At: at.Add(time.Hour)})
	other, _ := b.Coupon(CouponRequest{Batch: "NEW-50", Key: "wf:2:coupon:1", At: at})
	if again.Code != c.Code || other.Code == c.Code {
		t.Errorf("codes: same key %q/%q, other key %q", c.Code, again.Code, other.Code)
	}
	if d, _ := b.Coupon(CouponRequest{Batch: "ANY", Key: "k", At: at}); !d.ExpiresAt.Equal(at.AddDate(0, 0, 30)) {
		t.Errorf("default validity: %v", d.ExpiresAt)
	}
	if _, err := b.Coupon(CouponRequest{Batch: "NOPE", Key: "k", At: at}); !errors.Is(err, ErrUnknownCouponBatch) {
		t.Errorf("unknown batch: %v", err)
	}
}
