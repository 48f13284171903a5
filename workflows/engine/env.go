package engine

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows"
)

// eventFields is what an event's payload says, parsed once.
type eventFields struct {
	event workflows.Event
	order *events.Order
	// live is the live session of a live.* event.
	live *workflows.Live
}

// parseEvent reads an event of the log for expressions.
func parseEvent(ev *store.Event) eventFields {
	f := eventFields{event: workflows.Event{Type: ev.Type, At: ev.OccurredAt, Attrs: map[string]string{}}}
	var raw map[string]json.RawMessage
	if ev.Payload != "" && json.Unmarshal([]byte(ev.Payload), &raw) == nil {
		for k, v := range raw {
			var s string
			switch k {
			case "channel":
				json.Unmarshal(v, &f.event.Channel)
			case "store_id":
				json.Unmarshal(v, &f.event.StoreID)
			case "tag":
				json.Unmarshal(v, &f.event.Tag)
			case "text":
				json.Unmarshal(v, &f.event.Text)
			case "order":
				var o events.Order
				if json.Unmarshal(v, &o) == nil {
					f.order = &o
				}
			case "live":
				var l workflows.Live
				if json.Unmarshal(v, &l) == nil {
					f.live = &l
				} else {
					var id string
					if json.Unmarshal(v, &id) == nil {
						f.event.Attrs["live"] = id
					}
				}
			default:
				if json.Unmarshal(v, &s) == nil {
					f.event.Attrs[k] = s
				} else if len(v) > 0 && v[0] != '{' && v[0] != '[' {
					f.event.Attrs[k] = string(v) // a number or true/false
				}
			}
		}
		if f.order == nil && isPurchase(ev.Type) {
			var o events.Order
			if json.Unmarshal([]byte(ev.Payload), &o) == nil {
				f.order = &o
			}
		}
	}
	if f.order != nil {
		if f.order.PurchasedAt.IsZero() {
			f.order.PurchasedAt = ev.OccurredAt
		}
		if f.event.StoreID == "" {
			f.event.StoreID = f.order.StoreID
		}
	}
	return f
}

func isPurchase(t string) bool {
	return t == events.TypePurchaseCompleted || t == events.TypePurchaseRefunded
}

// memberModelOf is a member as expressions see them, from their
// profile, but for their channel (Engine.memberModel).
func memberModelOf(p *store.MemberProfile) workflows.Member {
	m := workflows.Member{ID: p.Member.ID, Name: p.Member.Name, Tags: p.Tags}
	if m.Tags == nil {
		m.Tags = []string{}
	}
	if ms := p.Membership; ms != nil {
		m.Level, m.Points, m.JoinedAt = ms.Level, ms.Points, ms.CreatedAt
	}
	if b := p.Binding; b != nil {
		m.GuideID, m.StoreID = b.GuideID, b.StoreID
	}
	m.TimeZone = p.Member.TimeZone
	for i := range p.Purchases {
		ev := &p.Purchases[i]
		f := parseEvent(ev)
		total := 0.0
		if f.order != nil {
			total = f.order.Total
		}
		switch ev.Type {
		case events.TypePurchaseCompleted:
			m.Orders++
			m.TotalSpent += total
			if ev.OccurredAt.After(m.LastPurchaseAt) {
				m.LastPurchaseAt = ev.OccurredAt
			}
		case events.TypePurchaseRefunded:
			m.TotalSpent -= math.Abs(total)
		}
	}
	return m
}

// lastOrder is the member's last order, from their purchases.
func lastOrder(p *store.MemberProfile) events.Order {
	for i := len(p.Purchases) - 1; i >= 0; i-- {
		if p.Purchases[i].Type != events.TypePurchaseCompleted {
			continue
		}
		if f := parseEvent(&p.Purchases[i]); f.order != nil {
			return *f.order
		}
	}
	return events.Order{}
}

// storeZone is the zone of the member's store, or "".
func storeZone(p *store.MemberProfile) string {
	if p.Store != nil {
		return p.Store.TimeZone
	}
	return ""
}

// runCtx is what executing one run needs, loaded lazily and once.
type runCtx struct {
	e   *Engine
	run *store.WorkflowRun
	wf  *workflows.Workflow
	// cur is the visit of the step the run was woken on; nil once it
	// moved to the next.
	cur *store.RunStep

	profile *store.MemberProfile
	trigger *eventFields
	loaded  bool
}

