package geo

import (
	"slices"
	"sync"
)

// Element kinds. Nodes order before points of the same key, so a point is
// only handed out once every subtree that could hold an equally near point
// has been opened, and equal keys then come out by id.
const (
	kindNode uint8 = iota
	kindPoint
)

// elem is a node or a point of a tree with its key: the squared chord from
// the query (a lower bound for a node, exact for a point).
type elem struct {
	key  float64
	ref  int32 // node index or point position
	kind uint8
}

// run is a heap entry: the elements of one opened node, arena[pos:end],
// consumed in order by incremental selection; arena[pos] is the least
// unconsumed one and cur a copy of it. A walk thus pushes one entry per
// opened node instead of one per child, which is most of its cost.
type run struct {
	cur      elem
	pos, end int32
	src      uint8 // index into walker.trees
}

// walker is the state of one nearest-first walk over a shard: a min-heap of
// runs over an arena of elements. Walkers are pooled, so a walk allocates
// nothing once the pool is warm.
type walker struct {
	h     []run
	arena []elem
	trees [2]*tree
	dead  []int32
	q     vec
	limit float64 // elements with a larger key are dropped
}

var walkers = sync.Pool{New: func() any {
	return &walker{h: make([]run, 0, 32), arena: make([]elem, 0, 512)}
}}

func (w *walker) reset(sh *shard, q vec, limit float64) {
	w.h = w.h[:0]
	w.arena = w.arena[:0]
	w.trees = [2]*tree{sh.base, sh.delta}
	w.dead = sh.dead
	w.q = q
	w.limit = limit
	for src, t := range w.trees {
		if t.len() == 0 {
			continue
		}
		if k := t.nodes[0].dist2(&q); k <= limit {
			w.arena = append(w.arena, elem{key: k, ref: 0, kind: kindNode})
			w.pushRun(len(w.arena)-1, uint8(src))
		}
	}
}

func (w *walker) release() {
	w.trees = [2]*tree{}
	w.dead = nil
	if cap(w.arena) > 1<<16 {
		// Do not pin the memory of a huge walk.
		w.h, w.arena = make([]run, 0, 32), make([]elem, 0, 512)
	}
	walkers.Put(w)
}

// next returns the next point in increasing key order (ties by id).
func (w *walker) next() (id string, key float64, ok bool) {
	for len(w.h) > 0 {
		top := &w.h[0]
		e, src := top.cur, top.src
		if top.pos+1 < top.end {
			top.pos++
			top.cur = w.selectMin(top.pos, top.end, src)
			w.down(0)
		} else {
			w.popTop()
		}
		t := w.trees[src]
		if e.kind == kindPoint {
			if src == 0 && len(w.dead) > 0 {
				if _, gone := slices.BinarySearch(w.dead, e.ref); gone {
					continue
				}
			}
			return t.ids[e.ref], e.key, true
		}
		n := &t.nodes[e.ref]
		start := len(w.arena)
		end := n.first + int32(n.count)
		if n.leaf {
			for i := n.first; i < end; i++ {
				if k := chord2(&w.q, &t.pts[i]); k <= w.limit {
					w.arena = append(w.arena, elem{key: k, ref: i, kind: kindPoint})
				}
			}
		} else {
			for c := n.first; c < end; c++ {
				if k := t.nodes[c].dist2(&w.q); k <= w.limit {
					w.arena = append(w.arena, elem{key: k, ref: c, kind: kindNode})
				}
			}
		}
		if len(w.arena) > start {
			w.pushRun(start, src)
		}
	}
	return "", 0, false
}

// less orders elements of tree src by key, then nodes before points, then
// points by id, then by position (which only makes the order total).
func (w *walker) less(a, b *elem, srcA, srcB uint8) bool {
	if a.key != b.key {
		return a.key < b.key
	}
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	if a.kind == kindPoint {
		if ia, ib := w.trees[srcA].ids[a.ref], w.trees[srcB].ids[b.ref]; ia != ib {
			return ia < ib
		}
	}
	if srcA != srcB {
		return srcA < srcB
	}
	return a.ref < b.ref
}

// selectMin moves the least of arena[pos:end] to arena[pos] and returns it.
func (w *walker) selectMin(pos, end int32, src uint8) elem {
	a := w.arena[pos:end]
	m := 0
	for i := 1; i < len(a); i++ {
		if a[i].key < a[m].key || (a[i].key == a[m].key && w.less(&a[i], &a[m], src, src)) {
			m = i
		}
	}
	a[0], a[m] = a[m], a[0]
	return a[0]
}

func (w *walker) lessRun(a, b *run) bool {
	if a.cur.key != b.cur.key {
		return a.cur.key < b.cur.key
	}
	return w.less(&a.cur, &b.cur, a.src, b.src)
}

func (w *walker) pushRun(start int, src uint8) {
	end := int32(len(w.arena))
	r := run{cur: w.selectMin(int32(start), end, src), pos: int32(start), end: end, src: src}
	w.h = append(w.h, r)
	h := w.h
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !w.lessRun(&r, &h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = r
}

func (w *walker) popTop() {
	n := len(w.h) - 1
	w.h[0] = w.h[n]
	w.h = w.h[:n]
	if n > 0 {
		w.down(0)
	}
}

// down restores the heap below i after h[i] grew.
func (w *walker) down(i int) {
	h := w.h
	n := len(h)
	x := h[i]
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && w.lessRun(&h[r], &h[c]) {
			c = r
		}
		if !w.lessRun(&h[c], &x) {
			break
		}
		h[i] = h[c]
		i = c
	}
	h[i] = x
}
