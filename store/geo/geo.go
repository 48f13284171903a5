package geo

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// EarthRadius is the radius of the sphere distances are measured on, in
// metres: the IUGG mean Earth radius R₁. (PostGIS geography on the sphere
// uses 6371008.7714 m; distances differ by 4.5 parts in 10⁹.)
const EarthRadius = 6371008.8

// Site is a store as the index sees it.
type Site struct {
	// ID identifies the site; it must not be empty.
	ID string
	// Lat and Lng are WGS-84 degrees, in [-90, 90] and [-180, 180].
	Lat, Lng float64
	// Brands are the brands the site carries.
	Brands []string
	// Active is false for a closed site: it is kept (Len counts it) but
	// never visited.
	Active bool
}

// Hit is a site found by NearestN and its great-circle distance in metres.
type Hit struct {
	ID    string
	DistM float64
}

// Index is an in-memory spatial index of sites: for a point and a brand it
// visits the active sites carrying the brand nearest-first by great-circle
// distance. It is safe for concurrent use. Lookups never wait for a writer:
// they read an immutable snapshot, and writers (Build, Upsert, Remove; one
// at a time) publish a new one, copying only the brands they change.
//
// The zero Index is empty and ready to use.
type Index struct {
	mu    sync.Mutex      // serialises writers
	sites map[string]Site // every site, by id; guarded by mu
	cur   atomic.Pointer[snapshot]
}

// snapshot is what lookups read. It is never modified once published.
type snapshot struct {
	brands map[string]*shard
	sites  int
}

// shard holds the active sites of one brand: a bulk-loaded base tree, a
// small delta tree of sites added since, and the base positions of sites
// removed since (sorted). When delta and dead outgrow compactAt, the shard
// is rebuilt into a single base tree.
type shard struct {
	base, delta *tree
	dead        []int32
}

func (sh *shard) len() int {
	return sh.base.len() - len(sh.dead) + sh.delta.len()
}

// compactAt is the size of delta plus dead at which a shard is rebuilt:
// small enough that lookups barely notice the delta, large enough that the
// O(n) rebuild is amortised over many updates. Each update rebuilds the
// delta (O(d log d)), so the total is lowest in between: of base/16 to
// base/1024, base/64 was fastest in BenchmarkUpsert.
func compactAt(base int) int {
	return 64 + base/64
}

// New returns an empty index.
func New() *Index {
	return &Index{}
}

// Len returns the number of sites in the index, active or not.
func (ix *Index) Len() int {
	if s := ix.cur.Load(); s != nil {
		return s.sites
	}
	return 0
}

// BrandLen returns the number of active sites carrying brand.
func (ix *Index) BrandLen(brand string) int {
	if s := ix.cur.Load(); s != nil {
		if sh := s.brands[brand]; sh != nil {
			return sh.len()
		}
	}
	return 0
}

// Validate reports whether the index accepts s.
func (s *Site) Validate() error {
	var errs []error
	if s.ID == "" {
		errs = append(errs, errors.New("id is empty"))
	}
	if !(s.Lat >= -90 && s.Lat <= 90) {
		errs = append(errs, fmt.Errorf("lat %v is out of range [-90, 90]", s.Lat))
	}
	if !(s.Lng >= -180 && s.Lng <= 180) {
		errs = append(errs, fmt.Errorf("lng %v is out of range [-180, 180]", s.Lng))
	}
	if slices.Contains(s.Brands, "") {
		errs = append(errs, errors.New("empty brand"))
	}
	return errors.Join(errs...)
}

// normalize returns a copy of s that shares no memory with the caller,
// with brands sorted and without duplicates.
func normalize(s Site) Site {
	s.Brands = slices.Clone(s.Brands)
	slices.Sort(s.Brands)
	s.Brands = slices.Compact(s.Brands)
	return s
}

