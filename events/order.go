package events

import (
	"encoding/json"
	"time"
)

// Order is an order as logged events carry it to workflows: the payload
// of purchase.completed, the "order" of purchase.refunded (the refunded
// lines and amount) and of a brand's own events, and a dry run's order
// fixtures. Workflow expressions see it as order (order.items, ...).
// Amounts are in yuan (the store keeps cents: store.Order).
type Order struct {
	ID string `json:"id" expr:"id"`
	// Total is in yuan.
	Total       float64   `json:"total" expr:"total"`
	Items       []Item    `json:"items,omitempty" expr:"items"`
	PurchasedAt time.Time `json:"purchased_at,omitzero" expr:"purchased_at"`
	StoreID     string    `json:"store_id,omitempty" expr:"store_id"`
	Channel     string    `json:"channel,omitempty" expr:"channel"`
	// GuideID is the guide the order is attributed to, when there is one.
	GuideID string `json:"guide_id,omitempty" expr:"guide_id"`
}

// Item is a line of an order.
type Item struct {
	SKU      string `json:"sku" expr:"sku"`
	Name     string `json:"name" expr:"name"`
	Category string `json:"category,omitempty" expr:"category"`
	Qty      int    `json:"qty" expr:"qty"`
	// Price is the unit price paid, in yuan.
	Price float64 `json:"price" expr:"price"`
	// CycleDays is the product's replenishment cycle in days: how long it
	// lasts; 0 when it has none.
	CycleDays int `json:"cycle_days,omitempty" expr:"cycle_days"`
}

// UnmarshalJSON reads an order; "order_id" names it when "id" does not
// (a brand's own events and dry-run fixtures may say either).
func (o *Order) UnmarshalJSON(b []byte) error {
	type plain Order
	var v struct {
		plain
		OrderID string `json:"order_id"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*o = Order(v.plain)
	if o.ID == "" {
		o.ID = v.OrderID
	}
	return nil
}
