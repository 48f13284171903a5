package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
)

// Task types of the inbox.
const (
	TypeProcess = "inbox:process"
	TypeBatch   = "inbox:batch"
)

// idsPayload is the payload of TypeBatch: the rows one commit
// recorded for one queue, in commit order.
type idsPayload struct {
	IDs []int64 `json:"ids"`
}

// inboxQueue picks the queue for a delivery: new contacts first, because
// their WeCom welcome code expires in 20 seconds.
func inboxQueue(in *adapters.Inbound) string {
	if in.Kind == "event" && in.Event == EventContactAdded {
		return queue.Critical
	}
	return queue.Default
}

// RecorderOptions tune the group commit.
type RecorderOptions struct {
	// MaxBatch caps deliveries per database statement. Default 256.
	MaxBatch int
	// Linger is how long a new batch waits for company before it is
	// handed to a free committer. Default (0) 1ms; negative: none. Batches also grow while
	// every committer is busy: deliveries arriving meanwhile join the
	// next batch. Lingering trades a millisecond of latency for fewer,
	// larger statements, which is what PostgreSQL's CPU cost depends on.
	Linger time.Duration
	// Committers is how many batches may be committing at once.
	// Default 3: with one, every callback waited for the commit before
	// it and the gateway left CPU idle (7.8k/s at 64 connections on
	// durable PostgreSQL); with three, commits overlap and batches stay
	// around 20-30 deliveries (10k/s, p99 18.5 ms; docs/performance-callbacks.md).
	Committers int
	// RetryEvery is how often batches that could not be queued (Redis
	// away) are tried again, so they are processed within a second or
	// two of Redis answering instead of at the next sweep. Default 1s.
	// What a stopped process still held is the sweep's.
	RetryEvery time.Duration
}

// maxHeld caps the deliveries the recorder holds for queueing while Redis
// is away; beyond it the sweep queues them (they are committed either
// way).
const maxHeld = 200_000

// Recorder implements adapters.Recorder: Record returns once the delivery
// is committed to the inbox and queued. Concurrent Records are committed
// together in one statement, which is what lets the gateway acknowledge
// thousands of callbacks a second with every one durable.
//
// The committer queues the new deliveries of a batch as one TypeBatch
// task per queue (one Redis round trip per batch, not per delivery: per
// delivery, queueing cost the gateway more CPU than the commit), then
// releases the callers; a worker turns that task into the deliveries'
// TypeProcess tasks (BatchTask). A delivery whose caller gave up is
// committed and queued all the same. Queueing may fail (Redis away): the
// committed rows are what counts. The recorder holds such batches and
// tries them again every RetryEvery; what a stopped process still held
// stays pending and the sweep queues it.
type Recorder struct {
	store *store.Store
	queue queue.Enqueuer
	log   *slog.Logger
	opts  RecorderOptions

	in      chan *pending
	stopped chan struct{}
	mu      sync.RWMutex
	closed  bool

	// held are committed batches whose queueing failed, oldest first.
	heldMu      sync.Mutex
	held        []heldBatch
	heldIDs     int
	heldDropped bool
}

// heldBatch is a committed batch waiting to be queued.
type heldBatch struct {
	queue string
	ids   []int64
}

type pending struct {
	msg  store.InboxMessage
	in   *adapters.Inbound
	done chan error // buffered: the committer never waits for the caller
}

// NewRecorder returns a Recorder; call Run to start committing.
func NewRecorder(s *store.Store, q queue.Enqueuer, log *slog.Logger, opts RecorderOptions) *Recorder {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	switch {
	case opts.Linger == 0:
		opts.Linger = time.Millisecond
	case opts.Linger < 0:
		opts.Linger = 0
	}
	if opts.Committers <= 0 {
		opts.Committers = 3
	}
	if opts.RetryEvery <= 0 {
		opts.RetryEvery = time.Second
	}
	return &Recorder{store: s, queue: q, log: log, opts: opts,
		in: make(chan *pending, opts.MaxBatch*(opts.Committers+1)), stopped: make(chan struct{})}
}

var _ adapters.Recorder = (*Recorder)(nil)

// ErrStopped is returned by Record after the Recorder stopped.
var ErrStopped = errors.New("recorder stopped")

// Record commits one delivery to the inbox and queues it for processing.
func (r *Recorder) Record(ctx context.Context, in *adapters.Inbound) error {
	if in.Channel == "" || in.DedupKey == "" {
		return errors.New("recording inbound: channel and dedup key are required")
	}
	payload, err := in.AppendJSON(make([]byte, 0, 384+len(in.Text)))
	if err != nil {
		return fmt.Errorf("recording inbound: %w", err)
	}
	p := &pending{msg: store.InboxMessage{Channel: in.Channel, DedupKey: in.DedupKey, Payload: payload}, in: in, done: make(chan error, 1)}
	r.mu.RLock()
	if r.closed {
		r.mu.RUnlock()
		return ErrStopped
	}
	select {
	case r.in <- p:
		r.mu.RUnlock()
	case <-ctx.Done():
		r.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		// The batch may still commit and be queued; the platform's
		// redelivery then finds it recorded.
		return ctx.Err()
	}
}

