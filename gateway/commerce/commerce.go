package commerce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/gateway/assign"
	"github.com/scrmgw/scrmgw/gateway/inbox"
	"github.com/scrmgw/scrmgw/gateway/ledger"
	"github.com/scrmgw/scrmgw/store"
)

// Ingester turns the brand's CloudEvents (sign-ups, purchases, refunds,
// visits) into members, orders, refunds, commission lines and the event
// log. Every effect is keyed (the member by phone or id, the order by its
// number, the refund by its id, the event by brand, source and id), so a
// redelivered event, or the same order sent again as a new event, changes
// nothing twice.
type Ingester struct {
	store *store.Store
	log   *slog.Logger
	// Rules are the commission rules; nil: no commission lines.
	Rules *ledger.Rules
	// Location is the ledger's time zone (settlement days).
	Location *time.Location
	// Assigner binds members signed up with a home store or a location;
	// nil: they stay unassigned.
	Assigner *assign.Assigner
	// OnLogged, when set, is handed each logged event (the workflow
	// engine); it must be idempotent.
	OnLogged func(ctx context.Context, e *store.Event) error
	// Shares verifies the share link tokens orders carry
	// (data.share_token); nil: they credit nobody.
	Shares ShareVerifier
	now    func() time.Time
	// history marks imported orders: no commission lines, no settlement
	// day.
	history bool
}

// New returns the commerce-event handler.
func New(s *store.Store, log *slog.Logger) *Ingester {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Ingester{store: s, log: log, Location: time.UTC, now: time.Now}
}

// SetClock makes the ingester read the time from now (settlement days,
// coupon expiry); tests set a virtual clock.
func (c *Ingester) SetClock(now func() time.Time) { c.now = now }

// Register routes the commerce events of a channel (the webhook
// channel's) to c.
func (c *Ingester) Register(p *inbox.Processor, channel string) {
	p.On(func(in *adapters.Inbound) bool {
		return in.Channel == channel && in.Kind == "event" && events.KnownType(in.Event)
	}, c)
}

// permanent marks bad data: retrying cannot help.
func permanent(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), store.ErrInvalid)
}

