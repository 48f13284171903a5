package engine

import (
	"context"
	"fmt"
	"slices"

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
	// Sent counts messages sent.
	Sent int64 `json:"sent"`
	// Errors counts step visits that failed at least once (retried or
	// not).
	Errors int64        `json:"errors"`
	Steps  []StepCounts `json:"steps"`
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
	// send rules.
	Waiting int64 `json:"waiting"`
	Pending int64 `json:"pending"`
	Errors  int64 `json:"errors"`
}

// Stats returns a workflow's funnel. Steps are in the current version's
// order, then steps only older versions have.
func (e *Engine) Stats(ctx context.Context, brand, name string) (*Stats, error) {
	head, err := e.store.Workflow(ctx, brand, name)
	if err != nil {
		return nil, fmt.Errorf("stats of %s/%s: %w", brand, name, err)
	}
	rs, err := e.store.RunStats(ctx, brand, name)
	if err != nil {
		return nil, fmt.Errorf("stats of %s/%s: %w", brand, name, err)
	}
	st := &Stats{Brand: brand, Workflow: name, Version: head.Version, Enabled: head.Enabled, Sent: rs.Sent,
		Active: rs.States[store.RunActive], Done: rs.States[store.RunDone], Converted: rs.States[store.RunConverted],
		Exited: rs.States[store.RunExited], Failed: rs.States[store.RunFailed]}
	for _, n := range rs.States {
		st.Entered += n
	}
	counts := map[string]store.StepStats{}
	for _, s := range rs.Steps {
		counts[s.Step] = s
		st.Errors += s.Errors
	}
	add := func(id string, kind workflows.Kind) {
		c := counts[id]
		st.Steps = append(st.Steps, StepCounts{ID: id, Kind: kind, Reached: c.Reached, Done: c.Done, Skipped: c.Skipped,
			Failed: c.Failed, Waiting: c.Waiting, Pending: c.Pending, Errors: c.Errors})
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
	return st, nil
}
