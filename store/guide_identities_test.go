package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func ids(pairs ...string) []store.GuideIdentity {
	var out []store.GuideIdentity
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, store.GuideIdentity{Channel: pairs[i], ExternalID: pairs[i+1]})
	}
	return out
}

func identityPairs(g *store.Guide) string {
	var parts []string
	for _, id := range g.Identities {
		parts = append(parts, id.Channel+"="+id.ExternalID)
	}
	return strings.Join(parts, ",")
}

// TestGuideIdentities: a guide has one id per channel instance, found by
// instance key; an id is one guide's (the conflict names the other);
// upserting replaces a guide's identities; deleting a guide frees them.
func TestGuideIdentities(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		if err := s.CreateRetailStore(ctx, &store.RetailStore{ID: "a", Name: "A", Lat: 30, Lng: 120, BrandIDs: []string{"acme"}}); err != nil {
			t.Fatal(err)
		}
		g := store.Guide{ID: "g1", StoreID: "a", Name: "Wang", Active: true,
			Identities: ids("wecom", "wang", "wecom:north", "wang", "chirp", "c-wang")}
		if err := s.CreateGuide(ctx, &g); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ channel, id string }{{"wecom", "wang"}, {"wecom:north", "wang"}, {"chirp", "c-wang"}} {
			got, err := s.GuideByChannelID(ctx, c.channel, c.id)
			if err != nil || got.ID != "g1" {
				t.Fatalf("GuideByChannelID(%s, %s) = %v, %v", c.channel, c.id, got, err)
			}
			if identityPairs(got) != "chirp=c-wang,wecom=wang,wecom:north=wang" {
				t.Errorf("identities = %s", identityPairs(got))
			}
		}
		if _, err := s.GuideByChannelID(ctx, "dingtalk", "wang"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an id on another channel: %v", err)
		}

		dup := store.Guide{ID: "g2", StoreID: "a", Name: "Li", Identities: ids("dingtalk", "li", "wecom:north", "wang")}
		err := s.CreateGuide(ctx, &dup)
		if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), `wecom:north id "wang" is guide "g1"'s`) {
			t.Fatalf("taken id: %v", err)
		}
		if err := s.UpsertGuides(ctx, []store.Guide{dup}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("taken id by upsert: %v", err)
		}
		both := []store.Guide{{ID: "g2", StoreID: "a", Name: "Li", Identities: ids("dingtalk", "li")},
			{ID: "g3", StoreID: "a", Name: "Zhao", Identities: ids("dingtalk", "li")}}
		var re *store.RowError
		if err := s.UpsertGuides(ctx, both); !errors.Is(err, store.ErrConflict) || !errors.As(err, &re) || re.Row != 1 {
			t.Fatalf("two guides claiming one id: %v", err)
		}
		twice := store.Guide{ID: "g2", StoreID: "a", Name: "Li", Identities: ids("dingtalk", "li", "dingtalk", "li2")}
		var fe *store.FieldError
		if err := s.CreateGuide(ctx, &twice); !errors.As(err, &fe) || fe.Field != "identities[1].channel" {
			t.Fatalf("two ids on one channel: %v", err)
		}
		long := store.Guide{ID: "g2", StoreID: "a", Name: "Li", Identities: ids("dingtalk", strings.Repeat("x", 129))}
		if err := s.CreateGuide(ctx, &long); !errors.As(err, &fe) || fe.Field != "identities[0].external_id" {
			t.Fatalf("a 129-byte id: %v", err)
		}

		// Upserting g1 with fewer identities frees the others for g2.
		g.Identities = ids("wecom", "wang")
		g.Name = "Wang Wei"
		if err := s.UpsertGuides(ctx, []store.Guide{g, dup}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Guide(ctx, "g1", "")
		if err != nil || got.Name != "Wang Wei" || identityPairs(got) != "wecom=wang" {
			t.Fatalf("g1 after upsert: %+v %v", got, err)
		}
		list, err := s.Guides(ctx, "acme", "", store.Page{})
		if err != nil || len(list) != 2 || identityPairs(&list[1]) != "dingtalk=li,wecom:north=wang" {
			t.Fatalf("guides after upsert: %+v %v", list, err)
		}

		// The JSON carries the identities and the legacy fields of the
		// default instances.
		b, _ := json.Marshal(list[1])
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m["dingtalk_userid"] != "li" || m["wecom_userid"] != nil || len(m["identities"].([]any)) != 2 {
			t.Errorf("guide JSON: %s", b)
		}
		b, _ = json.Marshal(store.Guide{ID: "g9"})
		if !strings.Contains(string(b), `"identities":[]`) || strings.Contains(string(b), "userid") {
			t.Errorf("guide without identities: %s", b)
		}

		if err := s.DeleteGuide(ctx, "g2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GuideByChannelID(ctx, "dingtalk", "li"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a deleted guide's id: %v", err)
		}
		if err := s.CreateGuide(ctx, &store.Guide{ID: "g5", StoreID: "a", Name: "Sun", Identities: ids("dingtalk", "li")}); err != nil {
			t.Errorf("reusing a deleted guide's id: %v", err)
		}
	})
}

