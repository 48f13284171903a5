package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
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

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		c       runConfig
		conns   string
		targets string
		env     listFlag
	)
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
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
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scrmgw-load run: unexpected argument %q\n", fs.Arg(0))
		return errUsage
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

func (h *harness) startBackends(ctx context.Context) error {
	c := &h.cfg
	h.adminPG = c.PG
	if h.adminPG == "" {
		s, err := startPostgres(filepath.Join(c.WorkDir, "pg"), !c.PGFast)
		if err != nil {
			return err
		}
		h.pg = s
		h.defer_(func() {
			s.stop()
			if !c.Keep {
				os.RemoveAll(s.dir)
			}
		})
		h.adminPG = s.url("postgres")
		h.cpu.postmaster = s.postmasterPID()
		h.logf("postgresql on 127.0.0.1:%d with %s", s.port, strings.Join(s.settings, " "))
	}
	h.dbName = "scrmgw_load_" + strconv.FormatInt(time.Now().Unix(), 10)
	u, err := createDatabase(ctx, h.adminPG, h.dbName)
	if err != nil {
		return err
	}
	h.dbURL = u
	if !c.Keep {
		h.defer_(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dropDatabase(ctx, h.adminPG, h.dbName)
		})
	}
	h.redis = c.Redis
	if h.redis == "" {
		p, url, err := startRedis(ctx, filepath.Join(c.WorkDir, "redis"))
		if err != nil {
			return err
		}
		h.redisP, h.redis = p, url
		h.defer_(func() {
			p.stop(10 * time.Second)
			if !c.Keep {
				os.RemoveAll(filepath.Join(c.WorkDir, "redis"))
			}
		})
		h.cpu.redis = p.pid()
		h.logf("redis on %s (appendonly yes, appendfsync everysec)", url)
	}
	return nil
}

func (h *harness) startGateway(ctx context.Context) error {
	c := &h.cfg
	bin := c.Scrmgw
	var extraEnv []string
	if c.Profile {
		pp, err := freePort()
		if err != nil {
			return err
		}
		if bin, err = buildProfiling(ctx, c.WorkDir); err != nil {
			return err
		}
		extraEnv = append(extraEnv, profileAddrEnv+"=127.0.0.1:"+strconv.Itoa(pp))
		c.PprofURL = "http://127.0.0.1:" + strconv.Itoa(pp)
		h.logf("gateway built with a pprof listener on %s (profiling build, not the product)", c.PprofURL)
	} else if bin == "" {
		bin = filepath.Join(c.WorkDir, "scrmgw")
		h.logf("building scrmgw")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/scrmgw/scrmgw/cmd/scrmgw").CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build ./cmd/scrmgw (run from the module): %v\n%s", err, out)
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	env := append(gatewayEnv(os.Environ()), extraEnv...)
	env = append(env,
		"SCRMGW_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"SCRMGW_DATABASE_URL="+h.dbURL,
		"SCRMGW_REDIS_URL="+h.redis,
		"SCRMGW_ADMIN_TOKEN=scrmgw_admin_"+randomHex(16),
		"SCRMGW_SECURITY_PHONE_KEY="+randomHex(32),
		"SCRMGW_DATA_DIR="+filepath.Join(c.WorkDir, "gateway-data"),
		"SCRMGW_WECOM_CORP_ID="+h.meta.CorpID,
		"SCRMGW_WECOM_AGENT_ID="+h.meta.AgentID,
		"SCRMGW_WECOM_SECRET="+wecomfake.DefaultSecret,
		"SCRMGW_WECOM_TOKEN="+h.meta.Token,
		"SCRMGW_WECOM_ENCODING_AES_KEY="+h.meta.EncodingAESKey,
		"SCRMGW_WECOM_BRAND=load",
		// The requests were signed when gen ran: no replay window.
		"SCRMGW_WECOM_MAX_CLOCK_SKEW=0",
		// Nothing calls the WeCom API on this path; make sure nothing
		// could reach the internet if it did.
		"SCRMGW_WECOM_API_BASE=http://127.0.0.1:9",
	)
	env = append(env, c.GatewayEnv...)
	p, err := startProc("scrmgw", filepath.Join(c.WorkDir, "gateway.log"), env, bin, "serve", "--workers=false")
	if err != nil {
		return err
	}
	h.gateway = p
	h.defer_(func() { p.stop(30 * time.Second) })
	h.gwURL = "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitHTTP(ctx, h.gwURL+"/healthz", p, 60*time.Second); err != nil {
		return err
	}
	h.cpu.gateway = p.pid()
	h.logf("gateway %s serve --workers=false on %s (log: %s)", bin, h.gwURL, p.log.Name())
	return nil
}

