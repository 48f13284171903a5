package queue

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// redisAddrs returns the Redis servers the idle tests run against: the
// test Redis (SCRMGW_TEST_REDIS_URL, required) and an in-process one as
// the zero-setup mode uses.
func redisAddrs(t *testing.T) map[string]*redis.Options {
	t.Helper()
	url := os.Getenv("SCRMGW_TEST_REDIS_URL")
	if url == "" {
		t.Fatal("SCRMGW_TEST_REDIS_URL is not set (run through scripts/test.sh)")
	}
	real, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	m := miniredis.RunT(t)
	return map[string]*redis.Options{"redis": real, "in-process": {Addr: m.Addr()}}
}

// idleServer starts an asynq server on queue q whose poll waits, once
// idle, an hour unless woken: a task it handles after a wait began
// was woken, not polled. It returns the handled task types and a channel
// that receives each time the poll begins to wait.
func idleServer(t *testing.T, opt *redis.Options, q string, w *Wake) (<-chan string, <-chan struct{}) {
	t.Helper()
	c := redis.NewClient(opt)
	waiting := make(chan struct{}, 100)
	idle := NewIdle([]string{q}, w, IdleOptions{Wait: time.Hour, Rounds: 1, Client: c, Waiting: func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}})
	c.AddHook(idle)
	srv := asynq.NewServerFromRedisClient(c, asynq.Config{
		Concurrency: 2, Queues: map[string]int{q: 1},
		TaskCheckInterval: 10 * time.Millisecond, DelayedTaskCheckInterval: time.Second,
		LogLevel: asynq.FatalLevel,
	})
	handled := make(chan string, 10)
	mux := asynq.NewServeMux()
	mux.HandleFunc("idle:test", func(ctx context.Context, tk *asynq.Task) error {
		handled <- string(tk.Payload())
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		idle.Stop()
		srv.Shutdown()
		c.Close()
	})
	return handled, waiting
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second): // a fail-safe, not a measurement
		t.Fatalf("no %s", what)
	}
	var zero T
	return zero
}

func TestIdleServerWokenByEnqueue(t *testing.T) {
	for name, opt := range redisAddrs(t) {
		t.Run(name, func(t *testing.T) {
			q := fmt.Sprintf("idletest-%d", time.Now().UnixNano())
			w := NewWake()
			handled, waiting := idleServer(t, opt, q, w)
			recv(t, waiting, "idle wait")

			rc := redis.NewClient(opt)
			defer rc.Close()
			rc.AddHook(WakeHook(w))
			client := asynq.NewClientFromRedisClient(rc)
			if _, err := client.Enqueue(asynq.NewTask("idle:test", []byte("now")), asynq.Queue(q)); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, handled, "task handled"); got != "now" {
				t.Fatalf("handled %q", got)
			}
		})
	}
}

// A task scheduled for later is moved to the pending list by the
// server's own forwarder, which wakes the waiting poll.
func TestIdleServerWokenByForward(t *testing.T) {
	for name, opt := range redisAddrs(t) {
		t.Run(name, func(t *testing.T) {
			q := fmt.Sprintf("idletest-%d", time.Now().UnixNano())
			w := NewWake()
			handled, waiting := idleServer(t, opt, q, w)
			recv(t, waiting, "idle wait")

			// Not through a waking client: only the forward may wake.
			client := asynq.NewClient(asynq.RedisClientOpt{Addr: opt.Addr, Password: opt.Password, DB: opt.DB})
			defer client.Close()
			if _, err := client.Enqueue(asynq.NewTask("idle:test", []byte("later")), asynq.Queue(q), asynq.ProcessIn(time.Second)); err != nil {
				t.Fatal(err)
			}
			if got := recv(t, handled, "task handled"); got != "later" {
				t.Fatalf("handled %q", got)
			}
		})
	}
}

