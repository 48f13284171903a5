package bots

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/geo"
	"github.com/scrmgw/scrmgw/templates"
)

// Template ids of bot replies (configs/templates/bot_*.yaml).
const (
	TemplateMemberHelp    = "bot_member_help"
	TemplateNearestStores = "bot_nearest_stores"
	TemplateAskLocation   = "bot_ask_location"
	TemplateMyGuide       = "bot_my_guide"
	TemplateGuideHelp     = "bot_guide_help"
	TemplateMyMembers     = "bot_my_members"
	TemplateMyPoints      = "bot_my_points"
	TemplateUnsubscribed  = "bot_unsubscribed"
	TemplateResubscribed  = "bot_resubscribed"
	TemplateMyTasks       = "bot_my_tasks"
	TemplateTaskDone      = "bot_task_done"
	TemplateMemberLookup  = "bot_member_lookup"
	TemplateMyStats       = "bot_my_stats"
	TemplateGuideDigest   = "bot_guide_digest"

	TemplateHandoffStarted = "bot_handoff_started"
	TemplateHandoffNoGuide = "bot_handoff_no_guide"
	TemplateHandoffRequest = "bot_handoff_request"
	TemplateHandoffForward = "bot_handoff_forward"
	TemplateHandoffReply   = "bot_handoff_reply"
	TemplateHandoffEnded   = "bot_handoff_ended"
	TemplateHandoffClosed  = "bot_handoff_closed"
	TemplateHandoffUnknown = "bot_handoff_unknown"
)

// Directory is what bots read about members, guides and stores;
// *store.Store is one.
type Directory interface {
	MemberByIdentity(ctx context.Context, channel, externalID string) (*store.MemberView, error)
	Member(ctx context.Context, id int64, brand string) (*store.MemberView, error)
	Guide(ctx context.Context, id, brand string) (*store.Guide, error)
	GuideByChannelID(ctx context.Context, channel, id string) (*store.Guide, error)
	RetailStore(ctx context.Context, id, brand string) (*store.RetailStore, error)
	Brand(ctx context.Context, id string) (*store.Brand, error)
	CurrentBindings(ctx context.Context, guideID string) ([]store.Binding, error)
	SetConsent(ctx context.Context, memberID int64, brand, channel string, unsubscribed bool, at time.Time) error
	GuideTasks(ctx context.Context, f store.GuideTaskFilter) ([]store.GuideTask, error)
	GuideTask(ctx context.Context, id int64) (*store.GuideTask, error)
}

// TaskCompleter completes guide tasks, so what waits for them (a workflow
// run) moves on; the workflow engine is one.
type TaskCompleter interface {
	CompleteGuideTask(ctx context.Context, id int64) (*store.GuideTask, bool, error)
}

// StoreFinder finds the stores nearest a point.
type StoreFinder interface {
	Nearest(lat, lng float64, brand string, maxKm float64, n int) []geo.Hit
}

// HandoffStore keeps the conversations handed to guides; *store.Store is
// one.
type HandoffStore interface {
	OpenHandoff(ctx context.Context, h *store.Handoff) (bool, error)
	OpenHandoffOf(ctx context.Context, memberID int64, brand string) (*store.Handoff, error)
	LastHandoffOf(ctx context.Context, memberID int64, brand string) (*store.Handoff, error)
	GuideHandoffs(ctx context.Context, guideID string) ([]store.Handoff, error)
	TouchHandoff(ctx context.Context, id int64, fromMember bool, replyTo *string, at time.Time) error
	EndHandoff(ctx context.Context, id int64, reason, key string, at time.Time) (*store.Handoff, bool, error)
	HandoffEndedBy(ctx context.Context, guideID, key string) (*store.Handoff, error)
	MarkHandoffNotified(ctx context.Context, id int64, at time.Time) error
	IdleHandoffs(ctx context.Context, before time.Time, limit int) ([]store.Handoff, error)
	RecentMessages(ctx context.Context, memberID int64, brand string, n int) ([]store.Event, error)
	AppendEvent(ctx context.Context, e *store.Event) (bool, error)
}

