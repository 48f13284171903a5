package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// LiveSession is a store's (or, StoreID empty, a brand's for all its
// stores) live stream (门店直播): announced to the members bound to the
// store's guides, who are invited and reminded through their guides by
// workflows triggered on live.scheduled.
type LiveSession struct {
	ID int64 `gorm:"primaryKey;autoIncrement" json:"-"`
	// Key is the session's id as the brand (and the live platform's
	// events) name it; unique per brand.
	Key     string `gorm:"column:session_key;size:64;not null;uniqueIndex:idx_live_session_key,priority:2" json:"id"`
	BrandID string `gorm:"size:64;not null;uniqueIndex:idx_live_session_key,priority:1" json:"brand"`
	// StoreID is the store whose members are invited; empty: every store
	// of the brand (each member through their own store).
	StoreID  string    `gorm:"size:64;not null;default:''" json:"store_id,omitempty"`
	Title    string    `gorm:"size:200;not null" json:"title"`
	URL      string    `gorm:"size:1000;not null" json:"url"`
	StartsAt time.Time `gorm:"not null" json:"starts_at"`
	EndsAt   time.Time `gorm:"not null" json:"ends_at"`
	// InvitedThrough is the last member id announced so far (the
	// announcement goes through the members in id order, resumable);
	// InvitedAt is set once all are.
	InvitedThrough int64      `gorm:"not null;default:0" json:"-"`
	InvitedAt      *time.Time `gorm:"index" json:"invited_at,omitempty"`
	// Revision counts the edits and the cancellation: each is announced
	// to the audience again (the announcement starts over), Change saying
	// what it was: LiveRescheduled, LiveUpdated or LiveCancelled.
	Revision int    `gorm:"not null;default:0" json:"revision"`
	Change   string `gorm:"size:16;not null;default:''" json:"change,omitempty"`
	// CancelledAt is when the session was cancelled.
	CancelledAt *time.Time `json:"cancelled_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
}

// What an edit of a live session changed (LiveSession.Change).
const (
	// LiveRescheduled: its start moved.
	LiveRescheduled = "rescheduled"
	// LiveUpdated: its title, URL or end changed, not its start.
	LiveUpdated = "updated"
	// LiveCancelled: it was cancelled.
	LiveCancelled = "cancelled"
)

// LiveAudience is a member a live session concerns: announced to them
// (InvitedAt), or a member who joined uninvited. StoreID and GuideID are
// the store and guide the member's joining and buying are credited to.
type LiveAudience struct {
	SessionID int64      `gorm:"primaryKey;autoIncrement:false;index:idx_live_audience_store,priority:1" json:"-"`
	MemberID  int64      `gorm:"primaryKey;autoIncrement:false;index" json:"member_id"`
	BrandID   string     `gorm:"size:64;not null" json:"brand"`
	StoreID   string     `gorm:"size:64;not null;default:'';index:idx_live_audience_store,priority:2" json:"store_id"`
	GuideID   string     `gorm:"size:64;not null;default:''" json:"guide_id,omitempty"`
	InvitedAt *time.Time `json:"invited_at,omitempty"`
	JoinedAt  *time.Time `json:"joined_at,omitempty"`
	LeftAt    *time.Time `json:"left_at,omitempty"`
	OrderedAt *time.Time `json:"ordered_at,omitempty"`
}

// LiveOrder is an order placed during a live session, credited to the
// store and guide of the member's audience row.
type LiveOrder struct {
	OrderID    int64  `gorm:"primaryKey;autoIncrement:false" json:"order_id"`
	SessionID  int64  `gorm:"not null;index" json:"-"`
	MemberID   int64  `gorm:"not null" json:"member_id"`
	StoreID    string `gorm:"size:64;not null;default:''" json:"store_id"`
	GuideID    string `gorm:"size:64;not null;default:''" json:"guide_id,omitempty"`
	TotalCents int64  `gorm:"not null" json:"total_cents"`
}

func migrateLive(tx *gorm.DB) error {
	// Product gains its shop page's URL.
	return tx.AutoMigrate(&LiveSession{}, &LiveAudience{}, &LiveOrder{}, &StoreProduct{}, &Product{})
}

func migrateLiveEdits(tx *gorm.DB) error {
	return tx.AutoMigrate(&LiveSession{})
}

// isWebURL reports whether s is an absolute http(s) URL of at most 1000
// bytes.
func isWebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && len(s) <= 1000
}

// validateLiveSession checks a session's fields; every fault is named
// by its JSON field.
func validateLiveSession(l *LiveSession) error {
	errs := []error{ValidateID("id", l.Key), ValidateID("brand", l.BrandID), limitText("title", l.Title, 200)}
	if l.StoreID != "" {
		errs = append(errs, ValidateID("store_id", l.StoreID))
	}
	if strings.TrimSpace(l.Title) == "" {
		errs = append(errs, invalid("title", "is required"))
	}
	if l.URL == "" {
		errs = append(errs, invalid("url", "is required"))
	} else if !isWebURL(l.URL) {
		errs = append(errs, invalid("url", "want an http(s) URL of at most 1000 characters"))
	}
	switch {
	case l.StartsAt.IsZero():
		errs = append(errs, invalid("starts_at", "is required"))
	case l.EndsAt.IsZero():
		errs = append(errs, invalid("ends_at", "is required"))
	case !l.EndsAt.After(l.StartsAt):
		errs = append(errs, invalid("ends_at", "must be after starts_at"))
	case l.EndsAt.Sub(l.StartsAt) > 24*time.Hour:
		errs = append(errs, invalid("ends_at", "a live session lasts at most 24 hours"))
	}
	return errors.Join(errs...)
}

// CreateLiveSession records a live session. The same session sent again
// (same brand, id and fields) answers the recorded one with fresh false;
// the id with other fields is ErrConflict. A store that is not the
// brand's is a FieldError on store_id; nothing is written on an error.
func (s *Store) CreateLiveSession(ctx context.Context, l *LiveSession) (fresh bool, err error) {
	l.StartsAt, l.EndsAt = utc(l.StartsAt), utc(l.EndsAt)
	if err := validateLiveSession(l); err != nil {
		return false, err
	}
	if _, err := s.Brand(ctx, l.BrandID); err != nil {
		return false, err
	}
	if l.StoreID != "" {
		if _, err := s.RetailStore(ctx, l.StoreID, l.BrandID); errors.Is(err, ErrNotFound) {
			return false, invalid("store_id", "no store of brand %s has this id", l.BrandID)
		} else if err != nil {
			return false, err
		}
	}
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(l)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	got, err := s.LiveSession(ctx, l.BrandID, l.Key)
	if err != nil {
		return false, err
	}
	if got.StoreID != l.StoreID || got.Title != l.Title || got.URL != l.URL || !got.StartsAt.Equal(l.StartsAt) || !got.EndsAt.Equal(l.EndsAt) {
		return false, fmt.Errorf("%w: a live session of brand %s already has id %q, with other fields", ErrConflict, l.BrandID, l.Key)
	}
	*l = *got
	return false, nil
}

// LiveSession returns a brand's live session by its id, or ErrNotFound.
func (s *Store) LiveSession(ctx context.Context, brand, key string) (*LiveSession, error) {
	var l LiveSession
	if err := s.db.WithContext(ctx).Where("brand_id = ? AND session_key = ?", brand, key).Take(&l).Error; err != nil {
		return nil, translate(err)
	}
	return &l, nil
}

// LiveSessionByID returns a live session by its row id.
func (s *Store) LiveSessionByID(ctx context.Context, id int64) (*LiveSession, error) {
	return byID[LiveSession](ctx, s.db, id)
}

// LiveSessions lists a brand's live sessions by id (Page.After is an
// id).
func (s *Store) LiveSessions(ctx context.Context, brand string, p Page) ([]LiveSession, error) {
	var out []LiveSession
	q := s.db.WithContext(ctx).Where("brand_id = ?", brand).Order("session_key").Limit(p.limit())
	if p.After != "" {
		q = q.Where("session_key > ?", p.After)
	}
	return out, translate(q.Find(&out).Error)
}

// LiveSessionsToInvite lists sessions whose announcement is not finished
// and that were created before: the sweep hands them to the queue again.
func (s *Store) LiveSessionsToInvite(ctx context.Context, before time.Time, limit int) ([]LiveSession, error) {
	var out []LiveSession
	err := s.db.WithContext(ctx).Where("invited_at IS NULL AND created_at < ?", utc(before)).Order("id").Limit(limit).Find(&out).Error
	return out, translate(err)
}

// InviteLiveBatch adds the next members of a session's audience: up to
// limit members bound (now) to a guide of the session's store (of any
// store of the brand for a brand's session), after the session's
// InvitedThrough, each with the store and guide they are bound to. It
// returns them (those added before by an interrupted announcement too);
// none when everyone is announced.
func (s *Store) InviteLiveBatch(ctx context.Context, l *LiveSession, at time.Time, limit int) ([]LiveAudience, error) {
	var bs []Binding
	q := s.db.WithContext(ctx).Where("brand_id = ? AND ended_at IS NULL AND member_id > ?", l.BrandID, l.InvitedThrough)
	if l.StoreID != "" {
		q = q.Where("store_id = ?", l.StoreID)
	}
	if err := q.Order("member_id").Limit(limit).Find(&bs).Error; err != nil {
		return nil, translate(err)
	}
	if len(bs) == 0 {
		return nil, nil
	}
	at = utc(at)
	rows := make([]LiveAudience, len(bs))
	for i, b := range bs {
		rows[i] = LiveAudience{SessionID: l.ID, MemberID: b.MemberID, BrandID: l.BrandID, StoreID: b.StoreID, GuideID: b.GuideID, InvitedAt: &at}
	}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 500).Error
	if err != nil {
		return nil, translate(err)
	}
	ids := make([]int64, len(bs))
	for i, b := range bs {
		ids[i] = b.MemberID
	}
	var out []LiveAudience
	err = s.db.WithContext(ctx).Where("session_id = ? AND member_id IN ?", l.ID, ids).Order("member_id").Find(&out).Error
	return out, translate(err)
}

// UpcomingLiveSessions lists the sessions announced to everyone (their
// latest revision), not cancelled, that have not started at now: those
// whose store's newly bound members are still to be invited.
func (s *Store) UpcomingLiveSessions(ctx context.Context, now time.Time, limit int) ([]LiveSession, error) {
	var out []LiveSession
	err := s.db.WithContext(ctx).Where("invited_at IS NOT NULL AND cancelled_at IS NULL AND starts_at > ?", utc(now)).
		Order("id").Limit(limit).Find(&out).Error
	return out, translate(err)
}

// LateLiveAudience lists up to limit members bound to a guide of a
// session's store (of any store of the brand for a brand's session)
// since the session was created who are not in its audience yet: members
// bound after (or while) the session was announced, by member id, as the
// audience rows (invited at) to add once they are announced
// (EnsureLiveAudience). None when everyone is in.
func (s *Store) LateLiveAudience(ctx context.Context, l *LiveSession, at time.Time, limit int) ([]LiveAudience, error) {
	var bs []Binding
	q := s.db.WithContext(ctx).Where("brand_id = ? AND ended_at IS NULL AND created_at >= ?", l.BrandID, utc(l.CreatedAt)).
		Where("NOT EXISTS (SELECT 1 FROM live_audiences la WHERE la.session_id = ? AND la.member_id = bindings.member_id)", l.ID)
	if l.StoreID != "" {
		q = q.Where("store_id = ?", l.StoreID)
	}
	if err := q.Order("member_id").Limit(limit).Find(&bs).Error; err != nil {
		return nil, translate(err)
	}
	at = utc(at)
	out := make([]LiveAudience, len(bs))
	for i, b := range bs {
		out[i] = LiveAudience{SessionID: l.ID, MemberID: b.MemberID, BrandID: l.BrandID, StoreID: b.StoreID, GuideID: b.GuideID, InvitedAt: &at}
	}
	return out, nil
}

// AdvanceLiveInvite records that the session's revision is announced to
// every member up to through; done marks the announcement finished. It
// reports false, changing nothing, when the session is at another
// revision (edited or cancelled since): the announcement starts over.
func (s *Store) AdvanceLiveInvite(ctx context.Context, id int64, revision int, through int64, done bool, at time.Time) (bool, error) {
	upd := map[string]any{"invited_through": gorm.Expr("CASE WHEN invited_through < ? THEN ? ELSE invited_through END", through, through)}
	if done {
		upd["invited_at"] = utc(at)
	}
	res := s.db.WithContext(ctx).Model(&LiveSession{}).Where("id = ? AND revision = ?", id, revision).Updates(upd)
	return res.RowsAffected == 1, translate(res.Error)
}

// LiveEdit is an edit of a live session: the fields given change.
type LiveEdit struct {
	Title    *string
	URL      *string
	StartsAt *time.Time
	EndsAt   *time.Time
}

// UpdateLiveSession edits a brand's live session and has it announced
// again (its revision moves on, the announcement starts over): Change is
// LiveRescheduled when the start moved, else LiveUpdated. An edit that
// changes nothing returns the session as it is. A cancelled session, or
// one that has ended at now, is ErrConflict; faults of the fields are
// FieldErrors as for CreateLiveSession; nothing is written on an error.
func (s *Store) UpdateLiveSession(ctx context.Context, brand, key string, e LiveEdit, now time.Time) (*LiveSession, error) {
	l, err := s.LiveSession(ctx, brand, key)
	if err != nil {
		return nil, err
	}
	if l.CancelledAt != nil {
		return nil, fmt.Errorf("%w: live session %s is cancelled", ErrConflict, key)
	}
	if !now.Before(l.EndsAt) {
		return nil, fmt.Errorf("%w: live session %s has ended", ErrConflict, key)
	}
	next := *l
	if e.Title != nil {
		next.Title = *e.Title
	}
	if e.URL != nil {
		next.URL = *e.URL
	}
	if e.StartsAt != nil {
		next.StartsAt = utc(*e.StartsAt)
	}
	if e.EndsAt != nil {
		next.EndsAt = utc(*e.EndsAt)
	}
	if err := validateLiveSession(&next); err != nil {
		return nil, err
	}
	if next.Title == l.Title && next.URL == l.URL && next.StartsAt.Equal(l.StartsAt) && next.EndsAt.Equal(l.EndsAt) {
		return l, nil
	}
	next.Change = LiveUpdated
	if !next.StartsAt.Equal(l.StartsAt) || (l.InvitedAt == nil && l.Change == LiveRescheduled) {
		// A new start, or one not yet announced to everyone.
		next.Change = LiveRescheduled
	}
	next.Revision, next.InvitedThrough, next.InvitedAt = l.Revision+1, 0, nil
	res := s.db.WithContext(ctx).Model(&LiveSession{}).Where("id = ? AND revision = ?", l.ID, l.Revision).Updates(map[string]any{
		"title": next.Title, "url": next.URL, "starts_at": next.StartsAt, "ends_at": next.EndsAt,
		"revision": next.Revision, "change": next.Change, "invited_through": 0, "invited_at": nil})
	if res.Error != nil {
		return nil, translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, fmt.Errorf("%w: live session %s was changed at the same time; read it again", ErrConflict, key)
	}
	return &next, nil
}

// CancelLiveSession cancels a brand's live session and has the
// cancellation announced to everyone the session was announced to. A
// session cancelled before answers as it is with fresh false; one that
// has ended at now is ErrConflict.
func (s *Store) CancelLiveSession(ctx context.Context, brand, key string, now time.Time) (l *LiveSession, fresh bool, err error) {
	l, err = s.LiveSession(ctx, brand, key)
	if err != nil {
		return nil, false, err
	}
	if l.CancelledAt != nil {
		return l, false, nil
	}
	if !now.Before(l.EndsAt) {
		return nil, false, fmt.Errorf("%w: live session %s has ended", ErrConflict, key)
	}
	at := utc(now)
	res := s.db.WithContext(ctx).Model(&LiveSession{}).Where("id = ? AND cancelled_at IS NULL", l.ID).Updates(map[string]any{
		"cancelled_at": at, "revision": gorm.Expr("revision + 1"), "change": LiveCancelled, "invited_through": 0, "invited_at": nil})
	if res.Error != nil {
		return nil, false, translate(res.Error)
	}
	got, err := s.LiveSessionByID(ctx, l.ID)
	return got, res.RowsAffected == 1, err
}

// CancelLiveBatch lists the next members a cancelled session was
// announced to: up to limit audience rows with an invitation, after the
// session's InvitedThrough, by member id.
func (s *Store) CancelLiveBatch(ctx context.Context, l *LiveSession, limit int) ([]LiveAudience, error) {
	var out []LiveAudience
	err := s.db.WithContext(ctx).Where("session_id = ? AND invited_at IS NOT NULL AND member_id > ?", l.ID, l.InvitedThrough).
		Order("member_id").Limit(limit).Find(&out).Error
	return out, translate(err)
}

// LiveAudienceMember returns a member's audience row of a session, or
// ErrNotFound.
func (s *Store) LiveAudienceMember(ctx context.Context, sessionID, memberID int64) (*LiveAudience, error) {
	var a LiveAudience
	if err := s.db.WithContext(ctx).Where("session_id = ? AND member_id = ?", sessionID, memberID).Take(&a).Error; err != nil {
		return nil, translate(err)
	}
	return &a, nil
}

// EnsureLiveAudience returns the member's audience row of a session,
// adding a, uninvited, when there is none (a member who joined without
// an invitation).
func (s *Store) EnsureLiveAudience(ctx context.Context, a *LiveAudience) (*LiveAudience, error) {
	if err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(a).Error; err != nil {
		return nil, translate(err)
	}
	return s.LiveAudienceMember(ctx, a.SessionID, a.MemberID)
}

// Live audience marks.
const (
	LiveJoined  = "joined"
	LiveLeft    = "left"
	LiveOrdered = "ordered"
)

// MarkLiveAudience records that the member joined (the first time
// counts), left (the last time counts) or ordered (the first order's
// time) in the session.
func (s *Store) MarkLiveAudience(ctx context.Context, sessionID, memberID int64, mark string, at time.Time) error {
	q := s.db.WithContext(ctx).Model(&LiveAudience{}).Where("session_id = ? AND member_id = ?", sessionID, memberID)
	at = utc(at)
	var res *gorm.DB
	switch mark {
	case LiveJoined:
		res = q.Where("joined_at IS NULL OR joined_at > ?", at).Update("joined_at", at)
	case LiveLeft:
		res = q.Where("left_at IS NULL OR left_at < ?", at).Update("left_at", at)
	case LiveOrdered:
		res = q.Where("ordered_at IS NULL OR ordered_at > ?", at).Update("ordered_at", at)
	default:
		return invalid("mark", "unknown live audience mark %q", mark)
	}
	return translate(res.Error)
}

// RecordLiveOrder records an order of a session (once per order).
func (s *Store) RecordLiveOrder(ctx context.Context, o *LiveOrder) error {
	return translate(s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(o).Error)
}

// LiveStoreFunnel is a session's funnel for one store: members invited,
// who joined, who bought, and the orders and sales.
type LiveStoreFunnel struct {
	StoreID    string `json:"store_id"`
	Invited    int64  `json:"invited"`
	Joined     int64  `json:"joined"`
	Bought     int64  `json:"bought"`
	Orders     int64  `json:"orders"`
	SalesCents int64  `json:"sales_cents"`
}

// LiveFunnel is a session's funnel per store (store id order): invited
// → joined → bought. Members who joined uninvited count as joined (and
// bought) but not as invited.
func (s *Store) LiveFunnel(ctx context.Context, sessionID int64) ([]LiveStoreFunnel, error) {
	var rows []LiveStoreFunnel
	err := s.db.WithContext(ctx).Model(&LiveAudience{}).Where("session_id = ?", sessionID).
		Select(`store_id, COUNT(invited_at) AS invited, COUNT(joined_at) AS joined, COUNT(ordered_at) AS bought`).
		Group("store_id").Order("store_id").Scan(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	var sales []LiveStoreFunnel
	err = s.db.WithContext(ctx).Model(&LiveOrder{}).Where("session_id = ?", sessionID).
		Select("store_id, COUNT(*) AS orders, COALESCE(SUM(total_cents), 0) AS sales_cents").Group("store_id").Scan(&sales).Error
	if err != nil {
		return nil, translate(err)
	}
	for _, sl := range sales {
		found := false
		for i := range rows {
			if rows[i].StoreID == sl.StoreID {
				rows[i].Orders, rows[i].SalesCents, found = sl.Orders, sl.SalesCents, true
			}
		}
		if !found {
			rows = append(rows, sl)
		}
	}
	return rows, nil
}
