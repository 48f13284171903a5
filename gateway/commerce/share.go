package commerce

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/scrmgw/scrmgw/gateway/ledger"
	"github.com/scrmgw/scrmgw/gateway/sharelink"
	"github.com/scrmgw/scrmgw/store"
)

// ShareVerifier verifies a share link's token (*sharelink.Signer).
type ShareVerifier interface {
	Verify(token string, now time.Time) (sharelink.Link, error)
}

// Attribution of an order placed through a guide's share link, and of
// one placed during a live session.
const (
	AttributionShare = "share"
	AttributionLive  = "live"
)

// shareCredit is whom an order placed through a share link is credited
// to: the link's guide and store, when the token verifies, is the
// order's brand's and had not expired when the order was placed. Else
// (logged) the order is credited as if it carried no token. The event
// schema refused tokens that do not verify at the door already; this
// checks again, and checks expiry against the order's time.
func (c *Ingester) shareCredit(ctx context.Context, o *store.Order, token string) (credit, bool) {
	if c.Shares == nil {
		return credit{}, false
	}
	l, err := c.Shares.Verify(token, o.PlacedAt)
	warn := func(msg string, args ...any) {
		c.log.WarnContext(ctx, msg, append([]any{slog.String("brand", o.BrandID), slog.String("order_id", o.OrderNo)}, args...)...)
	}
	switch {
	case errors.Is(err, sharelink.ErrExpired):
		warn("order placed through an expired share link; credited as without one", slog.Time("expired_at", l.Expires()))
		return credit{}, false
	case err != nil:
		warn("order with a share token that does not verify; credited as without one")
		return credit{}, false
	case l.Brand != o.BrandID:
		warn("order with another brand's share link; credited as without one", slog.String("link_brand", l.Brand))
		return credit{}, false
	}
	return credit{guide: l.Guide, store: l.Store, attribution: AttributionShare}, true
}

// credit sets an order's store and guide to cr's (each when it still
// exists) and returns who earns on it.
func (c *Ingester) credit(ctx context.Context, o *store.Order, cr credit) (ledger.Parties, error) {
	var p ledger.Parties
	o.Attribution = cr.attribution
	if cr.guide != "" {
		g, err := c.store.Guide(ctx, cr.guide, "")
		switch {
		case err == nil:
			p.Guide = g.ID
			o.GuideID = &p.Guide
		case errors.Is(err, store.ErrNotFound):
			c.log.WarnContext(ctx, "order credited to a guide who no longer exists; the store alone is credited",
				slog.String("brand", o.BrandID), slog.String("order_id", o.OrderNo), slog.String("guide", cr.guide))
		default:
			return p, err
		}
	}
	if cr.store != "" {
		rs, err := c.store.RetailStore(ctx, cr.store, "")
		switch {
		case err == nil:
			p.Store, p.Distributor = rs.ID, rs.Distributor
			o.StoreID = &p.Store
		case errors.Is(err, store.ErrNotFound):
			c.log.WarnContext(ctx, "order credited to a store that no longer exists", slog.String("brand", o.BrandID),
				slog.String("order_id", o.OrderNo), slog.String("store", cr.store))
		default:
			return p, err
		}
	}
	if p.Guide == "" && p.Store == "" {
		o.Attribution = "none"
	}
	return p, nil
}
