package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func ptr[T any](v T) *T { return &v }

func seedBrands(t *testing.T, s *store.Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := s.CreateBrand(context.Background(), &store.Brand{ID: id, Name: "Brand " + id}); err != nil {
			t.Fatalf("creating brand %s: %v", id, err)
		}
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		applied, err := s.Migrate(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != 0 {
			t.Errorf("second Migrate applied %v, want nothing", applied)
		}
	})
}

func TestBrandsCRUD(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme", "zeta")
		if err := s.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "Again"}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate brand: err = %v, want ErrConflict", err)
		}
		if err := s.CreateBrand(ctx, &store.Brand{ID: "bad id", Name: "x"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bad id: err = %v, want ErrInvalid", err)
		}
		if err := s.UpsertBrands(ctx, []store.Brand{{ID: "acme", Name: "ACME Renamed"}, {ID: "new", Name: "New"}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Brands(ctx, "", store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, b := range got {
			names = append(names, b.ID+"="+b.Name)
		}
		if diff := cmp.Diff([]string{"acme=ACME Renamed", "new=New", "zeta=Brand zeta"}, names); diff != "" {
			t.Errorf("brands (-want +got):\n%s", diff)
		}
		scoped, _ := s.Brands(ctx, "zeta", store.Page{})
		if len(scoped) != 1 || scoped[0].ID != "zeta" {
			t.Errorf("scoped list = %v, want only zeta", scoped)
		}
		page, _ := s.Brands(ctx, "", store.Page{After: "acme", Limit: 1})
		if len(page) != 1 || page[0].ID != "new" {
			t.Errorf("page after acme = %v, want [new]", page)
		}
		if err := s.DeleteBrand(ctx, "new"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Brand(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted brand: err = %v, want ErrNotFound", err)
		}
	})
}

func TestRetailStores(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme", "zeta")
		sh := store.RetailStore{ID: "sh-1", Name: "Shanghai Jing'an", Lat: 31.2304, Lng: 121.4737,
			BrandIDs: []string{"zeta", "acme"}, Active: true}
		if err := s.CreateRetailStore(ctx, &sh); err != nil {
			t.Fatal(err)
		}
		got, err := s.RetailStore(ctx, "sh-1", "acme")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"acme", "zeta"}, got.BrandIDs); diff != "" {
			t.Errorf("brands (-want +got):\n%s", diff)
		}
		if got.TimeZone != store.DefaultTimeZone || got.Lat != 31.2304 {
			t.Errorf("store read back as %+v", got)
		}
		// Unknown brand: a field error and nothing written.
		bad := store.RetailStore{ID: "bj-1", Name: "Beijing", Lat: 39.9, Lng: 116.4, BrandIDs: []string{"nope"}}
		var fe *store.FieldError
		if err := s.CreateRetailStore(ctx, &bad); !errors.As(err, &fe) || fe.Field != "brands[0]" {
			t.Errorf("unknown brand: err = %v, want a FieldError on brands[0]", err)
		}
		if _, err := s.RetailStore(ctx, "bj-1", ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refused store was written: %v", err)
		}
		// Bulk upsert replaces the brand set, all or nothing.
		err = s.UpsertRetailStores(ctx, []store.RetailStore{
			{ID: "sh-1", Name: "Shanghai", Lat: 31.23, Lng: 121.47, BrandIDs: []string{"zeta"}, TimeZone: "Asia/Shanghai"},
			{ID: "gz-1", Name: "Guangzhou", Lat: 23.13, Lng: 113.26, BrandIDs: []string{"acme"}, TimeZone: "Asia/Shanghai"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RetailStore(ctx, "sh-1", "acme"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("sh-1 still visible to acme after its brands were replaced: %v", err)
		}
		err = s.UpsertRetailStores(ctx, []store.RetailStore{
			{ID: "sz-1", Name: "Shenzhen", Lat: 22.54, Lng: 114.06, BrandIDs: []string{"acme"}, TimeZone: "Asia/Shanghai"},
			{ID: "xx-1", Name: "Nowhere", Lat: 22.54, Lng: 114.06, BrandIDs: []string{"ghost"}, TimeZone: "Asia/Shanghai"},
		})
		var re *store.RowError
		if !errors.As(err, &re) || re.Row != 1 {
			t.Fatalf("bulk with an unknown brand: err = %v, want a RowError for row 1", err)
		}
		if _, err := s.RetailStore(ctx, "sz-1", ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("partial bulk write: sz-1 exists (%v)", err)
		}
		acme, err := s.RetailStores(ctx, "acme", store.Page{})
		if err != nil || len(acme) != 1 || acme[0].ID != "gz-1" {
			t.Errorf("acme stores = %v, %v; want [gz-1]", acme, err)
		}
		// A store with guides cannot be deleted.
		if err := s.CreateGuide(ctx, &store.Guide{ID: "g1", StoreID: "gz-1", Name: "Li", Active: true}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRetailStore(ctx, "gz-1"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("deleting a store with guides: err = %v, want ErrConflict", err)
		}
		if err := s.DeleteBrand(ctx, "acme"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("deleting a brand in use: err = %v, want ErrConflict", err)
		}
	})
}

func TestGuides(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme", "zeta")
		for _, rs := range []store.RetailStore{
			{ID: "a", Name: "A", Lat: 30, Lng: 120, BrandIDs: []string{"acme"}},
			{ID: "z", Name: "Z", Lat: 31, Lng: 121, BrandIDs: []string{"zeta"}},
		} {
			if err := s.CreateRetailStore(ctx, &rs); err != nil {
				t.Fatal(err)
			}
		}
		g := store.Guide{ID: "g1", StoreID: "a", Name: "Wang", Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: "wang"}}, Capacity: 300, Active: true}
		if err := s.CreateGuide(ctx, &g); err != nil {
			t.Fatal(err)
		}
		dup := store.Guide{ID: "g2", StoreID: "z", Name: "Other", Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: "wang"}}}
		if err := s.CreateGuide(ctx, &dup); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate wecom userid: err = %v, want ErrConflict", err)
		}
		if err := s.CreateGuide(ctx, &store.Guide{ID: "g3", StoreID: "nope", Name: "X"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("unknown store: err = %v, want ErrInvalid", err)
		}
		if _, err := s.Guide(ctx, "g1", "zeta"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("guide of an acme store visible to zeta: %v", err)
		}
		err := s.UpsertGuides(ctx, []store.Guide{{ID: "g1", StoreID: "z", Name: "Wang Moved", Capacity: 10, Active: true}, {ID: "g4", StoreID: "z", Name: "Zhao"}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Guides(ctx, "zeta", "", store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Name != "Wang Moved" || len(got[0].Identities) != 0 {
			t.Errorf("zeta guides = %+v", got)
		}
	})
}

func TestEnsureMemberUnifiesByPhoneAndIdentity(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme", "zeta")
		m1, created, err := s.EnsureMember(ctx, store.NewMember{Phone: "138-0013-8000", Name: "Chen", BrandID: "acme",
			Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmABC"}}})
		if err != nil || !created {
			t.Fatalf("first join: created=%v err=%v", created, err)
		}
		m2, created, err := s.EnsureMember(ctx, store.NewMember{Phone: "+86 138 0013 8000", BrandID: "zeta",
			Identities: []store.Identity{{Channel: "dingtalk", ExternalID: "dt-9"}}})
		if err != nil || created || m2.ID != m1.ID {
			t.Fatalf("same phone from another channel: id=%d created=%v err=%v, want member %d", m2.ID, created, err, m1.ID)
		}
		m3, created, err := s.EnsureMember(ctx, store.NewMember{Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmABC"}}})
		if err != nil || created || m3.ID != m1.ID {
			t.Fatalf("known identity: id=%d created=%v err=%v", m3.ID, created, err)
		}
		v, err := s.MemberByPhone(ctx, "13800138000", "zeta")
		if err != nil {
			t.Fatal(err)
		}
		// zeta sees the identity collected under it, not acme's.
		if v.Phone != "+8613800138000" || len(v.Identities) != 1 || v.Identities[0].ExternalID != "dt-9" || len(v.Memberships) != 1 {
			t.Errorf("member view = phone %q, identities %+v, memberships %+v", v.Phone, v.Identities, v.Memberships)
		}
		if v.Name != "" {
			t.Errorf("zeta sees the name %q given to acme", v.Name)
		}
		if all, err := s.Member(ctx, m1.ID, ""); err != nil || len(all.Identities) != 2 || all.Name != "Chen" {
			t.Errorf("admin view = %+v, %v; want 2 identities and the name", all, err)
		}
		if _, err := s.Member(ctx, m1.ID, "nobrand"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("member outside brand: err = %v, want ErrNotFound", err)
		}
		if _, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "12345"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bad phone: err = %v, want ErrInvalid", err)
		}
		if _, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13900139000", BrandID: "ghost"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("unknown brand: err = %v, want ErrInvalid", err)
		}
		if _, err := s.MemberByPhone(ctx, "13900139000", ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refused member was written: %v", err)
		}
	})
}

func TestConcurrentJoinsYieldOneMember(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		const n = 8
		ids := make([]int64, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "+8613700137000", BrandID: "acme",
					Identities: []store.Identity{{Channel: fmt.Sprintf("ch%d", i), ExternalID: "x"}}})
				if err == nil {
					ids[i] = m.ID
				}
				errs[i] = err
			}(i)
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil {
				t.Fatalf("join %d: %v", i, errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("joins produced members %v, want one", ids)
			}
		}
		v, err := s.Member(ctx, ids[0], "")
		if err != nil || len(v.Identities) != n {
			t.Errorf("member has %d identities (err %v), want %d", len(v.Identities), err, n)
		}
	})
}

