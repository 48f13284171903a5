package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Product is an item a brand sells. ReplenishDays is how long a member
// usually takes to use it up: the repurchase nudge's clock.
type Product struct {
	BrandID       string `gorm:"primaryKey;size:64" json:"brand"`
	SKU           string `gorm:"primaryKey;size:64" json:"sku"`
	Name          string `gorm:"size:200;not null" json:"name"`
	Category      string `gorm:"size:64;not null;default:''" json:"category"`
	PriceCents    int64  `gorm:"not null" json:"price_cents"`
	ReplenishDays int    `gorm:"not null" json:"replenish_days"`
	// URL is the product's page on the brand's shop (guides' share
	// links point to it); empty when there is none.
	URL       string    `gorm:"size:1000;not null;default:''" json:"url,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Order is a purchase reported by the brand's POS or shop. It is never
// edited after it is written, except for the refunded totals that its
// refunds add up.
type Order struct {
	ID       int64  `gorm:"primaryKey;autoIncrement" json:"id"`
	BrandID  string `gorm:"size:64;not null;uniqueIndex:idx_order_no" json:"brand"`
	OrderNo  string `gorm:"size:100;not null;uniqueIndex:idx_order_no" json:"order_id"`
	MemberID int64  `gorm:"not null;index" json:"member_id"`
	// StoreID is the store of purchase, or for an online order the store
	// credited with it (the bound guide's); nil when there is none.
	StoreID *string `gorm:"size:64;index" json:"store_id,omitempty"`
	// Channel is how the order was placed: pos, online, miniprogram, ...
	Channel  string `gorm:"size:32;not null" json:"channel"`
	Currency string `gorm:"size:3;not null" json:"currency"`
	// TotalCents is the sum of the items' qty × price.
	TotalCents    int64 `gorm:"not null" json:"total_cents"`
	RefundedCents int64 `gorm:"not null;default:0" json:"refunded_cents"`
	// GuideID is the guide the purchase is attributed to, by Attribution:
	// "event" (named by the POS), "binding" (the member's bound guide) or
	// "none".
	GuideID     *string   `gorm:"size:64;index" json:"guide_id,omitempty"`
	Attribution string    `gorm:"size:32;not null" json:"attribution"`
	PlacedAt    time.Time `gorm:"not null;index" json:"placed_at"`
	// SettleDate is the day (YYYY-MM-DD in ledger.time_zone) the order
	// was recorded on, for the T+1 settlement.
	SettleDate string `gorm:"size:10;not null;index" json:"settle_date,omitempty"`
	// EventKey is the event that reported the order (its inbox key).
	EventKey  string      `gorm:"size:200;not null;default:''" json:"-"`
	CreatedAt time.Time   `json:"created_at"`
	Items     []OrderItem `gorm:"-" json:"items"`
}

// OrderItem is one line of an order.
type OrderItem struct {
	OrderID  int64  `gorm:"primaryKey;autoIncrement:false" json:"-"`
	Line     int    `gorm:"primaryKey;autoIncrement:false" json:"line"`
	SKU      string `gorm:"size:64;not null" json:"sku"`
	Name     string `gorm:"size:200;not null;default:''" json:"name,omitempty"`
	Category string `gorm:"size:64;not null;default:''" json:"category,omitempty"`
	Qty      int    `gorm:"not null" json:"qty"`
	// PriceCents is the unit price paid.
	PriceCents    int64 `gorm:"not null" json:"price_cents"`
	RefundedQty   int   `gorm:"not null;default:0" json:"refunded_qty"`
	ReplenishDays int   `gorm:"not null;default:0" json:"replenish_days,omitempty"`
}

// Amount is the line's qty × price.
func (it *OrderItem) Amount() int64 { return int64(it.Qty) * it.PriceCents }

// Refund is money given back against an order, whole or per item.
type Refund struct {
	ID          int64     `gorm:"primaryKey;autoIncrement" json:"id"`
	BrandID     string    `gorm:"size:64;not null;uniqueIndex:idx_refund_no" json:"brand"`
	RefundNo    string    `gorm:"size:100;not null;uniqueIndex:idx_refund_no" json:"refund_id"`
	OrderID     int64     `gorm:"not null;index" json:"order_id"`
	AmountCents int64     `gorm:"not null" json:"amount_cents"`
	RefundedAt  time.Time `gorm:"not null" json:"refunded_at"`
	SettleDate  string    `gorm:"size:10;not null;index" json:"settle_date"`
	// EventKey is the event that reported the refund.
	EventKey  string       `gorm:"size:200;not null;default:''" json:"-"`
	CreatedAt time.Time    `json:"created_at"`
	Items     []RefundItem `gorm:"-" json:"items"`
}

// RefundItem is how many units of an order line a refund returns.
type RefundItem struct {
	Line int `json:"line"`
	Qty  int `json:"qty"`
}

// MemberStats are a member's purchase figures for a brand, kept with the
// orders so that segments ("last purchase 90–120 days ago") are one
// indexed range scan.
type MemberStats struct {
	MemberID        int64      `gorm:"primaryKey;autoIncrement:false" json:"member_id"`
	BrandID         string     `gorm:"primaryKey;size:64;index:idx_member_stats_last,priority:1" json:"brand"`
	Orders          int        `gorm:"not null" json:"orders"`
	SpentCents      int64      `gorm:"not null" json:"spent_cents"`
	FirstPurchaseAt *time.Time `json:"first_purchase_at,omitempty"`
	LastPurchaseAt  *time.Time `gorm:"index:idx_member_stats_last,priority:2" json:"last_purchase_at,omitempty"`
	LastVisitAt     *time.Time `json:"last_visit_at,omitempty"`
}

// Commission line parties and kinds.
const (
	PartyGuide       = "guide"
	PartyStore       = "store"
	PartyDistributor = "distributor"
)

// CommissionLine is one entry of the append-only commission ledger: what
// a party earns on an order line, or (RefundID set, negative amount) what
// a refund claws back. Lines are never edited or deleted.
type CommissionLine struct {
	ID      int64  `gorm:"primaryKey;autoIncrement" json:"id"`
	BrandID string `gorm:"size:64;not null;index" json:"brand"`
	OrderID int64  `gorm:"not null;uniqueIndex:idx_commission_line" json:"order_id"`
	// ItemLine is the order line the commission is on.
	ItemLine int `gorm:"not null;uniqueIndex:idx_commission_line" json:"item_line"`
	// RefundID is 0 for the commission itself, else the refund clawing
	// it back.
	RefundID int64  `gorm:"not null;default:0;uniqueIndex:idx_commission_line" json:"refund_id,omitempty"`
	Party    string `gorm:"size:16;not null;uniqueIndex:idx_commission_line" json:"party"`
	PartyID  string `gorm:"size:64;not null;index" json:"party_id"`
	// StoreID is the store the line settles under.
	StoreID string `gorm:"size:64;not null;index:idx_commission_settle,priority:2" json:"store_id"`
	// BaseCents is the amount the rule was applied to (negative for a
	// clawback); AmountCents what the party earns.
	BaseCents   int64  `gorm:"not null" json:"base_cents"`
	AmountCents int64  `gorm:"not null" json:"amount_cents"`
	Rule        string `gorm:"size:100;not null" json:"rule"`
	// SettleDate is the day (YYYY-MM-DD in ledger.time_zone) the line
	// was recorded on: the T+1 settlement of that day includes it.
	SettleDate string    `gorm:"size:10;not null;index:idx_commission_settle,priority:1" json:"settle_date"`
	CreatedAt  time.Time `json:"created_at"`
}

// ValidateProduct checks a product's fields.
func ValidateProduct(p *Product) error {
	errs := []error{ValidateID("brand", p.BrandID), limitText("name", p.Name, 200), limitText("category", p.Category, 64)}
	if p.SKU == "" || len(p.SKU) > 64 {
		errs = append(errs, invalid("sku", "must be 1-64 characters"))
	}
	if p.Name == "" {
		errs = append(errs, invalid("name", "is required"))
	}
	if p.PriceCents < 0 {
		errs = append(errs, invalid("price", "must not be negative"))
	}
	if p.ReplenishDays < 0 || p.ReplenishDays > 3650 {
		errs = append(errs, invalid("replenish_days", "must be 0-3650"))
	}
	if p.URL != "" && !isWebURL(p.URL) {
		errs = append(errs, invalid("url", "want an http(s) URL of at most 1000 characters"))
	}
	return errors.Join(errs...)
}

// UpsertProducts writes products, replacing those with the same brand and
// SKU, in one transaction.
func (s *Store) UpsertProducts(ctx context.Context, ps []Product) error {
	for i := range ps {
		if err := ValidateProduct(&ps[i]); err != nil {
			return fmt.Errorf("product %s/%s: %w", ps[i].BrandID, ps[i].SKU, err)
		}
	}
	if len(ps) == 0 {
		return nil
	}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "brand_id"}, {Name: "sku"}},
		DoUpdates: clause.AssignmentColumns([]string{"name", "category", "price_cents", "replenish_days", "url", "updated_at"}),
	}).CreateInBatches(ps, 500).Error
	return translate(err)
}

// Products returns a brand's products by SKU; with no SKUs, all of them.
func (s *Store) Products(ctx context.Context, brand string, skus []string) (map[string]Product, error) {
	var ps []Product
	q := s.db.WithContext(ctx).Where("brand_id = ?", brand)
	if len(skus) > 0 {
		q = q.Where("sku IN ?", skus)
	}
	if err := q.Order("sku").Find(&ps).Error; err != nil {
		return nil, translate(err)
	}
	out := make(map[string]Product, len(ps))
	for _, p := range ps {
		out[p.SKU] = p
	}
	return out, nil
}

// RecordOrder writes an order with its items, the member's stats and the
// commission lines computed for it (their OrderID is filled in), in one
// transaction. An order already recorded (same brand and order number)
// changes nothing: fresh is false and o is the recorded order.
func (s *Store) RecordOrder(ctx context.Context, o *Order, lines []CommissionLine) (fresh bool, err error) {
	if len(o.Items) == 0 {
		return false, invalid("items", "an order needs at least one item")
	}
	o.TotalCents = 0
	for i := range o.Items {
		o.Items[i].Line = i + 1
		o.TotalCents += o.Items[i].Amount()
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Omit("Items").Create(o)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
		fresh = true
		for i := range o.Items {
			o.Items[i].OrderID = o.ID
		}
		if err := tx.Create(&o.Items).Error; err != nil {
			return err
		}
		for i := range lines {
			lines[i].OrderID = o.ID
		}
		if len(lines) > 0 {
			if err := tx.CreateInBatches(lines, 500).Error; err != nil {
				return err
			}
		}
		return addPurchase(tx, o.MemberID, o.BrandID, 1, o.TotalCents, o.PlacedAt, true)
	})
	if err != nil {
		return false, translate(err)
	}
	if !fresh {
		got, err := s.OrderByNo(ctx, o.BrandID, o.OrderNo)
		if err != nil {
			return false, err
		}
		*o = *got
	}
	return fresh, nil
}

// addPurchase adds an order (or, with orders 0 and a negative amount, a
// refund) to the member's stats; purchased moves the first and last
// purchase times (taking the earliest and latest, so it is idempotent).
func addPurchase(tx *gorm.DB, member int64, brand string, orders int, cents int64, at time.Time, purchased bool) error {
	at = at.UTC()
	row := MemberStats{MemberID: member, BrandID: brand, Orders: orders, SpentCents: cents}
	if purchased {
		row.FirstPurchaseAt, row.LastPurchaseAt = &at, &at
	}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
	if res.Error != nil || res.RowsAffected == 1 {
		return res.Error
	}
	upd := map[string]any{
		"orders":      gorm.Expr("orders + ?", orders),
		"spent_cents": gorm.Expr("spent_cents + ?", cents),
	}
	if purchased {
		upd["first_purchase_at"] = gorm.Expr("CASE WHEN first_purchase_at IS NULL OR first_purchase_at > ? THEN ? ELSE first_purchase_at END", at, at)
		upd["last_purchase_at"] = gorm.Expr("CASE WHEN last_purchase_at IS NULL OR last_purchase_at < ? THEN ? ELSE last_purchase_at END", at, at)
	}
	return tx.Model(&MemberStats{}).Where("member_id = ? AND brand_id = ?", member, brand).Updates(upd).Error
}

// RecordVisit notes a member's store visit in their stats.
func (s *Store) RecordVisit(ctx context.Context, member int64, brand string, at time.Time) error {
	at = at.UTC()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row := MemberStats{MemberID: member, BrandID: brand, LastVisitAt: &at}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil || res.RowsAffected == 1 {
			return res.Error
		}
		return tx.Model(&MemberStats{}).Where("member_id = ? AND brand_id = ? AND (last_visit_at IS NULL OR last_visit_at < ?)", member, brand, at).
			Update("last_visit_at", at).Error
	})
	return translate(err)
}

// Stats returns a member's purchase figures for a brand (zero figures if
// they never bought).
func (s *Store) Stats(ctx context.Context, member int64, brand string) (*MemberStats, error) {
	var st MemberStats
	err := s.db.WithContext(ctx).Where("member_id = ? AND brand_id = ?", member, brand).Take(&st).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return &MemberStats{MemberID: member, BrandID: brand}, nil
	}
	return &st, translate(err)
}

// MembersLastPurchasedBetween lists the members of a brand whose last
// purchase is in [from, to), in member id order after afterID.
func (s *Store) MembersLastPurchasedBetween(ctx context.Context, brand string, from, to time.Time, afterID int64, limit int) ([]int64, error) {
	var ids []int64
	err := s.db.WithContext(ctx).Model(&MemberStats{}).
		Where("brand_id = ? AND last_purchase_at >= ? AND last_purchase_at < ? AND member_id > ?", brand, from.UTC(), to.UTC(), afterID).
		Order("member_id").Limit(Page{Limit: limit}.limit()).Pluck("member_id", &ids).Error
	return ids, translate(err)
}

// OrderByNo returns an order with its items.
func (s *Store) OrderByNo(ctx context.Context, brand, orderNo string) (*Order, error) {
	var o Order
	if err := s.db.WithContext(ctx).Where("brand_id = ? AND order_no = ?", brand, orderNo).Take(&o).Error; err != nil {
		return nil, translate(err)
	}
	if err := s.db.WithContext(ctx).Where("order_id = ?", o.ID).Order("line").Find(&o.Items).Error; err != nil {
		return nil, translate(err)
	}
	return &o, nil
}

// MemberOrders lists a member's most recent orders of a brand, newest
// first, with their items.
func (s *Store) MemberOrders(ctx context.Context, member int64, brand string, limit int) ([]Order, error) {
	var os []Order
	q := s.db.WithContext(ctx).Where("member_id = ?", member)
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	if err := q.Order("placed_at DESC, id DESC").Limit(Page{Limit: limit}.limit()).Find(&os).Error; err != nil {
		return nil, translate(err)
	}
	if len(os) == 0 {
		return os, nil
	}
	ids := make([]int64, len(os))
	byID := make(map[int64]*Order, len(os))
	for i := range os {
		ids[i] = os[i].ID
		byID[os[i].ID] = &os[i]
	}
	var items []OrderItem
	if err := s.db.WithContext(ctx).Where("order_id IN ?", ids).Order("order_id, line").Find(&items).Error; err != nil {
		return nil, translate(err)
	}
	for _, it := range items {
		o := byID[it.OrderID]
		o.Items = append(o.Items, it)
	}
	return os, nil
}

// CommissionLines returns an order's ledger lines in id order.
func (s *Store) CommissionLines(ctx context.Context, orderID int64) ([]CommissionLine, error) {
	var ls []CommissionLine
	err := s.db.WithContext(ctx).Where("order_id = ?", orderID).Order("id").Find(&ls).Error
	return ls, translate(err)
}

// ErrOverRefund means a refund returns more units than remain.
var ErrOverRefund = fmt.Errorf("%w: refund exceeds what remains of the order", ErrInvalid)

// RecordRefund writes a refund against its order: the refunded units on
// the order's lines (never more than were bought), the order's and the
// member's totals, and the clawback lines (their RefundID is filled in),
// in one transaction. A refund already recorded changes nothing: fresh is
// false.
func (s *Store) RecordRefund(ctx context.Context, r *Refund, memberID int64, lines []CommissionLine) (fresh bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Omit("Items").Create(r)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
		fresh = true
		for _, it := range r.Items {
			res := tx.Model(&OrderItem{}).Where("order_id = ? AND line = ? AND refunded_qty + ? <= qty", r.OrderID, it.Line, it.Qty).
				Update("refunded_qty", gorm.Expr("refunded_qty + ?", it.Qty))
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected != 1 {
				return fmt.Errorf("line %d: %w", it.Line, ErrOverRefund)
			}
		}
		res = tx.Model(&Order{}).Where("id = ? AND refunded_cents + ? <= total_cents", r.OrderID, r.AmountCents).
			Update("refunded_cents", gorm.Expr("refunded_cents + ?", r.AmountCents))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return ErrOverRefund
		}
		for i := range lines {
			lines[i].OrderID, lines[i].RefundID = r.OrderID, r.ID
		}
		if len(lines) > 0 {
			if err := tx.CreateInBatches(lines, 500).Error; err != nil {
				return err
			}
		}
		return addPurchase(tx, memberID, r.BrandID, 0, -r.AmountCents, r.RefundedAt, false)
	})
	if errors.Is(err, ErrInvalid) {
		return false, err
	}
	return fresh, translate(err)
}

// RefundByNo returns a recorded refund.
func (s *Store) RefundByNo(ctx context.Context, brand, refundNo string) (*Refund, error) {
	var r Refund
	if err := s.db.WithContext(ctx).Where("brand_id = ? AND refund_no = ?", brand, refundNo).Take(&r).Error; err != nil {
		return nil, translate(err)
	}
	return &r, nil
}

// IssuedCoupon is a coupon a workflow gave a member, kept so the brand's
// POS and shop can honour it. Key (the run's step visit) makes issuing
// idempotent.
type IssuedCoupon struct {
	ID         int64     `gorm:"primaryKey;autoIncrement" json:"id"`
	Key        string    `gorm:"column:issue_key;size:200;not null;uniqueIndex" json:"-"`
	Code       string    `gorm:"size:100;not null;index" json:"code"`
	Batch      string    `gorm:"size:64;not null" json:"batch"`
	BrandID    string    `gorm:"size:64;not null" json:"brand"`
	MemberID   int64     `gorm:"not null;index" json:"member_id"`
	ValueCents int64     `gorm:"not null" json:"value_cents"`
	ExpiresAt  time.Time `gorm:"not null" json:"expires_at"`
	IssuedAt   time.Time `gorm:"not null" json:"issued_at"`
	// RunID, Workflow and GuideID are whose message carried the coupon:
	// the workflow run that issued it and the guide it went through (or
	// the member's guide then). Its redemption is credited to them.
	RunID    *int64 `gorm:"index" json:"run_id,omitempty"`
	Workflow string `gorm:"size:100;not null;default:''" json:"workflow,omitempty"`
	GuideID  string `gorm:"size:64;not null;default:''" json:"guide_id,omitempty"`
	// RedeemedOrder is the order the coupon is redeemed on ("" while it
	// is not): the guarded update that redeems it sets it only when
	// empty, so of two racing redemptions one wins.
	RedeemedOrder string     `gorm:"size:100;not null;default:''" json:"redeemed_order,omitempty"`
	RedeemedAt    *time.Time `json:"redeemed_at,omitempty"`
}

// IssueCoupon records a coupon; one already issued under the same key is
// returned as it was.
func (s *Store) IssueCoupon(ctx context.Context, c *IssuedCoupon) (*IssuedCoupon, error) {
	if c.Key == "" || c.Code == "" {
		return nil, invalid("coupon", "a key and a code are required")
	}
	if err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(c).Error; err != nil {
		return nil, translate(err)
	}
	var got IssuedCoupon
	if err := s.db.WithContext(ctx).Where("issue_key = ?", c.Key).Take(&got).Error; err != nil {
		return nil, translate(err)
	}
	return &got, nil
}

// MemberCoupons lists a member's coupons, newest first, of one brand when
// brand is set.
func (s *Store) MemberCoupons(ctx context.Context, member int64, brand string) ([]IssuedCoupon, error) {
	var out []IssuedCoupon
	q := s.db.WithContext(ctx).Where("member_id = ?", member)
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	return out, translate(q.Order("id DESC").Limit(100).Find(&out).Error)
}
