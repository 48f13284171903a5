package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
	"github.com/scrmgw/scrmgw/templates"
)

// Benchmark sizes, small by default so CI runs it quickly; the targets
// (docs/performance-workflows.md) are measured with
// SCRMGW_BENCH_MEMBERS=1000000 SCRMGW_BENCH_WAKES=100000.
func benchSize(b *testing.B, env string, def int) int {
	if v := os.Getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive number", env, v)
		}
		return n
	}
	return def
}

const benchWorkflow = `name: bench-%s
trigger:
  schedule: every day at 10:00
  time_zone: UTC
entry:
  brand: bench
goal: none
steps:
  - id: wait
    wait: %s
`

// benchAfterWait is the step after the wait, unless the bench says
// SCRMGW_BENCH_AFTER_WAIT=end (the wake ends the run).
const benchAfterWait = `  - id: mark
    tag: benched
`

func afterWait() string {
	if os.Getenv("SCRMGW_BENCH_AFTER_WAIT") == "end" {
		return "the run ends"
	}
	return "a tag step"
}

func benchYAML(name, wait string) string {
	y := fmt.Sprintf(benchWorkflow, name, wait)
	if os.Getenv("SCRMGW_BENCH_AFTER_WAIT") != "end" {
		y += benchAfterWait
	}
	return y
}

// benchEnv is a store on its own PostgreSQL schema, a Redis database and
// an engine on the real clock.
type benchEnv struct {
	s      *store.Store
	raw    *gorm.DB
	rdb    *redis.Client
	opt    asynq.RedisConnOpt
	client *asynq.Client
	e      *Engine
}

func newBenchEnv(b *testing.B, onWake func(due, acted time.Time)) *benchEnv {
	ctx := context.Background()
	url := storetest.URL(b, "postgres")
	s, err := store.Open(ctx, store.Options{URL: url, PhoneKey: storetest.PhoneKey, MaxOpenConns: 40})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	raw, err := gorm.Open(postgres.Open(url), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if db, err := raw.DB(); err == nil {
			db.Close()
		}
	})
	redisURL := storetest.RedisURL(b)
	ropt, err := redis.ParseURL(redisURL)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	b.Cleanup(func() { rdb.Close() })
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		b.Fatal(err)
	}
	client := asynq.NewClient(opt)
	b.Cleanup(func() { client.Close() })
	reg, err := templates.LoadFS(configs.BuiltinTemplates())
	if err != nil {
		b.Fatal(err)
	}
	sender := newFakeSender(s, time.Now)
	sender.auto = true
	e, err := New(Options{Store: s, Queue: client, Templates: reg, Channels: testChannels, Sender: sender,
		OnWake: onWake, SweepBatch: 2000})
	if err != nil {
		b.Fatal(err)
	}
	sender.settled = e.SendSettled
	if err := s.CreateBrand(ctx, &store.Brand{ID: "bench", Name: "Bench"}); err != nil {
		b.Fatal(err)
	}
	return &benchEnv{s: s, raw: raw, rdb: rdb, opt: opt, client: client, e: e}
}

// seedMembers inserts n members of the brand in bulk.
func (be *benchEnv) seedMembers(b *testing.B, n int) {
	err := be.raw.Exec(`INSERT INTO members (name, created_at, updated_at)
		SELECT 'm' || g, now(), now() FROM generate_series(1, ?) AS g`, n).Error
	if err == nil {
		err = be.raw.Exec(`INSERT INTO memberships (member_id, brand_id, level, points, created_at)
			SELECT id, 'bench', '', 0, now() FROM members`).Error
	}
	if err == nil {
		err = be.raw.Exec(`ANALYZE`).Error
	}
	if err != nil {
		b.Fatalf("seeding %d members: %v", n, err)
	}
}

// usedMemory is Redis's used_memory in bytes.
func (be *benchEnv) usedMemory(b *testing.B) int64 {
	info, err := be.rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	b.Fatal("no used_memory in INFO")
	return 0
}

