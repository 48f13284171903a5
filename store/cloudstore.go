package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// StoreProduct is a product of the brand's catalogue that a store
// carries (云店, the cloud store): at its own price or the brand's, in
// stock or not. A store carries none of a brand's products until its
// assortment is written.
type StoreProduct struct {
	StoreID string `gorm:"primaryKey;size:64" json:"-"`
	BrandID string `gorm:"primaryKey;size:64;index" json:"brand"`
	SKU     string `gorm:"primaryKey;size:64" json:"sku"`
	// PriceCents is the store's own price; nil: the brand's.
	PriceCents *int64    `json:"price_cents,omitempty"`
	InStock    bool      `gorm:"not null" json:"in_stock"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// AssortmentItem is a product a store carries, with the brand's
// catalogue fields and the price the store asks.
type AssortmentItem struct {
	BrandID  string `json:"brand"`
	SKU      string `json:"sku"`
	Name     string `json:"name"`
	Category string `json:"category,omitempty"`
	// PriceCents is the store's price (its own, else the brand's);
	// BrandPriceCents the brand's.
	PriceCents      int64 `json:"price_cents"`
	BrandPriceCents int64 `json:"brand_price_cents"`
	OwnPrice        bool  `json:"own_price"`
	InStock         bool  `json:"in_stock"`
	// URL is the product's page on the brand's shop, when known.
	URL string `json:"url,omitempty"`
}

// maxAssortment bounds a store's assortment of one brand.
const maxAssortment = 10000

// SetAssortment replaces what a store carries of a brand with items, in
// one transaction. The store must carry the brand (FieldError "brand"),
// each SKU be a product of the brand's (FieldError "items[i].sku", every
// unknown one named), prices not negative; nothing is written on an
// error.
func (s *Store) SetAssortment(ctx context.Context, storeID, brand string, items []StoreProduct) error {
	if _, err := s.RetailStore(ctx, storeID, ""); err != nil {
		return err
	}
	if _, err := s.RetailStore(ctx, storeID, brand); errors.Is(err, ErrNotFound) {
		return invalid("brand", "store %s does not carry brand %q", storeID, brand)
	} else if err != nil {
		return err
	}
	if len(items) > maxAssortment {
		return invalid("items", "at most %d products per store and brand", maxAssortment)
	}
	skus := make([]string, 0, len(items))
	for _, it := range items {
		skus = append(skus, it.SKU)
	}
	known, err := s.Products(ctx, brand, nonEmpty(skus))
	if err != nil {
		return err
	}
	var errs []error
	seen := map[string]bool{}
	for i := range items {
		it := &items[i]
		f := fmt.Sprintf("items[%d]", i)
		_, ok := known[it.SKU]
		switch {
		case it.SKU == "":
			errs = append(errs, invalid(f+".sku", "is required"))
		case !ok:
			errs = append(errs, invalid(f+".sku", "%q is not a product of brand %s", it.SKU, brand))
		case seen[it.SKU]:
			errs = append(errs, invalid(f+".sku", "%q is listed twice", it.SKU))
		}
		seen[it.SKU] = true
		if it.PriceCents != nil && *it.PriceCents < 0 {
			errs = append(errs, invalid(f+".price", "must not be negative"))
		}
		it.StoreID, it.BrandID = storeID, brand
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("store_id = ? AND brand_id = ?", storeID, brand).Delete(&StoreProduct{}).Error; err != nil {
			return err
		}
		if len(items) == 0 {
			return nil
		}
		return tx.CreateInBatches(items, 500).Error
	})
	return translate(err)
}

func nonEmpty(ss []string) []string {
	out := ss[:0:0]
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return []string{""}
	}
	return out
}

// Assortment lists what a store carries, by brand and SKU: of one brand,
// or (brand empty) of every brand it carries (a collection store). Only
// brands the store still carries are listed.
func (s *Store) Assortment(ctx context.Context, storeID, brand string) ([]AssortmentItem, error) {
	return s.assortment(ctx, storeID, brand, "")
}

func (s *Store) assortment(ctx context.Context, storeID, brand, sku string) ([]AssortmentItem, error) {
	var out []AssortmentItem
	q := s.db.WithContext(ctx).Table("store_products AS sp").
		Joins("JOIN products p ON p.brand_id = sp.brand_id AND p.sku = sp.sku").
		Joins("JOIN store_brands sb ON sb.store_id = sp.store_id AND sb.brand_id = sp.brand_id").
		Select(`sp.brand_id AS brand_id, sp.sku AS sku, p.name AS name, p.category AS category,
			COALESCE(sp.price_cents, p.price_cents) AS price_cents, p.price_cents AS brand_price_cents,
			(sp.price_cents IS NOT NULL) AS own_price, sp.in_stock AS in_stock, p.url AS url`).
		Where("sp.store_id = ?", storeID)
	if brand != "" {
		q = q.Where("sp.brand_id = ?", brand)
	}
	if sku != "" {
		q = q.Where("sp.sku = ?", sku)
	}
	err := q.Order("sp.brand_id, sp.sku").Scan(&out).Error
	return out, translate(err)
}

// StoreItem returns what a store asks for one product of a brand, or
// ErrNotFound when it does not carry it.
func (s *Store) StoreItem(ctx context.Context, storeID, brand, sku string) (*AssortmentItem, error) {
	items, err := s.assortment(ctx, storeID, brand, sku)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, ErrNotFound
	}
	return &items[0], nil
}
