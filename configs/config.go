// Package configs holds scrmgw's one Config struct, its documented
// defaults, and Load, which reads a YAML file and applies SCRMGW_*
// environment overrides. Unknown keys and invalid values are errors that
// name the key (and, for files, the line and column).
//
// The directory also holds the example configuration (scrmgw.yaml) and,
// in later subdirectories, example workflows, bot settings and sample data;
// tests load every example so they never rot.
package configs

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/adapters/wechatoa"
	"github.com/scrmgw/scrmgw/adapters/wecom"
)

// Config is the whole configuration of a scrmgw process. Every field's
// comment states its default; the YAML key is the field's yaml tag, and the
// environment form is SCRMGW_ followed by the upper-cased key path joined
// with underscores (http.addr ↔ SCRMGW_HTTP_ADDR). Secrets can also be read
// from a file named by the variable with _FILE appended
// (SCRMGW_ADMIN_TOKEN_FILE).
type Config struct {
	// DataDir holds the zero-setup SQLite database and generated secrets.
	// Default "./data".
	DataDir string `yaml:"data_dir"`
	// AdminToken is the bearer token with full access to the admin API.
	// Default: none. Required with PostgreSQL; in the zero-setup mode a
	// random token is generated into DataDir/admin-token.
	AdminToken string `yaml:"admin_token" secret:"true"`
	// AdminTokenNext is a second admin token, valid as well as
	// AdminToken, for rotating it without downtime: set the new token
	// here, move the clients to it, then make it admin_token and clear
	// this (docs/security.md). The audit trail names requests made with
	// it "admin_next". Default: none.
	AdminTokenNext string `yaml:"admin_token_next" secret:"true"`

	// TemplatesDir holds the message templates (one YAML file each).
	// Default: the built-in templates of configs/templates.
	TemplatesDir string `yaml:"templates_dir"`
	// Locale is the language messages are rendered in when a member's is
	// unknown: zh or en. Default "zh".
	Locale string `yaml:"locale"`

	HTTP     HTTPConfig     `yaml:"http"`
	Database DatabaseConfig `yaml:"database"`
	Redis    RedisConfig    `yaml:"redis"`
	Queue    QueueConfig    `yaml:"queue"`
	Send     SendConfig     `yaml:"send"`
	Security SecurityConfig `yaml:"security"`
	Log      LogConfig      `yaml:"log"`
	Assign   AssignConfig   `yaml:"assign"`
	Bots     BotsConfig     `yaml:"bots"`
	Tasks    TasksConfig    `yaml:"tasks"`
	// WeCom configures the WeCom channel; it is off while wecom.corp_id is
	// empty.
	WeCom wecom.Config `yaml:"wecom"`
	// DingTalk configures the DingTalk channel (stream mode); it is off
	// while dingtalk.client_id is empty.
	DingTalk dingtalk.Config `yaml:"dingtalk"`
	// WeChatOA configures the brand's WeChat Official Account
	// (docs/wechat-oa.md); it is off while wechat_oa.app_id is empty.
	WeChatOA wechatoa.Config `yaml:"wechat_oa"`
	// Webhook receives the brand's signed CloudEvents at
	// /callbacks/events (from sources managed through the API, and the
	// "default" source webhook.secret defines) and posts signed webhooks
	// back to webhook.url.
	Webhook webhook.Config `yaml:"webhook"`
	Ledger  LedgerConfig   `yaml:"ledger"`
	Coupons CouponsConfig  `yaml:"coupons"`
	Console ConsoleConfig  `yaml:"console"`
	Privacy PrivacyConfig  `yaml:"privacy"`
}

// PrivacyConfig configures how long personal data is kept
// (docs/security.md).
type PrivacyConfig struct {
	// Retention is how long the texts of messages (inbox and outbox
	// payloads), the personal attributes of events and the free text of
	// run steps, send attempts and handovers are kept; older ones are
	// stripped by an hourly job. 0s keeps them. Default 4320h (180 days).
	Retention time.Duration `yaml:"retention"`
	// AuditRetention is how long audit_log entries are kept; older ones
	// are deleted by the same hourly job. 0s keeps them. At least 720h
	// (30 days): the database refuses to delete younger entries. Default
	// 8760h (365 days).
	AuditRetention time.Duration `yaml:"audit_retention"`
}

