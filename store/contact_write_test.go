package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestEnsureMemberInboundAt: a new contact's write records their touch
// on the identity they came by (the first), as TouchIdentity would: set
// on a new identity, moved forward only on a known one, never on the
// others (their union id).
func TestEnsureMemberInboundAt(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme", "zeta")
		t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		ids := []store.Identity{{Channel: "wecom", ExternalID: "wmChen"}, {Channel: "wecom_unionid", ExternalID: "uChen"}}
		m, created, err := s.EnsureMember(ctx, store.NewMember{BrandID: "acme", Name: "陈女士", Identities: ids, InboundAt: t0})
		if err != nil || !created || m.Name != "陈女士" {
			t.Fatalf("EnsureMember = %+v created %v, %v; want a new member named 陈女士", m, created, err)
		}
		last := func(channel string) time.Time {
			t.Helper()
			p, err := s.MemberProfile(ctx, "acme", m.ID)
			if err != nil {
				t.Fatal(err)
			}
			return p.LastInbound(channel)
		}
		if got := last("wecom"); !got.Equal(t0) {
			t.Errorf("LastInbound(wecom) = %v, want %v", got, t0)
		}
		if got := last("wecom_unionid"); !got.IsZero() {
			t.Errorf("LastInbound(wecom_unionid) = %v, want zero", got)
		}
		// A late redelivery does not move it back; a later join (the
		// member adds another brand's guide) moves it on.
		for _, tc := range []struct {
			brand string
			at    time.Time
			want  time.Time
		}{
			{"acme", t0.Add(-time.Hour), t0},
			{"zeta", t0.Add(time.Minute), t0.Add(time.Minute)},
		} {
			again, created, err := s.EnsureMember(ctx, store.NewMember{BrandID: tc.brand, Name: "Chen", Identities: ids, InboundAt: tc.at})
			if err != nil || created || again.ID != m.ID {
				t.Fatalf("EnsureMember again (%s) = %+v created %v, %v; want member %d", tc.brand, again, created, err, m.ID)
			}
			if got := last("wecom"); !got.Equal(tc.want) {
				t.Errorf("after a join of %s at %v: LastInbound(wecom) = %v, want %v", tc.brand, tc.at, got, tc.want)
			}
		}
		// The names the brands were given: a new membership's is the
		// name of the join, a known one keeps its own.
		if again, _, err := s.EnsureMember(ctx, store.NewMember{BrandID: "acme", Name: "Other", Identities: ids}); err != nil || again.Name != "陈女士" {
			t.Errorf("member as acme knows them = %+v, %v; want 陈女士", again, err)
		}
		if again, _, err := s.EnsureMember(ctx, store.NewMember{BrandID: "zeta", Identities: ids}); err != nil || again.Name != "Chen" {
			t.Errorf("member as zeta knows them = %+v, %v; want Chen", again, err)
		}
	})
}

