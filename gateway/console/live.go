package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// livePageSize is how many sessions the live page lists.
const livePageSize = 100

// datetimeLocal is the format of an <input type="datetime-local">.
const datetimeLocal = "2006-01-02T15:04"

// liveRow is a session with its funnel totals.
type liveRow struct {
	store.LiveSession
	StoreName string
	// Status is scheduled, announcing, cancelled, live or ended.
	Status string
	// Funnel is the session's funnel, every store's together.
	Funnel store.LiveStoreFunnel
}

// liveForm is the schedule form as posted (kept on an error).
type liveForm struct {
	ID, StoreID, Title, URL, StartsAt, EndsAt string
}

type liveData struct {
	Brand    string
	Brands   []string
	Admin    bool
	CanWrite bool
	Stores   []store.RetailStore
	Sessions []liveRow
	Form     liveForm
	Notice   string
	Error    string
	// Fields are the fields the error names.
	Fields []string
	Zone   string
}

// livePage lists a brand's live sessions (门店直播) with their funnel
// (invited → joined → bought, orders, sales) and the forms to schedule
// and cancel one: GET /console/live?brand=.
func (c *Console) livePage(ctx *gin.Context) {
	brand, brands, ok := c.pageBrand(ctx)
	if !ok {
		return
	}
	d := &liveData{Brand: brand, Brands: brands, Form: liveForm{}}
	if key, ok := map[string]string{"scheduled": "live.notice_scheduled", "cancelled": "live.notice_cancelled"}[ctx.Query("notice")]; ok {
		d.Notice = translate(language(ctx.Request), key, ctx.Query("id"))
	}
	c.renderLive(ctx, http.StatusOK, d)
}

// renderLive fills the page's lists and renders it.
func (c *Console) renderLive(ctx *gin.Context, status int, d *liveData) {
	p := principalOf(ctx)
	d.Admin, d.CanWrite, d.Zone = p.Admin(), c.o.Live != nil && !p.ReadOnly, shownZone.String()
	if d.Brand == "" {
		c.render(ctx, status, "live", "live.title", "/live", d)
		return
	}
	rctx := ctx.Request.Context()
	stores, err := c.o.Store.RetailStores(rctx, d.Brand, store.Page{Limit: 1000})
	if err != nil {
		c.fail(ctx, err)
		return
	}
	d.Stores = stores
	names := map[string]string{}
	for _, s := range stores {
		names[s.ID] = s.Name
	}
	ls, err := c.o.Store.LiveSessions(rctx, d.Brand, store.Page{Limit: livePageSize})
	if err != nil {
		c.fail(ctx, err)
		return
	}
	now := c.o.Now()
	for _, l := range ls {
		r := liveRow{LiveSession: l, StoreName: names[l.StoreID]}
		switch {
		case l.CancelledAt != nil:
			r.Status = "cancelled"
		case !now.Before(l.EndsAt):
			r.Status = "ended"
		case !now.Before(l.StartsAt):
			r.Status = "live"
		case l.InvitedAt == nil:
			r.Status = "announcing"
		default:
			r.Status = "scheduled"
		}
		f, err := c.o.Store.LiveFunnel(rctx, l.ID)
		if err != nil {
			c.fail(ctx, err)
			return
		}
		for _, s := range f {
			r.Funnel.Invited += s.Invited
			r.Funnel.Joined += s.Joined
			r.Funnel.Bought += s.Bought
			r.Funnel.Orders += s.Orders
			r.Funnel.SalesCents += s.SalesCents
		}
		d.Sessions = append(d.Sessions, r)
	}
	// The newest start first.
	slices.SortStableFunc(d.Sessions, func(a, b liveRow) int { return b.StartsAt.Compare(a.StartsAt) })
	c.render(ctx, status, "live", "live.title", "/live", d)
}

// formBrand is the brand a write's form names: a brand token's own (a
// form naming another is a 404, as the API's), or for the admin the
// form's brand, which must exist.
func (c *Console) formBrand(ctx *gin.Context) (string, []string, bool) {
	return c.brandNamed(ctx, ctx.PostForm("brand"), true)
}

// liveURL is the live page of brand, with a notice.
func liveURL(brand string, admin bool, notice, id string) string {
	q := url.Values{"notice": {notice}, "id": {id}}
	if admin {
		q.Set("brand", brand)
	}
	return Path + "/live?" + q.Encode()
}

