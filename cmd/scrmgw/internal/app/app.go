// Package app wires a scrmgw process from its configuration: the database,
// Redis (real, or in-process for the zero-setup mode), the asynq client,
// workers and scheduler, the channels, and the HTTP server, and runs them
// until the context ends, then shuts down gracefully.
//
// It builds the product's packages (gateway/..., bots, workflows/engine,
// the channels under adapters/) from the configuration and connects them:
// what one needs of another, declared as a small interface, is satisfied
// here by a few lines of glue (engineSender, engineAssigner, botEnroller,
// wecomResigned, redisTokens, settler). Behaviour lives in those packages,
// not here; only cmd/scrmgw imports app. See gateway's package doc for the
// layout and who may import whom.
package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/assign"
	"github.com/scrmgw/scrmgw/gateway/audit"
	"github.com/scrmgw/scrmgw/gateway/commerce"
	"github.com/scrmgw/scrmgw/gateway/groups"
	"github.com/scrmgw/scrmgw/gateway/inbox"
	"github.com/scrmgw/scrmgw/gateway/ledger"
	"github.com/scrmgw/scrmgw/gateway/links"
	"github.com/scrmgw/scrmgw/gateway/moments"
	"github.com/scrmgw/scrmgw/gateway/outbox"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/gateway/sharelink"
	"github.com/scrmgw/scrmgw/gateway/tags"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// App is one wired scrmgw process.
type App struct {
	Config   configs.Config
	Log      *slog.Logger
	Store    *store.Store
	Redis    asynq.RedisConnOpt
	RDB      redis.UniversalClient
	Queue    *asynq.Client
	Channels *adapters.Registry
	// Templates are the message templates, checked at start.
	Templates *templates.Registry

	mini *miniredis.Miniredis
	wake *queue.Wake // signalled when this process queues a task
	stop context.CancelFunc

	assigner  *assign.Assigner
	recorder  *inbox.Recorder
	sender    *outbox.Sender
	processor *inbox.Processor
	commerce  *commerce.Ingester
	ingester  *webhook.Ingester
	webhook   *webhook.Channel
	contacts  *inbox.Contacts
	// tags keeps members' tags in step with the channels' (wecomdeep.go).
	tags *tags.Syncer
	// groups keeps customer groups and sends to them (wecomdeep.go).
	groups *groups.Keeper
	// links makes contact links and warns of their quota (wecomdeep.go).
	links *links.Links
	// moments publishes moment campaigns (wecomdeep.go).
	moments  *moments.Campaigns
	messages *inbox.Messages
	engine   *engine.Engine
	// handovers hands the WeCom customers of guides who left to
	// colleagues (handovers.go); nil without WeCom.
	handovers *assign.Handovers
	// audit writes the audit trail in batches (run starts and stops it).
	audit *audit.Recorder
	// guidePoints awards guide points (incentives.go).
	guidePoints *ledger.GuidePoints
	// shares signs and verifies guides' share links (retail.go).
	shares *sharelink.Signer
	// clock is the workflow engine's time; nil: time.Now. Tests set it
	// before Serve to move workflows through days of virtual time.
	clock func() time.Time
	// extra builds the channels of WithChannel.
	extra []func(ChannelDeps) (adapters.Channel, error)
	// wrapHTTP wraps the HTTP handler Serve serves (WithHTTPWrap).
	wrapHTTP func(http.Handler) http.Handler
}

// Option changes how New wires the gateway.
type Option func(*App)

// ChannelDeps is what the gateway gives a channel it builds
// (adapters.Deps).
type ChannelDeps = adapters.Deps

// WithChannel registers one more channel, built with the gateway's
// ChannelDeps after the configured ones: a channel the configuration does
// not know (a test's). Nothing else changes for it: its HTTP routes are
// mounted, the engine, the bots and the outbox find it in the registry.
func WithChannel(build func(ChannelDeps) (adapters.Channel, error)) Option {
	return func(a *App) { a.extra = append(a.extra, build) }
}

// WithHTTPWrap wraps the HTTP handler Serve serves: the tests check
// every API answer against the OpenAPI description with it.
func WithHTTPWrap(wrap func(http.Handler) http.Handler) Option {
	return func(a *App) { a.wrapHTTP = wrap }
}

// New prepares secrets for the zero-setup mode, opens and migrates the
// database and connects to Redis (starting an in-process one when none is
// configured).
func New(ctx context.Context, cfg configs.Config, log *slog.Logger, opts ...Option) (*App, error) {
	a := &App{Config: cfg, Log: log, Channels: adapters.NewRegistry()}
	for _, o := range opts {
		o(a)
	}
	if err := a.prepareSecrets(); err != nil {
		return nil, err
	}
	if err := a.openStore(ctx); err != nil {
		return nil, err
	}
	if err := a.connectRedis(ctx); err != nil {
		a.Close()
		return nil, err
	}
	a.Queue = asynq.NewClientFromRedisClient(a.RDB)
	a.audit = audit.New(a.Store, audit.Options{Logger: a.Log})
	if err := a.loadTemplates(); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.wireChannels(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// OpenStore opens and migrates the database alone, for commands that need
// nothing else (import).
func OpenStore(ctx context.Context, cfg configs.Config, log *slog.Logger) (*store.Store, error) {
	a := &App{Config: cfg, Log: log}
	if err := a.prepareSecrets(); err != nil {
		return nil, err
	}
	if err := a.openStore(ctx); err != nil {
		return nil, err
	}
	if err := a.Migrate(ctx); err != nil {
		a.Store.Close()
		return nil, err
	}
	return a.Store, nil
}

// prepareSecrets generates the admin token and phone key into DataDir when
// they are not configured, which Validate allows only without PostgreSQL.
func (a *App) prepareSecrets() error {
	cfg := &a.Config
	if cfg.AdminToken == "" {
		tok, created, err := secretFile(filepath.Join(cfg.DataDir, "admin-token"), func() string {
			return store.TokenPrefix + "admin_" + randomB64(24)
		})
		if err != nil {
			return fmt.Errorf("preparing admin token: %w", err)
		}
		cfg.AdminToken = tok
		msg := "admin token read from file; use it as the bearer token"
		if created {
			msg = "admin token generated into file; use it as the bearer token"
		}
		a.Log.Info(msg, slog.String("file", filepath.Join(cfg.DataDir, "admin-token")))
	}
	if cfg.Security.PhoneKey == "" {
		key, _, err := secretFile(filepath.Join(cfg.DataDir, "phone.key"), func() string { return hex.EncodeToString(randomBytes(32)) })
		if err != nil {
			return fmt.Errorf("preparing phone key: %w", err)
		}
		cfg.Security.PhoneKey = key
	}
	return nil
}

// secretFile reads a secret from path, creating it (mode 0600) with gen()
// when it does not exist.
func secretFile(path string, gen func() string) (string, bool, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(data))
		if s == "" {
			return "", false, fmt.Errorf("%s is empty", path)
		}
		return s, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", false, err
	}
	s := gen()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return secretFile(path, gen) // another process won the race
	}
	if err != nil {
		return "", false, err
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	return s, true, f.Close()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return b
}

