package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Moment task states.
const (
	MomentCreating = "creating"
	MomentCreated  = "created"
	MomentFailed   = "failed"
)

// MomentTask is content a brand asked its guides to post where their
// contacts see it (WeCom Moments, 朋友圈), and who posted.
type MomentTask struct {
	ID      int64  `gorm:"primaryKey;autoIncrement" json:"id"`
	Key     string `gorm:"column:task_key;size:200;uniqueIndex" json:"key"`
	Channel string `gorm:"size:80;not null" json:"channel"`
	BrandID string `gorm:"size:64;not null;index" json:"brand"`
	StoreID string `gorm:"size:64" json:"store_id,omitempty"`
	Kind    string `gorm:"size:32" json:"kind"`
	Text    string `gorm:"size:2000" json:"text"`
	// Fields, Senders, Invalid and Posts are JSON: the message's fields,
	// the guides' ids asked, those the channel refused, and who posted.
	Fields   string `gorm:"type:text" json:"-"`
	Senders  string `gorm:"type:text" json:"-"`
	Invalid  string `gorm:"type:text" json:"-"`
	Posts    string `gorm:"type:text" json:"-"`
	JobID    string `gorm:"size:128" json:"job_id"`
	MomentID string `gorm:"size:128" json:"moment_id,omitempty"`
	State    string `gorm:"size:16;not null" json:"state"`
	Error    string `gorm:"size:500" json:"error,omitempty"`
	// Asked counts the guides asked, Posted those who posted.
	Asked     int       `json:"asked"`
	Posted    int       `json:"posted"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func migrateMomentTasks(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&MomentTask{}); err != nil {
		return fmt.Errorf("creating moment_tasks: %w", err)
	}
	return nil
}

// CreateMomentTask saves a new task; a task with its key already saved
// is returned instead (created false).
func (s *Store) CreateMomentTask(ctx context.Context, t *MomentTask) (created bool, err error) {
	if err := requireText("key", t.Key, 200); err != nil {
		return false, err
	}
	var have MomentTask
	err = s.db.WithContext(ctx).Where("task_key = ?", t.Key).Take(&have).Error
	if err == nil {
		*t = have
		return false, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return false, translate(err)
	}
	if err := s.db.WithContext(ctx).Create(t).Error; err != nil {
		return false, translate(err)
	}
	return true, nil
}

// MomentTaskByKey returns the task saved with key.
func (s *Store) MomentTaskByKey(ctx context.Context, key string) (*MomentTask, error) {
	var t MomentTask
	if err := s.db.WithContext(ctx).Where("task_key = ?", key).Take(&t).Error; err != nil {
		return nil, translate(err)
	}
	return &t, nil
}

// MomentTask returns one task (of brand, unless brand is "").
func (s *Store) MomentTask(ctx context.Context, id int64, brand string) (*MomentTask, error) {
	q := s.db.WithContext(ctx).Where("id = ?", id)
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	var t MomentTask
	if err := q.Take(&t).Error; err != nil {
		return nil, translate(err)
	}
	return &t, nil
}

// MomentTasks lists a brand's tasks, newest first.
func (s *Store) MomentTasks(ctx context.Context, brand string, p Page) ([]MomentTask, error) {
	q := s.db.WithContext(ctx).Order("id DESC").Limit(p.limit())
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	var out []MomentTask
	return out, translate(q.Find(&out).Error)
}

// SaveMomentTask writes a task's progress.
func (s *Store) SaveMomentTask(ctx context.Context, t *MomentTask) error {
	t.UpdatedAt = utc(time.Now())
	return translate(s.db.WithContext(ctx).Model(&MomentTask{}).Where("id = ?", t.ID).
		Updates(map[string]any{"job_id": t.JobID, "moment_id": t.MomentID, "state": t.State, "error": t.Error,
			"invalid": t.Invalid, "posts": t.Posts, "asked": t.Asked, "posted": t.Posted, "updated_at": t.UpdatedAt}).Error)
}

// DeleteMomentTask deletes a task the channel refused before creating
// it.
func (s *Store) DeleteMomentTask(ctx context.Context, id int64) error {
	return translate(s.db.WithContext(ctx).Where("id = ? AND job_id = ''", id).Delete(&MomentTask{}).Error)
}
