package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/store/geo"
)

// nearestConfig holds the flags of the nearest subcommand.
type nearestConfig struct {
	Stores        int    // synthetic stores (default 200,000)
	Queries       int    // lookups timed against geo.Index (default 100,000)
	LinearQueries int    // lookups timed against the linear scan (default 2,000)
	PGQueries     int    // lookups timed per PostGIS variant (default 20,000)
	Seed          int64  // data set seed (default 1)
	PG            string // PostgreSQL URL; empty skips PostGIS
	PGKeep        bool   // keep the benchmark schema
	Explain       bool   // print PostGIS plans
}

// result is one row of the table.
type result struct {
	method string
	lats   []time.Duration // sorted
}

func (r result) pct(p float64) time.Duration {
	if len(r.lats) == 0 {
		return 0
	}
	return r.lats[int(p*float64(len(r.lats)-1))]
}

func (r result) mean() time.Duration {
	var sum time.Duration
	for _, d := range r.lats {
		sum += d
	}
	return sum / time.Duration(max(1, len(r.lats)))
}

// timeEach calls f(i) for i in [0, n), timing each call on its own, and
// returns the durations sorted. The clock reads (tens of ns) are included,
// the same for every method.
func timeEach(n int, f func(i int) error) ([]time.Duration, error) {
	runtime.GC()
	lats := make([]time.Duration, n)
	for i := range n {
		t0 := time.Now()
		err := f(i)
		lats[i] = time.Since(t0)
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(lats)
	return lats, nil
}

func runNearest(ctx context.Context, c nearestConfig, stdout, stderr io.Writer) error {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "# "+format+"\n", args...) }

	t0 := time.Now()
	sites := geo.Synthetic(c.Stores, c.Seed)
	queries := geo.SyntheticQueries(max(c.Queries, c.LinearQueries, c.PGQueries), c.Seed)
	logf("generated %d stores and %d member locations in %v", len(sites), len(queries), time.Since(t0).Round(time.Millisecond))

	ix := geo.New()
	t0 = time.Now()
	if err := ix.Build(sites); err != nil {
		return err
	}
	build := time.Since(t0)
	logf("built geo.Index in %v", build.Round(time.Millisecond))

	// The answers every method is checked against: the index's first hit.
	type answer struct {
		id string
		m  float64
	}
	want := make([]answer, len(queries))
	for i, q := range queries {
		ix.Nearest(q.Lat, q.Lng, q.Brand, 0, func(id string, d float64) bool {
			want[i] = answer{id, d}
			return false
		})
	}

	var results []result
	stopFirst := func(string, float64) bool { return false }
	lats, err := timeEach(c.Queries, func(i int) error {
		q := &queries[i]
		ix.Nearest(q.Lat, q.Lng, q.Brand, 0, stopFirst)
		return nil
	})
	if err != nil {
		return err
	}
	results = append(results, result{"geo.Index, in process", lats})

	var notes []string
	if c.LinearQueries > 0 {
		lin := geo.NewLinearScan(sites)
		agree := 0
		lats, err = timeEach(c.LinearQueries, func(i int) error {
			q := &queries[i]
			id, _, _ := lin.Nearest(q.Lat, q.Lng, q.Brand)
			if id == want[i].id {
				agree++
			}
			return nil
		})
		if err != nil {
			return err
		}
		results = append(results, result{"linear scan, in process", lats})
		notes = append(notes, fmt.Sprintf("linear scan agrees with geo.Index on %d of %d lookups", agree, c.LinearQueries))
	}

	if c.PG != "" && c.PGQueries > 0 {
		pg, err := openPostGIS(ctx, c.PG, logf)
		if err != nil {
			return err
		}
		defer pg.close(context.WithoutCancel(ctx), c.PGKeep)
		if err := pg.load(ctx, sites); err != nil {
			return err
		}
		for _, v := range pgVariants {
			agree, maxDiff := 0, 0.0
			// Warm the statement cache and the buffer cache first.
			for i := range min(2000, c.PGQueries) {
				if _, _, err := pg.nearest(ctx, v, queries[i]); err != nil {
					return err
				}
			}
			if c.Explain && v.table != "" {
				plan, err := pg.explain(ctx, v, queries[0])
				if err != nil {
					return err
				}
				logf("plan, %s:\n%s", v.name, plan)
			}
			lats, err := timeEach(c.PGQueries, func(i int) error {
				id, m, err := pg.nearest(ctx, v, queries[i])
				if id == want[i].id {
					agree++
					maxDiff = max(maxDiff, abs(m-want[i].m))
				}
				return err
			})
			if err != nil {
				return err
			}
			results = append(results, result{v.name, lats})
			if v.table == "" {
				continue
			}
			notes = append(notes, fmt.Sprintf("%s agrees with geo.Index on %d of %d lookups (largest distance difference %.3g m)",
				v.name, agree, c.PGQueries, maxDiff))
		}
	}

	fmt.Fprintf(stdout, "nearest eligible store: %d stores (%d brands, 1-3 per store, 10%% inactive), seed %d\n",
		c.Stores, len(geo.SyntheticBrands), c.Seed)
	fmt.Fprintf(stdout, "machine: %d CPUs, GOMAXPROCS %d, %s, %s %s/%s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(stdout, "geo.Index build: %v\n\n", build.Round(time.Millisecond))
	printTable(stdout, results)
	fmt.Fprintln(stdout)
	for _, n := range notes {
		fmt.Fprintln(stdout, n)
	}
	return nil
}

func abs(x float64) float64 { return max(x, -x) }

func printTable(w io.Writer, results []result) {
	const row = "%-38s %8s %9s %9s %9s %9s %12s %12s\n"
	fmt.Fprintf(w, row, "method", "lookups", "p50", "p99", "p99.9", "mean", "p50 / index", "p99 / index")
	base := results[0]
	for _, r := range results {
		fmt.Fprintf(w, row, r.method, fmt.Sprint(len(r.lats)),
			dur(r.pct(0.50)), dur(r.pct(0.99)), dur(r.pct(0.999)), dur(r.mean()),
			ratio(r.pct(0.50), base.pct(0.50)), ratio(r.pct(0.99), base.pct(0.99)))
	}
}

func dur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	default:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	x := float64(a) / float64(b)
	if x < 10 {
		return fmt.Sprintf("%.1f×", x)
	}
	return fmt.Sprintf("%.0f×", x)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