// AuditMinRetention is the least privacy.audit_retention: audit_log's
// trigger refuses to delete entries younger than this
// (store.AuditMinRetention, which must be the same).
const AuditMinRetention = 30 * 24 * time.Hour

// ConsoleConfig configures the web console at /console/ (docs/console.md).
type ConsoleConfig struct {
	// IdleTimeout signs a browser out after that long without a request.
	// Default 8h.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxAge signs a browser out that long after it signed in, however
	// busy. Default 168h (7 days).
	MaxAge time.Duration `yaml:"max_age"`
	// PublicURL is the address people open the console at, when a
	// reverse proxy terminates TLS (https://scrm.example.com): an https
	// URL makes the session cookie Secure on every request. Requests
	// served over TLS get Secure cookies in any case. Default: none.
	PublicURL string `yaml:"public_url"`
}

// SecureCookies reports whether the console's cookies must be Secure
// whatever the request: console.public_url is https.
func (c ConsoleConfig) SecureCookies() bool { return strings.HasPrefix(c.PublicURL, "https://") }

// CouponsConfig names the coupon batches workflows issue from.
type CouponsConfig struct {
	// File is a YAML file of coupon batches. Default: the built-in
	// configs/coupons/coupons.yaml.
	File string `yaml:"file"`
}

// LedgerConfig configures commissions and their settlement.
type LedgerConfig struct {
	// TimeZone is the zone whose days settlements cover (IANA name).
	// Default "Asia/Shanghai".
	TimeZone string `yaml:"time_zone"`
	// Rules is a YAML file of commission rules. Default: the built-in
	// configs/ledger/commission.yaml.
	Rules string `yaml:"rules"`
	// GuidePoints is a YAML file of guide points rules. Default: the
	// built-in configs/ledger/guide_points.yaml.
	GuidePoints string `yaml:"guide_points"`
	// SettleAfter is how long after midnight (in TimeZone) the previous
	// day is settled by itself (T+1). Default 30m; at most 23h.
	SettleAfter time.Duration `yaml:"settle_after"`
}

// HTTPConfig configures the gateway's HTTP server.
type HTTPConfig struct {
	// Addr is the listen address. Default ":8080".
	Addr string `yaml:"addr"`
	// MaxBodyBytes limits request bodies of single-object API calls and
	// callbacks. Default 1048576 (1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxBulkBodyBytes limits bodies of bulk API calls. Default 33554432
	// (32 MiB).
	MaxBulkBodyBytes int64 `yaml:"max_bulk_body_bytes"`
	// ReadTimeout bounds reading a whole request. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// ShutdownTimeout bounds the graceful shutdown of in-flight requests
	// and queue tasks. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// RefusedRate is how many refused requests per second a client IP may
	// make on the callbacks, /events and the admin API (401, and on
	// callbacks also 400, 403, 413 and 415) before its requests are
	// answered 429 with Retry-After. Accepted requests cost nothing, so
	// a platform delivering valid callbacks is never throttled. 0 turns
	// the limit off. Default 20.
	RefusedRate float64 `yaml:"refused_rate"`
	// RefusedBurst is how many refused requests a client IP may make at
	// once before RefusedRate applies. Default 100.
	RefusedBurst int `yaml:"refused_burst"`
	// TrustedProxies are the addresses (IPs or CIDRs) of reverse proxies
	// whose X-Forwarded-For names the client; a request from anywhere
	// else is the client itself. Default: loopback and private networks
	// (127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, ::1/128,
	// fc00::/7); empty trusts no proxy.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MetricsToken, when set, is required on /metrics as
	// "Authorization: Bearer <token>" (Prometheus: authorization.credentials).
	// Default: none, /metrics answers anyone; keep it off public
	// listeners then.
	MetricsToken string `yaml:"metrics_token" secret:"true"`
	// WorkerAddr is where `scrmgw worker` answers /healthz, /readyz and
	// /metrics (with metrics_token as on http.addr): the probes and the
	// scrape of a worker, which serves nothing else. `scrmgw worker
	// --listen ADDR` sets it too. Default: none, the worker listens on
	// nothing. `scrmgw serve` ignores it (http.addr has the same routes).
	WorkerAddr string `yaml:"worker_addr"`
	// PublicURL is the gateway's address as members' phones reach it
	// (https://scrm.example.com), for links in messages: the member code
	// page with its QR code and barcode (docs/retail.md). Default: none;
	// the member code is then sent as text only.
	PublicURL string `yaml:"public_url"`
}

