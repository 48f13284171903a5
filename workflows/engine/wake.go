package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
)

// maxStepsPerWake bounds the steps one wake executes; a longer straight
// line of steps goes on in a new wake.
const maxStepsPerWake = 50

// errPermanent marks failures that retrying cannot fix.
var errPermanent = errors.New("permanent failure")

// errStepBusy means another worker holds the step's claim; the wake is
// retried.
var errStepBusy = errors.New("step claimed by another worker")

// wakePayload is the payload of a TypeWake task.
type wakePayload struct {
	Run int64 `json:"r"`
	Seq int64 `json:"s"`
	// Due is when the wake is due, in Unix milliseconds.
	Due int64 `json:"t,omitempty"`
}

// wakeTaskID is the TaskID of a run's wake: a wake is queued once per run,
// step and sequence.
func wakeTaskID(runID int64, step string, seq int64) string {
	return "wf:" + strconv.FormatInt(runID, 10) + ":" + step + ":" + strconv.FormatInt(seq, 10)
}

// ceilSecond rounds t up to a whole second.
func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

// HandleWake is the handler of TypeWake tasks: it advances the run if it
// is still at the wake's sequence, never before the wake is due. Wakes are
// handed to Asynq Options.Lead before they are due and Asynq may forward
// them up to a second earlier still: the handler waits out the rest (up to
// Options.MaxEarly) and schedules a wake that came earlier again.
func (e *Engine) HandleWake(ctx context.Context, t *asynq.Task) error {
	var p wakePayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.Run == 0 {
		return fmt.Errorf("bad %s payload %q: %w", TypeWake, t.Payload(), asynq.SkipRetry)
	}
	if p.Due != 0 {
		if err := e.sleepUntil(ctx, time.UnixMilli(p.Due)); err != nil {
			return err
		}
	}
	return e.wake(ctx, p.Run, p.Seq)
}

