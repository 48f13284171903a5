package dingtalk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// ChannelName is the registry name of the DingTalk channel, and the
// Channel of every Inbound it records.
const ChannelName = "dingtalk"

// DefaultHost is the default StreamHost and APIBase.
const DefaultHost = "https://api.dingtalk.com"

var (
	_ adapters.Channel  = (*Client)(nil)
	_ adapters.Streamer = (*Client)(nil)
)

// Config is the DingTalk app the channel connects as. The YAML keys are
// dingtalk.<yaml tag>, each with its SCRMGW_DINGTALK_* environment form;
// they configure the instance named "default" (channel key "dingtalk").
// Further apps are dingtalk.instances.<name>, each a Config of its own
// (channel key "dingtalk:<name>"), with the environment form
// SCRMGW_DINGTALK_INSTANCES_<NAME>_<KEY>.
type Config struct {
	// ClientID is the app's AppKey (stream mode's clientId). Required when
	// DingTalk is enabled.
	ClientID string `yaml:"client_id"`
	// ClientSecret is the app's AppSecret. Required when DingTalk is
	// enabled. It is never logged.
	ClientSecret string `yaml:"client_secret" secret:"true"`
	// RobotCode is the robot that sends proactive messages. Default
	// ClientID, the robotCode of an organisation's internal app robot.
	RobotCode string `yaml:"robot_code"`
	// Brand is the brand whose members and guides use this app, set on
	// every Inbound. Optional.
	Brand string `yaml:"brand"`
	// StreamHost is where connections/open is called. Default
	// https://api.dingtalk.com.
	StreamHost string `yaml:"stream_host"`
	// APIBase is the OpenAPI base URL used for access tokens and robot
	// messages. Default https://api.dingtalk.com.
	APIBase string `yaml:"api_base"`
	// SendRate is the instance's send rate ("20/s", "off"). Default:
	// send.rate.dingtalk (each app's), else the channel's own rate
	// (Spec().Rate).
	SendRate string `yaml:"send_rate"`
	// Instances are further DingTalk apps, by instance name: lower-case
	// letters, digits, '-' and '_'. Only the top-level dingtalk section
	// has them.
	Instances map[string]Config `yaml:"instances"`
}

// Enabled reports whether this instance is configured: any of
// client_id, client_secret or robot_code is set.
func (c Config) Enabled() bool {
	return c.ClientID != "" || c.ClientSecret != "" || c.RobotCode != ""
}

// AnyEnabled reports whether any instance is configured.
func (c Config) AnyEnabled() bool { return len(c.All()) > 0 }

// Named is one configured instance of the DingTalk channel.
type Named = adapters.Named[Config]

// All lists the configured instances: the default first (when enabled),
// then the named ones by name.
func (c Config) All() []Named {
	d := c
	d.Instances = nil
	return adapters.Instances(ChannelName, d, c.Enabled(), c.Instances)
}

// Validate reports every problem of the default instance (when enabled)
// and of every named one, naming the keys (dingtalk.instances.cn.client_id).
// No two instances may be the same app (client_id).
func (c Config) Validate() error {
	var errs []error
	seen := map[string]string{}
	if c.Enabled() {
		errs = append(errs, c.validate("dingtalk.", "DingTalk is enabled"))
		seen[c.ClientID] = "dingtalk"
	}
	names, nameErrs := adapters.InstanceNames("dingtalk", c.Instances, func(ic Config) bool { return len(ic.Instances) > 0 })
	errs = append(errs, nameErrs...)
	for _, name := range names {
		prefix := "dingtalk.instances." + name + "."
		ic := c.Instances[name]
		if strings.TrimSpace(ic.ClientID) == "" {
			errs = append(errs, fmt.Errorf("%sclient_id: required", prefix))
			continue
		}
		errs = append(errs, ic.validate(prefix, "it is an instance"))
		if other, ok := seen[ic.ClientID]; ok {
			errs = append(errs, fmt.Errorf("%sclient_id: app %s is also %s", prefix, ic.ClientID, other))
		}
		seen[ic.ClientID] = "dingtalk.instances." + name
	}
	return errors.Join(errs...)
}

// validate checks one instance's keys, each named prefix+key.
func (c Config) validate(prefix, when string) error {
	var errs []error
	if strings.TrimSpace(c.ClientID) == "" {
		errs = append(errs, fmt.Errorf("%sclient_id: required when %s", prefix, when))
	}
	if c.ClientSecret == "" {
		errs = append(errs, fmt.Errorf("%sclient_secret: required when %s", prefix, when))
	}
	if c.RobotCode != "" && strings.TrimSpace(c.RobotCode) != c.RobotCode {
		errs = append(errs, fmt.Errorf("%srobot_code: must not have leading or trailing spaces", prefix))
	}
	for _, u := range []struct{ key, val string }{{prefix + "stream_host", c.StreamHost}, {prefix + "api_base", c.APIBase}} {
		if u.val == "" {
			continue
		}
		if err := checkBaseURL(u.val); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.key, err))
		}
	}
	return errors.Join(errs...)
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must have no user info, query or fragment", s)
	}
	return nil
}

