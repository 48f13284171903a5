package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// EnsureMemberThen writes the member, what then writes (a binding, the
// join's event) together: a failure of then leaves no member, and a
// success keeps all of it.
func TestEnsureMemberThenIsOneTransaction(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		if err := s.CreateRetailStore(ctx, &store.RetailStore{ID: "st1", Name: "S1", Lat: 31.2, Lng: 121.4, BrandIDs: []string{"acme"}, Active: true}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateGuide(ctx, &store.Guide{ID: "g1", StoreID: "st1", Name: "G1", Active: true}); err != nil {
			t.Fatal(err)
		}
		nm := store.NewMember{Phone: "13800138000", BrandID: "acme", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm1"}}}
		join := func(guide string) func(tx *store.Store, m *store.Member, created bool) error {
			return func(tx *store.Store, m *store.Member, created bool) error {
				if !created {
					t.Errorf("member %d: created = false, want a new member", m.ID)
				}
				if _, _, err := tx.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: "acme", GuideID: guide, StoreID: "st1", Reason: "contact"}); err != nil {
					return err
				}
				_, err := tx.AppendEvent(ctx, &store.Event{Type: "member.joined", BrandID: "acme", MemberID: &m.ID, Source: "wecom", SourceID: "d1"})
				return err
			}
		}
		if _, _, err := s.EnsureMemberThen(ctx, nm, join("nobody")); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("binding to an unknown guide: err = %v, want ErrInvalid", err)
		}
		if _, err := s.MemberByPhone(ctx, "13800138000", ""); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the member was kept though the binding failed: %v", err)
		}
		if _, err := s.EventBySource(ctx, "wecom", "d1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an event was kept though the binding failed: %v", err)
		}
		m, created, err := s.EnsureMemberThen(ctx, nm, join("g1"))
		if err != nil || !created {
			t.Fatalf("EnsureMemberThen: created %v, %v", created, err)
		}
		v, err := s.MemberByIdentity(ctx, "wecom", "wm1")
		if err != nil || v.ID != m.ID || len(v.Bindings) != 1 || v.Bindings[0].GuideID != "g1" {
			t.Fatalf("member after the join = %+v, %v; want bound to g1", v, err)
		}
		if e, err := s.EventBySource(ctx, "wecom", "d1"); err != nil || e.MemberID == nil || *e.MemberID != m.ID {
			t.Fatalf("member.joined = %+v, %v", e, err)
		}
		if g, err := s.Guide(ctx, "g1", ""); err != nil || g.BoundCount != 1 {
			t.Fatalf("guide g1 = %+v, %v; want 1 bound", g, err)
		}
	})
}