// sleepUntil waits for t if it is at most MaxEarly away.
func (e *Engine) sleepUntil(ctx context.Context, t time.Time) error {
	early := t.Sub(e.now())
	if early <= 0 || early > e.opts.MaxEarly {
		return nil
	}
	timer := time.NewTimer(early)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

func (e *Engine) wake(ctx context.Context, runID, seq int64) error {
	for slept := false; ; slept = true {
		run, cur, err := e.store.RunWithStep(ctx, runID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("waking run %d: %w", runID, err)
		}
		if run.State != store.RunActive || run.WakeSeq != seq || run.WakeAt == nil {
			return nil // moved on, ended or cancelled
		}
		now := e.now()
		if !now.Before(*run.WakeAt) {
			if e.opts.OnWake != nil {
				e.opts.OnWake(*run.WakeAt, now)
			}
			return e.advance(ctx, run, cur, now)
		}
		// Early (the payload's due time was not the run's, or clocks
		// differ): wait a little and look again, or come back later.
		if slept || run.WakeAt.Sub(now) > e.opts.MaxEarly {
			return e.rescheduleEarly(ctx, run, now)
		}
		if err := e.sleepUntil(ctx, *run.WakeAt); err != nil {
			return err
		}
	}
}

// rescheduleEarly queues a wake that arrived too early again for its
// time, under a task id of its own (the early task still holds the wake's).
func (e *Engine) rescheduleEarly(ctx context.Context, run *store.WorkflowRun, now time.Time) error {
	id := wakeTaskID(run.ID, run.Step, run.WakeSeq) + ":early" + strconv.FormatInt(now.UnixMilli(), 10)
	if err := e.enqueue(ctx, run.ID, run.WakeSeq, id, *run.WakeAt, e.opts.WakeQueue); err != nil {
		return fmt.Errorf("rescheduling early wake of run %d: %w", run.ID, err)
	}
	e.log.DebugContext(ctx, "wake arrived early; rescheduled", "run_id", run.ID, "wake_at", *run.WakeAt)
	return nil
}

// outcome is what executing a step decided.
type outcome struct {
	// stepState is how the step visit ends (or stays: pending, waiting).
	stepState string
	decision  string
	errText   string
	// next is the step to go to, workflows.End to end the run, or ""
	// to stay on the step until wakeAt.
	next      string
	wakeAt    time.Time
	waitEvent string
	sent      int
	// outboxKey names the message a send step put in the outbox; reason
	// says in a word why a step was skipped or failed.
	outboxKey string
	reason    string
	// end ends the run in this state (failed); next == End ends it done.
	end       string
	endReason string
	// events are logged events to handle once the move is committed.
	events []*store.Event
}

// advance executes the run's steps from its current one until it waits or
// ends.
func (e *Engine) advance(ctx context.Context, run *store.WorkflowRun, cur *store.RunStep, now time.Time) error {
	wf, err := e.workflow(ctx, run.BrandID, run.Workflow, run.Version)
	if errors.Is(err, errPermanent) || errors.Is(err, store.ErrNotFound) {
		_, err := e.commit(ctx, &runCtx{e: e, run: run}, failed(run.Step, err), now)
		return err
	}
	if err != nil {
		return err
	}
	rc := &runCtx{e: e, run: run, wf: wf, cur: cur}
	state, failures := store.StepPending, 0
	if cur != nil {
		state, failures = cur.State, cur.Failures
	}
	woken := run.WakeSeq
	// An error after the run moved on cannot be retried by the wake's
	// task (its sequence is past): the run is handed back to the
	// sweeper, which queues it at its next pass.
	handBack := func(err error) error {
		if run.WakeSeq != woken {
			if uerr := e.store.UnqueueRun(context.WithoutCancel(ctx), run.ID, run.WakeSeq); uerr != nil {
				e.log.WarnContext(ctx, "unqueueing run", "run_id", run.ID, slog.Any("error", uerr))
			}
		}
		return err
	}
	for range maxStepsPerWake {
		if err := ctx.Err(); err != nil {
			return handBack(err)
		}
		step, ok := wf.Step(run.Step)
		if !ok {
			_, err := e.commit(ctx, rc, failed(run.Step, fmt.Errorf("version %s has no step %q", run.Version, run.Step)), now)
			return err
		}
		out, err := e.exec(ctx, rc, step, state, failures, now)
		if errors.Is(err, errStepBusy) {
			return handBack(fmt.Errorf("run %d: %w", run.ID, err))
		}
		if err != nil {
			return handBack(fmt.Errorf("run %d step %s: %w", run.ID, step.ID, err))
		}
		moved, err := e.commit(ctx, rc, out, now)
		if err != nil {
			return handBack(err)
		}
		if !moved {
			return nil
		}
		if out.stepState == store.StepSending && run.State == store.RunActive {
			e.settledMeanwhile(ctx, out.outboxKey)
		}
		if run.State != store.RunActive || out.next == "" {
			return nil // ended, or waits
		}
		state, failures, rc.cur = store.StepPending, 0, nil
		now = e.now()
	}
	// A long line of steps: go on in a fresh wake.
	return e.enqueueWake(ctx, run, now)
}

// failed is the outcome of a step that failed for good: the run fails.
func failed(step string, err error) outcome {
	return outcome{stepState: store.StepFailed, errText: err.Error(), decision: "failed", end: store.RunFailed,
		endReason: truncateText("step "+step+" failed: "+err.Error(), 200)}
}

// commit records an outcome on the run, guarded by its sequence, then
// queues its wake when it is due within the horizon and handles the
// events the step logged. moved is false when the run was moved by
// someone else meanwhile.
func (e *Engine) commit(ctx context.Context, rc *runCtx, out outcome, now time.Time) (moved bool, err error) {
	// What a step did is recorded even if the worker is shutting down.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	run := rc.run
	m := store.RunMove{RunID: run.ID, Seq: run.WakeSeq, Step: run.Step, Visit: run.Visit, StepState: out.stepState,
		Outcome: out.decision, Error: out.errText, Sent: out.sent, OutboxKey: out.outboxKey, Reason: out.reason, At: now}
	if out.stepState == store.StepFailed && m.Reason == "" {
		m.Reason = reasonError
	}
	queue := false
	switch {
	case out.end != "":
		m.End, m.EndReason = out.end, out.endReason
	case out.next == workflows.End:
		m.End, m.EndReason = store.RunDone, out.endReason
	case out.next != "":
		// The next step runs at once, in this worker: the wake is "now"
		// and handed over, so the sweeper takes it up only if this
		// worker dies.
		m.Next, m.NextState, m.WakeAt, m.QueuedAt = out.next, store.StepPending, &now, &now
	default:
		at := out.wakeAt
		m.WakeAt, m.WaitEvent = &at, out.waitEvent
		if !at.After(now.Add(e.opts.Horizon)) {
			m.QueuedAt, queue = &now, true
		}
	}
	moved, visit, err := e.store.MoveRun(ctx, m)
	if err != nil {
		return false, fmt.Errorf("moving run %d from %s: %w", run.ID, run.Step, err)
	}
	if !moved {
		e.log.DebugContext(ctx, "run moved by someone else", "run_id", run.ID, "step", run.Step)
		return false, nil
	}
	run.WakeSeq++
	run.Sent += out.sent
	switch {
	case m.End != "":
		run.State, run.EndReason, run.WakeAt = m.End, m.EndReason, nil
	case m.Next != "":
		run.Step, run.Visit, run.WakeAt, run.WaitEvent = m.Next, visit, m.WakeAt, ""
	default:
		run.WakeAt, run.WaitEvent = m.WakeAt, m.WaitEvent
	}
	if out.end == store.RunFailed {
		e.log.WarnContext(ctx, "workflow run failed", "run_id", run.ID, "workflow", run.Workflow, "step", m.Step,
			slog.String("error", out.errText))
	}
	if queue {
		if err := e.enqueueWake(ctx, run, now); err != nil {
			e.log.WarnContext(ctx, "queueing wake failed; the sweeper will", "run_id", run.ID, slog.Any("error", err))
			if uerr := e.store.UnqueueRun(ctx, run.ID, run.WakeSeq); uerr != nil {
				e.log.WarnContext(ctx, "unqueueing run", "run_id", run.ID, slog.Any("error", uerr))
			}
		}
	}
	for _, ev := range out.events {
		if err := e.HandleEvent(ctx, ev); err != nil {
			e.log.WarnContext(ctx, "handling an event a step logged", "run_id", run.ID, "event", ev.Type, slog.Any("error", err))
		}
	}
	return true, nil
}

// enqueueWake hands the run's current wake to the queue.
func (e *Engine) enqueueWake(ctx context.Context, run *store.WorkflowRun, now time.Time) error {
	at := now
	if run.WakeAt != nil {
		at = *run.WakeAt
	}
	queue := e.opts.WakeQueue
	if e.critical(ctx, run) {
		queue = e.opts.CriticalQueue
	}
	return e.enqueue(ctx, run.ID, run.WakeSeq, wakeTaskID(run.ID, run.Step, run.WakeSeq), at, queue)
}

// critical reports whether the run's current step is a high-priority
// send (a welcome), whose wake goes ahead of everything else.
func (e *Engine) critical(ctx context.Context, run *store.WorkflowRun) bool {
	w, err := e.workflow(ctx, run.BrandID, run.Workflow, run.Version)
	if err != nil {
		return false
	}
	s, ok := w.Step(run.Step)
	return ok && s.Kind == workflows.KindSend && s.Send.Priority == workflows.PriorityHigh
}

// enqueue queues a wake task due at at, handed over Lead before; one
// already queued under the id is fine.
func (e *Engine) enqueue(ctx context.Context, runID, seq int64, id string, at time.Time, queue string) error {
	payload, _ := json.Marshal(wakePayload{Run: runID, Seq: seq, Due: at.UnixMilli()})
	opts := []asynq.Option{asynq.TaskID(id), asynq.Queue(queue), asynq.MaxRetry(e.opts.MaxWakeRetry), asynq.Timeout(5 * time.Minute)}
	handAt := at.Add(-e.opts.Lead)
	if e.opts.Lead == 0 {
		handAt = ceilSecond(at) // asynq keeps whole seconds: never early
	}
	if handAt.After(e.now()) {
		opts = append(opts, asynq.ProcessAt(handAt))
	}
	_, err := e.opts.Queue.EnqueueContext(ctx, asynq.NewTask(TypeWake, payload), opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}

func truncateText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
