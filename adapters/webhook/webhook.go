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
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// ChannelName is the registry name of the webhook channel.
const ChannelName = "webhook"

// EventsPath is where signed CloudEvents are posted.
const EventsPath = "/events"

// Config configures the channel; keys are webhook.<yaml tag>.
type Config struct {
	// Secret signs both directions: "whsec_" followed by base64 of 24 to
	// 64 random bytes, as Standard Webhooks libraries generate. Setting it
	// turns the channel on.
	Secret string `yaml:"secret" secret:"true"`
	// Tolerance is how far a webhook-timestamp may be from now. Default 5m.
	Tolerance time.Duration `yaml:"tolerance"`
	// MaxBatch caps the events of one batch request. Default 1000.
	MaxBatch int `yaml:"max_batch"`
	// URL, when set, receives outbound messages (Send) as signed POSTs.
	URL string `yaml:"url"`
}

// Enabled reports whether the channel is configured.
func (c *Config) Enabled() bool { return c.Secret != "" }

// Validate checks an enabled configuration.
func (c *Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	if _, err := decodeSecret(c.Secret); err != nil {
		errs = append(errs, fmt.Errorf("webhook.secret: %w", err))
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

func decodeSecret(s string) ([]byte, error) {
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

// Channel receives signed CloudEvents and sends signed webhooks.
type Channel struct {
	cfg  Config
	key  []byte
	rec  adapters.Recorder
	http *http.Client
	log  *slog.Logger
	now  func() time.Time
}

var (
	_ adapters.Channel      = (*Channel)(nil)
	_ adapters.HTTPReceiver = (*Channel)(nil)
)

// New returns the channel for an enabled configuration.
func New(cfg Config, rec adapters.Recorder, log *slog.Logger) (*Channel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, err := decodeSecret(cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("webhook.secret: %w", err)
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = 5 * time.Minute
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 1000
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Channel{cfg: cfg, key: key, rec: rec, http: &http.Client{Timeout: 10 * time.Second}, log: log, now: time.Now}, nil
}

// Name is "webhook".
func (c *Channel) Name() string { return ChannelName }

// Sign returns the webhook-signature value for a message: "v1," and the
// base64 HMAC-SHA256 of "id.timestamp.body".
func Sign(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify errors.
var (
	ErrMissingHeaders = errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	ErrStale          = errors.New("webhook-timestamp outside the allowed window")
	ErrSignature      = errors.New("no matching signature")
)

// verify checks the Standard Webhooks headers of a request body.
func (c *Channel) verify(h http.Header, body []byte) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrStale
	}
	if d := c.now().Sub(time.Unix(sec, 0)); d > c.cfg.Tolerance || d < -c.cfg.Tolerance {
		return ErrStale
	}
	want := Sign(c.key, id, sec, body)
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return ErrSignature
}

// Send posts a message to the brand's URL as a signed JSON webhook; the
// webhook-id is the idempotency key, so the receiver can drop repeats.
func (c *Channel) Send(ctx context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	if c.cfg.URL == "" {
		return nil, &adapters.APIError{Channel: ChannelName, Message: "webhook.url is not set", Kind: adapters.ErrInvalidRecipient}
	}
	body, err := json.Marshal(map[string]any{"to": m.To, "to_party": m.ToParty, "kind": m.Kind, "text": m.Text, "fields": m.Fields})
	if err != nil {
		return nil, err
	}
	id := m.IdempotencyKey
	if id == "" {
		b := make([]byte, 12)
		rand.Read(b)
		id = "msg_" + base64.RawURLEncoding.EncodeToString(b)
	}
	ts := c.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(c.key, id, ts, body))
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &adapters.APIError{Channel: ChannelName, Message: err.Error(), Kind: adapters.ErrTemporary}
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	switch {
	case resp.StatusCode/100 == 2:
		return &adapters.Receipt{ExternalID: id}, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, &adapters.APIError{Channel: ChannelName, Code: resp.StatusCode, Message: resp.Status, Kind: adapters.ErrRateLimited}
	case resp.StatusCode >= 500:
		return nil, &adapters.APIError{Channel: ChannelName, Code: resp.StatusCode, Message: resp.Status, Kind: adapters.ErrTemporary}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, &adapters.APIError{Channel: ChannelName, Code: resp.StatusCode, Message: resp.Status, Kind: adapters.ErrUnauthorized}
	}
	return nil, &adapters.APIError{Channel: ChannelName, Code: resp.StatusCode, Message: resp.Status}
}
