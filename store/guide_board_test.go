package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestGuideBoard sorts 250 guides of a brand in the database and pages
// through them 100 at a time: the guides that sort first have the highest
// ids (a sort of the first page by id would miss them), and paging visits
// every guide once.
func TestGuideBoard(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		seedBrands(t, s, "acme", "zeta")
		for _, st := range []store.RetailStore{
			{ID: "sh-1", Name: "静安店", BrandIDs: []string{"acme"}, Lat: 31, Lng: 121, Active: true},
			{ID: "sh-2", Name: "徐汇店", BrandIDs: []string{"acme"}, Lat: 31, Lng: 121, Active: true},
			{ID: "z-1", Name: "Zeta", BrandIDs: []string{"zeta"}, Lat: 31, Lng: 121, Active: true},
		} {
			must(s.CreateRetailStore(ctx, &st))
		}
		const n = 250
		for i := 1; i <= n; i++ {
			g := store.Guide{ID: fmt.Sprintf("g-%03d", i), StoreID: "sh-1", Name: fmt.Sprintf("N%03d", n+1-i), Active: true, Capacity: 100, BoundCount: i % 50}
			if i%2 == 0 {
				g.StoreID = "sh-2"
			}
			must(s.CreateGuide(ctx, &g))
		}
		// Another brand's guide, overdue and full: never on acme's board.
		must(s.CreateGuide(ctx, &store.Guide{ID: "z-guide", StoreID: "z-1", Name: "Z", Active: true, Capacity: 1, BoundCount: 1}))
		now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
		member := seedMember(t, s, "acme", "w1")
		task := func(guide, brand string, due time.Duration) {
			t.Helper()
			_, err := s.CreateGuideTask(ctx, &store.GuideTask{MemberID: member, GuideID: guide, BrandID: brand, Title: "call", DueAt: now.Add(due)})
			must(err)
		}
		for range 3 {
			task("g-250", "acme", -time.Hour) // the most overdue
		}
		task("g-249", "acme", -time.Hour) // 2 overdue, 1 open ahead
		task("g-249", "acme", -time.Hour)
		task("g-249", "acme", time.Hour)
		task("g-248", "acme", -time.Hour) // 2 overdue, none ahead
		task("g-248", "acme", -time.Hour)
		task("z-guide", "zeta", -time.Hour)
		task("z-guide", "acme", 0) // due now: open, not overdue
		_, err := s.AwardGuidePoints(ctx, []store.GuidePointsEntry{
			{Key: "p1", Kind: store.GuidePointsBound, GuideID: "g-247", BrandID: "acme", StoreID: "sh-1", Month: "2026-11", Points: 80, EarnedAt: now},
			{Key: "p2", Kind: store.GuidePointsBound, GuideID: "g-246", BrandID: "acme", StoreID: "sh-2", Month: "2026-11", Points: 80, EarnedAt: now},
			{Key: "p3", Kind: store.GuidePointsBound, GuideID: "g-245", BrandID: "acme", StoreID: "sh-1", Month: "2026-11", Points: 50, EarnedAt: now},
			{Key: "p4", Kind: store.GuidePointsBound, GuideID: "g-244", BrandID: "acme", StoreID: "sh-2", Month: "2026-10", Points: 900, EarnedAt: now},
			{Key: "p5", Kind: store.GuidePointsBound, GuideID: "g-243", BrandID: "zeta", StoreID: "sh-1", Month: "2026-11", Points: 900, EarnedAt: now},
		})
		must(err)

		board := func(sort, storeID string, offset int) []store.GuideBoardRow {
			t.Helper()
			rows, totals, err := s.GuideBoard(ctx, store.GuideBoardQuery{Brand: "acme", StoreID: storeID, Month: "2026-11", Now: now, Sort: sort, Offset: offset, Limit: 100})
			must(err)
			// The totals read with the page are those of all the guides,
			// past the end too.
			if want, err := s.GuideBoardTotals(ctx, "acme", storeID, now); err != nil || totals != want {
				t.Errorf("%s page at %d: totals %+v, want %+v (%v)", sort, offset, totals, want, err)
			}
			return rows
		}
		ids := func(rows []store.GuideBoardRow, k int) []string {
			var out []string
			for _, r := range rows[:min(k, len(rows))] {
				out = append(out, r.ID)
			}
			return out
		}
		for _, c := range []struct {
			sort, storeID string
			want          []string
		}{
			{store.GuideBoardOverdue, "", []string{"g-250", "g-249", "g-248", "g-001", "g-002"}},
			{store.GuideBoardOverdue, "sh-1", []string{"g-249", "g-001", "g-003"}},
			{store.GuideBoardLoad, "", []string{"g-049", "g-099", "g-149", "g-199", "g-249", "g-048"}},
			{store.GuideBoardPoints, "", []string{"g-246", "g-247", "g-245", "g-001"}},
			{store.GuideBoardName, "", []string{"g-250", "g-249", "g-248"}},
		} {
			got := ids(board(c.sort, c.storeID, 0), len(c.want))
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s (store %q): first %v, want %v", c.sort, c.storeID, got, c.want)
			}
		}
		top := board(store.GuideBoardOverdue, "", 0)
		if r := top[0]; r.Overdue != 3 || r.Open != 3 || r.Bound != 0 || r.Capacity != 100 || r.StoreID != "sh-2" || r.Name != "N001" {
			t.Errorf("g-250: %+v, want 3 overdue of 3 open, 0 of 100 bound, store sh-2", r)
		}
		if r := top[1]; r.Overdue != 2 || r.Open != 3 {
			t.Errorf("g-249: %+v, want 2 overdue of 3 open", r)
		}
		pts := board(store.GuideBoardPoints, "", 0)
		if pts[0].Points != 80 || pts[0].Rank != 1 || pts[1].Rank != 1 || pts[2].Rank != 3 || pts[2].Points != 50 || pts[3].Rank != 0 || pts[3].Points != 0 {
			t.Errorf("points: %+v, want 80 (1), 80 (1), 50 (3), then no rank", pts[:4])
		}

		for _, sort := range []string{store.GuideBoardOverdue, store.GuideBoardLoad, store.GuideBoardPoints, store.GuideBoardName} {
			seen := map[string]int{}
			pages := 0
			for off := 0; ; off += 100 {
				rows := board(sort, "", off)
				if len(rows) == 0 {
					break
				}
				pages++
				for _, r := range rows {
					seen[r.ID]++
				}
			}
			if pages != 3 || len(seen) != n {
				t.Errorf("%s: %d pages, %d guides, want 3 pages of the %d guides", sort, pages, len(seen), n)
			}
			for id, k := range seen {
				if k != 1 {
					t.Errorf("%s: %s on %d pages", sort, id, k)
				}
			}
		}

		tot, err := s.GuideBoardTotals(ctx, "acme", "", now)
		must(err)
		bound := int64(0)
		for i := 1; i <= n; i++ {
			bound += int64(i % 50)
		}
		if want := (store.GuideBoardTotals{Guides: n, Bound: bound, Capacity: n * 100, Open: 8, Overdue: 7}); tot != want {
			t.Errorf("totals %+v, want %+v", tot, want)
		}
		tot, err = s.GuideBoardTotals(ctx, "acme", "sh-1", now)
		must(err)
		if tot.Guides != n/2 || tot.Open != 3 || tot.Overdue != 2 {
			t.Errorf("sh-1 totals %+v, want 125 guides, 3 open, 2 overdue", tot)
		}
		if names, err := s.GuideNames(ctx, []string{"g-250", "z-guide", "nobody"}); err != nil || len(names) != 2 || names["g-250"] != "N001" || names["z-guide"] != "Z" {
			t.Errorf("GuideNames = %v, %v", names, err)
		}
		if _, _, err := s.GuideBoard(ctx, store.GuideBoardQuery{Brand: "acme", Month: "2026-11", Now: now, Sort: "id"}); err == nil {
			t.Error("sort id accepted")
		}
	})
}
