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
	var rows []struct {
		BrandID   string
		Workflow  string
		Entered   int64
		Converted int64
	}
	q := db.Model(&WorkflowRun{}).Select(`brand_id, workflow,
		SUM(CASE WHEN started_at >= ? THEN 1 ELSE 0 END) AS entered,
		SUM(CASE WHEN state = ? AND ended_at >= ? THEN 1 ELSE 0 END) AS converted`, since, RunConverted, since).
		Where("(started_at >= ? OR ended_at >= ?)", since, since).Group("brand_id, workflow")
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	if err := q.Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
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
	for _, r := range rows {
		a := get(r.BrandID, r.Workflow)
		a.Entered, a.Converted = r.Entered, r.Converted
	}
	var errs []struct {
		BrandID   string
		Workflow  string
		StepID    string
		Error     string
		StartedAt time.Time
	}
	q = db.Table("run_steps AS s").Joins("JOIN workflow_runs AS r ON r.id = s.run_id").
		Select("r.brand_id, r.workflow, s.step_id, s.error, s.started_at").
		Where("s.error <> '' AND s.started_at >= ?", since).Order("s.started_at DESC").Limit(1000)
	if brand != "" {
		q = q.Where("r.brand_id = ?", brand)
	}
	if err := q.Scan(&errs).Error; err != nil {
		return nil, translate(err)
	}
	for _, e := range errs {
		a := get(e.BrandID, e.Workflow)
		if a.LastErrorAt != nil {
			continue // newest first
		}
		at := e.StartedAt
		a.LastError, a.LastErrorStep, a.LastErrorAt = e.Error, e.StepID, &at
	}
	return out, nil
}
