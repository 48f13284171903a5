package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// Periods a leaderboard can be asked for besides a month (YYYY-MM).
const (
	PeriodThisMonth = "this_month"
	PeriodLastMonth = "last_month"
)

// Period resolves a leaderboard period ("", this_month, last_month or
// YYYY-MM) to a month at now in loc.
func Period(period string, now time.Time, loc *time.Location) (string, bool) {
	now = now.In(loc)
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc)
	switch period {
	case "", PeriodThisMonth:
		return first.Format("2006-01"), true
	case PeriodLastMonth:
		return first.AddDate(0, -1, 0).Format("2006-01"), true
	}
	return period, store.ValidMonth(period)
}

// leaderboard answers GET /leaderboards?brand=&store_id=&period=: the
// guides ranked by the points they earned in the period (this month by
// default, in ledger.time_zone), of a brand, or of a store (of one brand
// when brand is set). A brand token sees its own brand's only.
func (s *Server) leaderboard(c *gin.Context) {
	brand, storeID := c.Query("brand"), c.Query("store_id")
	if !scopeBrand(c, &brand, nil) {
		return
	}
	if brand == "" && storeID == "" {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "brand or store_id: say which leaderboard"))
		return
	}
	loc := s.ledgerZone
	if loc == nil {
		loc = time.UTC
	}
	month, ok := Period(c.Query("period"), time.Now(), loc)
	if !ok {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "period: want this_month, last_month or YYYY-MM, got %q", c.Query("period")))
		return
	}
	ctx := c.Request.Context()
	if storeID != "" {
		if _, err := s.store.RetailStore(ctx, storeID, brand); err != nil {
			s.fail(c, err)
			return
		}
	} else if _, err := s.store.Brand(ctx, brand); err != nil {
		s.fail(c, err)
		return
	}
	n, e := pageLimit(c)
	pg := store.Page{Limit: n}
	if e != nil {
		abort(c, e)
		return
	}
	rows, err := s.store.Leaderboard(ctx, store.LeaderboardQuery{Brand: brand, StoreID: storeID, Month: month, Limit: pg.Limit})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"brand": brand, "store_id": storeID, "period": month, "items": rows})
}
