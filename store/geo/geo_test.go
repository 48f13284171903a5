package geo

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// model is the reference the index is checked against: a plain map of
// sites, searched by brute force.
type model map[string]modelSite

type modelSite struct {
	Site
	p vec
}

func (m model) put(s Site) { m[s.ID] = modelSite{normalize(s), toVec(s.Lat, s.Lng)} }

// nearest is the brute-force answer: every eligible site, sorted by the
// same key the index orders by (squared chord, then id), cut at maxKm and n
// (n < 0: no cut).
func (m model) nearest(lat, lng float64, brand string, maxKm float64, n int) []Hit {
	q := toVec(lat, lng)
	type keyed struct {
		key float64
		id  string
	}
	less := func(a, b keyed) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.id, b.id))
	}
	var all []keyed
	for _, s := range m {
		if !s.Active || !slices.Contains(s.Brands, brand) {
			continue
		}
		k := keyed{chord2(&q, &s.p), s.ID}
		if n < 0 || n > 64 {
			all = append(all, k)
			continue
		}
		// Keep only the n smallest, sorted (insertion).
		if len(all) == n && less(k, all[n-1]) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(all, k, less)
		all = slices.Insert(all, i, k)
		if len(all) > n {
			all = all[:n]
		}
	}
	slices.SortFunc(all, less)
	var hits []Hit
	for _, k := range all {
		if len(hits) == n {
			break
		}
		d := chordToMeters(k.key)
		if maxKm > 0 && d > maxKm*1000 {
			break
		}
		hits = append(hits, Hit{k.id, d})
	}
	return hits
}

// count is the number of active sites carrying brand.
func (m model) count(brand string) int {
	n := 0
	for _, s := range m {
		if s.Active && slices.Contains(s.Brands, brand) {
			n++
		}
	}
	return n
}

// scenario makes random sites and queries of one kind.
type scenario struct {
	name  string
	point func(r *rand.Rand) (lat, lng float64)
}

func uniformSphere(r *rand.Rand) (float64, float64) {
	return math.Asin(2*r.Float64()-1) * 180 / math.Pi, -180 + 360*r.Float64()
}

var scenarios = []scenario{
	{"sphere", uniformSphere},
	{"antimeridian", func(r *rand.Rand) (float64, float64) {
		lng := 180 - 2*r.Float64()
		if r.IntN(2) == 0 {
			lng = -lng
		}
		if r.IntN(20) == 0 {
			lng = 180 * float64(1-2*r.IntN(2)) // exactly ±180
		}
		return -30 + 60*r.Float64(), lng
	}},
	{"north-pole", func(r *rand.Rand) (float64, float64) {
		lat := 90 - 3*r.Float64()*r.Float64()
		if r.IntN(20) == 0 {
			lat = 90
		}
		return lat, -180 + 360*r.Float64()
	}},
	{"south-pole", func(r *rand.Rand) (float64, float64) {
		return -90 + 2*r.Float64(), -180 + 360*r.Float64()
	}},
	{"duplicates", func(r *rand.Rand) (float64, float64) {
		// Few distinct locations: many sites share exact coordinates.
		return float64(r.IntN(5)) * 0.01, 100 + float64(r.IntN(5))*0.01
	}},
	{"tiny", func(r *rand.Rand) (float64, float64) {
		// Sites centimetres apart.
		return 31.2304 + r.Float64()*1e-6, 121.4737 + r.Float64()*1e-6
	}},
	{"china", func(r *rand.Rand) (float64, float64) {
		return 18 + 35*r.Float64(), 73 + 62*r.Float64()
	}},
}

var testBrands = []string{"a", "b", "c"}

func randomSite(r *rand.Rand, id string, point func(*rand.Rand) (float64, float64)) Site {
	lat, lng := point(r)
	var brands []string
	for _, b := range testBrands {
		if r.IntN(2) == 0 {
			brands = append(brands, b)
		}
	}
	if r.IntN(10) == 0 {
		brands = append(brands, brands...) // duplicates are tolerated
	}
	return Site{ID: id, Lat: lat, Lng: lng, Brands: brands, Active: r.IntN(10) != 0}
}