// TestMigrateGuideIdentities upgrades a database made before 0018, whose
// guides have one unique column per channel: their ids become rows on
// the channels' default instances and the columns go.
func TestMigrateGuideIdentities(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			url := storetest.URL(t, dialect)
			open := func() *store.Store { return openURL(t, url) }
			s := open()
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			s.Close()
			// Back to the schema and data of 0017.
			raw := rawDB(t, dialect, url)
			for _, q := range []string{
				`DROP TABLE guide_identities`,
				`DELETE FROM schema_migrations WHERE id = '0023_guide_identities'`,
				`ALTER TABLE guides ADD COLUMN wecom_userid varchar(128)`,
				`ALTER TABLE guides ADD COLUMN dingtalk_userid varchar(128)`,
				`CREATE UNIQUE INDEX idx_guides_wecom_userid ON guides (wecom_userid)`,
				`CREATE UNIQUE INDEX idx_guides_dingtalk_userid ON guides (dingtalk_userid)`,
				`INSERT INTO brands (id, name, created_at, updated_at) VALUES ('acme', 'Acme', '2026-01-02 03:04:05', '2026-01-02 03:04:05')`,
				`INSERT INTO stores (id, name, lat, lng, address, time_zone, opening_hours, active, distributor, created_at, updated_at)
					VALUES ('a', 'A', 30, 120, '', 'Asia/Shanghai', '', true, '', '2026-01-02 03:04:05', '2026-01-02 03:04:05')`,
				`INSERT INTO guides (id, store_id, name, wecom_userid, dingtalk_userid, capacity, bound_count, active, created_at, updated_at)
					VALUES ('g1', 'a', 'Wang', 'wang', 'staff-1', 0, 0, true, '2026-01-02 03:04:05', '2026-01-02 03:04:05'),
					       ('g2', 'a', 'Li', 'li', NULL, 0, 0, true, '2026-01-02 03:04:05', '2026-01-02 03:04:05'),
					       ('g3', 'a', 'Zhao', NULL, 'staff-3', 0, 0, true, '2026-01-02 03:04:05', '2026-01-02 03:04:05'),
					       ('g4', 'a', 'Sun', NULL, NULL, 0, 0, false, '2026-01-02 03:04:05', '2026-01-02 03:04:05')`,
			} {
				if err := raw.Exec(q).Error; err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if db, _ := raw.DB(); db != nil {
				db.Close()
			}
			s = open()
			defer s.Close()
			applied, err := s.Migrate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(applied, []string{"0023_guide_identities"}) {
				t.Fatalf("applied %v", applied)
			}
			if applied, err := s.Migrate(ctx); err != nil || len(applied) != 0 {
				t.Fatalf("again: %v %v", applied, err)
			}
			want := map[string]string{"g1": "dingtalk=staff-1,wecom=wang", "g2": "wecom=li", "g3": "dingtalk=staff-3", "g4": ""}
			list, err := s.Guides(ctx, "", "", store.Page{})
			if err != nil || len(list) != 4 {
				t.Fatalf("guides: %v %v", list, err)
			}
			for i := range list {
				if got := identityPairs(&list[i]); got != want[list[i].ID] {
					t.Errorf("%s: identities %s, want %s", list[i].ID, got, want[list[i].ID])
				}
				for _, id := range list[i].Identities {
					if id.CreatedAt.Year() != 2026 {
						t.Errorf("%s: identity created at %v, want the guide's creation", list[i].ID, id.CreatedAt)
					}
				}
			}
			if g, err := s.GuideByChannelID(ctx, "dingtalk", "staff-3"); err != nil || g.ID != "g3" {
				t.Errorf("by dingtalk id: %v %v", g, err)
			}
			raw = rawDB(t, dialect, url)
			defer func() {
				if db, _ := raw.DB(); db != nil {
					db.Close()
				}
			}()
			for _, col := range []string{"wecom_userid", "dingtalk_userid"} {
				if raw.Migrator().HasColumn("guides", col) {
					t.Errorf("guides.%s is still there", col)
				}
			}
			// The new table keeps an id one guide's.
			err = s.CreateGuide(ctx, &store.Guide{ID: "g5", StoreID: "a", Name: "Qian", Identities: ids("wecom", "wang")})
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("a migrated id taken again: %v", err)
			}
		})
	}
}
