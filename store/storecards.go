package store

import "context"

// StoreCards are what a page listing stores shows of them: the stores,
// their active guides and the contact ways of both, read in three
// queries whatever the number of stores (the store page, 门店H5).
type StoreCards struct {
	// Stores by id (without their brands).
	Stores map[string]RetailStore
	// Guides are each store's active guides, by id, at most the number
	// asked for.
	Guides map[string][]Guide
	// StoreWays and GuideWays are the contact ways of each store and
	// guide, oldest first.
	StoreWays map[string][]ContactWay
	GuideWays map[string][]ContactWay
}

// StoreCards reads the cards of the stores ids, with at most
// guidesPerStore active guides each. Unknown ids are left out.
func (s *Store) StoreCards(ctx context.Context, ids []string, guidesPerStore int) (*StoreCards, error) {
	out := &StoreCards{Stores: map[string]RetailStore{}, Guides: map[string][]Guide{}, StoreWays: map[string][]ContactWay{},
		GuideWays: map[string][]ContactWay{}}
	if len(ids) == 0 {
		return out, nil
	}
	db := s.db.WithContext(ctx)
	var stores []RetailStore
	if err := db.Where("id IN ?", ids).Find(&stores).Error; err != nil {
		return nil, translate(err)
	}
	for _, rs := range stores {
		out.Stores[rs.ID] = rs
	}
	var guides []Guide
	if err := db.Where("store_id IN ? AND active = ?", ids, true).Order("store_id, id").Find(&guides).Error; err != nil {
		return nil, translate(err)
	}
	guideIDs := []string{}
	for _, g := range guides {
		if len(out.Guides[g.StoreID]) < guidesPerStore {
			out.Guides[g.StoreID] = append(out.Guides[g.StoreID], g)
			guideIDs = append(guideIDs, g.ID)
		}
	}
	var ways []ContactWay
	q := db.Where("store_id IN ?", ids)
	if len(guideIDs) > 0 {
		q = db.Where("store_id IN ? OR guide_id IN ?", ids, guideIDs)
	}
	if err := q.Order("id").Find(&ways).Error; err != nil {
		return nil, translate(err)
	}
	for _, w := range ways {
		if w.StoreID != "" {
			out.StoreWays[w.StoreID] = append(out.StoreWays[w.StoreID], w)
		} else {
			out.GuideWays[w.GuideID] = append(out.GuideWays[w.GuideID], w)
		}
	}
	return out, nil
}