func randomB64(n int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(n)) }

func (a *App) openStore(ctx context.Context) error {
	cfg := a.Config
	key, err := configs.DecodeKey(cfg.Security.PhoneKey)
	if err != nil {
		return fmt.Errorf("security.phone_key: %w", err)
	}
	url := cfg.Database.URL
	if url == "" {
		url = "sqlite:" + filepath.Join(cfg.DataDir, "scrmgw.db")
	}
	s, err := store.Open(ctx, store.Options{URL: url, MaxOpenConns: cfg.Database.MaxOpenConns, PhoneKey: key, Logger: a.Log})
	if err != nil {
		return err
	}
	a.Store = s
	return nil
}

// Migrate applies pending migrations and logs what it did.
func (a *App) Migrate(ctx context.Context) error {
	applied, err := a.Store.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		a.Log.Info("database migrated", slog.String("dialect", a.Store.Dialect()), slog.Any("applied", applied))
	}
	return nil
}

func (a *App) connectRedis(ctx context.Context) error {
	cfg := a.Config
	switch {
	case len(cfg.Redis.ClusterAddrs) > 0:
		a.Log.Warn("using Redis Cluster: asynq has known problems on Redis Cluster; prefer Sentinel failover")
		a.Redis = asynq.RedisClusterClientOpt{Addrs: cfg.Redis.ClusterAddrs, Password: cfg.Redis.ClusterPassword}
	case cfg.Redis.URL != "":
		opt, err := redisConnOpt(cfg.Redis.URL)
		if err != nil {
			return fmt.Errorf("redis.url: %w", err)
		}
		a.Redis = opt
	default:
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("starting in-process redis: %w", err)
		}
		a.mini = m
		a.Redis = asynq.RedisClientOpt{Addr: m.Addr()}
		tickCtx, cancel := context.WithCancel(context.Background())
		a.stop = cancel
		go advanceClock(tickCtx, m)
	}
	rdb, ok := a.Redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return errors.New("connecting to redis: unexpected client type")
	}
	a.RDB = rdb
	// Idle queue servers are woken by what this process queues.
	a.wake = queue.NewWake()
	rdb.AddHook(queue.WakeHook(a.wake))
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		return fmt.Errorf("connecting to redis: %w", err)
	}
	return nil
}

// advanceClock moves the in-process Redis clock with the wall clock:
// miniredis expires keys only when its clock is advanced.
func advanceClock(ctx context.Context, m *miniredis.Miniredis) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.SetTime(now)
			m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Ready checks the database and Redis answer.
func (a *App) Ready(ctx context.Context) map[string]error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	checks := map[string]error{
		"database": a.Store.Ping(ctx),
		"redis":    a.RDB.Ping(ctx).Err(),
	}
	for _, name := range a.Channels.Names() {
		ch, _ := a.Channels.Channel(name)
		if c, ok := ch.(connector); ok && !c.Connected() {
			checks[name] = errors.New("stream not connected")
		} else if ok {
			checks[name] = nil
		}
	}
	return checks
}

// Close releases everything New opened.
func (a *App) Close() {
	if a.Queue != nil {
		a.Queue.Close()
	}
	if a.RDB != nil {
		a.RDB.Close()
	}
	if a.stop != nil {
		a.stop()
	}
	if a.mini != nil {
		a.mini.Close()
	}
	if a.Store != nil {
		a.Store.Close()
	}
}

// redisConnOpt reads redis.url. asynq reads a redis-sentinel:// URL's
// password as the Sentinels' only and drops its database: here the
// password is the Redis servers' (and the Sentinels', unless
// ?sentinel_password= says otherwise) and the path is the database, as
// for redis://.
func redisConnOpt(raw string) (asynq.RedisConnOpt, error) {
	opt, err := asynq.ParseRedisURI(raw)
	if err != nil {
		return nil, err
	}
	fo, ok := opt.(asynq.RedisFailoverClientOpt)
	if !ok {
		return opt, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if fo.MasterName == "" {
		return nil, errors.New("redis-sentinel:// needs ?master=NAME")
	}
	fo.Password = fo.SentinelPassword
	if sp, ok := u.Query()["sentinel_password"]; ok {
		fo.SentinelPassword = sp[0]
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("redis-sentinel:// database %q: want a number", db)
		}
		fo.DB = n
	}
	return fo, nil
}