var _ adapters.BatchRecorder = (*Recorder)(nil)

// RecordBatch commits deliveries that arrive together (an event batch) in
// one statement per MaxBatch, bypassing the group commit, and queues the
// new ones as TypeBatch tasks like the committer does. fresh[i] is
// false for a delivery recorded before.
func (r *Recorder) RecordBatch(ctx context.Context, ins []*adapters.Inbound) ([]bool, error) {
	msgs := make([]*store.InboxMessage, len(ins))
	for i, in := range ins {
		if in.Channel == "" || in.DedupKey == "" {
			return nil, errors.New("recording inbound: channel and dedup key are required")
		}
		payload, err := in.AppendJSON(make([]byte, 0, 384+len(in.Text)))
		if err != nil {
			return nil, fmt.Errorf("recording inbound: %w", err)
		}
		msgs[i] = &store.InboxMessage{Channel: in.Channel, DedupKey: in.DedupKey, Payload: payload}
	}
	// One statement, so one commit (one WAL flush) for the request: a
	// request carries at most webhook.max_batch (1,000) events.
	fresh, err := r.store.RecordInboundBatch(ctx, msgs)
	if err != nil {
		return nil, fmt.Errorf("recording inbound: %w", err)
	}
	// Queue the new ones even if our caller has gone: they are committed.
	// What fails to queue stays pending for the sweep.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	ids := map[string][]int64{}
	for i, f := range fresh {
		if f {
			q := inboxQueue(ins[i])
			ids[q] = append(ids[q], msgs[i].ID)
		}
	}
	for q, all := range ids {
		for start := 0; start < len(all); start += r.opts.MaxBatch {
			part := all[start:min(start+r.opts.MaxBatch, len(all))]
			if err := enqueueBatch(qctx, r.queue, part, q); err != nil {
				r.hold(q, part, err)
			}
		}
	}
	return fresh, nil
}

// Run commits batches until ctx ends, then refuses new deliveries, commits
// what was already handed in, waits for the commits in flight, and
// returns.
//
// Batching is adaptive: a batch goes to a committer as soon as one is
// free, and grows while all of them are busy (up to MaxBatch), so a quiet
// gateway commits each delivery at once and a busy one commits hundreds
// per statement.
func (r *Recorder) Run(ctx context.Context) {
	defer close(r.stopped)
	// Last, a final try at what is held; the sweep queues what is left.
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r.retryHeld(fctx)
	}()
	go func() {
		t := time.NewTicker(r.opts.RetryEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.retryHeld(ctx)
			}
		}
	}()
	go func() {
		<-ctx.Done()
		r.mu.Lock()
		r.closed = true
		close(r.in)
		r.mu.Unlock()
	}()
	// Long-lived committers; a send on batches succeeds when one of
	// them is free.
	batches := make(chan []*pending)
	var committers sync.WaitGroup
	for range r.opts.Committers {
		committers.Add(1)
		go func() {
			defer committers.Done()
			for b := range batches {
				r.commit(b)
			}
		}()
	}
	defer func() {
		close(batches)
		committers.Wait()
	}()
	in := r.in
	var (
		batch []*pending
		timer *time.Timer
	)
	for {
		if len(batch) == 0 {
			if in == nil {
				return
			}
			p, ok := <-in
			if !ok {
				return
			}
			batch = make([]*pending, 1, r.opts.MaxBatch)
			batch[0] = p
			if r.opts.Linger > 0 {
				if timer == nil {
					timer = time.NewTimer(r.opts.Linger)
				} else {
					timer.Reset(r.opts.Linger)
				}
			linger:
				for len(batch) < r.opts.MaxBatch {
					select {
					case p, ok := <-in:
						if !ok {
							in = nil
							break linger
						}
						batch = append(batch, p)
					case <-timer.C:
						break linger
					}
				}
				timer.Stop()
			}
		}
		// Take whatever is already waiting.
	drain:
		for in != nil && len(batch) < r.opts.MaxBatch {
			select {
			case p, ok := <-in:
				if !ok {
					in = nil
					break drain
				}
				batch = append(batch, p)
			default:
				break drain
			}
		}
		if in == nil || len(batch) >= r.opts.MaxBatch {
			batches <- batch
			batch = nil
			continue
		}
		// Hand the batch to the first free committer, taking in
		// deliveries until one is.
		select {
		case batches <- batch:
			batch = nil
		case p, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			batch = append(batch, p)
		}
	}
}

// Wait blocks until Run has returned.
func (r *Recorder) Wait() { <-r.stopped }

