// Package adapters defines how scrmgw talks to messaging platforms: the
// Channel interface every channel package implements, the inbound and
// outbound message shapes, the sentinel errors vendor error codes map onto,
// and the Registry the wiring in cmd/ fills explicitly.
//
// A channel package (adapters/wecom, adapters/dingtalk, ...) imports this
// package and nothing else of the project; what it needs from outside (a
// token cache, a place to record a verified inbound message) it declares as
// a small interface of its own that the wiring satisfies.
package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Channel delivers to and receives from one messaging platform.
type Channel interface {
	// Name is the channel's registry name, e.g. "wecom".
	Name() string
	// Send delivers one outbound message. It returns a Receipt on success
	// and an error wrapping one of the sentinel errors on failure, so the
	// outbound queue can tell a retry from a permanent failure.
	Send(ctx context.Context, m *Outbound) (*Receipt, error)
}

// HTTPReceiver is implemented by channels that receive platform callbacks
// over HTTP. The wiring mounts Handler under Path on the gateway's server.
type HTTPReceiver interface {
	// Routes lists the callback routes the channel serves.
	Routes() []Route
}

// Route is one HTTP callback endpoint of a channel.
type Route struct {
	Method  string
	Path    string
	Handler http.Handler
}

// Streamer is implemented by channels that hold a long-lived connection to
// the platform (DingTalk stream mode). Run blocks until ctx is done.
type Streamer interface {
	Run(ctx context.Context) error
}

// Recorder durably records verified inbound deliveries. Record returns
// only once the delivery is durable (and its processing queued); a channel
// acknowledges the platform only after that. A redelivery (same Channel
// and DedupKey) returns nil without recording or processing it twice.
type Recorder interface {
	Record(ctx context.Context, in *Inbound) error
}

// BatchRecorder is a Recorder that also records many deliveries in one
// commit and reports which of them were new (false: recorded before).
type BatchRecorder interface {
	Recorder
	RecordBatch(ctx context.Context, ins []*Inbound) (fresh []bool, err error)
}

// Expander is implemented by channels whose callbacks only announce that
// something is waiting (a WeCom kf_msg_or_event): Expand fetches what was
// announced and records each fetched delivery through the channel's
// Recorder, saving its position only after they are recorded. It reports
// handled false for deliveries it does not expand. Expanding the same
// announcement twice records nothing twice.
type Expander interface {
	Expand(ctx context.Context, in *Inbound) (handled bool, err error)
}

// Delivery is what became of a send whose receipt was Pending.
type Delivery string

// Deliveries.
const (
	DeliveryPending   Delivery = "pending"
	DeliveryDelivered Delivery = "delivered"
	DeliveryFailed    Delivery = "failed"
)

// DeliveryChecker is implemented by channels whose sends complete later
// (a WeCom message task goes out when the guide confirms it).
type DeliveryChecker interface {
	CheckDelivery(ctx context.Context, m *Outbound, externalID string) (Delivery, string, error)
}

// Withdrawer is implemented by channels whose pending sends (a Receipt
// with Pending: a WeCom message task its guide has not confirmed) can
// be stopped before they go out: a run that ended (its member bought, its
// live session was cancelled) withdraws what its guides were still asked
// to send. What went out already stays sent: the outbox asks the
// DeliveryChecker afterwards.
type Withdrawer interface {
	Withdraw(ctx context.Context, m *Outbound, externalID string) error
}

// Reconciler is implemented by channels that can tell whether a send
// whose outcome was lost reached the platform: the worker that sent it
// died between handing it over and recording the answer. The outbox
// sweep asks it before sending such a message again, so that a crash
// never delivers a message twice.
type Reconciler interface {
	// Reconcile looks for m among what the platform received from
	// claimedAt on (the send started then and lasted at most the send
	// timeout). sent true means it went out, with its receipt; sent
	// false means sending m again cannot reach the recipient twice: it
	// did not go out, or the platform refuses a repeat of it. An error
	// wrapping ErrOutcomeUnknown means the channel cannot tell for this
	// message; other errors are temporary.
	Reconcile(ctx context.Context, m *Outbound, claimedAt time.Time) (r *Receipt, sent bool, err error)
}