// GuideStore answers the guide bot's lookups and figures; *store.Store
// is one.
type GuideStore interface {
	FindGuideMembers(ctx context.Context, guideID, q string, limit int) ([]store.GuideMember, error)
	GuideStatsSince(ctx context.Context, guideID string, since, dueBefore time.Time) (*store.GuideStats, error)
	StoreTimeZones(ctx context.Context) ([]string, error)
	GuidesWithoutDigest(ctx context.Context, zone, day, afterID string, limit int) ([]store.Guide, error)
	MarkDigest(ctx context.Context, guideID, day string, at time.Time) (bool, error)
}

// Deps are what the bots use.
type Deps struct {
	Directory Directory
	Stores    StoreFinder
	Templates *templates.Registry
	Intents   *Intents
	Tasks     TaskCompleter
	// Enroll makes a sender not yet known a member of the message's
	// brand (logging member.joined) and binds a member who shares their
	// location to a guide of the nearest store carrying the brand; nil
	// turns that off (the bot only lists the nearest stores).
	Enroll Enroller
	// Handoffs keeps conversations handed to guides; nil turns handing
	// over off (the bot answers everything itself).
	Handoffs HandoffStore
	// Guides answers lookups, stats and digests; nil answers them with
	// the guide help.
	Guides GuideStore
	// Incentives answers "my orders", the leaderboard, guide points and
	// cross-brand opt-ins; nil answers those with the help.
	Incentives IncentiveStore
	// MemberCodes makes members' codes for the till ("member code"); nil
	// answers that with the help.
	MemberCodes MemberCoder
	// Reminders finds and settles guide task reminders
	// (SendTaskReminders); nil sends none.
	Reminders TaskReminderStore
	// Shares makes guides' share links ("分享 SKU"); nil answers that with
	// the guide help.
	Shares ShareLinker
	// PointsZone is the zone of the guide points ledger's months
	// (ledger.time_zone). Default: the guide's store's zone.
	PointsZone *time.Location
	// HandoffIdle ends a handoff with no message either way for this
	// long. Default 30 minutes.
	HandoffIdle time.Duration
	// Channels are the channel instances the gateway was wired with (the
	// adapters Registry): a guide is reached on one of them only, that
	// sends guides text, preferring the member's and then the order of
	// registration; a channel's spec says how long a text it carries.
	// Nil: a guide is reached on any of their identities.
	Channels adapters.Specs
	// Locale is the language of messages to guides. Default "zh".
	Locale string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Log logs handoffs opening and ending. Default: discarded.
	Log *slog.Logger
}

// DefaultHandoffIdle is how long a handoff may be silent before it ends.
const DefaultHandoffIdle = 30 * time.Minute

func (d Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d Deps) idle() time.Duration {
	if d.HandoffIdle > 0 {
		return d.HandoffIdle
	}
	return DefaultHandoffIdle
}

func (d Deps) guideLocale() string {
	if d.Locale != "" {
		return d.Locale
	}
	return "zh"
}

func (d Deps) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

// nearestCount is how many stores "nearest store" lists.
const nearestCount = 3

