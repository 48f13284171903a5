package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func TestWorkflowActivities(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme", "other")
		now := t0.Add(30 * 24 * time.Hour)
		since := now.Add(-7 * 24 * time.Hour)
		run := func(brand, workflow, wecomID string, started time.Time) *store.WorkflowRun {
			t.Helper()
			r := newRun(seedMember(t, s, brand, wecomID), "e1", started)
			r.BrandID, r.Workflow, r.StartedAt = brand, workflow, started
			if _, err := s.StartRuns(ctx, []*store.WorkflowRun{r}); err != nil {
				t.Fatal(err)
			}
			return started0(t, s, r.MemberID)
		}
		old := run("acme", "recall", "a1", now.Add(-10*24*time.Hour))      // entered before, converted in the window: not counted
		run("acme", "recall", "a2", now.Add(-24*time.Hour))                // entered, active
		fresh := run("acme", "recall", "a3", now.Add(-24*time.Hour))       // entered and converted: counted
		failing := run("acme", "welcome", "a4", now.Add(-2*24*time.Hour))  // entered, a step failed twice
		run("other", "recall", "o1", now.Add(-time.Hour))                  // another brand
		ancient := run("acme", "dormant", "a5", now.Add(-20*24*time.Hour)) // nothing in the window
		for _, r := range []struct {
			id int64
			at time.Time
		}{{old.ID, now.Add(-2 * 24 * time.Hour)}, {fresh.ID, now.Add(-time.Hour)}, {ancient.ID, now.Add(-15 * 24 * time.Hour)}} {
			if ended, err := s.EndRun(ctx, r.id, store.RunConverted, "goal", r.at); err != nil || !ended {
				t.Fatalf("ending run %d: %v %v", r.id, ended, err)
			}
		}
		for i, msg := range []string{"first failure", "template does not render"} {
			m := store.RunMove{RunID: failing.ID, Seq: int64(i), Step: "wait", Visit: 1, StepState: store.StepPending, Error: msg, At: now}
			if moved, _, err := s.MoveRun(ctx, m); err != nil || !moved {
				t.Fatalf("failing the step: %v %v", moved, err)
			}
		}

		got, err := s.WorkflowActivities(ctx, "acme", since)
		if err != nil {
			t.Fatal(err)
		}
		recall := got[store.WorkflowActivityKey{Brand: "acme", Workflow: "recall"}]
		if recall == nil || recall.Entered != 2 || recall.Converted != 1 || recall.LastError != "" {
			t.Errorf("acme/recall: %+v, want 2 entered, 1 of them converted, no error", recall)
		}
		welcome := got[store.WorkflowActivityKey{Brand: "acme", Workflow: "welcome"}]
		if welcome == nil || welcome.Entered != 1 || welcome.Converted != 0 || welcome.LastError != "template does not render" ||
			welcome.LastErrorStep != "wait" || welcome.LastErrorAt == nil {
			t.Errorf("acme/welcome: %+v, want 1 entered and the last error on step wait", welcome)
		}
		if len(got) != 2 {
			t.Errorf("acme: %d workflows, want recall and welcome (dormant had nothing in the window, other is another brand)", len(got))
		}
		all, err := s.WorkflowActivities(ctx, "", since)
		if err != nil || len(all) != 3 || all[store.WorkflowActivityKey{Brand: "other", Workflow: "recall"}].Entered != 1 {
			t.Errorf("every brand: %d workflows (%v)", len(all), err)
		}
	})
}

func TestConsoleSessions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		cs := &store.ConsoleSession{ID: store.HashToken("secret"), TokenHash: store.HashToken("token"), CSRF: "c",
			CreatedAt: t0, SeenAt: t0, ExpiresAt: t0.Add(7 * 24 * time.Hour)}
		if err := s.CreateConsoleSession(ctx, cs); err != nil {
			t.Fatal(err)
		}
		idle := 8 * time.Hour
		live := func(now time.Time) bool {
			_, err := s.ConsoleSession(ctx, cs.ID, now, now.Add(-idle))
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			return err == nil
		}
		if !live(t0.Add(7*time.Hour)) || live(t0.Add(9*time.Hour)) {
			t.Error("idle timeout: want live at 7h, gone at 9h")
		}
		if err := s.TouchConsoleSession(ctx, cs.ID, t0.Add(7*24*time.Hour-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if !live(t0.Add(7*24*time.Hour-time.Minute)) || live(t0.Add(7*24*time.Hour)) {
			t.Error("absolute end: want live a minute before, gone at it")
		}
		if n, err := s.DeleteExpiredConsoleSessions(ctx, t0.Add(8*24*time.Hour), t0); err != nil || n != 1 {
			t.Errorf("deleting expired: %d %v", n, err)
		}
		if err := s.DeleteConsoleSession(ctx, cs.ID); err != nil {
			t.Errorf("deleting a gone session: %v", err)
		}
	})
}
