package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Page selects a slice of a list ordered by id: the rows after After, at
// most Limit of them (default 100, at most 1000).
type Page struct {
	After string
	Limit int
}

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return 100
	case p.Limit > 1000:
		return 1000
	}
	return p.Limit
}

// Brands lists brands by id. A non-empty only restricts the list to that
// brand (brand-scoped callers).
func (s *Store) Brands(ctx context.Context, only string, p Page) ([]Brand, error) {
	q := s.db.WithContext(ctx).Order("id").Limit(p.limit())
	if p.After != "" {
		q = q.Where("id > ?", p.After)
	}
	if only != "" {
		q = q.Where("id = ?", only)
	}
	var out []Brand
	return out, translate(q.Find(&out).Error)
}

// Brand returns one brand.
func (s *Store) Brand(ctx context.Context, id string) (*Brand, error) {
	return byID[Brand](ctx, s.db, id)
}

// CreateBrand inserts a brand; ErrConflict if the id exists.
func (s *Store) CreateBrand(ctx context.Context, b *Brand) error {
	if err := b.Validate(); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := mustNotExist(tx, &Brand{}, "id", b.ID, "brand"); err != nil {
			return err
		}
		return translate(tx.Create(b).Error)
	})
}

// mustNotExist returns a conflict naming what exists when a row of model
// has column = value. The unique index still guards against races.
func mustNotExist(tx *gorm.DB, model any, column, value, what string) error {
	var n int64
	if err := tx.Model(model).Where(column+" = ?", value).Count(&n).Error; err != nil {
		return translate(err)
	}
	if n > 0 {
		return fmt.Errorf("%w: %s %q already exists", ErrConflict, what, value)
	}
	return nil
}

// UpsertBrands creates or updates brands in one transaction.
func (s *Store) UpsertBrands(ctx context.Context, brands []Brand) error {
	if len(brands) == 0 {
		return nil
	}
	return translate(s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoUpdates: clause.AssignmentColumns([]string{"name", "updated_at"}),
	}).CreateInBatches(brands, 500).Error)
}

// DeleteBrand deletes a brand that no store, member or token refers to.
func (s *Store) DeleteBrand(ctx context.Context, id string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, ref := range []struct{ model any }{{&StoreBrand{}}, {&Membership{}}, {&Binding{}}} {
			var n int64
			if err := tx.Model(ref.model).Where("brand_id = ?", id).Count(&n).Error; err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%w: brand %q is still used by stores or members", ErrConflict, id)
			}
		}
		res := tx.Where("id = ?", id).Delete(&Brand{})
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// RetailStores lists stores by id, with their brands. A non-empty brand
// lists only the stores carrying it.
func (s *Store) RetailStores(ctx context.Context, brand string, p Page) ([]RetailStore, error) {
	q := s.db.WithContext(ctx).Order("id").Limit(p.limit())
	if p.After != "" {
		q = q.Where("id > ?", p.After)
	}
	if brand != "" {
		// The page's store ids first, in order from the (brand_id,
		// store_id) index, then their rows: a semi-join ordered by the
		// stores' key would read the stores of every brand up to the
		// page's end (a brand carried by 1 store in 50 reads 50,000
		// stores for a page of 1,000).
		ids := s.db.Model(&StoreBrand{}).Select("store_id").Where("brand_id = ?", brand).Order("store_id").Limit(p.limit())
		if p.After != "" {
			ids = ids.Where("store_id > ?", p.After)
		}
		if s.dialect == "postgres" {
			// As one array: as a semi-join the planner merged the page's
			// ids with the stores' key, reading 50,000 stores for 1,000.
			q = q.Where("id = ANY(ARRAY(?))", ids)
		} else {
			q = q.Where("id IN (?)", ids)
		}
	}
	var out []RetailStore
	if err := q.Find(&out).Error; err != nil {
		return nil, translate(err)
	}
	return out, s.loadStoreBrands(ctx, s.db, out)
}

