package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/scrmgw/scrmgw/events"
)

// MemberExport is everything stored about a member for a brand (or, for
// brand "", every brand): what GET /members/{id}/export answers.
type MemberExport struct {
	MemberID int64  `json:"member_id"`
	Brand    string `json:"brand,omitempty"`
	// Name is the name as the brand knows it; Phone the E.164 number
	// (callers mask it unless allowed); TimeZone the member's own.
	Name        string            `json:"name,omitempty"`
	Phone       string            `json:"phone,omitempty"`
	TimeZone    string            `json:"time_zone,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	Memberships []Membership      `json:"memberships"`
	Identities  []Identity        `json:"identities"`
	Bindings    []Binding         `json:"bindings"`
	Tags        []ExportTag       `json:"tags"`
	Consent     []MemberConsent   `json:"consent"`
	CrossBrand  []CrossBrandOptIn `json:"cross_brand"`
	Events      []ExportEvent     `json:"events"`
	Orders      []Order           `json:"orders"`
	Coupons     []IssuedCoupon    `json:"coupons"`
	Points      []PointsLine      `json:"points"`
	Runs        []WorkflowRun     `json:"runs"`
	Messages    []ExportMessage   `json:"messages"`
	// Received are the messages the member wrote to the brand
	// (message.received events: also in Events, with their texts).
	Received   []ExportReceived `json:"received"`
	GuideTasks []GuideTask      `json:"guide_tasks"`
	Handoffs   []Handoff        `json:"handoffs"`
	// Live are the brand's live sessions the member was announced,
	// joined, left or bought in, with the orders counted in each.
	Live []ExportLive `json:"live"`
	// Handovers are the member's moves from a guide who left to another;
	// Stats their purchase figures per brand.
	Handovers []Handover    `json:"handovers"`
	Stats     []MemberStats `json:"stats"`
	// Groups are the brand's customer groups (group chats) the member is
	// or was in, as the channel reported them.
	Groups []ExportGroup `json:"groups"`
	// Moments are the brand's moment tasks whose posts the channel said
	// the member could see (by one of their ids there).
	Moments  []ExportMoment  `json:"moments"`
	Erasures []MemberErasure `json:"erasures"`
}

// ExportMoment is a moment task a member could see a guide's post of:
// the task, its channel and brand, the guide who posted, and the
// member's id there.
type ExportMoment struct {
	TaskID     int64     `json:"task_id"`
	Channel    string    `json:"channel"`
	Brand      string    `json:"brand"`
	Text       string    `json:"text,omitempty"`
	Guide      string    `json:"guide"`
	ExternalID string    `json:"external_userid"`
	CreatedAt  time.Time `json:"created_at"`
}

// ExportGroup is the member in a customer group: the group's channel, id,
// brand and name, their id and name in it, when they joined and left.
type ExportGroup struct {
	Channel  string     `json:"channel"`
	ChatID   string     `json:"chat_id"`
	Brand    string     `json:"brand"`
	Group    string     `json:"group,omitempty"`
	UserID   string     `json:"user_id"`
	Name     string     `json:"name,omitempty"`
	JoinedAt time.Time  `json:"joined_at"`
	LeftAt   *time.Time `json:"left_at,omitempty"`
}

// ExportLive is the member's part in a live session: the store and guide
// credited, when they were announced it, joined, last left and first
// ordered, and their orders placed during it.
type ExportLive struct {
	Session   string            `json:"session"`
	Brand     string            `json:"brand"`
	Title     string            `json:"title"`
	StartsAt  time.Time         `json:"starts_at"`
	StoreID   string            `json:"store_id,omitempty"`
	GuideID   string            `json:"guide_id,omitempty"`
	InvitedAt *time.Time        `json:"invited_at,omitempty"`
	JoinedAt  *time.Time        `json:"joined_at,omitempty"`
	LeftAt    *time.Time        `json:"left_at,omitempty"`
	OrderedAt *time.Time        `json:"ordered_at,omitempty"`
	Orders    []ExportLiveOrder `json:"orders"`
}

// ExportLiveOrder is an order counted in a live session: OrderID is the
// brand's order number (as in orders[].order_id).
type ExportLiveOrder struct {
	OrderID    string `json:"order_id"`
	StoreID    string `json:"store_id,omitempty"`
	GuideID    string `json:"guide_id,omitempty"`
	TotalCents int64  `json:"total_cents"`
}

// ExportTag is one tag of a member with a brand.
type ExportTag struct {
	Brand     string    `json:"brand"`
	Tag       string    `json:"tag"`
	CreatedAt time.Time `json:"created_at"`
}

// ExportEvent is an event of the log with its attributes as JSON.
type ExportEvent struct {
	ID         int64           `json:"id"`
	Type       string          `json:"type"`
	Brand      string          `json:"brand,omitempty"`
	Source     string          `json:"source"`
	Attributes json.RawMessage `json:"attributes,omitempty"`
	OccurredAt time.Time       `json:"occurred_at"`
}

// ExportMessage is a message sent (or to be sent) to the member, or
// about them to their guide (To "guide": a handoff's relay of what they
// wrote, a task), with every attempt to send it.
type ExportMessage struct {
	ID      int64  `json:"id"`
	Brand   string `json:"brand,omitempty"`
	To      string `json:"to"`
	Channel string `json:"channel"`
	Kind    string `json:"kind"`
	State   string `json:"state"`
	// Failure is the failure's code, Error the channel's last answer.
	Failure   string          `json:"failure,omitempty"`
	Error     string          `json:"error,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	SentAt    *time.Time      `json:"sent_at,omitempty"`
	Attempts  []ExportAttempt `json:"attempts"`
}

