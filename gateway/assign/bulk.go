package assign

import (
	"context"
	"fmt"
	"sync"

	"github.com/scrmgw/scrmgw/store"
)

// Located is a member to assign in bulk, with where they are.
type Located struct {
	MemberID int64
	Lat, Lng float64
}

// BulkResult says what a bulk assignment did.
type BulkResult struct {
	Assigned int
	// AlreadyBound members kept their current binding.
	AlreadyBound int
	// Unassigned members had no guide with room within reach.
	Unassigned []int64
}

// bulkBatch is how many bindings one statement writes (7 parameters each;
// PostgreSQL allows 65535).
const bulkBatch = 2000

// AssignBulk binds many members of a brand to the nearest guides with
// room, as Assign does one by one, but deciding in memory (guides' loads
// loaded once) and writing in batched statements from several goroutines.
// It is for imports and back-fills: run it while no other assignment for
// the brand runs, since it decides from the loads it read at the start;
// the stored loads are raised by exactly what it wrote. Members already
// bound keep their guide.
func (a *Assigner) AssignBulk(ctx context.Context, brand string, members []Located, writers int) (*BulkResult, error) {
	loads, err := a.store.GuideLoads(ctx, brand)
	if err != nil {
		return nil, fmt.Errorf("loading guides: %w", err)
	}
	byStore := map[string][]*store.GuideLoad{}
	for i := range loads {
		byStore[loads[i].StoreID] = append(byStore[loads[i].StoreID], &loads[i])
	}
	res := &BulkResult{}
	var pending []store.Binding
	for _, m := range members {
		var chosen *store.GuideLoad
		var dist float64
		a.index.Nearest(m.Lat, m.Lng, brand, a.opts.MaxDistanceKm, func(storeID string, d float64) bool {
			var best *store.GuideLoad
			for _, g := range byStore[storeID] {
				if g.Capacity > 0 && g.Bound >= g.Capacity {
					continue
				}
				if best == nil || g.Bound < best.Bound {
					best = g // guides are in id order: ties keep the lower id
				}
			}
			if best == nil {
				return true // full: the next store
			}
			chosen, dist = best, d
			return false
		})
		if chosen == nil {
			res.Unassigned = append(res.Unassigned, m.MemberID)
			continue
		}
		chosen.Bound++
		pending = append(pending, store.Binding{MemberID: m.MemberID, BrandID: brand, GuideID: chosen.ID,
			StoreID: chosen.StoreID, Reason: ReasonNearest, DistanceM: dist})
	}
	if writers < 1 {
		writers = 1
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		deltas   = map[string]int{}
		batches  = make(chan []store.Binding)
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				written, err := a.store.InsertBindings(ctx, b)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				res.Assigned += len(written)
				res.AlreadyBound += len(b) - len(written)
				for _, x := range written {
					deltas[x.GuideID]++
				}
				mu.Unlock()
			}
		}()
	}
	for start := 0; start < len(pending); start += bulkBatch {
		batches <- pending[start:min(start+bulkBatch, len(pending))]
	}
	close(batches)
	wg.Wait()
	if firstErr != nil {
		return res, fmt.Errorf("writing bindings: %w", firstErr)
	}
	if err := a.store.AddGuideLoads(ctx, deltas); err != nil {
		return res, fmt.Errorf("counting guides' loads: %w", err)
	}
	return res, nil
}