// Concurrent joins by the same channel identity, without a phone (a WeCom
// contact handled twice at once), also yield one member: every join
// returns the member that holds the identity, not one of its own left
// without it.
func TestConcurrentIdentityJoinsYieldOneMember(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		for round := range 5 {
			const n = 8
			ext := fmt.Sprintf("wmSame%d", round)
			ids := make([]int64, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					m, _, err := s.EnsureMember(ctx, store.NewMember{BrandID: "acme",
						Identities: []store.Identity{{Channel: "wecom", ExternalID: ext}}})
					if err == nil {
						ids[i] = m.ID
					}
					errs[i] = err
				}(i)
			}
			wg.Wait()
			for i := range ids {
				if errs[i] != nil {
					t.Fatalf("join %d: %v", i, errs[i])
				}
				if ids[i] != ids[0] {
					t.Fatalf("joins of %s returned members %v, want one", ext, ids)
				}
			}
			v, err := s.MemberByIdentity(ctx, "wecom", ext)
			if err != nil || v.ID != ids[0] {
				t.Fatalf("member of %s = %+v, %v; joins returned %d", ext, v, err, ids[0])
			}
		}
	})
}

func TestAPITokens(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		plain, tok, err := s.CreateAPIToken(ctx, store.NewAPIToken{Name: "acme ops", BrandID: ptr("acme")})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.APITokenByPlain(ctx, plain)
		if err != nil || got.ID != tok.ID || *got.BrandID != "acme" {
			t.Fatalf("token lookup: %+v, %v", got, err)
		}
		if err := s.RevokeAPIToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.APITokenByPlain(ctx, plain); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("revoked token still valid: %v", err)
		}
		if _, _, err := s.CreateAPIToken(ctx, store.NewAPIToken{Name: "x", BrandID: ptr("ghost")}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("token for unknown brand: %v", err)
		}
	})
}

