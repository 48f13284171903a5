// Package pipeline carries every platform delivery from acknowledgement to
// effect: the Recorder writes deliveries to the inbox (batching commits
// across concurrent callbacks) and queues them; the Processor handles each
// queued delivery once, through the handlers the wiring registered; the
// Sender delivers outbox messages through their channel exactly once; the
// sweep re-queues what was saved but never handed to a worker.
package pipeline

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
	"github.com/scrmgw/scrmgw/store"
)

// Task types and queues of the pipeline.
const (
	TypeProcessInbox = "inbox:process"
	TypeSendOutbox   = "outbox:send"

	QueueCritical = "critical"
	QueueDefault  = "default"
	QueueLow      = "low"
)

// Enqueuer is the part of *asynq.Client the pipeline uses.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// idPayload is the payload of pipeline tasks: the row to work on.
type idPayload struct {
	ID int64 `json:"id"`
}

func idTask(typ string, id int64) *asynq.Task {
	b, _ := json.Marshal(idPayload{ID: id})
	return asynq.NewTask(typ, b)
}

// enqueueID queues a task for a row with a TaskID derived from it, so a
// row is queued at most once at a time. An id already queued is not an
// error.
func enqueueID(ctx context.Context, q Enqueuer, typ string, id int64, queue string) error {
	_, err := q.EnqueueContext(ctx, idTask(typ, id), asynq.TaskID(typ+":"+strconv.FormatInt(id, 10)),
		asynq.Queue(queue), asynq.MaxRetry(12))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}

// inboxQueue picks the queue for a delivery: new contacts first, because
// their WeCom welcome code expires in 20 seconds.
func inboxQueue(in *adapters.Inbound) string {
	if in.Kind == "event" && in.Event == EventContactAdded {
		return QueueCritical
	}
	return QueueDefault
}

// RecorderOptions tune the group commit.
type RecorderOptions struct {
	// MaxBatch caps deliveries per database statement. Default 256.
	MaxBatch int
	// Linger is how long a batch waits for company once the first
	// delivery is in. Default 2ms.
	Linger time.Duration
	// Enqueuers is how many goroutines queue recorded deliveries. Default 16.
	Enqueuers int
}

// Recorder implements adapters.Recorder: Record returns once the delivery
// is committed to the inbox. Concurrent Records are committed together in
// one statement, which is what lets the gateway acknowledge thousands of
// callbacks a second with every one durable.
type Recorder struct {
	store *store.Store
	queue Enqueuer
	log   *slog.Logger
	opts  RecorderOptions

	in      chan *pending
	stopped chan struct{}
	mu      sync.RWMutex
	closed  bool
}

type pending struct {
	msg   store.InboxMessage
	in    *adapters.Inbound
	fresh bool
	done  chan error
}

// NewRecorder returns a Recorder; call Run to start committing.
func NewRecorder(s *store.Store, q Enqueuer, log *slog.Logger, opts RecorderOptions) *Recorder {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Linger <= 0 {
		opts.Linger = 2 * time.Millisecond
	}
	if opts.Enqueuers <= 0 {
		opts.Enqueuers = 16
	}
	return &Recorder{store: s, queue: q, log: log, opts: opts,
		in: make(chan *pending, opts.MaxBatch*4), stopped: make(chan struct{})}
}

var _ adapters.Recorder = (*Recorder)(nil)

// ErrStopped is returned by Record after the Recorder stopped.
var ErrStopped = errors.New("recorder stopped")

// Record commits one delivery to the inbox and queues it for processing.
func (r *Recorder) Record(ctx context.Context, in *adapters.Inbound) error {
	if in.Channel == "" || in.DedupKey == "" {
		return errors.New("recording inbound: channel and dedup key are required")
	}
	payload, err := json.Marshal(in)
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
		// The batch may still commit; the platform's redelivery will
		// then find it recorded.
		return ctx.Err()
	}
}

// Run commits batches until ctx ends, then refuses new deliveries, commits
// what was already handed in, and returns.
func (r *Recorder) Run(ctx context.Context) {
	defer close(r.stopped)
	go func() {
		<-ctx.Done()
		r.mu.Lock()
		r.closed = true
		close(r.in)
		r.mu.Unlock()
	}()
	batch := make([]*pending, 0, r.opts.MaxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		p, ok := <-r.in
		if !ok {
			return
		}
		batch = append(batch[:0], p)
		timer.Reset(r.opts.Linger)
	fill:
		for len(batch) < r.opts.MaxBatch {
			select {
			case p, ok := <-r.in:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			case <-timer.C:
				break fill
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		r.commit(batch)
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
	for i, p := range batch {
		p.fresh = fresh[i]
	}
	// Queue the new deliveries, in parallel; a failure here loses
	// nothing (the row is pending and the sweep queues it), so the
	// callers are answered either way.
	work := make(chan *pending)
	var wg sync.WaitGroup
	for w := 0; w < min(r.opts.Enqueuers, len(batch)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if err := enqueueID(ctx, r.queue, TypeProcessInbox, p.msg.ID, inboxQueue(p.in)); err != nil {
					r.log.Warn("queueing inbound failed; the sweep will retry", slog.Int64("inbox_id", p.msg.ID), slog.Any("error", err))
				}
				p.done <- nil
			}
		}()
	}
	for _, p := range batch {
		if p.fresh {
			work <- p
		} else {
			p.done <- nil
		}
	}
	close(work)
	wg.Wait()
}