// ExportAttempt is one attempt to send a message.
type ExportAttempt struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	// Outcome is sent, retry or failed.
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

// ExportReceived is a message the member wrote.
type ExportReceived struct {
	EventID int64     `json:"event_id"`
	Brand   string    `json:"brand,omitempty"`
	Channel string    `json:"channel"`
	Kind    string    `json:"kind,omitempty"`
	Text    string    `json:"text,omitempty"`
	At      time.Time `json:"at"`
}

// ExportMember returns everything stored about a member for brand ("" for
// every brand). A member unknown to brand is ErrNotFound.
func (s *Store) ExportMember(ctx context.Context, id int64, brand string) (*MemberExport, error) {
	v, err := s.Member(ctx, id, brand)
	if err != nil {
		return nil, err
	}
	id = v.ID
	x := &MemberExport{MemberID: id, Brand: brand, Name: v.Name, Phone: v.Phone, TimeZone: v.TimeZone, CreatedAt: v.CreatedAt,
		Memberships: v.Memberships, Identities: []Identity{}}
	for _, mi := range v.Identities {
		x.Identities = append(x.Identities, Identity{Channel: mi.Channel, ExternalID: mi.ExternalID})
	}
	db := s.db.WithContext(ctx)
	// scoped selects the member's rows, of brand when one is given.
	scoped := func(col string) func() *gorm.DB {
		return func() *gorm.DB {
			q := db.Where(col+" = ?", id)
			if brand != "" {
				q = q.Where("brand_id = ?", brand)
			}
			return q
		}
	}
	q := scoped("member_id")
	if err := q().Order("created_at, id").Find(&x.Bindings).Error; err != nil {
		return nil, translate(err)
	}
	var tags []MemberTag
	if err := q().Order("brand_id, tag").Find(&tags).Error; err != nil {
		return nil, translate(err)
	}
	for _, t := range tags {
		x.Tags = append(x.Tags, ExportTag{Brand: t.BrandID, Tag: t.Tag, CreatedAt: t.CreatedAt})
	}
	cq := db.Where("member_id = ?", id)
	if brand != "" {
		cq = cq.Where("brand_id IN ?", []string{brand, ConsentAll})
	}
	if err := cq.Order("brand_id, channel").Find(&x.Consent).Error; err != nil {
		return nil, translate(err)
	}
	if err := q().Order("brand_id").Find(&x.CrossBrand).Error; err != nil {
		return nil, translate(err)
	}
	// Messages that could not be attributed to one brand (brand "") are
	// in the export of every brand of the person (docs/security.md).
	var evs []Event
	eq := db.Where("member_id = ?", id)
	if brand != "" {
		eq = eq.Where("brand_id = ? OR (brand_id = '' AND type = ?)", brand, events.TypeMessageReceived)
	}
	if err := eq.Order("occurred_at, id").Find(&evs).Error; err != nil {
		return nil, translate(err)
	}
	for _, e := range evs {
		ev := ExportEvent{ID: e.ID, Type: e.Type, Brand: e.BrandID, Source: e.Source, OccurredAt: e.OccurredAt}
		if json.Valid([]byte(e.Payload)) {
			ev.Attributes = json.RawMessage(e.Payload)
		}
		x.Events = append(x.Events, ev)
		if e.Type == events.TypeMessageReceived {
			var body struct{ Kind, Text string }
			_ = json.Unmarshal([]byte(e.Payload), &body) // stripped or odd: no text
			x.Received = append(x.Received, ExportReceived{EventID: e.ID, Brand: e.BrandID, Channel: e.Source, Kind: body.Kind, Text: body.Text, At: e.OccurredAt})
		}
	}
	if x.Orders, err = s.MemberOrders(ctx, id, brand, 1000); err != nil {
		return nil, err
	}
	if x.Coupons, err = s.MemberCoupons(ctx, id, brand); err != nil {
		return nil, err
	}
	if err := q().Order("created_at, id").Find(&x.Points).Error; err != nil {
		return nil, translate(err)
	}
	if err := q().Order("started_at, id").Find(&x.Runs).Error; err != nil {
		return nil, translate(err)
	}
	var msgs []OutboxMessage
	mq := db.Where("member_id = ?", id)
	if brand != "" {
		mq = mq.Where("brand_id IN ?", []string{brand, ""})
	}
	if err := mq.Order("created_at, id").Find(&msgs).Error; err != nil {
		return nil, translate(err)
	}
	attempts, err := s.exportAttempts(ctx, msgs)
	if err != nil {
		return nil, err
	}
	own := map[string]bool{}
	for _, mi := range x.Identities {
		own[mi.ExternalID] = true
	}
	for _, m := range msgs {
		em := ExportMessage{ID: m.ID, Brand: m.BrandID, To: "member", Channel: m.Channel, Kind: m.Kind, State: m.State, Failure: m.Failure,
			Error: m.LastError, CreatedAt: m.CreatedAt, SentAt: m.SentAt, Attempts: attempts[m.ID]}
		if m.GuideID != "" && m.Recipient != "" && !own[m.Recipient] {
			em.To = "guide"
		}
		if json.Valid(m.Payload) {
			em.Payload = json.RawMessage(m.Payload)
		}
		if em.Attempts == nil {
			em.Attempts = []ExportAttempt{}
		}
		x.Messages = append(x.Messages, em)
	}
	if err := q().Order("created_at, id").Find(&x.GuideTasks).Error; err != nil {
		return nil, translate(err)
	}
	if err := q().Order("opened_at, id").Find(&x.Handoffs).Error; err != nil {
		return nil, translate(err)
	}
	if err := q().Order("created_at, id").Find(&x.Handovers).Error; err != nil {
		return nil, translate(err)
	}
	if err := q().Order("brand_id").Find(&x.Stats).Error; err != nil {
		return nil, translate(err)
	}
	if x.Live, err = s.exportLive(ctx, id, brand); err != nil {
		return nil, err
	}
	if x.Groups, err = s.exportGroups(ctx, id, x.Identities, brand); err != nil {
		return nil, err
	}
	if x.Moments, err = s.exportMoments(ctx, x.Identities, brand); err != nil {
		return nil, err
	}
	if err := q().Order("erased_at, id").Find(&x.Erasures).Error; err != nil {
		return nil, translate(err)
	}
	emptySlices(x)
	return x, nil
}