// RetailStore returns one store with its brands. A non-empty brand makes a
// store that does not carry it ErrNotFound.
func (s *Store) RetailStore(ctx context.Context, id, brand string) (*RetailStore, error) {
	var rs RetailStore
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&rs).Error; err != nil {
		return nil, translate(err)
	}
	one := []RetailStore{rs}
	if err := s.loadStoreBrands(ctx, s.db, one); err != nil {
		return nil, err
	}
	if brand != "" && !contains(one[0].BrandIDs, brand) {
		return nil, ErrNotFound
	}
	return &one[0], nil
}

func (s *Store) loadStoreBrands(ctx context.Context, db *gorm.DB, stores []RetailStore) error {
	if len(stores) == 0 {
		return nil
	}
	ids := make([]string, len(stores))
	idx := make(map[string]int, len(stores))
	for i := range stores {
		ids[i] = stores[i].ID
		idx[stores[i].ID] = i
		stores[i].BrandIDs = []string{}
	}
	var links []StoreBrand
	if err := db.WithContext(ctx).Where("store_id IN ?", ids).Order("store_id, brand_id").Find(&links).Error; err != nil {
		return translate(err)
	}
	for _, l := range links {
		i := idx[l.StoreID]
		stores[i].BrandIDs = append(stores[i].BrandIDs, l.BrandID)
	}
	return nil
}

// CreateRetailStore inserts a store and its brand links; ErrConflict if the
// id exists, a FieldError if a brand does not exist.
func (s *Store) CreateRetailStore(ctx context.Context, rs *RetailStore) error {
	if err := rs.Validate(); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := checkBrandsExist(tx, [][]string{rs.BrandIDs}); err != nil {
			return err
		}
		if err := mustNotExist(tx, &RetailStore{}, "id", rs.ID, "store"); err != nil {
			return err
		}
		if err := tx.Omit("BrandIDs").Create(rs).Error; err != nil {
			return translate(err)
		}
		return translate(tx.Create(storeBrandLinks([]RetailStore{*rs})).Error)
	})
}

// UpsertRetailStores creates or replaces stores and their brand sets in one
// transaction: all are written or none.
func (s *Store) UpsertRetailStores(ctx context.Context, stores []RetailStore) error {
	if len(stores) == 0 {
		return nil
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		sets := make([][]string, len(stores))
		ids := make([]string, len(stores))
		for i := range stores {
			sets[i], ids[i] = stores[i].BrandIDs, stores[i].ID
		}
		if err := checkBrandsExist(tx, sets); err != nil {
			return err
		}
		err := tx.Omit("BrandIDs").Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "id"}},
			DoUpdates: clause.AssignmentColumns([]string{"name", "lat", "lng", "address", "time_zone",
				"opening_hours", "active", "distributor", "updated_at"}),
		}).CreateInBatches(stores, 500).Error
		if err != nil {
			return translate(err)
		}
		for start := 0; start < len(ids); start += 500 {
			end := min(start+500, len(ids))
			if err := tx.Where("store_id IN ?", ids[start:end]).Delete(&StoreBrand{}).Error; err != nil {
				return translate(err)
			}
		}
		return translate(tx.CreateInBatches(storeBrandLinks(stores), 500).Error)
	})
}

// DeleteRetailStore deletes a store that has no guides.
func (s *Store) DeleteRetailStore(ctx context.Context, id string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Guide{}).Where("store_id = ?", id).Count(&n).Error; err != nil {
			return translate(err)
		}
		if n > 0 {
			return fmt.Errorf("%w: store %q still has %d guides; move or delete them first", ErrConflict, id, n)
		}
		if err := tx.Where("store_id = ?", id).Delete(&StoreBrand{}).Error; err != nil {
			return translate(err)
		}
		res := tx.Where("id = ?", id).Delete(&RetailStore{})
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return nil
	})
}

func storeBrandLinks(stores []RetailStore) []StoreBrand {
	var links []StoreBrand
	for _, rs := range stores {
		for _, b := range rs.BrandIDs {
			links = append(links, StoreBrand{StoreID: rs.ID, BrandID: b})
		}
	}
	return links
}

