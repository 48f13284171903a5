package bots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
)

// ErrNoGuide means no guide can take the member: no store carrying the
// brand near enough has room, and no pool does.
var ErrNoGuide = errors.New("no guide can take the member")

// Enroller makes members of senders not yet known and binds members
// without a guide to one near them; the wiring satisfies it with the
// store, the assigner and the workflow engine.
type Enroller interface {
	// EnsureMember returns the member with nm's identities, creating them
	// when new, with a membership of nm's brand; nm.Joined is logged with
	// a new membership, in the same transaction.
	EnsureMember(ctx context.Context, nm store.NewMember) (m *store.Member, created bool, err error)
	// AssignNearest binds the member to a guide of the nearest store
	// carrying the brand that has room (falling back as assignment is
	// configured), and returns the binding; a member already bound keeps
	// their guide. ErrNoGuide when none can take them.
	AssignNearest(ctx context.Context, memberID int64, brand string, lat, lng float64) (*store.Binding, error)
	// JoinedEvent returns the event logged with source and sourceID, or
	// store.ErrNotFound.
	JoinedEvent(ctx context.Context, source, sourceID string) (*store.Event, error)
	// Joined logs member.joined (idempotent per source and source id: an
	// event already logged is read back into e) and hands it to the
	// workflows, which must be idempotent too.
	Joined(ctx context.Context, e *store.Event) error
}

// joinKey keys the member.joined of a sender joining a brand through the
// bot: by their identity, so they join once however often they write.
func joinKey(m *Message) string { return "bot-joined:" + m.Brand + ":" + m.SenderID }

// join makes a sender of a message not yet known on the channel (or not
// a member of the message's brand) a member of that brand with their
// channel identity, logging member.joined in the same transaction, and
// hands that event to the workflows. A retry of the message that made
// them (the same DedupKey) hands the event again, so a worker that died
// after the member and its event were stored still starts the
// workflows; the hand-off is idempotent. It returns the member as it is
// now (nil without an Enroller or a brand, when it does nothing).
func (d Deps) join(ctx context.Context, m *Message, member *store.MemberView) (*store.MemberView, error) {
	if d.Enroll == nil || m.Brand == "" {
		return member, nil
	}
	if member == nil {
		v, err := d.Directory.MemberByIdentity(ctx, m.Channel, m.SenderID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		member = v
	}
	if member != nil && hasMembership(member, m.Brand) {
		e, err := d.Enroll.JoinedEvent(ctx, m.Channel, joinKey(m))
		if errors.Is(err, store.ErrNotFound) {
			return member, nil // joined otherwise (a contact, the API)
		}
		if err != nil {
			return nil, fmt.Errorf("reading member.joined: %w", err)
		}
		var attrs map[string]string
		_ = json.Unmarshal([]byte(e.Payload), &attrs)
		if m.DedupKey == "" || attrs["message_id"] != m.DedupKey {
			return member, nil
		}
		// The message that made them, again: the worker may have died
		// before the workflows had the event.
		if err := d.Enroll.Joined(ctx, e); err != nil {
			return nil, fmt.Errorf("logging member.joined: %w", err)
		}
		return member, nil
	}
	via := "bot_message"
	if m.Location != nil {
		via = "bot_location"
	}
	payload, _ := json.Marshal(map[string]string{"new_member": fmt.Sprint(member == nil), "via": via, "message_id": m.DedupKey})
	e := &store.Event{Type: events.TypeMemberJoined, BrandID: m.Brand, Source: m.Channel, SourceID: joinKey(m), Payload: string(payload)}
	mm, _, err := d.Enroll.EnsureMember(ctx, store.NewMember{BrandID: m.Brand,
		Identities: []store.Identity{{Channel: m.Channel, ExternalID: m.SenderID}}, Joined: e})
	if err != nil {
		return nil, fmt.Errorf("making %s sender a member: %w", m.Channel, err)
	}
	e.MemberID = &mm.ID
	// Reads the event back (a concurrent message may have logged it
	// first) and hands it on.
	if err := d.Enroll.Joined(ctx, e); err != nil {
		return nil, fmt.Errorf("logging member.joined: %w", err)
	}
	d.log().Info("sender became a member", slog.String("channel", m.Channel), slog.Int64("member_id", mm.ID), slog.String("brand", m.Brand))
	v, err := d.Directory.Member(ctx, mm.ID, "")
	if err != nil {
		return nil, fmt.Errorf("reading member %d: %w", mm.ID, err)
	}
	return v, nil
}

// enrol keeps the promise of bot_my_guide ("share your location and we'll
// match you with a guide of the nearest store"): a member (join made the
// sender one) without a guide for the brand is bound to one of the
// nearest store that carries it. It fills data.Guide and data.Store with
// the member's guide (new or kept), so the reply names them. Without an
// Enroller, a brand, a location or a member, it does nothing.
func (d Deps) enrol(ctx context.Context, m *Message, member *store.MemberView, data *templates.Data) error {
	if d.Enroll == nil || m.Brand == "" || m.Location == nil || member == nil {
		return nil
	}
	var bound *store.Binding
	for i, b := range member.Bindings {
		if b.BrandID == m.Brand {
			bound = &member.Bindings[i]
		}
	}
	if bound == nil {
		b, err := d.Enroll.AssignNearest(ctx, member.ID, m.Brand, m.Location.Lat, m.Location.Lng)
		switch {
		case errors.Is(err, ErrNoGuide):
			d.log().Info("no guide for a member who shared a location", slog.Int64("member_id", member.ID), slog.String("brand", m.Brand))
		case err != nil:
			return fmt.Errorf("binding member %d to a guide: %w", member.ID, err)
		default:
			bound = b
		}
	}
	if bound == nil {
		return nil
	}
	return d.boundData(ctx, bound, data)
}

func hasMembership(v *store.MemberView, brand string) bool {
	for _, ms := range v.Memberships {
		if ms.BrandID == brand {
			return true
		}
	}
	return false
}
