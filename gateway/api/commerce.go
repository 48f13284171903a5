package api

import (
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// Events ingests CloudEvents requests (webhook.Ingester).
type Events interface {
	Serve(w http.ResponseWriter, r *http.Request, body []byte, brand string)
}

// Settler settles a day's commissions (the ledger).
type Settler interface {
	Settle(ctx context.Context, date string) ([]store.Settlement, error)
}

// postEvents is POST /api/v1/events: the signed callback's bodies with a
// bearer token; a brand token pins the brand.
func (s *Server) postEvents(c *gin.Context) {
	if !serving(c, s.events != nil, "event ingest is") {
		return
	}
	body, ok := webhook.ReadBody(c.Writer, c.Request)
	if !ok {
		c.Abort()
		return
	}
	s.events.Serve(c.Writer, c.Request, body, principal(c).Brand)
}

// sourceInput is the JSON an event source is made from.
type sourceInput struct {
	ID          string `json:"id"`
	Brand       string `json:"brand"`
	Description string `json:"description"`
}

// sourceWithSecret is an event source as answered when its secret is new:
// the only time the secret is shown.
type sourceWithSecret struct {
	store.EventSource
	Secret string `json:"secret"`
}

func (s *Server) listEventSources(c *gin.Context) {
	srcs, err := s.store.EventSources(c.Request.Context(), principal(c).Brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": srcs})
}

func (s *Server) getEventSource(c *gin.Context) {
	src, err := s.store.EventSource(c.Request.Context(), c.Param("id"), principal(c).Brand)
	s.answer(c, http.StatusOK, src, err)
}

func (s *Server) createEventSource(c *gin.Context) {
	var in sourceInput
	if !s.decodeBody(c, &in) {
		return
	}
	p := principal(c)
	if in.Brand == "" {
		in.Brand = p.Brand
	}
	if !p.Admin() && in.Brand != p.Brand {
		abort(c, newError(http.StatusForbidden, CodeForbidden, "a brand token makes sources of its own brand only"))
		return
	}
	if in.ID == webhook.DefaultSourceID {
		abort(c, &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Message: "id \"default\" is the source webhook.secret defines",
			Details: []Detail{{Field: "id", Message: "reserved"}}})
		return
	}
	if in.Brand != "" {
		if _, err := s.store.Brand(c.Request.Context(), in.Brand); err != nil {
			abort(c, &apiError{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Message: "unknown brand " + strconv.Quote(in.Brand),
				Details: []Detail{{Field: "brand", Message: "unknown brand"}}})
			return
		}
	}
	secret := webhook.NewSecret()
	src := store.EventSource{ID: in.ID, BrandID: in.Brand, Description: in.Description}
	if err := s.store.CreateEventSource(c.Request.Context(), &src, secret); err != nil {
		s.fail(c, err)
		return
	}
	s.sourcesChanged()
	c.JSON(http.StatusCreated, sourceWithSecret{EventSource: src, Secret: secret})
}

// rotateEventSource gives a source a new secret; the old one stays valid
// for ?overlap= (a duration, default 24h; 0 ends it at once).
func (s *Server) rotateEventSource(c *gin.Context) {
	overlap := 24 * time.Hour
	if v := c.Query("overlap"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 30*24*time.Hour {
			abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "overlap: want a duration from 0s to 720h, got %q", v))
			return
		}
		overlap = d
	}
	secret := webhook.NewSecret()
	src, err := s.store.RotateEventSource(c.Request.Context(), c.Param("id"), principal(c).Brand, secret, overlap)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.sourcesChanged()
	c.JSON(http.StatusOK, sourceWithSecret{EventSource: *src, Secret: secret})
}

func (s *Server) setEventSourceActive(active bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := s.store.SetEventSourceActive(c.Request.Context(), c.Param("id"), principal(c).Brand, active); err != nil {
			s.fail(c, err)
			return
		}
		s.sourcesChanged()
		c.Status(http.StatusNoContent)
	}
}

func (s *Server) deleteEventSource(c *gin.Context) {
	if err := s.store.DeleteEventSource(c.Request.Context(), c.Param("id"), principal(c).Brand); err != nil {
		s.fail(c, err)
		return
	}
	s.sourcesChanged()
	c.Status(http.StatusNoContent)
}