// Handle applies one commerce event (it is the inbox.Handler Register
// routes to).
func (c *Ingester) Handle(ctx context.Context, in *adapters.Inbound) (err error) {
	raw := []byte(in.Attrs["data"])
	var ref struct {
		Member events.MemberRef `json:"member"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		return permanent("event data: %v", err)
	}
	e := &store.Event{Type: in.Event, BrandID: in.Brand, Source: in.Channel, SourceID: in.DedupKey, Payload: in.Attrs["data"], OccurredAt: in.At}
	if in.Event == events.TypeCouponRedeemed {
		// The coupon names the member; scrmgw logs coupon.redeemed.
		return c.couponEvent(ctx, in)
	}
	if isLiveEvent(in.Event) {
		return c.liveEvent(ctx, in)
	}
	var memberID int64
	switch in.Event {
	case events.TypeMemberSignedUp, events.TypeMemberUpdated:
		memberID, err = c.memberEvent(ctx, in, raw)
	default:
		memberID, err = c.member(ctx, in.Brand, ref.Member)
	}
	if err != nil {
		return err
	}
	e.MemberID = &memberID
	switch in.Event {
	case events.TypePurchaseCompleted:
		var d events.PurchaseData
		if err := json.Unmarshal(raw, &d); err != nil {
			return permanent("event data: %v", err)
		}
		payload, skip, err := c.purchase(ctx, in, d, memberID, nil)
		if err != nil || skip {
			return err
		}
		e.Payload = payload
	case events.TypePurchaseRefunded:
		payload, err := c.refund(ctx, in, raw)
		if errors.Is(err, errRefundSeen) {
			return nil
		}
		if err != nil {
			return err
		}
		e.Payload = payload
	case events.TypeStoreVisited:
		var d events.VisitData
		if err := json.Unmarshal(raw, &d); err != nil {
			return permanent("event data: %v", err)
		}
		if err := c.store.RecordVisit(ctx, memberID, in.Brand, in.At); err != nil {
			return err
		}
		e.Payload = mustJSON(map[string]any{"store_id": d.Store, "source": in.Attrs["source"]})
	}
	if _, err := c.store.AppendEvent(ctx, e); err != nil {
		return fmt.Errorf("logging %s: %w", in.Event, err)
	}
	if in.Event == events.TypePurchaseRefunded {
		defer func() {
			if err == nil {
				err = c.refundCoupons(ctx, in, raw)
			}
		}()
	}
	if c.OnLogged == nil {
		return nil
	}
	if in.Event == events.TypeMemberSignedUp {
		// The sign-up's member.joined, if it made the member one (also
		// on a retry: the engine is idempotent), after the binding.
		j, err := c.store.EventBySource(ctx, in.Channel, joinedEvent(in).SourceID)
		switch {
		case err == nil:
			if err := c.OnLogged(ctx, j); err != nil {
				return err
			}
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("reading the sign-up's member.joined: %w", err)
		}
	}
	// Also for an event logged before: a retry after a crash between the
	// two must still reach the engine (it is idempotent).
	return c.OnLogged(ctx, e)
}

// refundCoupons gives back the coupons redeemed on a refund's order once
// the order is refunded in full (a partial refund keeps them: the
// coupon's discount was on the whole order).
func (c *Ingester) refundCoupons(ctx context.Context, in *adapters.Inbound, raw []byte) error {
	var d events.RefundData
	if err := json.Unmarshal(raw, &d); err != nil {
		return permanent("event data: %v", err)
	}
	o, err := c.store.OrderByNo(ctx, in.Brand, d.OrderID)
	if err != nil {
		return fmt.Errorf("reading order %s: %w", d.OrderID, err)
	}
	if o.RefundedCents < o.TotalCents {
		return nil
	}
	at := in.At
	if d.RefundedAt != nil {
		at = d.RefundedAt.UTC()
	}
	return c.unredeem(ctx, in.Brand, d.OrderID, d.RefundID, at)
}

// joinedEvent is the member.joined a sign-up logs when it gives the
// person the brand's membership.
func joinedEvent(in *adapters.Inbound) *store.Event {
	return &store.Event{Type: events.TypeMemberJoined, Source: in.Channel, SourceID: "joined:" + in.DedupKey,
		OccurredAt: in.At, Payload: mustJSON(map[string]any{"via": "sign_up", "source": in.Attrs["source"]})}
}

// member resolves an event's member, making one unknown by phone or CRM
// id (a purchase by someone never seen before). A member_id must name a
// member of the event's brand: the id of another brand's member is
// refused as an unknown one, so a brand can neither act on nor learn of
// another brand's members by their ids (docs/security.md).
func (c *Ingester) member(ctx context.Context, brand string, ref events.MemberRef) (int64, error) {
	if ref.MemberID != 0 {
		v, err := c.store.Member(ctx, ref.MemberID, brand)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return 0, permanent("member %s: not a member of brand %s", strconv.FormatInt(ref.MemberID, 10), brand)
			}
			return 0, err
		}
		return v.ID, nil
	}
	nm := store.NewMember{Phone: ref.Phone, BrandID: brand}
	if ref.CRMID != "" {
		nm.Identities = []store.Identity{{Channel: "crm:" + brand, ExternalID: ref.CRMID}}
	}
	m, _, err := c.store.EnsureMember(ctx, nm)
	if err != nil {
		return 0, fmt.Errorf("resolving member: %w", err)
	}
	return m.ID, nil
}

// memberEvent applies member.signed_up / member.updated: the member by
// phone or ids (one person), their name, level and identities, and a
// guide of their home store or of the nearest store.
func (c *Ingester) memberEvent(ctx context.Context, in *adapters.Inbound, raw []byte) (int64, error) {
	var d events.MemberData
	if err := json.Unmarshal(raw, &d); err != nil {
		return 0, permanent("event data: %v", err)
	}
	var id int64
	if d.Member.MemberID != 0 {
		v, err := c.member(ctx, in.Brand, d.Member)
		if err != nil {
			return 0, err
		}
		id = v
	}
	nm := store.NewMember{Phone: d.Member.Phone, Name: d.Name, BrandID: in.Brand}
	if in.Event == events.TypeMemberSignedUp {
		// A person who signs up joins the brand: member.joined is logged
		// with the membership, in its transaction, when it is new.
		nm.Joined = joinedEvent(in)
	}
	if d.Member.CRMID != "" {
		nm.Identities = append(nm.Identities, store.Identity{Channel: "crm:" + in.Brand, ExternalID: d.Member.CRMID})
	}
	for _, idt := range d.Identities {
		nm.Identities = append(nm.Identities, store.Identity{Channel: idt.Channel, ExternalID: idt.ExternalID})
	}
	if id == 0 || len(nm.Identities) > 0 || nm.Phone != "" {
		m, _, err := c.store.EnsureMember(ctx, nm)
		if err != nil {
			if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrConflict) {
				return 0, permanent("member: %v", err)
			}
			return 0, fmt.Errorf("resolving member: %w", err)
		}
		if id != 0 && m.ID != id {
			return 0, permanent("member: member_id %d and the phone or ids (member %d) name different members; merge them first", id, m.ID)
		}
		id = m.ID
	}
	if d.Level != "" {
		if err := c.store.SetMembership(ctx, id, in.Brand, d.Level, nil); err != nil {
			return 0, err
		}
	}
	if d.TimeZone != "" {
		if err := c.store.SetMemberTimeZone(ctx, id, d.TimeZone); err != nil {
			if errors.Is(err, store.ErrInvalid) {
				return 0, permanent("member time_zone: %v", err)
			}
			return 0, err
		}
	}
	if c.Assigner != nil && (d.HomeStore != "" || d.Location != nil) {
		req := assign.Request{MemberID: id, Brand: in.Brand, StoreID: d.HomeStore}
		if d.HomeStore != "" {
			req.Reason = "home_store"
		}
		if d.Location != nil {
			req.Lat, req.Lng = &d.Location.Lat, &d.Location.Lng
		}
		if _, err := c.Assigner.Assign(ctx, req); err != nil && !errors.Is(err, assign.ErrUnassigned) {
			if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrNotFound) {
				c.log.Warn("member event: not assigned", slog.Int64("member_id", id), slog.Any("error", err))
			} else {
				return 0, fmt.Errorf("assigning member: %w", err)
			}
		}
	}
	return id, nil
}

// loggedOrder is a purchase as the event log keeps it for workflows (the
// engine reads the events.Order in it), with the event's source.
type loggedOrder struct {
	events.Order
	Source string `json:"source,omitempty"`
}

func yuan(cents int64) float64 { return float64(cents) / 100 }

// credit is who an order is credited to when the event says it
// otherwise than by its fields (a live session's audience).
type credit struct {
	guide, store, attribution string
}

// purchase records an order with its commission lines and returns the
// event payload. skip is true when the order number was recorded by
// another event: the same sale sent twice counts once. cr, when set,
// says whom the order is credited to.
func (c *Ingester) purchase(ctx context.Context, in *adapters.Inbound, d events.PurchaseData, memberID int64, cr *credit) (payload string, skip bool, err error) {
	skus := make([]string, len(d.Items))
	for i, it := range d.Items {
		skus[i] = it.SKU
	}
	products, err := c.store.Products(ctx, in.Brand, skus)
	if err != nil {
		return "", false, err
	}
	placed := in.At
	if d.PlacedAt != nil {
		placed = d.PlacedAt.UTC()
	}
	o := &store.Order{BrandID: in.Brand, OrderNo: d.OrderID, MemberID: memberID, Channel: d.Channel, Currency: "CNY",
		PlacedAt: placed, EventKey: in.DedupKey, SettleDate: ledger.SettleDate(c.now(), c.Location), Attribution: "none"}
	if o.Channel == "" {
		o.Channel = "pos"
	}
	for _, it := range d.Items {
		p := products[it.SKU]
		item := store.OrderItem{SKU: it.SKU, Name: it.Name, Category: it.Category, Qty: it.Qty, PriceCents: int64(it.Price),
			ReplenishDays: p.ReplenishDays}
		if item.Name == "" {
			item.Name = p.Name
		}
		if item.Category == "" {
			item.Category = p.Category
		}
		if it.ReplenishDays != nil {
			item.ReplenishDays = *it.ReplenishDays
		}
		o.Items = append(o.Items, item)
	}
	var parties ledger.Parties
	if cr != nil {
		parties, err = c.credit(ctx, o, *cr)
	} else {
		parties, err = c.attribute(ctx, o, d)
	}
	if err != nil {
		return "", false, err
	}
	var lines []store.CommissionLine
	if c.history {
		o.SettleDate = ""
	} else if c.Rules != nil {
		lines = c.Rules.Lines(o, parties, o.SettleDate)
	}
	fresh, err := c.store.RecordOrder(ctx, o, lines)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return "", false, permanent("order %s: %v", d.OrderID, err)
		}
		return "", false, fmt.Errorf("recording order %s: %w", d.OrderID, err)
	}
	if !fresh && o.EventKey != in.DedupKey {
		c.log.Info("order already recorded from another event; ignored", slog.String("brand", in.Brand), slog.String("order_id", d.OrderID))
		return "", true, nil
	}
	op := loggedOrder{Order: events.Order{ID: o.OrderNo, Total: yuan(o.TotalCents), PurchasedAt: o.PlacedAt, Channel: o.Channel},
		Source: in.Attrs["source"]}
	if o.StoreID != nil {
		op.StoreID = *o.StoreID
	}
	if o.GuideID != nil {
		op.GuideID = *o.GuideID
	}
	for _, it := range o.Items {
		op.Items = append(op.Items, events.Item{SKU: it.SKU, Name: it.Name, Category: it.Category, Qty: it.Qty, Price: yuan(it.PriceCents),
			CycleDays: it.ReplenishDays})
	}
	return mustJSON(op), false, nil
}

// attribute sets the order's store and guide and returns who earns on it:
// the guide the POS names (attribution "event"), else the member's bound
// guide when the rules say so ("binding"); the store of purchase, else
// (online) the credited guide's store; and that store's distributor.
func (c *Ingester) attribute(ctx context.Context, o *store.Order, d events.PurchaseData) (ledger.Parties, error) {
	var p ledger.Parties
	if d.ShareToken != "" {
		if cr, ok := c.shareCredit(ctx, o, d.ShareToken); ok {
			return c.credit(ctx, o, cr)
		}
	}
	if d.Guide != "" {
		g, err := c.store.Guide(ctx, d.Guide, "")
		switch {
		case err == nil:
			p.Guide, o.Attribution = g.ID, "event"
			if d.Store == "" {
				p.Store = g.StoreID
			}
		case errors.Is(err, store.ErrNotFound):
			c.log.Warn("purchase names an unknown guide; not credited", slog.String("brand", o.BrandID), slog.String("order_id", o.OrderNo),
				slog.String("guide", d.Guide))
		default:
			return p, err
		}
	}
	if p.Guide == "" && (c.Rules == nil || c.Rules.BoundGuide) {
		v, err := c.store.Member(ctx, o.MemberID, "")
		if err != nil {
			return p, err
		}
		for _, b := range v.Bindings {
			if b.BrandID == o.BrandID && b.EndedAt == nil {
				p.Guide, o.Attribution = b.GuideID, "binding"
				if d.Store == "" {
					p.Store = b.StoreID
				}
			}
		}
	}
	var credited *store.RetailStore
	if d.Store != "" {
		rs, err := c.store.RetailStore(ctx, d.Store, "")
		switch {
		case err == nil:
			p.Store, credited = rs.ID, rs
		case errors.Is(err, store.ErrNotFound):
			c.log.Warn("purchase names an unknown store; not credited", slog.String("brand", o.BrandID), slog.String("order_id", o.OrderNo),
				slog.String("store", d.Store))
		default:
			return p, err
		}
	}
	if p.Store != "" {
		if credited == nil { // the credited guide's store
			rs, err := c.store.RetailStore(ctx, p.Store, "")
			if err != nil {
				return p, err
			}
			credited = rs
		}
		p.Distributor = credited.Distributor
		o.StoreID = &p.Store
	}
	if p.Guide != "" {
		o.GuideID = &p.Guide
	}
	return p, nil
}

// errRefundSeen skips a refund recorded before from another event.
var errRefundSeen = errors.New("refund already recorded")

// ErrOrderUnknown delays a refund whose order has not arrived yet; the
// queue retries it with backoff.
var ErrOrderUnknown = errors.New("refund before its order: will retry")

// refund records a refund, its clawback lines and returns the event
// payload (the refunded amount as the order, for workflows).
func (c *Ingester) refund(ctx context.Context, in *adapters.Inbound, raw []byte) (string, error) {
	var d events.RefundData
	if err := json.Unmarshal(raw, &d); err != nil {
		return "", permanent("event data: %v", err)
	}
	known, err := c.store.RefundByNo(ctx, in.Brand, d.RefundID)
	switch {
	case err == nil && known.EventKey != in.DedupKey:
		// The same refund sent again as another event: once is enough.
		c.log.Info("refund already recorded from another event; ignored", slog.String("brand", in.Brand), slog.String("refund_id", d.RefundID))
		return "", errRefundSeen
	case err == nil:
		// This event's refund, recorded before a crash: log it now.
		return c.refundPayload(in, d, known)
	case !errors.Is(err, store.ErrNotFound):
		return "", err
	}
	o, err := c.store.OrderByNo(ctx, in.Brand, d.OrderID)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("order %s: %w", d.OrderID, ErrOrderUnknown)
	}
	if err != nil {
		return "", err
	}
	items, err := refundItems(o, d.Items)
	if err != nil {
		return "", permanent("refund %s: %v", d.RefundID, err)
	}
	r := &store.Refund{BrandID: in.Brand, RefundNo: d.RefundID, OrderID: o.ID, RefundedAt: in.At, Items: items, EventKey: in.DedupKey,
		SettleDate: ledger.SettleDate(c.now(), c.Location)}
	if d.RefundedAt != nil {
		r.RefundedAt = d.RefundedAt.UTC()
	}
	for _, it := range items {
		r.AmountCents += int64(it.Qty) * o.Items[it.Line-1].PriceCents
	}
	lines, err := c.store.CommissionLines(ctx, o.ID)
	if err != nil {
		return "", err
	}
	claw := ledger.Clawback(o, items, lines, r.SettleDate)
	if _, err := c.store.RecordRefund(ctx, r, o.MemberID, claw); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return "", permanent("refund %s: %v", d.RefundID, err)
		}
		return "", fmt.Errorf("recording refund %s: %w", d.RefundID, err)
	}
	op := loggedOrder{Order: events.Order{ID: o.OrderNo, Total: yuan(r.AmountCents), PurchasedAt: o.PlacedAt, Channel: o.Channel},
		Source: in.Attrs["source"]}
	if o.StoreID != nil {
		op.StoreID = *o.StoreID
	}
	for _, it := range items {
		oi := o.Items[it.Line-1]
		op.Items = append(op.Items, events.Item{SKU: oi.SKU, Name: oi.Name, Category: oi.Category, Qty: it.Qty, Price: yuan(oi.PriceCents)})
	}
	return mustJSON(map[string]any{"order": op, "refund_id": d.RefundID, "order_id": o.OrderNo}), nil
}

// refundPayload is the event payload of a refund recorded before (its
// lines are not kept in the event; the amount is).
func (c *Ingester) refundPayload(in *adapters.Inbound, d events.RefundData, r *store.Refund) (string, error) {
	return mustJSON(map[string]any{"order": loggedOrder{Order: events.Order{ID: d.OrderID, Total: yuan(r.AmountCents), PurchasedAt: r.RefundedAt},
		Source: in.Attrs["source"]}, "refund_id": d.RefundID, "order_id": d.OrderID}), nil
}

// refundItems maps a refund's lines onto the order's (by line number or
// SKU); none means everything not refunded yet.
func refundItems(o *store.Order, lines []events.RefundLine) ([]store.RefundItem, error) {
	var out []store.RefundItem
	if len(lines) == 0 {
		for _, it := range o.Items {
			if left := it.Qty - it.RefundedQty; left > 0 {
				out = append(out, store.RefundItem{Line: it.Line, Qty: left})
			}
		}
		if len(out) == 0 {
			return nil, errors.New("the order is already fully refunded")
		}
		return out, nil
	}
	taken := map[int]int{}
	for i, l := range lines {
		line := l.Line
		if line == 0 {
			for _, it := range o.Items {
				if it.SKU == l.SKU && it.Qty-it.RefundedQty-taken[it.Line] > 0 {
					line = it.Line
					break
				}
			}
			if line == 0 {
				return nil, fmt.Errorf("items[%d]: no line of order %s with sku %q left to refund", i, o.OrderNo, l.SKU)
			}
		}
		if line > len(o.Items) {
			return nil, fmt.Errorf("items[%d].line: order %s has %d lines", i, o.OrderNo, len(o.Items))
		}
		it := o.Items[line-1]
		if l.SKU != "" && it.SKU != l.SKU {
			return nil, fmt.Errorf("items[%d]: line %d is sku %q, not %q", i, line, it.SKU, l.SKU)
		}
		if left := it.Qty - it.RefundedQty - taken[line]; l.Qty > left {
			return nil, fmt.Errorf("items[%d].qty: %d, but only %d of line %d are left to refund", i, l.Qty, left, line)
		}
		taken[line] += l.Qty
		out = append(out, store.RefundItem{Line: line, Qty: l.Qty})
	}
	return out, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// ImportPurchase records an order from an import file (history): the
// member (by phone or CRM id), the order, the member's purchase figures
// and a purchase.completed entry in the event log, as a purchase event
// would, but without commission lines (history is settled elsewhere) and
// without reaching the workflow engine (old orders start no nudges). An
// order already recorded is left alone: fresh is false.
func (c *Ingester) ImportPurchase(ctx context.Context, brand string, d events.PurchaseData) (fresh bool, err error) {
	at := time.Now().UTC()
	if d.PlacedAt != nil {
		at = d.PlacedAt.UTC()
	}
	if d.OrderID == "" || len(d.OrderID) > 100 {
		return false, permanent("order_id: want 1-100 characters")
	}
	// The key a webhook event from source "import" would have (brand
	// and order_id are short enough not to be hashed).
	in := &adapters.Inbound{Channel: "import", DedupKey: brand + " import " + d.OrderID, Brand: brand, Kind: "event",
		Event: events.TypePurchaseCompleted, At: at, Attrs: map[string]string{"source": "import", "id": d.OrderID}}
	memberID, err := c.member(ctx, brand, d.Member)
	if err != nil {
		return false, err
	}
	c2 := *c
	c2.history = true
	payload, skip, err := c2.purchase(ctx, in, d, memberID, nil)
	if err != nil || skip {
		return false, err
	}
	e := &store.Event{Type: in.Event, BrandID: brand, MemberID: &memberID, Source: in.Channel, SourceID: in.DedupKey, Payload: payload, OccurredAt: at}
	return c.store.AppendEvent(ctx, e)
}
