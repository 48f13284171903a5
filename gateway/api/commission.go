package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// orderCommissionOut is the answer of GET /orders/{id}/commission: the
// order's commission ledger as it is now (T+0: written when the purchase
// is recorded), clawbacks included, and the net per party.
type orderCommissionOut struct {
	Brand         string                 `json:"brand"`
	OrderID       string                 `json:"order_id"`
	StoreID       string                 `json:"store_id,omitempty"`
	GuideID       string                 `json:"guide_id,omitempty"`
	Attribution   string                 `json:"attribution"`
	TotalCents    int64                  `json:"total_cents"`
	RefundedCents int64                  `json:"refunded_cents"`
	SettleDate    string                 `json:"settle_date,omitempty"`
	Lines         []store.CommissionLine `json:"lines"`
	// Net is what each party earns on the order now, by party and
	// party id ("guide" → {"g-li": 387}).
	Net map[string]map[string]int64 `json:"net_cents"`
}

// orderCommission is GET /api/v1/orders/{id}/commission: the commission
// lines of a brand's order, by the order number the POS gave it (a brand
// token's brand, or ?brand= with an admin token).
func (s *Server) orderCommission(c *gin.Context) {
	brand, ok := tillBrand(c, "")
	if !ok {
		return
	}
	ctx := c.Request.Context()
	o, err := s.store.OrderByNo(ctx, brand, c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		abort(c, newError(http.StatusNotFound, CodeNotFound, "order %q not found", c.Param("id")))
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	lines, err := s.store.CommissionLines(ctx, o.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := orderCommissionOut{Brand: o.BrandID, OrderID: o.OrderNo, Attribution: o.Attribution, TotalCents: o.TotalCents,
		RefundedCents: o.RefundedCents, SettleDate: o.SettleDate, Lines: lines, Net: map[string]map[string]int64{}}
	if out.Lines == nil {
		out.Lines = []store.CommissionLine{}
	}
	if o.StoreID != nil {
		out.StoreID = *o.StoreID
	}
	if o.GuideID != nil {
		out.GuideID = *o.GuideID
	}
	for _, l := range lines {
		if out.Net[l.Party] == nil {
			out.Net[l.Party] = map[string]int64{}
		}
		out.Net[l.Party][l.PartyID] += l.AmountCents
	}
	c.JSON(http.StatusOK, out)
}
