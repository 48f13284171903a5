package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// reminderSeed adds tasks to handoffSeed's guides: g1 has a task due in
// 30 minutes, one due in 5 hours, one 1 hour overdue, a done one and a
// cancelled one; g2 (brand b1) one due in 1 hour; g3 of the same store
// (brand b2) one overdue. It returns the task ids by name.
func reminderSeed(t *testing.T, s *store.Store) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	chen, other := handoffSeed(t, s)
	if err := s.CreateBrand(ctx, &store.Brand{ID: "b2", Name: "B2"}); err != nil {
		t.Fatal(err)
	}
	three := "u3"
	if err := s.CreateGuide(ctx, &store.Guide{ID: "g3", StoreID: "st1", Name: "G3", Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: three}}, Active: true}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, c := range []struct {
		name, guide, brand string
		member             int64
		due                time.Duration
	}{
		{"soon", "g1", "b1", chen, 30 * time.Minute},
		{"later", "g1", "b1", chen, 5 * time.Hour},
		{"overdue", "g1", "b1", chen, -time.Hour},
		{"done", "g1", "b1", chen, time.Hour},
		{"cancelled", "g1", "b1", chen, time.Hour},
		{"g2", "g2", "b1", other, time.Hour},
		{"g3", "g3", "b2", other, -2 * time.Hour},
	} {
		task := &store.GuideTask{MemberID: c.member, GuideID: c.guide, BrandID: c.brand, Title: c.name, DueAt: t0.Add(c.due), CreatedAt: t0.Add(-time.Hour)}
		if c.name == "cancelled" {
			task.State = store.GuideTaskCancelled
		}
		if _, err := s.CreateGuideTask(ctx, task); err != nil {
			t.Fatal(err)
		}
		ids[c.name] = task.ID
	}
	if _, done, err := s.CompleteGuideTask(ctx, ids["done"], t0); err != nil || !done {
		t.Fatalf("completing: %v %v", done, err)
	}
	return ids
}

func TestTasksToRemind(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ids := reminderSeed(t, s)
		titles := func(q store.ReminderQuery) []string {
			t.Helper()
			tasks, err := s.TasksToRemind(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, task := range tasks {
				out = append(out, task.Title)
			}
			slices.Sort(out)
			return out
		}
		for _, tc := range []struct {
			name string
			q    store.ReminderQuery
			want []string
		}{
			{"before and at due", store.ReminderQuery{Now: t0, Before: 2 * time.Hour, AtDue: true}, []string{"g2", "g3", "overdue", "soon"}},
			{"before only", store.ReminderQuery{Now: t0, Before: 45 * time.Minute}, []string{"g3", "overdue", "soon"}},
			{"at due only", store.ReminderQuery{Now: t0, AtDue: true}, []string{"g3", "overdue"}},
			{"none", store.ReminderQuery{Now: t0}, nil},
			{"paged", store.ReminderQuery{Now: t0, Before: 2 * time.Hour, AtDue: true, AfterID: ids["overdue"]}, []string{"g2", "g3"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if diff := cmp.Diff(tc.want, titles(tc.q)); diff != "" {
					t.Errorf("tasks to remind (-want +got):\n%s", diff)
				}
			})
		}

		// The before-due reminder once: a second mark is refused, and the
		// task is no longer listed for it (it is for its at-due one).
		mark := func(name, kind string) bool {
			t.Helper()
			ok, err := s.MarkTaskReminded(ctx, ids[name], kind, t0)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !mark("soon", store.ReminderBefore) || mark("soon", store.ReminderBefore) {
			t.Error("before-due reminder of soon marked other than once")
		}
		q := store.ReminderQuery{Now: t0, Before: 2 * time.Hour, AtDue: true}
		if diff := cmp.Diff([]string{"g2", "g3", "overdue"}, titles(q)); diff != "" {
			t.Errorf("after the before-due mark (-want +got):\n%s", diff)
		}
		q.Now = t0.Add(31 * time.Minute)
		if diff := cmp.Diff([]string{"g2", "g3", "overdue", "soon"}, titles(q)); diff != "" {
			t.Errorf("once soon is due (-want +got):\n%s", diff)
		}
		// Settling at due settles both, once; done and cancelled tasks are
		// never marked.
		if !mark("overdue", store.ReminderDue) || mark("overdue", store.ReminderDue) || mark("overdue", store.ReminderBefore) {
			t.Error("at-due reminder of overdue marked other than once")
		}
		if mark("done", store.ReminderBefore) || mark("cancelled", store.ReminderDue) {
			t.Error("a closed task was marked reminded")
		}
		task, err := s.GuideTask(ctx, ids["overdue"])
		if err != nil {
			t.Fatal(err)
		}
		if task.BeforeRemindedAt == nil || task.DueRemindedAt == nil || !task.DueRemindedAt.Equal(t0) {
			t.Errorf("overdue task marks = %v %v, want both at %v", task.BeforeRemindedAt, task.DueRemindedAt, t0)
		}
		if diff := cmp.Diff([]string{"g2", "g3", "soon"}, titles(q)); diff != "" {
			t.Errorf("after the at-due mark (-want +got):\n%s", diff)
		}
		// Completing a task takes it off the list.
		if _, _, err := s.CompleteGuideTask(ctx, ids["soon"], t0); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"g2", "g3"}, titles(q)); diff != "" {
			t.Errorf("after completing soon (-want +got):\n%s", diff)
		}
		if _, err := s.MarkTaskReminded(ctx, ids["g2"], "later", t0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("unknown kind: err = %v, want ErrInvalid", err)
		}
	})
}

