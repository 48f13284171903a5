package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

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
					if err := fetchProfile(ctx, pprofBase+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), profPath); err != nil {
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
