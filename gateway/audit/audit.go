// Package audit writes the audit trail off the request path: a Recorder
// takes entries into a bounded in-process buffer and a single goroutine
// inserts them in batches every Interval (200 ms), so recording costs a
// request a channel send. It also records when API tokens were last used,
// at most once a minute per token.
//
// The trade-off: an entry is acknowledged once it is in the buffer, before
// it is in the database. Nothing is dropped: when the buffer is full
// (the database is slow or down), Record waits for room, so requests slow
// down rather than go unrecorded, and scrmgw_audit_buffer_full_total
// counts those waits. A failed insert is retried at the next tick with the
// same batch. On a graceful shutdown Run writes what is buffered before
// it returns. What a crash (kill -9, power loss) takes with it is at most
// the last Interval's entries, or the buffer's while the database was
// failing.
//
// Imported by the wiring and the admin API (through its Auditor
// interface); it imports store only.
package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrmgw/scrmgw/store"
)

// Appender is where entries go: *store.Store.
type Appender interface {
	AppendAudit(ctx context.Context, entries []store.AuditEntry) error
	TouchAPITokens(ctx context.Context, used map[int64]time.Time) error
}

// Options tune a Recorder; zero values take the defaults.
type Options struct {
	// Buffer is how many entries wait for the writer before Record
	// blocks. Default 10000.
	Buffer int
	// Interval is how often the buffer is written. Default 200ms.
	Interval time.Duration
	// Batch is the most entries one insert carries; a full batch is
	// written at once. Default 500.
	Batch int
	// TouchEvery is how rarely a token's last use is written. Default 1m.
	TouchEvery time.Duration
	// StopTimeout bounds the final write when Run stops. Default 10s.
	StopTimeout time.Duration
	Logger      *slog.Logger
}

// Recorder buffers audit entries and writes them in batches.
type Recorder struct {
	store Appender
	opts  Options
	log   *slog.Logger

	ch      chan store.AuditEntry
	flushes chan chan error
	stopped chan struct{}
	kick    chan struct{} // a token use waits to be written

	mu      sync.Mutex
	used    map[int64]time.Time // waiting to be written
	touched map[int64]time.Time // last use written (or queued), per token

	written  prometheus.Counter
	waited   prometheus.Counter
	failures prometheus.Counter
	buffered prometheus.GaugeFunc
}

// New returns a Recorder writing to s; start it with Run.
func New(s Appender, o Options) *Recorder {
	if o.Buffer <= 0 {
		o.Buffer = 10000
	}
	if o.Interval <= 0 {
		o.Interval = 200 * time.Millisecond
	}
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.TouchEvery <= 0 {
		o.TouchEvery = time.Minute
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{store: s, opts: o, log: o.Logger,
		ch: make(chan store.AuditEntry, o.Buffer), flushes: make(chan chan error), stopped: make(chan struct{}),
		kick: make(chan struct{}, 1),
		used: map[int64]time.Time{}, touched: map[int64]time.Time{},
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "scrmgw_audit_entries_written_total",
			Help: "Audit entries written to the database."}),
		waited: prometheus.NewCounter(prometheus.CounterOpts{Name: "scrmgw_audit_buffer_full_total",
			Help: "Audit entries whose request waited because the audit buffer was full (the database is slow or down)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "scrmgw_audit_write_errors_total",
			Help: "Failed writes of audit batches (each is retried)."}),
	}
	r.buffered = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scrmgw_audit_buffered",
		Help: "Audit entries waiting in the buffer."}, func() float64 { return float64(len(r.ch)) })
	return r
}

// Collectors are the Recorder's metrics, for a Prometheus registry.
func (r *Recorder) Collectors() []prometheus.Collector {
	return []prometheus.Collector{r.written, r.waited, r.failures, r.buffered}
}

// Record queues an entry. It returns at once unless the buffer is full,
// when it waits for room. After Run has returned it writes the entry
// itself.
func (r *Recorder) Record(e store.AuditEntry) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	select {
	case <-r.stopped:
		r.writeNow(e)
		return
	default:
	}
	select {
	case r.ch <- e:
		return
	default:
	}
	r.waited.Inc()
	select {
	case r.ch <- e:
	case <-r.stopped:
		r.writeNow(e)
	}
}

func (r *Recorder) writeNow(e store.AuditEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.StopTimeout)
	defer cancel()
	if err := r.store.AppendAudit(ctx, []store.AuditEntry{e}); err != nil {
		r.failures.Inc()
		r.log.Error("audit entry lost: writing it after the recorder stopped", slog.String("action", e.Action), slog.Any("error", err))
		return
	}
	r.written.Inc()
}