// TestBindNew: binding a member created in the same transaction counts
// the guide's member and writes the binding with the member, or nothing
// at all when the guide is unknown; outside a transaction it is Bind.
func TestBindNew(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		if err := s.CreateRetailStore(ctx, &store.RetailStore{ID: "st1", Name: "S1", Lat: 31.2, Lng: 121.4, BrandIDs: []string{"acme"}, Active: true}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateGuide(ctx, &store.Guide{ID: "g1", StoreID: "st1", Name: "G1", Active: true}); err != nil {
			t.Fatal(err)
		}
		nm := store.NewMember{BrandID: "acme", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm1"}}}
		var got *store.Binding
		bind := func(guide string) func(tx *store.Store, m *store.Member, created bool) error {
			return func(tx *store.Store, m *store.Member, created bool) error {
				b, err := tx.BindNew(ctx, &store.Binding{MemberID: m.ID, BrandID: "acme", GuideID: guide, StoreID: "st1", Reason: "contact"})
				got = b
				return err
			}
		}
		if _, _, err := s.EnsureMemberThen(ctx, nm, bind("nobody")); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("binding to an unknown guide: err = %v, want ErrInvalid", err)
		}
		if _, err := s.MemberByIdentity(ctx, "wecom", "wm1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the member was kept though the binding failed: %v", err)
		}
		m, _, err := s.EnsureMemberThen(ctx, nm, bind("g1"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.MemberByIdentity(ctx, "wecom", "wm1")
		if err != nil || len(v.Bindings) != 1 || v.Bindings[0].ID != got.ID || v.Bindings[0].GuideID != "g1" || v.Bindings[0].Reason != "contact" {
			t.Fatalf("member = %+v, %v; want bound to g1 by binding %+v", v, err, got)
		}
		if got.MemberID != m.ID || got.CreatedAt.IsZero() || got.EndedAt != nil {
			t.Errorf("BindNew returned %+v", got)
		}
		if g, err := s.Guide(ctx, "g1", ""); err != nil || g.BoundCount != 1 {
			t.Fatalf("guide g1 = %+v, %v; want 1 bound", g, err)
		}
		// Outside a transaction: Bind, which keeps the current binding.
		b, err := s.BindNew(ctx, &store.Binding{MemberID: m.ID, BrandID: "acme", GuideID: "g1", StoreID: "st1", Reason: "manual"})
		if err != nil || b.ID != got.ID {
			t.Fatalf("BindNew outside a transaction = %+v, %v; want the current binding %d", b, err, got.ID)
		}
		if g, _ := s.Guide(ctx, "g1", ""); g.BoundCount != 1 {
			t.Errorf("guide g1 bound %d, want 1", g.BoundCount)
		}
	})
}

// TestGuideCardByChannelID: the guide a channel id names, with their
// store's name, address and opening hours and the brand's name, as they
// are now (a store renamed is read renamed).
func TestGuideCardByChannelID(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		st := &store.RetailStore{ID: "st1", Name: "静安店", Lat: 31.2, Lng: 121.4, Address: "南京西路1601号", OpeningHours: "10:00-22:00",
			TimeZone: "Asia/Shanghai", BrandIDs: []string{"acme"}, Active: true}
		if err := s.CreateRetailStore(ctx, st); err != nil {
			t.Fatal(err)
		}
		g := &store.Guide{ID: "g1", StoreID: "st1", Name: "李娜", Capacity: 300, Active: true}
		g.SetIdentity("wecom", "li")
		if err := s.CreateGuide(ctx, g); err != nil {
			t.Fatal(err)
		}
		c, err := s.GuideCardByChannelID(ctx, "wecom", "li", "acme")
		if err != nil {
			t.Fatal(err)
		}
		if c.ID != "g1" || c.StoreID != "st1" || c.Name != "李娜" || c.Capacity != 300 || !c.Active || c.StoreName != "静安店" ||
			c.StoreAddress != "南京西路1601号" || c.StoreOpeningHours != "10:00-22:00" || c.BrandID != "acme" || !c.BrandFound || c.BrandName != "Brand acme" {
			t.Errorf("card = %+v", c)
		}
		if c, err := s.GuideCardByChannelID(ctx, "wecom", "li", "nobrand"); err != nil || c.BrandFound || c.BrandName != "" || c.StoreName != "静安店" {
			t.Errorf("card for an unknown brand = %+v, %v; want the guide and store, no brand", c, err)
		}
		for _, id := range []struct{ channel, id string }{{"wecom", "wang"}, {"dingtalk", "li"}} {
			if _, err := s.GuideCardByChannelID(ctx, id.channel, id.id, "acme"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("card of %s:%s: err = %v, want ErrNotFound", id.channel, id.id, err)
			}
		}
		st.Name, st.Address = "静安旗舰店", "南京西路1618号"
		if err := s.UpsertRetailStores(ctx, []store.RetailStore{*st}); err != nil {
			t.Fatal(err)
		}
		if c, err := s.GuideCardByChannelID(ctx, "wecom", "li", "acme"); err != nil || c.StoreName != "静安旗舰店" || c.StoreAddress != "南京西路1618号" {
			t.Errorf("card after the store's rename = %+v, %v", c, err)
		}
	})
}