// ErrOutcomeUnknown means a channel cannot tell whether a message went
// out. From Reconcile: it cannot tell at all. From Send: the call failed
// after the platform may have carried it out (a timeout, a lost answer);
// a channel that is a Reconciler is asked about it once the send's lease
// is over, instead of it being sent again at once.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// Contact is what a channel knows of one of its contacts.
type Contact struct {
	ExternalID string
	Name       string
	// UnionID identifies a WeChat user across a developer's apps (WeCom
	// external contacts, Official Account followers, mini programs of
	// one WeChat Open Platform account): contacts of any channel with
	// the same UnionID are one member, joined through their identity
	// UnionIDChannel.
	UnionID string
	// Phones are phone numbers the guide recorded for the contact.
	Phones []string
	// Follows are what each guide who has the contact recorded about
	// them, when the channel tells.
	Follows []ContactFollow
}

// UnionIDChannel is the identity "channel" a member's WeChat UnionID is
// recorded under, whichever channel reported it: named for the first
// that did, and what commerce events name it by.
const UnionIDChannel = "wecom_unionid"

// ContactFollow is what one guide recorded about a contact: a remark (the
// name the guide gave them), phone numbers and tags.
type ContactFollow struct {
	// GuideID is the guide's id on the channel (a WeCom userid).
	GuideID string
	Remark  string
	Phones  []string
	Tags    []string
}

// ContactLookup is implemented by channels that can describe a contact
// (WeCom externalcontact/get).
type ContactLookup interface {
	LookupContact(ctx context.Context, externalID string) (*Contact, error)
}

// TokenCache shares access tokens between replicas, so they all use one
// token and refresh it once.
type TokenCache interface {
	// Get returns the cached token, or "" when there is none.
	Get(ctx context.Context, key string) (string, error)
	// Set caches a token for ttl.
	Set(ctx context.Context, key, token string, ttl time.Duration) error
	// Delete drops a token the platform refused.
	Delete(ctx context.Context, key string) error
}

// Party says who is on one side of a message.
type Party string

// Parties of a message.
const (
	PartyMember Party = "member"
	PartyGuide  Party = "guide"
)

// Inbound is a verified message or event received from a platform, in the
// channel-neutral shape the router hands to bots and workflows.
type Inbound struct {
	// Channel is the registry name of the channel it arrived on.
	Channel string
	// DedupKey identifies the platform delivery: a repeat delivery carries
	// the same key (WeCom MsgId, DingTalk msgId, ...).
	DedupKey string
	// Brand is the brand the channel account serves, when it serves one.
	Brand string
	// From says whether the sender is a member or a guide.
	From Party
	// SenderID is the sender's id on the channel (external_userid,
	// staffId, ...).
	SenderID string
	// ConversationID identifies the conversation a reply goes to, when the
	// platform has one.
	ConversationID string
	// Kind is the message kind: text, location, image, or event for
	// platform events (a contact added, an employee leaving).
	Kind string
	Text string
	// Event names a platform event in channel-neutral words when Kind is
	// event: contact.added, contact.removed, guide.joined, guide.left, ...
	Event string
	// Attrs holds the event's or message's extra fields (state,
	// welcome_code, user_id, media_id, ...).
	Attrs map[string]string
	// Location is set for location messages.
	Location *Location
	// ReplyTo holds channel-specific data needed to reply in the same
	// conversation (a DingTalk sessionWebhook and its expiry, a WeCom kf
	// open_kfid), opaque to everything but the channel.
	ReplyTo map[string]string
	// At is when the platform says the message was sent.
	At time.Time
}

