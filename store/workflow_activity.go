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
	// Entered counts runs started since; Converted runs that reached
	// the goal since.
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
	// Two counts, each on its index (idx_runs_started, the partial
	// idx_runs_converted).
	type count struct {
		BrandID  string
		Workflow string
		N        int64
	}
	var entered, converted []count
	q := db.Model(&WorkflowRun{}).Select("brand_id, workflow, COUNT(*) AS n").Where("started_at >= ?", since).Group("brand_id, workflow")
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	if err := q.Scan(&entered).Error; err != nil {
		return nil, translate(err)
	}
	q = db.Model(&WorkflowRun{}).Select("brand_id, workflow, COUNT(*) AS n").
		Where("state = ? AND ended_at >= ?", RunConverted, since).Group("brand_id, workflow")
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	if err := q.Scan(&converted).Error; err != nil {
		return nil, translate(err)
	}
	for _, c := range entered {
		get(c.BrandID, c.Workflow).Entered = c.N
	}
	for _, c := range converted {
		get(c.BrandID, c.Workflow).Converted = c.N
	}
	// The workflows with a failed visit in the window, then the last
	// failure of each (on the partial index idx_run_steps_errors).
	failing := db.Table("run_steps AS s").Joins("JOIN workflow_runs AS r ON r.id = s.run_id").
		Where("s.error <> '' AND s.started_at >= ?", since)
	if brand != "" {
		failing = failing.Where("r.brand_id = ?", brand)
	}
	var pairs []struct{ BrandID, Workflow string }
	if err := failing.Distinct("r.brand_id", "r.workflow").Scan(&pairs).Error; err != nil {
		return nil, translate(err)
	}
	for _, p := range pairs {
		var last struct {
			StepID    string
			Error     string
			StartedAt time.Time
		}
		err := db.Table("run_steps AS s").Joins("JOIN workflow_runs AS r ON r.id = s.run_id").
			Select("s.step_id, s.error, s.started_at").
			Where("r.brand_id = ? AND r.workflow = ? AND s.error <> '' AND s.started_at >= ?", p.BrandID, p.Workflow, since).
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
