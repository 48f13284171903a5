package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// Event sources (a brand's POS, shop or CRM posting signed events) are
// made, rotated, disabled and enabled on the commerce page, as the API's
// /api/v1/event-sources do: the same store calls, the same checks, and
// the new secret shown once, on the page the write answers with (never in
// a URL, never again).

// overlaps are the rotation's choices of how long the previous secret
// stays valid; the API takes any duration up to 720h.
var overlaps = []string{"24h", "0s", "1h", "168h", "720h"}

// sourceData is the page a source's write answers with: its new secret,
// or why it was refused.
type sourceData struct {
	Brand  string
	Admin  bool
	Source store.EventSource
	// Secret is the new signing secret: shown this once.
	Secret  string
	Rotated bool
	Error   string
	// Back is the commerce page's sources.
	Back string
}

// sourcesURL is the commerce page's event sources of brand.
func sourcesURL(brand string, admin bool) string {
	if admin {
		return Path + "/commerce?" + url.Values{"brand": {brand}}.Encode() + "#sources"
	}
	return Path + "/commerce#sources"
}

func (c *Console) sourcesChanged() {
	if c.o.OnSourcesChanged != nil {
		c.o.OnSourcesChanged()
	}
}

// createSource makes an event source of the page's brand with a new
// secret: POST /console/commerce/sources?brand= (id, description).
func (c *Console) createSource(ctx *gin.Context) {
	brand, _, ok := c.pageBrand(ctx)
	if !ok {
		return
	}
	p := principalOf(ctx)
	lang := language(ctx.Request)
	d := &sourceData{Brand: brand, Admin: p.Admin(), Back: sourcesURL(brand, p.Admin())}
	if brand == "" {
		c.notFound(ctx)
		return
	}
	src := store.EventSource{ID: strings.TrimSpace(ctx.PostForm("id")), BrandID: brand, Description: strings.TrimSpace(ctx.PostForm("description"))}
	d.Source = src
	if src.ID == c.o.ReservedSource {
		d.Error = translate(lang, "sources.reserved", src.ID)
		c.render(ctx, http.StatusBadRequest, "source", "sources.title", "/commerce", d)
		return
	}
	secret, ok := c.sourceSecret(ctx)
	if !ok {
		return
	}
	err := c.o.Store.CreateEventSource(ctx.Request.Context(), &src, secret)
	switch {
	case errors.Is(err, store.ErrInvalid):
		d.Error = translate(lang, "sources.invalid", err.Error())
		c.render(ctx, http.StatusBadRequest, "source", "sources.title", "/commerce", d)
		return
	case errors.Is(err, store.ErrConflict):
		d.Error = translate(lang, "sources.exists", src.ID)
		c.render(ctx, http.StatusConflict, "source", "sources.title", "/commerce", d)
		return
	case err != nil:
		c.fail(ctx, err)
		return
	}
	c.sourcesChanged()
	d.Source, d.Secret = src, secret
	ctx.Header("Cache-Control", "no-store")
	c.render(ctx, http.StatusCreated, "source", "sources.title", "/commerce", d)
}

// rotateSource gives a source of the page's brand a new secret, the
// current one staying valid for the chosen overlap: POST
// /console/commerce/sources/:id/rotate?brand= (overlap).
func (c *Console) rotateSource(ctx *gin.Context) {
	brand, _, ok := c.pageBrand(ctx)
	if !ok {
		return
	}
	p := principalOf(ctx)
	lang := language(ctx.Request)
	d := &sourceData{Brand: brand, Admin: p.Admin(), Back: sourcesURL(brand, p.Admin()), Rotated: true}
	overlap := 24 * time.Hour
	if v := ctx.PostForm("overlap"); v != "" {
		o, err := time.ParseDuration(v)
		if err != nil || o < 0 || o > 30*24*time.Hour {
			d.Error = translate(lang, "sources.bad_overlap", v)
			c.render(ctx, http.StatusBadRequest, "source", "sources.title", "/commerce", d)
			return
		}
		overlap = o
	}
	secret, ok := c.sourceSecret(ctx)
	if !ok {
		return
	}
	src, err := c.o.Store.RotateEventSource(ctx.Request.Context(), ctx.Param("id"), brand, secret, overlap)
	if err != nil {
		c.fail(ctx, err) // another brand's source, or none: 404
		return
	}
	c.sourcesChanged()
	d.Source, d.Secret = *src, secret
	ctx.Header("Cache-Control", "no-store")
	c.render(ctx, http.StatusOK, "source", "sources.title", "/commerce", d)
}

// setSourceActive disables or enables a source of the page's brand and
// goes back to the sources: POST
// /console/commerce/sources/:id/disable?brand= (or enable).
func (c *Console) setSourceActive(active bool) gin.HandlerFunc {
	return func(ctx *gin.Context) {
		brand, _, ok := c.pageBrand(ctx)
		if !ok {
			return
		}
		if err := c.o.Store.SetEventSourceActive(ctx.Request.Context(), ctx.Param("id"), brand, active); err != nil {
			c.fail(ctx, err)
			return
		}
		c.sourcesChanged()
		ctx.Redirect(http.StatusSeeOther, sourcesURL(brand, principalOf(ctx).Admin()))
	}
}

// sourceSecret is a new event source secret, or false when this
// gateway's console makes none (answered).
func (c *Console) sourceSecret(ctx *gin.Context) (string, bool) {
	if c.o.NewSourceSecret == nil {
		c.fail(ctx, fmt.Errorf("event source secrets are not available in this console: %w", store.ErrInvalid))
		return "", false
	}
	return c.o.NewSourceSecret(), true
}
