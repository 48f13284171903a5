package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Customer group states.
const (
	GroupActive    = "active"
	GroupDismissed = "dismissed"
)

// CustomerGroup is a group chat of a channel's contacts owned by a guide
// (a WeCom 客户群): its store and brand are its owner's.
type CustomerGroup struct {
	Channel string `gorm:"primaryKey;size:80" json:"channel"`
	ChatID  string `gorm:"primaryKey;size:128" json:"chat_id"`
	BrandID string `gorm:"size:64;index" json:"brand"`
	Name    string `gorm:"size:200" json:"name"`
	Notice  string `gorm:"size:2000" json:"notice,omitempty"`
	// OwnerID is the owner's id on the channel; GuideID and StoreID the
	// guide it is and their store, when the owner is a guide.
	OwnerID     string     `gorm:"size:128" json:"owner_id"`
	GuideID     string     `gorm:"size:64;index" json:"guide_id,omitempty"`
	StoreID     string     `gorm:"size:64;index" json:"store_id,omitempty"`
	State       string     `gorm:"size:16;not null" json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	DismissedAt *time.Time `json:"dismissed_at,omitempty"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// CustomerGroupMember is one member of a customer group, present
// (LeftAt nil) or gone. Contacts are matched to members by their
// channel identity.
type CustomerGroupMember struct {
	Channel   string     `gorm:"primaryKey;size:80" json:"-"`
	ChatID    string     `gorm:"primaryKey;size:128" json:"-"`
	UserID    string     `gorm:"primaryKey;size:128" json:"user_id"`
	Guide     bool       `json:"guide"`
	MemberID  *int64     `gorm:"index" json:"member_id,omitempty"`
	Name      string     `gorm:"size:200" json:"name,omitempty"`
	JoinScene int        `json:"join_scene"`
	JoinedAt  time.Time  `json:"joined_at"`
	LeftAt    *time.Time `json:"left_at,omitempty"`
}

// CustomerGroupSend is a message sent to a customer group on a day (in
// the channel's time zone): WeCom lets a group receive one a day.
type CustomerGroupSend struct {
	Channel string `gorm:"primaryKey;size:80"`
	ChatID  string `gorm:"primaryKey;size:128"`
	Day     string `gorm:"primaryKey;size:10"`
	Key     string `gorm:"size:200;index"`
	MsgID   string `gorm:"size:128"`
	// AttemptedAt is when the key's first call to the channel for the
	// group began, recorded before the call: with no MsgID, its outcome
	// is not known (the process may have died with the channel's answer).
	AttemptedAt *time.Time
	// Owner is whom the task went through; Delivery what became of it
	// for the group (pending until the owner sends it, delivered or
	// failed), as last checked at CheckedAt (DeliveredAt: when the
	// owner sent it).
	Owner       string `gorm:"size:128"`
	Delivery    string `gorm:"size:16;not null;default:''"`
	DeliveredAt *time.Time
	CheckedAt   *time.Time
	CreatedAt   time.Time
}

// migrateGroupSendAttempts adds when a group send began calling its
// channel, and what became of its task (migration 0041).
func migrateGroupSendAttempts(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&CustomerGroupSend{}); err != nil {
		return fmt.Errorf("adding group send attempts: %w", err)
	}
	// A send reserved before without its channel's id may have called
	// the channel: a retry asks it first.
	if err := tx.Exec("UPDATE customer_group_sends SET attempted_at = created_at WHERE msg_id = '' AND attempted_at IS NULL").Error; err != nil {
		return fmt.Errorf("marking earlier group sends attempted: %w", err)
	}
	return nil
}

func migrateCustomerGroups(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&CustomerGroup{}, &CustomerGroupMember{}, &CustomerGroupSend{}); err != nil {
		return fmt.Errorf("creating customer groups: %w", err)
	}
	return nil
}

// GroupChange is what saving a group changed in its members.
type GroupChange struct {
	Joined []string
	Left   []string
}

