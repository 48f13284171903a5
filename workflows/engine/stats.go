package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
)

// Stats is a workflow's funnel, over all its versions.
type Stats struct {
	Brand    string `json:"brand"`
	Workflow string `json:"workflow"`
	// Version is the current version.
	Version string `json:"version"`
	Enabled bool   `json:"enabled"`
	// Entered counts runs started; Active those still running; Done,
	// Converted (goal reached), Exited (version retired) and Failed those
	// ended so.
	Entered   int64 `json:"entered"`
	Active    int64 `json:"active"`
	Done      int64 `json:"done"`
	Converted int64 `json:"converted"`
	Exited    int64 `json:"exited"`
	Failed    int64 `json:"failed"`
	// Sent counts messages the channel accepted (Sends.Sent).
	Sent int64 `json:"sent"`
	// Sends counts what became of the send steps' messages, over all
	// the workflow's send steps.
	Sends SendCounts `json:"sends"`
	// Errors counts step visits that failed at least once (retried or
	// not).
	Errors int64        `json:"errors"`
	Steps  []StepCounts `json:"steps"`
	// Coupons counts the coupons the workflow's messages carried and how
	// many of them are redeemed now (a refunded order gives its coupon
	// back). Each redemption is credited to the run and guide of the
	// message (coupon.redeemed's run_id and guide_id).
	Coupons store.CouponCounts `json:"coupons"`
}

// SendCounts counts what became of a send step's visits. A message is
// queued until the channel answers; then sent (the channel accepted it:
// WeCom created the guide's message task, DingTalk answered success) or
// failed. Of the sent messages that complete later (a WeCom message task
// the guide sends), Delivered counts those the member received,
// NotConfirmed those the guide has not sent yet and Undelivered those
// that never reached the member. Skipped visits sent nothing.
type SendCounts struct {
	Queued       int64 `json:"queued"`
	Sent         int64 `json:"sent"`
	Delivered    int64 `json:"delivered"`
	NotConfirmed int64 `json:"not_confirmed"`
	Undelivered  int64 `json:"undelivered"`
	Failed       int64 `json:"failed"`
	// FailedBy counts failures by reason: invalid_message,
	// invalid_recipient, unauthorized, refused (the channel said no
	// without a known cause), outcome_unknown (a send lost mid-way that
	// the channel cannot tell about), not_configured, error (the step's
	// own: a template that does not render), lost.
	FailedBy map[string]int64 `json:"failed_by_reason"`
	Skipped  int64            `json:"skipped"`
	// SkippedBy counts skips by reason: cap, quota, consent,
	// unreachable, no_guide, cross_brand; for send_groups steps
	// no_groups and group_limit (every group had its message of the
	// day).
	SkippedBy map[string]int64 `json:"skipped_by_reason"`
}

func (c *SendCounts) add(o SendCounts) {
	c.Queued += o.Queued
	c.Sent += o.Sent
	c.Delivered += o.Delivered
	c.NotConfirmed += o.NotConfirmed
	c.Undelivered += o.Undelivered
	c.Failed += o.Failed
	c.Skipped += o.Skipped
	c.FailedBy = addCounts(c.FailedBy, o.FailedBy)
	c.SkippedBy = addCounts(c.SkippedBy, o.SkippedBy)
}

func addCounts(to, from map[string]int64) map[string]int64 {
	if to == nil {
		to = map[string]int64{}
	}
	for k, n := range from {
		to[k] += n
	}
	return to
}

// StepCounts is one step's part of the funnel: how many runs reached it
// and how its visits ended.
type StepCounts struct {
	ID      string         `json:"id"`
	Kind    workflows.Kind `json:"kind,omitempty"`
	Reached int64          `json:"reached"`
	Done    int64          `json:"done"`
	Skipped int64          `json:"skipped"`
	Failed  int64          `json:"failed"`
	// Waiting counts visits waiting now; Pending visits due or held by
	// send rules; Sending send visits whose message waits for the
	// channel.
	Waiting int64 `json:"waiting"`
	Pending int64 `json:"pending"`
	Sending int64 `json:"sending"`
	Errors  int64 `json:"errors"`
	// SkippedBy and FailedBy count skipped and failed visits by reason.
	SkippedBy map[string]int64 `json:"skipped_by_reason,omitempty"`
	FailedBy  map[string]int64 `json:"failed_by_reason,omitempty"`
	// Sends is what became of a send step's messages.
	Sends *SendCounts `json:"sends,omitempty"`
}

// Stats returns a workflow's funnel. Steps are in the current version's
// order, then steps only older versions have.
func (e *Engine) Stats(ctx context.Context, brand, name string) (*Stats, error) {
	return e.Funnel(ctx, brand, name, store.FunnelFilter{})
}