// checkBrandsExist returns a FieldError naming the first unknown brand.
func checkBrandsExist(tx *gorm.DB, sets [][]string) error {
	want := map[string]bool{}
	for _, set := range sets {
		for _, b := range set {
			want[b] = true
		}
	}
	ids := make([]string, 0, len(want))
	for b := range want {
		ids = append(ids, b)
	}
	var found []string
	for start := 0; start < len(ids); start += 500 {
		var part []string
		if err := tx.Model(&Brand{}).Where("id IN ?", ids[start:min(start+500, len(ids))]).Pluck("id", &part).Error; err != nil {
			return translate(err)
		}
		found = append(found, part...)
	}
	if len(found) == len(ids) {
		return nil
	}
	have := make(map[string]bool, len(found))
	for _, b := range found {
		have[b] = true
	}
	for i, set := range sets {
		for j, b := range set {
			if !have[b] {
				f := fmt.Sprintf("brands[%d]", j)
				if len(sets) > 1 {
					return &RowError{Row: i, Err: invalid(f, "unknown brand %q", b)}
				}
				return invalid(f, "unknown brand %q", b)
			}
		}
	}
	return nil
}

// RowError says which row of a bulk write was refused.
type RowError struct {
	Row int
	Err error
}

func (e *RowError) Error() string { return fmt.Sprintf("row %d: %v", e.Row, e.Err) }
func (e *RowError) Unwrap() error { return e.Err }

// Guides lists guides by id. A non-empty brand lists only guides of stores
// carrying it; a non-empty storeID only that store's guides.
func (s *Store) Guides(ctx context.Context, brand, storeID string, p Page) ([]Guide, error) {
	db := s.db.WithContext(ctx)
	q := db.Order("id").Limit(p.limit())
	if p.After != "" {
		q = q.Where("id > ?", p.After)
	}
	if storeID != "" {
		q = q.Where("store_id = ?", storeID)
	}
	var out []Guide
	var err error
	if brand != "" && storeID == "" {
		// A brand's guides: those of its stores, gathered through the
		// (brand_id, store_id) index, then the page's top by id. Left to
		// itself the planner walks every guide in id order probing each
		// one's store, which reads the guides of all brands up to the
		// page's end.
		after := ""
		if p.After != "" {
			after = "AND g.id > @after"
		}
		sql := `WITH bg AS MATERIALIZED (SELECT g.* FROM guides AS g JOIN store_brands AS sb ON sb.store_id = g.store_id
			WHERE sb.brand_id = @brand ` + after + `)
			SELECT * FROM bg ORDER BY id LIMIT @limit`
		if s.dialect == "postgres" {
			// The brand's store ids as one array, their guides from the
			// store_id index in one scan: the join hashed every guide of
			// every brand (a parallel scan of 600,000 guides, 144 ms for
			// a brand's 12,000 under load 12, where this took 44-69 ms).
			sql = `SELECT g.* FROM guides AS g WHERE g.store_id = ANY(ARRAY(SELECT sb.store_id FROM store_brands AS sb WHERE sb.brand_id = @brand))
				` + after + ` ORDER BY g.id LIMIT @limit`
		}
		err = db.Raw(sql, map[string]any{"brand": brand, "after": p.After, "limit": p.limit()}).Scan(&out).Error
	} else {
		if brand != "" {
			q = q.Where("store_id IN (?)", s.db.Model(&StoreBrand{}).Select("store_id").Where("brand_id = ?", brand))
		}
		err = q.Find(&out).Error
	}
	if err != nil {
		return nil, translate(err)
	}
	return out, loadGuideIdentities(s.db.WithContext(ctx), guidePtrs(out))
}

// Guide returns one guide; with a non-empty brand, a guide whose store does
// not carry it is ErrNotFound.
func (s *Store) Guide(ctx context.Context, id, brand string) (*Guide, error) {
	q := s.db.WithContext(ctx).Where("id = ?", id)
	if brand != "" {
		q = q.Where("store_id IN (?)", s.db.Model(&StoreBrand{}).Select("store_id").Where("brand_id = ?", brand))
	}
	var g Guide
	if err := q.Take(&g).Error; err != nil {
		return nil, translate(err)
	}
	return &g, loadGuideIdentities(s.db.WithContext(ctx), []*Guide{&g})
}