// check compares a lookup with the brute-force answer: same ids in the same
// order and the same distances, bit for bit; and the distances agree with
// the independent haversine formula.
func check(t *testing.T, ix *Index, m model, lat, lng float64, brand string, maxKm float64, n int) {
	t.Helper()
	want := m.nearest(lat, lng, brand, maxKm, n)
	got := ix.NearestN(lat, lng, brand, maxKm, n)
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Fatalf("NearestN(%v, %v, %q, %v, %d) mismatch (-brute force +index):\n%s", lat, lng, brand, maxKm, n, diff)
	}
	for i, h := range got {
		s := m[h.ID]
		hv := Distance(lat, lng, s.Lat, s.Lng)
		if tol := 1e-6 + 1e-9*hv; math.Abs(hv-h.DistM) > tol && h.DistM < 19_000_000 {
			t.Fatalf("hit %d %s: distance %v, haversine %v", i, h.ID, h.DistM, hv)
		}
		if i > 0 && h.DistM < got[i-1].DistM {
			t.Fatalf("hit %d %s: distance %v after %v", i, h.ID, h.DistM, got[i-1].DistM)
		}
	}
	// Nearest visits the same sequence and stops when told to.
	stop := r2n(len(want))
	var visited []Hit
	ix.Nearest(lat, lng, brand, maxKm, func(id string, d float64) bool {
		visited = append(visited, Hit{id, d})
		return len(visited) < stop
	})
	if len(want) > stop {
		want = want[:stop]
	}
	if diff := gocmp.Diff(want, visited); diff != "" {
		t.Fatalf("Nearest(%v, %v, %q, %v) mismatch (-brute force +index):\n%s", lat, lng, brand, maxKm, diff)
	}
}

// r2n is where check's Nearest stops: after 1, 2, 3, or all hits.
func r2n(n int) int { return max(1, min(n, 1+n%4)) }

func TestNearestMatchesBruteForce(t *testing.T) {
	for si, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(uint64(si), 42))
			var sites []Site
			m := model{}
			for range 1500 {
				s := randomSite(r, fmt.Sprintf("s%04d", r.IntN(1400)), sc.point) // some ids repeat
				sites = append(sites, s)
				m.put(s)
			}
			ix := New()
			if err := ix.Build(sites); err != nil {
				t.Fatal(err)
			}
			if ix.Len() != len(m) {
				t.Fatalf("Len() = %d, want %d", ix.Len(), len(m))
			}
			for i := range 1500 {
				lat, lng := sc.point(r)
				if i%3 == 0 {
					lat, lng = uniformSphere(r)
				}
				maxKm := 0.0
				if i%4 == 1 {
					maxKm = r.Float64() * 3000
				}
				n := 1 + r.IntN(12)
				if i%50 == 0 {
					n = 2000 // the whole brand
				}
				check(t, ix, m, lat, lng, testBrands[r.IntN(len(testBrands))], maxKm, n)
			}
		})
	}
}

// TestUpdatesMatchBruteForce interleaves upserts (new sites, moves, brand
// and active changes, no-ops) and removals with lookups, through several
// compactions, against the brute-force model.
func TestUpdatesMatchBruteForce(t *testing.T) {
	for si, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(uint64(si), 7))
			m := model{}
			ix := New()
			if si%2 == 0 { // start from a bulk build, or from nothing
				var sites []Site
				for i := range 800 {
					s := randomSite(r, fmt.Sprintf("s%04d", i), sc.point)
					sites = append(sites, s)
					m.put(s)
				}
				if err := ix.Build(sites); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 1000 {
				id := fmt.Sprintf("s%04d", r.IntN(1000))
				switch op := r.IntN(10); {
				case op < 6:
					s := randomSite(r, id, sc.point)
					if old, ok := m[id]; ok && op == 0 { // same place, other brands or state
						s.Lat, s.Lng = old.Lat, old.Lng
					}
					if err := ix.Upsert(s); err != nil {
						t.Fatal(err)
					}
					m.put(s)
				case op < 7:
					if old, ok := m[id]; ok { // no-op upsert
						if err := ix.Upsert(old.Site); err != nil {
							t.Fatal(err)
						}
					}
				default:
					_, ok := m[id]
					if got := ix.Remove(id); got != ok {
						t.Fatalf("Remove(%s) = %v, want %v", id, got, ok)
					}
					delete(m, id)
				}
				if ix.Len() != len(m) {
					t.Fatalf("after %d updates: Len() = %d, want %d", i, ix.Len(), len(m))
				}
				lat, lng := sc.point(r)
				brand := testBrands[r.IntN(len(testBrands))]
				check(t, ix, m, lat, lng, brand, 0, 1+r.IntN(5))
				if want := m.count(brand); ix.BrandLen(brand) != want {
					t.Fatalf("BrandLen(%s) = %d, want %d", brand, ix.BrandLen(brand), want)
				}
			}
		})
	}
}