// SaveCustomerGroup writes a group as it is now with its present
// members: those new join (or join again), those missing leave (at).
func (s *Store) SaveCustomerGroup(ctx context.Context, g *CustomerGroup, members []CustomerGroupMember, at time.Time) (*GroupChange, error) {
	ch := &GroupChange{}
	at = utc(at)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		g.State, g.DismissedAt, g.UpdatedAt = GroupActive, nil, at
		g.CreatedAt = utc(g.CreatedAt)
		if err := tx.Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "channel"}, {Name: "chat_id"}},
			DoUpdates: clause.AssignmentColumns([]string{"brand_id", "name", "notice", "owner_id", "guide_id", "store_id", "state", "dismissed_at", "updated_at"}),
		}).Create(g).Error; err != nil {
			return err
		}
		var have []CustomerGroupMember
		if err := tx.Where("channel = ? AND chat_id = ?", g.Channel, g.ChatID).Find(&have).Error; err != nil {
			return err
		}
		byID := map[string]*CustomerGroupMember{}
		for i := range have {
			byID[have[i].UserID] = &have[i]
		}
		present := map[string]bool{}
		for _, m := range members {
			present[m.UserID] = true
			m.Channel, m.ChatID, m.JoinedAt, m.LeftAt = g.Channel, g.ChatID, utc(m.JoinedAt), nil
			old := byID[m.UserID]
			if old == nil || old.LeftAt != nil {
				ch.Joined = append(ch.Joined, m.UserID)
			}
			if err := tx.Clauses(clause.OnConflict{
				Columns:   []clause.Column{{Name: "channel"}, {Name: "chat_id"}, {Name: "user_id"}},
				DoUpdates: clause.AssignmentColumns([]string{"guide", "member_id", "name", "join_scene", "joined_at", "left_at"}),
			}).Create(&m).Error; err != nil {
				return err
			}
		}
		for _, h := range have {
			if h.LeftAt == nil && !present[h.UserID] {
				ch.Left = append(ch.Left, h.UserID)
				if err := tx.Model(&CustomerGroupMember{}).Where("channel = ? AND chat_id = ? AND user_id = ?", g.Channel, g.ChatID, h.UserID).
					Update("left_at", at).Error; err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, translate(err)
	}
	return ch, nil
}

// DismissCustomerGroup records a group dismissed: its members leave. A
// group never saved is ErrNotFound.
func (s *Store) DismissCustomerGroup(ctx context.Context, channel, chatID string, at time.Time) error {
	at = utc(at)
	return translate(s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&CustomerGroup{}).Where("channel = ? AND chat_id = ?", channel, chatID).
			Updates(map[string]any{"state": GroupDismissed, "dismissed_at": at, "updated_at": at})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return tx.Model(&CustomerGroupMember{}).Where("channel = ? AND chat_id = ? AND left_at IS NULL", channel, chatID).
			Update("left_at", at).Error
	}))
}

// CustomerGroup returns one group.
func (s *Store) CustomerGroup(ctx context.Context, channel, chatID string) (*CustomerGroup, error) {
	var g CustomerGroup
	if err := s.db.WithContext(ctx).Where("channel = ? AND chat_id = ?", channel, chatID).Take(&g).Error; err != nil {
		return nil, translate(err)
	}
	return &g, nil
}

// GroupFilter selects customer groups.
type GroupFilter struct {
	Brand   string
	StoreID string
	GuideID string
	Channel string
	// State is active, dismissed or "" for both.
	State string
	// After pages by chat id; Limit default 100, at most 1000.
	After string
	Limit int
}

// CustomerGroups lists groups by chat id.
func (s *Store) CustomerGroups(ctx context.Context, f GroupFilter) ([]CustomerGroup, error) {
	q := s.db.WithContext(ctx).Model(&CustomerGroup{})
	for col, v := range map[string]string{"brand_id": f.Brand, "store_id": f.StoreID, "guide_id": f.GuideID, "channel": f.Channel, "state": f.State} {
		if v != "" {
			q = q.Where(col+" = ?", v)
		}
	}
	if f.After != "" {
		q = q.Where("chat_id > ?", f.After)
	}
	var out []CustomerGroup
	err := q.Order("chat_id").Limit(Page{Limit: f.Limit}.limit()).Find(&out).Error
	return out, translate(err)
}

// CustomerGroupMembers lists a group's present members, guides first.
func (s *Store) CustomerGroupMembers(ctx context.Context, channel, chatID string) ([]CustomerGroupMember, error) {
	var out []CustomerGroupMember
	err := s.db.WithContext(ctx).Where("channel = ? AND chat_id = ? AND left_at IS NULL", channel, chatID).
		Order("guide DESC, joined_at, user_id").Find(&out).Error
	return out, translate(err)
}

