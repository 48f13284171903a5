package store

import (
	"context"
	"encoding/json"
	"time"

	"gorm.io/gorm"
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
	GuideTasks  []GuideTask       `json:"guide_tasks"`
	Handoffs    []Handoff         `json:"handoffs"`
	Erasures    []MemberErasure   `json:"erasures"`
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

// ExportMessage is a message sent (or to be sent) to the member.
type ExportMessage struct {
	ID        int64           `json:"id"`
	Brand     string          `json:"brand,omitempty"`
	Channel   string          `json:"channel"`
	Kind      string          `json:"kind"`
	State     string          `json:"state"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	SentAt    *time.Time      `json:"sent_at,omitempty"`
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
	var evs []Event
	if err := q().Order("occurred_at, id").Find(&evs).Error; err != nil {
		return nil, translate(err)
	}
	for _, e := range evs {
		ev := ExportEvent{ID: e.ID, Type: e.Type, Brand: e.BrandID, Source: e.Source, OccurredAt: e.OccurredAt}
		if json.Valid([]byte(e.Payload)) {
			ev.Attributes = json.RawMessage(e.Payload)
		}
		x.Events = append(x.Events, ev)
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
	if err := q().Order("created_at, id").Find(&msgs).Error; err != nil {
		return nil, translate(err)
	}
	for _, m := range msgs {
		em := ExportMessage{ID: m.ID, Brand: m.BrandID, Channel: m.Channel, Kind: m.Kind, State: m.State, CreatedAt: m.CreatedAt, SentAt: m.SentAt}
		if json.Valid(m.Payload) {
			em.Payload = json.RawMessage(m.Payload)
		}
		x.Messages = append(x.Messages, em)
	}
	if err := q().Order("created_at, id").Find(&x.GuideTasks).Error; err != nil {
		return nil, translate(err)
	}
	if err := q().Order("opened_at, id").Find(&x.Handoffs).Error; err != nil {
		return nil, translate(err)
	}
	if err := q().Order("erased_at, id").Find(&x.Erasures).Error; err != nil {
		return nil, translate(err)
	}
	emptySlices(x)
	return x, nil
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
	if x.GuideTasks == nil {
		x.GuideTasks = []GuideTask{}
	}
	if x.Handoffs == nil {
		x.Handoffs = []Handoff{}
	}
	if x.Erasures == nil {
		x.Erasures = []MemberErasure{}
	}
}
