package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// This file holds what the bots keep: conversations handed from the
// member bot to a guide (handoffs), the daily digest markers, and the
// queries of the guide bot (member lookup, stats).

// Handoff states: a handoff is open until the guide ends it, it is idle
// too long, or the member unsubscribes.
const (
	HandoffOpen  = "open"
	HandoffEnded = "ended"
)

// Reasons a handoff opened: the member asked for a person, or the bot
// could not answer them twice in a row.
const (
	HandoffAsked      = "asked"
	HandoffUnanswered = "unanswered"
)

// Reasons a handoff ended.
const (
	HandoffEndedByGuide  = "guide"
	HandoffEndedIdle     = "idle"
	HandoffEndedUnsubscr = "unsubscribed"
	HandoffEndedMerged   = "merged"
)

// Handoff is a member's conversation handed to their guide: while it is
// open, the member's messages go to the guide and the guide's replies to
// the member. A member has at most one open handoff per brand (a partial
// unique index).
type Handoff struct {
	ID       int64  `gorm:"primaryKey;autoIncrement" json:"id"`
	BrandID  string `gorm:"size:64;not null" json:"brand"`
	MemberID int64  `gorm:"not null;index" json:"member_id"`
	GuideID  string `gorm:"size:64;not null;index:idx_handoffs_guide" json:"guide_id"`
	State    string `gorm:"size:16;not null;index:idx_handoffs_guide" json:"state"`
	// MemberChannel and MemberAddress are where the member is answered;
	// MemberReplyTo is the channel's reply data of the member's latest
	// message (a WeCom kf open_kfid, a DingTalk session webhook), JSON.
	MemberChannel string `gorm:"size:32;not null" json:"member_channel"`
	MemberAddress string `gorm:"size:128;not null" json:"-"`
	MemberReplyTo string `gorm:"type:text;not null" json:"-"`
	// MemberName and MemberTail (phone tail) label the handoff in a
	// guide's list.
	MemberName string `gorm:"size:200;not null" json:"-"`
	MemberTail string `gorm:"size:4;not null" json:"-"`
	// GuideChannel and GuideAddress are where the guide is reached.
	GuideChannel string `gorm:"size:32;not null" json:"guide_channel"`
	GuideAddress string `gorm:"size:128;not null" json:"-"`
	// Locale is the member's language (zh or en).
	Locale string `gorm:"size:8;not null" json:"locale"`
	// Reason is why it was opened: asked (the member asked for a person)
	// or unanswered (the bot could not answer).
	Reason string `gorm:"size:32;not null" json:"reason"`
	// OpenKey is the delivery that opened it, so a retried message opens
	// it once; EndKey the one that ended it.
	OpenKey   string    `gorm:"size:200;not null;uniqueIndex" json:"-"`
	EndKey    string    `gorm:"size:200;not null" json:"-"`
	EndReason string    `gorm:"size:32;not null" json:"end_reason,omitempty"`
	OpenedAt  time.Time `gorm:"not null" json:"opened_at"`
	// LastActivityAt is the last message either way; LastMemberAt the
	// member's last, which picks the handoff a guide's reply goes to.
	LastActivityAt time.Time  `gorm:"not null;index" json:"last_activity_at"`
	LastMemberAt   time.Time  `gorm:"not null" json:"last_member_at"`
	EndedAt        *time.Time `json:"ended_at,omitempty"`
	// NotifiedAt is when both sides were told it ended.
	NotifiedAt *time.Time `json:"notified_at,omitempty"`
}

// GuideDigest marks the daily digest of a guide as sent for a day (in the
// guide's store's time zone), so it goes out once whatever the number of
// workers.
type GuideDigest struct {
	GuideID string    `gorm:"primaryKey;size:64"`
	Day     string    `gorm:"primaryKey;size:10"`
	SentAt  time.Time `gorm:"not null"`
}

func init() { RegisterMergeHook(mergeHandoffs) }

// mergeHandoffs moves a merged member's handoffs to the survivor; an open
// one of a brand the survivor also has one open with ends ("merged").
func mergeHandoffs(tx *gorm.DB, from, into int64) error {
	now := utc(time.Now())
	err := tx.Model(&Handoff{}).
		Where("member_id = ? AND state = ? AND brand_id IN (SELECT brand_id FROM handoffs WHERE member_id = ? AND state = ?)",
			from, HandoffOpen, into, HandoffOpen).
		Updates(map[string]any{"state": HandoffEnded, "end_reason": HandoffEndedMerged, "end_key": "merge", "ended_at": now, "notified_at": now}).Error
	if err != nil {
		return translate(err)
	}
	return translate(tx.Model(&Handoff{}).Where("member_id = ?", from).Update("member_id", into).Error)
}