// GroupStats counts a group's present members and contacts and the
// joins and leaves from since on.
type GroupStats struct {
	Members  int64 `json:"members"`
	Contacts int64 `json:"contacts"`
	Joins    int64 `json:"joins"`
	Leaves   int64 `json:"leaves"`
}

// CustomerGroupStats counts a group's members, joins and leaves.
func (s *Store) CustomerGroupStats(ctx context.Context, channel, chatID string, since time.Time) (*GroupStats, error) {
	var st GroupStats
	err := s.db.WithContext(ctx).Model(&CustomerGroupMember{}).Where("channel = ? AND chat_id = ?", channel, chatID).
		Select(`COALESCE(SUM(CASE WHEN left_at IS NULL THEN 1 ELSE 0 END), 0) AS members,
			COALESCE(SUM(CASE WHEN left_at IS NULL AND NOT guide THEN 1 ELSE 0 END), 0) AS contacts,
			COALESCE(SUM(CASE WHEN joined_at >= ? THEN 1 ELSE 0 END), 0) AS joins,
			COALESCE(SUM(CASE WHEN left_at >= ? THEN 1 ELSE 0 END), 0) AS leaves`, utc(since), utc(since)).
		Scan(&st).Error
	return &st, translate(err)
}

// GroupReservation is a group's send of a day as ReserveGroupSend took
// it: fresh (both fields zero), sent already (MsgID), or attempted with
// its outcome unknown (Unconfirmed).
type GroupReservation struct {
	// MsgID is the channel's id of the send when it went out already,
	// Delivery what became of it (GroupSendDelivery).
	MsgID    string
	Delivery string
	// AttemptedAt is when an earlier attempt of the key began calling
	// the channel; zero when none did.
	AttemptedAt time.Time
}

// Unconfirmed reports whether an earlier attempt called the channel
// and its answer was never recorded: the channel may have the send.
func (r GroupReservation) Unconfirmed() bool { return r.MsgID == "" && !r.AttemptedAt.IsZero() }

// ReserveGroupSend takes a group's send of day for key: ErrConflict when
// the day's send is another key's. Taking it again for the same key is
// a retry: the reservation says whether the send went out already, or
// was attempted without its outcome recorded.
func (s *Store) ReserveGroupSend(ctx context.Context, channel, chatID, day, key string) (GroupReservation, error) {
	row := CustomerGroupSend{Channel: channel, ChatID: chatID, Day: day, Key: key, CreatedAt: utc(time.Now())}
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
	if res.Error != nil {
		return GroupReservation{}, translate(res.Error)
	}
	if res.RowsAffected == 1 {
		return GroupReservation{}, nil
	}
	var have CustomerGroupSend
	if err := s.db.WithContext(ctx).Where("channel = ? AND chat_id = ? AND day = ?", channel, chatID, day).Take(&have).Error; err != nil {
		return GroupReservation{}, translate(err)
	}
	if have.Key != key {
		return GroupReservation{}, fmt.Errorf("group %s already has its message of %s: %w", chatID, day, ErrConflict)
	}
	r := GroupReservation{MsgID: have.MsgID, Delivery: have.Delivery}
	if have.AttemptedAt != nil {
		r.AttemptedAt = have.AttemptedAt.UTC()
	}
	return r, nil
}

// AttemptGroupSends records that key's send to the groups of day is
// about to call the channel, at: the first attempt's time is kept, so
// that a retry looks for the channel's task from then on. Only the key's
// reservations without a channel id change.
func (s *Store) AttemptGroupSends(ctx context.Context, channel string, chatIDs []string, day, key string, at time.Time) error {
	if len(chatIDs) == 0 {
		return nil
	}
	return translate(s.db.WithContext(ctx).Model(&CustomerGroupSend{}).
		Where("channel = ? AND chat_id IN ? AND day = ? AND key = ? AND msg_id = '' AND attempted_at IS NULL", channel, chatIDs, day, key).
		Update("attempted_at", utc(at)).Error)
}

// ReleaseGroupSend gives back a reservation whose send failed.
func (s *Store) ReleaseGroupSend(ctx context.Context, channel, chatID, day, key string) error {
	return translate(s.db.WithContext(ctx).Where("channel = ? AND chat_id = ? AND day = ? AND key = ?", channel, chatID, day, key).
		Delete(&CustomerGroupSend{}).Error)
}