// DefaultTrustedProxies is the default of http.trusted_proxies.
var DefaultTrustedProxies = []string{"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7"}

// DatabaseConfig selects the database.
type DatabaseConfig struct {
	// URL is a PostgreSQL URL (postgres://user:pass@host:5432/db?sslmode=disable)
	// or sqlite:PATH. Default: sqlite at DataDir/scrmgw.db (zero-setup mode).
	URL string `yaml:"url" secret:"true"`
	// MaxOpenConns caps open connections (PostgreSQL). Default 20.
	MaxOpenConns int `yaml:"max_open_conns"`
	// InboxCommitters is how many batches of inbound callbacks may be
	// committing at once (PostgreSQL; SQLite has one writer). Each holds
	// a connection while it commits. More overlap the WAL flushes of a
	// durable database, which is what a callback's latency waits on.
	// Default (0): a third of max_open_conns, at most 6 (InboxCommitterCount).
	InboxCommitters int `yaml:"inbox_committers"`
	// InboxLinger is how long a new batch of inbound callbacks waits for
	// company before it commits, when a committer is free (0s: not at
	// all). Longer makes fewer, larger statements; every callback's
	// answer waits for it. Default 1ms.
	InboxLinger time.Duration `yaml:"inbox_linger"`
}

// InboxCommitterCount is database.inbox_committers, or its default: a
// third of max_open_conns, from 1 to 6. Six overlap enough commits on a
// durable PostgreSQL (docs/performance-callbacks.md: 16.7k callbacks/s at
// 64 connections against 14.5k with three).
func (d DatabaseConfig) InboxCommitterCount() int {
	if d.InboxCommitters > 0 {
		return d.InboxCommitters
	}
	return min(max(d.MaxOpenConns/3, 1), 6)
}

// RedisConfig selects the Redis server the queues live on.
type RedisConfig struct {
	// URL is redis://[:password@]host:port[/db], rediss://... for TLS, or
	// redis-sentinel://[:password@]host1:port,host2:port/db?master=NAME for
	// Sentinel failover (the password is the Redis servers' and the
	// Sentinels'; &sentinel_password= sets the Sentinels' apart). Default: an in-process Redis-compatible server
	// (zero-setup mode, not durable).
	URL string `yaml:"url" secret:"true"`
	// ClusterAddrs lists Redis Cluster nodes (host:port); when set, URL is
	// ignored. asynq has known problems on Redis Cluster: prefer Sentinel.
	// Default: none.
	ClusterAddrs []string `yaml:"cluster_addrs"`
	// ClusterPassword is the Redis Cluster password. Default: none.
	ClusterPassword string `yaml:"cluster_password" secret:"true"`
}

// QueueConfig configures the asynq workers.
type QueueConfig struct {
	// Concurrency is the number of tasks a process works on at once.
	// Default 20.
	Concurrency int `yaml:"concurrency"`
	// WorkflowConcurrency is how many workflow wakes a process handles at
	// once (they wait, briefly, for their exact time). Default 500.
	WorkflowConcurrency int `yaml:"workflow_concurrency"`
}

