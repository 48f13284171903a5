package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

type runConfig struct {
	Requests   string
	N          int
	Kind       string
	Conns      []int
	Warmup     time.Duration
	Duration   time.Duration
	Threads    int
	Timeout    time.Duration
	WorkDir    string
	PG         string
	PGFast     bool
	Redis      string
	Scrmgw     string
	GatewayEnv []string
	Targets    []string
	Settle     time.Duration
	Reset      bool
	Keep       bool
	Out        string
	PprofURL   string
	BarePprof  bool
	Profile    bool
	QuietBelow float64
	QuietWait  time.Duration
	Retries    int
	Rounds     int
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		c       runConfig
		conns   string
		targets string
		env     listFlag
	)
	fs := newFlagSet("run", stderr)
	fs.StringVar(&c.Requests, "requests", "", "directory written by gen (default: generate --n callbacks into the work directory)")
	fs.IntVar(&c.N, "n", 400_000, "callbacks to generate when --requests is not given or empty")
	fs.StringVar(&c.Kind, "kind", "mix", "kind of generated callbacks: text (guide messages), contact (add_external_contact) or mix (4 texts : 1 contact)")
	fs.StringVar(&conns, "conns", "32,64,128", "wrk connection counts")
	fs.DurationVar(&c.Warmup, "warmup", 5*time.Second, "wrk warm-up before each measured run (0: none)")
	fs.DurationVar(&c.Duration, "duration", 15*time.Second, "measured wrk run")
	fs.IntVar(&c.Threads, "threads", 1, "wrk threads (the request cycle is exact with 1)")
	fs.DurationVar(&c.Timeout, "timeout", 2*time.Second, "wrk request timeout (counted as an error)")
	fs.StringVar(&c.WorkDir, "workdir", "", "directory for the servers' data and logs (default: a new one under /var/tmp, on disk)")
	fs.StringVar(&c.PG, "pg", "", "PostgreSQL URL of a server the harness may create a database on (default: start a throwaway cluster)")
	fs.BoolVar(&c.PGFast, "pg-nondurable", false, "start the throwaway cluster with fsync, full_page_writes and synchronous_commit off (NOT a production setting; label the figures)")
	fs.StringVar(&c.Redis, "redis", "", "Redis URL for the gateway, a dedicated instance (default: start redis-server with AOF everysec)")
	fs.StringVar(&c.Scrmgw, "scrmgw", "", "scrmgw binary (default: go build ./cmd/scrmgw into the work directory)")
	fs.Var(&env, "gateway-env", "extra KEY=VALUE for the gateway's environment (repeatable)")
	fs.StringVar(&targets, "targets", "bare,bare-enqueue,gateway", "what to measure, in order at each connection count: bare (verify+decrypt+parse),\n"+
		"bare-enqueue (bare + one asynq Enqueue per callback, PERF.md's second reference row) and gateway")
	fs.DurationVar(&c.Settle, "settle", time.Second, "pause after each run before counting inbox rows")
	fs.BoolVar(&c.Reset, "reset", true, "empty the inbox (and the self-started Redis) between connection counts, so every level records first deliveries")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work directory, database and servers' data afterwards")
	fs.StringVar(&c.Out, "out", "", "also write the results as JSON to this file")
	fs.StringVar(&c.PprofURL, "gateway-pprof", "", "base URL of a profiling build's net/http/pprof (e.g. http://127.0.0.1:6060): take a CPU profile of each measured gateway run")
	fs.BoolVar(&c.BarePprof, "bare-pprof", false, "serve pprof from the bare server and take a CPU profile of each measured bare run")
	fs.BoolVar(&c.Profile, "profile", false, "take CPU profiles of every measured run: the bare server serves pprof, and the gateway is built with a\n"+
		"pprof listener added through go build -overlay (the source tree is not touched; the product has no pprof endpoint)")
	fs.Float64Var(&c.QuietBelow, "quiet", 0.15, "before each run, wait until the machine's CPU use (cores, everything not ours) stays below this for 2 s;\n"+
		"a measured run during which other processes used more is repeated (0: off)")
	fs.DurationVar(&c.QuietWait, "quiet-wait", 2*time.Minute, "give up waiting for a quiet machine after this long (the run goes ahead, flagged)")
	fs.IntVar(&c.Rounds, "rounds", 1, "repeat the whole sweep this many times (the summary reports the median of each)")
	fs.IntVar(&c.Retries, "retries", 2, "how many times a measured run disturbed by other processes is repeated")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	for _, s := range strings.Split(conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("--conns: bad connection count %q", s)
		}
		c.Conns = append(c.Conns, n)
	}
	for _, t := range strings.Split(targets, ",") {
		switch t = strings.TrimSpace(t); t {
		case "bare", "bare-enqueue", "gateway":
			c.Targets = append(c.Targets, t)
		default:
			return fmt.Errorf("--targets: unknown target %q", t)
		}
	}
	c.GatewayEnv = env
	if c.Profile {
		c.BarePprof = true
	}
	h := &harness{cfg: c, stdout: stdout, stderr: stderr}
	defer h.cleanup()
	return h.run(ctx)
}

