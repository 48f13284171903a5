package geo

import (
	"math"
	"slices"
)

// Tree shape. Leaves hold up to leafSize points; inner nodes up to fanout
// children. Chosen by BenchmarkNearest on the synthetic data set.
const (
	leafSize = 16
	fanout   = 16
)

// vec is a point of the unit sphere in Earth-centred Cartesian coordinates.
type vec struct{ x, y, z float64 }

// toVec maps WGS-84 degrees to the unit sphere.
func toVec(lat, lng float64) vec {
	sφ, cφ := math.Sincos(lat * (math.Pi / 180))
	sλ, cλ := math.Sincos(lng * (math.Pi / 180))
	return vec{cφ * cλ, cφ * sλ, sφ}
}

// chord2 is the squared straight-line distance between two unit vectors: the
// walk's ordering key. It is a strictly increasing function of the angle
// between them (chord = 2·sin(θ/2)), so ordering by it is ordering by
// great-circle distance. The explicit conversions keep the compiler from
// fusing multiply-adds, so that chord2 and boxDist2 round the same way and
// boxDist2 ≤ chord2 holds exactly in floating point, not only in theory.
func chord2(a, b *vec) float64 {
	dx, dy, dz := a.x-b.x, a.y-b.y, a.z-b.z
	return float64(dx*dx) + float64(dy*dy) + float64(dz*dz)
}

// axisGap is how far q lies outside [lo, hi] on one axis (0 inside).
// Float subtraction is monotone, so for lo ≤ p ≤ hi the gap never exceeds
// |p−q| as computed by chord2.
func axisGap(q, lo, hi float64) float64 {
	if q < lo {
		return lo - q
	}
	if q > hi {
		return q - hi
	}
	return 0
}

// boxDist2 is the squared Euclidean distance from q to the box [lo, hi]: a
// lower bound of chord2(q, p) for every p in the box.
func boxDist2(q, lo, hi *vec) float64 {
	dx := axisGap(q.x, lo.x, hi.x)
	dy := axisGap(q.y, lo.y, hi.y)
	dz := axisGap(q.z, lo.z, hi.z)
	return float64(dx*dx) + float64(dy*dy) + float64(dz*dz)
}

// chordToMeters converts a squared chord of the unit sphere to metres of
// great-circle distance on the sphere of radius EarthRadius.
func chordToMeters(c2 float64) float64 {
	h := math.Sqrt(c2) / 2
	if h >= 1 {
		return math.Pi * EarthRadius
	}
	return 2 * EarthRadius * math.Asin(h)
}

// metersToChord2 is the inverse of chordToMeters, for pruning; callers
// widen it slightly and check the distance in metres exactly.
func metersToChord2(m float64) float64 {
	θ := m / EarthRadius
	if θ >= math.Pi {
		return 4
	}
	c := 2 * math.Sin(θ/2)
	return c * c
}

// node is a bounding box of part of the tree. The children of an inner node
// are nodes[first:first+count]; the points of a leaf are pts[first:first+count].
type node struct {
	lo, hi vec
	first  int32
	count  int32
	leaf   bool
}

// tree is an immutable, bulk-loaded R-tree of points on the unit sphere
// (boxes in 3D). nodes[0] is the root when there are any points.
type tree struct {
	nodes []node
	pts   []vec
	ids   []string
}

func (t *tree) len() int {
	if t == nil {
		return 0
	}
	return len(t.pts)
}

// buildTree bulk-loads pts and ids (parallel slices; both are reordered and
// kept by the tree). Groups are cut by recursive median splits along the
// widest axis, so that every subtree is spatially compact and leaves are
// full: a top-down packing in the spirit of OMT/STR.
func buildTree(pts []vec, ids []string) *tree {
	t := &tree{pts: pts, ids: ids}
	if len(pts) == 0 {
		return t
	}
	// Leaves are nearly full: about n/leafSize of them, plus 1/fanout more
	// inner nodes per level.
	t.nodes = make([]node, 1, 16+len(pts)/(leafSize-1)*fanout/(fanout-1))
	t.fill(0, 0, len(pts))
	return t
}

// fill makes nodes[slot] the subtree over pts[lo:hi].
func (t *tree) fill(slot, lo, hi int) {
	n := hi - lo
	if n <= leafSize {
		b := t.bounds(lo, hi)
		t.nodes[slot] = node{lo: b.lo, hi: b.hi, first: int32(lo), count: int32(n), leaf: true}
		return
	}
	// The smallest subtree capacity c = leafSize·fanoutʰ that needs at most
	// fanout children of capacity c/fanout; children share n evenly.
	c := leafSize
	for c*fanout < n {
		c *= fanout
	}
	k := (n + c - 1) / c
	if k < 2 {
		k = 2
	}
	first := len(t.nodes)
	t.nodes = slices.Grow(t.nodes, k)[:first+k]
	t.split(first, lo, hi, k)
	b := box{t.nodes[first].lo, t.nodes[first].hi}
	for i := first + 1; i < first+k; i++ {
		b.add(&t.nodes[i].lo)
		b.add(&t.nodes[i].hi)
	}
	t.nodes[slot] = node{lo: b.lo, hi: b.hi, first: int32(first), count: int32(k)}
}

