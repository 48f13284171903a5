package storepage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/sharelink"
	"github.com/scrmgw/scrmgw/store"
)

// ShopPath is the store's cloud-store page (云店): /m/stores/{id}/products.
const ShopPath = PagePath + "/:id/products"

// ShareVerifier verifies a guide's share link token
// (*sharelink.Signer is one).
type ShareVerifier interface {
	Verify(token string, now time.Time) (sharelink.Link, error)
}

// shopURL is the cloud-store page of a store for a brand.
func shopURL(storeID, brand, lang string) string {
	q := url.Values{"brand": {brand}}
	if lang != "" {
		q.Set("lang", lang)
	}
	return PagePath + "/" + url.PathEscape(storeID) + "/products?" + q.Encode()
}

// shopData is what shop.html renders.
type shopData struct {
	T      text
	Brand  string
	Store  string
	Back   string // the store list of the brand
	Guide  string // the guide whose share link the member came by
	Error  string
	Empty  bool
	Items  []shopItem
	Tokens bool // the product links carry a guide's share token
}

type shopItem struct {
	Name, Category, Price, BrandPrice string
	InStock                           bool
	// URL is the product's page on the shop, with the share token when
	// the member came by a guide's link; empty when the shop has none.
	URL string
}

// shop serves GET /m/stores/{id}/products?brand=ID: the store's
// assortment of the brand (its cloud store) with the store's prices and
// stock, each product linking to its page on the brand's shop. A member
// who came by a guide's share link (?share_token=, the token of a link
// the guide made for this page) sees whose recommendation it is, and the
// product links carry the token on, so the shop's order credits the
// guide and their store (purchase.completed data.share_token). A token
// that does not verify, has expired, or names another brand or store is
// ignored: the page shows the store's products without it.
func (p *Page) shop(c *gin.Context) {
	lang := language(c.Query("lang"), c.GetHeader("Accept-Language"))
	t := texts[lang]
	c.Header("Content-Security-Policy", CSP)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "no-referrer") // the URL may hold a share token
	c.Header("Cache-Control", "private, no-store")
	c.Header("Vary", "Accept-Language")
	c.Header("Content-Language", t.Lang)
	brand, storeID := c.Query("brand"), c.Param("id")
	d := &shopData{T: t, Back: PagePath + "?" + url.Values{"brand": {brand}}.Encode()}
	ctx := c.Request.Context()
	b, err := p.o.Store.Brand(ctx, brand)
	if brand == "" || errors.Is(err, store.ErrNotFound) {
		d.Error = t.BadBrand
		p.renderShop(c, http.StatusNotFound, d)
		return
	}
	if err != nil {
		p.failShop(c, d, err)
		return
	}
	d.Brand = b.Name
	rs, err := p.o.Store.RetailStore(ctx, storeID, b.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !rs.Active) {
		d.Error = t.NoStore
		p.renderShop(c, http.StatusNotFound, d)
		return
	}
	if err != nil {
		p.failShop(c, d, err)
		return
	}
	d.Store = rs.Name
	items, err := p.o.Store.Assortment(ctx, rs.ID, b.ID)
	if err != nil {
		p.failShop(c, d, fmt.Errorf("reading the assortment of store %s: %w", rs.ID, err))
		return
	}
	token := p.shareToken(ctx, c.Query("share_token"), b.ID, rs.ID, d)
	for _, it := range items {
		si := shopItem{Name: it.Name, Category: it.Category, Price: yuan(it.PriceCents), InStock: it.InStock}
		if it.OwnPrice && it.BrandPriceCents > it.PriceCents {
			si.BrandPrice = yuan(it.BrandPriceCents)
		}
		if u, err := url.Parse(it.URL); it.URL != "" && err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			if token != "" {
				q := u.Query()
				q.Set("share_token", token)
				u.RawQuery = q.Encode()
			}
			si.URL = u.String()
		}
		d.Items = append(d.Items, si)
	}
	d.Empty = len(d.Items) == 0
	d.Tokens = token != ""
	p.renderShop(c, http.StatusOK, d)
}

// shareToken returns the token when it is a guide's unexpired share
// link of this brand's store, and sets the guide's name on the page;
// else "".
func (p *Page) shareToken(ctx context.Context, token, brand, storeID string, d *shopData) string {
	if token == "" || p.o.Shares == nil {
		return ""
	}
	l, err := p.o.Shares.Verify(token, p.o.Now())
	if err != nil || l.Brand != brand || l.Store != storeID {
		p.o.Log.DebugContext(ctx, "store page share token ignored", slog.String("store", storeID), slog.Any("error", err))
		return ""
	}
	// The shop's order is credited by the token (the ingester decides
	// what a guide who left gets); the page names the guide it can find.
	if g, err := p.o.Store.Guide(ctx, l.Guide, ""); err == nil {
		d.Guide = g.Name
	}
	return token
}

// yuan formats cents as a price.
func yuan(cents int64) string {
	if cents%100 == 0 {
		return fmt.Sprintf("¥%d", cents/100)
	}
	return fmt.Sprintf("¥%d.%02d", cents/100, cents%100)
}

func (p *Page) failShop(c *gin.Context, d *shopData, err error) {
	p.o.Log.ErrorContext(c.Request.Context(), "store shop page failed", slog.Any("error", err))
	d.Error, d.Items = "服务暂时不可用 / Service unavailable", nil
	p.renderShop(c, http.StatusServiceUnavailable, d)
}

func (p *Page) renderShop(c *gin.Context, status int, d *shopData) {
	var buf bytes.Buffer
	if err := p.shopTmpl.Execute(&buf, d); err != nil {
		p.o.Log.ErrorContext(c.Request.Context(), "rendering the shop page", slog.Any("error", err))
		c.String(http.StatusInternalServerError, "internal error")
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}
