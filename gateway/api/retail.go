package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/gateway/sharelink"
	"github.com/scrmgw/scrmgw/store"
)

// The store retail routes of the second wave: live sessions (门店直播),
// the cloud store's per-store assortment (云店) and guides' share links.
//
//	POST /live-sessions              schedule a live session (commerce)
//	GET  /live-sessions              a brand's sessions
//	GET  /live-sessions/{id}         a session and its funnel per store
//	PATCH /live-sessions/{id}        edit a session (announced again)
//	POST /live-sessions/{id}/cancel  cancel a session (its invitations stop)
//	PUT  /stores/{id}/products       a store's assortment of a brand (catalog)
//	GET  /stores/{id}/products       what a store carries (every brand, or ?brand=)
//	POST /guides/{id}/share-links    a guide's share link (guides)

// LiveScheduler schedules live sessions: records one and has it
// announced to its audience (the wiring: the store and the queue).
type LiveScheduler interface {
	ScheduleLive(ctx context.Context, l *store.LiveSession) (fresh bool, err error)
	// EditLive edits a session and has it announced again.
	EditLive(ctx context.Context, brand, id string, e store.LiveEdit) (*store.LiveSession, error)
	// CancelLive cancels a session and has the cancellation announced.
	CancelLive(ctx context.Context, brand, id string) (l *store.LiveSession, fresh bool, err error)
}

func (s *Server) mountRetail(group func(resource string) *gin.RouterGroup) {
	commerce := group(ResourceCommerce)
	commerce.POST("/live-sessions", s.scheduleLive)
	commerce.GET("/live-sessions", s.listLive)
	commerce.GET("/live-sessions/:id", s.getLive)
	commerce.PATCH("/live-sessions/:id", s.editLive)
	commerce.POST("/live-sessions/:id/cancel", s.cancelLive)
	catalog := group(ResourceCatalog)
	catalog.PUT("/stores/:id/products", s.putAssortment)
	catalog.GET("/stores/:id/products", s.getAssortment)
	group(ResourceGuides).POST("/guides/:id/share-links", s.shareLink)
}

