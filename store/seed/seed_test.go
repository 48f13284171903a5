package seed_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/seed"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestSeedSmall seeds the small size into a fresh PostgreSQL schema and
// checks what the measurements rely on: the counts, members found by
// phone through the store, bindings to a store of the member's brand, and
// the keyset lists reading every seeded row of a brand exactly once.
func TestSeedSmall(t *testing.T) {
	ctx := context.Background()
	url := storetest.URL(t, "postgres")
	s, err := store.Open(ctx, store.Options{URL: url, PhoneKey: storetest.PhoneKey, MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	z := seed.Small()
	rep, err := seed.Seed(ctx, seed.Options{URL: url, Phones: s.Phones()}, z)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int64{}
	for _, st := range rep.Stages {
		rows[st.Name] = st.Rows
	}
	for name, want := range map[string]int64{
		"brands": int64(z.Brands), "stores": int64(z.Stores), "store_brands": int64(z.Stores + z.Stores/10),
		"guides": int64(z.Stores * z.GuidesPerStore), "members": int64(z.Members), "memberships": int64(z.Members + z.Members/5),
		"member_identities": int64(z.Members), "bindings": int64(z.Members), "events": int64(z.Events),
		"workflow_runs": int64(z.Runs), "ended_runs": int64(z.EndedRuns), "run_steps": int64(z.Runs + z.EndedRuns), "guide_tasks": int64(z.Tasks),
		"bulk_brand": 1, "bulk_memberships": int64(z.BulkMembers),
	} {
		if rows[name] != want {
			t.Errorf("%s: %d rows, want %d", name, rows[name], want)
		}
	}
	if _, err := seed.Seed(ctx, seed.Options{URL: url, Phones: s.Phones()}, z); err == nil {
		t.Error("seeding a seeded database: no error")
	}

	// Member 1234 is found by phone, with its brand, identity and binding
	// to a guide of a store that carries the brand.
	v, err := s.MemberByPhone(ctx, seed.Phone(1234), "")
	if err != nil {
		t.Fatalf("MemberByPhone(%s): %v", seed.Phone(1234), err)
	}
	brand := seed.BrandID(1 + 1234%z.Brands)
	if v.ID != 1234 || v.Phone != seed.Phone(1234) || len(v.Identities) != 1 || len(v.Bindings) != 1 || v.Bindings[0].BrandID != brand {
		t.Fatalf("member 1234: %+v", v)
	}
	rs, err := s.RetailStore(ctx, v.Bindings[0].StoreID, brand)
	if err != nil {
		t.Fatalf("member 1234's store %s does not carry %s: %v", v.Bindings[0].StoreID, brand, err)
	}
	g, err := s.Guide(ctx, v.Bindings[0].GuideID, brand)
	if err != nil || g.StoreID != rs.ID || g.BoundCount == 0 {
		t.Fatalf("member 1234's guide: %+v, %v", g, err)
	}

	// Every member of the brand, each once, over pages of 97.
	want := 0
	for i := 1; i <= z.Members; i++ {
		if 1+i%z.Brands == 1 || i%5 == 0 && 1+(i+1)%z.Brands == 1 {
			want++
		}
	}
	seen, cursor := map[int64]bool{}, ""
	for {
		page, next, err := s.ListMembers(ctx, store.MemberListQuery{Brand: seed.BrandID(1), Cursor: cursor, Limit: 97})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			if seen[m.ID] {
				t.Fatalf("member %d listed twice", m.ID)
			}
			seen[m.ID] = true
		}
		if cursor = next; next == "" {
			break
		}
	}
	if len(seen) != want {
		t.Errorf("brand-01's members: %d listed, want %d", len(seen), want)
	}
	// The brand's runs of recall: waiting and ended, newest first, each
	// once.
	runs, last, cursor := 0, int64(1<<62), ""
	for {
		page, next, err := s.ListRuns(ctx, store.RunListQuery{Brand: seed.BrandID(2), Workflow: seed.Workflow, Cursor: cursor, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			if r.ID >= last {
				t.Fatalf("run %d after %d: not newest first", r.ID, last)
			}
			last = r.ID
			runs++
		}
		if cursor = next; next == "" {
			break
		}
	}
	if wantRuns := (z.Runs + z.EndedRuns) / z.Brands; runs != wantRuns {
		t.Errorf("brand-02's runs: %d, want %d", runs, wantRuns)
	}
	// The segment's plan is PostgreSQL's, run.
	plan, err := s.SegmentPlan(ctx, store.SegmentQuery{Brand: seed.BulkBrand, AfterID: 100, Limit: 50})
	if err != nil || !strings.Contains(plan, "memberships") || !strings.Contains(plan, "Execution Time") {
		t.Errorf("segment plan: %v\n%s", err, plan)
	}
	ids, err := s.SegmentMembers(ctx, store.SegmentQuery{Brand: seed.BulkBrand, AfterID: 100, Limit: 50})
	if err != nil || len(ids) != 50 || ids[0] != 101 {
		t.Errorf("bulk segment after 100: %v, %v", ids, err)
	}
	stats, err := s.RunStatsOf(ctx, seed.BrandID(2), seed.Workflow, store.FunnelFilter{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %+v in %v; brand-02's recall: %+v", z, rep.Took.Round(time.Millisecond), stats)
}