// BenchmarkEnter enters SCRMGW_BENCH_MEMBERS members (default 20,000) into
// a workflow whose first step waits 3 days, through its schedule trigger
// on PostgreSQL: rows and first steps inserted in batches, no wake in
// Redis (they are beyond the horizon). It reports the time to enter them
// all and Redis's growth per waiting run.
func BenchmarkEnter(b *testing.B) {
	members := benchSize(b, "SCRMGW_BENCH_MEMBERS", 20000)
	ctx := context.Background()
	be := newBenchEnv(b, nil)
	be.seedMembers(b, members)
	if _, err := be.e.Put(ctx, "bench", "bench-enter", []byte(benchYAML("enter", "3d"))); err != nil {
		b.Fatal(err)
	}
	if err := be.e.Enable(ctx, "bench", "bench-enter"); err != nil {
		b.Fatal(err)
	}
	before := be.usedMemory(b)
	now := time.Now().UTC()
	fire := time.Date(now.Year(), now.Month(), now.Day(), 10, 0, 0, 0, time.UTC)
	if fire.After(now) {
		fire = fire.AddDate(0, 0, -1)
	}
	b.ResetTimer()
	start := time.Now()
	n, err := be.e.RunSchedules(ctx, fire.Add(time.Second))
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if n != members {
		b.Fatalf("entered %d of %d members", n, members)
	}
	// The sweeper finds nothing within the horizon to hand over.
	if err := be.e.Sweep(ctx); err != nil {
		b.Fatal(err)
	}
	after := be.usedMemory(b)
	keys, _ := be.rdb.DBSize(ctx).Result()
	perRun := float64(after-before) / float64(members)
	b.ReportMetric(elapsed.Seconds(), "enter_s")
	b.ReportMetric(float64(members)/elapsed.Seconds(), "runs/s")
	b.ReportMetric(perRun, "redis_B/run")
	b.Logf("entered %d members in %v (%.0f runs/s); Redis used_memory %d → %d (%+.1f B per waiting run), %d keys in the bench db",
		members, elapsed.Round(time.Millisecond), float64(members)/elapsed.Seconds(), before, after, perRun, keys)
}

// BenchmarkWakeLateness fires SCRMGW_BENCH_WAKES wakes (default 5,000)
// due evenly over one minute through a real asynq server
// (DelayedTaskCheckInterval 1 s, TaskCheckInterval 100 ms) and reports
// how late each acted after its due time: p50, p99, max, and how many
// acted early (the target is none).
func BenchmarkWakeLateness(b *testing.B) {
	wakes := benchSize(b, "SCRMGW_BENCH_WAKES", 5000)
	ctx := context.Background()
	var mu sync.Mutex
	var late []time.Duration
	done := make(chan struct{})
	be := newBenchEnv(b, func(due, acted time.Time) {
		mu.Lock()
		late = append(late, acted.Sub(due))
		if len(late) == wakes {
			close(done)
		}
		mu.Unlock()
	})
	be.seedMembers(b, wakes)
	v, err := be.e.Put(ctx, "bench", "bench-wake", []byte(benchYAML("wake", "1m")))
	if err != nil {
		b.Fatal(err)
	}
	var ids []int64
	if err := be.raw.Raw(`SELECT member_id FROM memberships WHERE brand_id = 'bench' ORDER BY member_id`).Scan(&ids).Error; err != nil {
		b.Fatal(err)
	}
	// Runs waiting at their first step, due evenly over a minute that
	// begins once they are all in Redis.
	prepare := time.Duration(wakes/5000+20) * time.Second
	t0 := ceilSecond(time.Now().Add(prepare))
	runs := make([]*store.WorkflowRun, len(ids))
	for i, id := range ids {
		at := t0.Add(time.Duration(i) * time.Minute / time.Duration(len(ids)))
		runs[i] = &store.WorkflowRun{MemberID: id, BrandID: "bench", Workflow: "bench-wake", Version: v.Version, TriggerKey: "bench",
			Step: "wait", WakeAt: &at, StartedAt: at.Add(-time.Minute)}
	}
	started, err := be.s.StartRuns(ctx, runs)
	if err != nil {
		b.Fatal(err)
	}
	due := make(map[int64]time.Time, len(started))
	for _, r := range started {
		due[r.ID] = *r.WakeAt
	}
	before := be.usedMemory(b)
	sweepStart := time.Now()
	for range 5 {
		if err := be.e.Sweep(ctx); err != nil {
			b.Fatal(err)
		}
	}
	handed := time.Since(sweepStart)
	inRedis := be.usedMemory(b) - before
	if time.Now().After(t0) {
		b.Fatalf("handing %d wakes to asynq took %v: past the first due time; raise the preparation time", wakes, handed)
	}
	srv := asynq.NewServer(be.opt, asynq.Config{
		Concurrency: 2000, Queues: map[string]int{"critical": 6, "workflows": 3, "default": 3},
		DelayedTaskCheckInterval: time.Second, TaskCheckInterval: 100 * time.Millisecond, LogLevel: asynq.FatalLevel,
	})
	// The handler is wrapped to see when each wake's work is committed.
	var finished []time.Duration
	seen := make(map[int64]bool, wakes)
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeSweep, be.e.HandleSweep)
	mux.HandleFunc(TypeWake, func(ctx context.Context, t *asynq.Task) error {
		err := be.e.HandleWake(ctx, t)
		var p wakePayload
		json.Unmarshal(t.Payload(), &p)
		mu.Lock()
		if d, ok := due[p.Run]; ok && !seen[p.Run] && err == nil {
			seen[p.Run] = true
			finished = append(finished, time.Since(d))
		}
		mu.Unlock()
		return err
	})
	b.ResetTimer()
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(time.Until(t0) + 5*time.Minute):
		mu.Lock()
		b.Fatalf("only %d of %d wakes acted", len(late), wakes)
	}
	b.StopTimer()
	srv.Shutdown()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(late)
	slices.Sort(finished)
	early := 0
	for _, l := range late {
		if l < 0 {
			early++
		}
	}
	pct := func(ds []time.Duration, p float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		return ds[min(len(ds)-1, int(p*float64(len(ds))))]
	}
	b.ReportMetric(float64(pct(late, 0.50).Milliseconds()), "p50_ms")
	b.ReportMetric(float64(pct(late, 0.99).Milliseconds()), "p99_ms")
	b.ReportMetric(float64(late[len(late)-1].Milliseconds()), "max_ms")
	b.ReportMetric(float64(early), "early")
	b.ReportMetric(float64(pct(finished, 0.99).Milliseconds()), "done_p99_ms")
	b.Logf("%d wakes due over 1 min (then %s): fired p50 %v, p99 %v, max %v, early %d; step committed p50 %v, p99 %v; "+
		"handing them to asynq took %v (%.0f B of Redis each while scheduled)",
		wakes, afterWait(), pct(late, 0.50), pct(late, 0.99), late[len(late)-1], early, pct(finished, 0.50), pct(finished, 0.99),
		handed.Round(time.Millisecond), float64(inRedis)/float64(wakes))
}

