package geo

import (
	"math"
	"slices"
)

// LinearScan is the brute-force reference for Index: it checks every site on
// every lookup. It exists as the correctness reference and the benchmark
// baseline (the cost without an index); use Index.
type LinearScan struct {
	pts    []vec
	ids    []string
	masks  []uint64 // bit i: carries brand i (the first 64 brands seen)
	brands [][]string
	bit    map[string]int
}

// NewLinearScan returns a scan over the active sites.
func NewLinearScan(sites []Site) *LinearScan {
	l := &LinearScan{bit: map[string]int{}}
	for _, s := range sites {
		if !s.Active {
			continue
		}
		var m uint64
		for _, b := range s.Brands {
			i, ok := l.bit[b]
			if !ok {
				i = len(l.bit)
				l.bit[b] = i
			}
			if i < 64 {
				m |= 1 << i
			}
		}
		l.pts = append(l.pts, toVec(s.Lat, s.Lng))
		l.ids = append(l.ids, s.ID)
		l.masks = append(l.masks, m)
		l.brands = append(l.brands, s.Brands)
	}
	return l
}

// Nearest returns the nearest active site carrying brand (ties by ID) and
// its great-circle distance in metres; ok is false if there is none.
func (l *LinearScan) Nearest(lat, lng float64, brand string) (id string, distM float64, ok bool) {
	i, known := l.bit[brand]
	if !known {
		return "", 0, false
	}
	q := toVec(lat, lng)
	best, bestKey := -1, math.Inf(1)
	for j := range l.pts {
		if i < 64 {
			if l.masks[j]&(1<<i) == 0 {
				continue
			}
		} else if !slices.Contains(l.brands[j], brand) {
			continue
		}
		k := chord2(&q, &l.pts[j])
		if k < bestKey || (k == bestKey && l.ids[j] < l.ids[best]) {
			best, bestKey = j, k
		}
	}
	if best < 0 {
		return "", 0, false
	}
	return l.ids[best], chordToMeters(bestKey), true
}