// MemberBot answers members: nearest stores, my guide, my points, my
// orders, unsubscribe, other brands' offers, talk to a person, help. While the member's conversation is
// handed to their guide, it passes their messages on and stays quiet.
func MemberBot(d Deps) Bot {
	return BotFunc(func(ctx context.Context, m *Message) ([]Reply, error) {
		intent, arg := d.Intents.Member(m.Brand).Match(m.Text)
		if m.Location != nil {
			intent = IntentNearestStore
		}
		var before []Reply // a handoff's end, told before the answer
		var member *store.MemberView
		if d.Handoffs != nil || d.Enroll != nil {
			v, err := d.memberOf(ctx, m)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			// Any message makes a sender not yet known a member.
			if v, err = d.join(ctx, m, v); err != nil {
				return nil, err
			}
			member = v
			if v != nil {
				// The answer reads the member as it is now.
				m.Member = v
			}
			if v != nil && d.Handoffs != nil {
				rs, handled, err := d.memberInHandoff(ctx, m, v, intent)
				if err != nil || handled {
					return rs, err
				}
				before = rs
			}
		}
		replies, err := d.memberAnswer(ctx, m, member, intent, arg)
		if err != nil {
			return nil, err
		}
		return append(before, replies...), nil
	})
}

func (d Deps) memberAnswer(ctx context.Context, m *Message, member *store.MemberView, intent, arg string) ([]Reply, error) {
	data := &templates.Data{}
	brandData(ctx, d, m.Brand, data)
	switch intent {
	case IntentNearestStore:
		if m.Location == nil {
			return d.render(TemplateAskLocation, m, data, nil)
		}
		for _, h := range d.Stores.Nearest(m.Location.Lat, m.Location.Lng, m.Brand, 0, nearestCount) {
			rs, err := d.Directory.RetailStore(ctx, h.ID, "")
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			data.Stores = append(data.Stores, templates.Store{Name: rs.Name, Address: rs.Address, OpeningHours: rs.OpeningHours, DistanceKm: h.DistM / 1000})
		}
		return d.render(TemplateNearestStores, m, data, func() error { return d.enrol(ctx, m, member, data) })
	case IntentMyGuide:
		return d.render(TemplateMyGuide, m, data, func() error { return d.guideData(ctx, m, data) })
	case IntentMyPoints:
		return d.render(TemplateMyPoints, m, data, func() error { return d.pointsData(ctx, m, data) })
	case IntentUnsubscribe, IntentResubscribe:
		return d.consent(ctx, m, data, intent == IntentUnsubscribe)
	case IntentMyOrders:
		if d.Incentives != nil {
			return d.myOrders(ctx, m, data)
		}
	case IntentCrossBrandOn, IntentCrossBrandOff:
		if d.Incentives != nil {
			return d.crossBrand(ctx, m, data, intent == IntentCrossBrandOn, arg)
		}
	case IntentMemberCode:
		if d.MemberCodes != nil {
			return d.memberCode(ctx, m, member, data)
		}
	case IntentHandoff:
		if d.Handoffs != nil {
			return d.startHandoff(ctx, m, member, store.HandoffAsked)
		}
	case "":
		if d.Handoffs != nil && member != nil {
			again, err := d.unansweredBefore(ctx, m, member)
			if err != nil {
				return nil, err
			}
			if again {
				return d.startHandoff(ctx, m, member, store.HandoffUnanswered)
			}
		}
	}
	return d.render(TemplateMemberHelp, m, data, nil)
}

// memberOf returns the sender's member: the one the message carries
// (read once for it), else read now; store.ErrNotFound when the sender
// is not a member.
func (d Deps) memberOf(ctx context.Context, m *Message) (*store.MemberView, error) {
	if m.Member != nil {
		return m.Member, nil
	}
	return d.Directory.MemberByIdentity(ctx, m.Channel, m.SenderID)
}

// consent records an unsubscribe (from every channel of the brand) or a
// resubscribe; the workflow engine checks consent when a message is due,
// so it takes effect at once.
func (d Deps) consent(ctx context.Context, m *Message, data *templates.Data, unsubscribe bool) ([]Reply, error) {
	v, err := d.memberOf(ctx, m)
	if errors.Is(err, store.ErrNotFound) {
		// Nothing is ever sent to someone we do not know; confirm anyway.
		return d.render(replyFor(unsubscribe), m, data, nil)
	}
	if err != nil {
		return nil, err
	}
	if err := d.Directory.SetConsent(ctx, v.ID, m.Brand, store.ConsentAll, unsubscribe, time.Now()); err != nil {
		return nil, fmt.Errorf("recording consent: %w", err)
	}
	return d.render(replyFor(unsubscribe), m, data, nil)
}

