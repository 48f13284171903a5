package queue

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// An idle asynq server asks Redis for work every TaskCheckInterval
// (100 ms here), one Lua dequeue script per queue, forever: with nothing
// to do that is most of what a gateway spends (on the in-process Redis
// each script also builds a Lua interpreter). Idle and Wake cut it
// without making work that arrives wait:
//
//   - Idle is a go-redis hook on the client an asynq.Server polls with
//     (asynq.NewServerFromRedisClient). A round of dequeues starts with one
//     EXISTS of the server's pending lists; when they are all empty the
//     round's scripts are answered "nothing" without a call. After
//     IdleRounds empty rounds in a row the next round first waits, up to
//     IdleWait, for a Wake.
//   - Wake is signalled by the hook on every client of the process that
//     moves a task to a pending list: an enqueue (the asynq.Client),
//     a forward of due scheduled or retried tasks (the servers' own
//     forwarders), a requeue. A task enqueued in this process is therefore
//     dequeued at once; only a task enqueued by another process (an HTTP-
//     only `serve` beside a `worker`) may wait up to IdleWait, and only
//     after the worker was idle.
//   - The forwarders' scripts (every DelayedTaskCheckInterval, one per
//     queue for scheduled and one for retried tasks) run only when a task
//     is due; otherwise one ZRANGEBYSCORE answers them.

// DefaultIdleWait is how long an idle server waits between checks when
// nothing in the process wakes it: the bound on the pick-up delay of a
// task queued by another process after a quiet spell (asynq's own
// default poll interval).
const DefaultIdleWait = time.Second

// DefaultIdleRounds is how many empty rounds in a row (each about
// TaskCheckInterval apart) make a server idle.
const DefaultIdleRounds = 20

// Wake is a broadcast: every Idle waiting on it returns at once when
// Signal is called. The zero value is not usable; use NewWake.
type Wake struct {
	mu  sync.Mutex
	ch  chan struct{}
	gen uint64
}

// NewWake returns a Wake.
func NewWake() *Wake { return &Wake{ch: make(chan struct{})} }

// Signal wakes every waiter.
func (w *Wake) Signal() {
	w.mu.Lock()
	close(w.ch)
	w.ch = make(chan struct{})
	w.gen++
	w.mu.Unlock()
}

// next returns a channel closed by the next Signal, and how many Signals
// came before it.
func (w *Wake) next() (<-chan struct{}, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch, w.gen
}

// WakeHook returns a go-redis hook that signals w after every successful
// script that moves tasks to a pending list (asynq's enqueue, requeue and
// forward scripts; a forward only when it moved some). Add it to the
// client of the asynq.Client and to each server's client.
func WakeHook(w *Wake) redis.Hook { return wakeHook{w} }

type wakeHook struct{ w *Wake }

func (wakeHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h wakeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && movesToPending(cmd) {
			h.w.Signal()
		}
		return err
	}
}

func (h wakeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if c.Err() == nil && movesToPending(c) {
				h.w.Signal()
				break
			}
		}
		return err
	}
}

// scriptKeys returns the keys of an EVAL/EVALSHA command, nil for any
// other.
func scriptKeys(cmd redis.Cmder) []string {
	switch cmd.Name() {
	case "eval", "evalsha", "eval_ro", "evalsha_ro":
	default:
		return nil
	}
	args := cmd.Args()
	if len(args) < 3 {
		return nil
	}
	n, ok := args[2].(int)
	if !ok || n <= 0 || len(args) < 3+n {
		return nil
	}
	keys := make([]string, n)
	for i := range n {
		s, ok := args[3+i].(string)
		if !ok {
			return nil
		}
		keys[i] = s
	}
	return keys
}

// isDequeue reports asynq's dequeue script: KEYS pending, paused, active,
// lease of one queue.
func isDequeue(keys []string) bool {
	return len(keys) == 4 && strings.HasSuffix(keys[0], "}:pending") && strings.HasSuffix(keys[1], "}:paused")
}

