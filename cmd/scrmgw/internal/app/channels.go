package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/gateway/commerce"
	"github.com/scrmgw/scrmgw/gateway/inbox"
	"github.com/scrmgw/scrmgw/gateway/ledger"
	"github.com/scrmgw/scrmgw/gateway/outbox"
	"github.com/scrmgw/scrmgw/store"
)

// channelConnected reports long-lived channel connections (DingTalk
// stream) for /metrics.
var channelConnected = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "scrmgw_channel_connected", Help: "1 while a channel's stream connection is up.",
}, []string{"channel"})

// connector is a channel that reports whether its stream is up.
type connector interface{ Connected() bool }

// redisTokens is the adapters.TokenCache every channel shares, in Redis so
// all replicas use one access token.
type redisTokens struct{ rdb redis.UniversalClient }

const tokenKeyPrefix = "scrmgw:token:"

func (t redisTokens) Get(ctx context.Context, key string) (string, error) {
	v, err := t.rdb.Get(ctx, tokenKeyPrefix+key).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading token cache: %w", err)
	}
	return v, nil
}

func (t redisTokens) Set(ctx context.Context, key, token string, ttl time.Duration) error {
	if ttl <= 0 {
		return nil
	}
	if err := t.rdb.Set(ctx, tokenKeyPrefix+key, token, ttl).Err(); err != nil {
		return fmt.Errorf("writing token cache: %w", err)
	}
	return nil
}

func (t redisTokens) Delete(ctx context.Context, key string) error {
	if err := t.rdb.Del(ctx, tokenKeyPrefix+key).Err(); err != nil {
		return fmt.Errorf("dropping cached token: %w", err)
	}
	return nil
}

var _ adapters.TokenCache = redisTokens{}

// channelKind is one kind of channel the gateway can run any number of
// instances of (WeCom corps, DingTalk apps): a further kind is one entry
// of channelKinds.
type channelKind struct {
	kind string
	// instances lists the kind's configured instances, the default first.
	instances func(cfg configs.Config) []channelInstance
}

// channelInstance is one configured instance of a channel kind.
type channelInstance struct {
	kind, name, key string
	// rate is the instance's send rate as its section configures it,
	// rateKey the key; "" is send.rate.<kind>, else the channel's own
	// rate (SendRates).
	rate, rateKey string
	// quota is the instance's limit on messages to one member
	// (engine.ParseQuota), quotaKey the key that set it; "" is none.
	quota, quotaKey string
	// build makes the channel; nil for a default instance that is not
	// configured, listed only for its send rate and quota keys (which
	// are checked and apply as soon as it is).
	build func(a *App, tokens adapters.TokenCache) (adapters.Channel, error)
}

// channelKinds are the kinds of channel the wiring builds instances of.
var channelKinds = []channelKind{
	{kind: wecom.ChannelName, instances: wecomInstances},
	{kind: dingtalk.ChannelName, instances: dingTalkInstances},
}

// sections are the channel kinds that build their instances from their
// own configuration section (adapters.Section): a further channel is its
// section in configs.Config and one line here.
func sections(cfg *configs.Config) []adapters.Section {
	return []adapters.Section{&cfg.WeChatOA}
}

// sectionInstances lists the configured instances of a section.
func sectionInstances(sec adapters.Section) []channelInstance {
	kind := sec.Spec().Name
	var out []channelInstance
	for _, b := range sec.Configured() {
		in := channelInstance{kind: kind, name: b.Name, key: adapters.InstanceKey(kind, b.Name),
			rate: b.SendRate, rateKey: instanceKey(kind, b.Name, "send_rate")}
		in.build = func(a *App, tokens adapters.TokenCache) (adapters.Channel, error) {
			return b.New(a.channelDeps(tokens))
		}
		out = append(out, in)
	}
	return out
}

// channelDeps is what the gateway gives the channels it builds.
func (a *App) channelDeps(tokens adapters.TokenCache) ChannelDeps {
	return ChannelDeps{Recorder: a.recorder, Tokens: tokens, Logger: a.Log, MaxBodyBytes: a.Config.HTTP.MaxBodyBytes}
}