// BenchmarkAsynqBaseline is the baseline of BenchmarkWakeLateness, in the
// same conditions: SCRMGW_BENCH_WAKES no-op tasks (default 5,000) with
// ProcessAt evenly over one minute, through the same asynq settings,
// lateness measured against each task's ProcessAt. Asynq keeps due times
// in whole seconds, so some of them run early.
func BenchmarkAsynqBaseline(b *testing.B) {
	tasks := benchSize(b, "SCRMGW_BENCH_WAKES", 5000)
	ctx := context.Background()
	redisURL := storetest.RedisURL(b)
	opt, err := asynq.ParseRedisURI(redisURL)
	if err != nil {
		b.Fatal(err)
	}
	client := asynq.NewClient(opt)
	defer client.Close()
	prepare := time.Duration(tasks/5000+20) * time.Second
	t0 := time.Now().Add(prepare)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				at := t0.Add(time.Duration(i) * time.Minute / time.Duration(tasks))
				payload, _ := json.Marshal(wakePayload{Run: int64(i + 1), Due: at.UnixMilli()})
				if _, err := client.EnqueueContext(ctx, asynq.NewTask("bench:noop", payload), asynq.ProcessAt(at),
					asynq.TaskID("noop:"+strconv.Itoa(i)), asynq.Queue("workflows")); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := range tasks {
		work <- i
	}
	close(work)
	wg.Wait()
	if time.Now().After(t0) {
		b.Fatalf("queueing %d tasks took past the first due time", tasks)
	}
	var mu sync.Mutex
	var late []time.Duration
	done := make(chan struct{})
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency: 2000, Queues: map[string]int{"workflows": 1},
		DelayedTaskCheckInterval: time.Second, TaskCheckInterval: 100 * time.Millisecond, LogLevel: asynq.FatalLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench:noop", func(_ context.Context, t *asynq.Task) error {
		var p wakePayload
		json.Unmarshal(t.Payload(), &p)
		mu.Lock()
		late = append(late, time.Since(time.UnixMilli(p.Due)))
		if len(late) == tasks {
			close(done)
		}
		mu.Unlock()
		return nil
	})
	b.ResetTimer()
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(time.Until(t0) + 5*time.Minute):
		b.Fatalf("only %d of %d tasks ran", len(late), tasks)
	}
	b.StopTimer()
	srv.Shutdown()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(late)
	early := 0
	for _, l := range late {
		if l < 0 {
			early++
		}
	}
	p := func(q float64) time.Duration { return late[min(len(late)-1, int(q*float64(len(late))))] }
	b.ReportMetric(float64(p(0.50).Milliseconds()), "p50_ms")
	b.ReportMetric(float64(p(0.99).Milliseconds()), "p99_ms")
	b.ReportMetric(float64(early), "early")
	b.Logf("%d no-op tasks due over 1 min: lateness p50 %v, p99 %v, max %v; %d ran early (earliest %v)",
		tasks, p(0.50), p(0.99), late[len(late)-1], early, late[0])
}