func (s *Server) sourcesChanged() {
	if s.onSourcesChanged != nil {
		s.onSourcesChanged()
	}
}

// productInput is the JSON a product is written from; price in yuan.
type productInput struct {
	Brand         string       `json:"brand"`
	SKU           string       `json:"sku"`
	Name          string       `json:"name"`
	Category      string       `json:"category"`
	Price         events.Money `json:"price"`
	ReplenishDays int          `json:"replenish_days"`
	// URL is the product's page on the brand's shop (share links).
	URL string `json:"url"`
}

func (s *Server) listProducts(c *gin.Context) {
	brand := principal(c).Brand
	if brand == "" {
		brand = c.Query("brand")
	}
	if brand == "" {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "brand: required with an admin token (?brand=)"))
		return
	}
	ps, err := s.store.Products(c.Request.Context(), brand, nil)
	if err != nil {
		s.fail(c, err)
		return
	}
	items := make([]store.Product, 0, len(ps))
	for _, p := range ps {
		items = append(items, p)
	}
	slices.SortFunc(items, func(a, b store.Product) int { return strings.Compare(a.SKU, b.SKU) })
	c.JSON(http.StatusOK, gin.H{"items": items})
}

// bulkProducts upserts products: all or nothing.
func (s *Server) bulkProducts(c *gin.Context) {
	p := principal(c)
	ps, ok := decodeBulk(s, c, func(it productInput) string { return it.Brand + "/" + it.SKU }, func(it productInput) (store.Product, error) {
		if it.Brand == "" {
			it.Brand = p.Brand
		}
		pr := store.Product{BrandID: it.Brand, SKU: it.SKU, Name: it.Name, Category: it.Category, PriceCents: int64(it.Price),
			ReplenishDays: it.ReplenishDays, URL: it.URL}
		err := store.ValidateProduct(&pr)
		return pr, err
	})
	if !ok {
		return
	}
	for i := range ps {
		if !p.Admin() && ps[i].BrandID != p.Brand {
			abort(c, rowError(i, http.StatusNotFound, CodeNotFound, "row %d: brand %q not found", i, ps[i].BrandID))
			return
		}
	}
	if err := s.store.UpsertProducts(c.Request.Context(), ps); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"upserted": len(ps)})
}