// Location is a point a member or guide shared, in WGS-84 degrees.
type Location struct {
	Lat   float64
	Lng   float64
	Label string
}

// Outbound is one message to deliver on a channel.
type Outbound struct {
	// IdempotencyKey is stable across retries of the same message; channels
	// that support it pass it to the platform.
	IdempotencyKey string
	// To is the recipient's id on the channel.
	To string
	// ToParty says whether the recipient is a member or a guide.
	ToParty Party
	// Via is the guide's channel id when a member is reached through their
	// guide (a WeCom external-contact message task).
	Via string
	// Conversation is a group conversation to post in instead of a
	// one-to-one message (a DingTalk openConversationId).
	Conversation string
	// Kind is the message kind the template rendered: text, markdown,
	// news, action_card, miniprogram.
	Kind string
	Text string
	// Fields holds kind-specific parts (title, url, picture, ...).
	Fields map[string]string
	// ReplyTo is the Inbound.ReplyTo of the message being answered, if any.
	ReplyTo map[string]string
	// Brand is the brand the message is sent for (channels that deliver
	// per brand, such as a brand's webhook endpoint, route by it).
	Brand string `json:",omitempty"`
}

// Message kinds, as Outbound.Kind names them. The parts each kind uses:
//
//	text         Text
//	markdown     Text; Fields title
//	news         Fields title, description, url, picurl: a link card
//	             (WeCom link attachment or app news, DingTalk sampleLink);
//	             Text, when set, goes with it where the platform allows
//	miniprogram  Fields title, appid, page, and pic_media_id or picurl
//	action_card  Text; Fields title, single_title, single_url
//	textcard     Text (the description); Fields title, url, btntxt
//	image        Fields picurl (fetched and uploaded) or media_id
//	file         Fields url (fetched and uploaded) and filename, or media_id
//	template     a platform's pre-approved template message (WeChat's
//	             模板消息), sent outside a channel's Window: Fields
//	             template (the scrmgw template the message was rendered
//	             from), kind (the kind it was rendered as) and that
//	             kind's parts; the channel maps them onto the account's
//	             template and its keys
const (
	KindText        = "text"
	KindMarkdown    = "markdown"
	KindNews        = "news"
	KindMiniProgram = "miniprogram"
	KindActionCard  = "action_card"
	KindTextCard    = "textcard"
	KindImage       = "image"
	KindFile        = "file"
	KindTemplate    = "template"
)

// Spec says what a channel can send and how a message looks on its wire,
// without credentials or a connection: template checks, workflow
// validation and dry-runs use it. Each channel package exports its Spec;
// the channel's Send builds its requests with the same code as Preview,
// so a preview is what the platform would receive.
type Spec struct {
	// Name is the channel's registry name.
	Name string
	// MemberKinds and GuideKinds list the message kinds the channel can
	// send to a member and to a guide. KindText is always among them.
	MemberKinds, GuideKinds []string
	// GroupKinds list the kinds the channel can send to its customer
	// groups (through their owners, GroupSender); none: it has no
	// groups.
	GroupKinds []string
	// Preview returns the request the channel would make to send m. Media
	// it would upload first appear by their source URL. Nil: no preview.
	Preview func(m *Outbound) (*Request, error)
	// ThroughGuide is true when the channel reaches a member only through
	// their guide's account on the same instance (WeCom: a message task
	// the guide's WeCom user confirms): a send needs the guide's identity
	// on the member's instance, and goes out as Outbound.Via.
	ThroughGuide bool
	// Rate is the channel's default send rate per instance, below the
	// platform's published limits; zero: unlimited. Configuration may
	// override it.
	Rate Rate
	// Windows are the platform's call budgets per instance over fixed
	// windows of the clock (WeCom: 10,000 calls of an API a minute and
	// 150,000 an hour per corp): the outbox keeps every instance's sends
	// within each, besides Rate. None: Rate alone.
	Windows []Rate
	// MaxTextBytes is the most bytes a text message carries; zero: no
	// limit worth knowing. The bots cut longer relayed texts to fit.
	MaxTextBytes int
	// Window, when set, is how long after a member last wrote or did
	// something on the channel (a message, a menu click, a follow) it
	// may send them MemberKinds (WeChat's 48-hour customer-service
	// window); zero: no window. Outside it, a message goes as one of
	// OutsideKinds (KindTemplate: the engine turns the rendered message
	// into a template message) or not at all.
	Window       time.Duration
	OutsideKinds []string
}

