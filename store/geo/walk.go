package geo

import (
	"slices"
	"sync"
)

// Heap entry kinds. Nodes order before items of the same key, so an item is
// only handed out once every subtree that could hold an equally near item
// has been opened, and equal keys then come out by id.
const (
	kindNode uint8 = iota
	kindItem
)

// entry is a node or an item of one of a shard's trees, keyed by its
// squared chord distance (a lower bound for nodes, exact for items).
type entry struct {
	key  float64
	ref  int32 // node index or point position in the tree
	kind uint8
	src  uint8 // index into walker.trees
}

// walker is the state of one nearest-first walk over a shard: a binary
// min-heap of entries. Walkers are pooled, so a walk allocates nothing.
type walker struct {
	h     []entry
	trees [2]*tree
	dead  []int32
	q     vec
	limit float64 // entries with a larger key are never pushed
}

var walkers = sync.Pool{New: func() any { return &walker{h: make([]entry, 0, 256)} }}

func (w *walker) reset(sh *shard, q vec, limit float64) {
	w.h = w.h[:0]
	w.trees = [2]*tree{sh.base, sh.delta}
	w.dead = sh.dead
	w.q = q
	w.limit = limit
	for src, t := range w.trees {
		if t.len() == 0 {
			continue
		}
		root := &t.nodes[0]
		if k := boxDist2(&q, &root.lo, &root.hi); k <= limit {
			w.push(entry{key: k, ref: 0, kind: kindNode, src: uint8(src)})
		}
	}
}

func (w *walker) release() {
	w.trees = [2]*tree{}
	w.dead = nil
	if cap(w.h) > 1<<16 {
		w.h = make([]entry, 0, 256) // do not pin the memory of a huge walk
	}
	walkers.Put(w)
}

// next returns the next point in increasing key order (ties by id).
func (w *walker) next() (id string, key float64, ok bool) {
	for len(w.h) > 0 {
		e := w.pop()
		t := w.trees[e.src]
		if e.kind == kindItem {
			if e.src == 0 && len(w.dead) > 0 {
				if _, gone := slices.BinarySearch(w.dead, e.ref); gone {
					continue
				}
			}
			return t.ids[e.ref], e.key, true
		}
		n := &t.nodes[e.ref]
		end := n.first + n.count
		if n.leaf {
			for i := n.first; i < end; i++ {
				if k := chord2(&w.q, &t.pts[i]); k <= w.limit {
					w.push(entry{key: k, ref: i, kind: kindItem, src: e.src})
				}
			}
			continue
		}
		for c := n.first; c < end; c++ {
			cn := &t.nodes[c]
			if k := boxDist2(&w.q, &cn.lo, &cn.hi); k <= w.limit {
				w.push(entry{key: k, ref: c, kind: kindNode, src: e.src})
			}
		}
	}
	return "", 0, false
}

// less orders entries by key, then nodes before items, then items by id;
// the rest only makes the order total.
func (w *walker) less(a, b *entry) bool {
	if a.key != b.key {
		return a.key < b.key
	}
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	if a.kind == kindItem {
		if ia, ib := w.trees[a.src].ids[a.ref], w.trees[b.src].ids[b.ref]; ia != ib {
			return ia < ib
		}
	}
	if a.src != b.src {
		return a.src < b.src
	}
	return a.ref < b.ref
}

func (w *walker) push(e entry) {
	w.h = append(w.h, e)
	h := w.h
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !w.less(&e, &h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = e
}

func (w *walker) pop() entry {
	h := w.h
	top := h[0]
	last := h[len(h)-1]
	h = h[:len(h)-1]
	w.h = h
	n := len(h)
	if n == 0 {
		return top
	}
	i := 0
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && w.less(&h[r], &h[c]) {
			c = r
		}
		if !w.less(&h[c], &last) {
			break
		}
		h[i] = h[c]
		i = c
	}
	h[i] = last
	return top
}