func TestGuideTaskCounts(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		reminderSeed(t, s)
		left := "u4"
		if err := s.CreateGuide(ctx, &store.Guide{ID: "g4", StoreID: "st1", Name: "G4", Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: left}}}); err != nil {
			t.Fatal(err)
		}
		g1 := store.GuideTaskCount{GuideID: "g1", Name: "G1", Open: 2, Overdue: 1, Done: 1}
		g2 := store.GuideTaskCount{GuideID: "g2", Name: "G2", Open: 1}
		g3 := store.GuideTaskCount{GuideID: "g3", Name: "G3", Overdue: 1}
		for _, tc := range []struct {
			name string
			q    store.TaskCountQuery
			want []store.GuideTaskCount
		}{
			// g4 is inactive with no tasks: not listed.
			{"store", store.TaskCountQuery{StoreID: "st1", Now: t0}, []store.GuideTaskCount{g1, g2, g3}},
			{"brand", store.TaskCountQuery{StoreID: "st1", Brand: "b1", Now: t0}, []store.GuideTaskCount{g1, g2, {GuideID: "g3", Name: "G3"}}},
			{"overdue", store.TaskCountQuery{StoreID: "st1", Now: t0, Status: store.TaskStatusOverdue}, []store.GuideTaskCount{g1, g3}},
			{"overdue of brand", store.TaskCountQuery{StoreID: "st1", Brand: "b2", Now: t0, Status: store.TaskStatusOverdue},
				[]store.GuideTaskCount{{GuideID: "g3", Name: "G3", Overdue: 1}}},
			{"open", store.TaskCountQuery{StoreID: "st1", Now: t0, Status: store.TaskStatusOpen}, []store.GuideTaskCount{g1, g2}},
			{"done", store.TaskCountQuery{StoreID: "st1", Now: t0, Status: store.TaskStatusDone}, []store.GuideTaskCount{g1}},
			// Two hours on, g1's "soon" and g2's task are overdue too.
			{"later", store.TaskCountQuery{StoreID: "st1", Now: t0.Add(2 * time.Hour)}, []store.GuideTaskCount{
				{GuideID: "g1", Name: "G1", Open: 1, Overdue: 2, Done: 1}, {GuideID: "g2", Name: "G2", Overdue: 1}, g3}},
			{"other store", store.TaskCountQuery{StoreID: "nowhere", Now: t0}, []store.GuideTaskCount{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.GuideTaskCounts(ctx, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("counts (-want +got):\n%s", diff)
				}
			})
		}
		if _, err := s.GuideTaskCounts(ctx, store.TaskCountQuery{StoreID: "st1", Now: t0, Status: "late"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("bad status: err = %v, want ErrInvalid", err)
		}
	})
}

func TestGuideTasksByDue(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		reminderSeed(t, s)
		tasks, err := s.GuideTasks(context.Background(), store.GuideTaskFilter{GuideID: "g1", State: store.GuideTaskOpen, ByDue: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, task := range tasks {
			got = append(got, task.Title)
		}
		if diff := cmp.Diff([]string{"overdue", "soon", "later"}, got); diff != "" {
			t.Errorf("by due (-want +got):\n%s", diff)
		}
	})
}
