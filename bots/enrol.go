package bots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
)

// TypeMemberJoined is the event logged when the bot makes a sender a
// member, as a contact added on a channel is: workflows start on it.
const TypeMemberJoined = "member.joined"

// ErrNoGuide means no guide can take the member: no store carrying the
// brand near enough has room, and no pool does.
var ErrNoGuide = errors.New("no guide can take the member")

// Enroller makes members of senders not yet known and binds members
// without a guide to one near them; the wiring satisfies it with the
// store, the assigner and the workflow engine.
type Enroller interface {
	// EnsureMember returns the member with nm's identities, creating them
	// when new, with a membership of nm's brand.
	EnsureMember(ctx context.Context, nm store.NewMember) (m *store.Member, created bool, err error)
	// AssignNearest binds the member to a guide of the nearest store
	// carrying the brand that has room (falling back as assignment is
	// configured), and returns the binding; a member already bound keeps
	// their guide. ErrNoGuide when none can take them.
	AssignNearest(ctx context.Context, memberID int64, brand string, lat, lng float64) (*store.Binding, error)
	// Joined logs member.joined and hands it to the workflows; it is
	// idempotent per (source, source id).
	Joined(ctx context.Context, e *store.Event) error
}

// enrol keeps the promise of bot_my_guide ("share your location and we'll
// match you with a guide of the nearest store"): a sender not yet known
// becomes a member of the message's brand with their channel identity,
// and a member without a guide for the brand is bound to one of the
// nearest store that carries it. It fills data.Guide and data.Store with
// the member's guide (new or kept), so the reply names them. Without an
// Enroller, a brand or a location, it does nothing.
func (d Deps) enrol(ctx context.Context, m *Message, member *store.MemberView, data *templates.Data) error {
	if d.Enroll == nil || m.Brand == "" || m.Location == nil {
		return nil
	}
	if member == nil {
		v, err := d.Directory.MemberByIdentity(ctx, m.Channel, m.SenderID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		member = v
	}
	var (
		memberID int64
		joined   bool // a new member, or new to the brand
		created  bool // a new member
		bound    *store.Binding
	)
	if member != nil {
		memberID = member.ID
		for i, b := range member.Bindings {
			if b.BrandID == m.Brand {
				bound = &member.Bindings[i]
			}
		}
	}
	if member == nil || !hasMembership(member, m.Brand) {
		// A new member, or a member of another brand, joins this one.
		mm, fresh, err := d.Enroll.EnsureMember(ctx, store.NewMember{BrandID: m.Brand,
			Identities: []store.Identity{{Channel: m.Channel, ExternalID: m.SenderID}}})
		if err != nil {
			return fmt.Errorf("making %s sender a member: %w", m.Channel, err)
		}
		memberID, joined, created = mm.ID, true, fresh
	}
	if bound == nil {
		b, err := d.Enroll.AssignNearest(ctx, memberID, m.Brand, m.Location.Lat, m.Location.Lng)
		switch {
		case errors.Is(err, ErrNoGuide):
			d.log().Info("no guide for a member who shared a location", slog.Int64("member_id", memberID), slog.String("brand", m.Brand))
		case err != nil:
			return fmt.Errorf("binding member %d to a guide: %w", memberID, err)
		default:
			bound = b
		}
	}
	if joined {
		attrs := map[string]string{"new_member": fmt.Sprint(created), "via": "bot_location"}
		if bound != nil {
			attrs["guide_id"] = bound.GuideID
		}
		payload, _ := json.Marshal(attrs)
		// Keyed by the identity: a sender joins a brand through the bot once.
		e := &store.Event{Type: TypeMemberJoined, BrandID: m.Brand, MemberID: &memberID, Source: m.Channel,
			SourceID: "bot-joined:" + m.Brand + ":" + m.SenderID, Payload: string(payload)}
		if err := d.Enroll.Joined(ctx, e); err != nil {
			return fmt.Errorf("logging member.joined: %w", err)
		}
	}
	if bound == nil {
		return nil
	}
	g, err := d.Directory.Guide(ctx, bound.GuideID, "")
	if err != nil {
		return err
	}
	rs, err := d.Directory.RetailStore(ctx, bound.StoreID, "")
	if err != nil {
		return err
	}
	data.Guide = templates.Guide{Name: g.Name, Store: rs.Name}
	data.Store = templates.Store{Name: rs.Name, Address: rs.Address, OpeningHours: rs.OpeningHours}
	return nil
}

func hasMembership(v *store.MemberView, brand string) bool {
	for _, ms := range v.Memberships {
		if ms.BrandID == brand {
			return true
		}
	}
	return false
}