// handoffIndexes are what gorm's tags cannot say.
var handoffIndexes = []string{
	`CREATE UNIQUE INDEX idx_handoffs_open ON handoffs (member_id, brand_id) WHERE state = 'open'`,
}

func migrateHandoffs(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&Handoff{}, &GuideDigest{}); err != nil {
		return err
	}
	for _, stmt := range handoffIndexes {
		if err := tx.Exec(stmt).Error; err != nil {
			return err
		}
	}
	return nil
}

// OpenHandoff opens a handoff. When the member already has one open with
// the brand, or h.OpenKey opened one already, nothing is written: fresh
// is false and h is filled from the saved row.
func (s *Store) OpenHandoff(ctx context.Context, h *Handoff) (fresh bool, err error) {
	if err := errors.Join(ValidateID("brand", h.BrandID), ValidateID("guide_id", h.GuideID),
		requireText("open_key", h.OpenKey, 200)); err != nil {
		return false, err
	}
	if h.MemberID == 0 {
		return false, invalid("member_id", "is required")
	}
	now := utc(time.Now())
	if h.OpenedAt.IsZero() {
		h.OpenedAt = now
	}
	h.OpenedAt = utc(h.OpenedAt)
	h.LastActivityAt, h.LastMemberAt, h.State = h.OpenedAt, h.OpenedAt, HandoffOpen
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(h)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	err = s.db.WithContext(ctx).Where("open_key = ? OR (member_id = ? AND brand_id = ? AND state = ?)",
		h.OpenKey, h.MemberID, h.BrandID, HandoffOpen).Order("id DESC").Take(h).Error
	return false, translate(err)
}

// Handoff returns one handoff.
func (s *Store) Handoff(ctx context.Context, id int64) (*Handoff, error) {
	return byID[Handoff](ctx, s.db, id)
}

// OpenHandoffOf returns the member's open handoff with a brand (any
// brand when brand is empty), or ErrNotFound.
func (s *Store) OpenHandoffOf(ctx context.Context, memberID int64, brand string) (*Handoff, error) {
	var h Handoff
	q := s.db.WithContext(ctx).Where("member_id = ? AND state = ?", memberID, HandoffOpen)
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	if err := q.Order("id DESC").Take(&h).Error; err != nil {
		return nil, translate(err)
	}
	return &h, nil
}

// LastHandoffOf returns the member's latest handoff with a brand (any
// brand when brand is empty), open or ended, or ErrNotFound.
func (s *Store) LastHandoffOf(ctx context.Context, memberID int64, brand string) (*Handoff, error) {
	var h Handoff
	q := s.db.WithContext(ctx).Where("member_id = ?", memberID)
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	if err := q.Order("id DESC").Take(&h).Error; err != nil {
		return nil, translate(err)
	}
	return &h, nil
}

// GuideHandoffs lists a guide's open handoffs, the one with the latest
// member message first.
func (s *Store) GuideHandoffs(ctx context.Context, guideID string) ([]Handoff, error) {
	var out []Handoff
	err := s.db.WithContext(ctx).Where("guide_id = ? AND state = ?", guideID, HandoffOpen).
		Order("last_member_at DESC, id DESC").Limit(100).Find(&out).Error
	return out, translate(err)
}

// TouchHandoff records a message in an open handoff: from the member
// (replyTo, when not nil, replaces the member's reply data) or the guide.
func (s *Store) TouchHandoff(ctx context.Context, id int64, fromMember bool, replyTo *string, at time.Time) error {
	set := map[string]any{"last_activity_at": utc(at)}
	if fromMember {
		set["last_member_at"] = utc(at)
	}
	if replyTo != nil {
		set["member_reply_to"] = *replyTo
	}
	return translate(s.db.WithContext(ctx).Model(&Handoff{}).Where("id = ? AND state = ?", id, HandoffOpen).Updates(set).Error)
}

