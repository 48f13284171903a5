package bots

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
)

// Intents of incentives and orders.
const (
	// IntentMyOrders lists the member's recent orders of the brand.
	IntentMyOrders = "my_orders"
	// IntentCrossBrandOn and IntentCrossBrandOff accept or decline offers
	// of the other brands the member's store carries, through their
	// guide.
	IntentCrossBrandOn  = "cross_brand_on"
	IntentCrossBrandOff = "cross_brand_off"
	// IntentLeaderboard shows a guide's rank this month in their store and
	// brand.
	IntentLeaderboard = "leaderboard"
)

// Template ids of the incentives' replies.
const (
	TemplateMyOrders      = "bot_my_orders"
	TemplateLeaderboard   = "bot_leaderboard"
	TemplateCrossBrandOn  = "bot_cross_brand_on"
	TemplateCrossBrandOff = "bot_cross_brand_off"
	// TemplateCrossBrandUnknown answers a brand named that the member's
	// store does not carry, listing those it does.
	TemplateCrossBrandUnknown = "bot_cross_brand_unknown"
)

// IncentiveStore answers orders, guide points and cross-brand opt-ins;
// *store.Store is one.
type IncentiveStore interface {
	MemberOrders(ctx context.Context, member int64, brand string, limit int) ([]store.Order, error)
	GuidePointsTotal(ctx context.Context, guideID, brand, month string) (int64, error)
	GuidePlace(ctx context.Context, q store.LeaderboardQuery, guideID string, n int) (*store.BoardPlace, error)
	CrossBrandOffers(ctx context.Context, memberID int64, brand string) ([]store.Brand, error)
	CrossBrandOptIns(ctx context.Context, memberID int64) ([]string, error)
	SetCrossBrandOptIn(ctx context.Context, memberID int64, brands []string, optedIn bool, at time.Time) error
}

// recentOrders is how many orders "my orders" lists.
const recentOrders = 3

// leaderboardTop is how many guides a leaderboard reply lists.
const leaderboardTop = 3

// pointsMonth is the guide points month (YYYY-MM) at now: in
// Deps.PointsZone (the ledger's zone, which the ledger's months are
// written in), else in now's own zone.
func (d Deps) pointsMonth(now time.Time) string {
	if d.PointsZone != nil {
		now = now.In(d.PointsZone)
	}
	return now.Format("2006-01")
}

// guidePoints is the points the guide earned this month, of every brand.
func (d Deps) guidePoints(ctx context.Context, g *store.Guide, now time.Time) (int64, error) {
	if d.Incentives == nil {
		return 0, nil
	}
	n, err := d.Incentives.GuidePointsTotal(ctx, g.ID, "", d.pointsMonth(now))
	if err != nil {
		return 0, fmt.Errorf("summing guide points: %w", err)
	}
	return n, nil
}

// myOrders answers "my orders": the member's last orders of the brand
// with their store, items, total and refunds, dates in the store's zone.
func (d Deps) myOrders(ctx context.Context, m *Message, data *templates.Data) ([]Reply, error) {
	v, err := d.memberOf(ctx, m)
	if errors.Is(err, store.ErrNotFound) {
		return d.render(TemplateMyOrders, m, data, nil)
	}
	if err != nil {
		return nil, err
	}
	data.Member = templates.Member{Name: brandMember(v, m.Brand).Name}
	if m.Brand == "" {
		// Unattributed: no brand's orders (MemberOrders would list every
		// brand's).
		return d.render(TemplateMyOrders, m, data, nil)
	}
	orders, err := d.Incentives.MemberOrders(ctx, v.ID, m.Brand, recentOrders)
	if err != nil {
		return nil, fmt.Errorf("listing orders: %w", err)
	}
	stores := map[string]*store.RetailStore{}
	for _, o := range orders {
		t := templates.Order{ID: o.OrderNo, Total: templates.Money(o.TotalCents), Refunded: templates.Money(o.RefundedCents),
			PurchasedAt: o.PlacedAt.In(zoneOf(""))}
		if o.StoreID != nil {
			rs, ok := stores[*o.StoreID]
			if !ok {
				rs, err = d.Directory.RetailStore(ctx, *o.StoreID, "")
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, err
				}
				stores[*o.StoreID] = rs
			}
			if rs != nil {
				t.Store, t.PurchasedAt = rs.Name, o.PlacedAt.In(zoneOf(rs.TimeZone))
			}
		}
		for _, it := range o.Items {
			t.Items = append(t.Items, templates.Item{SKU: it.SKU, Name: it.Name, Qty: it.Qty})
		}
		data.Orders = append(data.Orders, t)
	}
	return d.render(TemplateMyOrders, m, data, nil)
}