// exportAttempts returns the send attempts of msgs by outbox id.
func (s *Store) exportAttempts(ctx context.Context, msgs []OutboxMessage) (map[int64][]ExportAttempt, error) {
	out := map[int64][]ExportAttempt{}
	for start := 0; start < len(msgs); start += 500 {
		ids := make([]int64, 0, 500)
		for _, m := range msgs[start:min(start+500, len(msgs))] {
			ids = append(ids, m.ID)
		}
		var rows []SendAttempt
		if err := s.db.WithContext(ctx).Where("outbox_id IN ?", ids).Order("outbox_id, id").Find(&rows).Error; err != nil {
			return nil, translate(err)
		}
		for _, a := range rows {
			out[a.OutboxID] = append(out[a.OutboxID], ExportAttempt{Attempt: a.Attempt, At: a.At, Outcome: a.Outcome, Error: a.Error})
		}
	}
	return out, nil
}

// exportLive returns the member's live sessions of brand ("" every
// brand), by start: their audience rows and the orders counted in each (a
// session with orders and no audience row, of a member merged into them,
// too).
func (s *Store) exportLive(ctx context.Context, id int64, brand string) ([]ExportLive, error) {
	db := s.db.WithContext(ctx)
	var aud []LiveAudience
	aq := db.Where("member_id = ?", id)
	if brand != "" {
		aq = aq.Where("brand_id = ?", brand)
	}
	if err := aq.Find(&aud).Error; err != nil {
		return nil, translate(err)
	}
	var los []LiveOrder
	if err := db.Where("member_id = ?", id).Order("order_id").Find(&los).Error; err != nil {
		return nil, translate(err)
	}
	ids := map[int64]bool{}
	for _, a := range aud {
		ids[a.SessionID] = true
	}
	for _, lo := range los {
		ids[lo.SessionID] = true
	}
	if len(ids) == 0 {
		return nil, nil
	}
	sessionIDs := make([]int64, 0, len(ids))
	for sid := range ids {
		sessionIDs = append(sessionIDs, sid)
	}
	var sessions []LiveSession
	sq := db.Where("id IN ?", sessionIDs)
	if brand != "" {
		sq = sq.Where("brand_id = ?", brand)
	}
	if err := sq.Order("starts_at, id").Find(&sessions).Error; err != nil {
		return nil, translate(err)
	}
	orderNos := map[int64]string{}
	if len(los) > 0 {
		orderIDs := make([]int64, len(los))
		for i, lo := range los {
			orderIDs[i] = lo.OrderID
		}
		var os []Order
		if err := db.Select("id", "order_no").Where("id IN ?", orderIDs).Find(&os).Error; err != nil {
			return nil, translate(err)
		}
		for _, o := range os {
			orderNos[o.ID] = o.OrderNo
		}
	}
	out := make([]ExportLive, 0, len(sessions))
	for _, l := range sessions {
		x := ExportLive{Session: l.Key, Brand: l.BrandID, Title: l.Title, StartsAt: l.StartsAt, Orders: []ExportLiveOrder{}}
		for _, a := range aud {
			if a.SessionID == l.ID {
				x.StoreID, x.GuideID, x.InvitedAt, x.JoinedAt, x.LeftAt, x.OrderedAt = a.StoreID, a.GuideID, a.InvitedAt, a.JoinedAt, a.LeftAt, a.OrderedAt
			}
		}
		for _, lo := range los {
			if lo.SessionID == l.ID {
				x.Orders = append(x.Orders, ExportLiveOrder{OrderID: orderNos[lo.OrderID], StoreID: lo.StoreID, GuideID: lo.GuideID, TotalCents: lo.TotalCents})
			}
		}
		out = append(out, x)
	}
	return out, nil
}