type harness struct {
	cfg            runConfig
	stdout, stderr io.Writer
	cleanups       []func()

	meta     *genMeta
	keys     []string
	script   string
	pg       *pgServer
	adminPG  string
	dbName   string
	dbURL    string
	redisP   *proc
	redis    string
	gateway  *proc
	gwURL    string
	bareURL  string
	bareQURL string
	pprofB   string
	cpu      cpuSampler
	round    int

	loadStart, loadEnd string // /proc/loadavg when measuring started and ended
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.stderr, "== "+format+"\n", args...)
}

func (h *harness) defer_(f func()) { h.cleanups = append(h.cleanups, f) }

func (h *harness) cleanup() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
}

func (h *harness) has(target string) bool {
	for _, t := range h.cfg.Targets {
		if t == target {
			return true
		}
	}
	return false
}

func (h *harness) run(ctx context.Context) error {
	c := &h.cfg
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk not found: apt-get install -y wrk")
	}
	if c.WorkDir == "" {
		d, err := os.MkdirTemp("/var/tmp", "scrmgw-load-")
		if err != nil {
			return err
		}
		c.WorkDir = d
		if !c.Keep {
			h.defer_(func() { os.RemoveAll(d) })
		}
	}
	os.Chmod(c.WorkDir, 0o755)
	h.logf("work directory %s", c.WorkDir)

	if err := h.loadRequests(ctx); err != nil {
		return err
	}
	if h.has("gateway") || h.has("bare-enqueue") {
		if err := h.startBackends(ctx); err != nil {
			return err
		}
	}
	if h.has("gateway") {
		if err := h.startGateway(ctx); err != nil {
			return err
		}
	}
	if h.has("bare") {
		if err := h.startBare(ctx, false); err != nil {
			return err
		}
	}
	if h.has("bare-enqueue") {
		if err := h.startBare(ctx, true); err != nil {
			return err
		}
	}
	h.loadStart = loadAvg()
	h.logf("machine: %d CPUs (%s); load generator and servers share them; load average %s", runtime.NumCPU(), cpuModel(), h.loadStart)

	var (
		results []*wrkResult
		checks  []*durabilityCheck
	)
	offsets := map[string]int64{}
	for round := 1; round <= c.Rounds; round++ {
		h.round = round
		for li, conns := range c.Conns {
			if (round > 1 || li > 0) && c.Reset && (h.has("gateway") || h.has("bare-enqueue")) {
				if err := h.reset(ctx); err != nil {
					return err
				}
				offsets["gateway"] = 0
			}
			var (
				level []*wrkResult
				// gwRuns are the gateway runs since the inbox was last
				// emptied: what the next durability check covers.
				gwRuns []*wrkResult
			)
			checkLevel := func() error {
				if !h.has("gateway") {
					return nil
				}
				time.Sleep(c.Settle)
				chk, err := h.verify(ctx, conns, gwRuns)
				if err != nil {
					return err
				}
				chk.Round = round
				checks = append(checks, chk)
				h.logf("durability c=%d: %s", conns, chk.Summary)
				return nil
			}
			for _, target := range c.Targets {
				url := map[string]string{"bare": h.bareURL, "bare-enqueue": h.bareQURL, "gateway": h.gwURL}[target]
				// Wait for a quiet machine before the warm-up, so that the
				// measured run follows it directly.
				h.waitQuiet(ctx)
				if c.Warmup > 0 {
					h.logf("%s: warm-up %s at %d connections", target, c.Warmup, conns)
					r, err := h.wrk(ctx, target, url, conns, c.Warmup, offsets[target], false)
					if err != nil {
						return err
					}
					r.Warmup, r.Round = true, round
					offsets[target] += r.Sent
					level = append(level, r)
					if target == "gateway" {
						gwRuns = append(gwRuns, r)
					}
				}
				var r *wrkResult
				for attempt := 0; ; attempt++ {
					if attempt > 0 {
						h.waitQuiet(ctx)
					}
					h.logf("%s: %s at %d connections", target, c.Duration, conns)
					var err error
					r, err = h.wrk(ctx, target, url, conns, c.Duration, offsets[target], true)
					if err != nil {
						return err
					}
					r.Round = round
					offsets[target] += r.Sent
					if target == "gateway" {
						gwRuns = append(gwRuns, r)
						// Redeliveries are cheaper than first deliveries:
						// a run past the end of the cycle is flagged.
						r.Wrapped = offsets[target] > int64(len(h.keys))
					}
					if target == "bare-enqueue" {
						// Its tasks must not weigh on the gateway's Redis.
						if err := h.clearQueues(ctx, bareQueue); err != nil {
							return err
						}
					}
					if c.QuietBelow <= 0 || r.Cores["other"] <= c.QuietBelow || attempt >= c.Retries {
						r.Disturbed = c.QuietBelow > 0 && r.Cores["other"] > c.QuietBelow
						break
					}
					h.logf("%s c=%d: other processes used %.2f cores during the run (%.0f req/s); repeating it",
						target, conns, r.Cores["other"], r.RPS)
					r.Warmup = true // kept for the durability count, not reported
					r.Discarded = true
					level = append(level, r)
					if target == "gateway" && c.Reset {
						// Check what was sent so far, then start the
						// cycle again on an empty inbox, so that the
						// repeated run measures first deliveries too.
						if err := checkLevel(); err != nil {
							return err
						}
						if err := h.reset(ctx); err != nil {
							return err
						}
						offsets[target], gwRuns = 0, nil
					}
				}
				level = append(level, r)
				h.logf("%s c=%d: %.0f req/s, p50 %s, p99 %s, non-2xx %d, socket errors %d, cores %s",
					target, conns, r.RPS, fmtDur(r.P50), fmtDur(r.P99), r.Non2xx, r.SocketErrs, fmtCores(r.Cores))
				if target == "gateway" && r.Commits > 0 {
					h.logf("gateway c=%d: %d database commits (%.0f requests per commit), %d redis commands",
						conns, r.Commits, float64(r.Completed)/float64(r.Commits), r.RedisCmds)
				}
			}
			results = append(results, level...)
			if err := checkLevel(); err != nil {
				return err
			}
		}
	}
	h.loadEnd = loadAvg()
	h.report(results, checks)
	if c.Out != "" {
		b, _ := json.MarshalIndent(map[string]any{"config": c, "meta": h.meta, "machine": map[string]any{
			"cpus": runtime.NumCPU(), "model": cpuModel(), "loadavg_start": h.loadStart, "loadavg_end": h.loadEnd},
			"results": results, "durability": checks}, "", "  ")
		if err := os.WriteFile(c.Out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	for _, chk := range checks {
		if !chk.OK {
			return errors.New("durability check failed")
		}
	}
	for _, r := range results {
		if !r.Warmup && r.Errors() > 0 {
			return fmt.Errorf("%s at %d connections had %d errors", r.Target, r.Conns, r.Errors())
		}
	}
	return nil
}

func (h *harness) loadRequests(ctx context.Context) error {
	c := &h.cfg
	if c.Requests == "" {
		c.Requests = filepath.Join(c.WorkDir, "requests")
	}
	if _, err := os.Stat(filepath.Join(c.Requests, metaFile)); errors.Is(err, os.ErrNotExist) {
		h.logf("generating %d %s callbacks into %s", c.N, c.Kind, c.Requests)
		if _, err := generate(ctx, genConfig{N: c.N, Kind: c.Kind, Out: c.Requests}, h.stderr); err != nil {
			return err
		}
	}
	meta, err := readMeta(c.Requests)
	if err != nil {
		return err
	}
	keys, err := readKeys(c.Requests)
	if err != nil {
		return err
	}
	if len(keys) != meta.N {
		return fmt.Errorf("%s has %d keys, meta says %d", keysFile, len(keys), meta.N)
	}
	h.meta, h.keys = meta, keys
	h.script = filepath.Join(c.Requests, luaFile)
	h.logf("%d %s callbacks generated at %s", meta.N, meta.Kind, meta.GeneratedAt.Format(time.RFC3339))
	return nil
}
