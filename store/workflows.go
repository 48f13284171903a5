package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// WorkflowVersion is one stored version of a workflow: the YAML it was
// loaded from, by the content hash runs are pinned to.
type WorkflowVersion struct {
	ID      int64  `gorm:"primaryKey;autoIncrement" json:"-"`
	BrandID string `gorm:"size:64;not null;uniqueIndex:idx_workflow_version" json:"brand"`
	Name    string `gorm:"size:100;not null;uniqueIndex:idx_workflow_version" json:"name"`
	Version string `gorm:"size:32;not null;uniqueIndex:idx_workflow_version" json:"version"`
	Source  string `gorm:"type:text;not null" json:"-"`
	// RetiredAt is set once the version is retired: its runs ended and
	// it starts none.
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// Workflow points a brand's workflow name at its current version: the one
// new runs start on.
type Workflow struct {
	BrandID string `gorm:"primaryKey;size:64" json:"brand"`
	Name    string `gorm:"primaryKey;size:100" json:"name"`
	Version string `gorm:"size:32;not null" json:"version"`
	// Trigger is the current version's trigger event, or "schedule": it
	// lets an event find the workflows it may start without loading them
	// all.
	Trigger   string    `gorm:"column:trigger_event;size:64;not null;index" json:"trigger"`
	Enabled   bool      `gorm:"not null" json:"enabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// workflowModels are the tables of migration 0004_workflows.
var workflowModels = []any{
	&WorkflowVersion{}, &Workflow{}, &WorkflowRun{}, &RunStep{}, &GuideTask{}, &MemberSend{},
	&PointsLine{}, &MemberTag{}, &MemberConsent{}, &Lease{}, &ScheduleFire{},
}

// workflowIndexes are the indexes gorm's tags cannot say: partial ones,
// and composite ones whose column order matters.
var workflowIndexes = []string{
	// One active run per member and workflow; also finds a member's
	// active runs when an event arrives.
	`CREATE UNIQUE INDEX idx_runs_active ON workflow_runs (member_id, brand_id, workflow) WHERE state = 'active'`,
	// One run per trigger (event or schedule firing) and member; also
	// the member's history for re-entry.
	`CREATE UNIQUE INDEX idx_runs_trigger ON workflow_runs (member_id, brand_id, workflow, trigger_key)`,
	// Wakes by time, for the sweeper: only runs that wait have one.
	`CREATE INDEX idx_runs_wake ON workflow_runs (wake_at) WHERE wake_at IS NOT NULL`,
	// Stats and retiring a version.
	`CREATE INDEX idx_runs_workflow ON workflow_runs (brand_id, workflow, state, version)`,
}

func migrateWorkflows(tx *gorm.DB) error {
	if err := tx.AutoMigrate(workflowModels...); err != nil {
		return err
	}
	for _, stmt := range workflowIndexes {
		if err := tx.Exec(stmt).Error; err != nil {
			return err
		}
	}
	return nil
}

// PutWorkflowVersion stores a workflow version (once per content hash) and
// makes it the workflow's current version, the one new runs start on.
// trigger is the version's trigger event or "schedule". A workflow stored
// for the first time is disabled; an existing one keeps its Enabled flag.
// Storing a retired version again brings it back. created reports whether
// the version is new.
func (s *Store) PutWorkflowVersion(ctx context.Context, v *WorkflowVersion, trigger string) (head *Workflow, created bool, err error) {
	if err := errors.Join(ValidateID("brand", v.BrandID), requireText("name", v.Name, 100),
		requireText("version", v.Version, 32), requireText("trigger", trigger, 64)); err != nil {
		return nil, false, err
	}
	v.CreatedAt = utc(v.CreatedAt)
	if v.CreatedAt.IsZero() {
		v.CreatedAt = utc(time.Now())
	}
	head = &Workflow{}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(v)
		if res.Error != nil {
			return translate(res.Error)
		}
		created = res.RowsAffected == 1
		if !created {
			var stored WorkflowVersion
			if err := tx.Where("brand_id = ? AND name = ? AND version = ?", v.BrandID, v.Name, v.Version).Take(&stored).Error; err != nil {
				return translate(err)
			}
			if stored.RetiredAt != nil {
				if err := tx.Model(&stored).Update("retired_at", nil).Error; err != nil {
					return translate(err)
				}
				stored.RetiredAt = nil
			}
			*v = stored
		}
		err := tx.Where("brand_id = ? AND name = ?", v.BrandID, v.Name).Take(head).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			*head = Workflow{BrandID: v.BrandID, Name: v.Name, Version: v.Version, Trigger: trigger}
			return translate(tx.Create(head).Error)
		case err != nil:
			return translate(err)
		}
		head.Version, head.Trigger = v.Version, trigger
		return translate(tx.Model(head).Updates(map[string]any{"version": v.Version, "trigger_event": trigger, "updated_at": utc(time.Now())}).Error)
	})
	if err != nil {
		return nil, false, err
	}
	return head, created, nil
}

// Workflow returns a brand's workflow by name.
func (s *Store) Workflow(ctx context.Context, brand, name string) (*Workflow, error) {
	var w Workflow
	if err := s.db.WithContext(ctx).Where("brand_id = ? AND name = ?", brand, name).Take(&w).Error; err != nil {
		return nil, translate(err)
	}
	return &w, nil
}

// WorkflowFilter selects workflows. Empty fields select all.
type WorkflowFilter struct {
	Brand string
	// Trigger is an event type or "schedule".
	Trigger string
	// EnabledOnly leaves disabled workflows out.
	EnabledOnly bool
}

// Workflows lists workflows by brand and name.
func (s *Store) Workflows(ctx context.Context, f WorkflowFilter) ([]Workflow, error) {
	q := s.db.WithContext(ctx).Order("brand_id, name")
	if f.Brand != "" {
		q = q.Where("brand_id = ?", f.Brand)
	}
	if f.Trigger != "" {
		q = q.Where("trigger_event = ?", f.Trigger)
	}
	if f.EnabledOnly {
		q = q.Where("enabled = ?", true)
	}
	var out []Workflow
	return out, translate(q.Find(&out).Error)
}

// SetWorkflowEnabled enables or disables a workflow: a disabled workflow
// starts no runs; its running ones go on.
func (s *Store) SetWorkflowEnabled(ctx context.Context, brand, name string, enabled bool) error {
	res := s.db.WithContext(ctx).Model(&Workflow{}).Where("brand_id = ? AND name = ?", brand, name).
		Updates(map[string]any{"enabled": enabled, "updated_at": utc(time.Now())})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// WorkflowVersion returns one stored version.
func (s *Store) WorkflowVersion(ctx context.Context, brand, name, version string) (*WorkflowVersion, error) {
	var v WorkflowVersion
	err := s.db.WithContext(ctx).Where("brand_id = ? AND name = ? AND version = ?", brand, name, version).Take(&v).Error
	if err != nil {
		return nil, translate(err)
	}
	return &v, nil
}

// WorkflowVersions lists a workflow's versions, oldest first.
func (s *Store) WorkflowVersions(ctx context.Context, brand, name string) ([]WorkflowVersion, error) {
	var out []WorkflowVersion
	err := s.db.WithContext(ctx).Where("brand_id = ? AND name = ?", brand, name).Order("id").Find(&out).Error
	return out, translate(err)
}

// RetireWorkflowVersion retires a version: it ends the version's active
// runs as exited (cancelling their wakes, pending steps and open guide
// tasks) and returns how many it ended. Retiring the current version
// also disables the workflow, which then starts nothing until a new
// version is put.
func (s *Store) RetireWorkflowVersion(ctx context.Context, brand, name, version, reason string, at time.Time) (ended int64, err error) {
	at = utc(at)
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&WorkflowVersion{}).Where("brand_id = ? AND name = ? AND version = ?", brand, name, version).
			Update("retired_at", at)
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		runs := tx.Model(&WorkflowRun{}).Select("id").
			Where("brand_id = ? AND workflow = ? AND state = ? AND version = ?", brand, name, RunActive, version)
		if err := tx.Model(&RunStep{}).Where("run_id IN (?) AND state IN ?", runs, openStepStates).
			Updates(map[string]any{"state": StepCancelled, "finished_at": at}).Error; err != nil {
			return translate(err)
		}
		if err := tx.Model(&GuideTask{}).Where("run_id IN (?) AND state = ?", runs, GuideTaskOpen).
			Update("state", GuideTaskCancelled).Error; err != nil {
			return translate(err)
		}
		res = tx.Model(&WorkflowRun{}).Where("brand_id = ? AND workflow = ? AND state = ? AND version = ?", brand, name, RunActive, version).
			Updates(endRunColumns(RunExited, reason, at))
		if res.Error != nil {
			return translate(res.Error)
		}
		ended = res.RowsAffected
		return translate(tx.Model(&Workflow{}).Where("brand_id = ? AND name = ? AND version = ?", brand, name, version).
			Updates(map[string]any{"enabled": false, "updated_at": at}).Error)
	})
	return ended, err
}
