package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestMigrateUnionID: the UnionIDs a second WeCom corp recorded as
// "wecom:<name>_unionid" join the one namespace, a copy of one already
// there is dropped, and two corps' copies of one id leave one row.
func TestMigrateUnionID(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			url := storetest.URL(t, dialect)
			s := openURL(t, url)
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			seedBrands(t, s, "acme")
			for _, ids := range [][]store.Identity{
				{{Channel: "wecom:acme", ExternalID: "wmA"}, {Channel: "wecom:acme_unionid", ExternalID: "uA"}},
				{{Channel: "wecom", ExternalID: "wmB"}, {Channel: "wecom_unionid", ExternalID: "uB"}, {Channel: "wecom:acme_unionid", ExternalID: "uB"}},
				{{Channel: "wecom:acme", ExternalID: "wmC"}, {Channel: "wecom:acme_unionid", ExternalID: "uC"}, {Channel: "wecom:north_unionid", ExternalID: "uC"}},
			} {
				if _, _, err := s.EnsureMember(ctx, store.NewMember{BrandID: "acme", Identities: ids}); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			raw := rawDB(t, dialect, url)
			if err := raw.Exec(`DELETE FROM schema_migrations WHERE id = '0031_unionid'`).Error; err != nil {
				t.Fatal(err)
			}
			if db, _ := raw.DB(); db != nil {
				db.Close()
			}
			s = openURL(t, url)
			defer s.Close()
			applied, err := s.Migrate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(applied, []string{"0031_unionid"}) {
				t.Fatalf("applied %v", applied)
			}
			for _, tc := range []struct{ wm, union string }{{"wmA", "uA"}, {"wmB", "uB"}, {"wmC", "uC"}} {
				v, err := s.MemberByIdentity(ctx, "wecom_unionid", tc.union)
				if err != nil {
					t.Fatalf("member by %s: %v", tc.union, err)
				}
				var got []string
				for _, id := range v.Identities {
					if id.Channel != "wecom" && id.Channel != "wecom:acme" {
						got = append(got, id.Channel+"="+id.ExternalID)
					}
				}
				if want := []string{"wecom_unionid=" + tc.union}; !slices.Equal(got, want) {
					t.Errorf("%s's union identities: %v, want %v", tc.wm, got, want)
				}
			}
		})
	}
}
