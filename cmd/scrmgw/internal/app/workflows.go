package app

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/assign"
	"github.com/scrmgw/scrmgw/gateway/commerce"
	"github.com/scrmgw/scrmgw/gateway/outbox"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// engineSender puts the engine's messages in the outbox.
type engineSender struct{ s *outbox.Sender }

func (e engineSender) Send(ctx context.Context, channel string, m *adapters.Outbound, meta engine.SendMeta) error {
	id := meta.MemberID
	_, err := e.s.Send(ctx, channel, m, outbox.Meta{MemberID: &id, GuideID: meta.GuideID, BrandID: meta.Brand, Queue: meta.Queue})
	return err
}

// Withdraw takes back the pending sends of a run that ended (see
// engine.Withdrawer).
func (e engineSender) Withdraw(ctx context.Context, keyPrefix, why string) (int, error) {
	return e.s.Withdraw(ctx, keyPrefix, why)
}

// engineAssigner binds members for assign_guide steps: the member's
// current guide, else per the step's strategy and fallback.
type engineAssigner struct{ a *assign.Assigner }

// assignRequest turns a step's request into the assigner's:
//   - nearest: the stores nearest the trigger event's location (none
//     without one), then the online pool if the fallback is pool;
//   - store: a guide of that store, then (fallback nearest) the stores
//     nearest the location, or (fallback pool) the online pool;
//   - pool: the brand's online pool only.
func assignRequest(r engine.AssignRequest) assign.Request {
	req := assign.Request{MemberID: r.MemberID, Brand: r.Brand, MaxDistanceKm: r.MaxDistanceKm,
		NoPool: r.Fallback != workflows.AssignPool}
	switch r.Strategy {
	case workflows.AssignPool:
		req.PoolOnly, req.NoPool = true, false
	case workflows.AssignStore:
		req.StoreID = r.StoreID
		if r.Fallback == workflows.AssignNearest {
			req.Lat, req.Lng = r.Lat, r.Lng
		}
		if req.StoreID == "" && req.Lat == nil && req.NoPool {
			req.PoolOnly, req.NoPool = true, true // nothing to try
		}
	default:
		req.Lat, req.Lng = r.Lat, r.Lng
	}
	return req
}

func (e engineAssigner) Assign(ctx context.Context, r engine.AssignRequest) (string, string, error) {
	req := assignRequest(r)
	if req.PoolOnly && req.NoPool {
		return "", "", engine.ErrNoGuide
	}
	b, err := e.a.Assign(ctx, req)
	if errors.Is(err, assign.ErrUnassigned) {
		return "", "", engine.ErrNoGuide
	}
	var fe *store.FieldError
	if errors.As(err, &fe) && (fe.Field == "store_id" || fe.Field == "guide_id") {
		return "", "", engine.ErrNoGuide // a store that is gone or does not carry the brand
	}
	if err != nil {
		return "", "", err
	}
	return b.GuideID, b.StoreID, nil
}

// wireEngine builds the workflow engine and hands it every logged event,
// and puts the send rules of the configuration in force: the channels'
// send rates on the Sender, WeCom's mass-message limit on the engine.
func (a *App) wireEngine() error {
	quotas, err := a.sendRules()
	if err != nil {
		return err
	}
	batches, err := LoadCouponBatches(a.Config)
	if err != nil {
		return err
	}
	eng, err := engine.New(engine.Options{Store: a.Store, Queue: a.Queue, Templates: a.Templates,
		Sender: engineSender{a.sender}, Assigner: engineAssigner{a.assigner}, Locale: a.Config.Locale,
		Channels: a.Channels, Tagger: a.tags, Groups: engineGroups{a.groups},
		Logger: a.Log, WakeQueue: queue.Workflows, WebhookSecret: a.webhookSecret, Quotas: quotas,
		Coupons: commerce.CouponIssuer{Batches: batches, Store: a.Store}, CouponBatches: batches, Clock: a.clock,
		OnWake: observeWake})
	if err != nil {
		return err
	}
	a.engine = eng
	// A send step waits for its message: the Sender tells the engine
	// when it settles, and when a guide's message task reached the
	// member.
	a.sender.Report(eng)
	if err := a.wireGuidePoints(); err != nil {
		return err
	}
	a.contacts.OnLogged = a.guidePoints.Then(eng.HandleEvent)
	a.commerce.OnLogged = a.guidePoints.Then(eng.HandleEvent)
	a.messages.OnLogged = eng.HandleEvent
	a.tags.OnLogged = eng.HandleEvent
	return nil
}

