package wecom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// ChannelName is the registry name of the WeCom channel.
const ChannelName = "wecom"

// CursorStore keeps the kf sync_msg position between syncs.
type CursorStore interface {
	Cursor(ctx context.Context, key string) (string, error)
	SetCursor(ctx context.Context, key, value string) error
}

// Deps are what the channel needs from the rest of the gateway.
type Deps struct {
	// Instance names the corp (or app) among the gateway's WeCom
	// instances; "" or adapters.DefaultInstance is the default, whose
	// channel key is "wecom" and callback path CallbackPath. Another
	// name gives the key "wecom:<name>" and the path CallbackPath/<name>.
	Instance string
	// Recorder durably records verified callbacks (and synced kf
	// messages) before WeCom is answered.
	Recorder adapters.Recorder
	// Tokens shares access tokens between replicas.
	Tokens adapters.TokenCache
	// Cursors keeps kf sync positions.
	Cursors CursorStore
	Logger  *slog.Logger
	// MaxBodyBytes limits callback bodies. Default 1 MiB.
	MaxBodyBytes int64
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MediaHTTP fetches the pictures and files messages name by URL, to
	// upload them. Default: a client with a 20-second timeout.
	MediaHTTP *http.Client
}

// Client is the WeCom channel: it receives callbacks over HTTP, reaches
// members through their guide or a customer-service session, and guides
// through app messages.
type Client struct {
	cfg Config
	// instance is the instance's name, key its channel key.
	instance, key string
	// brand is the brand contacts join by default; brands all the
	// instance serves.
	brand   string
	brands  []string
	crypto  *Crypto
	api     *API
	rec     adapters.Recorder
	cursors CursorStore
	log     *slog.Logger
	maxBody int64
	now     func() time.Time
	// tasks keeps the last list of message tasks Reconcile read.
	tasks taskList
	// media uploads the pictures and files messages name by URL.
	media *adapters.Media
	// tags is the corp's tag library read last (tags.go).
	tags tagCache
}

var (
	_ adapters.Channel       = (*Client)(nil)
	_ adapters.HTTPReceiver  = (*Client)(nil)
	_ adapters.ContactLookup = (*Client)(nil)
	_ adapters.Expander      = (*Client)(nil)
)

