package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// gatewayRun is where a scenario's gateway runs: its database and
// Redis, its binary and work folder, and how it reports.
type gatewayRun struct {
	DBURL, RedisURL string
	Bin, Dir        string
	// ExtraEnv are further KEY=VALUE for the gateway's processes.
	ExtraEnv []string
	Logf     func(format string, args ...any) `json:"-"`
	// PostgresPID and RedisPID, when set, are counted in the CPU the
	// scenario cost (self-started servers).
	PostgresPID, RedisPID int
	// Profiler, when set, takes CPU profiles of the processes while
	// the load lasts (they must be the profiling build).
	Profiler *procProfiler `json:"-"`
}

// prepareGateway starts (or reaches) the harness's PostgreSQL and Redis
// and builds the gateway into g (a profiling build with profile), with
// its work folder.
func (h *harness) prepareGateway(ctx context.Context, prefix string, g *gatewayRun, profile bool) error {
	if err := h.prepareOutbound(ctx, prefix, &g.Bin); err != nil {
		return err
	}
	g.DBURL, g.RedisURL = h.dbURL, h.redis
	g.PostgresPID, g.RedisPID = h.cpu.postmaster, h.cpu.redis
	g.Dir = filepath.Join(h.cfg.WorkDir, "gateway")
	if err := os.MkdirAll(g.Dir, 0o755); err != nil {
		return err
	}
	g.Logf = h.logf
	if profile {
		bin, err := buildProfiling(ctx, h.cfg.WorkDir)
		if err != nil {
			return err
		}
		g.Bin, g.Profiler = bin, &procProfiler{dir: h.cfg.WorkDir}
		h.logf("serve and worker built with a pprof listener (profiling build, not the product); profiles in %s", h.cfg.WorkDir)
	}
	return nil
}

// serveGateway starts the run's API process, `scrmgw serve
// --workers=false`, on a free port and waits until it answers. Its
// environment: the run's database and Redis, a new admin token and
// phone key, its data folder, the settings of the fake WeCom, then env
// (KEY=VALUE), the queue concurrency when positive, and the run's
// ExtraEnv last. It returns the gateway's base URL and admin token, and
// its processes, to start the worker with and to stop (on an error they
// are stopped).
func (g *gatewayRun) serveGateway(ctx context.Context, fake *wecomfake.Server, concurrency int, env ...string) (base, admin string, gp *gatewayProcs, err error) {
	port, err := freePort()
	if err != nil {
		return "", "", nil, err
	}
	base = "http://127.0.0.1:" + strconv.Itoa(port)
	admin = "scrmgw_admin_" + randomHex(16)
	all := append(gatewayEnv(os.Environ()),
		"SCRMGW_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"SCRMGW_DATABASE_URL="+g.DBURL,
		"SCRMGW_REDIS_URL="+g.RedisURL,
		"SCRMGW_ADMIN_TOKEN="+admin,
		"SCRMGW_SECURITY_PHONE_KEY="+randomHex(32),
		"SCRMGW_DATA_DIR="+filepath.Join(g.Dir, "data"),
	)
	all = append(append(all, wecomEnv(fake)...), env...)
	if concurrency > 0 {
		all = append(all, "SCRMGW_QUEUE_CONCURRENCY="+strconv.Itoa(concurrency))
	}
	gp = &gatewayProcs{dir: g.Dir, bin: g.Bin, env: append(all, g.ExtraEnv...), profiler: g.Profiler}
	if _, err := gp.serve(ctx, base); err != nil {
		gp.stop(nil, g.logger())
		return "", "", nil, err
	}
	return base, admin, gp, nil
}

// envSet is KEY=value of each key and value in pairs whose value is
// set ("" the product's default).
func envSet(pairs ...string) []string {
	var env []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			env = append(env, pairs[i]+"="+pairs[i+1])
		}
	}
	return env
}

// gatewayProcs are the gateway processes of a scenario: one binary, one
// environment, each process logging to its own file in dir (and
// profiled when profiler is set).
type gatewayProcs struct {
	dir, bin string
	env      []string
	profiler *procProfiler
	procs    []*proc
}

// start starts a process of the gateway: name for its log, args for
// the binary.
func (g *gatewayProcs) start(name string, args ...string) (*proc, error) {
	penv, err := g.profiler.env(name)
	if err != nil {
		return nil, err
	}
	p, err := startProc(name, filepath.Join(g.dir, fmt.Sprintf("%s-%d.log", name, len(g.procs))), append(slices.Clip(g.env), penv...), g.bin, args...)
	if err == nil {
		g.procs = append(g.procs, p)
	}
	return p, err
}

// serve starts `scrmgw serve --workers=false` and waits until base
// answers /healthz.
func (g *gatewayProcs) serve(ctx context.Context, base string) (*proc, error) {
	gw, err := g.start("serve", "serve", "--workers=false")
	if err != nil {
		return nil, err
	}
	return gw, waitHTTP(ctx, base+"/healthz", gw, 90*time.Second)
}

// stop stops every process; when the scenario found problems it shows
// the last lines of each one's log.
func (g *gatewayProcs) stop(problems []string, logf func(string, ...any)) {
	for _, p := range g.procs {
		p.stop(10 * time.Second)
	}
	if len(problems) > 0 {
		for _, p := range g.procs {
			b, _ := os.ReadFile(p.log.Name())
			logf("--- %s (%s), last lines:\n%s", p.name, p.log.Name(), tail(string(b), 20))
		}
	}
}

// seedStore creates the brand acme, its store sh-1 and n guides there
// through the API (guide i: g-i, WeCom userid guideNN, with extra JSON
// fields such as `,"capacity":1000000`), and returns the guides'
// WeCom userids.
func seedStore(base, admin string, n int, extra string) ([]string, error) {
	reqs := []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47,"opening_hours":"10:00-22:00"}`},
	}
	guides := make([]string, n)
	for i := range guides {
		guides[i] = fmt.Sprintf("guide%02d", i)
		reqs = append(reqs, struct{ path, body string }{"/api/v1/guides",
			fmt.Sprintf(`{"id":"g-%d","store_id":"sh-1","name":"导购%02d","wecom_userid":"%s"%s}`, i, i, guides[i], extra)})
	}
	for _, r := range reqs {
		if code, body := apiCall(http.MethodPost, base+r.path, admin, "application/json", r.body); code != http.StatusCreated {
			return nil, fmt.Errorf("seeding %s: %d %s", r.path, code, body)
		}
	}
	return guides, nil
}
