package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// Error codes of coupon redemption.
const (
	// CodeCouponRedeemed: the coupon is redeemed on another order.
	CodeCouponRedeemed = "coupon_redeemed"
	// CodeCouponExpired: the coupon's validity has passed.
	CodeCouponExpired = "coupon_expired"
	// CodeCouponMember: the coupon is not the order's member's.
	CodeCouponMember = "coupon_member_mismatch"
)

// Redeemer redeems coupons at the till (the commerce ingester: it logs
// coupon.redeemed for the workflows).
type Redeemer interface {
	Redeem(ctx context.Context, r store.Redemption) (*store.CouponRedemption, bool, error)
}

// redeemInput is the body of POST /coupons/redeem.
type redeemInput struct {
	Code    string `json:"code"`
	OrderID string `json:"order_id"`
	StoreID string `json:"store_id"`
	// Brand is required with an admin token, as for /pos/identify.
	Brand string `json:"brand"`
}

// redeemed is the answer of POST /coupons/redeem: the redemption, with
// the workflow and guide it is credited to.
type redeemed struct {
	ID         int64     `json:"id"`
	Brand      string    `json:"brand"`
	Code       string    `json:"code"`
	Batch      string    `json:"batch"`
	OrderID    string    `json:"order_id"`
	StoreID    string    `json:"store_id,omitempty"`
	MemberID   int64     `json:"member_id"`
	ValueCents int64     `json:"value_cents"`
	RedeemedAt time.Time `json:"redeemed_at"`
	Workflow   string    `json:"workflow,omitempty"`
	GuideID    string    `json:"guide_id,omitempty"`
}

// redeemCoupon is POST /api/v1/coupons/redeem: the till takes a coupon
// against an order. 201 the first time; the same coupon and order again
// answer the same redemption with 200.
func (s *Server) redeemCoupon(c *gin.Context) {
	if !serving(c, s.redeemer != nil, "coupon redemption is") {
		return
	}
	var in redeemInput
	brand, ok := s.decodeTill(c, &in, &in.Brand)
	if !ok {
		return
	}
	var missing []Detail
	if in.Code == "" {
		missing = append(missing, Detail{Field: "code", Message: "is required"})
	}
	if in.OrderID == "" {
		missing = append(missing, Detail{Field: "order_id", Message: "is required"})
	}
	if len(missing) > 0 {
		abort(c, &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Message: missing[0].Field + ": is required", Details: missing})
		return
	}
	ctx := c.Request.Context()
	if in.StoreID != "" {
		if _, err := s.store.RetailStore(ctx, in.StoreID, brand); errors.Is(err, store.ErrNotFound) {
			abort(c, &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Message: "store_id: no store of the brand has this id",
				Details: []Detail{{Field: "store_id", Message: "unknown store of the brand"}}})
			return
		} else if err != nil {
			s.fail(c, err)
			return
		}
	}
	red, fresh, err := s.redeemer.Redeem(ctx, store.Redemption{Brand: brand, Code: in.Code, OrderNo: in.OrderID, StoreID: in.StoreID})
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Another brand's coupon looks like none at all.
		abort(c, &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "code: no coupon of the brand has this code",
			Details: []Detail{{Field: "code", Message: "unknown coupon"}}})
		return
	case errors.Is(err, store.ErrCouponRedeemed):
		// Nothing of the other order or its member is said.
		abort(c, &apiError{Status: http.StatusConflict, Code: CodeCouponRedeemed, Message: "code: the coupon is already redeemed on another order",
			Details: []Detail{{Field: "code", Message: "already redeemed"}}})
		return
	case errors.Is(err, store.ErrCouponExpired):
		abort(c, &apiError{Status: http.StatusGone, Code: CodeCouponExpired, Message: "code: the coupon has expired",
			Details: []Detail{{Field: "code", Message: "expired"}}})
		return
	case errors.Is(err, store.ErrCouponMember):
		// The coupon is one member's; the order another's. Neither is
		// named.
		abort(c, &apiError{Status: http.StatusUnprocessableEntity, Code: CodeCouponMember,
			Message: "code: the coupon belongs to another member than the order's",
			Details: []Detail{{Field: "code", Message: "another member's coupon"}}})
		return
	case err != nil:
		s.fail(c, err)
		return
	}
	c.JSON(createdOr(fresh), redeemed{ID: red.ID, Brand: red.BrandID, Code: red.Code, Batch: red.Batch, OrderID: red.OrderNo, StoreID: red.StoreID,
		MemberID: red.MemberID, ValueCents: red.ValueCents, RedeemedAt: red.RedeemedAt, Workflow: red.Workflow, GuideID: red.GuideID})
}