// SendConfig limits outbound sends.
type SendConfig struct {
	// Rate is each channel's send rate, shared by every replica (the
	// schedule is kept in Redis).
	Rate SendRates `yaml:"rate"`
	// CriticalShare is the part of each channel's rate kept for the
	// critical queue (welcomes), so they never wait behind a backlog.
	// Default 0.2.
	CriticalShare float64 `yaml:"critical_share"`
	// MaxWait is how long a send over the rate waits in its worker for
	// its slot; one due later goes back to the queue until then.
	// Default 1s.
	MaxWait time.Duration `yaml:"max_wait"`
	// Lease is how long a claimed send (outbox state sending) belongs to
	// the worker that claimed it. A claim older than that belongs to a
	// worker that died mid-send: the outbox sweep (every minute, and at
	// a worker's start) asks the channel whether the message went out,
	// and marks it sent, sends it again, or, when the channel cannot
	// tell, fails it for an operator. At least 40s (a send may take
	// 30s). Default 2m.
	Lease time.Duration `yaml:"lease"`
}

// SendRates are send rates per channel kind: "50/s", "600/min",
// "150000/h" or "off". A channel instance's rate is, the first set of:
// its own section's send_rate (wecom.send_rate,
// wecom.instances.<name>.send_rate); send.rate.<kind>, which is each
// instance's of the kind (every corp or app has its own limit at the
// vendor); the channel's own default. A channel kind without a key here
// is rated by its section's send_rate or its default.
type SendRates struct {
	// WeCom: default 40/s (WeCom allows a corp 150,000 calls of an API an
	// hour, 41.7/s, and 10,000 a minute).
	WeCom string `yaml:"wecom"`
	// DingTalk: default 20/s (an internal app may call an API 20 times a
	// second).
	DingTalk string `yaml:"dingtalk"`
	// Webhook: default off.
	Webhook string `yaml:"webhook"`
}

// For returns the rate send.rate.<kind> sets, and that key; "" when the
// kind has no key here or it is unset.
func (r SendRates) For(kind string) (rate, key string) {
	v := reflect.ValueOf(r)
	for i := 0; i < v.NumField(); i++ {
		if strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0] == kind {
			return v.Field(i).String(), "send.rate." + kind
		}
	}
	return "", ""
}

// SecurityConfig holds keys for data at rest.
type SecurityConfig struct {
	// PhoneKey encrypts phone numbers at rest (AES-256-GCM) and keys their
	// lookup hash: 32 bytes as 64 hex characters or base64. Default: none;
	// required with PostgreSQL; in the zero-setup mode a random key is
	// generated into DataDir/phone.key. Changing it makes stored phone
	// numbers unreadable.
	PhoneKey string `yaml:"phone_key" secret:"true"`
}

// AssignConfig configures how members are bound to guides.
type AssignConfig struct {
	// MaxDistanceKm is how far the nearest-store walk looks. Default 50.
	MaxDistanceKm float64 `yaml:"max_distance_km"`
	// OnlinePools lists "brand:store_id" pairs: the store whose guides
	// serve a brand's members no nearby store can take. Default: none
	// (such members stay unassigned).
	OnlinePools []string `yaml:"online_pools"`
}

// Pools returns OnlinePools as a brand → store map.
func (a AssignConfig) Pools() map[string]string {
	m := make(map[string]string, len(a.OnlinePools))
	for _, p := range a.OnlinePools {
		brand, storeID, _ := strings.Cut(p, ":")
		m[brand] = storeID
	}
	return m
}

// BotsConfig configures the member and guide bots.
type BotsConfig struct {
	// HandoffIdle ends a conversation handed to a guide after this long
	// without a message either way; both sides are told. Default 30m.
	HandoffIdle time.Duration `yaml:"handoff_idle"`
	// DigestTime is when guides get their daily digest, HH:MM in their
	// store's time zone. Default "09:00".
	DigestTime string `yaml:"digest_time"`
}

// TasksConfig configures the reminders guides get of their tasks. A
// reminder that falls outside the opening hours of the guide's store (in
// its time zone) goes out when the store opens next.
type TasksConfig struct {
	// RemindBefore reminds a guide of an open task this long before it
	// is due; 0s sends no such reminder. Default 2h.
	RemindBefore time.Duration `yaml:"remind_before"`
	// RemindAtDue reminds a guide of an open task when it is due.
	// Default true.
	RemindAtDue bool `yaml:"remind_at_due"`
	// RemindEvery is how often the reminder sweep runs (at least 1s).
	// Default 1m.
	RemindEvery time.Duration `yaml:"remind_every"`
}

