package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/scrmgw/scrmgw/store"
)

// SendSettled is told that the outbox message of key settled: the
// channel accepted it (sent) or it will not be sent (failed). When a send
// step waits for that message, its run is woken now, and the wake ends
// the step (done, or failed with the outbox's reason) and goes on. Keys
// that are not a waiting send step's are ignored, so the outbound
// pipeline may tell of every message. It is idempotent; if it fails, or
// is never called (a worker stopped between settling the message and
// telling), the step looks at the outbox itself after Options.SendPoll.
func (e *Engine) SendSettled(ctx context.Context, key string) error {
	runID, ok := runOfKey(key)
	if !ok {
		return nil
	}
	run, cur, err := e.store.RunWithStep(ctx, runID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("waking the run of %s: %w", key, err)
	}
	if run.State != store.RunActive || cur == nil || cur.State != store.StepSending || cur.OutboxKey != key {
		return nil
	}
	now := e.now()
	woken, err := e.store.WakeRunNow(ctx, run.ID, run.WakeSeq, now)
	if err != nil || !woken {
		return err
	}
	queue := e.opts.WakeQueue
	if e.critical(ctx, run) {
		queue = e.opts.CriticalQueue
	}
	// A task id of its own: the step's next look at the outbox may hold
	// the wake's.
	id := wakeTaskID(run.ID, run.Step, run.WakeSeq) + ":settled"
	if err := e.enqueue(ctx, run.ID, run.WakeSeq, id, now, queue); err != nil {
		if uerr := e.store.UnqueueRun(ctx, run.ID, run.WakeSeq); uerr != nil {
			e.log.WarnContext(ctx, "unqueueing run", "run_id", run.ID, slog.Any("error", uerr))
		}
		return fmt.Errorf("waking run %d: %w", run.ID, err)
	}
	return nil
}

// settledMeanwhile wakes a send step that began to wait for its message
// after the message settled: the pipeline's news came before the step
// waited, and was ignored.
func (e *Engine) settledMeanwhile(ctx context.Context, key string) {
	row, err := e.store.OutboxByKey(ctx, key)
	if err == nil && (row.State == store.OutboxSent || row.State == store.OutboxFailed) {
		err = e.SendSettled(ctx, key)
	}
	if err != nil {
		e.log.WarnContext(ctx, "looking at a send's message; the step looks again later", "key", key, slog.Any("error", err))
	}
}

// Delivered is told that the message of key reached the member (WeCom:
// the guide sent the message task and the member received it): the
// guide's task to confirm it is done. It is idempotent.
func (e *Engine) Delivered(ctx context.Context, key string) error {
	if _, ok := runOfKey(key); !ok {
		return nil
	}
	done, err := e.store.CompleteGuideTaskByKey(ctx, key+":confirm", e.now())
	if err != nil {
		return fmt.Errorf("completing the confirmation task of %s: %w", key, err)
	}
	if done {
		e.log.DebugContext(ctx, "message confirmed by the guide; task done", "key", key)
	}
	return nil
}

// Undelivered is told that the message of key will not reach the member
// (the guide did not send the WeCom message task in time, or the member
// is no longer their contact): the guide's task to confirm it is
// cancelled, not left overdue for ever. It is idempotent.
func (e *Engine) Undelivered(ctx context.Context, key, why string) error {
	if _, ok := runOfKey(key); !ok {
		return nil
	}
	cancelled, err := e.store.CancelGuideTaskByKey(ctx, key+":confirm")
	if err != nil {
		return fmt.Errorf("cancelling the confirmation task of %s: %w", key, err)
	}
	if cancelled {
		e.log.InfoContext(ctx, "message not delivered; its confirmation task is cancelled", "key", key, "reason", why)
	}
	return nil
}

// runOfKey returns the run of a step visit's key ("wf:<run>:<step>:<visit>").
func runOfKey(key string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, "wf:")
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(num, 10, 64)
	return id, err == nil && id > 0
}
