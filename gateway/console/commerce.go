package console

import (
	"encoding/csv"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/store"
)

// sourceDays is the period of the event sources' activity.
const sourceDays = 7

// settlementsPageSize is how many stores' settlements a page shows.
const settlementsPageSize = 100

// redemptionsPageSize is how many redemptions a page shows.
const redemptionsPageSize = 25

type settlementRow struct {
	store.Settlement
	StoreName  string
	Commission int64
}

type commerceData struct {
	Brand  string
	Brands []string
	Admin  bool
	Date   string
	Prev   string
	Next   string
	Error  string
	// Run is the day's automatic settlement (admin only: it spans every
	// brand).
	Run         *store.SettlementRun
	Settlements []settlementRow
	// Stores counts the day's settlements; Settlements is a page of
	// them, MoreStores the link to the next, FirstStores to the first.
	Stores                  int
	MoreStores, FirstStores string
	OnlyUnreconciled        bool
	Unreconciled            int
	NetCents                int64
	Commission              int64
	CSV                     string

	Redemptions []store.CouponRedemption
	Older       string
	Newest      string

	SourceDays int
	Activity   []store.SourceActivity
	Sources    []store.EventSource
	// CanWrite shows the event sources' forms; BrandQuery is their
	// actions' ?brand= (an admin's), Overlaps the rotation's choices.
	CanWrite   bool
	BrandQuery string
	Overlaps   []string
}

// ledgerZone is the zone of the settlement days.
func (c *Console) ledgerZone() *time.Location {
	if c.o.LedgerZone != nil {
		return c.o.LedgerZone
	}
	return shownZone
}

