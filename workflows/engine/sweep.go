package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/store"
)

// sweepLease names the lease of the sweeper.
const sweepLease = "workflows:sweeper"

// sweepBudget bounds one sweep, so the periodic task finishes before the
// next one.
const sweepBudget = 25 * time.Second

// HandleSweep is the handler of TypeSweep tasks: see Sweep.
func (e *Engine) HandleSweep(ctx context.Context, _ *asynq.Task) error {
	return e.Sweep(ctx)
}

// Sweep hands the wakes due within the horizon that wait in the database
// to the queue, hands over again the wakes due but not done a grace
// period after they were handed over (a lost task, a crashed worker), and
// starts the runs of due schedules. One replica at a time sweeps (a
// lease); every replica may call it.
func (e *Engine) Sweep(ctx context.Context) error {
	now := e.now()
	var errs []error
	ok, err := e.store.AcquireLease(ctx, sweepLease, e.opts.Instance, now, 2*sweepBudget)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("taking the sweeper lease: %w", err))
	case ok:
		errs = append(errs, e.sweepWakes(ctx, now))
		if err := e.store.ReleaseLease(ctx, sweepLease, e.opts.Instance); err != nil {
			errs = append(errs, fmt.Errorf("releasing the sweeper lease: %w", err))
		}
	}
	if _, err := e.RunSchedules(ctx, now); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (e *Engine) sweepWakes(ctx context.Context, now time.Time) error {
	deadline := time.Now().Add(sweepBudget)
	queries := []store.WakeQuery{
		{DueBefore: now.Add(e.opts.Horizon), Unqueued: true, Limit: e.opts.SweepBatch, Now: now},
		{DueBefore: now.Add(-e.opts.SweepGrace), QueuedBefore: now.Add(-e.opts.SweepGrace), Limit: e.opts.SweepBatch, Now: now},
	}
	for i, q := range queries {
		total := 0
		for time.Now().Before(deadline) {
			n, err := e.store.HandWakes(ctx, q, func(ws []store.Wake) ([]int64, error) { return e.handOver(ctx, ws, now) })
			if err != nil {
				return fmt.Errorf("sweeping wakes: %w", err)
			}
			total += n
			if n < q.Limit {
				break
			}
		}
		if total > 0 {
			what := "wakes handed to the queue"
			if i == 1 {
				what = "overdue wakes handed to the queue again"
			}
			e.log.InfoContext(ctx, what, "count", total)
		}
	}
	return nil
}

// handOver queues wakes, several at a time, and returns the runs whose
// wake could not be queued.
func (e *Engine) handOver(ctx context.Context, ws []store.Wake, now time.Time) ([]int64, error) {
	var (
		mu      sync.Mutex
		failed  []int64
		lastErr error
		wg      sync.WaitGroup
	)
	work := make(chan store.Wake)
	for range min(16, len(ws)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range work {
				err := e.enqueue(ctx, w.RunID, w.Seq, wakeTaskID(w.RunID, w.Step, w.Seq), w.WakeAt, e.opts.WakeQueue)
				if err != nil {
					mu.Lock()
					failed, lastErr = append(failed, w.RunID), err
					mu.Unlock()
				}
			}
		}()
	}
	for _, w := range ws {
		work <- w
	}
	close(work)
	wg.Wait()
	if lastErr != nil {
		e.log.WarnContext(ctx, "queueing wakes failed", "failed", len(failed), slog.Any("error", lastErr))
	}
	return failed, lastErr
}
