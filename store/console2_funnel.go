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
		// On idx_binding_current (member_id, brand_id) WHERE ended_at IS NULL.
		w += " AND EXISTS (SELECT 1 FROM bindings b WHERE b.member_id = " + alias + ".member_id AND b.brand_id = " + alias +
			".brand_id AND b.ended_at IS NULL AND b." + col + " = ?)"
		args = append(args, v)
	}
	if f.StoreID != "" {
		bound("store_id", f.StoreID)
	}
	if f.GuideID != "" {
		bound("guide_id", f.GuideID)
	}
	return w, args
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

// BrandGuideTaskCounts counts the open tasks of a brand's guides as
// GuideTaskCounts does a store's (Open: due at or after now; Overdue: due
// before), by guide; guides without open tasks are left out, and Name and
// Done are not filled in.
func (s *Store) BrandGuideTaskCounts(ctx context.Context, brand string, now time.Time) (map[string]GuideTaskCount, error) {
	var rows []GuideTaskCount
	err := s.db.WithContext(ctx).Model(&GuideTask{}).
		Select("guide_id, SUM(CASE WHEN due_at >= ? THEN 1 ELSE 0 END) AS open, SUM(CASE WHEN due_at < ? THEN 1 ELSE 0 END) AS overdue", utc(now), utc(now)).
		Where("brand_id = ? AND state = ?", brand, GuideTaskOpen).Group("guide_id").Scan(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	out := make(map[string]GuideTaskCount, len(rows))
	for _, r := range rows {
		out[r.GuideID] = r
	}
	return out, nil
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