// gatewayEnv drops SCRMGW_* variables of our own environment: the
// gateway refuses unknown ones and must see exactly ours.
func gatewayEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SCRMGW_") {
			out = append(out, kv)
		}
	}
	return out
}

func (h *harness) startBare(ctx context.Context, enqueue bool) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	name := "bare"
	args := []string{"bare", "--addr", "127.0.0.1:" + strconv.Itoa(port),
		"--token", h.meta.Token, "--encoding-aes-key", h.meta.EncodingAESKey, "--corp-id", h.meta.CorpID}
	if enqueue {
		name = "bare-enqueue"
		args = append(args, "--redis", h.redis)
	}
	if h.cfg.BarePprof && !enqueue {
		pp, err := freePort()
		if err != nil {
			return err
		}
		h.pprofB = "http://127.0.0.1:" + strconv.Itoa(pp)
		args = append(args, "--pprof", "127.0.0.1:"+strconv.Itoa(pp))
	}
	p, err := startProc(name, filepath.Join(h.cfg.WorkDir, name+".log"), os.Environ(), self, args...)
	if err != nil {
		return err
	}
	h.defer_(func() { p.stop(10 * time.Second) })
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitHTTP(ctx, url+"/healthz", p, 30*time.Second); err != nil {
		return err
	}
	if enqueue {
		h.bareQURL, h.cpu.bareQ = url, p.pid()
	} else {
		h.bareURL, h.cpu.bare = url, p.pid()
	}
	h.logf("%s server on %s", name, url)
	return nil
}

// wrk runs one wrk invocation against target and samples CPU use over
// the measured window; measured runs of a profiled target take a CPU
// profile meanwhile.
func (h *harness) wrk(ctx context.Context, target, url string, conns int, d time.Duration, offset int64, measured bool) (*wrkResult, error) {
	var (
		startCPU, endCPU cpuSample
		startAt, endAt   time.Time
		profDone         chan struct{}
		profPath         string
	)
	pprofBase := ""
	if measured && target == "gateway" {
		pprofBase = h.cfg.PprofURL
	} else if measured && target == "bare" {
		pprofBase = h.pprofB
	}
	w := wrkRun{Script: h.script, URL: url, Threads: h.cfg.Threads, Conns: conns, Duration: d, Timeout: h.cfg.Timeout, Offset: offset,
		OnStart: func() {
			startCPU, startAt = h.cpu.sample(), time.Now()
			if pprofBase != "" {
				profPath = filepath.Join(h.cfg.WorkDir, fmt.Sprintf("%s-c%d-r%d.pprof", target, conns, h.round))
				profDone = make(chan struct{})
				secs := max(int((d-2*time.Second)/time.Second), 1)
				go func() {
					defer close(profDone)
					if err := fetch(pprofBase+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), profPath); err != nil {
						h.logf("cpu profile of %s: %v", target, err)
						profPath = ""
					}
				}()
			}
		},
		OnStop: func() { endCPU, endAt = h.cpu.sample(), time.Now() }}
	var st0 backendStats
	if target == "gateway" {
		st0 = h.backendStats(ctx)
	}
	r, err := w.run(ctx)
	if err != nil {
		return nil, err
	}
	if endCPU == nil {
		endCPU, endAt = h.cpu.sample(), time.Now()
	}
	if target == "gateway" {
		st1 := h.backendStats(ctx)
		r.Commits = st1.commits - st0.commits
		r.RedisCmds = st1.redisCmds - st0.redisCmds
	}
	r.Target = target
	if startCPU != nil {
		window := endAt.Sub(startAt)
		r.Cores = cores(startCPU, endCPU, window)
		r.Cores["wrk"] = r.WrkCPU / window.Seconds()
		other := r.Cores["machine"]
		for k, v := range r.Cores {
			if k != "machine" {
				other -= v
			}
		}
		r.Cores["other"] = max(other, 0)
	}
	if profDone != nil {
		<-profDone
		r.ProfilePath = profPath
	}
	return r, nil
}

