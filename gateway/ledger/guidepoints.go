package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// GuidePoints awards guides their points (PointsRules) as events
// are logged and tasks completed, into the append-only guide points
//
//	 Every entry is keyed by what earned it:
//
//		bound:<brand>:<member>:<guide>   a member bound to the guide
//		task:<task id>                   a task done before it was due
//		order:<order id>:nudge|sales     a purchase
//		refund:<refund id>:nudge|sales   a refund taking purchase points back
//		coupon:<redemption id>           a coupon the guide's message carried, redeemed
//		uncoupon:<redemption id>         that redemption reversed (the order refunded)
//
// so a redelivered event, a retried task or a second worker awards
// nothing twice. Entries count in the month (in Location) of what earned
// them: the binding, the completion, the purchase, the refund.
type GuidePoints struct {
	store *store.Store
	log   *slog.Logger
	// Rules are the guide points rules; nil awards nothing.
	Rules *PointsRules
	// Location is the ledger's time zone: the months of the leaderboards.
	Location *time.Location
	now      func() time.Time
}

// BindingFresh is how old a binding may be when an event about its
// member is handled and still earn its guide the member_bound points:
// members bound before guide points were turned on (or whose binding no
// event reported in time) earn nothing, and old months' leaderboards do
// not change.
const BindingFresh = 7 * 24 * time.Hour

// NewGuidePoints returns the guide points awarder.
func NewGuidePoints(s *store.Store, rules *PointsRules, loc *time.Location, log *slog.Logger) *GuidePoints {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if loc == nil {
		loc = time.UTC
	}
	return &GuidePoints{store: s, log: log, Rules: rules, Location: loc, now: time.Now}
}

// Then returns an OnLogged hook that awards an event's points and then
// hands it to next (the workflow engine), when next is not nil.
func (g *GuidePoints) Then(next func(ctx context.Context, e *store.Event) error) func(ctx context.Context, e *store.Event) error {
	return func(ctx context.Context, e *store.Event) error {
		if err := g.HandleEvent(ctx, e); err != nil {
			return fmt.Errorf("awarding guide points: %w", err)
		}
		if next == nil {
			return nil
		}
		return next(ctx, e)
	}
}

// Month is the ledger month (YYYY-MM) of t.
func (g *GuidePoints) Month(t time.Time) string { return t.In(g.Location).Format("2006-01") }

// HandleEvent awards what a logged event earns: a member bound to a
// guide (joined, signed up, or any member event within BindingFresh of
// the binding), a purchase, a refund's clawback.
func (g *GuidePoints) HandleEvent(ctx context.Context, e *store.Event) error {
	if e.MemberID == nil || e.BrandID == "" {
		return nil
	}
	rule, ok := g.Rules.For(e.BrandID)
	if !ok {
		return nil
	}
	switch e.Type {
	case events.TypeMemberJoined, events.TypeMemberSignedUp, events.TypeMemberUpdated, events.TypeStoreVisited, events.TypePurchaseCompleted:
		// A binding no event reported (made through the API or a
		// workflow step) is credited at the member's next event.
		if err := g.bound(ctx, rule, *e.MemberID, e.BrandID, e.Binding); err != nil {
			return err
		}
	}
	switch e.Type {
	case events.TypePurchaseCompleted:
		var p struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(e.Payload), &p); err != nil || p.ID == "" {
			g.log.Warn("purchase event without an order id; no guide points", slog.Int64("event_id", e.ID))
			return nil
		}
		return g.purchase(ctx, rule, e.BrandID, p.ID)
	case events.TypePurchaseRefunded:
		var p struct {
			OrderID string `json:"order_id"`
		}
		if err := json.Unmarshal([]byte(e.Payload), &p); err != nil || p.OrderID == "" {
			g.log.Warn("refund event without an order id; no guide points", slog.Int64("event_id", e.ID))
			return nil
		}
		o, err := g.store.OrderByNo(ctx, e.BrandID, p.OrderID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return g.clawbacks(ctx, o)
	case events.TypeCouponRedeemed, events.TypeCouponUnredeemed:
		return g.coupon(ctx, rule, e)
	}
	return nil
}