// isForward reports asynq's forward script: KEYS scheduled or retry, and
// pending.
func isForward(keys []string) bool {
	return len(keys) == 2 && strings.HasSuffix(keys[1], "}:pending") &&
		(strings.HasSuffix(keys[0], "}:scheduled") || strings.HasSuffix(keys[0], "}:retry"))
}

func movesToPending(cmd redis.Cmder) bool {
	keys := scriptKeys(cmd)
	switch {
	case keys == nil, isDequeue(keys):
		return false
	case isForward(keys):
		n, _ := cmd.(*redis.Cmd).Int64()
		return n > 0
	}
	for _, k := range keys {
		if strings.HasSuffix(k, "}:pending") {
			return true
		}
	}
	return false
}

// Idle is the go-redis hook of one asynq server's client (see above).
type Idle struct {
	pending    []string // the server's pending lists
	delayed    []string // and its scheduled and retry sets
	client     redis.UniversalClient
	wake       *Wake
	wait       time.Duration
	rounds     int
	checkFirst bool // EXISTS before a round (not on Redis Cluster: the lists live in different slots)
	stop       chan struct{}
	stopOnce   sync.Once

	// Dequeues run one at a time (asynq's processor loop), but the
	// hook must not assume it.
	mu         sync.Mutex
	empties    int    // empty dequeues in a row
	emptyRound int    // empty rounds in a row
	skip       int    // dequeues of this round answered without a call
	seen       uint64 // the Wake's count when the last round began
	waiting    func()
	peekAt     time.Time       // when due was read
	due        map[string]bool // which delayed sets held a due task
}

// IdleOptions tunes an Idle; zero values take the defaults.
type IdleOptions struct {
	Wait   time.Duration // DefaultIdleWait
	Rounds int           // DefaultIdleRounds
	// NoCheck turns the EXISTS before a round off (Redis Cluster).
	NoCheck bool
	// Client, when set, is the client the hook is added to: the
	// forwarder's checks of one cycle then go to Redis as one pipeline.
	Client redis.UniversalClient
	// Waiting, when set, is called each time an idle round begins to
	// wait (tests).
	Waiting func()
}

// NewIdle returns the hook for a server polling queues, woken by w.
func NewIdle(queues []string, w *Wake, o IdleOptions) *Idle {
	if o.Wait <= 0 {
		o.Wait = DefaultIdleWait
	}
	if o.Rounds <= 0 {
		o.Rounds = DefaultIdleRounds
	}
	in := &Idle{wake: w, wait: o.Wait, rounds: o.Rounds, checkFirst: !o.NoCheck, stop: make(chan struct{}), waiting: o.Waiting,
		client: o.Client}
	for _, q := range queues {
		in.pending = append(in.pending, "asynq:{"+q+"}:pending")
		in.delayed = append(in.delayed, "asynq:{"+q+"}:scheduled", "asynq:{"+q+"}:retry")
	}
	return in
}

// Stop ends every wait, now and later: call it before the server's
// Shutdown so that shutting down does not wait out an idle round.
func (in *Idle) Stop() { in.stopOnce.Do(func() { close(in.stop) }) }

func (in *Idle) DialHook(next redis.DialHook) redis.DialHook { return next }

func (in *Idle) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return wakeHook{in.wake}.ProcessPipelineHook(next)
}