// withDefaults returns c with its defaults filled in.
func (c Config) withDefaults() Config {
	if c.RobotCode == "" {
		c.RobotCode = c.ClientID
	}
	if c.StreamHost == "" {
		c.StreamHost = DefaultHost
	}
	if c.APIBase == "" {
		c.APIBase = DefaultHost
	}
	c.StreamHost = strings.TrimRight(c.StreamHost, "/")
	c.APIBase = strings.TrimRight(c.APIBase, "/")
	return c
}

// String describes c with the secret masked, so that printing a Config
// does not leak it.
func (c Config) String() string {
	return fmt.Sprintf("dingtalk.Config{ClientID:%q ClientSecret:%s RobotCode:%q Brand:%q StreamHost:%q APIBase:%q}",
		c.ClientID, maskSecret(c.ClientSecret), c.RobotCode, c.Brand, c.StreamHost, c.APIBase)
}

// LogValue logs c with the secret masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", maskSecret(c.ClientSecret)),
		slog.String("robot_code", c.RobotCode),
		slog.String("brand", c.Brand),
		slog.String("stream_host", c.StreamHost),
		slog.String("api_base", c.APIBase),
	)
}

func maskSecret(s string) string {
	if s == "" {
		return `""`
	}
	return "[masked]"
}

// GuideResolver tells guides from members. The wiring answers it from the
// guides' DingTalk ids in the store.
type GuideResolver interface {
	// IsGuide reports whether staffID, a DingTalk userid (senderStaffId),
	// belongs to a known guide. An error makes the delivery fail, to be
	// retried, rather than guess.
	IsGuide(ctx context.Context, staffID string) (bool, error)
}

// GuideFunc adapts a function to GuideResolver.
type GuideFunc func(ctx context.Context, staffID string) (bool, error)

// IsGuide calls f.
func (f GuideFunc) IsGuide(ctx context.Context, staffID string) (bool, error) { return f(ctx, staffID) }

// Deps is what the channel needs from the rest of the gateway.
type Deps struct {
	// Instance names the app among the gateway's DingTalk instances; ""
	// or adapters.DefaultInstance is the default, whose channel key is
	// "dingtalk". Another name gives the key "dingtalk:<name>", the
	// Channel of every Inbound the instance records.
	Instance string
	// Recorder durably records inbound messages and events; a frame is
	// acknowledged to DingTalk only after Record returned nil. Required.
	Recorder adapters.Recorder
	// Tokens caches the OpenAPI access token, shared between replicas.
	// Required.
	Tokens adapters.TokenCache
	// Guides tells guides from members. Required.
	Guides GuideResolver
	// Logger receives the channel's logs. Default slog.Default().
	Logger *slog.Logger
	// HTTPClient makes the OpenAPI, session webhook and connections/open
	// calls. When its Transport is an *http.Transport, the WebSocket dial
	// uses the same proxy, TLS and dial settings. Default a client with a
	// 15s timeout.
	HTTPClient *http.Client
	// Clock tells the time session webhooks expire by, and stamps State.
	// Default time.Now.
	Clock func() time.Time
	// OnStateChange, if set, is called with true when the stream
	// connection is up and false when it went down, in order, from the
	// goroutine running Run. Use it to drive a gauge. It must not block.
	OnStateChange func(connected bool)
}

// Client is the DingTalk channel: it receives robot messages and contact
// events over a stream-mode connection (Run) and sends robot messages
// through session webhooks and the OpenAPI (Send). It is safe for
// concurrent use; Run may be running once at a time.
type Client struct {
	cfg Config
	// key is the instance's channel key.
	key      string
	recorder adapters.Recorder
	tokens   adapters.TokenCache
	guides   GuideResolver
	log      *slog.Logger
	http     *http.Client
	now      func() time.Time
	onState  func(connected bool)

	// Stream tuning; tests shorten them.
	backoffMin    time.Duration // first reconnect delay
	backoffMax    time.Duration // cap of the reconnect delay
	healthyAfter  time.Duration // a connection up this long resets the backoff
	pingInterval  time.Duration // WebSocket keep-alive ping period
	readTimeout   time.Duration // no frame nor pong for this long: connection dead
	writeTimeout  time.Duration
	dialTimeout   time.Duration // connections/open and the WebSocket handshake
	recordTimeout time.Duration // one Record call
	recordTries   int           // Record attempts before a frame is answered as failed
	recordRetry   time.Duration // first delay between Record attempts
	drainTimeout  time.Duration // on shutdown, time left to record frames already read

	running atomic.Bool

	stateMu sync.Mutex
	state   ConnState

	tokenSem chan struct{} // one token refresh at a time in this process
}

