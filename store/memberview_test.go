package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// The lookups by phone and by identity read the member, their
// memberships, identities and current bindings in one statement on
// PostgreSQL: each brand sees exactly what the view read a table at a
// time shows it, merged and erased members included.
func TestMemberViewOneStatementMatchesQueries(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		seedBrands(t, s, "acme", "zeta", "other")
		must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "st1", Name: "S1", Lat: 31.2, Lng: 121.4, BrandIDs: []string{"acme", "zeta"}, Active: true}))
		must(s.CreateGuide(ctx, &store.Guide{ID: "g1", StoreID: "st1", Name: "G1", Active: true}))
		must(s.CreateGuide(ctx, &store.Guide{ID: "g2", StoreID: "st1", Name: "G2", Active: true}))
		chen, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Name: "Chen", BrandID: "acme",
			Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-b"}, {Channel: "dingtalk", ExternalID: "dt-a"}}})
		must(err)
		_, _, err = s.EnsureMember(ctx, store.NewMember{Phone: "+86 138 0013 8000", Name: "陈", BrandID: "zeta",
			Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-a"}}})
		must(err)
		_, _, err = s.EnsureMember(ctx, store.NewMember{BrandID: "other", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-b"}}})
		must(err)
		points := int64(120)
		must(s.SetMembership(ctx, chen.ID, "zeta", "gold", &points))
		must(s.TouchIdentity(ctx, "wecom", "wm-b", time.Date(2026, 12, 1, 8, 0, 0, 123000, time.UTC)))
		old, _, err := s.Bind(ctx, &store.Binding{MemberID: chen.ID, BrandID: "acme", GuideID: "g1", StoreID: "st1", Reason: "nearest", DistanceM: 812.5})
		must(err)
		must(s.EndBinding(ctx, old.ID))
		_, _, err = s.Bind(ctx, &store.Binding{MemberID: chen.ID, BrandID: "acme", GuideID: "g2", StoreID: "st1", Reason: "manual", Remark: "VIP"})
		must(err)
		_, _, err = s.Bind(ctx, &store.Binding{MemberID: chen.ID, BrandID: "zeta", GuideID: "g1", StoreID: "st1", Reason: "state", DistanceM: 0.25})
		must(err)
		// Li has no phone and no brand that was given one; Wu is merged
		// into Chen.
		li, _, err := s.EnsureMember(ctx, store.NewMember{Name: "Li", BrandID: "acme", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-li"}}})
		must(err)
		wu, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13900139000", BrandID: "acme", Identities: []store.Identity{{Channel: "crm:acme", ExternalID: "wu"}}})
		must(err)
		if _, err := s.MergeMembers(ctx, wu.ID, chen.ID, "test"); err != nil {
			t.Fatal(err)
		}

		q := store.ByQueries(s)
		for _, brand := range []string{"", "acme", "zeta", "other", "nobody"} {
			for _, phone := range []string{"13800138000", "+8613900139000", "13700137000"} {
				got, gerr := s.MemberByPhone(ctx, phone, brand)
				want, werr := q.MemberByPhone(ctx, phone, brand)
				if !errors.Is(gerr, werr) && gerr != werr {
					t.Errorf("%s as %q: err %v, want %v", phone, brand, gerr, werr)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s as %q (-by queries +one statement):\n%s", phone, brand, diff)
				}
			}
		}
		if v, err := s.MemberByPhone(ctx, "13800138000", "zeta"); err != nil || len(v.Bindings) != 1 || v.Bindings[0].GuideID != "g1" ||
			v.Bindings[0].DistanceM != 0.25 || len(v.Memberships) != 1 || v.Memberships[0].Points != 120 || v.Name != "陈" {
			t.Errorf("zeta's view of Chen = %+v, %v", v, err)
		}
		for _, c := range []struct{ channel, id string }{{"wecom", "wm-b"}, {"dingtalk", "dt-a"}, {"wecom", "wm-li"}, {"crm:acme", "wu"}, {"wecom", "nobody"}} {
			got, gerr := s.MemberByIdentity(ctx, c.channel, c.id)
			want, werr := q.MemberByIdentity(ctx, c.channel, c.id)
			if !errors.Is(gerr, werr) && gerr != werr {
				t.Errorf("%s:%s: err %v, want %v", c.channel, c.id, gerr, werr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s:%s (-by queries +one statement):\n%s", c.channel, c.id, diff)
			}
			if c.id != "nobody" && (gerr != nil || len(got.Identities) == 0 || len(got.Memberships) == 0) {
				t.Errorf("%s:%s: view %+v, %v; want identities and memberships", c.channel, c.id, got, gerr)
			}
		}
		if _, err := s.MemberByIdentity(ctx, "wecom", "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown identity: err = %v, want ErrNotFound", err)
		}
		if _, err := s.MemberByPhone(ctx, "13700137000", ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown phone: err = %v, want ErrNotFound", err)
		}
		if _, err := s.EraseMember(ctx, li.ID, "", "test"); err != nil {
			t.Fatal(err)
		}
		if v, err := s.MemberByIdentity(ctx, "wecom", "wm-li"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("erased member by identity = %+v, %v; want ErrNotFound", v, err)
		}
	})
}