// SetGroupSendMsgID records the channel's id of a day's send, the task
// of owner: its delivery is pending until the owner sends it.
func (s *Store) SetGroupSendMsgID(ctx context.Context, channel, chatID, day, owner, msgID string) error {
	return translate(s.db.WithContext(ctx).Model(&CustomerGroupSend{}).Where("channel = ? AND chat_id = ? AND day = ?", channel, chatID, day).
		Updates(map[string]any{"msg_id": msgID, "owner": owner, "delivery": GroupDeliveryPending}).Error)
}

// GroupSendStat counts a workflow step's done visits that sent to
// groups by what became of their tasks: Delivery is delivered when an
// owner sent it to at least one group, pending when none did and some
// may still, failed when none will.
type GroupSendStat struct {
	Step     string
	Delivery string
	N        int64
}

// GroupSendStatsOf counts, for a workflow's done step visits of the
// funnel filter, the visits whose group sends (keyed by the visit:
// wf:<run>:<step>:<visit>) were delivered, are pending or failed.
func (s *Store) GroupSendStatsOf(ctx context.Context, brand, workflow string, f FunnelFilter) ([]GroupSendStat, error) {
	var out []GroupSendStat
	where, args := f.stepWhere(brand, workflow)
	err := s.db.WithContext(ctx).Raw(`SELECT step, delivery, COUNT(*) AS n FROM (
			SELECT s.step_id AS step, CASE
				WHEN SUM(CASE WHEN g.delivery = ? THEN 1 ELSE 0 END) > 0 THEN ?
				WHEN SUM(CASE WHEN g.delivery = ? THEN 1 ELSE 0 END) > 0 THEN ?
				ELSE ? END AS delivery
			FROM run_steps s
			JOIN customer_group_sends g ON g.key = 'wf:' || s.run_id || ':' || s.step_id || ':' || s.visit AND g.msg_id <> '' AND g.delivery <> ''
			WHERE `+where+` AND s.state = ?
			GROUP BY s.step_id, s.run_id, s.visit) v
		GROUP BY step, delivery ORDER BY step, delivery`,
		append(append([]any{GroupDeliveryDelivered, GroupDeliveryDelivered, GroupDeliveryPending, GroupDeliveryPending, GroupDeliveryFailed}, args...), StepDone)...).
		Scan(&out).Error
	return out, translate(err)
}

// Deliveries of a group send (CustomerGroupSend.Delivery).
const (
	GroupDeliveryPending   = "pending"
	GroupDeliveryDelivered = "delivered"
	GroupDeliveryFailed    = "failed"
)

// GroupSendsToCheck lists sends still pending that were created from
// since on and not checked since checkedBefore, the least recently
// checked first, at most limit (default 100, at most 1000).
func (s *Store) GroupSendsToCheck(ctx context.Context, since, checkedBefore time.Time, limit int) ([]CustomerGroupSend, error) {
	var out []CustomerGroupSend
	err := s.db.WithContext(ctx).Where("delivery = ? AND msg_id <> '' AND created_at >= ? AND (checked_at IS NULL OR checked_at < ?)",
		GroupDeliveryPending, utc(since), utc(checkedBefore)).
		Order("checked_at IS NOT NULL, checked_at, created_at").Limit(Page{Limit: limit}.limit()).Find(&out).Error
	return out, translate(err)
}

// SetGroupSendDeliveries records what became of the channel's task
// msgID for its groups (by chat id), checked at; groups not named stay
// as they were, checked.
func (s *Store) SetGroupSendDeliveries(ctx context.Context, channel, msgID string, deliveries map[string]string, at time.Time) error {
	at = utc(at)
	return translate(s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&CustomerGroupSend{}).Where("channel = ? AND msg_id = ?", channel, msgID).
			Update("checked_at", at).Error; err != nil {
			return err
		}
		for chatID, d := range deliveries {
			up := map[string]any{"delivery": d}
			if d == GroupDeliveryDelivered {
				up["delivered_at"] = at
			}
			if err := tx.Model(&CustomerGroupSend{}).Where("channel = ? AND msg_id = ? AND chat_id = ? AND delivery = ?", channel, msgID, chatID, GroupDeliveryPending).
				Updates(up).Error; err != nil {
				return err
			}
		}
		return nil
	}))
}