// Build replaces the contents of the index with sites, in bulk. A later
// site replaces an earlier one with the same ID. If any site is invalid,
// Build returns an error naming it and leaves the index unchanged. Lookups
// keep reading the previous contents until Build returns.
func (ix *Index) Build(sites []Site) error {
	for i := range sites {
		if err := sites[i].Validate(); err != nil {
			return fmt.Errorf("building geo index: site %d (%q): %w", i, sites[i].ID, err)
		}
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()

	all := make(map[string]Site, len(sites))
	for i := range sites {
		all[sites[i].ID] = normalize(sites[i])
	}
	type points struct {
		pts []vec
		ids []string
	}
	groups := map[string]*points{}
	for _, s := range all {
		if !s.Active {
			continue
		}
		p := toVec(s.Lat, s.Lng)
		for _, b := range s.Brands {
			g := groups[b]
			if g == nil {
				g = &points{}
				groups[b] = g
			}
			g.pts = append(g.pts, p)
			g.ids = append(g.ids, s.ID)
		}
	}

	// Brands are independent: build them in parallel, largest first.
	names := make([]string, 0, len(groups))
	for b := range groups {
		names = append(names, b)
	}
	slices.SortFunc(names, func(a, b string) int { return len(groups[b].pts) - len(groups[a].pts) })
	shards := make([]*shard, len(names))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(names)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(names) {
					return
				}
				g := groups[names[i]]
				shards[i] = &shard{base: buildTree(g.pts, g.ids)}
			}
		})
	}
	wg.Wait()

	snap := &snapshot{brands: make(map[string]*shard, len(names)), sites: len(all)}
	for i, b := range names {
		snap.brands[b] = shards[i]
	}
	ix.sites = all
	ix.cur.Store(snap)
	return nil
}

// Upsert adds s to the index or replaces the site with its ID.
func (ix *Index) Upsert(s Site) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("upserting site %q into geo index: %w", s.ID, err)
	}
	s = normalize(s)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old, had := ix.sites[s.ID]
	if had && old.Lat == s.Lat && old.Lng == s.Lng && old.Active == s.Active && slices.Equal(old.Brands, s.Brands) {
		return nil
	}
	if ix.sites == nil {
		ix.sites = map[string]Site{}
	}
	ix.sites[s.ID] = s
	ix.replace(old, had, s, true)
	return nil
}

// Remove deletes the site with the given id and reports whether it was in
// the index.
func (ix *Index) Remove(id string) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old, had := ix.sites[id]
	if !had {
		return false
	}
	delete(ix.sites, id)
	ix.replace(old, true, Site{}, false)
	return true
}

// replace publishes a snapshot in which old (if hadOld) is replaced by s
// (if hasNew). Only the shards of brands whose membership or position
// changes are copied. Called with mu held, after ix.sites is updated.
func (ix *Index) replace(old Site, hadOld bool, s Site, hasNew bool) {
	cur := ix.cur.Load()
	if cur == nil {
		cur = &snapshot{}
	}
	next := &snapshot{brands: make(map[string]*shard, len(cur.brands)+len(s.Brands)), sites: len(ix.sites)}
	for b, sh := range cur.brands {
		next.brands[b] = sh
	}
	oldIn := hadOld && old.Active
	newIn := hasNew && s.Active
	moved := old.Lat != s.Lat || old.Lng != s.Lng
	var oldP, newP vec
	if oldIn {
		oldP = toVec(old.Lat, old.Lng)
	}
	if newIn {
		newP = toVec(s.Lat, s.Lng)
	}
	edit := func(b string, rm, add bool) {
		if rm && add && !moved {
			return
		}
		sh := next.brands[b]
		if sh == nil {
			sh = &shard{}
		}
		sh = sh.edit(old.ID, oldP, rm, s.ID, newP, add)
		if sh.len() == 0 {
			delete(next.brands, b)
		} else {
			next.brands[b] = sh
		}
	}
	for _, b := range unionSorted(old.Brands, s.Brands) {
		edit(b, oldIn && slices.Contains(old.Brands, b), newIn && slices.Contains(s.Brands, b))
	}
	ix.cur.Store(next)
}

func unionSorted(a, b []string) []string {
	u := append(slices.Clone(a), b...)
	slices.Sort(u)
	return slices.Compact(u)
}

