// Package links makes the web links that add a store's or a guide's
// account as a contact (WeCom acquisition links, 获客链接) on channels
// that have them (adapters.LinkMaker), and warns operators when the
// links' quota runs low.
//
// A link is kept as a contact way of its store or guide: its state comes
// back with every contact added through it, and the contact is bound to
// that store's or guide's as through a QR code. Quota warnings (from the
// channel's notices, and the quota's Low when read) are logged, counted
// in scrmgw_link_notices_total and shown by the API.
package links

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/inbox"
	"github.com/scrmgw/scrmgw/store"
)

// EventNotice is the inbound event of a channel's news about its links.
const EventNotice = "links.notice"

// maxState is the longest state a contact way keeps.
const maxState = 30

// State is the state of a store's ("s") or guide's ("g") link:
// "ca-s-<id>" when the id is letters, digits, '_' and '-' and fits,
// else "ca-s-" and a hash of the id.
func State(kind, id string) string {
	st := "ca-" + kind + "-" + id
	if len(st) <= maxState && !strings.ContainsFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) {
		return st
	}
	sum := sha256.Sum256([]byte(id))
	prefix := "ca-" + kind + "-"
	return prefix + hex.EncodeToString(sum[:])[:maxState-len(prefix)]
}

// IsLinkState reports whether a contact way's state is a link's.
func IsLinkState(state string) bool { return strings.HasPrefix(state, "ca-") }

// Links makes links and warns about their quota.
type Links struct {
	store    *store.Store
	channels *adapters.Registry
	log      *slog.Logger
	notices  *prometheus.CounterVec
}

// New returns Links over the registry's channels that are LinkMakers.
func New(s *store.Store, channels *adapters.Registry, log *slog.Logger) *Links {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Links{store: s, channels: channels, log: log,
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scrmgw_link_notices_total",
			Help: "Channels' notices about their contact links: quota low, exhausted or expiring, a link unavailable."},
			[]string{"channel", "notice"})}
}

// Collectors are the metrics to register.
func (l *Links) Collectors() []prometheus.Collector { return []prometheus.Collector{l.notices} }

// Register routes link notices to l.
func (l *Links) Register(p *inbox.Processor) {
	p.On(inbox.OnEvent(EventNotice), inbox.HandlerFunc(l.notice))
}

// warnings are the notices operators must act on.
var warnings = map[string]string{
	"balance_low":       "the quota of contacts through links is running low: buy more",
	"balance_exhausted": "the quota of contacts through links is used up: links add nobody until more is bought",
	"quota_expire_soon": "part of the quota of contacts through links expires soon",
	"link_unavailable":  "a link stopped working (its guides left or lost the permission)",
}

func (l *Links) notice(_ context.Context, in *adapters.Inbound) error {
	n := in.Attrs["notice"]
	l.notices.WithLabelValues(in.Channel, n).Inc()
	if msg, ok := warnings[n]; ok {
		l.log.Warn(msg, slog.String("channel", in.Channel), slog.String("notice", n), slog.String("link_id", in.Attrs["link_id"]))
		return nil
	}
	l.log.Debug("link notice", slog.String("channel", in.Channel), slog.String("notice", n))
	return nil
}

// Maker returns the LinkMaker of channel, or, with channel "", the
// first instance registered that is one.
func (l *Links) Maker(channel string) (string, adapters.LinkMaker, error) {
	keys := []string{channel}
	if channel == "" {
		keys = l.channels.Names()
	}
	for _, k := range keys {
		if ch, ok := l.channels.Channel(k); ok {
			if lm, ok := ch.(adapters.LinkMaker); ok {
				return k, lm, nil
			}
		}
	}
	return "", nil, fmt.Errorf("no channel %q with contact links: %w", channel, store.ErrNotFound)
}

// Link is a link made, with the quota left after it.
type Link struct {
	store.ContactWay
	Quota *adapters.LinkQuota `json:"quota,omitempty"`
}

// Create makes (again) the link of a store (storeID) or a guide
// (guideID) on channel: a store's adds one of its active guides with an
// id there. It is kept as their contact way.
func (l *Links) Create(ctx context.Context, channel, brand, storeID, guideID string) (*Link, error) {
	key, lm, err := l.Maker(channel)
	if err != nil {
		return nil, err
	}
	cw := &store.ContactWay{Channel: key, StoreID: storeID, GuideID: guideID}
	var users []string
	var name string
	switch {
	case storeID != "" && guideID == "":
		rs, err := l.store.RetailStore(ctx, storeID, brand)
		if err != nil {
			return nil, err
		}
		guides, err := l.store.Guides(ctx, "", rs.ID, store.Page{Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, g := range guides {
			if id := g.Identity(key); g.Active && id != "" {
				users = append(users, id)
			}
		}
		name, cw.State = rs.Name, State("s", rs.ID)
	case guideID != "" && storeID == "":
		g, err := l.store.Guide(ctx, guideID, brand)
		if err != nil {
			return nil, err
		}
		if id := g.Identity(key); g.Active && id != "" {
			users = append(users, id)
		}
		name, cw.State = g.Name, State("g", g.ID)
	default:
		return nil, fmt.Errorf("a link is a store's or a guide's: %w", store.ErrInvalid)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("no active guide with an id on %s: %w", key, store.ErrConflict)
	}
	if r := []rune(name); len(r) > 30 {
		name = string(r[:30])
	}
	id, url, err := lm.CreateLink(ctx, name, users, cw.State)
	if err != nil {
		return nil, fmt.Errorf("creating the link on %s: %w", key, err)
	}
	cw.ConfigID, cw.QRCode = id, url
	if err := l.store.SaveContactWay(ctx, cw); err != nil {
		return nil, err
	}
	out := &Link{ContactWay: *cw}
	// The quota left: a warning now rather than when links stop adding.
	if q, err := lm.LinkQuota(ctx); err == nil {
		out.Quota = q
		if q.Low {
			l.log.Warn("the quota of contacts through links is low", slog.String("channel", key), slog.Int("balance", q.Balance), slog.Int("total", q.Total))
		}
	} else if !errors.Is(err, context.Canceled) {
		l.log.Warn("reading the links' quota", slog.String("channel", key), slog.Any("error", err))
	}
	return out, nil
}

// Quota reads the quota of channel's links (the first instance with
// links, with "").
func (l *Links) Quota(ctx context.Context, channel string) (string, *adapters.LinkQuota, error) {
	key, lm, err := l.Maker(channel)
	if err != nil {
		return "", nil, err
	}
	q, err := lm.LinkQuota(ctx)
	if err != nil {
		return key, nil, err
	}
	if q.Low {
		l.notices.WithLabelValues(key, "quota_low_read").Inc()
	}
	return key, q, nil
}

// List lists the links of a store or a guide.
func (l *Links) List(ctx context.Context, storeID, guideID string) ([]store.ContactWay, error) {
	cws, err := l.store.ContactWays(ctx, storeID, guideID)
	if err != nil {
		return nil, err
	}
	out := []store.ContactWay{}
	for _, cw := range cws {
		if IsLinkState(cw.State) {
			out = append(out, cw)
		}
	}
	return out, nil
}
