package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// pageAll reads a keyset list to its end, checking that every page but
// the last is full and that a page's cursor is never reused.
func pageAll[T any](t *testing.T, limit int, page func(cursor string) ([]T, string, error)) []T {
	t.Helper()
	var all []T
	cursor, seen := "", map[string]bool{}
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("paging does not end")
		}
		items, next, err := page(cursor)
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		all = append(all, items...)
		if next == "" {
			if len(items) == limit {
				// A full last page is allowed only when the rows ran out
				// exactly; the next page must then be empty.
				t.Fatalf("page %d: full page of %d without a next cursor", i, limit)
			}
			return all
		}
		if len(items) != limit {
			t.Fatalf("page %d: %d items with a next cursor, want %d", i, len(items), limit)
		}
		if seen[next] {
			t.Fatalf("page %d: cursor %q repeated", i, next)
		}
		seen[next] = true
		cursor = next
	}
}

// exactlyOnce checks that got holds each of want once, in want's order.
func exactlyOnce[K comparable](t *testing.T, what string, got, want []K) {
	t.Helper()
	count := map[K]int{}
	for _, k := range got {
		count[k]++
	}
	for k, n := range count {
		if n != 1 {
			t.Errorf("%s: %v listed %d times", what, k, n)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: listed %v, want %v", what, got, want)
	}
}

func TestKeysetListsReturnEveryRowOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme", "zeta")
		if err := s.CreateRetailStore(ctx, &store.RetailStore{ID: "a", Name: "A", Lat: 30, Lng: 120, BrandIDs: []string{"acme"}}); err != nil {
			t.Fatal(err)
		}
		for _, g := range []string{"g1", "g2"} {
			if err := s.CreateGuide(ctx, &store.Guide{ID: g, StoreID: "a", Name: g, Active: true}); err != nil {
				t.Fatal(err)
			}
		}
		// A brand's stores and guides page by id: stores b and c carry
		// zeta only, d both brands.
		for _, st := range []struct {
			id     string
			brands []string
		}{{"b", []string{"zeta"}}, {"c", []string{"zeta"}}, {"d", []string{"acme", "zeta"}}, {"e", []string{"acme"}}} {
			if err := s.CreateRetailStore(ctx, &store.RetailStore{ID: st.id, Name: st.id, Lat: 30, Lng: 120, BrandIDs: st.brands}); err != nil {
				t.Fatal(err)
			}
			for _, g := range []string{"x", "a"} {
				if err := s.CreateGuide(ctx, &store.Guide{ID: g + st.id, StoreID: st.id, Name: g, Active: true}); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, limit := range []int{1, 2, 3, 100} {
			guides := pageAll(t, limit, func(c string) ([]store.Guide, string, error) {
				gs, err := s.Guides(ctx, "acme", "", store.Page{After: c, Limit: limit})
				next := ""
				if len(gs) == limit {
					next = gs[len(gs)-1].ID
				}
				return gs, next, err
			})
			var ids []string
			for _, g := range guides {
				ids = append(ids, g.ID)
			}
			exactlyOnce(t, fmt.Sprintf("acme's guides, limit %d", limit), ids, []string{"ad", "ae", "g1", "g2", "xd", "xe"})
			stores := pageAll(t, limit, func(c string) ([]store.RetailStore, string, error) {
				rs, err := s.RetailStores(ctx, "zeta", store.Page{After: c, Limit: limit})
				next := ""
				if len(rs) == limit {
					next = rs[len(rs)-1].ID
				}
				return rs, next, err
			})
			ids = ids[:0]
			for _, r := range stores {
				ids = append(ids, r.ID)
				if len(r.BrandIDs) == 0 {
					t.Errorf("store %s listed without its brands", r.ID)
				}
			}
			exactlyOnce(t, fmt.Sprintf("zeta's stores, limit %d", limit), ids, []string{"b", "c", "d"})
		}

		// 23 acme members (one erased, one merged away), 4 of zeta only.
		var acme []int64
		for i := range 23 {
			m, _, err := s.EnsureMember(ctx, store.NewMember{BrandID: "acme", Name: fmt.Sprintf("A%02d", i),
				Phone: fmt.Sprintf("+86139%08d", i)})
			if err != nil {
				t.Fatal(err)
			}
			acme = append(acme, m.ID)
		}
		for i := range 4 {
			seedMember(t, s, "zeta", fmt.Sprintf("z%d", i))
		}
		if _, err := s.EraseMember(ctx, acme[5], "", "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MergeMembers(ctx, acme[6], acme[7], "test"); err != nil {
			t.Fatal(err)
		}
		wantMembers := append(append([]int64{}, acme[:5]...), acme[7:]...)
		for _, limit := range []int{1, 4, 21, 1000} {
			rows := pageAll(t, limit, func(c string) ([]store.MemberRow, string, error) {
				return s.ListMembers(ctx, store.MemberListQuery{Brand: "acme", Cursor: c, Limit: limit})
			})
			var ids []int64
			for _, r := range rows {
				ids = append(ids, r.ID)
				if r.Brand != "acme" || r.PhoneTail == "" || r.JoinedAt.IsZero() {
					t.Errorf("limit %d: row %+v, want acme's membership with the phone's tail", limit, r)
				}
			}
			exactlyOnce(t, fmt.Sprintf("acme members, limit %d", limit), ids, wantMembers)
		}
		all := pageAll(t, 5, func(c string) ([]store.MemberRow, string, error) {
			return s.ListMembers(ctx, store.MemberListQuery{Cursor: c, Limit: 5})
		})
		if len(all) != len(wantMembers)+4 {
			t.Errorf("every member: %d rows, want %d", len(all), len(wantMembers)+4)
		}

		// Runs: 30 of recall (12 ended), 3 of another workflow.
		var runs, others []*store.WorkflowRun
		for i, id := range acme {
			runs = append(runs, newRun(id, "s1", t0.Add(time.Duration(i)*time.Minute)))
		}
		for i := range 7 {
			m := seedMember(t, s, "acme", fmt.Sprintf("r%d", i))
			runs = append(runs, newRun(m, "s1", t0))
			if i < 3 {
				r := newRun(m, "s1", t0)
				r.Workflow = "other"
				others = append(others, r)
			}
		}
		var started []*store.WorkflowRun
		for _, batch := range [][]*store.WorkflowRun{runs[:10], others, runs[10:]} {
			got, err := s.StartRuns(ctx, batch)
			if err != nil || len(got) != len(batch) {
				t.Fatalf("starting runs: %d of %d, %v", len(got), len(batch), err)
			}
			started = append(started, got...)
		}
		var wantRuns, wantActive []int64
		for i := len(started) - 1; i >= 0; i-- {
			if r := started[i]; r.Workflow == "recall" {
				wantRuns = append(wantRuns, r.ID)
			}
		}
		for i, id := range wantRuns {
			if i%5 < 2 {
				if _, err := s.EndRun(ctx, id, store.RunDone, "done", t0); err != nil {
					t.Fatal(err)
				}
				continue
			}
			wantActive = append(wantActive, id)
		}
		for _, limit := range []int{1, 7, 30} {
			got := pageAll(t, limit, func(c string) ([]store.WorkflowRun, string, error) {
				return s.ListRuns(ctx, store.RunListQuery{Brand: "acme", Workflow: "recall", Cursor: c, Limit: limit})
			})
			exactlyOnce(t, fmt.Sprintf("runs, limit %d", limit), runIDs(got), wantRuns)
			got = pageAll(t, limit, func(c string) ([]store.WorkflowRun, string, error) {
				return s.ListRuns(ctx, store.RunListQuery{Brand: "acme", Workflow: "recall", State: store.RunActive, Cursor: c, Limit: limit})
			})
			exactlyOnce(t, fmt.Sprintf("active runs, limit %d", limit), runIDs(got), wantActive)
		}
		if got, _, err := s.ListRuns(ctx, store.RunListQuery{Brand: "zeta", Workflow: "recall"}); err != nil || len(got) != 0 {
			t.Errorf("zeta's runs of recall: %v, %v; want none", got, err)
		}

		// Tasks: many share a due time, so the order falls back to id.
		var wantTasks []int64
		due := t0.Add(time.Hour)
		type task struct {
			id  int64
			due time.Time
		}
		var made []task
		for i := range 17 {
			tk := &store.GuideTask{MemberID: acme[i%len(acme)], GuideID: "g1", BrandID: "acme", Title: "call",
				DueAt: due.Add(time.Duration(2-i%3) * time.Minute)}
			if _, err := s.CreateGuideTask(ctx, tk); err != nil {
				t.Fatal(err)
			}
			made = append(made, task{tk.ID, tk.DueAt})
		}
		if _, err := s.CreateGuideTask(ctx, &store.GuideTask{MemberID: acme[0], GuideID: "g2", BrandID: "acme", Title: "x", DueAt: due}); err != nil {
			t.Fatal(err)
		}
		for _, off := range []time.Duration{0, time.Minute, 2 * time.Minute} {
			for _, tk := range made {
				if tk.due.Equal(due.Add(off)) {
					wantTasks = append(wantTasks, tk.id)
				}
			}
		}
		for _, limit := range []int{1, 2, 5, 17} {
			got := pageAll(t, limit, func(c string) ([]store.GuideTask, string, error) {
				return s.ListGuideTasks(ctx, store.GuideTaskListQuery{Brand: "acme", GuideID: "g1", Cursor: c, Limit: limit})
			})
			var ids []int64
			for _, tk := range got {
				ids = append(ids, tk.ID)
			}
			exactlyOnce(t, fmt.Sprintf("g1's tasks, limit %d", limit), ids, wantTasks)
		}
		if got, _, err := s.ListGuideTasks(ctx, store.GuideTaskListQuery{StoreID: "a", Limit: 100}); err != nil || len(got) != 18 {
			t.Errorf("store a's tasks: %d, %v; want 18", len(got), err)
		}

		// A cursor is opaque and checked: another list's, a damaged one or
		// a hand-made one is ErrInvalid naming the cursor.
		_, memberNext, _ := s.ListMembers(ctx, store.MemberListQuery{Brand: "acme", Limit: 2})
		_, runNext, _ := s.ListRuns(ctx, store.RunListQuery{Brand: "acme", Limit: 2})
		if strings.Contains(memberNext, fmt.Sprint(wantMembers[1])) {
			t.Errorf("member cursor %q shows the id in clear", memberNext)
		}
		flipped := []byte(memberNext)
		flipped[2] ^= 1
		for name, bad := range map[string]func() error{
			"run cursor to members": func() error {
				_, _, err := s.ListMembers(ctx, store.MemberListQuery{Brand: "acme", Cursor: runNext})
				return err
			},
			"member cursor to runs": func() error {
				_, _, err := s.ListRuns(ctx, store.RunListQuery{Cursor: memberNext})
				return err
			},
			"member cursor to tasks": func() error {
				_, _, err := s.ListGuideTasks(ctx, store.GuideTaskListQuery{Cursor: memberNext})
				return err
			},
			"damaged": func() error {
				_, _, err := s.ListMembers(ctx, store.MemberListQuery{Cursor: string(flipped)})
				return err
			},
			"an id": func() error {
				_, _, err := s.ListRuns(ctx, store.RunListQuery{Cursor: "12"})
				return err
			},
			"id cursor": func() error {
				_, err := store.AfterCursor(memberNext)
				return err
			},
		} {
			err := bad()
			var fe *store.FieldError
			if !errors.Is(err, store.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "cursor" {
				t.Errorf("%s: %v, want ErrInvalid on the cursor", name, err)
			}
		}
		if id, err := store.AfterCursor(store.IDCursor("g-1")); err != nil || id != "g-1" {
			t.Errorf("AfterCursor(IDCursor(g-1)) = %q, %v", id, err)
		}
	})
}

func runIDs(runs []store.WorkflowRun) []int64 {
	out := make([]int64, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}