// backendStats are counters of PostgreSQL and Redis read around a run:
// how many transactions the gateway's database committed and how many
// commands Redis processed.
type backendStats struct{ commits, redisCmds int64 }

func (h *harness) backendStats(ctx context.Context) backendStats {
	var st backendStats
	if h.dbURL == "" {
		return st
	}
	if conn, err := pgx.Connect(ctx, h.dbURL); err == nil {
		conn.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&st.commits)
		conn.Close(ctx)
	}
	if rdb, err := redisClient(h.redis); err == nil {
		info, _ := rdb.Info(ctx, "stats").Result()
		for _, l := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "total_commands_processed:"); ok {
				st.redisCmds, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		rdb.Close()
	}
	return st
}

// waitQuiet waits until the machine is idle apart from our idle servers:
// other sessions share this machine, and their builds and tests would be
// measured as ours.
func (h *harness) waitQuiet(ctx context.Context) {
	c := h.cfg
	if c.QuietBelow <= 0 {
		return
	}
	deadline := time.Now().Add(c.QuietWait)
	logged := false
	for time.Now().Before(deadline) && ctx.Err() == nil {
		a := machineBusy()
		time.Sleep(2 * time.Second)
		if busy := (machineBusy() - a) / 2; busy < c.QuietBelow {
			return
		} else if !logged {
			h.logf("machine busy (%.2f cores used by others); waiting for it to be quiet", busy)
			logged = true
		}
	}
	h.logf("machine still busy after %s; measuring anyway (the run is flagged)", c.QuietWait)
}

