package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
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
	// Asked counts the guides asked, Posted those who posted, Reached
	// the contacts who can see a post (one contact of two guides
	// counts twice).
	Asked   int `json:"asked"`
	Posted  int `json:"posted"`
	Reached int `gorm:"not null;default:0" json:"reached"`
	// PolledAt is when the channel was last read; NextPollAt when it is
	// read next; FollowUntil when the reading stops (nil: not followed).
	PolledAt    *time.Time `json:"polled_at,omitempty"`
	NextPollAt  *time.Time `gorm:"index" json:"next_poll_at,omitempty"`
	FollowUntil *time.Time `json:"follow_until,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// MomentTaskCustomer is a contact who can see a guide's post of a
// moment task (WeCom get_moment_customer_list), by their id on the
// task's channel.
type MomentTaskCustomer struct {
	TaskID     int64  `gorm:"primaryKey;autoIncrement:false" json:"-"`
	Guide      string `gorm:"primaryKey;size:128" json:"guide"`
	ExternalID string `gorm:"primaryKey;size:128" json:"external_userid"`
	// MemberID is the member the contact is, when known (read, not
	// stored).
	MemberID *int64 `gorm:"-" json:"member_id,omitempty"`
}

func migrateMomentTasks(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&MomentTask{}); err != nil {
		return fmt.Errorf("creating moment_tasks: %w", err)
	}
	return nil
}

// migrateMomentResults adds what migration 0038 adds: the campaign's
// reading schedule, the contacts who can see the posts, and a follow
// period for campaigns saved before.
func migrateMomentResults(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&MomentTask{}, &MomentTaskCustomer{}); err != nil {
		return fmt.Errorf("adding moment task results: %w", err)
	}
	var ts []MomentTask
	if err := tx.Where("follow_until IS NULL AND state IN ?", []string{MomentCreating, MomentCreated}).Find(&ts).Error; err != nil {
		return err
	}
	for _, t := range ts {
		until := utc(t.CreatedAt.Add(MomentFollowFor))
		if err := tx.Model(&MomentTask{}).Where("id = ?", t.ID).Update("follow_until", until).Error; err != nil {
			return err
		}
	}
	return nil
}

// MomentFollowFor is how long a campaign's posts are read after it was
// created, unless the campaign says otherwise.
const MomentFollowFor = 7 * 24 * time.Hour

// MomentTasksDue lists the tasks to read from their channel at now: a
// job not done yet, or a created task within its follow period, whose
// next reading is due; oldest reading first.
func (s *Store) MomentTasksDue(ctx context.Context, now time.Time, limit int) ([]MomentTask, error) {
	now = utc(now)
	var out []MomentTask
	err := s.db.WithContext(ctx).
		Where("(state = ? AND job_id <> '') OR (state = ? AND follow_until > ?)", MomentCreating, MomentCreated, now).
		Where("next_poll_at IS NULL OR next_poll_at <= ?", now).
		Order("next_poll_at").Order("id").Limit(Page{Limit: limit}.limit()).Find(&out).Error
	return out, translate(err)
}

// SaveMomentCustomers records the contacts who can see guide's post of
// a task (those seen before stay).
func (s *Store) SaveMomentCustomers(ctx context.Context, taskID int64, guide string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	rows := make([]MomentTaskCustomer, len(ids))
	for i, id := range ids {
		rows[i] = MomentTaskCustomer{TaskID: taskID, Guide: guide, ExternalID: id}
	}
	return translate(s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 500).Error)
}

// CountMomentCustomers counts the contacts who can see a task's posts,
// by guide.
func (s *Store) CountMomentCustomers(ctx context.Context, taskID int64) (map[string]int, error) {
	var rows []struct {
		Guide string
		N     int
	}
	err := s.db.WithContext(ctx).Model(&MomentTaskCustomer{}).Select("guide, COUNT(*) AS n").
		Where("task_id = ?", taskID).Group("guide").Scan(&rows).Error
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Guide] = r.N
	}
	return out, translate(err)
}

// MomentCustomers lists the contacts who can see a task's posts, by
// guide and id, at most limit (default 100, at most 1000), each with
// the member they are on channel when known.
func (s *Store) MomentCustomers(ctx context.Context, t *MomentTask, limit int) ([]MomentTaskCustomer, error) {
	var rows []struct {
		Guide      string
		ExternalID string
		MemberID   *int64
	}
	err := s.db.WithContext(ctx).Table("moment_task_customers AS c").
		Select("c.guide, c.external_id, i.member_id").
		Joins("LEFT JOIN member_identities AS i ON i.channel = ? AND i.external_id = c.external_id", t.Channel).
		Where("c.task_id = ?", t.ID).Order("c.guide").Order("c.external_id").
		Limit(Page{Limit: limit}.limit()).Scan(&rows).Error
	out := make([]MomentTaskCustomer, len(rows))
	for i, r := range rows {
		out[i] = MomentTaskCustomer{TaskID: t.ID, Guide: r.Guide, ExternalID: r.ExternalID, MemberID: r.MemberID}
	}
	return out, translate(err)
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
			"invalid": t.Invalid, "posts": t.Posts, "asked": t.Asked, "posted": t.Posted, "reached": t.Reached,
			"polled_at": t.PolledAt, "next_poll_at": t.NextPollAt, "follow_until": t.FollowUntil, "updated_at": t.UpdatedAt}).Error)
}

// DeleteMomentTask deletes a task the channel refused before creating
// it.
func (s *Store) DeleteMomentTask(ctx context.Context, id int64) error {
	return translate(s.db.WithContext(ctx).Where("id = ? AND job_id = ''", id).Delete(&MomentTask{}).Error)
}