// TokenUsed notes that a token was used at at. The use is written with
// the next batch, and at most once per TouchEvery per token (per process).
func (r *Recorder) TokenUsed(id int64, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if last, ok := r.touched[id]; ok && at.Sub(last) < r.opts.TouchEvery {
		return
	}
	r.touched[id] = at
	r.used[id] = at
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// usesWaiting reports token uses not written yet (a write failed).
func (r *Recorder) usesWaiting() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.used) > 0
}

// Flush writes everything recorded so far and returns the write's error.
// It needs Run to be running.
func (r *Recorder) Flush(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case r.flushes <- done:
	case <-r.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeTimeout bounds one insert.
const writeTimeout = 30 * time.Second

// Run writes batches until ctx ends, then writes what is left (for at most
// StopTimeout) and returns. Stop whatever records before ending ctx.
//
// The Interval's timer runs only while something waits to be written (an
// entry, a token use, a batch the database refused): an idle gateway's
// recorder does not wake up.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTimer(r.opts.Interval)
	t.Stop()
	defer t.Stop()
	armed := false
	arm := func() {
		if !armed {
			t.Reset(r.opts.Interval)
			armed = true
		}
	}
	var (
		batch    []store.AuditEntry
		failedAt time.Time
	)
	// Inserts do not take ctx: one cancelled mid-way may have committed
	// yet report failure, and be written twice.
	write := func() error {
		wctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		defer cancel()
		err := r.write(wctx, &batch)
		if err != nil && time.Since(failedAt) > 10*time.Second {
			failedAt = time.Now()
			r.log.Error("writing the audit trail (retrying; requests wait once the buffer is full)",
				slog.Int("buffered", len(batch)+len(r.ch)), slog.Any("error", err))
		}
		return err
	}
	drain := func() {
		for len(batch) < r.opts.Batch {
			select {
			case e := <-r.ch:
				batch = append(batch, e)
			default:
				return
			}
		}
	}
	for {
		in := r.ch
		if len(batch) >= r.opts.Batch {
			in = nil // the database is behind: let the buffer fill
		}
		select {
		case e := <-in:
			batch = append(batch, e)
			if len(batch) >= r.opts.Batch {
				write()
			}
			if len(batch) > 0 {
				arm()
			}
		case <-r.kick:
			arm()
		case <-t.C:
			armed = false
			write()
			if len(batch) > 0 || len(r.ch) > 0 || r.usesWaiting() {
				arm()
			}
		case done := <-r.flushes:
			var err error
			for {
				drain()
				if err = write(); err != nil || len(r.ch) == 0 {
					break
				}
			}
			done <- err
		case <-ctx.Done():
			r.stop(&batch)
			return
		}
	}
}

// stop writes the batch and the buffer, retrying until StopTimeout.
func (r *Recorder) stop(batch *[]store.AuditEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.StopTimeout)
	defer cancel()
	defer close(r.stopped)
	for {
		for len(*batch) < r.opts.Batch {
			select {
			case e := <-r.ch:
				*batch = append(*batch, e)
				continue
			default:
			}
			break
		}
		err := r.write(ctx, batch)
		if err == nil && len(r.ch) == 0 {
			return
		}
		if err != nil {
			select {
			case <-ctx.Done():
				r.log.Error("audit entries lost at shutdown: the database did not take them in time",
					slog.Int("entries", len(*batch)+len(r.ch)), slog.Any("error", err))
				return
			case <-time.After(r.opts.Interval):
			}
		}
	}
}

// write inserts the batch and the pending token uses; the batch is kept
// when the insert fails.
func (r *Recorder) write(ctx context.Context, batch *[]store.AuditEntry) error {
	var used map[int64]time.Time
	r.mu.Lock()
	if len(r.used) > 0 {
		used, r.used = r.used, map[int64]time.Time{}
	}
	r.mu.Unlock()
	if len(used) > 0 {
		if err := r.store.TouchAPITokens(ctx, used); err != nil {
			r.log.Warn("recording when tokens were last used", slog.Any("error", err))
			r.mu.Lock()
			for id, at := range used {
				if cur, ok := r.used[id]; !ok || cur.Before(at) {
					r.used[id] = at
				}
			}
			r.mu.Unlock()
		}
	}
	if len(*batch) == 0 {
		return nil
	}
	if err := r.store.AppendAudit(ctx, *batch); err != nil {
		r.failures.Inc()
		return err
	}
	r.written.Add(float64(len(*batch)))
	*batch = (*batch)[:0]
	return nil
}
