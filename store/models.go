package store

import "time"

// Brand is a tenant: a brand whose members and stores scrmgw serves.
type Brand struct {
	ID        string    `gorm:"primaryKey;size:64" json:"id"`
	Name      string    `gorm:"size:200;not null" json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// RetailStore is a physical store. It carries one or more brands (BrandIDs,
// kept in the store_brands table).
type RetailStore struct {
	ID   string `gorm:"primaryKey;size:64" json:"id"`
	Name string `gorm:"size:200;not null" json:"name"`
	// Lat and Lng are WGS-84 degrees.
	Lat          float64 `gorm:"not null" json:"lat"`
	Lng          float64 `gorm:"not null" json:"lng"`
	Address      string  `gorm:"size:500" json:"address"`
	TimeZone     string  `gorm:"size:64;not null" json:"time_zone"`
	OpeningHours string  `gorm:"size:200" json:"opening_hours"`
	Active       bool    `gorm:"not null" json:"active"`
	// Distributor is the dealer or franchisee the store belongs to, who
	// earns a share of its commission; empty for the brand's own stores.
	Distributor string    `gorm:"size:64;not null;default:''" json:"distributor,omitempty"`
	BrandIDs    []string  `gorm:"-" json:"brands"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// TableName keeps the table named for the domain word.
func (RetailStore) TableName() string { return "stores" }

// StoreBrand says a store carries a brand.
type StoreBrand struct {
	StoreID string       `gorm:"primaryKey;size:64"`
	BrandID string       `gorm:"primaryKey;size:64;index"`
	Store   *RetailStore `gorm:"foreignKey:StoreID;constraint:OnDelete:CASCADE"`
	Brand   *Brand       `gorm:"foreignKey:BrandID;constraint:OnDelete:RESTRICT"`
}

// Guide is a shopping guide of a store.
type Guide struct {
	ID      string       `gorm:"primaryKey;size:64" json:"id"`
	StoreID string       `gorm:"size:64;not null;index" json:"store_id"`
	Store   *RetailStore `gorm:"foreignKey:StoreID;constraint:OnDelete:RESTRICT" json:"-"`
	Name    string       `gorm:"size:200;not null" json:"name"`
	// Identities are the guide's ids on channel instances, one per
	// instance, by instance key (kept in the guide_identities table).
	Identities []GuideIdentity `gorm:"-" json:"identities"`
	// Capacity is the most members the guide is bound to; 0 means no limit.
	Capacity int `gorm:"not null" json:"capacity"`
	// BoundCount is how many members are currently bound to the guide,
	// kept with the bindings in one transaction.
	BoundCount int        `gorm:"not null;default:0" json:"bound_count"`
	Active     bool       `gorm:"not null" json:"active"`
	LeftAt     *time.Time `json:"left_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// GuideIdentity is a guide's id on one channel instance: Channel is the
// instance key ("wecom", "wecom:acme"; see adapters.InstanceKey). A guide
// has at most one per instance, and an id on an instance is one guide's.
type GuideIdentity struct {
	GuideID    string    `gorm:"primaryKey;size:64" json:"-"`
	Guide      *Guide    `gorm:"foreignKey:GuideID;constraint:OnDelete:CASCADE" json:"-"`
	Channel    string    `gorm:"primaryKey;size:80;uniqueIndex:idx_guide_identity_channel_external" json:"channel"`
	ExternalID string    `gorm:"size:128;not null;uniqueIndex:idx_guide_identity_channel_external" json:"external_id"`
	CreatedAt  time.Time `json:"created_at"`
}

// Member is one person across channels, unified by phone number.
type Member struct {
	ID int64 `gorm:"primaryKey;autoIncrement" json:"id"`
	// PhoneHash is a keyed hash of the E.164 phone number, for lookup.
	PhoneHash *string `gorm:"size:64;uniqueIndex" json:"-"`
	// PhoneEnc is the phone number encrypted with AES-GCM.
	PhoneEnc []byte `json:"-"`
	// PhoneTail is the last four digits, for guides looking a member up.
	PhoneTail string `gorm:"size:4;index" json:"-"`
	Name      string `gorm:"size:200" json:"name"`
	// TimeZone is the member's own IANA time zone, when known; send rules
	// with time_zone: member read it first.
	TimeZone string `gorm:"size:64" json:"time_zone,omitempty"`
	// MergedInto is set when this member was merged into another.
	MergedInto *int64 `gorm:"index" json:"merged_into,omitempty"`
	// ErasedAt is when the person was erased (EraseMember): the row is
	// kept, anonymised, for the pseudonymous ids of ledgers.
	ErasedAt  *time.Time `json:"erased_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// MemberIdentity is a member's id on one channel or system.
type MemberIdentity struct {
	ID       int64   `gorm:"primaryKey;autoIncrement" json:"-"`
	MemberID int64   `gorm:"not null;index" json:"-"`
	Member   *Member `gorm:"foreignKey:MemberID;constraint:OnDelete:CASCADE" json:"-"`
	// Channel is a channel instance key (wecom, wecom:acme, dingtalk;
	// see adapters.InstanceKey), wecom_unionid, or crm:<brand> (so up to
	// 4+64 bytes).
	Channel    string `gorm:"size:80;not null;uniqueIndex:idx_identity_channel_external" json:"channel"`
	ExternalID string `gorm:"size:128;not null;uniqueIndex:idx_identity_channel_external" json:"external_id"`
	// BrandID is the brand the identity was collected under; only that
	// brand's tokens see it. Empty: collected with no brand (admin only).
	BrandID string `gorm:"size:64;not null;default:'';index" json:"-"`
	// LastInboundAt is when the member last wrote or did something on
	// the channel under this id (TouchIdentity): a channel that sends
	// freely only within a window after it (adapters.Spec.Window) is
	// judged by it. Nil: never, or before it was recorded.
	LastInboundAt *time.Time `json:"-"`
	CreatedAt     time.Time  `json:"created_at"`
}

// Membership is a member's standing with one brand.
type Membership struct {
	MemberID int64   `gorm:"primaryKey" json:"-"`
	Member   *Member `gorm:"foreignKey:MemberID;constraint:OnDelete:CASCADE" json:"-"`
	BrandID  string  `gorm:"primaryKey;size:64;index" json:"brand"`
	Brand    *Brand  `gorm:"foreignKey:BrandID;constraint:OnDelete:RESTRICT" json:"-"`
	Level    string  `gorm:"size:32" json:"level,omitempty"`
	Points   int64   `gorm:"not null" json:"points"`
	// Name is the name the member gave this brand (or its channels gave
	// it): each brand's profile fields are its own (docs/security.md).
	Name string `gorm:"size:200;not null;default:''" json:"name,omitempty"`
	// PhoneKnown says the brand was given the person's phone number (it
	// sees it, and finds the person by it, only then).
	PhoneKnown bool      `gorm:"not null;default:false" json:"-"`
	CreatedAt  time.Time `json:"joined_at"`
}

// Binding ties a member to a guide for a brand. At most one binding per
// member and brand is current (EndedAt nil); ended ones are history.
type Binding struct {
	ID       int64  `gorm:"primaryKey;autoIncrement" json:"id"`
	MemberID int64  `gorm:"not null;index:idx_binding_current,unique,where:ended_at IS NULL" json:"member_id"`
	BrandID  string `gorm:"size:64;not null;index:idx_binding_current,unique,where:ended_at IS NULL" json:"brand"`
	GuideID  string `gorm:"size:64;not null;index" json:"guide_id"`
	StoreID  string `gorm:"size:64;not null;index" json:"store_id"`
	// Reason is nearest, state, manual or inherited.
	Reason string `gorm:"size:32;not null" json:"reason"`
	// DistanceM is the member's distance to the store when bound by
	// location, in metres.
	DistanceM float64 `json:"distance_m"`
	// Remark is the name the guide gave the member on their channel
	// (a WeCom remark), when known.
	Remark    string     `gorm:"size:200;not null;default:''" json:"remark,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
}

// Event is one entry of the append-only event log.
type Event struct {
	ID      int64  `gorm:"primaryKey;autoIncrement" json:"id"`
	Type    string `gorm:"size:64;not null;index" json:"type"`
	BrandID string `gorm:"size:64;index" json:"brand,omitempty"`
	// MemberID is the member the event is about, if any.
	MemberID *int64 `gorm:"index" json:"member_id,omitempty"`
	// Source and SourceID identify the event at its origin; together they
	// are unique, so a redelivered event is recorded once.
	Source     string    `gorm:"size:64;not null;uniqueIndex:idx_event_source" json:"source"`
	SourceID   string    `gorm:"size:200;not null;uniqueIndex:idx_event_source" json:"source_id"`
	Payload    string    `gorm:"type:text" json:"payload"`
	OccurredAt time.Time `gorm:"not null" json:"occurred_at"`
	CreatedAt  time.Time `json:"created_at"`
	// Binding, when the code that logs the event knows it, is the
	// member's current binding with BrandID as the event is logged (the
	// binding a join just made or found). Not stored: the event's
	// handlers (OnLogged hooks) use it instead of reading it again.
	Binding *Binding `gorm:"-" json:"-"`
}

// Inbox states.
const (
	InboxPending = "pending"
	InboxDone    = "done"
	InboxFailed  = "failed"
)

// InboxMessage is a platform delivery recorded before it is acknowledged.
// The unique (channel, dedup_key) makes a redelivery a no-op.
type InboxMessage struct {
	ID          int64     `gorm:"primaryKey;autoIncrement"`
	Channel     string    `gorm:"size:32;not null;uniqueIndex:idx_inbox_dedup"`
	DedupKey    string    `gorm:"size:200;not null;uniqueIndex:idx_inbox_dedup"`
	Payload     []byte    `gorm:"not null"`
	State       string    `gorm:"size:16;not null;index"`
	Attempts    int       `gorm:"not null"`
	LastError   string    `gorm:"size:1000"`
	CreatedAt   time.Time `gorm:"index"`
	ProcessedAt *time.Time
}

// Outbox states: pending → sending → sent, or failed.
const (
	OutboxPending = "pending"
	OutboxSending = "sending"
	OutboxSent    = "sent"
	OutboxFailed  = "failed"
)

// OutboxMessage is a message to send, claimed by exactly one handler.
type OutboxMessage struct {
	ID             int64  `gorm:"primaryKey;autoIncrement"`
	IdempotencyKey string `gorm:"size:200;not null;uniqueIndex"`
	Channel        string `gorm:"size:32;not null"`
	Recipient      string `gorm:"size:128;not null"`
	MemberID       *int64 `gorm:"index"`
	GuideID        string `gorm:"size:64;index"`
	BrandID        string `gorm:"size:64;index"`
	Kind           string `gorm:"size:32;not null"`
	Payload        []byte `gorm:"not null"`
	State          string `gorm:"size:16;not null;index"`
	Attempts       int    `gorm:"not null"`
	LastError      string `gorm:"size:1000"`
	// Failure says in a word why a failed message was not sent
	// (invalid_message, invalid_recipient, unauthorized, refused, ...).
	Failure    string `gorm:"size:32;not null;default:''"`
	ExternalID string `gorm:"size:200"`
	// Delivery is what became of a send that completes later (a message
	// task a guide confirms): pending, delivered or failed; empty for
	// sends complete when accepted.
	Delivery       string `gorm:"size:16;index"`
	DeliveryDetail string `gorm:"size:500"`
	CreatedAt      time.Time
	UpdatedAt      time.Time
	SentAt         *time.Time
}

// APIToken is a bearer token for the admin API, stored as a hash. A token
// with no BrandID sees every brand.
type APIToken struct {
	ID      int64   `gorm:"primaryKey;autoIncrement" json:"id"`
	Name    string  `gorm:"size:200;not null" json:"name"`
	BrandID *string `gorm:"size:64;index" json:"brand,omitempty"`
	Brand   *Brand  `gorm:"foreignKey:BrandID;constraint:OnDelete:CASCADE" json:"-"`
	// CanViewPhone lets the token read full phone numbers.
	CanViewPhone bool   `gorm:"not null" json:"can_view_phone"`
	Hash         string `gorm:"size:64;not null;uniqueIndex" json:"-"`
	// ReadOnly limits the token to GET and HEAD.
	ReadOnly bool `gorm:"not null;default:false" json:"read_only"`
	// Resources lists the route groups the token may use, comma-separated
	// (members,workflows); empty allows every group. See ResourceList.
	Resources string `gorm:"size:500;not null;default:''" json:"-"`
	// ExpiresAt, when set, is when the token stops working.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// LastUsedAt is when the token was last used, to within a minute
	// (writes are throttled).
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// Cursor is a named position in an external stream (a WeCom kf sync
// cursor), saved after what it covers is recorded.
type Cursor struct {
	Key       string `gorm:"primaryKey;size:200"`
	Value     string `gorm:"size:2000;not null"`
	UpdatedAt time.Time
}

// ContactWay is a channel QR code (a WeCom 渠道活码) for a store or a
// guide. Its State comes back on every contact added through it, naming
// the store or guide the new member is bound to.
type ContactWay struct {
	ID int64 `gorm:"primaryKey;autoIncrement" json:"id"`
	// Channel is the channel instance that made the code: a store has
	// one code per channel (its WeCom contact way and its Official
	// Account's follow code carry the same state).
	Channel string `gorm:"size:32;not null;uniqueIndex:idx_contact_ways_channel_state,priority:1" json:"channel"`
	// StoreID is set for a store's code, GuideID for a guide's.
	StoreID string `gorm:"size:64;index" json:"store_id,omitempty"`
	GuideID string `gorm:"size:64;index" json:"guide_id,omitempty"`
	// State is what the platform echoes back: "s:<store>" or "g:<guide>".
	State string `gorm:"size:30;not null;uniqueIndex:idx_contact_ways_channel_state,priority:2" json:"state"`
	// ConfigID is the platform's id of the code.
	ConfigID string `gorm:"size:128" json:"config_id"`
	QRCode   string `gorm:"size:1000" json:"qr_code"`
	// ExpiresAt is when a temporary code stops working; nil for a
	// permanent one.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// allModels lists every table, in dependency order, for migrations.
var allModels = []any{
	&Brand{}, &RetailStore{}, &StoreBrand{}, &Guide{}, &GuideIdentity{},
	&Member{}, &MemberIdentity{}, &Membership{}, &Binding{},
	&Event{}, &InboxMessage{}, &OutboxMessage{}, &APIToken{},
}
