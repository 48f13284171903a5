package audit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrmgw/scrmgw/gateway/audit"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// flaky fails the first inserts, then passes them to the real store; it
// can also hold inserts until released (a slow database).
type flaky struct {
	*store.Store
	fails   atomic.Int32
	hold    chan struct{}
	entered chan struct{} // told when an insert starts, if set
}

func (f *flaky) AppendAudit(ctx context.Context, es []store.AuditEntry) error {
	if f.entered != nil {
		select {
		case f.entered <- struct{}{}:
		default:
		}
	}
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.fails.Add(-1) >= 0 {
		return errors.New("database unavailable")
	}
	return f.Store.AppendAudit(ctx, es)
}

// metric reads one of the recorder's metrics as Prometheus would.
func metric(t *testing.T, rec *audit.Recorder, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(rec.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func entry(i int) store.AuditEntry {
	return store.AuditEntry{Actor: "admin", Action: store.AuditWrite, Route: "/api/v1/stores/:id", ResourceIDs: fmt.Sprintf("id=s%d", i), Status: 200}
}

func count(t *testing.T, s *store.Store) int {
	t.Helper()
	n := 0
	var after int64
	for {
		es, err := s.AuditLog(context.Background(), store.AuditQuery{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		n += len(es)
		if len(es) < 1000 {
			return n
		}
		after = es[len(es)-1].ID
	}
}

// TestRecorderWritesEverything: entries recorded from many goroutines are
// all written, in batches, by the interval or at shutdown; failed inserts
// are retried; Record after the stop writes at once.
func TestRecorderWritesEverything(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		f := &flaky{Store: s}
		f.fails.Store(2)
		rec := audit.New(f, audit.Options{Interval: 10 * time.Millisecond, Batch: 50})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			rec.Run(ctx)
		}()
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 100 {
					rec.Record(entry(g*100 + i))
				}
			}()
		}
		wg.Wait()
		time.Sleep(50 * time.Millisecond) // some written by the interval
		for i := range 30 {
			rec.Record(entry(1000 + i))
		}
		cancel() // the rest at shutdown
		<-done
		if n := count(t, s); n != 830 {
			t.Errorf("%d entries written, want 830", n)
		}
		rec.Record(entry(2000))
		if n := count(t, s); n != 831 {
			t.Errorf("after the stop: %d entries, want 831", n)
		}
		written := metric(t, rec, "scrmgw_audit_entries_written_total")
		failed := metric(t, rec, "scrmgw_audit_write_errors_total")
		if written != 831 || failed != 2 {
			t.Errorf("metrics: written %v, failures %v; want 831, 2", written, failed)
		}
	})
}

// TestRecorderBlocksWhenFull: with the database stalled, Record returns at
// once until the buffer is full, then waits (counted) rather than drop
// anything; when the database comes back every entry is written.
func TestRecorderBlocksWhenFull(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	f := &flaky{Store: s, hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	rec := audit.New(f, audit.Options{Interval: 5 * time.Millisecond, Batch: 10, Buffer: 20})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rec.Run(ctx)
	}()
	// Record until the writer is stuck in an insert, then fill the
	// buffer: none of that waits.
	n := 0
	for stuck := false; !stuck; {
		rec.Record(entry(n))
		n++
		select {
		case <-f.entered:
			stuck = true
		case <-time.After(2 * time.Millisecond):
		}
	}
	for range 20 - int(metric(t, rec, "scrmgw_audit_buffered")) {
		rec.Record(entry(n))
		n++
	}
	if got := metric(t, rec, "scrmgw_audit_buffer_full_total"); got != 0 {
		t.Fatalf("scrmgw_audit_buffer_full_total = %v before the buffer was full", got)
	}
	blocked := make(chan struct{})
	go func() {
		rec.Record(entry(999))
		close(blocked)
	}()
	select {
	case <-blocked:
		t.Fatal("Record returned with the buffer full")
	case <-time.After(100 * time.Millisecond):
	}
	if got := metric(t, rec, "scrmgw_audit_buffer_full_total"); got != 1 {
		t.Errorf("scrmgw_audit_buffer_full_total = %v, want 1", got)
	}
	close(f.hold) // the database is back
	defer func() { cancel(); <-done }()
	<-blocked
	if err := rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := count(t, s); got != n+1 {
		t.Errorf("%d entries written, want %d", got, n+1)
	}
}

// TestTokenUsedIsThrottled: a token's use is written at most once per
// TouchEvery, whatever the number of requests.
func TestTokenUsedIsThrottled(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	ctx := context.Background()
	_, tok, err := s.CreateAPIToken(ctx, store.NewAPIToken{Name: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.New(s, audit.Options{Interval: time.Hour, TouchEvery: time.Minute})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rec.Run(runCtx)
	}()
	defer func() { cancel(); <-done }()
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	last := func() time.Time {
		t.Helper()
		if err := rec.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := s.APIToken(ctx, tok.ID)
		if err != nil || got.LastUsedAt == nil {
			t.Fatalf("token = %+v, %v", got, err)
		}
		return *got.LastUsedAt
	}
	rec.TokenUsed(tok.ID, t0)
	rec.TokenUsed(tok.ID, t0.Add(30*time.Second)) // within the minute: not written
	if got := last(); !got.Equal(t0) {
		t.Errorf("last used = %v, want %v", got, t0)
	}
	rec.TokenUsed(tok.ID, t0.Add(61*time.Second))
	if got := last(); !got.Equal(t0.Add(61 * time.Second)) {
		t.Errorf("last used = %v, want a minute later", got)
	}
}

// The recorder's timer runs only while something waits: a token use with
// no audit entry beside it still wakes it and is written, without a Flush.
func TestTokenUseAloneWakesTheRecorder(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	ctx := context.Background()
	_, tok, err := s.CreateAPIToken(ctx, store.NewAPIToken{Name: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.New(s, audit.Options{Interval: 5 * time.Millisecond})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		rec.Run(runCtx)
	}()
	defer func() { cancel(); <-done }()
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	rec.TokenUsed(tok.ID, at)
	deadline := time.Now().Add(30 * time.Second) // a fail-safe, not a measurement
	for {
		got, err := s.APIToken(ctx, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt != nil {
			if !got.LastUsedAt.Equal(at) {
				t.Fatalf("last used = %v, want %v", got.LastUsedAt, at)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the token use was never written")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
