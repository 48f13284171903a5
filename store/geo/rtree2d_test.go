package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tidwall/rtree"
)

// The alternative design, kept as a measured comparison: one 2D
// tidwall/rtree per brand over (lng, lat) boxes, walked nearest-first with
// Nearby and a distance function that is the exact minimum great-circle
// distance from the query to a lat/lng box (a true lower bound for every
// point in it). It is exact too, but each box bound costs several trig
// calls where the 3D bound costs a few subtractions, and Nearby scores all
// 64 children of every node it opens. BenchmarkRTree2DNearest measures it
// against BenchmarkNearest.

type rtree2D struct {
	trees map[string]*rtree.RTreeG[int32]
	pts   map[string][]vec
}

func newRTree2D(sites []Site) *rtree2D {
	r := &rtree2D{trees: map[string]*rtree.RTreeG[int32]{}, pts: map[string][]vec{}}
	for _, s := range sites {
		if !s.Active {
			continue
		}
		for _, b := range normalize(s).Brands {
			tr := r.trees[b]
			if tr == nil {
				tr = &rtree.RTreeG[int32]{}
				r.trees[b] = tr
			}
			tr.Insert([2]float64{s.Lng, s.Lat}, [2]float64{s.Lng, s.Lat}, int32(len(r.pts[b])))
			r.pts[b] = append(r.pts[b], toVec(s.Lat, s.Lng))
		}
	}
	return r
}

// sphereQuery holds what the box bound needs of the query point.
type sphereQuery struct {
	lat, lng   float64 // degrees
	sinφ, cosφ float64
	v          vec
}

func newSphereQuery(lat, lng float64) sphereQuery {
	s, c := math.Sincos(lat * math.Pi / 180)
	return sphereQuery{lat: lat, lng: lng, sinφ: s, cosφ: c, v: toVec(lat, lng)}
}

// boxBound is a lower bound of the squared chord from q to every point of
// the box [lng1, lng2] × [lat1, lat2] (degrees, not wrapping).
//
// If q's meridian crosses the box, the nearest point of the box is on that
// meridian, at q's latitude clamped to [lat1, lat2] (the angular distance to
// a point is at least the difference in latitude, and that point attains
// it). Otherwise, at every latitude the distance grows with the longitude
// difference (cos d = sinφq·sinφ + cosφq·cosφ·cosΔλ falls as |Δλ| grows to
// π), so the nearest point is on the meridian edge nearer in longitude.
// Along that meridian cos d = A·sinφ + B·cosφ = √(A²+B²)·cos(φ − φ*) with
// A = sinφq, B = cosφq·cosΔλ, φ* = atan2(A, B): over [lat1, lat2] (shorter
// than π) its maximum is at φ* if φ* is inside, else at an end. Then
// chord² = 2 − 2·cos d. A parallel edge is never needed on its own: it is
// not a great circle, and its nearest point to q is a corner (covered by
// the meridian edges) or lies on q's meridian (the first case).
func (q *sphereQuery) boxBound(min, max [2]float64) float64 {
	const rad = math.Pi / 180
	var c2 float64
	if q.lng >= min[0] && q.lng <= max[0] {
		dφ := math.Max(0, math.Max(min[1]-q.lat, q.lat-max[1])) * rad
		s := math.Sin(dφ / 2)
		c2 = 4 * s * s
	} else {
		dλ := math.Min(wrapAbs(q.lng-min[0]), wrapAbs(q.lng-max[0])) * rad
		a, b := q.sinφ, q.cosφ*math.Cos(dλ)
		s1, c1 := math.Sincos(min[1] * rad)
		s2, cc2 := math.Sincos(max[1] * rad)
		cosd := math.Max(a*s1+b*c1, a*s2+b*cc2)
		if φs := math.Atan2(a, b); φs >= min[1]*rad && φs <= max[1]*rad {
			cosd = math.Hypot(a, b)
		}
		c2 = 2 - 2*cosd
	}
	// Margin for rounding: item keys are computed another way (3D chords).
	return math.Max(0, c2-1e-14)
}