func fetch(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// durabilityCheck compares what wrk had acknowledged with the inbox.
type durabilityCheck struct {
	Round int `json:"round"`
	Conns int `json:"conns"`
	// Sent and Acked count requests (positions in the cycle) over the
	// level's gateway runs, warm-up included; InFlight is Sent-Acked:
	// requests still unanswered when wrk stopped (or failed).
	Sent, Acked, InFlight int64
	// DistinctSent is how many different callbacks were sent.
	DistinctSent int64
	// AckedDistinctMin/Max bound how many different callbacks were
	// acknowledged (exact when the cycle did not wrap).
	AckedDistinctMin, AckedDistinctMax int64
	// Rows are the inbox rows of the channel; Foreign those whose key is
	// not among the sent callbacks; Missing the sent callbacks with no row.
	Rows, Foreign, Missing int64
	// Queued is the tasks waiting in asynq's inbox queues.
	Queued  int64  `json:"queued"`
	OK      bool   `json:"ok"`
	Summary string `json:"summary"`
}

// verify checks the inbox after a level: every acknowledged callback has
// exactly one row (the unique key makes more impossible; the count and
// key comparison check none is missing), and nothing else is there.
func (h *harness) verify(ctx context.Context, conns int, runs []*wrkResult) (*durabilityCheck, error) {
	n := int64(len(h.keys))
	chk := &durabilityCheck{Conns: conns}
	if len(runs) == 0 {
		return chk, nil
	}
	first := runs[0].Offset
	for _, r := range runs {
		chk.Sent += r.Sent
		chk.Acked += r.Acked()
	}
	chk.InFlight = chk.Sent - chk.Acked
	// The runs of a level continue one cycle: positions first .. first+Sent-1.
	sent := make([]bool, n)
	for p := first; p < first+chk.Sent; p++ {
		sent[p%n] = true
		if p-first >= n {
			break
		}
	}
	for _, s := range sent {
		if s {
			chk.DistinctSent++
		}
	}
	if chk.Sent <= n {
		// Every position is a different callback.
		chk.AckedDistinctMin, chk.AckedDistinctMax = chk.Acked, chk.Acked
	} else {
		// Each unanswered position can leave at most one callback
		// without an acknowledged delivery.
		chk.AckedDistinctMin, chk.AckedDistinctMax = max(n-chk.InFlight, 0), n
	}

	conn, err := pgx.Connect(ctx, h.dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	index := make(map[string]int, n)
	for i, k := range h.keys {
		index[k] = i
	}
	rows, err := conn.Query(ctx, "SELECT dedup_key FROM inbox_messages WHERE channel = 'wecom'")
	if err != nil {
		return nil, err
	}
	seen := make([]bool, n)
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return nil, err
		}
		chk.Rows++
		i, ok := index[k]
		if !ok || !sent[i] || seen[i] {
			chk.Foreign++
			continue
		}
		seen[i] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range sent {
		if sent[i] && !seen[i] {
			chk.Missing++
		}
	}
	if rdb, err := redisClient(h.redis); err == nil {
		for _, q := range []string{"default", "critical"} {
			l, _ := rdb.LLen(ctx, "asynq:{"+q+"}:pending").Result()
			chk.Queued += l
		}
		rdb.Close()
	}

	// Acknowledged ⊆ recorded ⊆ sent, and each recorded once.
	chk.OK = chk.Foreign == 0 && chk.Rows >= chk.AckedDistinctMin && chk.Rows <= chk.DistinctSent &&
		(chk.Sent <= n || chk.Missing == 0)
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests sent, %d acknowledged (%d in flight when wrk stopped or failed); ", chk.Sent, chk.Acked, chk.InFlight)
	if chk.Sent <= n {
		fmt.Fprintf(&b, "all distinct: %d callbacks acknowledged; inbox rows %d (= acknowledged + %d of the in-flight ones, committed after wrk stopped)",
			chk.Acked, chk.Rows, chk.Rows-chk.Acked)
	} else {
		fmt.Fprintf(&b, "cycle wrapped: all %d callbacks sent, %d..%d distinct acknowledged, %d redeliveries; inbox rows %d, missing %d",
			n, chk.AckedDistinctMin, chk.AckedDistinctMax, chk.Sent-n, chk.Rows, chk.Missing)
	}
	fmt.Fprintf(&b, ", rows not among the sent callbacks %d; asynq tasks waiting (one per commit and queue) %d", chk.Foreign, chk.Queued)
	if chk.OK {
		b.WriteString(": OK")
	} else {
		b.WriteString(": FAILED")
	}
	chk.Summary = b.String()
	return chk, nil
}

func redisClient(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opt), nil
}

// reset empties the inbox of our own database and, when we started it,
// Redis, so that the next level records first deliveries again (in
// production the workers keep Redis small by draining the queues).
func (h *harness) reset(ctx context.Context) error {
	if h.dbURL != "" {
		conn, err := pgx.Connect(ctx, h.dbURL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "TRUNCATE inbox_messages"); err != nil {
			return fmt.Errorf("emptying the inbox: %w", err)
		}
		if _, err := conn.Exec(ctx, "VACUUM ANALYZE inbox_messages"); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
			h.logf("checkpoint: %v (needs superuser; continuing)", err)
		}
	}
	return h.clearQueues(ctx, "default", "critical", bareQueue)
}

// clearQueues deletes the tasks of asynq queues in the Redis we started,
// and has Redis rewrite its AOF so that the next run starts from a small
// one: in production the workers drain the queues, here nothing does, and
// a growing AOF makes Redis rewrite ever larger files during the runs.
func (h *harness) clearQueues(ctx context.Context, queues ...string) error {
	if h.redisP == nil {
		return nil
	}
	rdb, err := redisClient(h.redis)
	if err != nil {
		return err
	}
	defer rdb.Close()
	for _, q := range queues {
		var cursor uint64
		for {
			keys, next, err := rdb.Scan(ctx, cursor, "asynq:{"+q+"}:t:*", 10000).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
		rdb.Del(ctx, "asynq:{"+q+"}:pending")
	}
	if err := rdb.Do(ctx, "BGREWRITEAOF").Err(); err != nil {
		h.logf("redis BGREWRITEAOF: %v", err)
	}
	for i := 0; i < 600; i++ {
		info, _ := rdb.Info(ctx, "persistence").Result()
		if strings.Contains(info, "aof_rewrite_in_progress:0") && strings.Contains(info, "aof_rewrite_scheduled:0") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

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