// An idle poll asks Redis one cheap question per round, not one script
// per queue.
func TestIdleRoundIsOneExists(t *testing.T) {
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer c.Close()
	var scripts, exists atomic.Int64
	queues := []string{"a", "b", "c"}
	c.AddHook(NewIdle(queues, NewWake(), IdleOptions{}))
	c.AddHook(countHook{&scripts, &exists, new(atomic.Int64)})
	ctx := context.Background()
	dequeue := func(q string) error {
		return c.EvalSha(ctx, "0123", []string{"asynq:{" + q + "}:pending", "asynq:{" + q + "}:paused", "asynq:{" + q + "}:active", "asynq:{" + q + "}:lease"}).Err()
	}
	for range 5 {
		for _, q := range queues {
			if err := dequeue(q); err != redis.Nil {
				t.Fatalf("dequeue of an empty queue: %v, want redis.Nil", err)
			}
		}
	}
	if scripts.Load() != 0 || exists.Load() != 5 {
		t.Fatalf("5 empty rounds of 3 queues: %d scripts and %d EXISTS reached Redis, want 0 and 5", scripts.Load(), exists.Load())
	}
	// A forward with nothing due is answered 0 without its script.
	m.ZAdd("asynq:{a}:scheduled", float64(time.Now().Add(time.Hour).Unix()), "later")
	for _, key := range []string{"asynq:{a}:scheduled", "asynq:{a}:retry"} {
		n, err := c.EvalSha(ctx, "0123", []string{key, "asynq:{a}:pending"}, time.Now().Unix(), "asynq:{a}:t:", time.Now().UnixNano(), "asynq:{a}:g:").Int64()
		if err != nil || n != 0 {
			t.Fatalf("forward of %s with nothing due: %d, %v; want 0", key, n, err)
		}
	}
	if scripts.Load() != 0 {
		t.Fatalf("a forward with nothing due ran %d scripts on Redis", scripts.Load())
	}
	// With a task pending, the round's dequeue goes to Redis.
	m.Lpush("asynq:{b}:pending", "x")
	for _, q := range queues {
		dequeue(q)
	}
	if scripts.Load() == 0 {
		t.Fatal("a pending task did not reach the dequeue script")
	}
}

// One forwarder cycle (a scheduled and a retry script per queue) costs
// one pipelined look when nothing is due.
func TestIdleForwardCycleIsOnePipeline(t *testing.T) {
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer c.Close()
	var scripts, exists, pipelines atomic.Int64
	queues := []string{"a", "b", "c"}
	c.AddHook(NewIdle(queues, NewWake(), IdleOptions{Client: c}))
	c.AddHook(countHook{&scripts, &exists, &pipelines})
	m.ZAdd("asynq:{b}:retry", float64(time.Now().Add(time.Hour).Unix()), "later")
	ctx := context.Background()
	for _, q := range queues {
		for _, set := range []string{"scheduled", "retry"} {
			key := "asynq:{" + q + "}:" + set
			n, err := c.EvalSha(ctx, "0123", []string{key, "asynq:{" + q + "}:pending"}, time.Now().Unix(), "t:", time.Now().UnixNano(), "g:").Int64()
			if err != nil || n != 0 {
				t.Fatalf("forward of %s with nothing due: %d, %v; want 0", key, n, err)
			}
		}
	}
	if scripts.Load() != 0 || pipelines.Load() != 1 {
		t.Fatalf("a forwarder cycle of 3 queues: %d scripts and %d pipelines reached Redis, want 0 and 1", scripts.Load(), pipelines.Load())
	}
}

// countHook counts scripts and EXISTS as Redis receives them (added
// after the Idle hook, it runs inside it).
type countHook struct{ scripts, exists, pipelines *atomic.Int64 }

func (countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() == "zrangebyscore" { // not the connection's handshake
			h.pipelines.Add(1)
		}
		return next(ctx, cmds)
	}
}
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		switch cmd.Name() {
		case "evalsha", "eval":
			h.scripts.Add(1)
		case "exists":
			h.exists.Add(1)
		}
		return next(ctx, cmd)
	}
}
