package geo

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// The benchmark data set: 200,000 synthetic stores over China, 5 brands,
// 1–3 brands a store, 10% inactive; member locations from the same cities.
const (
	benchStores  = 200_000
	benchQueries = 100_000
	benchSeed    = 1
)

var bench struct {
	once    sync.Once
	sites   []Site
	queries []Query
	ix      *Index
	linear  *LinearScan
}

func benchData(b *testing.B) {
	b.Helper()
	bench.once.Do(func() {
		bench.sites = Synthetic(benchStores, benchSeed)
		bench.queries = SyntheticQueries(benchQueries, benchSeed)
		bench.ix = New()
		if err := bench.ix.Build(bench.sites); err != nil {
			panic(err)
		}
		bench.linear = NewLinearScan(bench.sites)
	})
}

func stopFirst(string, float64) bool { return false }

// BenchmarkNearest finds the nearest eligible store (the first visit).
func BenchmarkNearest(b *testing.B) {
	benchData(b)
	ix, qs := bench.ix, bench.queries
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q := &qs[i%len(qs)]
		i++
		ix.Nearest(q.Lat, q.Lng, q.Brand, 0, stopFirst)
	}
}

// BenchmarkNearestN10 returns the 10 nearest eligible stores.
func BenchmarkNearestN10(b *testing.B) {
	benchData(b)
	ix, qs := bench.ix, bench.queries
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		q := &qs[i%len(qs)]
		i++
		ix.NearestN(q.Lat, q.Lng, q.Brand, 0, 10)
	}
}

// BenchmarkNearestParallel is BenchmarkNearest from every core at once.
func BenchmarkNearestParallel(b *testing.B) {
	benchData(b)
	ix, qs := bench.ix, bench.queries
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			q := &qs[i%len(qs)]
			i += 7
			ix.Nearest(q.Lat, q.Lng, q.Brand, 0, stopFirst)
		}
	})
}

// BenchmarkLinearScan is the baseline: the nearest eligible store by
// scanning all 200,000 (precomputed unit vectors, brand bit masks).
func BenchmarkLinearScan(b *testing.B) {
	benchData(b)
	l, qs := bench.linear, bench.queries
	i := 0
	for b.Loop() {
		q := &qs[i%len(qs)]
		i++
		l.Nearest(q.Lat, q.Lng, q.Brand)
	}
}

// BenchmarkBuild bulk-loads the 200,000 stores.
func BenchmarkBuild(b *testing.B) {
	benchData(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := New().Build(bench.sites); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpsert moves one store per operation (copy-on-write of its
// brands' shards, with the periodic compaction amortised in).
func BenchmarkUpsert(b *testing.B) {
	benchData(b)
	ix := New()
	if err := ix.Build(bench.sites); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := bench.sites[(i*7919)%len(bench.sites)]
		s.Lat += 0.001 * float64(1+i%3)
		i++
		if err := ix.Upsert(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNearestLatency times every lookup on its own and reports the
// distribution: p50-ns, p99-ns and p999-ns per nearest-eligible lookup
// (ns/op includes the clock reads).
func BenchmarkNearestLatency(b *testing.B) {
	benchData(b)
	ix, qs := bench.ix, bench.queries
	report(b, func(i int) {
		q := &qs[i%len(qs)]
		ix.Nearest(q.Lat, q.Lng, q.Brand, 0, stopFirst)
	})
}

// BenchmarkLinearScanLatency is BenchmarkNearestLatency for the baseline.
func BenchmarkLinearScanLatency(b *testing.B) {
	benchData(b)
	l, qs := bench.linear, bench.queries
	report(b, func(i int) {
		q := &qs[i%len(qs)]
		l.Nearest(q.Lat, q.Lng, q.Brand)
	})
}

// report runs f b.N times, timing each call, and reports percentiles.
func report(b *testing.B, f func(i int)) {
	b.Helper()
	durs := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		f(i)
		durs = append(durs, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(durs)
	at := func(p float64) float64 { return float64(durs[int(p*float64(len(durs)-1))]) }
	b.ReportMetric(at(0.50), "p50-ns")
	b.ReportMetric(at(0.99), "p99-ns")
	b.ReportMetric(at(0.999), "p999-ns")
}