// Funnel is Stats of the runs f selects: started in a period, of the
// members bound to a store or a guide (the console's funnel).
func (e *Engine) Funnel(ctx context.Context, brand, name string, f store.FunnelFilter) (*Stats, error) {
	head, err := e.store.Workflow(ctx, brand, name)
	if err != nil {
		return nil, fmt.Errorf("stats of %s/%s: %w", brand, name, err)
	}
	rs, err := e.store.RunStatsOf(ctx, brand, name, f)
	if err != nil {
		return nil, fmt.Errorf("stats of %s/%s: %w", brand, name, err)
	}
	st := &Stats{Brand: brand, Workflow: name, Version: head.Version, Enabled: head.Enabled, Sent: rs.Sent,
		Active: rs.States[store.RunActive], Done: rs.States[store.RunDone], Converted: rs.States[store.RunConverted],
		Exited: rs.States[store.RunExited], Failed: rs.States[store.RunFailed]}
	for _, n := range rs.States {
		st.Entered += n
	}
	if st.Coupons, err = e.store.WorkflowCoupons(ctx, brand, name, f); err != nil {
		return nil, fmt.Errorf("stats of %s/%s: %w", brand, name, err)
	}
	counts := map[string]store.StepStats{}
	for _, s := range rs.Steps {
		counts[s.Step] = s
		st.Errors += s.Errors
	}
	rows, err := e.store.SendStatsOf(ctx, brand, name, f)
	if err != nil {
		return nil, fmt.Errorf("stats of %s/%s: %w", brand, name, err)
	}
	bySteps := sendCounts(rows)
	groupRows, err := e.store.GroupSendStatsOf(ctx, brand, name, f)
	if err != nil {
		return nil, fmt.Errorf("stats of %s/%s: %w", brand, name, err)
	}
	groupDeliveries := map[string]map[string]int64{}
	for _, r := range groupRows {
		groupDeliveries[r.Step] = addCounts(groupDeliveries[r.Step], map[string]int64{r.Delivery: r.N})
	}
	st.Sends = SendCounts{FailedBy: map[string]int64{}, SkippedBy: map[string]int64{}}
	add := func(id string, kind workflows.Kind) {
		c := counts[id]
		sc := StepCounts{ID: id, Kind: kind, Reached: c.Reached, Done: c.Done, Skipped: c.Skipped,
			Failed: c.Failed, Waiting: c.Waiting, Pending: c.Pending, Sending: c.Sending, Errors: c.Errors}
		ss := bySteps[id]
		if ss == nil {
			ss = &stepSends{sends: SendCounts{FailedBy: map[string]int64{}, SkippedBy: map[string]int64{}}}
		}
		sc.SkippedBy, sc.FailedBy = ss.skippedBy, ss.failedBy
		if kind == workflows.KindSend || (kind == "" && ss.outbox) {
			sc.Sends = &ss.sends
			st.Sends.add(ss.sends)
		}
		if kind == workflows.KindSendGroups {
			gs := groupSendCounts(c, ss, groupDeliveries[id])
			sc.Sends = &gs
			st.Sends.add(gs)
		}
		st.Steps = append(st.Steps, sc)
		delete(counts, id)
	}
	if wf, err := e.workflow(ctx, brand, name, head.Version); err == nil {
		for _, s := range wf.Steps {
			add(s.ID, s.Kind)
		}
	}
	rest := make([]string, 0, len(counts))
	for id := range counts {
		rest = append(rest, id)
	}
	slices.Sort(rest)
	for _, id := range rest {
		add(id, "")
	}
	st.Sent = st.Sends.Sent
	return st, nil
}

// stepSends is one step's part of store.SendStats.
type stepSends struct {
	sends SendCounts
	// outbox: some visit put a message in the outbox.
	outbox              bool
	skippedBy, failedBy map[string]int64
}

// sendCounts sums the rows of store.SendStats per step: what became of
// its messages, and its skipped and failed visits by reason.
func sendCounts(rows []store.SendStat) map[string]*stepSends {
	out := map[string]*stepSends{}
	for _, r := range rows {
		ss := out[r.Step]
		if ss == nil {
			ss = &stepSends{sends: SendCounts{FailedBy: map[string]int64{}, SkippedBy: map[string]int64{}}}
			out[r.Step] = ss
		}
		why := orWord(r.Reason, reasonError)
		switch r.State {
		case store.StepSkipped:
			ss.skippedBy = addCounts(ss.skippedBy, map[string]int64{why: r.N})
		case store.StepFailed:
			ss.failedBy = addCounts(ss.failedBy, map[string]int64{why: r.N})
		}
		sc := &ss.sends
		ss.outbox = ss.outbox || r.OutboxState != ""
		switch {
		case r.OutboxState == store.OutboxPending || r.OutboxState == store.OutboxSending:
			sc.Queued += r.N
		case r.OutboxState == store.OutboxSent:
			sc.Sent += r.N
			switch adapters.Delivery(r.Delivery) {
			case adapters.DeliveryDelivered:
				sc.Delivered += r.N
			case adapters.DeliveryPending:
				sc.NotConfirmed += r.N
			case adapters.DeliveryFailed:
				sc.Undelivered += r.N
			}
		case r.OutboxState == store.OutboxFailed:
			// The step failed with it, or ended otherwise (a goal)
			// while the message was on its way.
			sc.Failed += r.N
			sc.FailedBy[orWord(r.Failure, why)] += r.N
		case r.State == store.StepFailed:
			sc.Failed += r.N
			sc.FailedBy[why] += r.N
		case r.State == store.StepSkipped:
			sc.Skipped += r.N
			sc.SkippedBy[why] += r.N
		}
	}
	return out
}

// groupSendCounts is what became of a send_groups step's visits: done
// is sent (the channel took a message task for at least one group),
// pending queued (held by the send rules, or retried), and skipped and
// failed by their reasons. Of the sent, deliveries (by the groups'
// sends: groups.Keeper.CheckDeliveries) say Delivered when an owner sent
// the task to at least one group, NotConfirmed while none has and some
// may, Undelivered when none will.
func groupSendCounts(c store.StepStats, ss *stepSends, deliveries map[string]int64) SendCounts {
	gs := SendCounts{Sent: c.Done, Queued: c.Pending, FailedBy: map[string]int64{}, SkippedBy: map[string]int64{},
		Delivered: deliveries[store.GroupDeliveryDelivered], NotConfirmed: deliveries[store.GroupDeliveryPending],
		Undelivered: deliveries[store.GroupDeliveryFailed]}
	for why, n := range ss.skippedBy {
		gs.Skipped += n
		gs.SkippedBy[why] += n
	}
	for why, n := range ss.failedBy {
		gs.Failed += n
		gs.FailedBy[why] += n
	}
	return gs
}
