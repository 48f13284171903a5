package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm/clause"
)

// Guide task states.
const (
	GuideTaskOpen      = "open"
	GuideTaskDone      = "done"
	GuideTaskCancelled = "cancelled"
)

// GuideTask is a task for a guide: call a member back, confirm a message.
type GuideTask struct {
	ID int64 `gorm:"primaryKey;autoIncrement" json:"id"`
	// Key makes creating a task idempotent (a run's step and visit);
	// nil for tasks made by hand.
	Key         *string    `gorm:"column:task_key;size:200;uniqueIndex" json:"-"`
	RunID       *int64     `gorm:"index" json:"run_id,omitempty"`
	MemberID    int64      `gorm:"not null;index" json:"member_id"`
	GuideID     string     `gorm:"size:64;not null;index:idx_guide_tasks_guide" json:"guide_id"`
	BrandID     string     `gorm:"size:64;not null" json:"brand"`
	Title       string     `gorm:"size:500;not null" json:"title"`
	Note        string     `gorm:"size:2000;not null" json:"note,omitempty"`
	DueAt       time.Time  `gorm:"not null" json:"due_at"`
	State       string     `gorm:"size:16;not null;index:idx_guide_tasks_guide" json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	// BeforeRemindedAt and DueRemindedAt are when the task's reminders
	// (before due, at due) were queued, or settled as not needed; nil
	// until then (migration 0017_task_reminders).
	BeforeRemindedAt *time.Time `json:"before_reminded_at,omitempty"`
	DueRemindedAt    *time.Time `json:"due_reminded_at,omitempty"`
}

// CreateGuideTask saves a guide task. A task whose Key is already saved is
// saved once: fresh is false and t is filled from the saved row.
func (s *Store) CreateGuideTask(ctx context.Context, t *GuideTask) (fresh bool, err error) {
	if err := errors.Join(ValidateID("guide_id", t.GuideID), ValidateID("brand", t.BrandID),
		requireText("title", t.Title, 500), limitText("note", t.Note, 2000)); err != nil {
		return false, err
	}
	if t.State == "" {
		t.State = GuideTaskOpen
	}
	t.DueAt, t.CreatedAt = utc(t.DueAt), utc(t.CreatedAt)
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(t)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	if res.RowsAffected == 1 || t.Key == nil {
		return res.RowsAffected == 1, nil
	}
	return false, translate(s.db.WithContext(ctx).Where("task_key = ?", *t.Key).Take(t).Error)
}

// GuideTask returns one guide task.
func (s *Store) GuideTask(ctx context.Context, id int64) (*GuideTask, error) {
	return byID[GuideTask](ctx, s.db, id)
}

// GuideTaskFilter selects guide tasks; empty fields select all.
type GuideTaskFilter struct {
	GuideID  string
	MemberID int64
	RunID    int64
	State    string
	AfterID  int64
	Limit    int
	// ByDue lists the earliest due first (so overdue tasks lead), then
	// by id; AfterID pages id order only.
	ByDue bool
}

// GuideTasks lists guide tasks in id order, or by due time (ByDue); at
// most 1000.
func (s *Store) GuideTasks(ctx context.Context, f GuideTaskFilter) ([]GuideTask, error) {
	q := s.db.WithContext(ctx).Limit(Page{Limit: f.Limit}.limit())
	if f.ByDue {
		q = q.Order("due_at").Order("id")
	} else {
		q = q.Order("id")
	}
	if f.GuideID != "" {
		q = q.Where("guide_id = ?", f.GuideID)
	}
	if f.MemberID != 0 {
		q = q.Where("member_id = ?", f.MemberID)
	}
	if f.RunID != 0 {
		q = q.Where("run_id = ?", f.RunID)
	}
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if f.AfterID != 0 {
		q = q.Where("id > ?", f.AfterID)
	}
	var out []GuideTask
	return out, translate(q.Find(&out).Error)
}

// CompleteGuideTask marks an open task done. completed is false when it
// was not open (done already, or cancelled); the task is returned either
// way.
func (s *Store) CompleteGuideTask(ctx context.Context, id int64, at time.Time) (t *GuideTask, completed bool, err error) {
	res := s.db.WithContext(ctx).Model(&GuideTask{}).Where("id = ? AND state = ?", id, GuideTaskOpen).
		Updates(map[string]any{"state": GuideTaskDone, "completed_at": utc(at)})
	if res.Error != nil {
		return nil, false, translate(res.Error)
	}
	t, err = s.GuideTask(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return t, res.RowsAffected == 1, nil
}