// wrapAbs is |x| for a longitude difference x, wrapped into [0, 180].
func wrapAbs(x float64) float64 {
	x = math.Mod(math.Abs(x), 360)
	if x > 180 {
		x = 360 - x
	}
	return x
}

// nearest returns the squared chord to the nearest site carrying brand.
func (r *rtree2D) nearest(lat, lng float64, brand string) (float64, bool) {
	tr := r.trees[brand]
	if tr == nil {
		return 0, false
	}
	pts := r.pts[brand]
	q := newSphereQuery(lat, lng)
	best, found := 0.0, false
	tr.Nearby(func(min, max [2]float64, data int32, item bool) float64 {
		if item {
			return chord2(&q.v, &pts[data])
		}
		return q.boxBound(min, max)
	}, func(_, _ [2]float64, _ int32, dist float64) bool {
		best, found = dist, true
		return false
	})
	return best, found
}

func TestRTree2DMatchesBruteForce(t *testing.T) {
	for si, sc := range scenarios {
		r := rand.New(rand.NewPCG(uint64(si), 11))
		var sites []Site
		m := model{}
		for i := range 1000 {
			s := randomSite(r, fmt.Sprintf("s%04d", i), sc.point)
			sites = append(sites, s)
			m.put(s)
		}
		rt := newRTree2D(sites)
		for i := range 300 {
			lat, lng := sc.point(r)
			if i%3 == 0 {
				lat, lng = uniformSphere(r)
			}
			brand := testBrands[r.IntN(len(testBrands))]
			want := m.nearest(lat, lng, brand, 0, 1)
			got, ok := rt.nearest(lat, lng, brand)
			if ok != (len(want) == 1) || ok && chordToMeters(got) != want[0].DistM {
				t.Fatalf("%s: nearest(%v, %v, %s) = %v (%v), brute force %v", sc.name, lat, lng, brand, chordToMeters(got), ok, want)
			}
		}
	}
}

// TestSphereBoxBound checks the bound against dense samples of boxes.
func TestSphereBoxBound(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for range 1000 {
		lat1, lat2 := -90+180*r.Float64(), -90+180*r.Float64()
		lng1, lng2 := -180+360*r.Float64(), -180+360*r.Float64()
		if r.IntN(2) == 0 { // small boxes, as in a tree's lower levels
			lat2, lng2 = min(90, lat1+r.Float64()), min(180, lng1+r.Float64())
		}
		lo := [2]float64{min(lng1, lng2), min(lat1, lat2)}
		hi := [2]float64{max(lng1, lng2), max(lat1, lat2)}
		qLat, qLng := uniformSphere(r)
		q := newSphereQuery(qLat, qLng)
		bound := q.boxBound(lo, hi)
		minC2 := math.Inf(1)
		for i := range 41 {
			for j := range 41 {
				p := toVec(lo[1]+(hi[1]-lo[1])*float64(i)/40, lo[0]+(hi[0]-lo[0])*float64(j)/40)
				minC2 = math.Min(minC2, chord2(&q.v, &p))
			}
		}
		if bound > minC2 {
			t.Fatalf("box %v–%v, query (%v, %v): bound %v > sampled minimum %v", lo, hi, qLat, qLng, bound, minC2)
		}
		// Tight on small boxes: within the sampling step (< 0.025°) of the
		// sampled minimum, in chord length.
		if hi[0]-lo[0] <= 1 && hi[1]-lo[1] <= 1 && math.Sqrt(minC2)-math.Sqrt(bound) > 1e-3 {
			t.Fatalf("box %v–%v, query (%v, %v): bound %v far below sampled minimum %v", lo, hi, qLat, qLng, bound, minC2)
		}
	}
}

func BenchmarkRTree2DNearest(b *testing.B) {
	benchData(b)
	rt := newRTree2D(bench.sites)
	qs := bench.queries
	b.ReportAllocs()
	report(b, func(i int) {
		q := &qs[i%len(qs)]
		rt.nearest(q.Lat, q.Lng, q.Brand)
	})
}
