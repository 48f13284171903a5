package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
)

// segmentPage is how many members a schedule firing enters at a time.
const segmentPage = 2000

// enterers is how many goroutines queue the first wakes of new runs.
const enterers = 8

// segmentWorkers is how many pages of a segment are entered at once.
const segmentWorkers = 4

// initial is where a new run of wf starts at now: its first step, and when
// it wakes. A first step that waits a fixed time (or for an event) is
// entered waiting, so a million runs that begin with a wait of days are
// a million rows and no task; any other first step wakes at once.
func initial(wf *workflows.Workflow, now time.Time) (step string, wakeAt time.Time, waitEvent string) {
	s := wf.Steps[0]
	switch {
	case s.Kind == workflows.KindWait && s.Wait.Until == nil && s.Wait.For > 0:
		return s.ID, now.Add(s.Wait.For), ""
	case s.Kind == workflows.KindWaitFor:
		return s.ID, now.Add(s.WaitFor.Timeout), s.WaitFor.Event
	}
	return s.ID, now, ""
}

// enter starts runs of wf for members, subject to one active run per
// member and re-entry (the caller evaluated the trigger's filter).
// triggerKey names what started them (one run per member and trigger);
// via is the brand a cross-brand offer goes through, or "". It returns
// how many runs it started.
func (e *Engine) enter(ctx context.Context, wf *workflows.Workflow, memberIDs []int64, triggerKey string, eventID *int64, via string, now time.Time) (int, error) {
	brand := wf.Entry.Brand
	if wf.Entry.ReEntry.Policy == workflows.ReEntryNever {
		// One run per member ever, whatever starts it: the database
		// enforces it with the trigger key, the history below covers
		// runs started under an earlier policy.
		triggerKey = "once"
	}
	histories, err := e.store.RunHistories(ctx, brand, wf.Name, memberIDs)
	if err != nil {
		return 0, fmt.Errorf("reading run histories: %w", err)
	}
	step, wakeAt, waitEvent := initial(wf, now)
	var queuedAt *time.Time
	due := !wakeAt.After(now.Add(e.opts.Horizon))
	if due {
		queuedAt = &now
	}
	runs := make([]*store.WorkflowRun, 0, len(memberIDs))
	for _, id := range memberIDs {
		if h, ok := histories[id]; ok && (h.Active || !wf.Entry.ReEntry.Allows(h.LastEnded, now)) {
			continue
		}
		wa := wakeAt
		runs = append(runs, &store.WorkflowRun{MemberID: id, BrandID: brand, Workflow: wf.Name, Version: wf.Version, ViaBrandID: via,
			TriggerKey: triggerKey, EventID: eventID, Step: step, WakeAt: &wa, QueuedAt: queuedAt, WaitEvent: waitEvent, StartedAt: now})
	}
	if len(runs) == 0 {
		return 0, nil
	}
	started, err := e.store.StartRuns(ctx, runs)
	if err != nil {
		return len(started), fmt.Errorf("starting runs: %w", err)
	}
	if due && len(started) > 0 {
		e.enqueueAll(ctx, started, now)
	}
	e.log.DebugContext(ctx, "runs started", "workflow", wf.Name, "version", wf.Version, "trigger", triggerKey, "started", len(started))
	return len(started), nil
}

// enqueueAll queues the wakes of new runs, a few at a time; a run whose
// wake cannot be queued is left to the sweeper.
func (e *Engine) enqueueAll(ctx context.Context, runs []*store.WorkflowRun, now time.Time) {
	work := make(chan *store.WorkflowRun)
	var wg sync.WaitGroup
	for range min(enterers, len(runs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				if err := e.enqueueWake(ctx, r, now); err != nil {
					e.log.WarnContext(ctx, "queueing wake failed; the sweeper will", "run_id", r.ID, slog.Any("error", err))
					if uerr := e.store.UnqueueRun(ctx, r.ID, r.WakeSeq); uerr != nil {
						e.log.WarnContext(ctx, "unqueueing run", "run_id", r.ID, slog.Any("error", uerr))
					}
				}
			}
		}()
	}
	for _, r := range runs {
		work <- r
	}
	close(work)
	wg.Wait()
}

// RunSchedules starts the runs of enabled workflows whose schedule fired
// by now (within Options.ScheduleCatchUp): for each due firing, the
// members of the segment that pass the filter and the entry rules. It is
// safe to call from every replica: a firing's marker row lets one of them
// start its runs (and another take over if that one dies). It returns how
// many runs it started.
func (e *Engine) RunSchedules(ctx context.Context, now time.Time) (int, error) {
	now = now.UTC()
	heads, err := e.store.Workflows(ctx, store.WorkflowFilter{Trigger: "schedule", EnabledOnly: true})
	if err != nil {
		return 0, fmt.Errorf("listing scheduled workflows: %w", err)
	}
	total := 0
	var errs []error
	for _, h := range heads {
		wf, err := e.workflow(ctx, h.BrandID, h.Name, h.Version)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fire := lastFire(wf.Trigger.Schedule, now, e.opts.ScheduleCatchUp)
		if fire.IsZero() {
			continue
		}
		claimed, err := e.store.ClaimScheduleFire(ctx, h.BrandID, h.Name, fire, e.opts.Instance, now, now.Add(-10*time.Minute))
		if err != nil {
			errs = append(errs, fmt.Errorf("claiming schedule of %s: %w", h.Name, err))
			continue
		}
		if !claimed {
			continue
		}
		n, err := e.enterSegment(ctx, wf, fire, now)
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("running schedule of %s: %w", h.Name, err))
			continue
		}
		if err := e.store.FinishScheduleFire(ctx, h.BrandID, h.Name, fire, n, e.now()); err != nil {
			errs = append(errs, err)
		}
		e.log.InfoContext(ctx, "schedule fired", "brand", h.BrandID, "workflow", h.Name, "fire_at", fire, "started", n)
	}
	return total, errors.Join(errs...)
}

