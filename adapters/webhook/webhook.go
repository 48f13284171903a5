// Package webhook is the generic signed-JSON channel: the brand's POS,
// shop and CRM post CloudEvents 1.0 (JSON, single or batch) signed per the
// Standard Webhooks specification, and scrmgw posts messages back to the
// brand's URL signed the same way. It shows the channel interface is
// pluggable: nothing in bots or workflows knows it.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// ChannelName is the registry name of the webhook channel.
const ChannelName = "webhook"

// EventsPath is where signed CloudEvents are posted.
const EventsPath = "/callbacks/events"

// DefaultSourceID names the source webhook.secret defines.
const DefaultSourceID = "default"

// Config configures the channel; keys are webhook.<yaml tag>.
type Config struct {
	// Secret defines the "default" event source and signs outbound
	// webhooks: "whsec_" followed by base64 of 24 to 64 random bytes, as
	// Standard Webhooks libraries generate. Further sources, each with
	// its own secret and brand, are managed through the API.
	Secret string `yaml:"secret" secret:"true"`
	// Brand is the default source's brand; when empty, its events must
	// name their brand (the CloudEvents extension attribute "brand").
	Brand string `yaml:"brand"`
	// Tolerance is how far a webhook-timestamp may be from now. Default 5m.
	Tolerance time.Duration `yaml:"tolerance"`
	// MaxBatch caps the events of one batch request. Default 1000.
	MaxBatch int `yaml:"max_batch"`
	// URL, when set, receives outbound messages (Send) as signed POSTs.
	URL string `yaml:"url"`
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Secret != "" {
		if _, err := DecodeSecret(c.Secret); err != nil {
			errs = append(errs, fmt.Errorf("webhook.secret: %w", err))
		}
	}
	if c.Tolerance < 0 {
		errs = append(errs, errors.New("webhook.tolerance: must not be negative"))
	}
	if c.MaxBatch < 0 {
		errs = append(errs, errors.New("webhook.max_batch: must not be negative"))
	}
	if c.URL != "" && !strings.HasPrefix(c.URL, "https://") && !strings.HasPrefix(c.URL, "http://") {
		errs = append(errs, fmt.Errorf("webhook.url: want an http(s) URL, got %q", c.URL))
	}
	return errors.Join(errs...)
}

// NewSecret returns a fresh secret in the whsec_ form (32 random bytes).
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// DecodeSecret returns the key of a whsec_ secret.
func DecodeSecret(s string) ([]byte, error) {
	raw, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return nil, errors.New(`want "whsec_" followed by base64`)
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, errors.New("want base64 of 24 to 64 bytes after whsec_")
	}
	return key, nil
}

// Source is a sender of signed events: its id, its brand, and its valid
// keys (two during a secret rotation).
type Source struct {
	ID    string
	Brand string
	Keys  [][]byte
}

// NewSource is the source id of brand whose signatures verify with any
// of secrets (whsec_ secrets, as DecodeSecret takes them).
func NewSource(id, brand string, secrets []string) (Source, error) {
	src := Source{ID: id, Brand: brand}
	for _, sec := range secrets {
		key, err := DecodeSecret(sec)
		if err != nil {
			return Source{}, fmt.Errorf("event source %q: %w", id, err)
		}
		src.Keys = append(src.Keys, key)
	}
	return src, nil
}

// Sources lists the active event sources.
type Sources func(ctx context.Context) ([]Source, error)

// Endpoint is where a brand takes messages: a URL and the signing key.
type Endpoint struct {
	URL string
	Key []byte
}

// Endpoints finds a brand's endpoint; nil (and no error) when the brand
// has none, so the configured webhook.url is used.
type Endpoints func(ctx context.Context, brand string) (*Endpoint, error)

// sourcesTTL is how long the channel reuses the list of sources; a source
// made on another replica works there within this time.
const sourcesTTL = 5 * time.Second

// Channel receives signed CloudEvents and sends signed webhooks.
type Channel struct {
	cfg     Config
	key     []byte
	ingest  *Ingester
	sources Sources
	http    *http.Client
	log     *slog.Logger
	now     func() time.Time

	mu       sync.Mutex
	cached   []Source
	cachedAt time.Time

	// Endpoints, when set, routes a message with a Brand to the brand's
	// own endpoint.
	Endpoints Endpoints
}

var (
	_ adapters.Channel      = (*Channel)(nil)
	_ adapters.HTTPReceiver = (*Channel)(nil)
)

