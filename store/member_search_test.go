package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestSearchMembersByName: the brand's member search by name matches the
// name the member gave the brand, else their own, in any case, as both
// change: the brand's name changed is found by the new one; the member's
// own name counts only while the brand has none, and a rename of it is
// found; a member merged into another is not listed, and the one merged
// into is found by their own name; an erased member is found by no name;
// a wildcard in the search is a letter.
func TestSearchMembersByName(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, b := range []string{"acme", "zeta"} {
			if err := s.CreateBrand(ctx, &store.Brand{ID: b, Name: b}); err != nil {
				t.Fatal(err)
			}
		}
		ids := map[string]int64{}
		join := func(key, phone, name, brand string) {
			m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: phone, Name: name, BrandID: brand,
				Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm" + key}}})
			if err != nil {
				t.Fatal(err)
			}
			ids[key] = m.ID
		}
		join("chen", "13800138000", "Chen Mei", "acme")
		join("wang", "13900139000", "王小美", "acme")
		join("li", "13700137000", "Li_Na 100%", "acme")
		join("zhao", "13600136000", "Chen Zhao", "zeta")
		find := func(name string) []int64 {
			t.Helper()
			rows, err := s.SearchMembers(ctx, store.MemberSearch{Brand: "acme", Name: name})
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, r := range rows {
				out = append(out, r.ID)
			}
			return out
		}
		check := func(what, name string, want ...int64) {
			t.Helper()
			if got := find(name); !slices.Equal(got, want) {
				t.Errorf("%s: search %q found %v, want %v", what, name, got, want)
			}
		}
		check("own name, other case", "chen", ids["chen"])
		check("Chinese", "小美", ids["wang"])
		check("a wildcard is a letter", "_na 100%", ids["li"])
		check("a wildcard is a letter", "n%", nil...)

		if err := s.SetMemberName(ctx, ids["chen"], "acme", "Mei VIP"); err != nil {
			t.Fatal(err)
		}
		check("the brand's name changed", "chen mei", nil...)
		check("the brand's name changed", "vip", ids["chen"])
		if err := s.SetMemberName(ctx, ids["chen"], "", "Chen Own"); err != nil {
			t.Fatal(err)
		}
		check("the brand's name stays over the member's own", "own", nil...)
		if err := s.SetMemberName(ctx, ids["chen"], "acme", ""); err != nil {
			t.Fatal(err)
		}
		check("the brand's name cleared: the member's own", "own", ids["chen"])
		if err := s.SetMemberName(ctx, ids["chen"], "", "Chen Renamed"); err != nil {
			t.Fatal(err)
		}
		check("the member's own renamed", "own", nil...)
		check("the member's own renamed", "renamed", ids["chen"])

		// 王小美 turns out to be Li: merged into Li, whose membership
		// holds both.
		if _, err := s.MergeMembers(ctx, ids["wang"], ids["li"], "test"); err != nil {
			t.Fatal(err)
		}
		check("merged away", "小美", nil...)
		check("merged into", "li_na", ids["li"])

		if _, err := s.EraseMember(ctx, ids["chen"], "", "test"); err != nil {
			t.Fatal(err)
		}
		check("erased", "chen", nil...)
	})
}