// InWindow reports whether the channel may send a member MemberKinds at
// now when they last wrote at last (zero: never): always without a
// Window.
func (s Spec) InWindow(last, now time.Time) bool {
	if s.Window <= 0 {
		return true
	}
	return !last.IsZero() && now.Sub(last) < s.Window
}

// Kinds returns the kinds the channel can send to party to.
func (s Spec) Kinds(to Party) []string {
	if to == PartyGuide {
		return s.GuideKinds
	}
	return s.MemberKinds
}

// Request is a platform request as a channel would make it.
type Request struct {
	// API names the platform call (externalcontact/add_msg_template,
	// robot/oToMessages/batchSend, ...).
	API string `json:"api"`
	// Body is the request body as sent.
	Body json.RawMessage `json:"body"`
}

// Specified is implemented by channels that have a Spec.
type Specified interface {
	Spec() Spec
}

// Receipt is what a platform returned for a delivered message.
type Receipt struct {
	// ExternalID is the platform's id of the message (msgid, processQueryKey).
	ExternalID string
	// Pending is true when delivery still needs a human step, e.g. a guide
	// confirming a WeCom message task.
	Pending bool
}

// Sentinel errors that vendor error codes map onto. Callers use errors.Is.
var (
	// ErrRateLimited means the platform throttled us; retry with backoff.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnauthorized means the credentials or access token were refused.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrInvalidRecipient means the recipient does not exist or cannot be
	// reached; retrying will not help.
	ErrInvalidRecipient = errors.New("invalid recipient")
	// ErrTemporary means a transient platform or network failure; retry.
	ErrTemporary = errors.New("temporary failure")
	// ErrInvalidMessage means the message cannot be sent as it is on the
	// channel (a kind it does not carry, a missing field, a picture that
	// cannot be fetched or is too large); retrying will not help.
	ErrInvalidMessage = errors.New("invalid message")
)

// APIError is a vendor error response, mapped onto a sentinel error.
type APIError struct {
	Channel string
	Code    int
	Message string
	// Kind is the sentinel the code maps onto, or nil when unknown.
	Kind error
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s api error %d: %s", e.Channel, e.Code, e.Message)
}

// Unwrap returns the sentinel the vendor code maps onto.
func (e *APIError) Unwrap() error { return e.Kind }

// Retryable reports whether an error from Send is worth retrying.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrInvalidRecipient) || errors.Is(err, ErrInvalidMessage) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Kind == nil {
		return false
	}
	return true
}

// Registry holds the channels the gateway was wired with.
type Registry struct {
	mu       sync.RWMutex
	channels map[string]Channel
	order    []string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{channels: make(map[string]Channel)}
}

// Register adds a channel. It panics when a channel of the same name is
// already registered: that is a wiring mistake.
func (r *Registry) Register(c Channel) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := c.Name()
	if name == "" {
		panic("adapters: channel with empty name")
	}
	if _, ok := r.channels[name]; ok {
		panic(fmt.Sprintf("adapters: channel %q registered twice", name))
	}
	r.channels[name] = c
	r.order = append(r.order, name)
}

// Channel returns the channel registered under name.
func (r *Registry) Channel(name string) (Channel, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.channels[name]
	return c, ok
}

// Names lists the registered channel instance keys in the order they
// were registered, which is the order of preference when a member can be
// reached on several.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Clone(r.order)
}