// New returns the channel. Events are verified against webhook.secret
// (the "default" source) and the sources lists (nil: none).
func New(cfg Config, ingest *Ingester, sources Sources, log *slog.Logger) (*Channel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var key []byte
	if cfg.Secret != "" {
		key, _ = DecodeSecret(cfg.Secret)
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = 5 * time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if sources == nil {
		sources = func(context.Context) ([]Source, error) { return nil, nil }
	}
	return &Channel{cfg: cfg, key: key, ingest: ingest, sources: sources, http: &http.Client{Timeout: 10 * time.Second},
		log: log, now: time.Now}, nil
}

// Routes serves POST /callbacks/events.
func (c *Channel) Routes() []adapters.Route {
	return []adapters.Route{{Method: http.MethodPost, Path: EventsPath, Handler: http.HandlerFunc(c.receive)}}
}

// receive verifies a signed request and ingests its events for the
// brand of the source whose secret signed it. ?source=ID limits the
// check to that source.
func (c *Channel) receive(w http.ResponseWriter, r *http.Request) {
	body, ok := ReadBody(w, r)
	if !ok {
		return
	}
	src, err := c.verify(r.Context(), r.Header, body, r.URL.Query().Get("source"))
	if err != nil {
		if errors.Is(err, errSources) {
			c.log.Error("listing event sources", slog.Any("error", err))
			WriteError(w, http.StatusServiceUnavailable, "temporarily unavailable; retry", nil)
			return
		}
		c.log.Warn("event request refused", slog.String("remote", r.RemoteAddr), slog.Any("error", err))
		WriteError(w, http.StatusUnauthorized, err.Error(), nil)
		return
	}
	c.ingest.Serve(w, r, body, src.Brand)
}

// InvalidateSources makes the next request list the sources afresh.
func (c *Channel) InvalidateSources() {
	c.mu.Lock()
	c.cached, c.cachedAt = nil, time.Time{}
	c.mu.Unlock()
}

var errSources = errors.New("listing event sources")

// allSources is the default source and the listed ones, cached briefly.
func (c *Channel) allSources(ctx context.Context) ([]Source, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cached != nil && c.now().Sub(c.cachedAt) < sourcesTTL {
		return c.cached, nil
	}
	listed, err := c.sources(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSources, err)
	}
	all := make([]Source, 0, len(listed)+1)
	if c.key != nil {
		all = append(all, Source{ID: DefaultSourceID, Brand: c.cfg.Brand, Keys: [][]byte{c.key}})
	}
	all = append(all, listed...)
	c.cached, c.cachedAt = all, c.now()
	return all, nil
}

// Name is "webhook".
func (c *Channel) Name() string { return ChannelName }

// Sign returns the webhook-signature value for a message: "v1," and the
// base64 HMAC-SHA256 of "id.timestamp.body".
func Sign(key []byte, id string, ts int64, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, ts, body))
}

func mac(key []byte, id string, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return m.Sum(nil)
}

// Verify errors.
var (
	ErrMissingHeaders = errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	ErrStale          = errors.New("webhook-timestamp outside the allowed window")
	ErrSignature      = errors.New("no matching signature")
	ErrUnknownSource  = errors.New("unknown or inactive event source")
)

// verify checks the Standard Webhooks headers of a request body against
// the sources' keys (only the named one's when only is set) and returns
// the source that signed it. Several space-separated signatures are
// accepted, so a sender can sign with an old and a new secret during a
// rotation.
func (c *Channel) verify(ctx context.Context, h http.Header, body []byte, only string) (*Source, error) {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return nil, ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, ErrStale
	}
	if d := c.now().Sub(time.Unix(sec, 0)); d > c.cfg.Tolerance || d < -c.cfg.Tolerance {
		return nil, ErrStale
	}
	srcs, err := c.allSources(ctx)
	if err != nil {
		return nil, err
	}
	var given [][]byte
	for _, s := range strings.Fields(sigs) {
		if v, ok := strings.CutPrefix(s, "v1,"); ok {
			if b, err := base64.StdEncoding.DecodeString(v); err == nil {
				given = append(given, b)
			}
		}
	}
	tried := false
	for i := range srcs {
		if only != "" && srcs[i].ID != only {
			continue
		}
		for _, key := range srcs[i].Keys {
			tried = true
			want := mac(key, id, sec, body)
			for _, g := range given {
				if hmac.Equal(g, want) {
					return &srcs[i], nil
				}
			}
		}
	}
	if !tried {
		return nil, ErrUnknownSource
	}
	return nil, ErrSignature
}

// MessageType is the CloudEvents type of the messages Send posts.
const MessageType = "scrmgw.message"

