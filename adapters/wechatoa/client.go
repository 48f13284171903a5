package wechatoa

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// Client is one Official Account: its callbacks and its API.
type Client struct {
	cfg      Config
	instance string
	key      string
	rec      adapters.Recorder
	tokens   adapters.TokenCache
	log      *slog.Logger
	http     *http.Client
	upload   *http.Client
	media    *adapters.Media
	maxBody  int64
	now      func() time.Time
}

var (
	_ adapters.Channel       = (*Client)(nil)
	_ adapters.HTTPReceiver  = (*Client)(nil)
	_ adapters.Specified     = (*Client)(nil)
	_ adapters.ContactLookup = (*Client)(nil)
)

// New returns the channel of the account cfg, named instance
// (adapters.DefaultInstance for the wechat_oa section's own keys).
func New(cfg Config, instance string, d adapters.Deps) (*Client, error) {
	cfg.SetDefaults()
	if err := cfg.validate(""); err != nil {
		return nil, fmt.Errorf("wechat oa %s: %w", instance, err)
	}
	if d.Recorder == nil {
		return nil, fmt.Errorf("wechat oa %s: a recorder is required", instance)
	}
	if instance == "" {
		instance = adapters.DefaultInstance
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxBody := d.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = 1 << 20
	}
	key := adapters.InstanceKey(ChannelName, instance)
	c := &Client{cfg: cfg, instance: instance, key: key, rec: d.Recorder, tokens: d.Tokens,
		log: log.With(slog.String("channel", key)), http: &http.Client{Timeout: 10 * time.Second},
		upload: &http.Client{Timeout: uploadTimeout}, maxBody: maxBody, now: time.Now}
	c.media = c.newMedia(adapters.MediaClient(cfg.MediaFetchPrivate))
	return c, nil
}

// Name is the instance's channel key: wechat_oa, wechat_oa:<name>.
func (c *Client) Name() string { return c.key }

// Spec is the channel's Spec.
func (c *Client) Spec() adapters.Spec { return c.specFor() }