// DigestAt returns DigestTime as a time of day.
func (b BotsConfig) DigestAt() (time.Duration, error) {
	t, err := time.Parse("15:04", b.DigestTime)
	if err != nil {
		return 0, fmt.Errorf("want HH:MM, got %q", b.DigestTime)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// LogConfig configures logging.
type LogConfig struct {
	// Level is debug, info, warn or error. Default "info".
	Level string `yaml:"level"`
	// Format is text or json. Default "text".
	Format string `yaml:"format"`
}

// A section of Config that its own package defines (a channel's) states
// its defaults and checks itself: adding one is adding its field, whose
// YAML and SCRMGW_* keys follow from its type.
type (
	defaulter interface{ SetDefaults() }
	validator interface{ Validate() error }
)

// sections calls f with a pointer to each field of c.
func (c *Config) sections(f func(any)) {
	v := reflect.ValueOf(c).Elem()
	for i := 0; i < v.NumField(); i++ {
		f(v.Field(i).Addr().Interface())
	}
}

// Default returns the configuration with every default applied.
func Default() Config {
	c := defaults()
	c.sections(func(s any) {
		if d, ok := s.(defaulter); ok {
			d.SetDefaults()
		}
	})
	return c
}

func defaults() Config {
	return Config{
		DataDir: "./data",
		Locale:  "zh",
		HTTP: HTTPConfig{
			Addr:             ":8080",
			MaxBodyBytes:     1 << 20,
			MaxBulkBodyBytes: 32 << 20,
			ReadTimeout:      30 * time.Second,
			ShutdownTimeout:  30 * time.Second,
			RefusedRate:      20,
			RefusedBurst:     100,
			TrustedProxies:   slices.Clone(DefaultTrustedProxies),
		},
		Database: DatabaseConfig{MaxOpenConns: 20, InboxLinger: time.Millisecond},
		Queue:    QueueConfig{Concurrency: 20, WorkflowConcurrency: 500},
		Send:     SendConfig{Rate: SendRates{WeCom: "40/s", DingTalk: "20/s", Webhook: "off"}, CriticalShare: 0.2, MaxWait: time.Second, Lease: 2 * time.Minute},
		Log:      LogConfig{Level: "info", Format: "text"},
		Assign:   AssignConfig{MaxDistanceKm: 50},
		Bots:     BotsConfig{HandoffIdle: 30 * time.Minute, DigestTime: "09:00"},
		Tasks:    TasksConfig{RemindBefore: 2 * time.Hour, RemindAtDue: true, RemindEvery: time.Minute},
		Privacy:  PrivacyConfig{Retention: 180 * 24 * time.Hour, AuditRetention: 365 * 24 * time.Hour},
		WeCom:    wecom.Config{MaxClockSkew: 10 * time.Minute, APIBase: wecom.DefaultAPIBase, MemberMassLimit: "1/day"},
		DingTalk: dingtalk.Config{StreamHost: dingtalk.DefaultHost, APIBase: dingtalk.DefaultHost},
		Webhook:  webhook.Config{Tolerance: 5 * time.Minute, MaxBatch: 1000},
		Ledger:   LedgerConfig{TimeZone: "Asia/Shanghai", SettleAfter: 30 * time.Minute},
		Console:  ConsoleConfig{IdleTimeout: 8 * time.Hour, MaxAge: 7 * 24 * time.Hour},
	}
}

// ZeroSetup reports whether the configuration runs without external
// services (SQLite and in-process Redis): for trying things out only.
func (c *Config) ZeroSetup() bool {
	return c.Database.URL == "" || c.RedisInProcess()
}

// RedisInProcess reports whether no Redis server is configured.
func (c *Config) RedisInProcess() bool {
	return c.Redis.URL == "" && len(c.Redis.ClusterAddrs) == 0
}

// IsPostgres reports whether the database is PostgreSQL.
func (c *Config) IsPostgres() bool {
	return strings.HasPrefix(c.Database.URL, "postgres://") || strings.HasPrefix(c.Database.URL, "postgresql://")
}

// Validate checks every value and returns all problems, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if c.Locale != "zh" && c.Locale != "en" {
		bad("locale", "want zh or en, got %q", c.Locale)
	}
	if _, port, err := net.SplitHostPort(c.HTTP.Addr); err != nil || port == "" {
		bad("http.addr", "want host:port or :port, got %q", c.HTTP.Addr)
	}
	if c.HTTP.WorkerAddr != "" {
		if _, port, err := net.SplitHostPort(c.HTTP.WorkerAddr); err != nil || port == "" {
			bad("http.worker_addr", "want host:port or :port, got %q", c.HTTP.WorkerAddr)
		}
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		bad("http.max_body_bytes", "must be at least 1024, got %d", c.HTTP.MaxBodyBytes)
	}
	if c.HTTP.MaxBulkBodyBytes < c.HTTP.MaxBodyBytes {
		bad("http.max_bulk_body_bytes", "must be at least http.max_body_bytes (%d), got %d", c.HTTP.MaxBodyBytes, c.HTTP.MaxBulkBodyBytes)
	}
	if c.HTTP.ReadTimeout <= 0 {
		bad("http.read_timeout", "must be positive, got %s", c.HTTP.ReadTimeout)
	}
	if c.HTTP.ShutdownTimeout <= 0 {
		bad("http.shutdown_timeout", "must be positive, got %s", c.HTTP.ShutdownTimeout)
	}
	if c.HTTP.RefusedRate < 0 || math.IsNaN(c.HTTP.RefusedRate) || math.IsInf(c.HTTP.RefusedRate, 0) {
		bad("http.refused_rate", "want 0 (off) or a positive number, got %v", c.HTTP.RefusedRate)
	}
	if c.HTTP.RefusedRate > 0 && c.HTTP.RefusedBurst < 1 {
		bad("http.refused_burst", "must be at least 1, got %d", c.HTTP.RefusedBurst)
	}
	for i, p := range c.HTTP.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad(fmt.Sprintf("http.trusted_proxies[%d]", i), "want an IP or a CIDR such as 10.0.0.0/8, got %q", p)
			}
		}
	}
	if u := c.HTTP.PublicURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || pu.RawQuery != "" || pu.Fragment != "" {
			bad("http.public_url", "want an absolute http(s) URL without query, such as https://scrm.example.com, got %q", u)
		}
	}
	if u := c.Database.URL; u != "" && !c.IsPostgres() && !strings.HasPrefix(u, "sqlite:") {
		bad("database.url", "want postgres://... or sqlite:PATH, got scheme of %q", redactURL(u))
	}
	if c.Send.Lease < 40*time.Second {
		bad("send.lease", "must be at least 40s (a send may take 30s, and a send still in flight must not be taken for a lost one), got %s", c.Send.Lease)
	}
	if c.Database.MaxOpenConns < 1 {
		bad("database.max_open_conns", "must be at least 1, got %d", c.Database.MaxOpenConns)
	}
	if n := c.Database.InboxCommitters; n < 0 || n > max(c.Database.MaxOpenConns-2, 1) {
		bad("database.inbox_committers", "must be from 1 to max_open_conns - 2 (%d), or 0 for the default, got %d", max(c.Database.MaxOpenConns-2, 1), n)
	}
	if l := c.Database.InboxLinger; l < 0 || l > 100*time.Millisecond {
		bad("database.inbox_linger", "must be from 0s to 100ms, got %v", l)
	}
	if u := c.Redis.URL; u != "" {
		pu, err := url.Parse(u)
		if err != nil {
			bad("redis.url", "not a URL")
		} else {
			switch pu.Scheme {
			case "redis", "rediss", "redis-socket", "redis-sentinel":
			default:
				bad("redis.url", "want redis://, rediss://, redis-socket:// or redis-sentinel://, got %q", pu.Scheme+"://")
			}
		}
	}
	for i, a := range c.Redis.ClusterAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad(fmt.Sprintf("redis.cluster_addrs[%d]", i), "want host:port, got %q", a)
		}
	}
	if c.Assign.MaxDistanceKm <= 0 || c.Assign.MaxDistanceKm > 20000 {
		bad("assign.max_distance_km", "want more than 0 and at most 20000, got %v", c.Assign.MaxDistanceKm)
	}
	if c.Bots.HandoffIdle <= 0 {
		bad("bots.handoff_idle", "must be more than 0, got %v", c.Bots.HandoffIdle)
	}
	if _, err := c.Bots.DigestAt(); err != nil {
		bad("bots.digest_time", "%v", err)
	}
	if c.Privacy.Retention < 0 {
		bad("privacy.retention", "must not be negative (0s keeps everything), got %v", c.Privacy.Retention)
	}
	if a := c.Privacy.AuditRetention; a != 0 && a < AuditMinRetention {
		bad("privacy.audit_retention", "want 0s (keep every entry) or at least %v (the database refuses to delete younger entries), got %v",
			AuditMinRetention, a)
	}
	if c.Tasks.RemindBefore < 0 {
		bad("tasks.remind_before", "must not be negative, got %v", c.Tasks.RemindBefore)
	}
	if c.Tasks.RemindEvery < time.Second {
		bad("tasks.remind_every", "must be at least 1s, got %v", c.Tasks.RemindEvery)
	}
	for i, p := range c.Assign.OnlinePools {
		if b, st, ok := strings.Cut(p, ":"); !ok || b == "" || st == "" {
			bad(fmt.Sprintf("assign.online_pools[%d]", i), "want brand:store_id, got %q", p)
		}
	}
	if c.Queue.Concurrency < 1 {
		bad("queue.concurrency", "must be at least 1, got %d", c.Queue.Concurrency)
	}
	if c.Queue.WorkflowConcurrency < 1 {
		bad("queue.workflow_concurrency", "must be at least 1, got %d", c.Queue.WorkflowConcurrency)
	}
	if c.Security.PhoneKey != "" {
		if _, err := DecodeKey(c.Security.PhoneKey); err != nil {
			bad("security.phone_key", "%v", err)
		}
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		bad("admin_token", "must be at least 16 characters")
	}
	if c.AdminTokenNext != "" {
		if len(c.AdminTokenNext) < 16 {
			bad("admin_token_next", "must be at least 16 characters")
		}
		if c.AdminTokenNext == c.AdminToken {
			bad("admin_token_next", "is the same as admin_token; set the new token here while rotating")
		}
	}
	if c.IsPostgres() {
		if c.AdminToken == "" {
			bad("admin_token", "required with PostgreSQL (set SCRMGW_ADMIN_TOKEN)")
		}
		if c.Security.PhoneKey == "" {
			bad("security.phone_key", "required with PostgreSQL (set SCRMGW_SECURITY_PHONE_KEY to 32 random bytes in hex)")
		}
	}
	if c.Console.IdleTimeout < time.Minute {
		bad("console.idle_timeout", "must be at least 1m, got %v", c.Console.IdleTimeout)
	}
	if c.Console.MaxAge < c.Console.IdleTimeout {
		bad("console.max_age", "must be at least console.idle_timeout (%v), got %v", c.Console.IdleTimeout, c.Console.MaxAge)
	}
	if u := c.Console.PublicURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			bad("console.public_url", "want an http(s) URL such as https://scrm.example.com, got %q", u)
		}
	}
	c.sections(func(s any) {
		if v, ok := s.(validator); ok {
			if err := v.Validate(); err != nil {
				errs = append(errs, err)
			}
		}
	})
	if _, err := time.LoadLocation(c.Ledger.TimeZone); err != nil || c.Ledger.TimeZone == "" {
		bad("ledger.time_zone", "unknown time zone %q (want an IANA name such as Asia/Shanghai)", c.Ledger.TimeZone)
	}
	if c.Ledger.SettleAfter < 0 || c.Ledger.SettleAfter > 23*time.Hour {
		bad("ledger.settle_after", "want a duration from 0s to 23h, got %s", c.Ledger.SettleAfter)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "want text or json, got %q", c.Log.Format)
	}
	return errors.Join(errs...)
}

// DecodeKey decodes a 32-byte key given as 64 hex characters or base64.
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("want 32 bytes as 64 hex characters or base64")
}

// redactURL drops the user info of a URL for error messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	u.User = nil
	return u.String()
}
