package sharelink

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/scrmgw/scrmgw/store"
)

// Catalog is what making a link reads: what a store carries
// (*store.Store is one).
type Catalog interface {
	StoreItem(ctx context.Context, storeID, brand, sku string) (*store.AssortmentItem, error)
}

// Request asks for a guide's share link.
type Request struct {
	Brand, Guide, Store string
	// URL is the page on the brand's shop; empty: the product's (SKU's)
	// page from the catalogue.
	URL string
	// SKU, when set, must be a product the guide's store carries.
	SKU string
	// TTL is how long the link credits the guide; 0: DefaultTTL.
	TTL time.Duration
}

// Shared is a share link: the page's URL with the token in its
// share_token query parameter.
type Shared struct {
	URL   string
	Token string
	Link  Link
	// Item is the product, for a product's link.
	Item *store.AssortmentItem
}

// Share makes a guide's share link. Faults are store.FieldErrors named
// by the request's JSON fields: sku (not carried by the guide's store),
// url (not an http(s) URL, or none and the product has no page),
// valid_days (TTL out of range).
func (s *Signer) Share(ctx context.Context, cat Catalog, r Request, now time.Time) (*Shared, error) {
	var errs []error
	ttl := r.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < 0 || ttl > MaxTTL {
		errs = append(errs, &store.FieldError{Field: "valid_days", Message: "want 1-180 (0: 30)"})
	}
	var item *store.AssortmentItem
	if r.SKU != "" {
		it, err := cat.StoreItem(ctx, r.Store, r.Brand, r.SKU)
		switch {
		case errors.Is(err, store.ErrNotFound):
			errs = append(errs, &store.FieldError{Field: "sku", Message: "the guide's store does not carry this product"})
		case err != nil:
			return nil, fmt.Errorf("reading the store's product %s: %w", r.SKU, err)
		default:
			item = it
		}
	}
	page := r.URL
	if page == "" && item != nil {
		page = item.URL
	}
	u, err := url.Parse(page)
	switch {
	case page == "" && r.SKU != "" && item != nil:
		errs = append(errs, &store.FieldError{Field: "url", Message: "the product has no page on the shop (its url in the catalogue): give one"})
	case page == "" && r.SKU == "":
		errs = append(errs, &store.FieldError{Field: "url", Message: "want the http(s) URL of a product or campaign page on the shop, or a sku"})
	case page != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(page) > 1000):
		errs = append(errs, &store.FieldError{Field: "url", Message: "want the http(s) URL of a product or campaign page on the shop"})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	l := Link{Brand: r.Brand, Guide: r.Guide, Store: r.Store, SKU: r.SKU, ExpiresAt: now.Add(ttl).Unix()}
	tok, err := s.Make(l)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("share_token", tok)
	u.RawQuery = q.Encode()
	return &Shared{URL: u.String(), Token: tok, Link: l, Item: item}, nil
}
