package store

import (
	"context"
	"time"
)

// WorkflowActivity is what a workflow's runs did since a time: the
// console's workflow list.
type WorkflowActivity struct {
	Brand    string
	Workflow string
	// Entered counts runs started since (from the start of that day in
	// China Standard Time); Converted those of them that reached the
	// goal.
	Entered   int64
	Converted int64
	// LastError is the last failure of a step visit started since, and
	// LastErrorStep its step; empty when there was none.
	LastError     string
	LastErrorStep string
	LastErrorAt   *time.Time
}

// WorkflowActivityKey keys WorkflowActivities' answer.
type WorkflowActivityKey struct{ Brand, Workflow string }

// WorkflowActivities returns the activity since a time of the brand's
// workflows (every brand's when brand is empty). Workflows without runs
// since are left out.
func (s *Store) WorkflowActivities(ctx context.Context, brand string, since time.Time) (map[WorkflowActivityKey]*WorkflowActivity, error) {
	since = utc(since)
	db := s.db.WithContext(ctx)
	out := map[WorkflowActivityKey]*WorkflowActivity{}
	get := func(b, w string) *WorkflowActivity {
		k := WorkflowActivityKey{b, w}
		a := out[k]
		if a == nil {
			a = &WorkflowActivity{Brand: b, Workflow: w}
			out[k] = a
		}
		return a
	}
	// The runs started on since's day (in China) or later and how many
	// of them converted, from the funnel counters (totals and deltas): a
	// few rows per workflow and day, where counting the runs read every
	// run of the week (1.2 s at 1M runs).
	counts, err := s.workflowRunCounts(ctx, brand, funnelDay(since))
	if err != nil {
		return nil, err
	}
	for _, c := range counts {
		a := get(c.BrandID, c.Workflow)
		a.Entered, a.Converted = c.Entered, c.Converted
	}
	// The workflows with a failed visit in the window, then the last
	// failure of each (on the partial index idx_run_steps_errors).
	// (Each visit carries its run's brand and workflow: no join.)
	failing := db.Table("run_steps AS s").Where("s.error <> '' AND s.started_at >= ? AND s.brand_id <> ''", since)
	if brand != "" {
		failing = failing.Where("s.brand_id = ?", brand)
	}
	var pairs []struct{ BrandID, Workflow string }
	if err := failing.Distinct("s.brand_id", "s.workflow").Scan(&pairs).Error; err != nil {
		return nil, translate(err)
	}
	for _, p := range pairs {
		var last struct {
			StepID    string
			Error     string
			StartedAt time.Time
		}
		err := db.Table("run_steps AS s").
			Select("s.step_id, s.error, s.started_at").
			Where("s.brand_id = ? AND s.workflow = ? AND s.error <> '' AND s.started_at >= ?", p.BrandID, p.Workflow, since).
			Order("s.started_at DESC").Limit(1).Scan(&last).Error
		if err != nil {
			return nil, translate(err)
		}
		a := get(p.BrandID, p.Workflow)
		at := last.StartedAt
		a.LastError, a.LastErrorStep, a.LastErrorAt = last.Error, last.StepID, &at
	}
	return out, nil
}

// consoleIndexes serve WorkflowActivities (migration 0018).
var consoleIndexes = []string{
	`CREATE INDEX idx_runs_started ON workflow_runs (started_at)`,
	`CREATE INDEX idx_runs_converted ON workflow_runs (ended_at) WHERE state = 'converted'`,
	`CREATE INDEX idx_run_steps_errors ON run_steps (started_at) WHERE error <> ''`,
}