// channelInstances lists every configured instance: the default instance
// of each kind first, then the others by key. It is the order the
// registry keeps, the order of preference when a member has several.
// withOff adds the default instances that are not configured (build nil).
func channelInstances(cfg configs.Config, withOff bool) []channelInstance {
	var all []channelInstance
	for _, k := range channelKinds {
		all = append(all, k.instances(cfg)...)
	}
	for _, sec := range sections(&cfg) {
		all = append(all, sectionInstances(sec)...)
	}
	var defaults, named []channelInstance
	for _, in := range all {
		if in.build == nil && !withOff {
			continue
		}
		if in.name == adapters.DefaultInstance {
			defaults = append(defaults, in)
		} else {
			named = append(named, in)
		}
	}
	slices.SortFunc(named, func(a, b channelInstance) int { return strings.Compare(a.key, b.key) })
	return append(defaults, named...)
}

// instanceKey names key of an instance's section in errors: wecom.secret,
// wecom.instances.acme.secret.
func instanceKey(kind, name, key string) string {
	if name == adapters.DefaultInstance {
		return kind + "." + key
	}
	return kind + ".instances." + name + "." + key
}

func wecomInstances(cfg configs.Config) []channelInstance {
	var out []channelInstance
	all := cfg.WeCom.All()
	if !cfg.WeCom.Enabled() {
		all = append([]wecom.Named{{Kind: wecom.ChannelName, Name: adapters.DefaultInstance, Config: cfg.WeCom}}, all...)
	}
	for _, n := range all {
		in := channelInstance{kind: wecom.ChannelName, name: n.Name, key: n.Key(),
			rate: n.Config.SendRate, rateKey: instanceKey(wecom.ChannelName, n.Name, "send_rate"),
			quota: n.Config.MemberMassLimit, quotaKey: instanceKey(wecom.ChannelName, n.Name, "member_mass_limit")}
		c := n.Config
		if !c.Enabled() {
			out = append(out, in)
			continue
		}
		in.build = func(a *App, tokens adapters.TokenCache) (adapters.Channel, error) {
			return wecom.New(c, wecom.Deps{Instance: n.Name, Recorder: a.recorder, Tokens: tokens, Cursors: a.Store,
				Logger: a.Log, MaxBodyBytes: a.Config.HTTP.MaxBodyBytes, MediaHTTP: mediaHTTPForTests})
		}
		out = append(out, in)
	}
	return out
}

func dingTalkInstances(cfg configs.Config) []channelInstance {
	var out []channelInstance
	all := cfg.DingTalk.All()
	if !cfg.DingTalk.Enabled() {
		all = append([]dingtalk.Named{{Kind: dingtalk.ChannelName, Name: adapters.DefaultInstance, Config: cfg.DingTalk}}, all...)
	}
	for _, n := range all {
		in := channelInstance{kind: dingtalk.ChannelName, name: n.Name, key: n.Key(),
			rate: n.Config.SendRate, rateKey: instanceKey(dingtalk.ChannelName, n.Name, "send_rate")}
		c, key := n.Config, n.Key()
		if !c.Enabled() {
			out = append(out, in)
			continue
		}
		in.build = func(a *App, tokens adapters.TokenCache) (adapters.Channel, error) {
			return dingtalk.New(c, dingtalk.Deps{Instance: n.Name, Recorder: a.recorder, Tokens: tokens, Logger: a.Log,
				Guides: dingtalk.GuideFunc(func(ctx context.Context, staffID string) (bool, error) {
					_, err := a.Store.GuideByChannelID(ctx, key, staffID)
					if errors.Is(err, store.ErrNotFound) {
						return false, nil
					}
					return err == nil, err
				}),
				OnStateChange: func(up bool) {
					v := 0.0
					if up {
						v = 1
					}
					channelConnected.WithLabelValues(key).Set(v)
				},
			})
		}
		out = append(out, in)
	}
	return out
}