// edit returns a copy of sh without rmID at rmP (if rm) and with addID at
// addP (if add). sh itself is not modified: lookups may be reading it.
func (sh *shard) edit(rmID string, rmP vec, rm bool, addID string, addP vec, add bool) *shard {
	var dpts []vec
	var dids []string
	if d := sh.delta; d != nil {
		dpts = slices.Clone(d.pts)
		dids = slices.Clone(d.ids)
	}
	dead := sh.dead
	if rm {
		if i := slices.Index(dids, rmID); i >= 0 {
			dpts = slices.Delete(dpts, i, i+1)
			dids = slices.Delete(dids, i, i+1)
		} else if pos := sh.base.find(rmP, rmID); pos >= 0 {
			i, _ := slices.BinarySearch(dead, int32(pos))
			dead = slices.Insert(slices.Clone(dead), i, int32(pos))
		}
	}
	if add {
		dpts = append(dpts, addP)
		dids = append(dids, addID)
	}
	if len(dpts)+len(dead) <= compactAt(sh.base.len()) {
		return &shard{base: sh.base, delta: buildTree(dpts, dids), dead: dead}
	}
	// Compact: one base tree of the live base points and the delta.
	n := sh.base.len() - len(dead) + len(dpts)
	pts := make([]vec, 0, n)
	ids := make([]string, 0, n)
	if b := sh.base; b != nil {
		for i := range b.pts {
			if _, gone := slices.BinarySearch(dead, int32(i)); !gone {
				pts = append(pts, b.pts[i])
				ids = append(ids, b.ids[i])
			}
		}
	}
	pts = append(pts, dpts...)
	ids = append(ids, dids...)
	return &shard{base: buildTree(pts, ids)}
}

// Nearest calls visit for the active sites carrying brand, nearest first by
// great-circle distance from (lat, lng), with the distance in metres, until
// visit returns false or no site within maxKm kilometres is left (maxKm ≤ 0:
// no limit). Sites at equal distance come in order of ID. An invalid point
// (lat outside [-90, 90], lng not finite) visits nothing.
//
// The walk reads one snapshot of the index: updates made while it runs
// (visit may make them) are not seen by it.
func (ix *Index) Nearest(lat, lng float64, brand string, maxKm float64, visit func(id string, distM float64) bool) {
	w, maxM := ix.start(lat, lng, brand, maxKm)
	if w == nil {
		return
	}
	defer w.release()
	for {
		id, key, ok := w.next()
		if !ok {
			return
		}
		d := chordToMeters(key)
		if d > maxM {
			continue // within the rounding margin of limit
		}
		if !visit(id, d) {
			return
		}
	}
}

// NearestN returns up to n of the sites Nearest would visit, in its order.
func (ix *Index) NearestN(lat, lng float64, brand string, maxKm float64, n int) []Hit {
	if n <= 0 {
		return nil
	}
	w, maxM := ix.start(lat, lng, brand, maxKm)
	if w == nil {
		return nil
	}
	defer w.release()
	hits := make([]Hit, 0, min(n, 64))
	for len(hits) < n {
		id, key, ok := w.next()
		if !ok {
			break
		}
		if d := chordToMeters(key); d <= maxM {
			hits = append(hits, Hit{ID: id, DistM: d})
		}
	}
	if len(hits) == 0 {
		return nil
	}
	return hits
}

// start prepares a walk, or returns nil if there is nothing to visit.
func (ix *Index) start(lat, lng float64, brand string, maxKm float64) (*walker, float64) {
	snap := ix.cur.Load()
	if snap == nil {
		return nil, 0
	}
	sh := snap.brands[brand]
	if sh == nil || !(lat >= -90 && lat <= 90) || math.IsNaN(lng) || math.IsInf(lng, 0) {
		return nil, 0
	}
	maxM, limit := math.Inf(1), 4.0
	if maxKm > 0 && !math.IsInf(maxKm, 1) {
		maxM = maxKm * 1000
		// Widened so that rounding never prunes a site within maxM; the
		// exact test on metres is in the caller.
		limit = min(4, metersToChord2(maxM*(1+1e-9)))
	}
	w := walkers.Get().(*walker)
	w.reset(sh, toVec(lat, lng), limit)
	return w, maxM
}

// Distance returns the great-circle distance in metres between two points
// given in degrees, by the haversine formula on the sphere of radius
// EarthRadius. It agrees with the distances Nearest reports.
func Distance(lat1, lng1, lat2, lng2 float64) float64 {
	φ1, φ2 := lat1*(math.Pi/180), lat2*(math.Pi/180)
	sdφ := math.Sin((φ2 - φ1) / 2)
	sdλ := math.Sin((lng2 - lng1) * (math.Pi / 180) / 2)
	a := sdφ*sdφ + math.Cos(φ1)*math.Cos(φ2)*sdλ*sdλ
	return 2 * EarthRadius * math.Asin(math.Sqrt(min(1, a)))
}