// TestSyntheticMatchesBruteForce checks the benchmark data set itself.
func TestSyntheticMatchesBruteForce(t *testing.T) {
	sites := Synthetic(20000, 1)
	m := model{}
	for _, s := range sites {
		m.put(s)
	}
	ix := New()
	if err := ix.Build(sites); err != nil {
		t.Fatal(err)
	}
	for _, q := range SyntheticQueries(150, 1) {
		check(t, ix, m, q.Lat, q.Lng, q.Brand, 0, 5)
	}
}

// TestLinearScan checks the benchmark baseline against the index.
func TestLinearScan(t *testing.T) {
	sites := Synthetic(5000, 3)
	ix := New()
	if err := ix.Build(sites); err != nil {
		t.Fatal(err)
	}
	l := NewLinearScan(sites)
	for _, q := range SyntheticQueries(300, 3) {
		id, d, ok := l.Nearest(q.Lat, q.Lng, q.Brand)
		var want []Hit
		if ok {
			want = []Hit{{id, d}}
		}
		if diff := gocmp.Diff(want, ix.NearestN(q.Lat, q.Lng, q.Brand, 0, 1)); diff != "" {
			t.Fatalf("query %+v (-linear +index):\n%s", q, diff)
		}
	}
	if _, _, ok := l.Nearest(30, 120, "no-such-brand"); ok {
		t.Fatal("unknown brand found")
	}
}

// TestVisitMayWrite: visit runs with no lock held, so it may update the
// index; the walk goes on over the snapshot it started with.
func TestVisitMayWrite(t *testing.T) {
	ix := New()
	if err := ix.Build([]Site{
		{ID: "a", Lat: 30, Lng: 120, Brands: []string{"x"}, Active: true},
		{ID: "b", Lat: 31, Lng: 121, Brands: []string{"x"}, Active: true},
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	ix.Nearest(30, 120, "x", 0, func(id string, _ float64) bool {
		got = append(got, id)
		ix.Remove("b")
		return true
	})
	if diff := gocmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Errorf("walk (-want +got):\n%s", diff)
	}
	if ix.Len() != 1 {
		t.Errorf("Len() = %d after Remove", ix.Len())
	}
}

// TestBoxBound checks the walk's invariant directly: the box bound never
// exceeds the chord to a point in the box, in floating point, including
// points at the box's faces.
func TestBoxBound(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for i := range 20000 {
		sc := scenarios[i%len(scenarios)]
		pts := make([]vec, 1+r.IntN(8))
		for j := range pts {
			pts[j] = toVec(sc.point(r))
		}
		b := box{pts[0], pts[0]}
		for j := range pts {
			b.add(&pts[j])
		}
		q := toVec(uniformSphere(r))
		if i%2 == 0 {
			q = toVec(sc.point(r))
		}
		var nd node
		nd.setBox(b)
		lb := nd.dist2(&q)
		for j := range pts {
			if c := chord2(&q, &pts[j]); lb > c {
				t.Fatalf("bound %v > chord %v", lb, c)
			}
		}
		if q == pts[0] && lb != 0 {
			t.Fatalf("bound %v for a point in the box", lb)
		}
	}
}

// TestTreeInvariants checks that every point lies in its leaf's box and
// every box in its parent's, and that each point appears once.
func TestTreeInvariants(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 255, 256, 257, 5000, 70000} {
		sites := Synthetic(n, int64(n))
		pts := make([]vec, n)
		ids := make([]string, n)
		for i, s := range sites {
			pts[i], ids[i] = toVec(s.Lat, s.Lng), s.ID
		}
		tr := buildTree(pts, ids)
		seen := map[string]bool{}
		var walk func(i int32, parent *node, depth int) int
		walk = func(i int32, parent *node, depth int) int {
			nd := &tr.nodes[i]
			for a := range 3 {
				if parent != nil && (nd.lo[a] < parent.lo[a] || nd.hi[a] > parent.hi[a]) {
					t.Fatalf("n=%d: node %d outside its parent", n, i)
				}
			}
			if nd.leaf {
				for j := nd.first; j < nd.first+int32(nd.count); j++ {
					if nd.dist2(&tr.pts[j]) > 0 {
						t.Fatalf("n=%d: point %d outside its leaf", n, j)
					}
					if seen[tr.ids[j]] {
						t.Fatalf("n=%d: point %s twice", n, tr.ids[j])
					}
					seen[tr.ids[j]] = true
				}
				return depth
			}
			d := 0
			for c := nd.first; c < nd.first+int32(nd.count); c++ {
				d = max(d, walk(c, nd, depth+1))
			}
			return d
		}
		if n > 0 {
			depth := walk(0, nil, 1)
			if n == 70000 && depth > 5 {
				t.Errorf("n=%d: depth %d", n, depth)
			}
		}
		if len(seen) != n {
			t.Fatalf("n=%d: %d points in the tree", n, len(seen))
		}
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lng1, lat2, lng2 float64
		want                   float64
	}{
		{"same point", 31.2304, 121.4737, 31.2304, 121.4737, 0},
		{"quarter meridian", 0, 0, 90, 0, math.Pi / 2 * EarthRadius},
		{"across antimeridian", 0, 179.5, 0, -179.5, math.Pi / 180 * EarthRadius},
		{"antipodes", 10, 20, -10, -160, math.Pi * EarthRadius},
		{"pole, any longitude", 90, 0, 90, 123, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Distance(tc.lat1, tc.lng1, tc.lat2, tc.lng2)
			if math.Abs(got-tc.want) > 1e-6 {
				t.Errorf("Distance = %v, want %v", got, tc.want)
			}
			p, q := toVec(tc.lat1, tc.lng1), toVec(tc.lat2, tc.lng2)
			if c := chordToMeters(chord2(&p, &q)); math.Abs(c-tc.want) > 1e-6 && tc.name != "antipodes" {
				t.Errorf("chord distance = %v, want %v", c, tc.want)
			}
		})
	}
}