// liveInput is the body of POST /live-sessions.
type liveInput struct {
	ID    string `json:"id"`
	Brand string `json:"brand"`
	// StoreID empty: every store of the brand.
	StoreID  string    `json:"store_id"`
	Title    string    `json:"title"`
	URL      string    `json:"url"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
}

// scheduleLive is POST /api/v1/live-sessions: 201 and the session, whose
// audience is announced (live.scheduled) in the background; the same
// session again answers 200; the id with other fields 409.
func (s *Server) scheduleLive(c *gin.Context) {
	if !serving(c, s.live != nil, "live sessions are") {
		return
	}
	var in liveInput
	brand, ok := s.decodeTill(c, &in, &in.Brand)
	if !ok {
		return
	}
	l := &store.LiveSession{Key: in.ID, BrandID: brand, StoreID: in.StoreID, Title: in.Title, URL: in.URL, StartsAt: in.StartsAt, EndsAt: in.EndsAt}
	fresh, err := s.live.ScheduleLive(c.Request.Context(), l)
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusOK
	if fresh {
		status = http.StatusCreated
		s.log.InfoContext(c.Request.Context(), "live session scheduled", "brand", brand, "live", l.Key, "store", l.StoreID)
	}
	c.JSON(status, l)
}

// liveEditInput is the body of PATCH /live-sessions/{id}: the fields
// given change.
type liveEditInput struct {
	Brand    string     `json:"brand"`
	Title    *string    `json:"title"`
	URL      *string    `json:"url"`
	StartsAt *time.Time `json:"starts_at"`
	EndsAt   *time.Time `json:"ends_at"`
}

// editLive is PATCH /api/v1/live-sessions/{id}: the edited session,
// announced again to its audience in the background (a new start moves
// the reminders and sends a new invitation; a new title or URL goes into
// the reminders left). 409 for a cancelled or ended session.
func (s *Server) editLive(c *gin.Context) {
	if !serving(c, s.live != nil, "live sessions are") {
		return
	}
	var in liveEditInput
	brand, ok := s.decodeTill(c, &in, &in.Brand)
	if !ok {
		return
	}
	l, err := s.live.EditLive(c.Request.Context(), brand, c.Param("id"), store.LiveEdit{Title: in.Title, URL: in.URL, StartsAt: in.StartsAt, EndsAt: in.EndsAt})
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.InfoContext(c.Request.Context(), "live session edited", "brand", brand, "live", l.Key, "revision", l.Revision, "change", l.Change)
	c.JSON(http.StatusOK, l)
}

// liveCancelInput is the body of POST /live-sessions/{id}/cancel
// (optional with a brand token).
type liveCancelInput struct {
	Brand string `json:"brand"`
}

// cancelLive is POST /api/v1/live-sessions/{id}/cancel: the cancelled
// session; everyone it was announced to gets live.cancelled in the
// background, which ends their invitations and reminders. Cancelling
// again answers the session as it is; an ended session is 409.
func (s *Server) cancelLive(c *gin.Context) {
	if !serving(c, s.live != nil, "live sessions are") {
		return
	}
	var in liveCancelInput
	if c.Request.ContentLength != 0 {
		if !s.decodeBody(c, &in) {
			return
		}
	}
	brand, ok := tillBrand(c, in.Brand)
	if !ok {
		return
	}
	l, fresh, err := s.live.CancelLive(c.Request.Context(), brand, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	if fresh {
		s.log.InfoContext(c.Request.Context(), "live session cancelled", "brand", brand, "live", l.Key)
	}
	c.JSON(http.StatusOK, l)
}

// listLive is GET /api/v1/live-sessions: the brand's sessions by id
// (?after= pages).
func (s *Server) listLive(c *gin.Context) {
	brand, ok := tillBrand(c, "")
	if !ok {
		return
	}
	p, e := page(c)
	if e != nil {
		abort(c, e)
		return
	}
	ls, err := s.store.LiveSessions(c.Request.Context(), brand, p)
	if err != nil {
		s.fail(c, err)
		return
	}
	list(c, p, ls, func(l store.LiveSession) string { return l.Key })
}

// getLive is GET /api/v1/live-sessions/{id}: the session and its funnel
// per store (invited → joined → bought, orders and sales) with totals.
func (s *Server) getLive(c *gin.Context) {
	brand, ok := tillBrand(c, "")
	if !ok {
		return
	}
	ctx := c.Request.Context()
	l, err := s.store.LiveSession(ctx, brand, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	funnel, err := s.store.LiveFunnel(ctx, l.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	total := store.LiveStoreFunnel{}
	for _, f := range funnel {
		total.Invited += f.Invited
		total.Joined += f.Joined
		total.Bought += f.Bought
		total.Orders += f.Orders
		total.SalesCents += f.SalesCents
	}
	if funnel == nil {
		funnel = []store.LiveStoreFunnel{}
	}
	c.JSON(http.StatusOK, gin.H{"session": l, "stores": funnel,
		"total": gin.H{"invited": total.Invited, "joined": total.Joined, "bought": total.Bought, "orders": total.Orders, "sales_cents": total.SalesCents}})
}

// assortmentInput is the body of PUT /stores/{id}/products.
type assortmentInput struct {
	Brand string `json:"brand"`
	Items []struct {
		SKU string `json:"sku"`
		// Price is the store's own price in yuan; absent: the brand's.
		Price   *events.Money `json:"price"`
		InStock *bool         `json:"in_stock"`
	} `json:"items"`
}

// putAssortment is PUT /api/v1/stores/{id}/products: what the store
// carries of a brand, replacing what it carried before.
func (s *Server) putAssortment(c *gin.Context) {
	var in assortmentInput
	if e := decodeJSON(c, s.maxBulk, &in); e != nil {
		abort(c, e)
		return
	}
	brand, ok := tillBrand(c, in.Brand)
	if !ok {
		return
	}
	items := make([]store.StoreProduct, len(in.Items))
	for i, it := range in.Items {
		items[i] = store.StoreProduct{SKU: it.SKU, InStock: it.InStock == nil || *it.InStock}
		if it.Price != nil {
			cents := int64(*it.Price)
			items[i].PriceCents = &cents
		}
	}
	if err := s.store.SetAssortment(c.Request.Context(), c.Param("id"), brand, items); err != nil {
		s.fail(c, err)
		return
	}
	s.answerAssortment(c, brand, gin.H{"brand": brand})
}

// getAssortment is GET /api/v1/stores/{id}/products: what the store
// carries, of every brand it carries (a collection store) or of
// ?brand=; a brand token sees its brand's only.
func (s *Server) getAssortment(c *gin.Context) {
	brand := c.Query("brand")
	if !scopeBrand(c, &brand, nil) {
		return
	}
	if _, err := s.store.RetailStore(c.Request.Context(), c.Param("id"), brand); err != nil {
		s.fail(c, err)
		return
	}
	s.answerAssortment(c, brand, gin.H{})
}

// answerAssortment answers what the path's store carries of brand
// (every brand: "") as {"store_id", "items"} and the fields of body;
// an empty assortment answers [].
func (s *Server) answerAssortment(c *gin.Context, brand string, body gin.H) {
	out, err := s.store.Assortment(c.Request.Context(), c.Param("id"), brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	if out == nil {
		out = []store.AssortmentItem{}
	}
	body["store_id"], body["items"] = c.Param("id"), out
	c.JSON(http.StatusOK, body)
}

// shareInput is the body of POST /guides/{id}/share-links.
type shareInput struct {
	Brand string `json:"brand"`
	// URL is the product or campaign page on the brand's shop; empty:
	// the product's page from the catalogue (sku's url).
	URL string `json:"url"`
	// SKU, when the link is for a product, must be one the guide's store
	// carries (its cloud-store assortment).
	SKU       string `json:"sku"`
	ValidDays int    `json:"valid_days"`
}

// shareLink is POST /api/v1/guides/{id}/share-links: a link to a
// product or campaign page carrying a signed token naming the guide and
// their store; orders the shop reports with the token
// (purchase.completed data.share_token) are credited to them.
func (s *Server) shareLink(c *gin.Context) {
	if !serving(c, s.shares != nil, "share links are") {
		return
	}
	var in shareInput
	brand, ok := s.decodeTill(c, &in, &in.Brand)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	g, err := s.store.Guide(ctx, c.Param("id"), "")
	if err != nil {
		s.fail(c, err)
		return
	}
	if _, err := s.store.RetailStore(ctx, g.StoreID, brand); errors.Is(err, store.ErrNotFound) {
		// A guide of a store that does not carry the brand is none of
		// the brand's.
		abort(c, newError(http.StatusNotFound, CodeNotFound, "not found"))
		return
	} else if err != nil {
		s.fail(c, err)
		return
	}
	if in.ValidDays < 0 || in.ValidDays > int(sharelink.MaxTTL/(24*time.Hour)) {
		in.ValidDays = -1
	}
	sh, err := s.shares.Share(ctx, s.store, sharelink.Request{Brand: brand, Guide: g.ID, Store: g.StoreID, URL: in.URL, SKU: in.SKU,
		TTL: time.Duration(in.ValidDays) * 24 * time.Hour}, time.Now().Truncate(time.Second))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"url": sh.URL, "token": sh.Token, "brand": brand, "guide_id": g.ID, "store_id": g.StoreID,
		"sku": in.SKU, "expires_at": sh.Link.Expires()})
}
