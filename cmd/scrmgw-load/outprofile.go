package main

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// procProfiler takes CPU profiles of the gateway's processes in the
// outbound scenarios (surge, bot), which then run the profiling build
// (buildProfiling): each process listens for pprof on a port of its own.
type procProfiler struct {
	dir  string
	mu   sync.Mutex
	urls map[string]string // process name → pprof base URL
	wg   sync.WaitGroup
	tops []string
}

// env returns the environment that makes the process name serve pprof.
func (p *procProfiler) env(name string) ([]string, error) {
	if p == nil {
		return nil, nil
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.urls == nil {
		p.urls = map[string]string{}
	}
	p.urls[name] = "http://127.0.0.1:" + strconv.Itoa(port)
	return []string{profileAddrEnv + "=127.0.0.1:" + strconv.Itoa(port)}, nil
}

// start takes a CPU profile of every process for d, in the background.
func (p *procProfiler) start(ctx context.Context, d time.Duration) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, url := range p.urls {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			path := filepath.Join(p.dir, name+".cpu.pprof")
			if err := fetchProfile(ctx, url+"/debug/pprof/profile?seconds="+strconv.Itoa(int(d.Seconds())), path); err != nil {
				p.add(fmt.Sprintf("%s: no profile: %v", name, err))
				return
			}
			out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", path).CombinedOutput()
			if err != nil {
				p.add(fmt.Sprintf("%s: pprof: %v", name, err))
				return
			}
			p.add(fmt.Sprintf("--- %s (%s)\n%s", name, path, out))
		}()
	}
}

func (p *procProfiler) add(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tops = append(p.tops, s)
}

// summary waits for the profiles and returns their top functions.
func (p *procProfiler) summary() string {
	if p == nil {
		return ""
	}
	p.wg.Wait()
	return strings.Join(p.tops, "\n")
}

// report prints the profiles' top functions after a scenario's report
// (nothing when no profiles were taken).
func (p *procProfiler) report(stdout io.Writer) {
	if top := p.summary(); top != "" {
		fmt.Fprintf(stdout, "\nCPU profiles while the load lasted:\n%s\n", top)
	}
}

// fetchProfile saves what url answers (a pprof profile, which takes as
// long as it samples: at most 10 minutes) to path.
func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Minute}).Do(req)
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

// measure starts what measures a scenario's load: the CPU profiles of
// the gateway's processes gp for d (when profiling) and the CPU count
// of gp and the self-started PostgreSQL and Redis. spent returns the
// CPU each used since (cpuUsed).
func (g *gatewayRun) measure(ctx context.Context, gp *gatewayProcs, d time.Duration) (spent func() map[string]float64) {
	g.Profiler.start(ctx, d)
	cpu := outboundCPU{procs: func() []*proc { return gp.procs }, postgres: g.PostgresPID, redis: g.RedisPID}
	cpu0 := cpu.sample()
	return func() map[string]float64 { return cpuUsed(cpu0, cpu.sample()) }
}

// paced yields 0 to n-1, i no sooner than i/perSecond seconds after
// start; it stops when ctx ends.
func paced(ctx context.Context, start time.Time, n, perSecond int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			due := start.Add(time.Duration(float64(i) / float64(perSecond) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			if ctx.Err() != nil || !yield(i) {
				return
			}
		}
	}
}

// outboundCPU samples the CPU seconds of the gateway's processes and the
// self-started PostgreSQL and Redis: what a scenario's work cost the
// machine, however busy the machine is with other work.
type outboundCPU struct {
	procs           func() []*proc
	postgres, redis int
}

func (o outboundCPU) sample() cpuSample {
	s := cpuSample{}
	for _, p := range o.procs() {
		if !p.exited() {
			s[p.name] += procCPU(p.pid())
		}
	}
	if o.postgres > 0 {
		s["postgres"] = treeCPU(o.postgres)
	}
	if o.redis > 0 {
		s["redis"] = treeCPU(o.redis)
	}
	return s
}

// cpuUsed is the CPU seconds each component used between a and b, and
// their sum under "total".
func cpuUsed(a, b cpuSample) map[string]float64 {
	out := map[string]float64{}
	for k, v := range b {
		out[k] = v - a[k]
		out["total"] += v - a[k]
	}
	return out
}

// fmtCPU writes CPU seconds per component, per item, in µs.
func fmtCPU(used map[string]float64, items int) string {
	if items == 0 || used["total"] == 0 {
		return "not measured"
	}
	per := func(k string) string { return fmt.Sprintf("%s %.0f µs", k, used[k]/float64(items)*1e6) }
	parts := []string{per("total")}
	for _, k := range []string{"serve", "worker", "postgres", "redis"} {
		if _, ok := used[k]; ok {
			parts = append(parts, per(k))
		}
	}
	return strings.Join(parts, ", ")
}