// memberOrders lists a member's recent orders (?limit=, default 20).
func (s *Server) memberOrders(c *gin.Context) {
	id, brand, ok := s.visibleMember(c)
	if !ok {
		return
	}
	n, e := pageLimit(c)
	p := store.Page{Limit: n}
	if e != nil {
		abort(c, e)
		return
	}
	if p.Limit == 0 {
		p.Limit = 20
	}
	os, err := s.store.MemberOrders(c.Request.Context(), id, brand, p.Limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": os})
}

// listSettlements is GET /settlements?date=D[&format=csv]: the day's
// stored settlements (a brand token sees its brand's).
func (s *Server) listSettlements(c *gin.Context) {
	sts, err := s.store.Settlements(c.Request.Context(), c.Query("date"), principal(c).Brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	writeSettlements(c, http.StatusOK, sts)
}

// settle is POST /settlements?date=D: settle a day that is over (admin
// only); settling it again answers the same figures.
func (s *Server) settle(c *gin.Context) {
	if !adminOnly(c) {
		return
	}
	if !serving(c, s.settler != nil, "the ledger is") {
		return
	}
	sts, err := s.settler.Settle(c.Request.Context(), c.Query("date"))
	if err != nil {
		s.fail(c, err)
		return
	}
	writeSettlements(c, http.StatusOK, sts)
}

func writeSettlements(c *gin.Context, status int, sts []store.Settlement) {
	if c.Query("format") == "csv" || c.GetHeader("Accept") == "text/csv" {
		c.Status(status)
		c.Header("Content-Type", "text/csv; charset=utf-8")
		WriteSettlementsCSV(csv.NewWriter(c.Writer), sts)
		return
	}
	if sts == nil {
		sts = []store.Settlement{}
	}
	c.JSON(status, gin.H{"items": sts})
}

// SettlementCSVHeader is the header row of the settlement CSV: one row
// per store, brand and party, amounts in yuan.
var SettlementCSVHeader = []string{"date", "store_id", "brand", "party", "party_id", "lines", "amount", "store_orders", "store_sales",
	"store_refunds", "store_net", "reconciled"}

// WriteSettlementsCSV writes settlements as CSV and flushes.
func WriteSettlementsCSV(w *csv.Writer, sts []store.Settlement) error {
	w.Write(SettlementCSVHeader)
	for _, st := range sts {
		common := []string{strconv.Itoa(st.Orders), events.Money(st.SalesCents).String(), events.Money(st.RefundsCents).String(),
			events.Money(st.NetCents).String(), strconv.FormatBool(st.Reconciled)}
		if len(st.Parties) == 0 {
			w.Write(append([]string{st.Date, st.StoreID, st.BrandID, "", "", "0", "0.00"}, common...))
		}
		for _, p := range st.Parties {
			w.Write(append([]string{st.Date, st.StoreID, st.BrandID, p.Party, p.PartyID, strconv.Itoa(p.Lines),
				events.Money(p.AmountCents).String()}, common...))
		}
	}
	w.Flush()
	return w.Error()
}

// endpointInput is the JSON a brand's webhook endpoint is set from.
type endpointInput struct {
	URL string `json:"url"`
}

// putWebhookEndpoint is PUT /brands/{id}/webhook-endpoint: the brand's
// own endpoint for messages on the webhook channel. A new endpoint, or
// ?rotate=true, gets a fresh signing secret, answered this once.
func (s *Server) putWebhookEndpoint(c *gin.Context) {
	brand := c.Param("id")
	if !ownBrand(c, brand) {
		return
	}
	var in endpointInput
	if !s.decodeBody(c, &in) {
		return
	}
	if _, err := s.store.Brand(c.Request.Context(), brand); err != nil {
		s.fail(c, err)
		return
	}
	secret := ""
	_, _, err := s.store.WebhookEndpointOf(c.Request.Context(), brand)
	if errors.Is(err, store.ErrNotFound) || c.Query("rotate") == "true" {
		secret = webhook.NewSecret()
	} else if err != nil {
		s.fail(c, err)
		return
	}
	ep, err := s.store.PutWebhookEndpoint(c.Request.Context(), brand, in.URL, secret)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := gin.H{"brand": ep.BrandID, "url": ep.URL, "updated_at": ep.UpdatedAt}
	if secret != "" {
		out["secret"] = secret
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) getWebhookEndpoint(c *gin.Context) {
	brand := c.Param("id")
	if !ownBrand(c, brand) {
		return
	}
	ep, _, err := s.store.WebhookEndpointOf(c.Request.Context(), brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"brand": ep.BrandID, "url": ep.URL, "updated_at": ep.UpdatedAt})
}

func (s *Server) deleteWebhookEndpoint(c *gin.Context) {
	brand := c.Param("id")
	if !ownBrand(c, brand) {
		return
	}
	if err := s.store.DeleteWebhookEndpoint(c.Request.Context(), brand); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// memberCoupons lists the coupons workflows gave a member (newest first).
func (s *Server) memberCoupons(c *gin.Context) {
	id, brand, ok := s.visibleMember(c)
	if !ok {
		return
	}
	cs, err := s.store.MemberCoupons(c.Request.Context(), id, brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": cs})
}

// visibleMember reads the member id of the path and answers 404 unless
// the member exists and the token's brand may see them.
func (s *Server) visibleMember(c *gin.Context) (id int64, brand string, ok bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		abort(c, newError(http.StatusNotFound, CodeNotFound, "member %q not found", c.Param("id")))
		return 0, "", false
	}
	brand = principal(c).Brand
	if _, err := s.store.Member(c.Request.Context(), id, brand); err != nil {
		s.fail(c, err)
		return 0, "", false
	}
	return id, brand, true
}

// ownBrand answers 404 unless the token may act for brand.
func ownBrand(c *gin.Context, brand string) bool {
	if p := principal(c); !p.Admin() && p.Brand != brand {
		abort(c, newError(http.StatusNotFound, CodeNotFound, "brand %q not found", brand))
		return false
	}
	return true
}