// lastFire is the latest firing of s at or before now, if it is no older
// than catchUp; zero otherwise.
func lastFire(s *workflows.Schedule, now time.Time, catchUp time.Duration) time.Time {
	var last time.Time
	for t := s.Next(now.Add(-catchUp - time.Nanosecond)); !t.IsZero() && !t.After(now); t = s.Next(t) {
		last = t
	}
	return last
}

// enterSegment enters the members of a schedule trigger's segment; for a
// cross-brand offer, the eligible members of each brand it comes from,
// in the order listed (a member bound in two of them is entered once,
// through the first).
func (e *Engine) enterSegment(ctx context.Context, wf *workflows.Workflow, fire, now time.Time) (int, error) {
	if len(wf.Entry.CrossBrandFrom) == 0 {
		return e.enterSegmentOf(ctx, wf, wf.Entry.Brand, fire, now)
	}
	total := 0
	for _, from := range wf.Entry.CrossBrandFrom {
		n, err := e.enterSegmentOf(ctx, wf, from, fire, now)
		total += n
		if err != nil {
			return total, fmt.Errorf("members of %s: %w", from, err)
		}
	}
	return total, nil
}

// enterSegmentOf enters the members of brand in the schedule trigger's
// segment: wf's own brand, or one a cross-brand offer comes from.
func (e *Engine) enterSegmentOf(ctx context.Context, wf *workflows.Workflow, brand string, fire, now time.Time) (int, error) {
	q := store.SegmentQuery{Brand: brand, Limit: segmentPage}
	via := ""
	if brand != wf.Entry.Brand {
		via = brand
	}
	if seg := wf.Trigger.Segment; seg != nil {
		if b := seg.LastPurchase; b != nil {
			from, to := fire.Add(-b.Max), fire.Add(-b.Min)
			q.LastPurchaseFrom, q.LastPurchaseTo = &from, &to
		}
		if b := seg.Joined; b != nil {
			from, to := fire.Add(-b.Max), fire.Add(-b.Min)
			q.JoinedFrom, q.JoinedTo = &from, &to
		}
		q.Levels, q.Tags, q.WithoutTags = seg.Levels, seg.Tags, seg.WithoutTags
	}
	key := "s" + strconv.FormatInt(fire.Unix(), 10)
	// Pages are read in order and entered by a few workers at once: the
	// database inserts one page while the next is filtered and sent.
	var (
		mu    sync.Mutex
		total int
		errs  []error
		wg    sync.WaitGroup
	)
	pages := make(chan []int64)
	for range segmentWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ids := range pages {
				var err error
				if via != "" {
					ids, err = e.store.CrossBrandEligible(ctx, ids, via, wf.Entry.Brand)
				}
				if err == nil && wf.Trigger.Filter != nil {
					ids, err = e.filterMembers(ctx, wf, brand, ids, fire, now)
				}
				n := 0
				if err == nil && len(ids) > 0 {
					n, err = e.enter(ctx, wf, ids, key, nil, via, now)
				}
				mu.Lock()
				total += n
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	var err error
	for {
		mu.Lock()
		failed := len(errs) > 0
		mu.Unlock()
		if failed {
			break
		}
		var ids []int64
		if ids, err = e.store.SegmentMembers(ctx, q); err != nil {
			err = fmt.Errorf("reading segment: %w", err)
			break
		}
		if len(ids) == 0 {
			break
		}
		q.AfterID = ids[len(ids)-1]
		pages <- ids
	}
	close(pages)
	wg.Wait()
	return total, errors.Join(append(errs, err)...)
}

// filterMembers keeps the members for whom the schedule trigger's filter
// holds, reading the members as brand's (the brand the segment is of).
func (e *Engine) filterMembers(ctx context.Context, wf *workflows.Workflow, brand string, ids []int64, fire, now time.Time) ([]int64, error) {
	profiles, err := e.store.MemberProfiles(ctx, brand, ids)
	if err != nil {
		return nil, fmt.Errorf("loading members: %w", err)
	}
	kept := ids[:0]
	for _, id := range ids {
		p, ok := profiles[id]
		if !ok {
			continue
		}
		env := &workflows.Env{Event: workflows.Event{Type: "schedule", At: fire, Attrs: map[string]string{}},
			Member: e.memberModel(p), Order: lastOrder(p), Now: now}
		ok, err := wf.Trigger.Matches("schedule", env)
		if err != nil {
			e.log.WarnContext(ctx, "trigger filter failed", "workflow", wf.Name, "member_id", id, slog.Any("error", err))
			continue
		}
		if ok {
			kept = append(kept, id)
		}
	}
	return kept, nil
}
