package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
)

// HandleEvent applies an event of the log to the workflows of its member:
// first goals (matching active runs end as converted, their pending wakes
// cancelled), then exits (matching runs end as exited), then wait_for
// steps waiting for it, then triggers (enabled
// workflows of the event's brand start runs). It is idempotent: handling
// an event again changes nothing (runs record the event that started
// them). Events without a member are ignored.
func (e *Engine) HandleEvent(ctx context.Context, ev *store.Event) error {
	if ev.MemberID == nil || *ev.MemberID == 0 {
		return nil
	}
	now := e.now()
	memberID := *ev.MemberID
	fields := e.eventFields(ev)
	profiles := map[string]*store.MemberProfile{}
	profile := func(brand string) (*store.MemberProfile, error) {
		if p, ok := profiles[brand]; ok {
			return p, nil
		}
		p, err := e.store.MemberProfile(ctx, brand, memberID)
		if err != nil {
			return nil, fmt.Errorf("loading member %d: %w", memberID, err)
		}
		profiles[brand] = p
		return p, nil
	}
	envFor := func(brand string, run *store.WorkflowRun) (*workflows.Env, error) {
		p, err := profile(brand)
		if err != nil {
			return nil, err
		}
		env := &workflows.Env{Event: fields.event, Member: e.memberModel(p), Now: now}
		if fields.live != nil {
			env.Live = *fields.live
		}
		if fields.order != nil {
			env.Order = *fields.order
		} else {
			env.Order = lastOrder(p)
		}
		if run != nil {
			env.Run = workflows.Run{StartedAt: run.StartedAt, Step: run.Step, Sent: run.Sent}
		}
		return env, nil
	}

	runs, err := e.store.ActiveRuns(ctx, memberID, ev.BrandID)
	if err != nil {
		return fmt.Errorf("handling %s: %w", ev.Type, err)
	}
	for i := range runs {
		run := &runs[i]
		if !eventConcerns(ev, fields, run) {
			continue
		}
		wf, err := e.workflow(ctx, run.BrandID, run.Workflow, run.Version)
		if err != nil {
			e.log.WarnContext(ctx, "run of an unloadable workflow", "run_id", run.ID, slog.Any("error", err))
			continue
		}
		named := func(g workflows.Goal) bool { return g.Event == ev.Type }
		if run.WaitEvent != ev.Type && !slices.ContainsFunc(wf.Goals, named) && !slices.ContainsFunc(wf.Exits, named) {
			continue // nothing of the run waits for this event
		}
		if other, err := e.otherLive(ctx, run, wf, fields); err != nil {
			return fmt.Errorf("handling %s: %w", ev.Type, err)
		} else if other {
			continue
		}
		env, err := envFor(run.BrandID, run)
		if errors.Is(err, store.ErrNotFound) {
			return nil // the member is gone (merged or deleted)
		}
		if err != nil {
			return fmt.Errorf("handling %s: %w", ev.Type, err)
		}
		if ended, err := e.applyGoals(ctx, run, wf, ev, env, now); err != nil {
			return err
		} else if ended {
			continue
		}
		if ended, err := e.applyExits(ctx, run, wf, ev, env, now); err != nil {
			return err
		} else if ended {
			continue
		}
		if err := e.applyWaitFor(ctx, run, wf, ev, env, now); err != nil {
			return err
		}
	}

	if ev.BrandID == "" {
		return nil
	}
	heads, err := e.enabledWorkflows(ctx, ev.BrandID)
	if err != nil {
		return fmt.Errorf("handling %s: %w", ev.Type, err)
	}
	for _, h := range heads {
		if h.Trigger != ev.Type {
			continue
		}
		wf, err := e.workflow(ctx, h.BrandID, h.Name, h.Version)
		if err != nil {
			e.log.WarnContext(ctx, "enabled workflow cannot be loaded", "workflow", h.Name, slog.Any("error", err))
			continue
		}
		p, err := profile(ev.BrandID)
		if errors.Is(err, store.ErrNotFound) {
			return nil // the member is gone (merged or deleted)
		}
		if err != nil {
			return fmt.Errorf("handling %s: %w", ev.Type, err)
		}
		if p.Membership == nil {
			continue // not a member of the brand
		}
		env, _ := envFor(ev.BrandID, nil)
		ok, err := wf.Trigger.Matches(ev.Type, env)
		if err != nil {
			e.log.WarnContext(ctx, "trigger filter failed", "workflow", wf.Name, "member_id", memberID, slog.Any("error", err))
			continue
		}
		if !ok {
			continue
		}
		var eventID *int64
		key := "x" + strconv.FormatInt(ev.OccurredAt.UnixNano(), 36)
		if ev.ID != 0 {
			eventID = &ev.ID
			key = "e" + strconv.FormatInt(ev.ID, 10)
		}
		if _, err := e.enter(ctx, wf, []int64{memberID}, key, eventID, "", now); err != nil {
			return fmt.Errorf("starting %s for member %d: %w", wf.Name, memberID, err)
		}
	}
	return nil
}