// New returns the WeCom channel for an enabled, valid configuration.
func New(cfg Config, d Deps) (*Client, error) {
	cfg = cfg.WithDefaults()
	cfg.Instances = nil
	instance := d.Instance
	if instance == "" {
		instance = adapters.DefaultInstance
	}
	if instance != adapters.DefaultInstance {
		if err := adapters.ValidInstanceName(instance); err != nil {
			return nil, fmt.Errorf("wecom: %w", err)
		}
	}
	when := "wecom.corp_id is set"
	if instance != adapters.DefaultInstance {
		when = "it is an instance"
	}
	if err := cfg.validate(instancePrefix(instance), when); err != nil {
		return nil, err
	}
	if d.Recorder == nil || d.Tokens == nil || d.Cursors == nil {
		return nil, errors.New("wecom: Recorder, Tokens and Cursors are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = 1 << 20
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	crypto, err := NewCrypto(cfg.Token, cfg.EncodingAESKey, cfg.CorpID)
	if err != nil {
		return nil, fmt.Errorf("wecom: %w", err)
	}
	api, err := NewAPI(cfg, d.Tokens, d.Logger)
	if err != nil {
		return nil, fmt.Errorf("wecom: %w", err)
	}
	if d.MediaHTTP == nil {
		d.MediaHTTP = adapters.MediaClient(cfg.MediaFetchPrivate)
	}
	key := adapters.InstanceKey(ChannelName, instance)
	log := d.Logger.With(slog.String("channel", key))
	brands := cfg.AllBrands()
	return &Client{cfg: cfg, instance: instance, key: key, brand: brands[0], brands: brands,
		crypto: crypto, api: api, rec: d.Recorder, cursors: d.Cursors,
		log: log, maxBody: d.MaxBodyBytes, now: d.Now,
		media: newMedia(api, cfg.CorpID, instance, d.Tokens, d.MediaHTTP, log)}, nil
}

// instancePrefix is how the keys of an instance's configuration are
// named in errors: "wecom." or "wecom.instances.<name>.".
func instancePrefix(instance string) string {
	if instance == adapters.DefaultInstance {
		return "wecom."
	}
	return "wecom.instances." + instance + "."
}

// Name is the instance's channel key: "wecom" for the default instance,
// "wecom:<name>" for the others.
func (c *Client) Name() string { return c.key }

// Instance is the instance's name.
func (c *Client) Instance() string { return c.instance }

// Brands are the brands the instance serves, the default one first.
func (c *Client) Brands() []string { return slices.Clone(c.brands) }

// API returns the WeCom API client (contact ways, transfers).
func (c *Client) API() *API { return c.api }

// Send delivers one message, built as Spec's Preview shows it (see Spec
// for the kinds each route carries):
//   - with a welcome_code field: the new contact's welcome (send_welcome_msg);
//   - to a guide: an app message (message/send);
//   - to a member in a customer-service session (ReplyTo open_kfid):
//     kf/send_msg;
//   - to a member through their guide (Via): an external-contact message
//     task (add_msg_template) that the guide confirms in WeCom; the receipt
//     is Pending. A failure after which WeCom may have created the task
//     all the same (InDoubt) also wraps adapters.ErrOutcomeUnknown: the
//     sender leaves it to Reconcile instead of sending it again.
//
// Pictures and files named by URL are fetched and uploaded first (see
// newMedia). A kind the route cannot carry, a missing field or an
// unusable picture is an error wrapping adapters.ErrInvalidMessage.
func (c *Client) Send(ctx context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	req, err := buildRequest(ctx, m, c.api.agentID, c.media.Resolve)
	if err != nil {
		var apiErr *adapters.APIError
		if errors.As(err, &apiErr) {
			return nil, err
		}
		return nil, fmt.Errorf("preparing %s %s: %w", c.key, m.Kind, err)
	}
	r, err := c.post(ctx, m, req)
	if err != nil && len(req.Media) > 0 && mediaRefused(err) {
		// A cached media id WeCom no longer knows: upload again next time.
		for _, src := range req.Media {
			c.media.Forget(ctx, src.typ, src.src)
		}
		// Not wrapping err: its APIError would make it permanent.
		return nil, fmt.Errorf("%s (an uploaded picture or file expired; it is uploaded again on retry): %w", err.Error(), adapters.ErrTemporary)
	}
	return r, err
}

// mediaRefused reports whether WeCom refused a media id (40007).
func mediaRefused(err error) bool {
	var e *adapters.APIError
	return errors.As(err, &e) && e.Code == codeInvalidMediaID
}

// codeInvalidMediaID is WeCom's 不合法的media_id参数.
const codeInvalidMediaID = 40007

func (c *Client) post(ctx context.Context, m *adapters.Outbound, req *builtRequest) (*adapters.Receipt, error) {
	switch body := req.Body.(type) {
	case *welcomeRequest:
		if err := c.api.postWelcome(ctx, body); err != nil {
			if WelcomeAlreadySent(err) {
				// A retried welcome whose first attempt got through.
				return &adapters.Receipt{}, nil
			}
			return nil, fmt.Errorf("sending welcome: %w", err)
		}
		return &adapters.Receipt{}, nil
	case *appMessageRequest:
		msgID, invalid, err := c.api.postAppMessage(ctx, body)
		if err != nil {
			return nil, fmt.Errorf("sending app message: %w", err)
		}
		if slices.ContainsFunc(invalid, func(u string) bool { return strings.EqualFold(u, m.To) }) {
			return nil, &adapters.APIError{Channel: ChannelName, Code: 81013, Message: "guide not reachable by the app", Kind: adapters.ErrInvalidRecipient}
		}
		return &adapters.Receipt{ExternalID: msgID}, nil
	case *kfSendRequest:
		msgID, err := c.api.kfSend(ctx, "sending kf "+body.MsgType, *body)
		if err != nil {
			return nil, fmt.Errorf("sending kf message: %w", err)
		}
		return &adapters.Receipt{ExternalID: msgID}, nil
	case *msgTemplateRequest:
		msgID, failed, err := c.api.postMsgTemplate(ctx, body)
		if err != nil && InDoubt(err) {
			// WeCom may have created the task: another one would reach
			// the member twice. Reconcile tells, once the send's lease
			// is over.
			return nil, fmt.Errorf("creating message task: %w: %w", err, adapters.ErrOutcomeUnknown)
		}
		if err != nil {
			return nil, fmt.Errorf("creating message task: %w", err)
		}
		if slices.Contains(failed, m.To) {
			return nil, &adapters.APIError{Channel: ChannelName, Code: 0, Message: "member is not a contact of the guide", Kind: adapters.ErrInvalidRecipient}
		}
		return &adapters.Receipt{ExternalID: msgID, Pending: true}, nil
	}
	return nil, fmt.Errorf("sending %s: no poster for %T", req.API, req.Body)
}

// kfMsgID makes kf/send_msg's msgid from the idempotency key: WeCom
// refuses a repeated msgid, which makes a retried send harmless. It allows
// at most 32 characters of [0-9a-zA-Z_-].
func kfMsgID(key string) string {
	if key == "" {
		return ""
	}
	return shortHash(key)
}

// LookupContact fetches a contact's details (externalcontact/get).
func (c *Client) LookupContact(ctx context.Context, externalID string) (*adapters.Contact, error) {
	ct, err := c.api.ExternalContact(ctx, externalID)
	if err != nil {
		return nil, fmt.Errorf("looking up contact: %w", err)
	}
	out := &adapters.Contact{ExternalID: ct.ExternalUserID, Name: ct.Name, UnionID: ct.UnionID}
	for _, f := range ct.FollowUsers {
		out.Phones = append(out.Phones, f.RemarkMobiles...)
		out.Follows = append(out.Follows, adapters.ContactFollow{GuideID: f.UserID, Remark: f.Remark,
			Phones: f.RemarkMobiles, Tags: f.TagNames})
	}
	return out, nil
}

// CreateContactWay creates a QR code (渠道活码) that adds one of users,
// and whose state comes back on every contact added through it.
func (c *Client) CreateContactWay(ctx context.Context, users []string, state, remark string) (configID, qrCode string, err error) {
	typ := ContactWayMulti
	if len(users) == 1 {
		typ = ContactWaySingle
	}
	return c.api.AddContactWay(ctx, ContactWay{Type: typ, Scene: SceneQRCode, Users: users, State: state, Remark: remark})
}

// TransferContacts hands customers from one employee to another
// (transfer_customer: the customers are notified and move after 24 hours
// unless they refuse, which arrives as a transfer_fail callback).
func (c *Client) TransferContacts(ctx context.Context, fromUserID, toUserID string, externalIDs []string) error {
	results, err := c.api.TransferCustomer(ctx, fromUserID, toUserID, externalIDs, "")
	if err != nil {
		return err
	}
	for _, r := range results {
		if r.Err != nil {
			c.log.Warn("contact not transferred", slog.String("external_userid", r.ExternalUserID), slog.Any("error", r.Err))
		}
	}
	return nil
}

var _ adapters.DeliveryChecker = (*Client)(nil)

// CheckDelivery reports whether a message task reached the member
// (get_groupmsg_send_result): delivered once the guide confirmed it,
// failed when the member is no longer the guide's contact or got their
// month's quota of group messages, pending until then.
func (c *Client) CheckDelivery(ctx context.Context, m *adapters.Outbound, externalID string) (adapters.Delivery, string, error) {
	if m.Via == "" || externalID == "" {
		return adapters.DeliveryDelivered, "", nil
	}
	results, err := c.api.GroupMsgSendResult(ctx, externalID, m.Via)
	if err != nil {
		return adapters.DeliveryPending, "", fmt.Errorf("checking message task %s: %w", externalID, err)
	}
	for _, r := range results {
		if r.ExternalUserID != m.To {
			continue
		}
		switch r.Status {
		case SendSent:
			return adapters.DeliveryDelivered, "", nil
		case SendNotFriend:
			return adapters.DeliveryFailed, "the member is no longer the guide's contact", nil
		case SendQuotaSpent:
			return adapters.DeliveryFailed, "the member got this month's quota of group messages", nil
		}
	}
	return adapters.DeliveryPending, "", nil
}

// Withdraw stops the message task externalID (its msgid) of a send
// through a guide that the guide has not confirmed (adapters.Withdrawer);
// the task's id is all WeCom needs (m may be an erased member's, empty).
// A send without one has nothing to stop.
func (c *Client) Withdraw(ctx context.Context, _ *adapters.Outbound, externalID string) error {
	if externalID == "" {
		return nil
	}
	return c.api.CancelGroupMsgSend(ctx, externalID)
}
