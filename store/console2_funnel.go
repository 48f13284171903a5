package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// FunnelFilter selects a workflow's runs for its funnel (RunStatsOf,
// SendStatsOf): those started in [From, To) (a zero time leaves that end
// open), of members bound now to a guide of StoreID, or to GuideID, for
// the run's brand. The zero filter selects every run.
type FunnelFilter struct {
	From, To time.Time
	StoreID  string
	GuideID  string
}

// where is the condition on the runs (as alias) of a brand's workflow
// that f selects, with its arguments.
func (f FunnelFilter) where(alias, brand, workflow string) (string, []any) {
	w := alias + ".brand_id = ? AND " + alias + ".workflow = ?"
	args := []any{brand, workflow}
	if !f.From.IsZero() {
		w += " AND " + alias + ".started_at >= ?"
		args = append(args, utc(f.From))
	}
	if !f.To.IsZero() {
		w += " AND " + alias + ".started_at < ?"
		args = append(args, utc(f.To))
	}
	bound := func(col, v string) {
		// The store's (or guide's) current bindings first, on their
		// store_id (guide_id) index, then those members' runs on
		// idx_runs_trigger (member_id, brand_id, workflow, ...): a few
		// probes, where checking each of the workflow's runs for a
		// binding would probe once per run.
		w += " AND " + alias + ".member_id IN (SELECT b.member_id FROM bindings b WHERE b." + col + " = ? AND b.brand_id = ? AND b.ended_at IS NULL)"
		args = append(args, v, brand)
	}
	if f.StoreID != "" {
		bound("store_id", f.StoreID)
	}
	if f.GuideID != "" {
		bound("guide_id", f.GuideID)
	}
	return w, args
}

// stepWhere is the condition on the step visits (run_steps AS s) of the
// runs of a brand's workflow that f selects, with its arguments. The
// brand, workflow and period are the visit's copies of its run's
// (RunStep.BrandID, Workflow, RunStartedAt), read on idx_run_steps_funnel;
// a store or guide selects the runs as where does and their visits by
// run.
func (f FunnelFilter) stepWhere(brand, workflow string) (string, []any) {
	w := "s.brand_id = ? AND s.workflow = ?"
	args := []any{brand, workflow}
	if !f.From.IsZero() {
		w += " AND s.run_started_at >= ?"
		args = append(args, utc(f.From))
	}
	if !f.To.IsZero() {
		w += " AND s.run_started_at < ?"
		args = append(args, utc(f.To))
	}
	if f.StoreID != "" || f.GuideID != "" {
		rw, rargs := f.where("r", brand, workflow)
		w += " AND s.run_id IN (SELECT r.id FROM workflow_runs r WHERE " + rw + ")"
		args = append(args, rargs...)
	}
	return w, args
}

// migrateFunnelSteps copies each step visit's run's brand, workflow and
// start time onto the visit and indexes them, so that the funnel counts a
// workflow's visits without joining each to its run (at 1M runs the join
// took 0.7–1.3 s, 4.2 s at 5.5M): migration 0040_funnel_steps. The
// backfill rewrites every run_steps row once. On PostgreSQL the index
// carries what the funnel's two step queries read (an index-only scan
// once the table is vacuumed; SQLite has no INCLUDE), and the runs' index
// by start time (0022's idx_runs_workflow_started, replaced) carries their
// state and sends: counting a workflow's runs by state read each run's
// row, 0.2–0.6 s for 24,000 runs spread over the table.
func migrateFunnelSteps(tx *gorm.DB) error {
	for _, field := range []string{"BrandID", "Workflow", "RunStartedAt"} {
		if tx.Migrator().HasColumn(&RunStep{}, field) {
			continue
		}
		if err := tx.Migrator().AddColumn(&RunStep{}, field); err != nil {
			return err
		}
	}
	backfill := `UPDATE run_steps SET brand_id = r.brand_id, workflow = r.workflow, run_started_at = r.started_at
		FROM workflow_runs AS r WHERE r.id = run_steps.run_id AND run_steps.run_started_at IS NULL`
	indexes := []string{
		`CREATE INDEX IF NOT EXISTS idx_run_steps_funnel ON run_steps (brand_id, workflow, run_started_at)
			INCLUDE (step_id, visit, state, failures, run_id, reason, outbox_key)`,
		// The runs by state (and their sends) from the index alone:
		// idx_runs_workflow_started (0022) with what the count reads.
		`CREATE INDEX IF NOT EXISTS idx_runs_funnel ON workflow_runs (brand_id, workflow, started_at) INCLUDE (state, sent)`,
		`DROP INDEX IF EXISTS idx_runs_workflow_started`,
	}
	if tx.Dialector.Name() != "postgres" {
		backfill = `UPDATE run_steps SET
			brand_id = (SELECT r.brand_id FROM workflow_runs AS r WHERE r.id = run_steps.run_id),
			workflow = (SELECT r.workflow FROM workflow_runs AS r WHERE r.id = run_steps.run_id),
			run_started_at = (SELECT r.started_at FROM workflow_runs AS r WHERE r.id = run_steps.run_id)
			WHERE run_started_at IS NULL AND EXISTS (SELECT 1 FROM workflow_runs AS r WHERE r.id = run_steps.run_id)`
		indexes = []string{
			`CREATE INDEX IF NOT EXISTS idx_run_steps_funnel ON run_steps (brand_id, workflow, run_started_at, step_id, visit, state)`,
			`CREATE INDEX IF NOT EXISTS idx_runs_funnel ON workflow_runs (brand_id, workflow, started_at, state, sent)`,
			`DROP INDEX IF EXISTS idx_runs_workflow_started`,
		}
	}
	if err := tx.Exec(backfill).Error; err != nil {
		return err
	}
	for _, stmt := range indexes {
		if err := tx.Exec(stmt).Error; err != nil {
			return err
		}
	}
	return nil
}

// migrateFunnel adds the indexes of the console's funnel over a period
// (a workflow's runs by start time) and of its guides page (a brand's open
// tasks by due time): migration 0022_console2_funnel.
func migrateFunnel(tx *gorm.DB) error {
	for _, stmt := range []string{
		`CREATE INDEX IF NOT EXISTS idx_runs_workflow_started ON workflow_runs (brand_id, workflow, started_at)`,
		`CREATE INDEX IF NOT EXISTS idx_guide_tasks_open_brand ON guide_tasks (brand_id, due_at) WHERE state = 'open'`,
	} {
		if err := tx.Exec(stmt).Error; err != nil {
			return err
		}
	}
	return nil
}

// OverdueGuideTasks lists a brand's open tasks due before now, the
// longest overdue first, of the guides of storeID when it is set; at
// most limit (1000).
func (s *Store) OverdueGuideTasks(ctx context.Context, brand, storeID string, now time.Time, limit int) ([]GuideTask, error) {
	q := s.db.WithContext(ctx).Where("brand_id = ? AND state = ? AND due_at < ?", brand, GuideTaskOpen, utc(now)).
		Order("due_at, id").Limit(Page{Limit: limit}.limit())
	if storeID != "" {
		q = q.Where("guide_id IN (?)", s.db.Model(&Guide{}).Select("id").Where("store_id = ?", storeID))
	}
	var out []GuideTask
	return out, translate(q.Find(&out).Error)
}
