package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// levelKey is one connection count of one round.
type levelKey struct{ round, conns int }

func (h *harness) report(results []*wrkResult, checks []*durabilityCheck) {
	fmt.Fprintf(h.stdout, "\nWeCom callbacks, %d %s requests cycled, wrk -t%d, %s per run after %s warm-up; %d CPUs (%s)\n",
		h.meta.N, h.meta.Kind, h.cfg.Threads, h.cfg.Duration, h.cfg.Warmup, runtime.NumCPU(), cpuModel())
	fmt.Fprintf(h.stdout, "load average (1, 5, 15 min) at the start: %s; at the end: %s\n", h.loadStart, h.loadEnd)
	bare := map[levelKey]float64{}
	for _, r := range results {
		if !r.Warmup && r.Target == "bare" {
			bare[levelKey{r.Round, r.Conns}] = r.RPS
		}
	}
	w := tabwriter.NewWriter(h.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "round\tconns\ttarget\treq/s\tp50\tp90\tp99\tp99.9\tmax\terrors\tnon-2xx\tof bare\tcores: server\tpg\tredis\twrk\tother\tmachine\tCPU µs/cb\t")
	type sk struct {
		conns  int
		target string
	}
	var (
		order  []sk
		groups = map[sk][]*wrkResult{}
		ratios = map[sk][]float64{}
	)
	for _, r := range results {
		if r.Warmup {
			continue
		}
		ratio := ""
		if b := bare[levelKey{r.Round, r.Conns}]; r.Target != "bare" && b > 0 {
			ratio = fmt.Sprintf("%.0f%%", 100*r.RPS/b)
			ratios[sk{r.Conns, r.Target}] = append(ratios[sk{r.Conns, r.Target}], r.RPS/b)
		}
		if r.Disturbed {
			ratio += " (disturbed)"
		}
		if r.Wrapped {
			ratio += " (redeliveries)"
		}
		k := sk{r.Conns, r.Target}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
		// CPU per callback of the server and its PostgreSQL and Redis:
		// what the machine's other users cannot inflate much.
		perCB := 0.0
		if r.RPS > 0 {
			perCB = (r.Cores[r.Target] + r.Cores["postgres"] + r.Cores["redis"]) / r.RPS * 1e6
		}
		fmt.Fprintf(w, "%d\t%d\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t\n",
			r.Round, r.Conns, r.Target, r.RPS, fmtDur(r.P50), fmtDur(r.P90), fmtDur(r.P99), fmtDur(r.P999), fmtDur(r.Max),
			r.SocketErrs, r.Non2xx, ratio, r.Cores[r.Target], r.Cores["postgres"], r.Cores["redis"], r.Cores["wrk"], r.Cores["other"], r.Cores["machine"], perCB)
	}
	w.Flush()
	if h.cfg.Rounds > 1 {
		fmt.Fprintf(h.stdout, "\nMedian of %d rounds (req/s range in brackets; the ratio is the median of the per-round ratios):\n", h.cfg.Rounds)
		w = tabwriter.NewWriter(h.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "conns\ttarget\treq/s\trange\tp50\tp99\terrors\tof bare\t")
		for _, k := range order {
			g := groups[k]
			rps := make([]float64, len(g))
			p50 := make([]float64, len(g))
			p99 := make([]float64, len(g))
			var errs int64
			for i, r := range g {
				rps[i], p50[i], p99[i] = r.RPS, float64(r.P50), float64(r.P99)
				errs += r.Errors()
			}
			ratio := ""
			if len(ratios[k]) > 0 {
				ratio = fmt.Sprintf("%.0f%%", 100*median(ratios[k]))
			}
			fmt.Fprintf(w, "%d\t%s\t%.0f\t[%.0f..%.0f]\t%s\t%s\t%d\t%s\t\n", k.conns, k.target, median(rps),
				slices.Min(rps), slices.Max(rps), fmtDur(time.Duration(median(p50))), fmtDur(time.Duration(median(p99))), errs, ratio)
		}
		w.Flush()
	}
	if len(checks) > 0 {
		fmt.Fprintln(h.stdout, "\nDurability (PostgreSQL inbox after each connection count):")
		for _, c := range checks {
			fmt.Fprintf(h.stdout, "  round %d, c=%d: %s\n", c.Round, c.Conns, c.Summary)
		}
	}
	h.reportTargets(results, bare)
	for _, r := range results {
		if r.ProfilePath != "" && !r.Warmup {
			fmt.Fprintf(h.stdout, "cpu profile %s c=%d (round %d): %s\n", r.Target, r.Conns, r.Round, r.ProfilePath)
		}
	}
}

// Targets of docs/performance-callbacks.md (PERF.md).
const (
	targetRPS      = 15000
	targetP99      = 25 * time.Millisecond
	targetOfBare   = 0.5
	targetsComment = ">= 15,000 callbacks/s, p99 < 25 ms, no errors, >= 50% of bare"
)

// reportTargets says, for each measured gateway run, which targets it met.
func (h *harness) reportTargets(results []*wrkResult, bare map[levelKey]float64) {
	var lines []string
	for _, r := range results {
		if r.Warmup || r.Target != "gateway" {
			continue
		}
		var miss []string
		if r.RPS < targetRPS {
			miss = append(miss, fmt.Sprintf("%.0f/s", r.RPS))
		}
		if r.P99 >= targetP99 {
			miss = append(miss, "p99 "+fmtDur(r.P99))
		}
		if r.Errors() > 0 {
			miss = append(miss, fmt.Sprintf("%d errors", r.Errors()))
		}
		if b := bare[levelKey{r.Round, r.Conns}]; b > 0 && r.RPS < targetOfBare*b {
			miss = append(miss, fmt.Sprintf("%.0f%% of bare", 100*r.RPS/b))
		}
		verdict := "met"
		if len(miss) > 0 {
			verdict = "NOT met: " + strings.Join(miss, ", ")
		}
		if r.Disturbed {
			verdict += " (run disturbed by other processes)"
		}
		if r.Wrapped {
			verdict += " (the request cycle ran out: part of the run were redeliveries; use a larger --n)"
		}
		lines = append(lines, fmt.Sprintf("  round %d, c=%d: %s", r.Round, r.Conns, verdict))
	}
	if len(lines) > 0 {
		fmt.Fprintf(h.stdout, "\nTargets (%s):\n%s\n", targetsComment, strings.Join(lines, "\n"))
	}
}

// loadAvg returns the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func fmtCores(m map[string]float64) string {
	var parts []string
	for _, k := range []string{"gateway", "bare", "bare-enqueue", "postgres", "redis", "wrk", "other", "machine"} {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, v))
		}
	}
	return strings.Join(parts, ", ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