// exportGroups returns the member's rows in customer groups of brand (""
// every brand): matched to the member, or of one of their identities.
func (s *Store) exportGroups(ctx context.Context, id int64, idents []Identity, brand string) ([]ExportGroup, error) {
	ext := []string{}
	for _, mi := range idents {
		ext = append(ext, mi.ExternalID)
	}
	var rows []CustomerGroupMember
	if err := s.db.WithContext(ctx).Where("NOT guide AND (member_id = ? OR user_id IN ?)", id, ext).
		Order("joined_at, channel, chat_id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	var out []ExportGroup
	for _, r := range rows {
		g, err := s.CustomerGroup(ctx, r.Channel, r.ChatID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if brand != "" && g.BrandID != brand {
			continue
		}
		out = append(out, ExportGroup{Channel: r.Channel, ChatID: r.ChatID, Brand: g.BrandID, Group: g.Name, UserID: r.UserID, Name: r.Name,
			JoinedAt: r.JoinedAt, LeftAt: r.LeftAt})
	}
	return out, nil
}

// exportMoments returns the moment tasks of brand ("" every brand) whose
// posts one of the member's ids (on the task's channel) could see.
func (s *Store) exportMoments(ctx context.Context, idents []Identity, brand string) ([]ExportMoment, error) {
	var out []ExportMoment
	for _, mi := range idents {
		q := s.db.WithContext(ctx).Table("moment_task_customers AS c").
			Select("t.id AS task_id, t.channel, t.brand_id AS brand, t.text, c.guide, c.external_id, t.created_at").
			Joins("JOIN moment_tasks t ON t.id = c.task_id").
			Where("c.external_id = ? AND t.channel = ?", mi.ExternalID, mi.Channel)
		if brand != "" {
			q = q.Where("t.brand_id = ?", brand)
		}
		var rows []ExportMoment
		if err := q.Order("t.id, c.guide").Scan(&rows).Error; err != nil {
			return nil, translate(err)
		}
		out = append(out, rows...)
	}
	return out, nil
}

func emptySlices(x *MemberExport) {
	if x.Memberships == nil {
		x.Memberships = []Membership{}
	}
	if x.Bindings == nil {
		x.Bindings = []Binding{}
	}
	if x.Tags == nil {
		x.Tags = []ExportTag{}
	}
	if x.Consent == nil {
		x.Consent = []MemberConsent{}
	}
	if x.CrossBrand == nil {
		x.CrossBrand = []CrossBrandOptIn{}
	}
	if x.Events == nil {
		x.Events = []ExportEvent{}
	}
	if x.Orders == nil {
		x.Orders = []Order{}
	}
	if x.Coupons == nil {
		x.Coupons = []IssuedCoupon{}
	}
	if x.Points == nil {
		x.Points = []PointsLine{}
	}
	if x.Runs == nil {
		x.Runs = []WorkflowRun{}
	}
	if x.Messages == nil {
		x.Messages = []ExportMessage{}
	}
	if x.Received == nil {
		x.Received = []ExportReceived{}
	}
	if x.GuideTasks == nil {
		x.GuideTasks = []GuideTask{}
	}
	if x.Handoffs == nil {
		x.Handoffs = []Handoff{}
	}
	if x.Handovers == nil {
		x.Handovers = []Handover{}
	}
	if x.Stats == nil {
		x.Stats = []MemberStats{}
	}
	if x.Groups == nil {
		x.Groups = []ExportGroup{}
	}
	if x.Moments == nil {
		x.Moments = []ExportMoment{}
	}
	if x.Live == nil {
		x.Live = []ExportLive{}
	}
	if x.Erasures == nil {
		x.Erasures = []MemberErasure{}
	}
}
