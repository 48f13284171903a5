package store

import (
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

// migrateFunnel adds the index of a workflow's runs by start time: the
// console's funnel over a period (migration 0022_console2_funnel).
func migrateFunnel(tx *gorm.DB) error {
	return tx.Exec(`CREATE INDEX IF NOT EXISTS idx_runs_workflow_started ON workflow_runs (brand_id, workflow, started_at)`).Error
}