// wireChannels builds the configured channels and the pipeline around
// them.
func (a *App) wireChannels() error {
	linger := a.Config.Database.InboxLinger
	if linger == 0 {
		linger = -1 // none
	}
	a.recorder = inbox.NewRecorder(a.Store, a.Queue, a.Log, inbox.RecorderOptions{
		Committers: a.Config.Database.InboxCommitterCount(), Linger: linger})
	tokens := redisTokens{rdb: a.RDB}
	for _, in := range channelInstances(a.Config, false) {
		ch, err := in.build(a, tokens)
		if err != nil {
			return err
		}
		a.Channels.Register(ch)
	}
	// The webhook channel checks the envelope; what the events say, the
	// commerce event schema (member phones as the store reads them).
	checkPhone := func(p string) error { _, err := store.NormalizePhone(p); return err }
	shares, err := a.shareSigner()
	if err != nil {
		return err
	}
	checks := events.Checks{Phone: checkPhone, ShareToken: checkShareToken(shares)}
	schema := func(typ string, data json.RawMessage) []string { return events.CheckWith(typ, data, checks) }
	a.ingester = webhook.NewIngester(a.recorder, schema, a.Config.Webhook.MaxBatch, a.Log)
	a.ingester.KnownBrand = a.knownBrand
	wh, err := webhook.New(a.Config.Webhook, a.ingester, a.eventSources, a.Log)
	if err != nil {
		return err
	}
	wh.Endpoints = a.brandEndpoint
	a.webhook = wh
	a.Channels.Register(wh)
	for _, build := range a.extra {
		ch, err := build(a.channelDeps(tokens))
		if err != nil {
			return err
		}
		a.Channels.Register(ch)
	}
	a.sender = outbox.NewSender(a.Store, a.Channels, a.Queue, a.Log)
	a.sender.Measure(outboxMetrics)
	a.processor = inbox.NewProcessor(a.Store, a.Channels, a.Log)
	a.contacts = inbox.NewContacts(a.Store, a.Channels, a.sender, a.welcomer(), a.Log)
	a.contacts.Register(a.processor)
	a.wireTags()
	a.wireGroups()
	a.wireLinks()
	a.commerce = commerce.New(a.Store, a.Log)
	a.commerce.Shares = shares
	a.shares = shares
	if a.commerce.Rules, a.commerce.Location, err = a.ledgerRules(); err != nil {
		return err
	}
	a.commerce.Register(a.processor, webhook.ChannelName)
	return nil
}

// knownBrand reports whether a brand exists, for refusing events of
// unknown brands at the door.
func (a *App) knownBrand(ctx context.Context, id string) (bool, error) {
	_, err := a.Store.Brand(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// eventSources lists the active event sources with their keys.
func (a *App) eventSources(ctx context.Context) ([]webhook.Source, error) {
	srcs, err := a.Store.ActiveSourceSecrets(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	out := make([]webhook.Source, 0, len(srcs))
	for _, s := range srcs {
		src, err := webhook.NewSource(s.ID, s.BrandID, s.Secrets)
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	return out, nil
}

// brandEndpoint is a brand's webhook endpoint, if it registered one.
func (a *App) brandEndpoint(ctx context.Context, brand string) (*webhook.Endpoint, error) {
	ep, secret, err := a.Store.WebhookEndpointOf(ctx, brand)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	key, err := webhook.DecodeSecret(secret)
	if err != nil {
		return nil, fmt.Errorf("webhook endpoint of %q: %w", brand, err)
	}
	return &webhook.Endpoint{URL: ep.URL, Key: key}, nil
}

// ledgerRules loads the commission rules and the ledger's time zone.
func (a *App) ledgerRules() (*ledger.Rules, *time.Location, error) {
	loc, err := time.LoadLocation(a.Config.Ledger.TimeZone)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger.time_zone: %w", err)
	}
	var rules *ledger.Rules
	if a.Config.Ledger.Rules != "" {
		rules, err = ledger.LoadRules(nil, a.Config.Ledger.Rules)
	} else {
		fsys, name := configs.CommissionRules()
		rules, err = ledger.LoadRules(fsys, name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ledger.rules: %w", err)
	}
	return rules, loc, nil
}

// mediaHTTPForTests, when set, fetches the pictures and files WeCom
// messages name by URL: tests send the shipped templates' links to a
// local server. Nil in production, where the channel uses its own client,
// which refuses the gateway's own network (wecom.media_fetch_private).
var mediaHTTPForTests *http.Client