func replyFor(unsubscribe bool) string {
	if unsubscribe {
		return TemplateUnsubscribed
	}
	return TemplateResubscribed
}

// pointsData fills the member's points and level with the brand.
func (d Deps) pointsData(ctx context.Context, m *Message, data *templates.Data) error {
	v, err := d.memberOf(ctx, m)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	data.Member = brandMember(v, m.Brand)
	for _, ms := range v.Memberships {
		if ms.BrandID == m.Brand {
			data.Member.Points, data.Member.Level = ms.Points, ms.Level
		}
	}
	return nil
}

// brandMember is the member's name and phone tail as brand knows them.
// A message of no one brand (a person of several brands writing through
// an identity collected with none) is answered with no brand's data: the
// answer is in the export of every brand of the person (docs/security.md),
// so it names them by no brand's name.
func brandMember(v *store.MemberView, brand string) templates.Member {
	if brand == "" {
		return templates.Member{}
	}
	return templates.Member{Name: v.NameFor(brand), PhoneTail: v.TailFor(brand)}
}

// guideData fills the member's bound guide and store for the brand.
func (d Deps) guideData(ctx context.Context, m *Message, data *templates.Data) error {
	v, err := d.memberOf(ctx, m)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not known yet: no guide
	}
	if err != nil {
		return err
	}
	data.Member = brandMember(v, m.Brand)
	for _, b := range v.Bindings {
		if b.BrandID != m.Brand {
			continue // an unattributed message (no brand) has no guide
		}
		return d.boundData(ctx, &b, data)
	}
	return nil
}

// boundData fills the guide and store of a binding into data.
func (d Deps) boundData(ctx context.Context, b *store.Binding, data *templates.Data) error {
	g, err := d.Directory.Guide(ctx, b.GuideID, "")
	if err != nil {
		return err
	}
	rs, err := d.Directory.RetailStore(ctx, b.StoreID, "")
	if err != nil {
		return err
	}
	data.Guide = templates.Guide{Name: g.Name, Store: rs.Name}
	data.Store = templates.Store{Name: rs.Name, Address: rs.Address, OpeningHours: rs.OpeningHours}
	return nil
}

func brandData(ctx context.Context, d Deps, brand string, data *templates.Data) {
	if brand == "" {
		return
	}
	if b, err := d.Directory.Brand(ctx, brand); err == nil {
		data.Brand = templates.Brand{Name: b.Name}
	}
}

// render fills data with fill (when given) and renders a template.
func (d Deps) render(id string, m *Message, data *templates.Data, fill func() error) ([]Reply, error) {
	if fill != nil {
		if err := fill(); err != nil {
			return nil, err
		}
	}
	msg, err := d.Templates.Render(id, m.Locale, kindOf(m.Channel), data)
	if err != nil {
		return nil, fmt.Errorf("rendering %s: %w", id, err)
	}
	return []Reply{{Kind: msg.Kind, Text: msg.Text, Fields: msg.Fields}}, nil
}

// maxListedTasks is how many tasks "my tasks" lists.
const maxListedTasks = 20

