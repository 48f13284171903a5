package store

import (
	"context"
	"slices"
	"strings"

	"gorm.io/gorm"
)

// The console's pages over brands of 200,000 stores and 600,000 guides
// read only what a page shows: a store's id and name for a filter, the
// load of the stores on the page.

// optionLimit bounds a list of options: 1 to 1001 (a list of 1000 and
// whether there are more).
func optionLimit(n int) int { return min(max(n, 1), 1001) }

// Option is a store or guide as a console filter lists it.
type Option struct {
	ID   string
	Name string
}

// StoreOptions lists a brand's stores (id and name) in id order, after
// the id after, at most limit (1001): the page's ids first from the
// (brand_id, store_id) index, as RetailStores does.
func (s *Store) StoreOptions(ctx context.Context, brand, after string, limit int) ([]Option, error) {
	ids := s.db.Model(&StoreBrand{}).Select("store_id").Where("brand_id = ? AND store_id > ?", brand, after).
		Order("store_id").Limit(optionLimit(limit))
	var out []Option
	err := s.db.WithContext(ctx).Model(&RetailStore{}).Select("id, name").Where("id IN (?)", ids).Order("id").Scan(&out).Error
	return out, translate(err)
}

// SearchStores lists a brand's stores whose id or name contains q (any
// case), in id order, at most limit (1001).
func (s *Store) SearchStores(ctx context.Context, brand, q string, limit int) ([]Option, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, nil
	}
	like := "%" + likeEscaper.Replace(strings.ToLower(q)) + "%"
	var out []Option
	err := s.db.WithContext(ctx).Model(&RetailStore{}).Select("id, name").
		Where("id IN (?)", s.db.Model(&StoreBrand{}).Select("store_id").Where("brand_id = ?", brand)).
		Where(`(LOWER(id) LIKE ? ESCAPE '\' OR LOWER(name) LIKE ? ESCAPE '\')`, like, like).
		Order("id").Limit(optionLimit(limit)).Scan(&out).Error
	return out, translate(err)
}

// GuideOptions lists the guides (id and name) of the given stores, in id
// order, at most limit (1001).
func (s *Store) GuideOptions(ctx context.Context, storeIDs []string, limit int) ([]Option, error) {
	if len(storeIDs) == 0 {
		return nil, nil
	}
	var out []Option
	err := s.db.WithContext(ctx).Model(&Guide{}).Select("id, name").Where("store_id IN ?", storeIDs).
		Order("id").Limit(optionLimit(limit)).Scan(&out).Error
	return out, translate(err)
}

// BrandGuideOptions lists a brand's guides (id and name) in id order when
// it has at most limit (1 to 1000) of them; with more, it lists none and
// says so (many). It reads at most limit+1 guides, in no order, to know:
// a brand may have 12,000.
func (s *Store) BrandGuideOptions(ctx context.Context, brand string, limit int) (out []Option, many bool, err error) {
	limit = min(max(limit, 1), 1000)
	sql := `SELECT id, name FROM guides WHERE store_id IN (SELECT store_id FROM store_brands WHERE brand_id = @brand) LIMIT @limit`
	if s.dialect == "postgres" {
		// As in Guides: the brand's store ids as one array, their guides
		// from the store_id index, stopping at limit+1.
		sql = `SELECT id, name FROM guides WHERE store_id = ANY(ARRAY(SELECT store_id FROM store_brands WHERE brand_id = @brand)) LIMIT @limit`
	}
	if err := s.db.WithContext(ctx).Raw(sql, map[string]any{"brand": brand, "limit": limit + 1}).Scan(&out).Error; err != nil {
		return nil, false, translate(err)
	}
	if len(out) > limit {
		return nil, true, nil
	}
	slices.SortFunc(out, func(a, b Option) int { return strings.Compare(a.ID, b.ID) })
	return out, false, nil
}

// StoreNames returns the names of the stores of ids (those that exist),
// by id.
func (s *Store) StoreNames(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []Option
	if err := s.db.WithContext(ctx).Model(&RetailStore{}).Select("id, name").Where("id IN ?", ids).Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
	for _, r := range rows {
		out[r.ID] = r.Name
	}
	return out, nil
}

// StoreLoad is the active guides of a store, their capacity and the
// members bound to them (as GuideLoads counts them).
type StoreLoad struct {
	StoreID  string
	Guides   int
	Capacity int
	Bound    int
}

// StoreLoads sums the loads of the active guides of each of the stores
// (on the guides' store_id index); a store without active guides is left
// out.
func (s *Store) StoreLoads(ctx context.Context, storeIDs []string) (map[string]StoreLoad, error) {
	out := make(map[string]StoreLoad, len(storeIDs))
	const batch = 1000
	for len(storeIDs) > 0 {
		part := storeIDs[:min(batch, len(storeIDs))]
		storeIDs = storeIDs[len(part):]
		var rows []StoreLoad
		err := s.db.WithContext(ctx).Model(&Guide{}).
			Select("store_id, COUNT(*) AS guides, COALESCE(SUM(capacity), 0) AS capacity, COALESCE(SUM(bound_count), 0) AS bound").
			Where("active AND left_at IS NULL AND store_id IN ?", part).Group("store_id").Scan(&rows).Error
		if err != nil {
			return nil, translate(err)
		}
		for _, r := range rows {
			out[r.StoreID] = r
		}
	}
	return out, nil
}

// migrateConsoleIndexes adds the indexes the console's member and commerce
// pages read at scale: a member's bindings, ended ones too (the member page
// and the export; idx_binding_current holds only the current ones), read a
// seq scan of all bindings; a brand's settlements of a day read the whole
// day's (the key starts with the date, then the store); their commission
// lines were found by brand, over all days.
func migrateConsoleIndexes(tx *gorm.DB) error {
	// The summary's columns in the index: a brand's day sums from it
	// alone.
	settlements := `CREATE INDEX IF NOT EXISTS idx_settlements_brand ON settlements (date, brand_id, store_id)
		INCLUDE (status, net_cents, guide_cents, store_cents, distributor_cents)`
	lines := `CREATE INDEX IF NOT EXISTS idx_commission_brand_settle ON commission_lines (settle_date, brand_id, store_id, party, party_id) INCLUDE (amount_cents)`
	if tx.Dialector.Name() != "postgres" {
		settlements = `CREATE INDEX IF NOT EXISTS idx_settlements_brand ON settlements (date, brand_id, store_id)`
		lines = `CREATE INDEX IF NOT EXISTS idx_commission_brand_settle ON commission_lines (settle_date, brand_id, store_id, party, party_id, amount_cents)`
	}
	for _, stmt := range []string{
		`CREATE INDEX IF NOT EXISTS idx_bindings_member ON bindings (member_id, created_at, id)`,
		settlements,
		lines,
	} {
		if err := tx.Exec(stmt).Error; err != nil {
			return err
		}
	}
	return nil
}