// member returns the run's member profile. On a cross-brand offer's run
// its guide, store and binding are those of the brand the run goes
// through, and its unsubscribes those of both brands.
func (rc *runCtx) member(ctx context.Context) (*store.MemberProfile, error) {
	if rc.profile == nil {
		p, err := rc.e.store.MemberProfile(ctx, rc.run.BrandID, rc.run.MemberID)
		if err != nil {
			return nil, err
		}
		if via := rc.run.ViaBrandID; via != "" {
			v, err := rc.e.store.MemberProfile(ctx, via, rc.run.MemberID)
			if err != nil {
				return nil, err
			}
			p.Binding, p.Guide, p.Store = v.Binding, v.Guide, v.Store
			if p.Membership == nil || p.Member.Name == "" {
				// The offer goes out through the via brand's guide, who
				// addresses the member by the name that brand was given
				// (the member agreed to the offers); the offering brand
				// reads none of it.
				p.Member.Name, p.Member.PhoneTail = v.Member.Name, v.Member.PhoneTail
			}
			for _, ch := range v.Unsubscribed {
				if !slices.Contains(p.Unsubscribed, ch) {
					p.Unsubscribed = append(p.Unsubscribed, ch)
				}
			}
		}
		rc.profile = p
	}
	return rc.profile, nil
}

// changed forgets the member profile after a step changed it.
func (rc *runCtx) changed() { rc.profile = nil }

// triggerEvent returns the event that started the run, or the schedule's.
func (rc *runCtx) triggerEvent(ctx context.Context) (*eventFields, error) {
	if rc.loaded {
		return rc.trigger, nil
	}
	if rc.run.EventID != nil {
		ev, err := rc.e.store.Event(ctx, *rc.run.EventID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if ev != nil {
			f := rc.e.eventFields(ev)
			rc.trigger = &f
		}
	}
	if rc.trigger == nil {
		rc.trigger = &eventFields{event: workflows.Event{Type: "schedule", At: rc.run.StartedAt, Attrs: map[string]string{}}}
		if !strings.HasPrefix(rc.run.TriggerKey, "s") {
			rc.trigger.event.Type = rc.wf.Trigger.Event
		}
	}
	rc.loaded = true
	return rc.trigger, nil
}

// env is what the run's expressions see at now.
func (rc *runCtx) env(ctx context.Context, now time.Time) (*workflows.Env, error) {
	p, err := rc.member(ctx)
	if err != nil {
		return nil, err
	}
	trig, err := rc.triggerEvent(ctx)
	if err != nil {
		return nil, err
	}
	env := &workflows.Env{
		Event:  trig.event,
		Member: rc.e.memberModel(p),
		Run:    workflows.Run{StartedAt: rc.run.StartedAt, Step: rc.run.Step, Sent: rc.run.Sent},
		Now:    now,
	}
	if trig.order != nil {
		env.Order = *trig.order
	} else {
		env.Order = lastOrder(p)
	}
	if trig.live != nil {
		env.Live = *trig.live
	}
	return env, nil
}

// templateData is what the run's messages and guide task texts are
// rendered with.
func (rc *runCtx) templateData(ctx context.Context, step string, loc string) (*templates.Data, error) {
	p, err := rc.member(ctx)
	if err != nil {
		return nil, err
	}
	trig, err := rc.triggerEvent(ctx)
	if err != nil {
		return nil, err
	}
	order := lastOrder(p)
	if trig.order != nil {
		order = *trig.order
	}
	d := memberData(p)
	d.Order = orderData(order)
	d.Workflow = templates.Workflow{Name: rc.wf.Name, Step: step}
	if l := trig.live; l != nil {
		d.Live = templates.Live{Title: l.Title, URL: l.URL, StartsAt: l.StartsAt, EndsAt: l.EndsAt}
	}
	d.Brand = templates.Brand{Name: rc.e.brandName(ctx, rc.run.BrandID)}
	d.TimeZone = loc
	return d, nil
}

// memberData fills the member, guide and store parts of template data.
func memberData(p *store.MemberProfile) *templates.Data {
	d := &templates.Data{Member: templates.Member{Name: p.Member.Name, PhoneTail: p.Member.PhoneTail}}
	if ms := p.Membership; ms != nil {
		d.Member.Level, d.Member.Points = ms.Level, ms.Points
	}
	if p.Store != nil {
		d.Store = templates.Store{Name: p.Store.Name, Address: p.Store.Address, OpeningHours: p.Store.OpeningHours}
		d.Guide.Store = p.Store.Name
	}
	if p.Guide != nil {
		d.Guide.Name = p.Guide.Name
	}
	return d
}

func orderData(o events.Order) templates.Order {
	items := make([]templates.Item, len(o.Items))
	for i, it := range o.Items {
		items[i] = templates.Item{SKU: it.SKU, Name: it.Name, Qty: it.Qty}
	}
	return templates.Order{ID: o.ID, Total: templates.Money(math.Round(o.Total * 100)), Items: items, PurchasedAt: o.PurchasedAt}
}

// brandName returns a brand's display name, cached.
func (e *Engine) brandName(ctx context.Context, id string) string {
	if n, ok := e.brands.Load(id); ok {
		return n.(string)
	}
	b, err := e.store.Brand(ctx, id)
	if err != nil {
		return id
	}
	e.brands.Store(id, b.Name)
	return b.Name
}

// stepKey is the idempotency key of a step visit's effects.
func stepKey(runID int64, step string, visit int) string {
	return "wf:" + strconv.FormatInt(runID, 10) + ":" + step + ":" + strconv.Itoa(visit)
}
