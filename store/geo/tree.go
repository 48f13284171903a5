package geo

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
)

// Tree shape. Leaves hold up to leafSize points; inner nodes up to fanout
// children. On the synthetic data set every shape from 8/8 to 64/16 was
// within noise of the others (the walk is bound by memory latency, not by
// arithmetic); 16/16 was among the best.
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
// fusing multiply-adds, so that chord2 and node.dist2 round the same way and
// node.dist2 ≤ chord2 holds exactly in floating point, not only in theory.
func chord2(a, b *vec) float64 {
	dx, dy, dz := a.x-b.x, a.y-b.y, a.z-b.z
	return float64(dx*dx) + float64(dy*dy) + float64(dz*dz)
}

// axisGap is how far q lies outside [lo, hi] on one axis (0 inside).
// Float subtraction is monotone, so for lo ≤ p ≤ hi the gap never exceeds
// |p−q| as computed by chord2; squares and sums are monotone too, so
// node.dist2 never exceeds chord2 for a point in the box, in floating point.
func axisGap(q, lo, hi float64) float64 {
	if q < lo {
		return lo - q
	}
	if q > hi {
		return q - hi
	}
	return 0
}

// dist2 is the squared Euclidean distance from q to the node's box: a
// lower bound of chord2(q, p) for every point p under the node.
func (n *node) dist2(q *vec) float64 {
	dx := axisGap(q.x, float64(n.lo[0]), float64(n.hi[0]))
	dy := axisGap(q.y, float64(n.lo[1]), float64(n.hi[1]))
	dz := axisGap(q.z, float64(n.lo[2]), float64(n.hi[2]))
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
// Boxes are stored in float32, rounded outwards, so that a node takes 32
// bytes (half the cache lines of float64) and still contains its points.
type node struct {
	lo, hi [3]float32
	first  int32
	count  uint16
	leaf   bool
}

// setBox stores b rounded outwards to float32.
func (n *node) setBox(b box) {
	n.lo = [3]float32{down32(b.lo.x), down32(b.lo.y), down32(b.lo.z)}
	n.hi = [3]float32{up32(b.hi.x), up32(b.hi.y), up32(b.hi.z)}
}

func down32(v float64) float32 {
	f := float32(v)
	if float64(f) > v {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

func up32(v float64) float32 {
	f := float32(v)
	if float64(f) < v {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
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

// buildTree bulk-loads the points pts with ids ids (parallel slices, which
// the tree keeps, reordered). Groups are cut by recursive median splits
// along the widest axis, so that every subtree is spatially compact and
// leaves are full: a top-down packing in the spirit of OMT/STR.
func buildTree(pts []vec, ids []string) *tree {
	t := &tree{pts: pts, ids: ids}
	if len(pts) == 0 {
		return t
	}
	// The build moves (point, original position) pairs, which hold no
	// pointers (no write barriers) and swap in one move.
	bl := &builder{items: make([]bitem, len(pts))}
	for i := range pts {
		bl.items[i] = bitem{pts[i], int32(i)}
	}
	// Leaves are nearly full: about n/leafSize of them, plus 1/fanout more
	// inner nodes per level.
	bl.nodes = make([]node, 1, 16+len(pts)/(leafSize-1)*fanout/(fanout-1))
	bl.fill(0, 0, len(pts))
	t.nodes = bl.nodes
	t.ids = make([]string, len(ids))
	for i, it := range bl.items {
		t.pts[i] = it.p
		t.ids[i] = ids[it.i]
	}
	return t
}

type bitem struct {
	p vec
	i int32
}

type builder struct {
	items []bitem
	nodes []node
}

// fill makes nodes[slot] the subtree over items[lo:hi] and returns its box.
func (bl *builder) fill(slot, lo, hi int) box {
	n := hi - lo
	if n <= leafSize {
		b := bl.bounds(lo, hi)
		bl.nodes[slot] = node{first: int32(lo), count: uint16(n), leaf: true}
		bl.nodes[slot].setBox(b)
		return b
	}
	// The smallest subtree capacity c = leafSize·fanoutʰ that needs at most
	// fanout children of capacity c/fanout; children share n evenly.
	c := leafSize
	for c*fanout < n {
		c *= fanout
	}
	k := max(2, (n+c-1)/c)
	first := len(bl.nodes)
	bl.nodes = slices.Grow(bl.nodes, k)[:first+k]
	b := bl.split(first, lo, hi, k)
	bl.nodes[slot] = node{first: int32(first), count: uint16(k)}
	bl.nodes[slot].setBox(b)
	return b
}

// split cuts items[lo:hi] into k nearly equal, compact groups and fills the
// node slots first..first+k-1 with them.
func (bl *builder) split(first, lo, hi, k int) box {
	if k == 1 {
		return bl.fill(first, lo, hi)
	}
	k1 := k / 2
	mid := lo + (hi-lo)*k1/k
	b := bl.bounds(lo, hi)
	bl.selectNth(lo, hi, mid, b.widest())
	b1 := bl.split(first, lo, mid, k1)
	b2 := bl.split(first+k1, mid, hi, k-k1)
	b1.add(&b2.lo)
	b1.add(&b2.hi)
	return b1
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

func (bl *builder) bounds(lo, hi int) box {
	b := box{bl.items[lo].p, bl.items[lo].p}
	for i := lo + 1; i < hi; i++ {
		b.add(&bl.items[i].p)
	}
	return b
}

func (it *bitem) coord(axis int) float64 {
	switch axis {
	case 0:
		return it.p.x
	case 1:
		return it.p.y
	default:
		return it.p.z
	}
}

// selectNth reorders items[lo:hi] so that items[nth] has the value it would
// have if the range were sorted by axis, with nothing greater before it and
// nothing smaller after it (quickselect, Hoare partition, median of three;
// it falls back to sorting the range if it stops making progress).
func (bl *builder) selectNth(lo, hi, nth, axis int) {
	a := bl.items
	budget := 2 * bits.Len(uint(hi-lo))
	for hi-lo > 16 {
		if budget--; budget < 0 {
			bl.sortRange(lo, hi, axis)
			return
		}
		m := lo + (hi-lo)/2
		x, y, z := a[lo].coord(axis), a[m].coord(axis), a[hi-1].coord(axis)
		pivot := max(min(x, y), min(max(x, y), z))
		i, j := lo, hi-1
		for i <= j {
			for a[i].coord(axis) < pivot {
				i++
			}
			for a[j].coord(axis) > pivot {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		// Now a[lo:j+1] ≤ pivot, a[j+1:i] == pivot, a[i:hi] ≥ pivot.
		switch {
		case nth <= j:
			hi = j + 1
		case nth >= i:
			lo = i
		default:
			return
		}
	}
	bl.sortRange(lo, hi, axis)
}

// sortRange sorts items[lo:hi] by axis.
func (bl *builder) sortRange(lo, hi, axis int) {
	slices.SortFunc(bl.items[lo:hi], func(a, b bitem) int {
		return cmp.Compare(a.coord(axis), b.coord(axis))
	})
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
		if n.dist2(&p) > 0 {
			continue
		}
		if n.leaf {
			for i := n.first; i < n.first+int32(n.count); i++ {
				if t.ids[i] == id {
					return int(i)
				}
			}
			continue
		}
		for c := range int32(n.count) {
			stack = append(stack, n.first+c)
		}
	}
	return -1
}