// TestEnsureMemberLogsJoinedWithTheMembership: NewMember.Joined is logged
// with a new membership, in its transaction (with the member and brand
// filled in), and not when the membership was there already; a second
// brand's membership logs that brand's event.
func TestEnsureMemberLogsJoinedWithTheMembership(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme", "zeta")
		joined := func(brand string) *store.Event {
			return &store.Event{Type: "member.joined", Source: "wecom", SourceID: "bot-joined:" + brand + ":wmJ", Payload: `{"via":"bot_message"}`}
		}
		nm := store.NewMember{BrandID: "acme", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmJ"}}, Joined: joined("acme")}
		m, created, err := s.EnsureMember(ctx, nm)
		if err != nil || !created {
			t.Fatalf("created=%v err=%v", created, err)
		}
		if _, _, err := s.EnsureMember(ctx, nm); err != nil { // known: nothing new
			t.Fatal(err)
		}
		nm.BrandID, nm.Joined = "zeta", joined("zeta")
		if _, _, err := s.EnsureMember(ctx, nm); err != nil {
			t.Fatal(err)
		}
		evs, err := s.Events(ctx, store.EventFilter{MemberID: m.ID, Type: "member.joined"})
		if err != nil || len(evs) != 2 || evs[0].BrandID != "acme" || evs[0].SourceID != "bot-joined:acme:wmJ" ||
			evs[1].BrandID != "zeta" || *evs[1].MemberID != m.ID || evs[0].OccurredAt.IsZero() {
			t.Fatalf("events = %+v, %v; want acme's and zeta's joins", evs, err)
		}
		if e, err := s.EventBySource(ctx, "wecom", "bot-joined:acme:wmJ"); err != nil || e.ID != evs[0].ID {
			t.Errorf("EventBySource = %+v, %v", e, err)
		}
		if _, err := s.EventBySource(ctx, "wecom", "nothing"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("EventBySource of nothing: %v, want ErrNotFound", err)
		}
	})
}