// liveFormBrand is formBrand for the live sessions' forms: 404 when
// this gateway schedules no live sessions.
func (c *Console) liveFormBrand(ctx *gin.Context) (brand string, brands []string, ok bool) {
	if c.o.Live == nil {
		c.notFound(ctx)
		return "", nil, false
	}
	return c.formBrand(ctx)
}

// scheduleLive schedules a session from the page's form (as POST
// /api/v1/live-sessions): POST /console/live. Bad fields re-render the
// form with the fields named (422).
func (c *Console) scheduleLive(ctx *gin.Context) {
	brand, brands, ok := c.liveFormBrand(ctx)
	if !ok {
		return
	}
	lang := language(ctx.Request)
	f := liveForm{ID: strings.TrimSpace(ctx.PostForm("id")), StoreID: ctx.PostForm("store_id"), Title: ctx.PostForm("title"),
		URL: strings.TrimSpace(ctx.PostForm("url")), StartsAt: ctx.PostForm("starts_at"), EndsAt: ctx.PostForm("ends_at")}
	d := &liveData{Brand: brand, Brands: brands, Form: f}
	l := &store.LiveSession{Key: f.ID, BrandID: brand, StoreID: f.StoreID, Title: f.Title, URL: f.URL}
	var bad []string
	for _, t := range []struct {
		field, v string
		to       *time.Time
	}{{"starts_at", f.StartsAt, &l.StartsAt}, {"ends_at", f.EndsAt, &l.EndsAt}} {
		if t.v == "" {
			continue // the store names it: required
		}
		v, err := time.ParseInLocation(datetimeLocal, t.v, shownZone)
		if err != nil {
			bad = append(bad, t.field)
			continue
		}
		*t.to = v
	}
	if len(bad) > 0 {
		d.Fields, d.Error = bad, translate(lang, "live.bad_time", strings.Join(bad, ", "))
		c.renderLive(ctx, http.StatusUnprocessableEntity, d)
		return
	}
	auditID(ctx, "brand", brand)
	auditID(ctx, "live", f.ID)
	_, err := c.o.Live.ScheduleLive(ctx.Request.Context(), l)
	var fe *store.FieldError
	switch {
	case errors.As(err, &fe):
		for _, e := range fieldErrors(err) {
			d.Fields = append(d.Fields, e.Field)
		}
		d.Error = err.Error()
		c.renderLive(ctx, http.StatusUnprocessableEntity, d)
		return
	case errors.Is(err, store.ErrConflict):
		d.Fields, d.Error = []string{"id"}, translate(lang, "live.conflict", f.ID)
		c.renderLive(ctx, http.StatusConflict, d)
		return
	case err != nil:
		c.fail(ctx, err)
		return
	}
	ctx.Redirect(http.StatusSeeOther, liveURL(brand, principalOf(ctx).Admin(), "scheduled", l.Key))
}

// fieldErrors lists the field errors err joins.
func fieldErrors(err error) []*store.FieldError {
	var out []*store.FieldError
	var walk func(error)
	walk = func(e error) {
		var fe *store.FieldError
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if errors.As(e, &fe) {
			out = append(out, fe)
		}
	}
	walk(err)
	return out
}

// cancelLive cancels a session (as POST /api/v1/live-sessions/{id}/cancel):
// POST /console/live/:id/cancel.
func (c *Console) cancelLive(ctx *gin.Context) {
	brand, brands, ok := c.liveFormBrand(ctx)
	if !ok {
		return
	}
	auditID(ctx, "brand", brand)
	l, _, err := c.o.Live.CancelLive(ctx.Request.Context(), brand, ctx.Param("id"))
	if errors.Is(err, store.ErrConflict) {
		d := &liveData{Brand: brand, Brands: brands, Error: translate(language(ctx.Request), "live.cannot_cancel", ctx.Param("id"))}
		c.renderLive(ctx, http.StatusConflict, d)
		return
	}
	if err != nil {
		c.fail(ctx, err)
		return
	}
	ctx.Redirect(http.StatusSeeOther, liveURL(brand, principalOf(ctx).Admin(), "cancelled", l.Key))
}
