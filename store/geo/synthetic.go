package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Synthetic data: test and benchmark input only, shared by the benchmarks
// of this package and cmd/scrmgw-bench so that both measure the same thing.

// SyntheticBrands are the brands Synthetic sites carry, most common first.
var SyntheticBrands = []string{"brand-a", "brand-b", "brand-c", "brand-d", "brand-e"}

// Synthetic extent: roughly China's bounding box.
const (
	synLatMin, synLatMax = 18.0, 53.0
	synLngMin, synLngMax = 73.0, 135.0
	synCities            = 300
)

// Query is a member's location and the brand a store is wanted for.
type Query struct {
	Lat, Lng float64
	Brand    string
}

type city struct {
	lat, lng, sigmaKm, weight float64
}

// cities are the synthetic city centres for a seed, with Zipf-like weights
// (a few big cities hold most stores) and spreads that grow with size.
func cities(seed int64) ([]city, []float64) {
	r := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	cs := make([]city, synCities)
	cum := make([]float64, synCities)
	total := 0.0
	for i := range cs {
		w := 1 / math.Pow(float64(i+1), 0.8)
		cs[i] = city{
			lat:     synLatMin + r.Float64()*(synLatMax-synLatMin),
			lng:     synLngMin + r.Float64()*(synLngMax-synLngMin),
			sigmaKm: 4 + 40*w, // 44 km for the largest city, ~5 km for the smallest
			weight:  w,
		}
		total += w
		cum[i] = total
	}
	for i := range cum {
		cum[i] /= total
	}
	return cs, cum
}

// near draws a point around a random city (by weight), spread by a
// Gaussian of the city's sigma times spread, clipped to the extent.
func near(r *rand.Rand, cs []city, cum []float64, spread float64) (lat, lng float64) {
	i := min(sort.SearchFloat64s(cum, r.Float64()), len(cs)-1)
	c := cs[i]
	sLat := c.sigmaKm * spread / 111.2
	sLng := sLat / math.Cos(c.lat*math.Pi/180)
	lat = clamp(c.lat+r.NormFloat64()*sLat, synLatMin, synLatMax)
	lng = clamp(c.lng+r.NormFloat64()*sLng, synLngMin, synLngMax)
	return lat, lng
}

func uniform(r *rand.Rand) (lat, lng float64) {
	return synLatMin + r.Float64()*(synLatMax-synLatMin), synLngMin + r.Float64()*(synLngMax-synLngMin)
}

func clamp(v, lo, hi float64) float64 {
	return max(lo, min(hi, v))
}

// Synthetic returns n sites shaped like a national retail network, for
// tests, benchmarks and the load tool (it is not meant for production use):
// 95% of them around 300 city centres over China's extent (lat 18–53, lng
// 73–135) with Zipf-like city sizes and Gaussian spread, 5% scattered
// uniformly; each carries 1–3 of SyntheticBrands (overlapping sets, the
// first brands more common) and 10% are inactive. IDs are "s000000",
// "s000001", ... The result depends only on n and seed.
func Synthetic(n int, seed int64) []Site {
	cs, cum := cities(seed)
	r := rand.New(rand.NewPCG(uint64(seed), 1))
	sites := make([]Site, n)
	for i := range sites {
		var lat, lng float64
		if r.Float64() < 0.95 {
			lat, lng = near(r, cs, cum, 1)
		} else {
			lat, lng = uniform(r)
		}
		k := 1 + r.IntN(3)
		brands := make([]string, 0, k)
		for len(brands) < k {
			// Brand j with weight ∝ 1/(j+1).
			u := r.Float64() * 2.2833333333333333 // 1 + 1/2 + 1/3 + 1/4 + 1/5
			j := 0
			for acc := 1.0; j < len(SyntheticBrands)-1 && u > acc; {
				j++
				acc += 1 / float64(j+1)
			}
			b := SyntheticBrands[j]
			dup := false
			for _, x := range brands {
				dup = dup || x == b
			}
			if !dup {
				brands = append(brands, b)
			}
		}
		sites[i] = Site{
			ID:     fmt.Sprintf("s%06d", i),
			Lat:    lat,
			Lng:    lng,
			Brands: brands,
			Active: r.Float64() >= 0.10,
		}
	}
	return sites
}

// SyntheticQueries returns n member locations for the sites of
// Synthetic(_, seed): 90% around the same cities with twice their spread,
// 10% uniform over the extent; each asks for a uniformly chosen brand of
// SyntheticBrands. Test and benchmark input only.
func SyntheticQueries(n int, seed int64) []Query {
	cs, cum := cities(seed)
	r := rand.New(rand.NewPCG(uint64(seed), 2))
	qs := make([]Query, n)
	for i := range qs {
		var lat, lng float64
		if r.Float64() < 0.9 {
			lat, lng = near(r, cs, cum, 2)
		} else {
			lat, lng = uniform(r)
		}
		qs[i] = Query{Lat: lat, Lng: lng, Brand: SyntheticBrands[r.IntN(len(SyntheticBrands))]}
	}
	return qs
}