// eventConcerns reports whether an event may act on a run: not the event
// that started it (or an older one), and for a guide task completed, a
// task of this run.
func eventConcerns(ev *store.Event, f eventFields, run *store.WorkflowRun) bool {
	if run.EventID != nil && ev.ID != 0 && ev.ID <= *run.EventID {
		return false
	}
	if ev.Type == events.TypeGuideTaskCompleted {
		return f.event.Attrs["run_id"] == strconv.FormatInt(run.ID, 10)
	}
	return true
}

// applyGoals ends the run as converted when the event is one of its goals.
func (e *Engine) applyGoals(ctx context.Context, run *store.WorkflowRun, wf *workflows.Workflow, ev *store.Event, env *workflows.Env, now time.Time) (bool, error) {
	for i := range wf.Goals {
		ok, err := wf.Goals[i].Matches(ev.Type, env)
		if err != nil {
			e.log.WarnContext(ctx, "goal filter failed", "run_id", run.ID, "workflow", wf.Name, slog.Any("error", err))
			continue
		}
		if !ok {
			continue
		}
		ended, err := e.store.EndRun(ctx, run.ID, store.RunConverted, "goal: "+ev.Type, now)
		if err != nil {
			return false, fmt.Errorf("ending run %d at its goal: %w", run.ID, err)
		}
		if ended {
			e.log.DebugContext(ctx, "run converted", "run_id", run.ID, "workflow", wf.Name, "member_id", run.MemberID, "event", ev.Type)
			e.withdraw(ctx, run.ID, "goal: "+ev.Type)
		}
		return true, nil
	}
	return false, nil
}

// applyExits ends the run, not converted, when the event is one of its
// exits.
func (e *Engine) applyExits(ctx context.Context, run *store.WorkflowRun, wf *workflows.Workflow, ev *store.Event, env *workflows.Env, now time.Time) (bool, error) {
	for i := range wf.Exits {
		ok, err := wf.Exits[i].Matches(ev.Type, env)
		if err != nil {
			e.log.WarnContext(ctx, "exit filter failed", "run_id", run.ID, "workflow", wf.Name, slog.Any("error", err))
			continue
		}
		if !ok {
			continue
		}
		ended, err := e.store.EndRun(ctx, run.ID, store.RunExited, "exit: "+ev.Type, now)
		if err != nil {
			return false, fmt.Errorf("ending run %d at its exit: %w", run.ID, err)
		}
		if ended {
			e.log.DebugContext(ctx, "run exited", "run_id", run.ID, "workflow", wf.Name, "member_id", run.MemberID, "event", ev.Type)
			e.withdraw(ctx, run.ID, "exit: "+ev.Type)
		}
		return true, nil
	}
	return false, nil
}