// New returns the DingTalk channel for an enabled, valid configuration.
// It checks cfg and deps but makes no network call.
func New(cfg Config, deps Deps) (*Client, error) {
	if !cfg.Enabled() {
		return nil, errors.New("dingtalk: not configured (dingtalk.client_id and dingtalk.client_secret are empty)")
	}
	cfg.Instances = nil
	prefix := "dingtalk."
	if deps.Instance != "" && deps.Instance != adapters.DefaultInstance {
		if err := adapters.ValidInstanceName(deps.Instance); err != nil {
			return nil, fmt.Errorf("dingtalk: %w", err)
		}
		prefix = "dingtalk.instances." + deps.Instance + "."
	}
	if err := cfg.validate(prefix, "DingTalk is enabled"); err != nil {
		return nil, err
	}
	var missing []string
	if deps.Recorder == nil {
		missing = append(missing, "Recorder")
	}
	if deps.Tokens == nil {
		missing = append(missing, "Tokens")
	}
	if deps.Guides == nil {
		missing = append(missing, "Guides")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("dingtalk: missing deps: %s", strings.Join(missing, ", "))
	}
	c := &Client{
		cfg:           cfg.withDefaults(),
		key:           adapters.InstanceKey(ChannelName, deps.Instance),
		recorder:      deps.Recorder,
		tokens:        deps.Tokens,
		guides:        deps.Guides,
		log:           deps.Logger,
		http:          deps.HTTPClient,
		now:           deps.Clock,
		onState:       deps.OnStateChange,
		backoffMin:    time.Second,
		backoffMax:    time.Minute,
		healthyAfter:  30 * time.Second,
		pingInterval:  30 * time.Second,
		readTimeout:   90 * time.Second,
		writeTimeout:  10 * time.Second,
		dialTimeout:   10 * time.Second,
		recordTimeout: 10 * time.Second,
		recordTries:   3,
		recordRetry:   200 * time.Millisecond,
		drainTimeout:  5 * time.Second,
		tokenSem:      make(chan struct{}, 1),
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With(slog.String("channel", c.key))
	if c.http == nil {
		c.http = &http.Client{Timeout: 15 * time.Second}
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.state = ConnState{Status: StatusDisconnected, Since: c.now()}
	return c, nil
}

// Name returns the instance's channel key: "dingtalk" for the default
// instance, "dingtalk:<name>" for the others.
func (c *Client) Name() string { return c.key }

// Status is the state of the stream connection.
type Status int

// States of the stream connection.
const (
	// StatusDisconnected: Run is not running, or waits to reconnect.
	StatusDisconnected Status = iota
	// StatusConnecting: registering with connections/open and dialling.
	StatusConnecting
	// StatusConnected: the WebSocket is up and frames are received.
	StatusConnected
)

func (s Status) String() string {
	switch s {
	case StatusDisconnected:
		return "disconnected"
	case StatusConnecting:
		return "connecting"
	case StatusConnected:
		return "connected"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// ConnState describes the stream connection.
type ConnState struct {
	Status Status
	// Since is when Status was entered.
	Since time.Time
	// LastErr is the error that ended the latest connection or connection
	// attempt, nil when it ended cleanly (a SYSTEM disconnect, or Run's
	// context ending). It stays set while the next connection is tried
	// and while it is up.
	LastErr error
	// Connects counts the connections established since the Client was
	// made.
	Connects int
}

// State returns the stream connection's state.
func (c *Client) State() ConnState {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.state
}

// Connected reports whether the stream connection is up: what /readyz
// asks. A gauge can read it too:
//
//	prometheus.NewGaugeFunc(opts, func() float64 { if ch.Connected() { return 1 }; return 0 })
func (c *Client) Connected() bool {
	return c.State().Status == StatusConnected
}

// setState moves to status. Moving to StatusDisconnected sets LastErr to
// err. It calls OnStateChange when connectedness changed; only Run calls
// it, so the callbacks are made in order.
func (c *Client) setState(status Status, err error) {
	c.stateMu.Lock()
	was := c.state.Status == StatusConnected
	if c.state.Status != status {
		c.state.Status = status
		c.state.Since = c.now()
	}
	if status == StatusDisconnected {
		c.state.LastErr = err
	}
	if status == StatusConnected {
		c.state.Connects++
	}
	c.stateMu.Unlock()
	if is := status == StatusConnected; is != was && c.onState != nil {
		c.onState(is)
	}
}

// readBody reads at most 1 MiB of an HTTP response body.
func readBody(r io.Reader) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, 1<<20))
}