// coupon awards the guide a redeemed coupon is attributed to (whose
// message carried it: the redemption's guide_id), or takes the points
// back when the redemption is reversed. A coupon.redeemed the POS posts
// carries no redemption (scrmgw logs its own, with the guide); only
// scrmgw's, from source "coupons", count.
func (g *GuidePoints) coupon(ctx context.Context, rule PointsRule, e *store.Event) error {
	if rule.CouponRedeemed <= 0 || e.Source != "coupons" {
		return nil
	}
	var p struct {
		RedemptionID string `json:"redemption_id"`
		GuideID      string `json:"guide_id"`
		StoreID      string `json:"store_id"`
		Batch        string `json:"batch"`
	}
	if err := json.Unmarshal([]byte(e.Payload), &p); err != nil || p.RedemptionID == "" || p.GuideID == "" {
		return nil // no guide carried it (or not scrmgw's redemption)
	}
	storeID := ""
	if gd, err := g.store.Guide(ctx, p.GuideID, ""); err == nil {
		storeID = gd.StoreID
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	var en store.GuidePointsEntry
	if e.Type == events.TypeCouponRedeemed {
		en = g.entry("coupon:"+p.RedemptionID, store.GuidePointsCoupon, p.GuideID, e.BrandID, storeID, rule.CouponRedeemed, e.OccurredAt,
			"coupon_redeemed "+p.Batch)
	} else {
		en = g.entry("uncoupon:"+p.RedemptionID, store.GuidePointsClawback, p.GuideID, e.BrandID, storeID, -rule.CouponRedeemed, e.OccurredAt,
			"clawback coupon_redeemed (order refunded)")
	}
	en.MemberID = *e.MemberID
	return g.award(ctx, en)
}

// award writes entries and logs the new ones.
func (g *GuidePoints) award(ctx context.Context, entries ...store.GuidePointsEntry) error {
	if len(entries) == 0 {
		return nil
	}
	fresh, err := g.store.AwardGuidePoints(ctx, entries)
	if err != nil {
		return err
	}
	for _, e := range fresh {
		g.log.Debug("guide points", slog.String("guide_id", e.GuideID), slog.String("brand", e.BrandID), slog.String("kind", e.Kind),
			slog.Int64("points", e.Points), slog.String("key", e.Key))
	}
	return nil
}

func (g *GuidePoints) entry(key, kind, guide, brand, storeID string, points int64, at time.Time, rule string) store.GuidePointsEntry {
	return store.GuidePointsEntry{Key: key, Kind: kind, GuideID: guide, BrandID: brand, StoreID: storeID, Points: points,
		EarnedAt: at, Month: g.Month(at), Rule: rule}
}

// currentBinding is the member's binding with the brand, or nil.
func (g *GuidePoints) currentBinding(ctx context.Context, memberID int64, brand string) (*store.Binding, error) {
	v, err := g.store.Member(ctx, memberID, "")
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for i := range v.Bindings {
		if b := &v.Bindings[i]; b.BrandID == brand && b.EndedAt == nil {
			return b, nil
		}
	}
	return nil, nil
}

// bound awards the member's guide for the binding, once per member,
// brand and guide (a member unbound and bound again earns nothing more).
// Members a guide inherits from a leaver earn nothing, nor bindings older
// than BindingFresh. known, when not nil, is the member's current
// binding as the event was logged (store.Event.Binding): it is not read
// again.
func (g *GuidePoints) bound(ctx context.Context, rule PointsRule, memberID int64, brand string, known *store.Binding) error {
	if rule.MemberBound <= 0 {
		return nil
	}
	b := known
	if b == nil || b.MemberID != memberID || b.BrandID != brand || b.EndedAt != nil {
		var err error
		if b, err = g.currentBinding(ctx, memberID, brand); err != nil {
			return err
		}
	}
	if b == nil || b.Reason == "inherited" || g.now().Sub(b.CreatedAt) > BindingFresh {
		return nil
	}
	key := "bound:" + brand + ":" + strconv.FormatInt(memberID, 10) + ":" + b.GuideID
	e := g.entry(key, store.GuidePointsBound, b.GuideID, brand, b.StoreID, rule.MemberBound, b.CreatedAt, "member_bound "+b.Reason)
	e.MemberID = memberID
	return g.award(ctx, e)
}

// purchase awards an order's points: sales points to the guide it is
// attributed to; nudge points to the member's bound guide when a
// workflow message reached the member within the rule's days before the
// purchase, through that guide or on their behalf, or the order is
// attributed to them. Refunds recorded already are taken back at once.
func (g *GuidePoints) purchase(ctx context.Context, rule PointsRule, brand, orderNo string) error {
	o, err := g.store.OrderByNo(ctx, brand, orderNo)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	id := strconv.FormatInt(o.ID, 10)
	var entries []store.GuidePointsEntry
	attributed := ""
	if o.GuideID != nil {
		attributed = *o.GuideID
	}
	if pts := rule.SalesPoints(o.TotalCents); attributed != "" && pts != 0 {
		storeID := ""
		if o.StoreID != nil {
			storeID = *o.StoreID
		} else if gd, err := g.store.Guide(ctx, attributed, ""); err == nil {
			storeID = gd.StoreID
		}
		e := g.entry("order:"+id+":sales", store.GuidePointsSales, attributed, brand, storeID, pts, o.PlacedAt, "per_yuan "+rule.PerYuan.String())
		e.MemberID, e.OrderID = o.MemberID, o.ID
		entries = append(entries, e)
	}
	if rule.NudgePurchase > 0 {
		b, err := g.currentBinding(ctx, o.MemberID, brand)
		if err != nil {
			return err
		}
		if b != nil {
			nudges, err := g.store.MemberNudges(ctx, o.MemberID, brand, o.PlacedAt.AddDate(0, 0, -rule.NudgeDays), o.PlacedAt)
			if err != nil {
				return err
			}
			for _, n := range nudges {
				if n.GuideID == b.GuideID || attributed == b.GuideID {
					e := g.entry("order:"+id+":nudge", store.GuidePointsNudge, b.GuideID, brand, b.StoreID, rule.NudgePurchase, o.PlacedAt,
						fmt.Sprintf("nudge_purchase within %d days of run %d", rule.NudgeDays, n.RunID))
					e.MemberID, e.OrderID = o.MemberID, o.ID
					entries = append(entries, e)
					break
				}
			}
		}
	}
	if err := g.award(ctx, entries...); err != nil {
		return err
	}
	return g.clawbacks(ctx, o)
}

// clawbacks writes, for each of the order's refunds, the reversal of its
// share of the order's points: sales points in proportion to the money
// refunded up to it (SalesClawback), the nudge points with the refund
// that completes a full refund. Each is keyed by the refund, so they are
// written once whatever order the events come in.
func (g *GuidePoints) clawbacks(ctx context.Context, o *store.Order) error {
	entries, err := g.store.GuidePoints(ctx, store.GuidePointsFilter{OrderID: o.ID})
	if err != nil {
		return err
	}
	var sales, nudge *store.GuidePointsEntry
	for i := range entries {
		e := &entries[i]
		if e.RefundID != 0 {
			continue
		}
		switch e.Kind {
		case store.GuidePointsSales:
			sales = e
		case store.GuidePointsNudge:
			nudge = e
		}
	}
	if sales == nil && nudge == nil {
		return nil
	}
	refunds, err := g.store.OrderRefunds(ctx, o.ID)
	if err != nil {
		return err
	}
	var out []store.GuidePointsEntry
	var cum int64
	for _, r := range refunds {
		before := cum
		cum += r.AmountCents
		rid := strconv.FormatInt(r.ID, 10)
		if sales != nil {
			if c := SalesClawback(sales.Points, o.TotalCents, before, cum); c != 0 {
				e := g.entry("refund:"+rid+":sales", store.GuidePointsClawback, sales.GuideID, sales.BrandID, sales.StoreID, -c, r.RefundedAt,
					"clawback "+sales.Rule)
				e.MemberID, e.OrderID, e.RefundID = sales.MemberID, o.ID, r.ID
				out = append(out, e)
			}
		}
		if nudge != nil && before < o.TotalCents && cum >= o.TotalCents {
			e := g.entry("refund:"+rid+":nudge", store.GuidePointsClawback, nudge.GuideID, nudge.BrandID, nudge.StoreID, -nudge.Points, r.RefundedAt,
				"clawback nudge_purchase (order fully refunded)")
			e.MemberID, e.OrderID, e.RefundID = nudge.MemberID, o.ID, r.ID
			out = append(out, e)
		}
	}
	return g.award(ctx, out...)
}

// TaskDone awards a task completed before its due time (at its due time
// still counts), once per task.
func (g *GuidePoints) TaskDone(ctx context.Context, t *store.GuideTask) error {
	if t == nil || t.State != store.GuideTaskDone || t.CompletedAt == nil || t.CompletedAt.After(t.DueAt) {
		return nil
	}
	rule, ok := g.Rules.For(t.BrandID)
	if !ok || rule.TaskOnTime <= 0 {
		return nil
	}
	gd, err := g.store.Guide(ctx, t.GuideID, "")
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	e := g.entry("task:"+strconv.FormatInt(t.ID, 10), store.GuidePointsTask, t.GuideID, t.BrandID, gd.StoreID, rule.TaskOnTime, *t.CompletedAt,
		"task_on_time")
	e.MemberID, e.TaskID = t.MemberID, t.ID
	return g.award(ctx, e)
}

// TaskCompleter completes guide tasks (the workflow engine).
type TaskCompleter interface {
	CompleteGuideTask(ctx context.Context, id int64) (*store.GuideTask, bool, error)
}

// Tasks wraps a TaskCompleter so that a task completed through it earns
// its points. A retry of a completion that failed after the task was
// done still awards them (the task is done, the entry keyed by it).
func (g *GuidePoints) Tasks(next TaskCompleter) TaskCompleter { return pointsTasks{g, next} }

type pointsTasks struct {
	g    *GuidePoints
	next TaskCompleter
}

func (p pointsTasks) CompleteGuideTask(ctx context.Context, id int64) (*store.GuideTask, bool, error) {
	t, completed, err := p.next.CompleteGuideTask(ctx, id)
	if t != nil && t.State == store.GuideTaskDone {
		if aerr := p.g.TaskDone(ctx, t); aerr != nil {
			return t, completed, errors.Join(err, fmt.Errorf("awarding task %d points: %w", id, aerr))
		}
	}
	return t, completed, err
}