// CreateGuide inserts a guide with its identities; ErrConflict if the id
// or an identity is taken, a FieldError if the store does not exist.
func (s *Store) CreateGuide(ctx context.Context, g *Guide) error {
	if err := g.Validate(); err != nil {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := checkStoresExist(tx, []Guide{*g}); err != nil {
			return err
		}
		if err := mustNotExist(tx, &Guide{}, "id", g.ID, "guide"); err != nil {
			return err
		}
		if err := checkIdentitiesFree(tx, []Guide{*g}); err != nil {
			return err
		}
		if err := tx.Omit("Store").Create(g).Error; err != nil {
			return translate(err)
		}
		return replaceGuideIdentities(tx, []Guide{*g}, g.CreatedAt)
	})
}

// UpsertGuides creates or updates guides in one transaction; each guide's
// identities become the ones it carries. ErrConflict when another guide
// has one of them.
func (s *Store) UpsertGuides(ctx context.Context, guides []Guide) error {
	if len(guides) == 0 {
		return nil
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := checkStoresExist(tx, guides); err != nil {
			return err
		}
		if err := checkIdentitiesFree(tx, guides); err != nil {
			return err
		}
		err := tx.Omit("Store").Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "id"}},
			DoUpdates: clause.AssignmentColumns([]string{"store_id", "name", "capacity", "active", "left_at", "updated_at"}),
		}).CreateInBatches(guides, 500).Error
		if err != nil {
			return translate(err)
		}
		return replaceGuideIdentities(tx, guides, time.Now().UTC())
	})
}

// DeleteGuide deletes a guide with no current bindings.
func (s *Store) DeleteGuide(ctx context.Context, id string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Binding{}).Where("guide_id = ? AND ended_at IS NULL", id).Count(&n).Error; err != nil {
			return translate(err)
		}
		if n > 0 {
			return fmt.Errorf("%w: guide %q is bound to %d members; reassign them first", ErrConflict, id, n)
		}
		res := tx.Where("id = ?", id).Delete(&Guide{})
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return nil
	})
}

func checkStoresExist(tx *gorm.DB, guides []Guide) error {
	want := map[string]bool{}
	for _, g := range guides {
		want[g.StoreID] = true
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	have := map[string]bool{}
	for start := 0; start < len(ids); start += 500 {
		var part []string
		if err := tx.Model(&RetailStore{}).Where("id IN ?", ids[start:min(start+500, len(ids))]).Pluck("id", &part).Error; err != nil {
			return translate(err)
		}
		for _, id := range part {
			have[id] = true
		}
	}
	for i, g := range guides {
		if !have[g.StoreID] {
			err := invalid("store_id", "unknown store %q", g.StoreID)
			if len(guides) > 1 {
				return &RowError{Row: i, Err: err}
			}
			return err
		}
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// isConflict reports whether err is a unique or reference violation.
func isConflict(err error) bool { return errors.Is(err, ErrConflict) }

// MissingIDs returns which of ids have no row in table "brands" or
// "stores", for checking a whole import's references before writing.
func (s *Store) MissingIDs(ctx context.Context, table string, ids []string) ([]string, error) {
	var model any
	switch table {
	case "brands":
		model = &Brand{}
	case "stores":
		model = &RetailStore{}
	default:
		return nil, fmt.Errorf("missing ids: unknown table %q", table)
	}
	have := map[string]bool{}
	for start := 0; start < len(ids); start += 500 {
		var part []string
		if err := s.db.WithContext(ctx).Model(model).Where("id IN ?", ids[start:min(start+500, len(ids))]).Pluck("id", &part).Error; err != nil {
			return nil, translate(err)
		}
		for _, id := range part {
			have[id] = true
		}
	}
	var missing []string
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return missing, nil
}
