package store

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

// Lease lets one replica at a time do a job (the workflow sweeper): the
// holder owns it until ExpiresAt.
type Lease struct {
	Name      string    `gorm:"primaryKey;size:100"`
	Holder    string    `gorm:"size:100;not null"`
	ExpiresAt time.Time `gorm:"not null"`
}

// ScheduleFire marks one firing of a workflow's schedule, so that of the
// replicas running the schedules one starts its runs.
type ScheduleFire struct {
	BrandID    string    `gorm:"primaryKey;size:64"`
	Workflow   string    `gorm:"primaryKey;size:100"`
	FireAt     time.Time `gorm:"primaryKey"`
	Holder     string    `gorm:"size:100;not null"`
	ClaimedAt  time.Time `gorm:"not null"`
	FinishedAt *time.Time
	Entered    int `gorm:"not null"`
}

// AcquireLease takes (or renews) the named lease for holder until
// now+ttl, unless another holder has it: acquired is false then.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (acquired bool, err error) {
	now = utc(now)
	l := Lease{Name: name, Holder: holder, ExpiresAt: now.Add(ttl)}
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&l)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	res = s.db.WithContext(ctx).Model(&Lease{}).Where("name = ? AND (holder = ? OR expires_at < ?)", name, holder, now).
		Updates(map[string]any{"holder": holder, "expires_at": l.ExpiresAt})
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// ReleaseLease gives up a lease the holder has.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	return translate(s.db.WithContext(ctx).Where("name = ? AND holder = ?", name, holder).Delete(&Lease{}).Error)
}

// ClaimScheduleFire claims one firing of a workflow's schedule for holder:
// the first claim wins, and a claim that was never finished can be taken
// over once it is older than staleBefore (its replica died).
func (s *Store) ClaimScheduleFire(ctx context.Context, brand, workflow string, fireAt time.Time, holder string, now, staleBefore time.Time) (claimed bool, err error) {
	f := ScheduleFire{BrandID: brand, Workflow: workflow, FireAt: utc(fireAt), Holder: holder, ClaimedAt: utc(now)}
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&f)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	res = s.db.WithContext(ctx).Model(&ScheduleFire{}).
		Where("brand_id = ? AND workflow = ? AND fire_at = ? AND finished_at IS NULL AND claimed_at < ?", brand, workflow, f.FireAt, utc(staleBefore)).
		Updates(map[string]any{"holder": holder, "claimed_at": f.ClaimedAt})
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// FinishScheduleFire records that a firing started its runs.
func (s *Store) FinishScheduleFire(ctx context.Context, brand, workflow string, fireAt time.Time, entered int, now time.Time) error {
	return translate(s.db.WithContext(ctx).Model(&ScheduleFire{}).
		Where("brand_id = ? AND workflow = ? AND fire_at = ?", brand, workflow, utc(fireAt)).
		Updates(map[string]any{"finished_at": utc(now), "entered": entered}).Error)
}

// ScheduleFires lists a workflow's schedule firings, latest first.
func (s *Store) ScheduleFires(ctx context.Context, brand, workflow string, limit int) ([]ScheduleFire, error) {
	var out []ScheduleFire
	err := s.db.WithContext(ctx).Where("brand_id = ? AND workflow = ?", brand, workflow).Order("fire_at DESC").
		Limit(Page{Limit: limit}.limit()).Find(&out).Error
	return out, translate(err)
}
