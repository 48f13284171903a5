package store

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Handover states: pending (to be requested from the channel, its new
// guide chosen or not yet) → requested (the channel is moving the
// contact) → transferred, or failed (for an operator, Reason says why).
// A refusal of the new guide (the customer refused, or the guide is over
// the channel's limit) sends a requested handover back to pending with
// another guide.
const (
	HandoverPending     = "pending"
	HandoverRequested   = "requested"
	HandoverTransferred = "transferred"
	HandoverFailed      = "failed"
)

// Handover is one member of a guide who left, handed to another guide:
// in scrmgw (the binding) and on the channel (WeCom 离职继承). A row is
// claimed by one worker at a time (ClaimedUntil, Attempts) and moved with
// guarded updates, so that a retried or duplicate task never asks the
// channel twice for a settled member.
type Handover struct {
	ID int64 `gorm:"primaryKey;autoIncrement" json:"id"`
	// GuideID is the guide who left; StoreID their store.
	GuideID  string `gorm:"size:64;not null;uniqueIndex:idx_handover_member" json:"guide_id"`
	MemberID int64  `gorm:"not null;uniqueIndex:idx_handover_member;index" json:"member_id"`
	BrandID  string `gorm:"size:64;not null;uniqueIndex:idx_handover_member" json:"brand"`
	StoreID  string `gorm:"size:64;not null" json:"store_id"`
	// Channel is the channel instance (its key: "wecom", "wecom:acme")
	// the guide left, whose ids the handover uses and that is asked to
	// move the member.
	Channel string `gorm:"size:32;not null" json:"channel"`
	// HandoverUserID is the leaving guide's id on the channel,
	// ExternalUserID the member's; empty when the member is not a contact
	// on the channel (only the binding moves).
	HandoverUserID string `gorm:"column:handover_userid;size:128;not null" json:"handover_userid"`
	ExternalUserID string `gorm:"column:external_userid;size:128;not null;index" json:"external_userid,omitempty"`
	// ToGuideID is the guide chosen to take over (and bound), with their
	// channel id TakeoverUserID; empty while none is chosen.
	ToGuideID      string `gorm:"size:64;not null;default:'';index" json:"to_guide_id,omitempty"`
	TakeoverUserID string `gorm:"column:takeover_userid;size:128;not null;default:'';index" json:"takeover_userid,omitempty"`
	// Tried lists, comma-separated, the guides the channel refused.
	Tried string `gorm:"size:1000;not null;default:''" json:"tried,omitempty"`
	State string `gorm:"size:16;not null;index" json:"state"`
	// Reason says why the handover failed, or why its last guide was
	// refused; ErrCode is the channel's code, when it gave one.
	Reason  string `gorm:"size:500;not null;default:''" json:"reason,omitempty"`
	ErrCode int    `gorm:"column:errcode;not null;default:0" json:"errcode,omitempty"`
	// Attempts counts claims; a claim after the first may follow a
	// request whose outcome was not learnt.
	Attempts     int        `gorm:"not null;default:0" json:"attempts"`
	ClaimedUntil *time.Time `json:"-"`
	// CheckAt is when a requested handover is next checked with the
	// channel.
	CheckAt *time.Time `gorm:"index" json:"check_at,omitempty"`
	// TakeoverAddKey is the delivery of the channel's "contact added"
	// that the takeover caused (WeCom tells the new guide's side so): it
	// is not a join. A later add of the same pair is one.
	TakeoverAddKey string     `gorm:"size:255;not null;default:''" json:"-"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	SettledAt      *time.Time `json:"settled_at,omitempty"`
}

// TriedGuides returns the guides the channel refused.
func (h *Handover) TriedGuides() []string {
	if h.Tried == "" {
		return nil
	}
	return strings.Split(h.Tried, ",")
}

func init() { RegisterMergeHook(mergeHandovers) }

// mergeHandovers moves a merged member's handovers to the survivor; one
// the survivor has its own of (same guide and brand) ends, failed, saying
// so.
func mergeHandovers(tx *gorm.DB, from, into int64) error {
	now := time.Now().UTC()
	err := tx.Model(&Handover{}).
		Where("member_id = ? AND state IN (?, ?) AND EXISTS (SELECT 1 FROM handovers o WHERE o.member_id = ? AND o.guide_id = handovers.guide_id AND o.brand_id = handovers.brand_id)",
			from, HandoverPending, HandoverRequested, into).
		Updates(map[string]any{"state": HandoverFailed, "reason": "the member was merged into another, whose handover continues",
			"claimed_until": nil, "check_at": nil, "settled_at": now, "updated_at": now}).Error
	if err != nil {
		return translate(err)
	}
	return translate(tx.Model(&Handover{}).
		Where("member_id = ? AND NOT EXISTS (SELECT 1 FROM handovers o WHERE o.member_id = ? AND o.guide_id = handovers.guide_id AND o.brand_id = handovers.brand_id)",
			from, into).
		Update("member_id", into).Error)
}

func migrateHandovers(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&Handover{}); err != nil {
		return err
	}
	if tx.Migrator().HasColumn(&Binding{}, "Remark") {
		return nil
	}
	return tx.Migrator().AddColumn(&Binding{}, "Remark")
}

// defaultWeComInstance is the key of the default WeCom instance
// (adapters.InstanceKey("wecom", "default")), the only one handovers ran
// on before a gateway served several corps.
const defaultWeComInstance = "wecom"

// migrateHandoverInstances makes every handover name its channel
// instance: one without (none is written so) is the default WeCom
// instance's, where handovers of a one-corp gateway ran.
func migrateHandoverInstances(tx *gorm.DB) error {
	return tx.Model(&Handover{}).Where("channel = ''").Update("channel", defaultWeComInstance).Error
}

// CreateHandovers saves new handovers as pending; a member already handed
// over from the guide for the brand keeps their row. It returns how many
// were created.
func (s *Store) CreateHandovers(ctx context.Context, hs []Handover) (int, error) {
	n := 0
	for i := range hs {
		h := hs[i]
		h.ID, h.State, h.Attempts, h.ClaimedUntil = 0, HandoverPending, 0, nil
		if err := ValidateID("guide_id", h.GuideID); err != nil {
			return n, err
		}
		res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&h)
		if res.Error != nil {
			return n, translate(res.Error)
		}
		n += int(res.RowsAffected)
	}
	return n, nil
}

// Handover returns a handover by id.
func (s *Store) Handover(ctx context.Context, id int64) (*Handover, error) {
	return byID[Handover](ctx, s.db, id)
}

// HandoverFilter selects handovers.
type HandoverFilter struct {
	GuideID string
	// Brand, when set, keeps that brand's.
	Brand string
	State string
	// AfterID pages by id.
	AfterID int64
	Limit   int
}

// Handovers lists handovers in id order.
func (s *Store) Handovers(ctx context.Context, f HandoverFilter) ([]Handover, error) {
	q := s.db.WithContext(ctx).Order("id").Limit(Page{Limit: f.Limit}.limit())
	if f.GuideID != "" {
		q = q.Where("guide_id = ?", f.GuideID)
	}
	if f.Brand != "" {
		q = q.Where("brand_id = ?", f.Brand)
	}
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if f.AfterID != 0 {
		q = q.Where("id > ?", f.AfterID)
	}
	var out []Handover
	return out, translate(q.Find(&out).Error)
}

// ClaimHandovers claims up to limit pending handovers of a guide that no
// one holds (or whose holder's lease ran out) for lease, counting an
// attempt on each.
func (s *Store) ClaimHandovers(ctx context.Context, guideID string, lease time.Duration, limit int) ([]Handover, error) {
	now := time.Now().UTC()
	var ids []int64
	err := s.db.WithContext(ctx).Model(&Handover{}).
		Where("guide_id = ? AND state = ? AND (claimed_until IS NULL OR claimed_until < ?)", guideID, HandoverPending, now).
		Order("id").Limit(limit).Pluck("id", &ids).Error
	if err != nil {
		return nil, translate(err)
	}
	var out []Handover
	for _, id := range ids {
		res := s.db.WithContext(ctx).Model(&Handover{}).
			Where("id = ? AND state = ? AND (claimed_until IS NULL OR claimed_until < ?)", id, HandoverPending, now).
			Updates(map[string]any{"claimed_until": now.Add(lease), "attempts": gorm.Expr("attempts + 1"), "updated_at": now})
		if res.Error != nil {
			return out, translate(res.Error)
		}
		if res.RowsAffected == 0 {
			continue // claimed by another worker meanwhile
		}
		h, err := s.Handover(ctx, id)
		if err != nil {
			return out, err
		}
		out = append(out, *h)
	}
	return out, nil
}

// moveHandover updates a handover that is in state from (and, when h
// was claimed, still held by that claim). It reports whether it did.
func (s *Store) moveHandover(ctx context.Context, h *Handover, from string, claimed bool, set map[string]any) (bool, error) {
	set["updated_at"] = time.Now().UTC()
	q := s.db.WithContext(ctx).Model(&Handover{}).Where("id = ? AND state = ?", h.ID, from)
	if claimed {
		q = q.Where("attempts = ?", h.Attempts)
	}
	res := q.Updates(set)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// SetHandoverTarget records the guide chosen to take over a claimed
// pending handover.
func (s *Store) SetHandoverTarget(ctx context.Context, h *Handover, toGuideID, takeoverUserID string) (bool, error) {
	ok, err := s.moveHandover(ctx, h, HandoverPending, true, map[string]any{"to_guide_id": toGuideID, "takeover_userid": takeoverUserID})
	if ok {
		h.ToGuideID, h.TakeoverUserID = toGuideID, takeoverUserID
	}
	return ok, err
}

// MarkHandoverRequested moves a claimed pending handover to requested:
// the channel accepted it; it is checked again at checkAt.
func (s *Store) MarkHandoverRequested(ctx context.Context, h *Handover, checkAt time.Time) (bool, error) {
	return s.moveHandover(ctx, h, HandoverPending, true, map[string]any{"state": HandoverRequested,
		"claimed_until": nil, "check_at": checkAt.UTC()})
}

// SettleHandover ends a handover in state from (claimed, when from is
// pending) as transferred or failed, with the reason and code for an
// operator.
func (s *Store) SettleHandover(ctx context.Context, h *Handover, from, state, reason string, code int) (bool, error) {
	now := time.Now().UTC()
	return s.moveHandover(ctx, h, from, from == HandoverPending, map[string]any{"state": state, "reason": truncate(reason, 500),
		"errcode": code, "claimed_until": nil, "check_at": nil, "settled_at": now})
}

// RetargetHandover sends a handover in state from (claimed, when from is
// pending) back to pending without a guide: the channel refused its guide
// (added to Tried) for reason.
func (s *Store) RetargetHandover(ctx context.Context, h *Handover, from, reason string, code int) (bool, error) {
	tried := h.TriedGuides()
	if h.ToGuideID != "" {
		tried = append(tried, h.ToGuideID)
	}
	return s.moveHandover(ctx, h, from, from == HandoverPending, map[string]any{"to_guide_id": "", "takeover_userid": "",
		"tried": truncate(strings.Join(tried, ","), 1000), "state": HandoverPending, "reason": truncate(reason, 500),
		"errcode": code, "claimed_until": nil, "check_at": nil})
}

// ReleaseHandover gives up the claim of a pending handover (the channel
// could not be reached), noting why.
func (s *Store) ReleaseHandover(ctx context.Context, h *Handover, reason string) (bool, error) {
	return s.moveHandover(ctx, h, HandoverPending, true, map[string]any{"claimed_until": nil, "reason": truncate(reason, 500)})
}

// DeferHandoverCheck sets when a requested handover is checked next.
func (s *Store) DeferHandoverCheck(ctx context.Context, h *Handover, at time.Time) (bool, error) {
	return s.moveHandover(ctx, h, HandoverRequested, false, map[string]any{"check_at": at.UTC()})
}

// DueHandovers returns the guides with pending handovers that no one
// holds and that were last touched before idle, and the guides with
// requested handovers due for a check by now.
func (s *Store) DueHandovers(ctx context.Context, now, idle time.Time, limit int) (pending, requested []string, err error) {
	db := s.db.WithContext(ctx)
	err = db.Model(&Handover{}).Distinct("guide_id").
		Where("state = ? AND (claimed_until IS NULL OR claimed_until < ?) AND updated_at < ?", HandoverPending, now.UTC(), idle.UTC()).
		Order("guide_id").Limit(limit).Pluck("guide_id", &pending).Error
	if err != nil {
		return nil, nil, translate(err)
	}
	err = db.Model(&Handover{}).Distinct("guide_id").Where("state = ? AND check_at <= ?", HandoverRequested, now.UTC()).
		Order("guide_id").Limit(limit).Pluck("guide_id", &requested).Error
	return pending, requested, translate(err)
}

// RequestedHandover returns the requested handover of a member (by their
// channel id) to a takeover user.
func (s *Store) RequestedHandover(ctx context.Context, channel, takeoverUserID, externalUserID string) (*Handover, error) {
	var h Handover
	err := s.db.WithContext(ctx).Where("channel = ? AND takeover_userid = ? AND external_userid = ? AND state = ?",
		channel, takeoverUserID, externalUserID, HandoverRequested).Order("id DESC").Take(&h).Error
	if err != nil {
		return nil, translate(err)
	}
	return &h, nil
}

// TakeoverAdd returns the handover (requested or transferred) of a member,
// by their channel id, to a takeover user whose "contact added" the
// delivery key is: the first such add after the handover is marked with
// key, and a retry of that delivery finds it again. Any later add of the
// pair (the member deleted the guide and added them again) is not the
// takeover's: ErrNotFound.
func (s *Store) TakeoverAdd(ctx context.Context, channel, takeoverUserID, externalUserID, key string) (*Handover, error) {
	db := s.db.WithContext(ctx)
	for range 3 {
		var h Handover
		err := db.Where("channel = ? AND takeover_userid = ? AND external_userid = ? AND state IN (?, ?)",
			channel, takeoverUserID, externalUserID, HandoverRequested, HandoverTransferred).Order("id DESC").Take(&h).Error
		if err != nil {
			return nil, translate(err)
		}
		switch h.TakeoverAddKey {
		case key:
			return &h, nil
		case "":
		default:
			return nil, ErrNotFound
		}
		res := db.Model(&Handover{}).Where("id = ? AND takeover_add_key = ''", h.ID).Update("takeover_add_key", key)
		if res.Error != nil {
			return nil, translate(res.Error)
		}
		if res.RowsAffected == 1 {
			h.TakeoverAddKey = key
			return &h, nil
		}
		// Another delivery marked it meanwhile: look again.
	}
	return nil, ErrNotFound
}

// CurrentBinding returns a member's current binding for a brand.
func (s *Store) CurrentBinding(ctx context.Context, memberID int64, brand string) (*Binding, error) {
	var b Binding
	err := s.db.WithContext(ctx).Where("member_id = ? AND brand_id = ? AND ended_at IS NULL", memberID, brand).Take(&b).Error
	if err != nil {
		return nil, translate(err)
	}
	return &b, nil
}

// SetBindingRemark records the remark the guide of a binding gave the
// member on their channel.
func (s *Store) SetBindingRemark(ctx context.Context, bindingID int64, remark string) error {
	if err := limitText("remark", remark, 200); err != nil {
		return err
	}
	return translate(s.db.WithContext(ctx).Model(&Binding{}).Where("id = ?", bindingID).Update("remark", remark).Error)
}

// SetMemberName renames a member as brand knows them (the name is the
// brand's membership's); with brand "", the name given with no brand.
func (s *Store) SetMemberName(ctx context.Context, id int64, brand, name string) error {
	if err := limitText("name", name, 200); err != nil {
		return err
	}
	if brand != "" {
		res := s.db.WithContext(ctx).Model(&Membership{}).Where("member_id = ? AND brand_id = ?", id, brand).Update("name", name)
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return nil
	}
	res := s.db.WithContext(ctx).Model(&Member{}).Where("id = ?", id).
		Updates(map[string]any{"name": name, "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}