// crossBrand records the member accepting (on) or declining offers of
// the other brands their guide's store carries, or of the one brand
// named (by name or id; arg). Accepting names the brands it covers (those
// the store carries now: a brand added later is asked for again);
// declining them all covers every brand accepted before.
func (d Deps) crossBrand(ctx context.Context, m *Message, data *templates.Data, on bool, arg string) ([]Reply, error) {
	tmpl := TemplateCrossBrandOff
	if on {
		tmpl = TemplateCrossBrandOn
	}
	v, err := d.memberOf(ctx, m)
	if errors.Is(err, store.ErrNotFound) {
		return d.render(tmpl, m, data, nil)
	}
	if err != nil {
		return nil, err
	}
	offers, err := d.Incentives.CrossBrandOffers(ctx, v.ID, m.Brand)
	if err != nil {
		return nil, fmt.Errorf("listing cross-brand offers: %w", err)
	}
	named := !allBrands(arg)
	if named {
		var one []store.Brand
		for _, b := range offers {
			if strings.EqualFold(b.Name, strings.TrimSpace(arg)) || strings.EqualFold(b.ID, strings.TrimSpace(arg)) {
				one = append(one, b)
			}
		}
		if len(one) == 0 {
			data.Handoff.Text = cut(strings.TrimSpace(arg), 50)
			for _, b := range offers {
				data.Brands = append(data.Brands, templates.Brand{Name: b.Name})
			}
			return d.render(TemplateCrossBrandUnknown, m, data, nil)
		}
		offers = one
	}
	ids := make([]string, 0, len(offers))
	for _, b := range offers {
		ids = append(ids, b.ID)
		if on || named {
			data.Brands = append(data.Brands, templates.Brand{Name: b.Name})
		}
	}
	if !on && !named {
		before, err := d.Incentives.CrossBrandOptIns(ctx, v.ID)
		if err != nil {
			return nil, err
		}
		ids = append(ids, before...)
	}
	if err := d.Incentives.SetCrossBrandOptIn(ctx, v.ID, ids, on, d.now()); err != nil {
		return nil, fmt.Errorf("recording cross-brand opt-in: %w", err)
	}
	if on {
		if err := d.guideData(ctx, m, data); err != nil {
			return nil, err
		}
	}
	return d.render(tmpl, m, data, nil)
}

// allBrands says whether a cross-brand intent's argument means every
// other brand ("其他", "其他品牌", "all", "other brands") or none was
// given.
func allBrands(arg string) bool {
	a := strings.ToLower(strings.TrimSpace(arg))
	a = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(a, "品牌"), "brands"), "brand")
	switch strings.TrimSpace(a) {
	case "", "其他", "其它", "别的", "所有", "全部", "other", "all", "all other", "any":
		return true
	}
	return false
}

// leaderboard answers a guide's "leaderboard": their place this month
// on their store's board and their brand's (the message's brand, else
// every brand their store carries).
func (d Deps) leaderboard(ctx context.Context, m *Message, g *store.Guide, data *templates.Data) ([]Reply, error) {
	month := d.pointsMonth(d.now().In(d.guideZone(ctx, g)))
	data.Guide = templates.Guide{Name: g.Name}
	rs, err := d.Directory.RetailStore(ctx, g.StoreID, "")
	if err != nil {
		return nil, err
	}
	data.Guide.Store = rs.Name
	boards := []struct {
		name string
		q    store.LeaderboardQuery
	}{{rs.Name, store.LeaderboardQuery{StoreID: rs.ID, Month: month}}}
	brands := rs.BrandIDs
	if m.Brand != "" {
		brands = []string{m.Brand}
	}
	for _, b := range brands {
		name := b
		if br, err := d.Directory.Brand(ctx, b); err == nil {
			name = br.Name
		}
		boards = append(boards, struct {
			name string
			q    store.LeaderboardQuery
		}{name, store.LeaderboardQuery{Brand: b, Month: month}})
	}
	for _, b := range boards {
		p, err := d.Incentives.GuidePlace(ctx, b.q, g.ID, leaderboardTop)
		if err != nil {
			return nil, fmt.Errorf("reading leaderboard: %w", err)
		}
		r := templates.Rank{Board: b.name, Place: p.Rank, Of: p.Of, Points: p.Points}
		for _, t := range p.Top {
			r.Top = append(r.Top, templates.Placing{Place: t.Rank, Name: t.GuideName, Points: t.Points})
		}
		data.Ranks = append(data.Ranks, r)
	}
	return d.render(TemplateLeaderboard, m, data, nil)
}