// Kinds are the message kinds the channel sends: every kind, as the
// rendered message (kind, text and fields) in the event's data, for the
// brand's system to show as it can.
var Kinds = []string{adapters.KindText, adapters.KindMarkdown, adapters.KindNews, adapters.KindMiniProgram,
	adapters.KindActionCard, adapters.KindTextCard, adapters.KindImage, adapters.KindFile}

// APIMessage is the Request.API of a preview: the CloudEvent posted to
// the brand's endpoint (webhook.url or the brand's own).
const APIMessage = "POST " + MessageType

// messageEvent is the body Send posts for m: a CloudEvent 1.0 in
// structured mode with the message as its data.
func messageEvent(m *adapters.Outbound, id string, at time.Time) ([]byte, error) {
	return json.Marshal(map[string]any{"specversion": "1.0", "id": id, "source": "scrmgw", "type": MessageType,
		"subject": m.To, "time": at.UTC().Format(time.RFC3339), "datacontenttype": "application/json",
		"data": map[string]any{"to": m.To, "to_party": m.ToParty, "kind": m.Kind, "text": m.Text, "fields": m.Fields}})
}

// specAt returns the channel's Spec with now as the clock of previews.
func specAt(now func() time.Time) adapters.Spec {
	return adapters.Spec{
		Name:        ChannelName,
		MemberKinds: slices.Clone(Kinds),
		GuideKinds:  slices.Clone(Kinds),
		Preview: func(m *adapters.Outbound) (*adapters.Request, error) {
			id := m.IdempotencyKey
			if id == "" {
				id = "msg_<random>"
			}
			b, err := messageEvent(m, id, now())
			if err != nil {
				return nil, err
			}
			return &adapters.Request{API: APIMessage, Body: b}, nil
		},
	}
}

// Spec is the channel's Spec. Its Preview is the CloudEvent Send posts,
// without the webhook-id, webhook-timestamp and webhook-signature
// headers; the event's id is the message's idempotency key (Send draws
// a random one when there is none) and its time the time of the preview.
var Spec = specAt(time.Now)

// Spec returns the channel's Spec, previewing with the channel's clock.
func (c *Channel) Spec() adapters.Spec { return specAt(c.now) }

var _ adapters.Specified = (*Channel)(nil)

// Send posts a message to webhook.url as a CloudEvent (structured mode,
// type scrmgw.message) signed per Standard Webhooks. The webhook-id and
// the event id are the message's idempotency key, the same on every
// retry, so the receiver can drop repeats. 5xx, 408, 429 and network
// errors are temporary (retried with backoff); other 4xx are final.
func (c *Channel) Send(ctx context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	url, key := c.cfg.URL, c.key
	if m.Brand != "" && c.Endpoints != nil {
		ep, err := c.Endpoints(ctx, m.Brand)
		if err != nil {
			return nil, &adapters.APIError{Channel: ChannelName, Message: "finding the brand's endpoint: " + err.Error(), Kind: adapters.ErrTemporary}
		}
		if ep != nil {
			url, key = ep.URL, ep.Key
		}
	}
	if url == "" || key == nil {
		return nil, &adapters.APIError{Channel: ChannelName, Kind: adapters.ErrInvalidRecipient,
			Message: "no endpoint: register one for the brand (PUT /api/v1/brands/{id}/webhook-endpoint) or set webhook.url and webhook.secret"}
	}
	id := m.IdempotencyKey
	if id == "" {
		b := make([]byte, 12)
		rand.Read(b)
		id = "msg_" + base64.RawURLEncoding.EncodeToString(b)
	}
	now := c.now()
	body, err := messageEvent(m, id, now)
	if err != nil {
		return nil, err
	}
	ts := now.Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(key, id, ts, body))
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &adapters.APIError{Channel: ChannelName, Message: err.Error(), Kind: adapters.ErrTemporary}
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	switch {
	case resp.StatusCode/100 == 2:
		return &adapters.Receipt{ExternalID: id}, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return nil, &adapters.APIError{Channel: ChannelName, Code: resp.StatusCode, Message: resp.Status, Kind: adapters.ErrRateLimited}
	case resp.StatusCode >= 500:
		return nil, &adapters.APIError{Channel: ChannelName, Code: resp.StatusCode, Message: resp.Status, Kind: adapters.ErrTemporary}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, &adapters.APIError{Channel: ChannelName, Code: resp.StatusCode, Message: resp.Status, Kind: adapters.ErrUnauthorized}
	}
	return nil, &adapters.APIError{Channel: ChannelName, Code: resp.StatusCode, Message: resp.Status}
}
