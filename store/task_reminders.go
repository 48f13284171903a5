package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Reminder kinds of a guide task: before it is due, and when it is.
const (
	ReminderBefore = "before"
	ReminderDue    = "due"
)

// migrateTaskReminders adds the reminder marks of guide tasks and the
// index the reminder sweep reads. Databases made since the columns exist
// have them from 0004_workflows already: it adds only what is missing.
func migrateTaskReminders(tx *gorm.DB) error {
	for _, col := range []string{"BeforeRemindedAt", "DueRemindedAt"} {
		if tx.Migrator().HasColumn(&GuideTask{}, col) {
			continue
		}
		if err := tx.Migrator().AddColumn(&GuideTask{}, col); err != nil {
			return fmt.Errorf("adding guide_tasks.%s: %w", col, err)
		}
	}
	// Open tasks whose at-due reminder is not settled, by due time: the
	// only ones the sweep looks at.
	return tx.Exec(`CREATE INDEX IF NOT EXISTS idx_guide_tasks_remind ON guide_tasks (due_at) WHERE state = 'open' AND due_reminded_at IS NULL`).Error
}

// ReminderQuery selects the open guide tasks with a reminder that may be
// due at Now.
type ReminderQuery struct {
	Now time.Time
	// Before selects tasks due within Before of Now whose before-due
	// reminder is not settled; 0 selects none that way.
	Before time.Duration
	// AtDue selects tasks due by Now whose at-due reminder is not settled.
	AtDue bool
	// AfterID pages in id order.
	AfterID int64
	Limit   int
}

// TasksToRemind lists open guide tasks with an unsettled reminder whose
// nominal time (DueAt-Before, DueAt) has come, in id order (at most 1000).
// The caller decides what to send (a store's opening hours can push a
// reminder later) and settles each with MarkTaskReminded.
func (s *Store) TasksToRemind(ctx context.Context, q ReminderQuery) ([]GuideTask, error) {
	now := utc(q.Now)
	db := s.db.WithContext(ctx).Where("state = ? AND due_reminded_at IS NULL AND id > ?", GuideTaskOpen, q.AfterID)
	switch {
	case q.Before > 0 && q.AtDue:
		db = db.Where("((before_reminded_at IS NULL AND due_at <= ?) OR due_at <= ?)", now.Add(q.Before), now)
	case q.Before > 0:
		// Past due, the before-due reminder is settled as not needed.
		db = db.Where("before_reminded_at IS NULL AND due_at <= ?", now.Add(q.Before))
	case q.AtDue:
		db = db.Where("due_at <= ?", now)
	default:
		return nil, nil
	}
	var out []GuideTask
	return out, translate(db.Order("id").Limit(Page{Limit: q.Limit}.limit()).Find(&out).Error)
}

// MarkTaskReminded settles a reminder of an open task (kind
// ReminderBefore or ReminderDue) at at: marked is false when it was
// settled already or the task is no longer open. Settling the at-due
// reminder settles the before-due one too.
func (s *Store) MarkTaskReminded(ctx context.Context, id int64, kind string, at time.Time) (marked bool, err error) {
	at = utc(at)
	q := s.db.WithContext(ctx).Model(&GuideTask{}).Where("id = ? AND state = ? AND due_reminded_at IS NULL", id, GuideTaskOpen)
	var res *gorm.DB
	switch kind {
	case ReminderBefore:
		res = q.Where("before_reminded_at IS NULL").Update("before_reminded_at", at)
	case ReminderDue:
		res = q.Updates(map[string]any{"due_reminded_at": at,
			"before_reminded_at": gorm.Expr("COALESCE(before_reminded_at, ?)", at)})
	default:
		return false, invalid("kind", "want before or due, got %q", kind)
	}
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// Task counts statuses: open and not yet due, open and past due, done.
const (
	TaskStatusOpen    = "open"
	TaskStatusOverdue = "overdue"
	TaskStatusDone    = "done"
)

// TaskCountQuery asks for a store's guides' task counts.
type TaskCountQuery struct {
	StoreID string
	// Brand counts only the brand's tasks; empty counts every brand's.
	Brand string
	// Now divides open tasks into open (due at or after Now) and overdue.
	Now time.Time
	// Status lists only guides with at least one task of that status
	// (TaskStatusOpen, TaskStatusOverdue or TaskStatusDone); empty lists
	// the store's active guides and any guide of it with tasks.
	Status string
}

// GuideTaskCount is one guide's task counts. Cancelled tasks are not
// counted.
type GuideTaskCount struct {
	GuideID string `json:"guide_id"`
	Name    string `json:"name"`
	Open    int64  `json:"open"`
	Overdue int64  `json:"overdue"`
	Done    int64  `json:"done"`
}

// GuideTaskCounts counts the open, overdue and done tasks of each guide
// of a store, in guide id order.
func (s *Store) GuideTaskCounts(ctx context.Context, q TaskCountQuery) ([]GuideTaskCount, error) {
	now := utc(q.Now)
	open := "SUM(CASE WHEN t.state = 'open' AND t.due_at >= ? THEN 1 ELSE 0 END)"
	overdue := "SUM(CASE WHEN t.state = 'open' AND t.due_at < ? THEN 1 ELSE 0 END)"
	done := "SUM(CASE WHEN t.state = 'done' THEN 1 ELSE 0 END)"
	join, joinArgs := "LEFT JOIN guide_tasks t ON t.guide_id = g.id", []any{}
	if q.Brand != "" {
		join += " AND t.brand_id = ?"
		joinArgs = append(joinArgs, q.Brand)
	}
	db := s.db.WithContext(ctx).Table("guides g").
		Select("g.id AS guide_id, g.name AS name, COALESCE("+open+", 0) AS open, COALESCE("+overdue+", 0) AS overdue, COALESCE("+done+", 0) AS done", now, now).
		Joins(join, joinArgs...).
		Where("g.store_id = ?", q.StoreID).
		Group("g.id, g.name, g.active").
		Order("g.id")
	switch q.Status {
	case "":
		db = db.Having("g.active OR COUNT(t.id) > 0")
	case TaskStatusOpen:
		db = db.Having(open+" > 0", now)
	case TaskStatusOverdue:
		db = db.Having(overdue+" > 0", now)
	case TaskStatusDone:
		db = db.Having(done + " > 0")
	default:
		return nil, invalid("status", "want open, overdue or done, got %q", q.Status)
	}
	out := []GuideTaskCount{}
	return out, translate(db.Scan(&out).Error)
}