// commercePage shows a brand's T+1 settlements of a day per store (with
// the day's automatic settlement and the unreconciled stores), its coupon
// redemptions and its event sources with what they sent:
// GET /console/commerce?brand=&date=&before=.
func (c *Console) commercePage(ctx *gin.Context) {
	brand, brands, ok := c.pageBrand(ctx)
	if !ok {
		return
	}
	p := principalOf(ctx)
	rctx := ctx.Request.Context()
	lang := language(ctx.Request)
	now := c.o.Now().In(c.ledgerZone())
	d := &commerceData{Brand: brand, Brands: brands, Admin: p.Admin(), SourceDays: sourceDays,
		Date: now.AddDate(0, 0, -1).Format(time.DateOnly), CanWrite: mayWrite(p, api.ResourceCommerce), Overlaps: overlaps}
	if d.Admin {
		d.BrandQuery = "?" + url.Values{"brand": {brand}}.Encode()
	}
	if v := ctx.Query("date"); v != "" {
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			d.Error = translate(lang, "commerce.bad_date", v)
		} else {
			d.Date = v
		}
	}
	if brand == "" {
		c.render(ctx, http.StatusOK, "commerce", "commerce.title", "/commerce", d)
		return
	}
	link := func(set map[string]string) string {
		q := url.Values{}
		if d.Admin {
			q.Set("brand", brand)
		}
		for k, v := range set {
			q.Set(k, v)
		}
		return Path + "/commerce?" + q.Encode()
	}
	day, _ := time.Parse(time.DateOnly, d.Date)
	d.Prev = link(map[string]string{"date": day.AddDate(0, 0, -1).Format(time.DateOnly)})
	if next := day.AddDate(0, 0, 1); next.Format(time.DateOnly) < now.Format(time.DateOnly) {
		d.Next = link(map[string]string{"date": next.Format(time.DateOnly)})
	}
	csvQ := url.Values{"date": {d.Date}}
	if d.Admin {
		csvQ.Set("brand", brand)
	}
	d.CSV = Path + "/commerce/settlements.csv?" + csvQ.Encode()

	// The tiles add up every store of the day (one aggregate); the
	// table shows a page of them (only the unreconciled with
	// ?unreconciled=1), in store id order after ?after_store=: a brand's
	// day may have 4,400 stores' settlements.
	sum, err := c.o.Store.SettlementSummaryOf(rctx, d.Date, brand)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	d.Stores, d.Unreconciled, d.NetCents, d.Commission = sum.Stores, sum.Unreconciled, sum.NetCents, sum.CommissionCents
	d.OnlyUnreconciled = ctx.Query("unreconciled") == "1"
	after := ctx.Query("after_store")
	sts, err := c.o.Store.SettlementsPage(rctx, d.Date, brand, after, d.OnlyUnreconciled, settlementsPageSize+1)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	more := len(sts) > settlementsPageSize
	sts = sts[:min(len(sts), settlementsPageSize)]
	ids := make([]string, 0, len(sts))
	for _, st := range sts {
		ids = append(ids, st.StoreID)
	}
	names, err := c.o.Store.StoreNames(rctx, ids)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	for _, st := range sts {
		r := settlementRow{Settlement: st, StoreName: names[st.StoreID], Commission: st.GuideCents + st.StoreCents + st.DistributorCents}
		if r.StoreName == "" {
			r.StoreName = st.StoreID
		}
		d.Settlements = append(d.Settlements, r)
	}
	if more {
		q := map[string]string{"date": d.Date, "after_store": d.Settlements[len(d.Settlements)-1].StoreID}
		if d.OnlyUnreconciled {
			q["unreconciled"] = "1"
		}
		d.MoreStores = link(q)
	}
	if after != "" {
		q := map[string]string{"date": d.Date}
		if d.OnlyUnreconciled {
			q["unreconciled"] = "1"
		}
		d.FirstStores = link(q)
	}
	if d.Admin {
		run, err := c.o.Store.SettlementRunOf(rctx, d.Date)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			c.fail(ctx, err)
			return
		default:
			d.Run = run
		}
	}

	before, _ := strconv.ParseInt(ctx.Query("before"), 10, 64)
	reds, err := c.o.Store.CouponRedemptions(rctx, store.RedemptionQuery{Brand: brand, Before: before, Limit: redemptionsPageSize + 1})
	if err != nil {
		c.fail(ctx, err)
		return
	}
	if len(reds) > redemptionsPageSize {
		reds = reds[:redemptionsPageSize]
		d.Older = link(map[string]string{"date": d.Date, "before": strconv.FormatInt(reds[len(reds)-1].ID, 10)}) + "#redemptions"
	}
	if before > 0 {
		d.Newest = link(map[string]string{"date": d.Date}) + "#redemptions"
	}
	d.Redemptions = reds

	if d.Activity, err = c.o.Store.EventSourceActivity(rctx, brand, c.o.Now().AddDate(0, 0, -sourceDays)); err != nil {
		c.fail(ctx, err)
		return
	}
	if d.Sources, err = c.o.Store.EventSources(rctx, brand); err != nil {
		c.fail(ctx, err)
		return
	}
	for i := range d.Sources {
		// A disabled source has no valid secret, and a past overlap
		// says nothing.
		if s := &d.Sources[i]; !s.Active || (s.PrevValidUntil != nil && !s.PrevValidUntil.After(c.o.Now())) {
			s.PrevValidUntil = nil
		}
	}
	c.render(ctx, http.StatusOK, "commerce", "commerce.title", "/commerce", d)
}

// settlementsCSV downloads a day's settlements as GET
// /api/v1/settlements?date=&format=csv does (api.WriteSettlementsCSV):
// GET /console/commerce/settlements.csv?brand=&date=.
func (c *Console) settlementsCSV(ctx *gin.Context) {
	brand, _, ok := c.pageBrand(ctx)
	if !ok {
		return
	}
	date := ctx.Query("date")
	sts, err := c.o.Store.Settlements(ctx.Request.Context(), date, brand)
	if errors.Is(err, store.ErrInvalid) {
		ctx.String(http.StatusBadRequest, translate(language(ctx.Request), "commerce.bad_date", date))
		return
	}
	if err != nil {
		c.fail(ctx, err)
		return
	}
	ctx.Header("Content-Type", "text/csv; charset=utf-8")
	ctx.Header("Content-Disposition", `attachment; filename="settlements-`+brand+`-`+date+`.csv"`)
	ctx.Status(http.StatusOK)
	if err := api.WriteSettlementsCSV(csv.NewWriter(ctx.Writer), sts); err != nil {
		c.log.WarnContext(ctx.Request.Context(), "writing the settlements CSV", slog.Any("error", err))
	}
}