// split cuts pts[lo:hi] into k nearly equal, compact groups and fills the
// node slots first..first+k-1 with them.
func (t *tree) split(first, lo, hi, k int) {
	if k == 1 {
		t.fill(first, lo, hi)
		return
	}
	k1 := k / 2
	mid := lo + (hi-lo)*k1/k
	b := t.bounds(lo, hi)
	t.selectNth(lo, hi, mid, b.widest())
	t.split(first, lo, mid, k1)
	t.split(first+k1, mid, hi, k-k1)
}

type box struct{ lo, hi vec }

func (b *box) add(p *vec) {
	b.lo.x, b.hi.x = min(b.lo.x, p.x), max(b.hi.x, p.x)
	b.lo.y, b.hi.y = min(b.lo.y, p.y), max(b.hi.y, p.y)
	b.lo.z, b.hi.z = min(b.lo.z, p.z), max(b.hi.z, p.z)
}

func (b *box) widest() int {
	dx, dy, dz := b.hi.x-b.lo.x, b.hi.y-b.lo.y, b.hi.z-b.lo.z
	switch {
	case dx >= dy && dx >= dz:
		return 0
	case dy >= dz:
		return 1
	default:
		return 2
	}
}

func (t *tree) bounds(lo, hi int) box {
	b := box{t.pts[lo], t.pts[lo]}
	for i := lo + 1; i < hi; i++ {
		b.add(&t.pts[i])
	}
	return b
}

func coord(p *vec, axis int) float64 {
	switch axis {
	case 0:
		return p.x
	case 1:
		return p.y
	default:
		return p.z
	}
}

func (t *tree) swap(i, j int) {
	t.pts[i], t.pts[j] = t.pts[j], t.pts[i]
	t.ids[i], t.ids[j] = t.ids[j], t.ids[i]
}

// selectNth reorders pts[lo:hi] (and ids) so that pts[nth] has the value it
// would have if the range were sorted by axis, with nothing greater before it
// and nothing smaller after it (quickselect, Hoare partition, median of
// three; it falls back to sorting the range if it stops making progress).
func (t *tree) selectNth(lo, hi, nth, axis int) {
	budget := 2 * bitsLen(hi-lo)
	for hi-lo > 16 {
		if budget--; budget < 0 {
			t.sortRange(lo, hi, axis)
			return
		}
		m := lo + (hi-lo)/2
		a, b, c := coord(&t.pts[lo], axis), coord(&t.pts[m], axis), coord(&t.pts[hi-1], axis)
		pivot := max(min(a, b), min(max(a, b), c))
		i, j := lo, hi-1
		for i <= j {
			for coord(&t.pts[i], axis) < pivot {
				i++
			}
			for coord(&t.pts[j], axis) > pivot {
				j--
			}
			if i <= j {
				t.swap(i, j)
				i++
				j--
			}
		}
		// Now pts[lo:j+1] ≤ pivot, pts[j+1:i] == pivot, pts[i:hi] ≥ pivot.
		switch {
		case nth <= j:
			hi = j + 1
		case nth >= i:
			lo = i
		default:
			return
		}
	}
	t.sortRange(lo, hi, axis)
}

func bitsLen(n int) int {
	b := 0
	for ; n > 0; n >>= 1 {
		b++
	}
	return b
}

// sortRange sorts pts[lo:hi] (and ids) by axis with insertion sort for short
// ranges and through an index permutation otherwise.
func (t *tree) sortRange(lo, hi, axis int) {
	if hi-lo <= 32 {
		for i := lo + 1; i < hi; i++ {
			for j := i; j > lo && coord(&t.pts[j], axis) < coord(&t.pts[j-1], axis); j-- {
				t.swap(j, j-1)
			}
		}
		return
	}
	type kv struct {
		p  vec
		id string
	}
	tmp := make([]kv, hi-lo)
	for i := range tmp {
		tmp[i] = kv{t.pts[lo+i], t.ids[lo+i]}
	}
	slices.SortStableFunc(tmp, func(a, b kv) int {
		ca, cb := coord(&a.p, axis), coord(&b.p, axis)
		switch {
		case ca < cb:
			return -1
		case ca > cb:
			return 1
		}
		return 0
	})
	for i, e := range tmp {
		t.pts[lo+i], t.ids[lo+i] = e.p, e.id
	}
}

// find returns the position of the point with the given id at p, or -1.
func (t *tree) find(p vec, id string) int {
	if t.len() == 0 {
		return -1
	}
	stack := make([]int32, 1, 64)
	for len(stack) > 0 {
		n := &t.nodes[stack[len(stack)-1]]
		stack = stack[:len(stack)-1]
		if boxDist2(&p, &n.lo, &n.hi) > 0 {
			continue
		}
		if n.leaf {
			for i := n.first; i < n.first+n.count; i++ {
				if t.ids[i] == id {
					return int(i)
				}
			}
			continue
		}
		for c := n.first; c < n.first+n.count; c++ {
			stack = append(stack, c)
		}
	}
	return -1
}
