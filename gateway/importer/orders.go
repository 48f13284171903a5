package importer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// orderLine is one row of an orders file: an item of an order. The rows
// of one order share its order_id (and brand) and repeat its member,
// store, guide, channel and time.
type orderLine struct {
	brand, orderID string
	member         events.MemberRef
	store, guide   string
	channel        string
	placedAt       *time.Time
	item           events.PurchaseItem
}

// head is what every row of an order must repeat alike.
func (l *orderLine) head() string {
	at := ""
	if l.placedAt != nil {
		at = l.placedAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprint(l.member, "|", l.store, "|", l.guide, "|", l.channel, "|", at)
}

func parseOrderLine(get func(string) string, opts Options) (orderLine, error) {
	l := orderLine{brand: get("brand"), orderID: get("order_id"), store: get("store"), guide: get("guide"), channel: get("channel"),
		member: events.MemberRef{Phone: get("phone"), CRMID: get("crm_id")}}
	if l.brand == "" {
		l.brand = opts.Brand
	}
	var errs []error
	if err := store.ValidateID("brand", l.brand); err != nil {
		errs = append(errs, err)
	}
	if l.orderID == "" || len(l.orderID) > 100 {
		errs = append(errs, errors.New("order_id: want 1-100 characters"))
	}
	if l.member.Phone == "" && l.member.CRMID == "" {
		errs = append(errs, errors.New("phone or crm_id: one is required"))
	}
	if l.member.Phone != "" {
		if _, err := store.NormalizePhone(l.member.Phone); err != nil {
			errs = append(errs, fmt.Errorf("phone: %v", err))
		}
	}
	if v := get("placed_at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("placed_at: want RFC 3339 such as 2026-11-25T14:03:00+08:00, got %q", v))
		}
		l.placedAt = &t
	}
	sku := get("sku")
	if sku == "" || len(sku) > 64 {
		errs = append(errs, errors.New("sku: want 1-64 characters"))
	}
	qty, err := strconv.Atoi(get("qty"))
	if err != nil || qty <= 0 || qty > 100000 {
		errs = append(errs, fmt.Errorf("qty: want a whole number from 1 to 100000, got %q", get("qty")))
	}
	price, err := events.ParseMoney(get("price"))
	if err != nil || price < 0 {
		errs = append(errs, fmt.Errorf("price: want yuan with at most 2 decimals, got %q", get("price")))
	}
	l.item = events.PurchaseItem{SKU: sku, Name: get("name"), Category: get("category"), Qty: qty, Price: price}
	if v := get("replenish_days"); v != "" {
		d, err := strconv.Atoi(v)
		if err != nil || d < 0 || d > 3650 {
			errs = append(errs, fmt.Errorf("replenish_days: want 0-3650, got %q", v))
		}
		l.item.ReplenishDays = &d
	}
	return l, errors.Join(errs...)
}

// order is the rows of one order, in file order.
type order struct {
	lines []int
	brand string
	data  events.PurchaseData
}

// groupOrders joins rows into orders; a row that disagrees with its
// order's first row (member, store, guide, channel, time) is refused, and
// with it the whole order.
func groupOrders(records []record) ([]order, []RowError) {
	var out []order
	at := map[string]int{}
	first := map[string]*orderLine{}
	var bad []RowError
	badOrder := map[string]bool{}
	for _, r := range records {
		l := r.orderLine
		key := l.brand + "\x00" + l.orderID
		if f := first[key]; f != nil {
			if f.head() != l.head() {
				bad = append(bad, RowError{Line: r.line, Reason: fmt.Sprintf("order %s: member, store, guide, channel or placed_at differ from line %d",
					l.orderID, out[at[key]].lines[0])})
				badOrder[key] = true
				continue
			}
			o := &out[at[key]]
			o.lines = append(o.lines, r.line)
			o.data.Items = append(o.data.Items, l.item)
			continue
		}
		first[key] = &l
		at[key] = len(out)
		out = append(out, order{lines: []int{r.line}, brand: l.brand, data: events.PurchaseData{Member: l.member, OrderID: l.orderID,
			Store: l.store, Guide: l.guide, Channel: l.channel, PlacedAt: l.placedAt, Items: []events.PurchaseItem{l.item}}})
	}
	kept := out[:0]
	for _, o := range out {
		if !badOrder[o.brand+"\x00"+o.data.OrderID] {
			kept = append(kept, o)
		}
	}
	return kept, bad
}

// writeOrders writes orders one by one; an order the store refuses is
// reported on its first line. Written counts new orders; orders recorded
// before are left alone.
func writeOrders(ctx context.Context, orders []order, opts Options, res *Result) error {
	for i, o := range orders {
		fresh, err := opts.Orders(ctx, o.brand, o.data)
		switch {
		case errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrConflict):
			res.Invalid = append(res.Invalid, RowError{Line: o.lines[0], Reason: flatten(err)})
		case err != nil:
			return fmt.Errorf("line %d: order %s: %w", o.lines[0], o.data.OrderID, err)
		case fresh:
			res.Written++
		}
		if opts.Progress != nil && (i%100 == 99 || i == len(orders)-1) {
			opts.Progress(i+1, len(orders))
		}
	}
	return nil
}