func TestNearestLimitsAndEdges(t *testing.T) {
	ix := New()
	if err := ix.Build([]Site{
		{ID: "sh", Lat: 31.2304, Lng: 121.4737, Brands: []string{"a"}, Active: true},
		{ID: "sh-twin-b", Lat: 31.2304, Lng: 121.4737, Brands: []string{"a"}, Active: true},
		{ID: "sh-twin-a", Lat: 31.2304, Lng: 121.4737, Brands: []string{"a"}, Active: true},
		{ID: "hz", Lat: 30.2741, Lng: 120.1551, Brands: []string{"a", "b"}, Active: true},
		{ID: "bj", Lat: 39.9042, Lng: 116.4074, Brands: []string{"a"}, Active: true},
		{ID: "closed", Lat: 31.2305, Lng: 121.4737, Brands: []string{"a"}},
	}); err != nil {
		t.Fatal(err)
	}
	hzKm := Distance(31.2304, 121.4737, 30.2741, 120.1551) / 1000
	tests := []struct {
		name     string
		lat, lng float64
		brand    string
		maxKm    float64
		n        int
		want     []string
	}{
		{"ties by id, closed skipped", 31.2304, 121.4737, "a", 0, 10, []string{"sh", "sh-twin-a", "sh-twin-b", "hz", "bj"}},
		{"n", 31.2304, 121.4737, "a", 0, 2, []string{"sh", "sh-twin-a"}},
		{"limit excludes", 31.2304, 121.4737, "a", hzKm * 0.999999, 10, []string{"sh", "sh-twin-a", "sh-twin-b"}},
		{"limit includes", 31.2304, 121.4737, "a", hzKm * 1.000001, 10, []string{"sh", "sh-twin-a", "sh-twin-b", "hz"}},
		{"other brand", 39.9, 116.4, "b", 0, 10, []string{"hz"}},
		{"unknown brand", 39.9, 116.4, "zz", 0, 10, nil},
		{"invalid lat", 91, 116.4, "a", 0, 10, nil},
		{"NaN lng", 30, math.NaN(), "a", 0, 10, nil},
		{"n is zero", 30, 120, "a", 0, 0, nil},
		{"lng beyond 180 wraps", 39.9042, 116.4074 + 360, "a", 0, 1, []string{"bj"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, h := range ix.NearestN(tc.lat, tc.lng, tc.brand, tc.maxKm, tc.n) {
				got = append(got, h.ID)
			}
			if diff := gocmp.Diff(tc.want, got); diff != "" {
				t.Errorf("NearestN (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	ix := New()
	good := Site{ID: "x", Lat: 1, Lng: 2, Brands: []string{"a"}, Active: true}
	if err := ix.Build([]Site{good}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Site{
		{ID: "", Lat: 1, Lng: 2},
		{ID: "y", Lat: 90.5, Lng: 2},
		{ID: "y", Lat: 1, Lng: -180.1},
		{ID: "y", Lat: math.NaN(), Lng: 2},
		{ID: "y", Lat: 1, Lng: math.Inf(1)},
		{ID: "y", Lat: 1, Lng: 2, Brands: []string{"a", ""}},
	} {
		if err := ix.Upsert(bad); err == nil {
			t.Errorf("Upsert(%+v) accepted", bad)
		}
		if err := ix.Build([]Site{good, bad}); err == nil {
			t.Errorf("Build with %+v accepted", bad)
		}
	}
	if ix.Len() != 1 || len(ix.NearestN(1, 2, "a", 0, 5)) != 1 {
		t.Fatalf("failed writes changed the index: Len() = %d", ix.Len())
	}
	// The index keeps its own copy of Brands.
	s := Site{ID: "z", Lat: 1, Lng: 2, Brands: []string{"a"}, Active: true}
	if err := ix.Upsert(s); err != nil {
		t.Fatal(err)
	}
	s.Brands[0] = "b"
	if got := ix.NearestN(1, 2, "a", 0, 5); len(got) != 2 {
		t.Fatalf("caller's slice changed the index: %v", got)
	}
	var zero Index
	if zero.Len() != 0 || zero.NearestN(1, 2, "a", 0, 1) != nil || zero.Remove("x") {
		t.Fatal("zero Index is not empty")
	}
	if err := zero.Upsert(good); err != nil || zero.Len() != 1 {
		t.Fatalf("zero Index Upsert: %v, Len %d", err, zero.Len())
	}
}

// TestConcurrent runs lookups while writers build, upsert and remove; run
// with -race. Every walk must stay sorted and see only sites of its brand.
func TestConcurrent(t *testing.T) {
	sites := Synthetic(5000, 9)
	ix := New()
	if err := ix.Build(sites); err != nil {
		t.Fatal(err)
	}
	brandOf := map[string]map[string]bool{} // every brand a site ever carries
	for _, s := range sites {
		brandOf[s.ID] = map[string]bool{}
		for _, b := range s.Brands {
			brandOf[s.ID][b] = true
		}
	}
	queries := SyntheticQueries(200, 9)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 4 {
		wg.Go(func() {
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				q := queries[i%len(queries)]
				prev := -1.0
				n := 0
				ix.Nearest(q.Lat, q.Lng, q.Brand, 0, func(id string, d float64) bool {
					if d < prev || !brandOf[id][q.Brand] {
						errs <- fmt.Errorf("walk from %+v: %s at %v after %v", q, id, d, prev)
						return false
					}
					prev = d
					n++
					return n < 20
				})
			}
		})
	}
	r := rand.New(rand.NewPCG(9, 9))
	for i := range 400 {
		s := sites[r.IntN(len(sites))]
		switch i % 4 {
		case 0:
			ix.Remove(s.ID)
		case 1:
			s.Active = !s.Active
			_ = ix.Upsert(s)
		case 2:
			s.Lat += 0.01
			_ = ix.Upsert(s)
		default:
			if i%100 == 3 {
				_ = ix.Build(sites)
			} else {
				_ = ix.Upsert(s)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestNearestDoesNotAllocate(t *testing.T) {
	ix := New()
	if err := ix.Build(Synthetic(20000, 2)); err != nil {
		t.Fatal(err)
	}
	qs := SyntheticQueries(100, 2)
	visit := func(string, float64) bool { return false }
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		q := qs[i%len(qs)]
		i++
		ix.Nearest(q.Lat, q.Lng, q.Brand, 0, visit)
	})
	if allocs > 0 {
		t.Errorf("Nearest allocates %v times per call", allocs)
	}
}