// withdraw takes back the run's sends still waiting for their guide, when
// the Sender can (a Withdrawer). The run has ended by then: a failure is
// logged, and those sends are left to their delivery checks.
func (e *Engine) withdraw(ctx context.Context, runID int64, why string) {
	w, ok := e.opts.Sender.(Withdrawer)
	if !ok {
		return
	}
	n, err := w.Withdraw(ctx, "wf:"+strconv.FormatInt(runID, 10)+":", why)
	if err != nil {
		e.log.WarnContext(ctx, "withdrawing the pending sends of an ended run", "run_id", runID, slog.Any("error", err))
		return
	}
	if n > 0 {
		e.log.InfoContext(ctx, "withdrawing the pending sends of an ended run", "run_id", runID, "sends", n, "why", why)
	}
}

// otherLive reports whether an event of a live session concerns a run of
// another: a run started by a live event (an invitation to a session)
// answers to the events of its own session only, so that one session's
// cancellation or orders do not end a member's run for another.
func (e *Engine) otherLive(ctx context.Context, run *store.WorkflowRun, wf *workflows.Workflow, f eventFields) (bool, error) {
	if f.live == nil || f.live.ID == "" || run.EventID == nil || !strings.HasPrefix(wf.Trigger.Event, "live.") {
		return false, nil
	}
	trig, err := e.store.Event(ctx, *run.EventID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	tf := e.eventFields(trig)
	return tf.live != nil && tf.live.ID != f.live.ID, nil
}

// applyWaitFor moves a run waiting for the event on to on_event.
func (e *Engine) applyWaitFor(ctx context.Context, run *store.WorkflowRun, wf *workflows.Workflow, ev *store.Event, env *workflows.Env, now time.Time) error {
	if run.WaitEvent != ev.Type {
		return nil
	}
	step, ok := wf.Step(run.Step)
	if !ok || step.Kind != workflows.KindWaitFor {
		return nil
	}
	ok, err := step.WaitFor.Filter.Bool(env)
	if err != nil {
		e.log.WarnContext(ctx, "wait_for filter failed", "run_id", run.ID, "step", step.ID, slog.Any("error", err))
		return nil
	}
	if !ok {
		return nil
	}
	out := outcome{stepState: store.StepDone, decision: "got " + ev.Type, next: step.WaitFor.OnEvent}
	rc := &runCtx{e: e, run: run, wf: wf}
	moved, err := e.commit(ctx, rc, out, now)
	if err != nil || !moved || run.State != store.RunActive {
		return err
	}
	// The next step runs in a wake of its own, at once.
	if err := e.enqueueWake(ctx, run, now); err != nil {
		e.log.WarnContext(ctx, "queueing wake failed; the sweeper will", "run_id", run.ID, slog.Any("error", err))
	}
	return nil
}

// CompleteGuideTask marks a guide task done (the guide bot or the API) and,
// for a task of a run, logs and handles the guide_task.completed event that
// a wait_for or a goal may be waiting for. completed is false when the
// task was not open.
func (e *Engine) CompleteGuideTask(ctx context.Context, id int64) (task *store.GuideTask, completed bool, err error) {
	now := e.now()
	task, completed, err = e.store.CompleteGuideTask(ctx, id, now)
	if err != nil {
		return nil, false, fmt.Errorf("completing guide task %d: %w", id, err)
	}
	if task.RunID == nil {
		return task, completed, nil
	}
	payload, _ := json.Marshal(map[string]string{
		"task_id": strconv.FormatInt(task.ID, 10), "run_id": strconv.FormatInt(*task.RunID, 10), "guide_id": task.GuideID,
	})
	ev := &store.Event{Type: events.TypeGuideTaskCompleted, BrandID: task.BrandID, MemberID: &task.MemberID,
		Source: "guide_task", SourceID: strconv.FormatInt(task.ID, 10), Payload: string(payload), OccurredAt: now}
	if _, err := e.store.AppendEvent(ctx, ev); err != nil {
		return task, completed, fmt.Errorf("logging guide task %d completed: %w", id, err)
	}
	if err := e.HandleEvent(ctx, ev); err != nil {
		return task, completed, err
	}
	return task, completed, nil
}
