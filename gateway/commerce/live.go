package commerce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// liveSource is the event log's source of the live.scheduled events
// scrmgw logs for a session's audience.
const liveSource = "live"

// inviteBatch is how many members one step of an announcement takes.
const inviteBatch = 500

// liveModel is a live session as events carry it to workflows (the
// expressions' live, the templates' .Live).
type liveModel struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	URL      string    `json:"url"`
	StoreID  string    `json:"store_id,omitempty"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
}

func liveOf(l *store.LiveSession) liveModel {
	return liveModel{ID: l.Key, Title: l.Title, URL: l.URL, StoreID: l.StoreID, StartsAt: l.StartsAt, EndsAt: l.EndsAt}
}

func isLiveEvent(t string) bool {
	return t == events.TypeLiveJoined || t == events.TypeLiveLeft || t == events.TypeLiveOrdered
}

// Invite announces a live session to its audience: every member bound to
// a guide of the session's store (of any store of the brand for a
// brand's session) gets a live.scheduled, with the session and the store
// and guide they are bound to, handed to the workflows, which invite and
// remind them through their guides. An edited session is announced again
// the same way (its revision, and what changed: event data change); a
// cancelled one logs live.cancelled for everyone it was announced to,
// which ends their invitations. It goes through the members in batches,
// recording how far it got, so a retry (or the sweep after a crash) goes
// on where it stopped, and starts over when the session is edited or
// cancelled meanwhile; each member's event is keyed by the session, its
// revision and the member, so nothing is announced twice.
func (c *Ingester) Invite(ctx context.Context, sessionID int64) error {
	n := 0
	for {
		l, err := c.store.LiveSessionByID(ctx, sessionID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading live session %d: %w", sessionID, err)
		}
		if l.InvitedAt != nil {
			if n > 0 {
				c.log.InfoContext(ctx, "live session announced", slog.String("brand", l.BrandID), slog.String("live", l.Key),
					slog.Int("revision", l.Revision), slog.String("change", l.Change), slog.Int("members", n))
			}
			return nil
		}
		var batch []store.LiveAudience
		if l.CancelledAt != nil {
			batch, err = c.store.CancelLiveBatch(ctx, l, inviteBatch)
		} else {
			batch, err = c.store.InviteLiveBatch(ctx, l, c.now(), inviteBatch)
		}
		if err != nil {
			return fmt.Errorf("announcing live session %s: %w", l.Key, err)
		}
		for i := range batch {
			if err := c.logEvent(ctx, c.announcement(l, &batch[i], false)); err != nil {
				return err
			}
		}
		n += len(batch)
		done := len(batch) < inviteBatch
		through := l.InvitedThrough
		if len(batch) > 0 {
			through = batch[len(batch)-1].MemberID
		}
		if _, err := c.store.AdvanceLiveInvite(ctx, l.ID, l.Revision, through, done, c.now()); err != nil {
			return fmt.Errorf("recording the announcement of live session %s: %w", l.Key, err)
		}
		// Not advanced: edited or cancelled meanwhile; the next round
		// reads it again and starts over.
	}
}

// InviteLate announces the upcoming sessions (announced, not cancelled,
// not started) to the members bound to their store since: each gets the
// session's live.scheduled once (keyed by the session, its revision and
// the member, as in the announcement) and joins its audience, so a member
// who adds a guide of the store after the announcement is invited too.
// The periodic sweep runs it; it returns how many members it announced
// to.
func (c *Ingester) InviteLate(ctx context.Context) (int, error) {
	ls, err := c.store.UpcomingLiveSessions(ctx, c.now(), 100)
	if err != nil {
		return 0, fmt.Errorf("listing upcoming live sessions: %w", err)
	}
	n := 0
	for i := range ls {
		l := &ls[i]
		for {
			batch, err := c.store.LateLiveAudience(ctx, l, c.now(), inviteBatch)
			if err != nil {
				return n, fmt.Errorf("finding members bound since live session %s: %w", l.Key, err)
			}
			for j := range batch {
				// The event first: a failure after it finds the member
				// again, and the event is logged once.
				if err := c.logEvent(ctx, c.announcement(l, &batch[j], true)); err != nil {
					return n, err
				}
				if _, err := c.store.EnsureLiveAudience(ctx, &batch[j]); err != nil {
					return n, fmt.Errorf("adding member %d to live session %s: %w", batch[j].MemberID, l.Key, err)
				}
			}
			n += len(batch)
			if len(batch) > 0 {
				c.log.InfoContext(ctx, "live session announced to members bound since", slog.String("brand", l.BrandID), slog.String("live", l.Key),
					slog.Int("members", len(batch)))
			}
			if len(batch) < inviteBatch {
				break
			}
		}
	}
	return n, nil
}

// announcement is the event of one member of a session's audience:
// live.scheduled (data change says what an edit changed), or
// live.cancelled for a cancelled session. A member announced late (bound
// since) is told of the session as it is, not of a change.
func (c *Ingester) announcement(l *store.LiveSession, a *store.LiveAudience, late bool) *store.Event {
	member := a.MemberID
	at := l.CreatedAt
	if a.InvitedAt != nil {
		at = *a.InvitedAt
	}
	typ, key := events.TypeLiveScheduled, "scheduled:"+strconv.FormatInt(l.ID, 10)+":"+strconv.FormatInt(a.MemberID, 10)
	payload := map[string]any{"live": liveOf(l), "store_id": a.StoreID, "guide_id": a.GuideID}
	if l.Revision > 0 {
		// Edits and the cancellation happen now, after the invitation.
		at = c.now()
		key += ":" + strconv.Itoa(l.Revision)
		if !late {
			payload["change"] = l.Change
		}
	}
	if l.CancelledAt != nil {
		typ, key = events.TypeLiveCancelled, "cancelled:"+strconv.FormatInt(l.ID, 10)+":"+strconv.FormatInt(a.MemberID, 10)
		at = *l.CancelledAt
	}
	return &store.Event{Type: typ, BrandID: l.BrandID, MemberID: &member, Source: liveSource, SourceID: key, OccurredAt: at,
		Payload: mustJSON(payload)}
}

// liveEvent applies the live platform's live.joined, live.left and
// live.ordered: the member's mark in the session's audience (a member
// who joined uninvited is added, credited to the session's store, or
// their own store for a brand's session, and their guide there), and
// for live.ordered the order, credited to the audience's store and
// guide (attribution "live"), with its commission lines. A session the
// brand never scheduled is bad data: logged, not retried.
func (c *Ingester) liveEvent(ctx context.Context, in *adapters.Inbound) error {
	raw := []byte(in.Attrs["data"])
	var d events.LiveOrderData
	if err := json.Unmarshal(raw, &d); err != nil {
		return permanent("event data: %v", err)
	}
	l, err := c.store.LiveSession(ctx, in.Brand, d.Live)
	if errors.Is(err, store.ErrNotFound) {
		return permanent("data.live: brand %s has no live session %q", in.Brand, d.Live)
	}
	if err != nil {
		return err
	}
	memberID, err := c.member(ctx, in.Brand, d.Member)
	if err != nil {
		return err
	}
	a, err := c.audience(ctx, l, memberID)
	if err != nil {
		return err
	}
	payload := map[string]any{"live": liveOf(l), "store_id": a.StoreID, "guide_id": a.GuideID, "source": in.Attrs["source"]}
	e := &store.Event{Type: in.Event, BrandID: in.Brand, MemberID: &memberID, Source: in.Channel, SourceID: in.DedupKey, OccurredAt: in.At}
	switch in.Event {
	case events.TypeLiveJoined:
		err = c.store.MarkLiveAudience(ctx, l.ID, memberID, store.LiveJoined, in.At)
	case events.TypeLiveLeft:
		err = c.store.MarkLiveAudience(ctx, l.ID, memberID, store.LiveLeft, in.At)
	case events.TypeLiveOrdered:
		var order map[string]any
		order, err = c.liveOrder(ctx, in, d.PurchaseData, l, a, memberID)
		if order != nil {
			payload["order"] = order
		}
	}
	if err != nil {
		return err
	}
	e.Payload = mustJSON(payload)
	return c.logEvent(ctx, e)
}

// audience is the member's audience row of a session, added (uninvited)
// when they were not announced the session.
func (c *Ingester) audience(ctx context.Context, l *store.LiveSession, memberID int64) (*store.LiveAudience, error) {
	a, err := c.store.LiveAudienceMember(ctx, l.ID, memberID)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return a, err
	}
	a = &store.LiveAudience{SessionID: l.ID, MemberID: memberID, BrandID: l.BrandID, StoreID: l.StoreID}
	v, err := c.store.Member(ctx, memberID, "")
	if err != nil {
		return nil, err
	}
	for _, b := range v.Bindings {
		if b.BrandID == l.BrandID && b.EndedAt == nil && (l.StoreID == "" || b.StoreID == l.StoreID) {
			a.StoreID, a.GuideID = b.StoreID, b.GuideID
		}
	}
	return c.store.EnsureLiveAudience(ctx, a)
}

// liveOrder records a live.ordered's order as a purchase credited to
// the member's audience store and guide, logs it as purchase.completed
// (the member's figures, purchase goals, guide points) and counts it in
// the session's funnel. It returns the order as live.ordered carries it.
func (c *Ingester) liveOrder(ctx context.Context, in *adapters.Inbound, d events.PurchaseData, l *store.LiveSession, a *store.LiveAudience,
	memberID int64) (map[string]any, error) {
	if d.PlacedAt == nil {
		d.PlacedAt = &in.At
	}
	payload, skip, err := c.purchase(ctx, in, d, memberID, &credit{guide: a.GuideID, store: a.StoreID, attribution: AttributionLive})
	if err != nil {
		return nil, err
	}
	o, err := c.store.OrderByNo(ctx, in.Brand, d.OrderID)
	if err != nil {
		return nil, fmt.Errorf("reading order %s: %w", d.OrderID, err)
	}
	if skip {
		// The order was recorded from another event (the shop's own
		// purchase.completed): it counts in the session as it was
		// credited then.
		c.log.InfoContext(ctx, "live order recorded before from another event; counted as credited then",
			slog.String("brand", in.Brand), slog.String("order_id", d.OrderID))
	} else {
		var p map[string]any
		_ = json.Unmarshal([]byte(payload), &p)
		p["live"] = liveOf(l)
		if err := c.logEvent(ctx, &store.Event{Type: events.TypePurchaseCompleted, BrandID: in.Brand, MemberID: &memberID, Source: in.Channel,
			SourceID: "order:" + in.DedupKey, Payload: mustJSON(p), OccurredAt: in.At}); err != nil {
			return nil, err
		}
	}
	lo := &store.LiveOrder{OrderID: o.ID, SessionID: l.ID, MemberID: memberID, TotalCents: o.TotalCents}
	if o.StoreID != nil {
		lo.StoreID = *o.StoreID
	}
	if o.GuideID != nil {
		lo.GuideID = *o.GuideID
	}
	if err := c.store.RecordLiveOrder(ctx, lo); err != nil {
		return nil, fmt.Errorf("counting order %s in live session %s: %w", d.OrderID, l.Key, err)
	}
	if err := c.store.MarkLiveAudience(ctx, l.ID, memberID, store.LiveOrdered, o.PlacedAt); err != nil {
		return nil, err
	}
	out := map[string]any{"id": o.OrderNo, "total": events.Money(o.TotalCents), "store_id": lo.StoreID, "guide_id": lo.GuideID,
		"attribution": o.Attribution}
	return out, nil
}