// webhookSecret is the signing secret a workflow's webhook step names:
// "default" is webhook.secret; others come from SCRMGW_WEBHOOK_SECRET_<NAME>.
func (a *App) webhookSecret(name string) ([]byte, error) {
	v := ""
	if name == "default" {
		v = a.Config.Webhook.Secret
	}
	if v == "" {
		v = os.Getenv("SCRMGW_WEBHOOK_SECRET_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	}
	if v == "" {
		return nil, fmt.Errorf("webhook secret %q is not configured (webhook.secret for \"default\", else SCRMGW_WEBHOOK_SECRET_%s)",
			name, strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	}
	if b64, ok := strings.CutPrefix(v, "whsec_"); ok {
		return base64.StdEncoding.DecodeString(b64)
	}
	return []byte(v), nil
}

// sendRules reads send.*, each channel instance's send_rate and
// wecom's member_mass_limit: it sets the Sender's rate limits (one per
// instance key) and returns the engine's quotas (one per instance key).
func (a *App) sendRules() (map[string]engine.Quota, error) {
	cfg := a.Config.Send
	rates, err := SendRates(a.Config)
	if err != nil {
		return nil, err
	}
	if cfg.CriticalShare >= 1 {
		return nil, fmt.Errorf("send.critical_share: %v is all of the rate; use a part such as 0.2, or a negative number for one lane", cfg.CriticalShare)
	}
	if a.RDB != nil {
		lim := outbox.NewLimiter(a.RDB, outbox.LimiterOptions{Channels: a.Channels, Rates: rates, CriticalShare: cfg.CriticalShare})
		a.sender.Limit(lim, cfg.MaxWait)
		a.Log.Info("send rates", slog.String("rates", lim.Rates()))
	}
	return Quotas(a.Config)
}

// SendRates are the send rates of the configured channel instances, by
// instance key (configs.SendRates says the rule): the instance's
// section's send_rate, else send.rate.<kind>, else the channel's own (its
// Spec's Rate).
func SendRates(c configs.Config) (map[string]outbox.Rate, error) {
	rates := map[string]outbox.Rate{}
	specs := map[string]adapters.Spec{}
	for _, s := range ChannelSpecs(c) {
		specs[s.Name] = s
	}
	for _, in := range channelInstances(c, true) {
		v, key := in.rate, in.rateKey
		if v == "" {
			v, key = c.Send.Rate.For(in.kind)
		}
		if v == "" {
			if r := specs[in.kind].Rate; !r.IsZero() {
				rates[in.key] = outbox.Rate{N: r.N, Per: r.Per}
			}
			continue
		}
		rate, err := outbox.ParseRate(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		rates[in.key] = rate
	}
	if v := c.Send.Rate.Webhook; v != "" {
		rate, err := outbox.ParseRate(v)
		if err != nil {
			return nil, fmt.Errorf("send.rate.webhook: %w", err)
		}
		rates[webhook.ChannelName] = rate
	}
	return rates, nil
}

// Quotas are the configured channel instances' limits on messages to one
// member (wecom.member_mass_limit, wecom.instances.<name>.member_mass_limit),
// by instance key.
func Quotas(c configs.Config) (map[string]engine.Quota, error) {
	quotas := map[string]engine.Quota{}
	for _, in := range channelInstances(c, true) {
		if in.quota == "" {
			continue
		}
		q, err := engine.ParseQuota(in.quota)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", in.quotaKey, err)
		}
		quotas[in.key] = q
	}
	return quotas, nil
}
