package bots

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/geo"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// storeEnroller enrols with the store: the nearest store carrying the
// brand with an assignable guide wins (what the wiring's assigner does,
// simplified), and joins are logged in the event log.
type storeEnroller struct {
	s      *store.Store
	ix     *geo.Index
	joined []*store.Event
}

func (e *storeEnroller) EnsureMember(ctx context.Context, nm store.NewMember) (*store.Member, bool, error) {
	return e.s.EnsureMember(ctx, nm)
}

func (e *storeEnroller) AssignNearest(ctx context.Context, memberID int64, brand string, lat, lng float64) (*store.Binding, error) {
	for _, h := range e.ix.NearestN(lat, lng, brand, 50, 5) {
		gs, err := e.s.AssignableGuides(ctx, h.ID)
		if err != nil {
			return nil, err
		}
		if len(gs) > 0 {
			b, _, err := e.s.Bind(ctx, &store.Binding{MemberID: memberID, BrandID: brand, GuideID: gs[0].ID, StoreID: h.ID, Reason: "nearest"})
			return b, err
		}
	}
	return nil, ErrNoGuide
}

func (e *storeEnroller) JoinedEvent(ctx context.Context, source, sourceID string) (*store.Event, error) {
	return e.s.EventBySource(ctx, source, sourceID)
}

func (e *storeEnroller) Joined(ctx context.Context, ev *store.Event) error {
	e.joined = append(e.joined, ev)
	_, err := e.s.AppendEvent(ctx, ev)
	return err
}

// TestMemberBotEnrols: sharing a location makes an unknown sender a member
// bound to a guide of the nearest store selling the brand, binds a known
// member without a guide, keeps a bound member's guide, and says so in
// the reply; with no guide to be had, the stores are listed alone.
func TestMemberBotEnrols(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		d := setupDeps(t, s)
		ix := d.Stores.(indexFinder).ix
		enr := &storeEnroller{s: s, ix: ix}
		d.Enroll = enr
		bot := Chain(&Router{Member: MemberBot(d), Guide: GuideBot(d)}, Normalize())
		// wmKnown is a member of camellia without a guide; wmOther a
		// member of another brand only.
		if _, _, err := s.EnsureMember(ctx, store.NewMember{BrandID: "camellia", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmKnown"}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateBrand(ctx, &store.Brand{ID: "lotus", Name: "莲"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.EnsureMember(ctx, store.NewMember{BrandID: "lotus", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmOther"}}}); err != nil {
			t.Fatal(err)
		}
		nearXTD := &adapters.Location{Lat: 31.2191, Lng: 121.4749} // 新天地店, 吴敏's
		tests := []struct {
			name, sender, brand string
			at                  *adapters.Location
			wantGuide, wantJoin string // "" for none
			want                string
		}{
			{"unknown sender", "wmNew", "camellia", nearXTD, "wu", `{"message_id":"m-wmNew","new_member":"true","via":"bot_location"}`, "您的专属导购是 吴敏（新天地店）"},
			{"known member without a guide", "wmKnown", "camellia", nearXTD, "wu", "", "您的专属导购是 吴敏（新天地店）"},
			{"member of another brand", "wmOther", "camellia", nearXTD, "wu", `{"message_id":"m-wmOther","new_member":"false","via":"bot_location"}`, "您的专属导购是 吴敏（新天地店）"},
			{"bound member keeps their guide", "wmChen", "camellia", nearXTD, "li", "", "您的专属导购是 李娜（静安店）"},
			{"no store near", "wmFar", "camellia", &adapters.Location{Lat: 39.9, Lng: 116.4}, "", `{"message_id":"m-wmFar","new_member":"true","via":"bot_location"}`, "您附近暂时没有我们的门店"},
			{"no brand", "wmNoBrand", "", nearXTD, "", "", "门店"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				enr.joined = nil
				rs, err := bot.Handle(ctx, &Message{Channel: "wecom", From: adapters.PartyMember, SenderID: tc.sender, Brand: tc.brand, Location: tc.at, DedupKey: "m-" + tc.sender})
				if err != nil || len(rs) != 1 {
					t.Fatalf("%v, %d replies", err, len(rs))
				}
				if !strings.Contains(rs[0].Text, tc.want) || tc.wantGuide == "" && strings.Contains(rs[0].Text, "专属导购") {
					t.Errorf("reply %q, want %q", rs[0].Text, tc.want)
				}
				v, err := s.MemberByIdentity(ctx, "wecom", tc.sender)
				if tc.brand == "" {
					if !errors.Is(err, store.ErrNotFound) {
						t.Errorf("a sender without a brand became member %+v (%v)", v, err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				guide := ""
				for _, b := range v.Bindings {
					if b.BrandID == "camellia" {
						guide = b.GuideID
					}
				}
				if guide != tc.wantGuide || !hasMembership(v, "camellia") {
					t.Errorf("bound to %q (memberships %+v), want %q", guide, v.Memberships, tc.wantGuide)
				}
				switch {
				case tc.wantJoin == "" && len(enr.joined) != 0:
					t.Errorf("joined %+v, want none", enr.joined[0])
				case tc.wantJoin != "" && (len(enr.joined) != 1 || enr.joined[0].Payload != tc.wantJoin || *enr.joined[0].MemberID != v.ID ||
					enr.joined[0].Type != events.TypeMemberJoined || enr.joined[0].BrandID != "camellia"):
					t.Errorf("joined %+v, want one with %s", enr.joined, tc.wantJoin)
				}
			})
		}
	})
}