func (in *Idle) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	wake := wakeHook{in.wake}.ProcessHook(next)
	return func(ctx context.Context, cmd redis.Cmder) error {
		keys := scriptKeys(cmd)
		if keys != nil && isForward(keys) && in.checkFirst {
			if due, err := in.forwardDue(ctx, next, keys[0], cmd.Args()); err == nil && !due {
				cmd.(*redis.Cmd).SetVal(int64(0))
				return nil
			}
		}
		if keys == nil || !isDequeue(keys) {
			return wake(ctx, cmd)
		}
		in.mu.Lock()
		if in.skip > 0 {
			in.skip--
			in.mu.Unlock()
			cmd.SetErr(redis.Nil)
			return redis.Nil
		}
		roundStart := in.empties%len(in.pending) == 0
		idle := roundStart && in.emptyRound >= in.rounds
		seen := in.seen
		in.mu.Unlock()
		if roundStart {
			if idle {
				in.idleWait(seen)
			}
			// Signals from here on wake the next wait.
			_, gen := in.wake.next()
			in.mu.Lock()
			in.seen = gen
			in.mu.Unlock()
			if in.checkFirst {
				n, err := existsCmd(ctx, next, in.pending)
				if err == nil && n == 0 {
					in.mu.Lock()
					in.skip = len(in.pending) - 1
					in.empties += len(in.pending)
					in.emptyRound++
					in.mu.Unlock()
					cmd.SetErr(redis.Nil)
					return redis.Nil
				}
			}
		}
		err := next(ctx, cmd)
		in.mu.Lock()
		defer in.mu.Unlock()
		if err == redis.Nil {
			in.empties++
			if in.empties%len(in.pending) == 0 {
				in.emptyRound++
			}
		} else {
			in.empties, in.emptyRound = 0, 0
		}
		return err
	}
}

// anyDue reports whether the scheduled or retry set key holds a task due
// by the forward script's ARGV[1] (now, in Unix seconds): one
// ZRANGEBYSCORE instead of the script, which on the in-process Redis
// builds a Lua interpreter every time.
func anyDue(ctx context.Context, next redis.ProcessHook, key string, args []any) (bool, error) {
	if len(args) < 6 {
		return true, nil
	}
	c := redis.NewStringSliceCmd(ctx, "zrangebyscore", key, "-inf", args[5], "limit", 0, 1)
	if err := next(ctx, c); err != nil {
		return true, err
	}
	return len(c.Val()) > 0, nil
}

// peekFor is how long one pipelined look at the delayed sets answers the
// forwarder: one cycle's scripts run back to back, cycles are a second
// apart.
const peekFor = 200 * time.Millisecond

// forwardDue reports whether the delayed set key holds a due task: from
// one pipeline over all the server's delayed sets per forwarder cycle
// when the hook knows its client, else from one ZRANGEBYSCORE.
func (in *Idle) forwardDue(ctx context.Context, next redis.ProcessHook, key string, args []any) (bool, error) {
	if in.client == nil || len(args) < 6 {
		return anyDue(ctx, next, key, args)
	}
	in.mu.Lock()
	d, ok := in.due[key]
	fresh := time.Since(in.peekAt) < peekFor
	in.mu.Unlock()
	if ok && fresh {
		return d, nil
	}
	max := fmt.Sprint(args[5])
	cmds, err := in.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range in.delayed {
			p.ZRangeByScore(ctx, k, &redis.ZRangeBy{Min: "-inf", Max: max, Count: 1})
		}
		return nil
	})
	if err != nil {
		return true, err
	}
	due := make(map[string]bool, len(cmds))
	for i, c := range cmds {
		due[in.delayed[i]] = len(c.(*redis.StringSliceCmd).Val()) > 0
	}
	in.mu.Lock()
	in.due, in.peekAt = due, time.Now()
	in.mu.Unlock()
	d, ok = due[key]
	return d || !ok, nil
}

// existsCmd counts which of keys exist, through next (no hook again).
func existsCmd(ctx context.Context, next redis.ProcessHook, keys []string) (int64, error) {
	args := make([]any, 0, 1+len(keys))
	args = append(args, "exists")
	for _, k := range keys {
		args = append(args, k)
	}
	c := redis.NewIntCmd(ctx, args...)
	if err := next(ctx, c); err != nil {
		return 0, err
	}
	return c.Val(), nil
}

// idleWait waits for a wake, the stop or in.wait.
// A Signal since the round that saw nothing (seen) ends it at once.
func (in *Idle) idleWait(seen uint64) {
	c, gen := in.wake.next()
	if gen == seen {
		if in.waiting != nil {
			in.waiting()
		}
		t := time.NewTimer(in.wait)
		select {
		case <-c:
		case <-t.C:
		case <-in.stop:
		}
		t.Stop()
	}
}