// completeTask completes the guide's own open task numbered arg; any
// other number gets a reply saying so.
func (d Deps) completeTask(ctx context.Context, m *Message, g *store.Guide, arg string, data *templates.Data) ([]Reply, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(arg, "#"), 10, 64)
	if err == nil && id > 0 {
		t, err := d.Directory.GuideTask(ctx, id)
		if err == nil && t.GuideID == g.ID {
			done, completed, err := d.Tasks.CompleteGuideTask(ctx, id)
			if err != nil {
				return nil, err
			}
			if completed || done.State == store.GuideTaskDone {
				data.Tasks = []templates.Task{{ID: done.ID, Title: done.Title, Due: done.DueAt}}
			}
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	return d.render(TemplateTaskDone, m, data, nil)
}

// maxListedMembers is how many members "my members" lists.
const maxListedMembers = 10

// GuideBot answers guides: my tasks, done N, my members, member lookup,
// my stats, leaderboard, help; and passes their replies to members handed to them.
func GuideBot(d Deps) Bot {
	return BotFunc(func(ctx context.Context, m *Message) ([]Reply, error) {
		intent, arg := d.Intents.Guide(m.Brand).Match(m.Text)
		data := &templates.Data{}
		brandData(ctx, d, m.Brand, data)
		if d.Handoffs != nil || d.Guides != nil || d.Incentives != nil || d.Shares != nil {
			g, err := d.Directory.GuideByChannelID(ctx, m.Channel, m.SenderID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			if g != nil && d.Handoffs != nil {
				rs, handled, err := d.guideInHandoff(ctx, m, g)
				if err != nil || handled {
					return rs, err
				}
			}
			if g != nil {
				switch {
				case intent == IntentLookup && d.Guides != nil:
					return d.lookup(ctx, m, g, arg, data)
				case intent == IntentMyStats && d.Guides != nil:
					return d.stats(ctx, m, g, data)
				case intent == IntentLeaderboard && d.Incentives != nil:
					return d.leaderboard(ctx, m, g, data)
				case intent == IntentShareLink && d.Shares != nil:
					return d.shareLink(ctx, m, g, arg, data)
				}
			}
		}
		switch intent {
		case IntentMyTasks, IntentDone:
			g, err := d.Directory.GuideByChannelID(ctx, m.Channel, m.SenderID)
			if errors.Is(err, store.ErrNotFound) {
				return d.render(TemplateGuideHelp, m, data, nil)
			}
			if err != nil {
				return nil, err
			}
			if intent == IntentDone {
				return d.completeTask(ctx, m, g, arg, data)
			}
			// Overdue tasks first (marked), then the soonest due.
			tasks, err := d.Directory.GuideTasks(ctx, store.GuideTaskFilter{GuideID: g.ID, State: store.GuideTaskOpen, Limit: maxListedTasks, ByDue: true})
			if err != nil {
				return nil, err
			}
			now := d.now()
			data.TimeZone = d.guideZone(ctx, g).String()
			data.Tasks = []templates.Task{}
			for _, t := range tasks {
				data.Tasks = append(data.Tasks, templates.Task{ID: t.ID, Title: t.Title, Due: t.DueAt, Overdue: t.DueAt.Before(now)})
			}
			return d.render(TemplateMyTasks, m, data, nil)
		case IntentMyMembers:
			g, err := d.Directory.GuideByChannelID(ctx, m.Channel, m.SenderID)
			if errors.Is(err, store.ErrNotFound) {
				return d.render(TemplateGuideHelp, m, data, nil)
			}
			if err != nil {
				return nil, err
			}
			bs, err := d.Directory.CurrentBindings(ctx, g.ID)
			if err != nil {
				return nil, err
			}
			data.Guide = templates.Guide{Name: g.Name}
			data.Members = []templates.Member{}
			for i := len(bs) - 1; i >= 0 && len(data.Members) < maxListedMembers; i-- {
				v, err := d.Directory.Member(ctx, bs[i].MemberID, "")
				if err != nil {
					continue
				}
				level := ""
				for _, ms := range v.Memberships {
					if ms.BrandID == bs[i].BrandID {
						level = ms.Level
					}
				}
				data.Members = append(data.Members, templates.Member{Name: v.NameFor(bs[i].BrandID), PhoneTail: v.TailFor(bs[i].BrandID), Level: level})
			}
			return d.render(TemplateMyMembers, m, data, nil)
		}
		return d.render(TemplateGuideHelp, m, data, nil)
	})
}