// TestMemberBotJoinsOnAnyMessage: a text from a sender not yet known
// makes them a member of the brand with their identity and no guide, and
// logs member.joined once, keyed by the identity; the same message again
// (a retry) hands the same event on again, a later message does not; a
// member who joined otherwise (a contact) is not joined again.
func TestMemberBotJoinsOnAnyMessage(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		d := setupDeps(t, s)
		enr := &storeEnroller{s: s, ix: d.Stores.(indexFinder).ix}
		d.Enroll = enr
		bot := Chain(&Router{Member: MemberBot(d), Guide: GuideBot(d)}, Normalize())
		say := func(sender, key, text string) {
			t.Helper()
			rs, err := bot.Handle(ctx, &Message{Channel: "wecom", From: adapters.PartyMember, SenderID: sender, Brand: "camellia", Text: text, DedupKey: key})
			if err != nil || len(rs) != 1 {
				t.Fatalf("%v, %d replies", err, len(rs))
			}
		}
		say("wmHello", "msg-1", "你好")
		v, err := s.MemberByIdentity(ctx, "wecom", "wmHello")
		if err != nil {
			t.Fatalf("no member for the sender: %v", err)
		}
		if !hasMembership(v, "camellia") || len(v.Bindings) != 0 {
			t.Errorf("memberships %+v bindings %+v, want camellia and no guide", v.Memberships, v.Bindings)
		}
		if len(enr.joined) != 1 || enr.joined[0].Payload != `{"message_id":"msg-1","new_member":"true","via":"bot_message"}` ||
			enr.joined[0].SourceID != "bot-joined:camellia:wmHello" || enr.joined[0].ID == 0 || *enr.joined[0].MemberID != v.ID {
			t.Fatalf("joined %+v", enr.joined)
		}
		first := enr.joined[0].ID
		say("wmHello", "msg-1", "你好") // the worker retries the message
		if len(enr.joined) != 2 || enr.joined[1].ID != first {
			t.Errorf("a retry handed %+v, want event %d again", enr.joined[1:], first)
		}
		say("wmHello", "msg-2", "在吗")
		if len(enr.joined) != 2 {
			t.Errorf("a later message handed %+v", enr.joined[2:])
		}
		evs, err := s.Events(ctx, store.EventFilter{MemberID: v.ID, Type: events.TypeMemberJoined})
		if err != nil || len(evs) != 1 {
			t.Errorf("member.joined logged %d times (%v), want once", len(evs), err)
		}

		// A contact added on the channel joined already: not again.
		if _, _, err := s.EnsureMember(ctx, store.NewMember{BrandID: "camellia", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmContact"}},
			Joined: &store.Event{Type: events.TypeMemberJoined, Source: "wecom", SourceID: "contact-msg-9"}}); err != nil {
			t.Fatal(err)
		}
		enr.joined = nil
		say("wmContact", "msg-3", "你好")
		if len(enr.joined) != 0 {
			t.Errorf("a member who joined as a contact joined again: %+v", enr.joined)
		}
	})
}