// EndHandoff ends an open handoff for reason, keyed by the delivery that
// ends it. ended is true when this call ended it, or an earlier call with
// the same key did (a retry); the handoff is returned either way.
func (s *Store) EndHandoff(ctx context.Context, id int64, reason, key string, at time.Time) (h *Handoff, ended bool, err error) {
	res := s.db.WithContext(ctx).Model(&Handoff{}).Where("id = ? AND state = ?", id, HandoffOpen).
		Updates(map[string]any{"state": HandoffEnded, "end_reason": reason, "end_key": truncate(key, 200), "ended_at": utc(at)})
	if res.Error != nil {
		return nil, false, translate(res.Error)
	}
	h, err = s.Handoff(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return h, res.RowsAffected == 1 || h.EndKey == truncate(key, 200), nil
}

// HandoffEndedBy returns the guide's handoff that the delivery key
// ended, or ErrNotFound.
func (s *Store) HandoffEndedBy(ctx context.Context, guideID, key string) (*Handoff, error) {
	var h Handoff
	err := s.db.WithContext(ctx).Where("guide_id = ? AND state = ? AND end_key = ?", guideID, HandoffEnded, truncate(key, 200)).
		Order("id DESC").Take(&h).Error
	if err != nil {
		return nil, translate(err)
	}
	return &h, nil
}

// MarkHandoffNotified records that both sides were told a handoff ended.
func (s *Store) MarkHandoffNotified(ctx context.Context, id int64, at time.Time) error {
	return translate(s.db.WithContext(ctx).Model(&Handoff{}).Where("id = ?", id).Update("notified_at", utc(at)).Error)
}

// IdleHandoffs lists open handoffs with no message since before, and
// handoffs that ended idle whose sides were not told yet, oldest first.
func (s *Store) IdleHandoffs(ctx context.Context, before time.Time, limit int) ([]Handoff, error) {
	var out []Handoff
	err := s.db.WithContext(ctx).
		Where("((state = ? AND last_activity_at < ?) OR (state = ? AND end_reason = ? AND notified_at IS NULL))",
			HandoffOpen, utc(before), HandoffEnded, HandoffEndedIdle).
		Order("id").Limit(Page{Limit: limit}.limit()).Find(&out).Error
	return out, translate(err)
}

// RecentMessages returns a member's latest message.received events of
// brand, newest first: those the member wrote to the brand and those of
// no one brand (unattributed, which every brand of the person holds);
// brand "" every brand's.
func (s *Store) RecentMessages(ctx context.Context, memberID int64, brand string, n int) ([]Event, error) {
	var out []Event
	q := s.db.WithContext(ctx).Where("member_id = ? AND type = ?", memberID, events.TypeMessageReceived)
	if brand != "" {
		q = q.Where("brand_id IN ?", []string{brand, ""})
	}
	err := q.Order("id DESC").Limit(n).Find(&out).Error
	return out, translate(err)
}

// GuideMember is one of a guide's members as the guide bot shows them.
type GuideMember struct {
	MemberID  int64
	Name      string
	PhoneTail string
	BrandID   string
	Level     string
	Points    int64
	BoundAt   time.Time
}

// brandName is the member's name as the binding's brand knows it (its
// membership's, else the operator's), in queries joining members m and
// memberships ms.
const brandName = "COALESCE(NULLIF(ms.name, ''), m.name)"

// FindGuideMembers finds the members currently bound to a guide whose
// phone ends in q (four digits) or whose name contains q, latest bound
// first. Only the guide's own members are ever searched.
func (s *Store) FindGuideMembers(ctx context.Context, guideID, q string, limit int) ([]GuideMember, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, invalid("q", "a phone tail or a name is required")
	}
	db := s.db.WithContext(ctx).Table("bindings AS b").
		Select("m.id AS member_id, "+brandName+" AS name, CASE WHEN ms.phone_known THEN m.phone_tail ELSE '' END AS phone_tail, b.brand_id, COALESCE(ms.level, '') AS level, COALESCE(ms.points, 0) AS points, b.created_at AS bound_at").
		Joins("JOIN members m ON m.id = b.member_id").
		Joins("LEFT JOIN memberships ms ON ms.member_id = b.member_id AND ms.brand_id = b.brand_id").
		Where("b.guide_id = ? AND b.ended_at IS NULL AND m.merged_into IS NULL", guideID)
	if isDigits(q) && len(q) == 4 {
		db = db.Where("m.phone_tail = ? AND ms.phone_known = ?", q, true)
	} else {
		like := "%" + likeEscaper.Replace(strings.ToLower(q)) + "%"
		db = db.Where(`LOWER(`+brandName+`) LIKE ? ESCAPE '\'`, like)
	}
	var out []GuideMember
	err := db.Order("b.created_at DESC, b.id DESC").Limit(Page{Limit: limit}.limit()).Scan(&out).Error
	return out, translate(err)
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// GuideStats are a guide's figures since a time (the start of the month,
// or of the day).
type GuideStats struct {
	// MembersBound is how many members are bound to the guide now;
	// NewMembers how many of them were bound since.
	MembersBound int64
	NewMembers   int64
	// OpenTasks are the guide's open tasks, DueBefore of them due before
	// the time GuideStats was asked with; TasksDone completed since.
	OpenTasks int64
	DueBefore int64
	TasksDone int64
	// RunsConverted counts workflow runs converted since in which the
	// guide had a task, or whose member is bound to the guide.
	RunsConverted int64
	// MemberPoints is the points the guide's members earned since
	// (positive lines of the members' points ledger).
	MemberPoints int64
	// OpenHandoffs are the guide's open conversations.
	OpenHandoffs int64
}

// GuideStatsSince counts a guide's figures since a time; dueBefore bounds
// the open tasks counted as due.
func (s *Store) GuideStatsSince(ctx context.Context, guideID string, since, dueBefore time.Time) (*GuideStats, error) {
	db := s.db.WithContext(ctx)
	st := &GuideStats{}
	since, dueBefore = utc(since), utc(dueBefore)
	counts := []struct {
		dst *int64
		q   *gorm.DB
	}{
		{&st.MembersBound, db.Model(&Binding{}).Where("guide_id = ? AND ended_at IS NULL", guideID)},
		{&st.NewMembers, db.Model(&Binding{}).Where("guide_id = ? AND ended_at IS NULL AND created_at >= ?", guideID, since)},
		{&st.OpenTasks, db.Model(&GuideTask{}).Where("guide_id = ? AND state = ?", guideID, GuideTaskOpen)},
		{&st.DueBefore, db.Model(&GuideTask{}).Where("guide_id = ? AND state = ? AND due_at < ?", guideID, GuideTaskOpen, dueBefore)},
		{&st.TasksDone, db.Model(&GuideTask{}).Where("guide_id = ? AND state = ? AND completed_at >= ?", guideID, GuideTaskDone, since)},
		{&st.RunsConverted, db.Table("workflow_runs AS r").Where("r.state = ? AND r.ended_at >= ?", RunConverted, since).
			Where("(EXISTS (SELECT 1 FROM guide_tasks t WHERE t.run_id = r.id AND t.guide_id = ?) OR "+
				"EXISTS (SELECT 1 FROM bindings b WHERE b.member_id = r.member_id AND b.brand_id = r.brand_id AND b.guide_id = ? AND b.ended_at IS NULL))",
				guideID, guideID)},
		{&st.OpenHandoffs, db.Model(&Handoff{}).Where("guide_id = ? AND state = ?", guideID, HandoffOpen)},
	}
	for _, c := range counts {
		if err := c.q.Count(c.dst).Error; err != nil {
			return nil, translate(err)
		}
	}
	var pts struct{ Sum int64 }
	err := db.Table("points_ledger AS p").Select("COALESCE(SUM(p.delta), 0) AS sum").
		Joins("JOIN bindings b ON b.member_id = p.member_id AND b.brand_id = p.brand_id AND b.guide_id = ? AND b.ended_at IS NULL", guideID).
		Where("p.delta > 0 AND p.created_at >= ?", since).Scan(&pts).Error
	if err != nil {
		return nil, translate(err)
	}
	st.MemberPoints = pts.Sum
	return st, nil
}

// StoreTimeZones lists the time zones of active stores with guides.
func (s *Store) StoreTimeZones(ctx context.Context) ([]string, error) {
	var zones []string
	err := s.db.WithContext(ctx).Model(&RetailStore{}).Distinct("time_zone").
		Where("active = ? AND EXISTS (SELECT 1 FROM guides g WHERE g.store_id = stores.id AND g.active = ?)", true, true).
		Order("time_zone").Pluck("time_zone", &zones).Error
	return zones, translate(err)
}

// GuidesWithoutDigest lists active guides of active stores in a time zone
// who can be reached on a channel and have no digest marked for day, in
// id order after afterID.
func (s *Store) GuidesWithoutDigest(ctx context.Context, zone, day, afterID string, limit int) ([]Guide, error) {
	var out []Guide
	err := s.db.WithContext(ctx).Table("guides AS g").Select("g.*").
		Joins("JOIN stores st ON st.id = g.store_id AND st.active = ? AND st.time_zone = ?", true, zone).
		Where("g.active = ? AND g.id > ? AND EXISTS (SELECT 1 FROM guide_identities gi WHERE gi.guide_id = g.id)", true, afterID).
		Where("NOT EXISTS (SELECT 1 FROM guide_digests d WHERE d.guide_id = g.id AND d.day = ?)", day).
		Order("g.id").Limit(Page{Limit: limit}.limit()).Scan(&out).Error
	if err != nil {
		return nil, translate(err)
	}
	return out, loadGuideIdentities(s.db.WithContext(ctx), guidePtrs(out))
}

// MarkDigest records a guide's digest of day as sent; fresh is false when
// it was already.
func (s *Store) MarkDigest(ctx context.Context, guideID, day string, at time.Time) (fresh bool, err error) {
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&GuideDigest{GuideID: guideID, Day: day, SentAt: utc(at)})
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}