func (r *Recorder) commit(batch []*pending) {
	// The commit must not be cut short by shutdown: its callers are
	// waiting to acknowledge.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs := make([]*store.InboxMessage, len(batch))
	for i, p := range batch {
		msgs[i] = &p.msg
	}
	fresh, err := r.store.RecordInboundBatch(ctx, msgs)
	if err != nil {
		r.log.Error("recording inbound batch", slog.Int("size", len(batch)), slog.Any("error", err))
		for _, p := range batch {
			p.done <- fmt.Errorf("recording inbound: %w", err)
		}
		return
	}
	// Every delivery of the batch is durable. Queue the new ones, one
	// task per queue, then let the callers acknowledge.
	var ids map[string][]int64
	for i, p := range batch {
		if fresh[i] {
			if ids == nil {
				ids = make(map[string][]int64, 2)
			}
			q := inboxQueue(p.in)
			ids[q] = append(ids[q], p.msg.ID)
		}
	}
	for q, batchIDs := range ids {
		if err := enqueueBatch(ctx, r.queue, batchIDs, q); err != nil {
			r.hold(q, batchIDs, err)
		}
	}
	for _, p := range batch {
		p.done <- nil
	}
}

// hold keeps a committed batch that could not be queued, for retryHeld.
func (r *Recorder) hold(lane string, ids []int64, err error) {
	r.heldMu.Lock()
	defer r.heldMu.Unlock()
	if r.heldIDs+len(ids) > maxHeld {
		if !r.heldDropped {
			r.heldDropped = true
			r.log.Warn("queueing inbound failed and too many deliveries are held; the sweep will queue the rest",
				slog.Int("held", r.heldIDs), slog.Any("error", err))
		}
		return
	}
	if len(r.held) == 0 {
		r.log.Warn("queueing inbound failed; retrying every "+r.opts.RetryEvery.String()+" (the deliveries are committed)",
			slog.Int64("inbox_id", ids[0]), slog.Int("deliveries", len(ids)), slog.Any("error", err))
	}
	r.held = append(r.held, heldBatch{queue: lane, ids: ids})
	r.heldIDs += len(ids)
}

// retryHeld queues the held batches, oldest first, until one fails (Redis
// still away): that one and the rest are held again.
func (r *Recorder) retryHeld(ctx context.Context) {
	r.heldMu.Lock()
	batches := r.held
	r.held, r.heldIDs, r.heldDropped = nil, 0, false
	r.heldMu.Unlock()
	queued := 0
	for i, b := range batches {
		if err := enqueueBatch(ctx, r.queue, b.ids, b.queue); err != nil {
			r.heldMu.Lock()
			rest := batches[i:]
			for _, h := range rest {
				r.heldIDs += len(h.ids)
			}
			r.held = append(rest, r.held...)
			r.heldMu.Unlock()
			return
		}
		queued += len(b.ids)
	}
	if queued == 0 {
		return
	}
	r.log.Info("queued deliveries held while the queue was away", slog.Int("deliveries", queued))
	// Redis is back, but a restarted Redis loses what it had not written
	// to disk (AOF every second): tasks queued just before it went.
	// Sweep now rather than at the next periodic sweep; rows queued
	// already keep their task (queueing is keyed by row).
	if err := Sweep(ctx, r.store, r.queue, recoverySweepAge, r.log); err != nil {
		r.log.Warn("sweeping after the queue came back; the periodic sweep will", slog.Any("error", err))
	}
}

// recoverySweepAge is how old pending rows must be for the sweep the
// recorder runs when the queue comes back: older than any commit in
// flight.
const recoverySweepAge = 5 * time.Second

// Held reports how many committed deliveries wait to be queued.
func (r *Recorder) Held() int {
	r.heldMu.Lock()
	defer r.heldMu.Unlock()
	return r.heldIDs
}

// enqueueBatch queues committed inbox rows as one task, with a TaskID
// derived from its first row (a row is in one batch only).
func enqueueBatch(ctx context.Context, q queue.Enqueuer, ids []int64, lane string) error {
	b, _ := json.Marshal(idsPayload{IDs: ids})
	_, err := q.EnqueueContext(ctx, asynq.NewTask(TypeBatch, b),
		asynq.TaskID(TypeBatch+":"+strconv.FormatInt(ids[0], 10)), asynq.Queue(lane), asynq.MaxRetry(12))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}

// BatchTask is the asynq handler of TypeBatch: it queues each row's
// TypeProcess task on the batch's queue. Each row keeps a task of its
// own, with the TaskID the sweep also uses, so a row never has two live
// tasks (handlers would otherwise run twice at once) and is retried on
// its own. Rows already queued are skipped; if queueing fails, the batch
// is retried.
func (r *Recorder) BatchTask(ctx context.Context, t *asynq.Task) error {
	var pl idsPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil || len(pl.IDs) == 0 {
		return fmt.Errorf("bad %s payload %q: %w", TypeBatch, t.Payload(), asynq.SkipRetry)
	}
	lane, _ := asynq.GetQueueName(ctx)
	if lane == "" {
		lane = queue.Default
	}
	for _, id := range pl.IDs {
		if err := queue.EnqueueID(ctx, r.queue, TypeProcess, id, lane); err != nil {
			return fmt.Errorf("queueing inbox %d: %w", id, err)
		}
	}
	return nil
}
