package commerce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// redemptionSource is the event log's source of the coupon events
// scrmgw logs; their source id names the redemption.
const redemptionSource = "coupons"

// Redeem redeems a brand's coupon against an order (POST
// /coupons/redeem and the POS's coupon.redeemed) and logs coupon.redeemed
// for the workflows, once per redemption: redeeming it again for the same
// order answers the same redemption and logs nothing new. The store's
// errors come back as they are (store.ErrNotFound, ErrCouponRedeemed,
// ErrCouponExpired, a FieldError).
func (c *Ingester) Redeem(ctx context.Context, r store.Redemption) (*store.CouponRedemption, bool, error) {
	if r.At.IsZero() {
		r.At = c.now()
	}
	red, fresh, err := c.store.RedeemCoupon(ctx, r)
	if err != nil {
		return nil, false, err
	}
	if fresh {
		c.log.InfoContext(ctx, "coupon redeemed", slog.String("brand", red.BrandID), slog.String("batch", red.Batch),
			slog.String("order_id", red.OrderNo), slog.String("store", red.StoreID), slog.String("guide", red.GuideID))
	}
	// Also for a redemption answered again: a crash between the
	// redemption and its event must not lose the event (it is keyed).
	e := redemptionEvent(events.TypeCouponRedeemed, red, red.RedeemedAt)
	if err := c.logEvent(ctx, e); err != nil {
		return nil, false, err
	}
	return red, fresh, nil
}

// redemptionEvent is the coupon.redeemed or coupon.unredeemed of a
// redemption, with who it is attributed to.
func redemptionEvent(typ string, red *store.CouponRedemption, at time.Time) *store.Event {
	member := red.MemberID
	p := map[string]any{"code": red.Code, "batch": red.Batch, "order_id": red.OrderNo, "store_id": red.StoreID,
		"redemption_id": strconv.FormatInt(red.ID, 10), "value": events.Money(red.ValueCents)}
	if red.RunID != nil {
		p["run_id"] = strconv.FormatInt(*red.RunID, 10)
	}
	if red.Workflow != "" {
		p["workflow"] = red.Workflow
	}
	if red.GuideID != "" {
		p["guide_id"] = red.GuideID
	}
	if red.RefundNo != "" {
		p["refund_id"] = red.RefundNo
	}
	key := "redeemed:"
	if typ == events.TypeCouponUnredeemed {
		key = "unredeemed:"
	}
	return &store.Event{Type: typ, BrandID: red.BrandID, MemberID: &member, Source: redemptionSource,
		SourceID: key + strconv.FormatInt(red.ID, 10), Payload: mustJSON(p), OccurredAt: at}
}

// logEvent appends an event and hands it to the engine (both are
// idempotent).
func (c *Ingester) logEvent(ctx context.Context, e *store.Event) error {
	if _, err := c.store.AppendEvent(ctx, e); err != nil {
		return fmt.Errorf("logging %s: %w", e.Type, err)
	}
	if c.OnLogged == nil {
		return nil
	}
	if e.ID == 0 {
		// Logged before: hand the engine the logged row (its id orders
		// it after the run it may end).
		got, err := c.store.EventBySource(ctx, e.Source, e.SourceID)
		if err != nil {
			return fmt.Errorf("reading %s: %w", e.Type, err)
		}
		e = got
	}
	return c.OnLogged(ctx, e)
}

// couponEvent applies the POS's coupon.redeemed: the same redemption as
// POST /coupons/redeem. A coupon the brand does not have, one redeemed
// on another order or expired is bad data: logged, not retried.
func (c *Ingester) couponEvent(ctx context.Context, in *adapters.Inbound) error {
	var d events.CouponData
	if err := json.Unmarshal([]byte(in.Attrs["data"]), &d); err != nil {
		return permanent("event data: %v", err)
	}
	_, _, err := c.Redeem(ctx, store.Redemption{Brand: in.Brand, Code: d.Code, OrderNo: d.OrderID, StoreID: d.Store, MemberID: d.Member.MemberID, At: in.At})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return permanent("data.code: no coupon of brand %s has this code", in.Brand)
	case errors.Is(err, store.ErrCouponRedeemed):
		return permanent("data.code: %v", err)
	case errors.Is(err, store.ErrCouponExpired), errors.Is(err, store.ErrCouponMember):
		return permanent("data.code: %v", err)
	case errors.Is(err, store.ErrInvalid):
		return permanent("coupon.redeemed: %v", err)
	}
	return err
}

// unredeem gives back the coupons redeemed on an order its refund
// returned all of, and logs coupon.unredeemed for each. Run again (a
// retried refund event) it logs what the refund gave back before, once.
func (c *Ingester) unredeem(ctx context.Context, brand, orderNo, refundNo string, at time.Time) error {
	now, err := c.store.UnredeemOrderCoupons(ctx, brand, orderNo, refundNo, at)
	if err != nil {
		return fmt.Errorf("giving back the coupons of order %s: %w", orderNo, err)
	}
	for range now {
		c.log.InfoContext(ctx, "coupon given back", slog.String("brand", brand), slog.String("order_id", orderNo), slog.String("refund_id", refundNo))
	}
	reds, err := c.store.OrderRedemptions(ctx, brand, orderNo)
	if err != nil {
		return fmt.Errorf("reading the coupons of order %s: %w", orderNo, err)
	}
	for i := range reds {
		if reds[i].RefundNo != refundNo || reds[i].UnredeemedAt == nil {
			continue
		}
		if err := c.logEvent(ctx, redemptionEvent(events.TypeCouponUnredeemed, &reds[i], *reds[i].UnredeemedAt)); err != nil {
			return err
		}
	}
	return nil
}
