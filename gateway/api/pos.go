package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/membercode"
	"github.com/scrmgw/scrmgw/store"
)

// Error codes of member codes at the till.
const (
	// CodeInvalidCode: not a member code at all (wrong length, not
	// digits, another prefix: a payment code scanned by mistake).
	CodeInvalidCode = "invalid_code"
	// CodeCodeExpired: a code of the brand whose minute has passed; the
	// member refreshes it.
	CodeCodeExpired = "code_expired"
)

// memberCodeRotateOverlap is how long a rotated-out member code secret
// still verifies: codes on members' screens live at most two steps.
const memberCodeRotateOverlap = 2 * membercode.Step

// identifyInput is the body of POST /pos/identify.
type identifyInput struct {
	Code string `json:"code"`
	// Brand is required with an admin token; a brand token's brand is
	// implied (and must match when given).
	Brand string `json:"brand"`
}

// posMember is the member as the till sees them: the phone always
// masked.
type posMember struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Phone string `json:"phone,omitempty"`
}

// posCoupon is a coupon the member can use now: not expired, not
// redeemed.
type posCoupon struct {
	Code       string    `json:"code"`
	Batch      string    `json:"batch"`
	ValueCents int64     `json:"value_cents"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// identified is the answer of POST /pos/identify.
type identified struct {
	Brand   string      `json:"brand"`
	Member  posMember   `json:"member"`
	Level   string      `json:"level"`
	Points  int64       `json:"points"`
	Coupons []posCoupon `json:"coupons"`
}

// posIdentify is POST /api/v1/pos/identify: the till scanned a member
// code; answer who it is, their level, points and usable coupons. It
// writes nothing.
func (s *Server) posIdentify(c *gin.Context) {
	var in identifyInput
	brand, ok := s.decodeTill(c, &in, &in.Brand)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	id, err := s.memberCodes.Identify(ctx, brand, in.Code)
	switch {
	case errors.Is(err, membercode.ErrMalformed):
		abort(c, &apiError{Status: http.StatusBadRequest, Code: CodeInvalidCode,
			Message: "code: not a member code (want 18 digits starting " + membercode.Prefix + ")",
			Details: []Detail{{Field: "code", Message: "want 18 digits starting " + membercode.Prefix}}})
		return
	case errors.Is(err, membercode.ErrExpired):
		abort(c, &apiError{Status: http.StatusGone, Code: CodeCodeExpired,
			Message: "code: the member code has expired; ask the member to refresh it",
			Details: []Detail{{Field: "code", Message: "expired"}}})
		return
	case errors.Is(err, membercode.ErrUnknown):
		abort(c, newError(http.StatusNotFound, CodeNotFound, "no member has this code"))
		return
	case err != nil:
		s.fail(c, err)
		return
	}
	v, err := s.store.Member(ctx, id, brand)
	if errors.Is(err, store.ErrNotFound) {
		// Erased, or no longer a member of the brand.
		abort(c, newError(http.StatusNotFound, CodeNotFound, "no member has this code"))
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	out := identified{Brand: brand, Member: posMember{ID: v.ID, Name: v.Name}, Coupons: []posCoupon{}}
	if v.Phone != "" {
		out.Member.Phone = store.MaskPhone(v.Phone)
	}
	for _, ms := range v.Memberships {
		if ms.BrandID == brand {
			out.Level, out.Points = ms.Level, ms.Points
		}
	}
	cs, err := s.store.MemberCoupons(ctx, v.ID, brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	now := time.Now()
	for _, cp := range cs {
		if cp.ExpiresAt.After(now) && cp.RedeemedOrder == "" {
			out.Coupons = append(out.Coupons, posCoupon{Code: cp.Code, Batch: cp.Batch, ValueCents: cp.ValueCents, ExpiresAt: cp.ExpiresAt})
		}
	}
	c.JSON(http.StatusOK, out)
}

// tillBrand is the brand a till's request acts for: a brand token's
// (given must match it), or the one an admin token names in the body or
// ?brand=. It answers the error itself when there is none.
func tillBrand(c *gin.Context, given string) (string, bool) {
	brand := given
	if brand == "" {
		brand = c.Query("brand")
	}
	if !scopeBrand(c, &brand, nil) {
		return "", false
	}
	if brand == "" {
		abort(c, &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Message: "brand: is required with an admin token",
			Details: []Detail{{Field: "brand", Message: "is required with an admin token"}}})
		return "", false
	}
	return brand, true
}

// decodeTill is decodeBody, then tillBrand of the body's brand field.
func (s *Server) decodeTill(c *gin.Context, in any, brand *string) (string, bool) {
	if !s.decodeBody(c, in) {
		return "", false
	}
	return tillBrand(c, *brand)
}

// rotateMemberCode is POST /api/v1/brands/{id}/member-code/rotate: the
// brand gets a new member code secret; codes made with the old one scan
// for two more minutes.
func (s *Server) rotateMemberCode(c *gin.Context) {
	brand := c.Param("id")
	if !ownBrand(c, brand) {
		return
	}
	until, err := s.store.RotateMemberCodeSecret(c.Request.Context(), brand, memberCodeRotateOverlap, time.Now())
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.InfoContext(c.Request.Context(), "member code secret rotated", "brand", brand, "by", principal(c).Name)
	c.JSON(http.StatusOK, gin.H{"brand": brand, "previous_valid_until": until})
}
