package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

var t0 = time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC)

func seedMember(t *testing.T, s *store.Store, brand, wecomID string) int64 {
	t.Helper()
	m, _, err := s.EnsureMember(context.Background(), store.NewMember{BrandID: brand, Name: "M " + wecomID,
		Identities: []store.Identity{{Channel: "wecom", ExternalID: wecomID}}})
	if err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func TestWorkflowVersions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		v1 := &store.WorkflowVersion{BrandID: "acme", Name: "recall", Version: "v1", Source: "a"}
		head, created, err := s.PutWorkflowVersion(ctx, v1, "member.joined")
		if err != nil || !created || head.Enabled || head.Version != "v1" {
			t.Fatalf("first put: %+v, %v, %v", head, created, err)
		}
		if err := s.SetWorkflowEnabled(ctx, "acme", "recall", true); err != nil {
			t.Fatal(err)
		}
		head, created, err = s.PutWorkflowVersion(ctx, &store.WorkflowVersion{BrandID: "acme", Name: "recall", Version: "v2", Source: "b"}, "schedule")
		if err != nil || !created || !head.Enabled || head.Version != "v2" || head.Trigger != "schedule" {
			t.Fatalf("second put: %+v, %v, %v", head, created, err)
		}
		again := &store.WorkflowVersion{BrandID: "acme", Name: "recall", Version: "v1", Source: "a"}
		if head, created, err = s.PutWorkflowVersion(ctx, again, "member.joined"); err != nil || created || head.Version != "v1" || again.ID != v1.ID {
			t.Fatalf("same content again: %+v, %v, %v", head, created, err)
		}
		vs, err := s.WorkflowVersions(ctx, "acme", "recall")
		if err != nil || len(vs) != 2 {
			t.Fatalf("versions: %v, %v", vs, err)
		}
		ws, err := s.Workflows(ctx, store.WorkflowFilter{Trigger: "member.joined", EnabledOnly: true})
		if err != nil || len(ws) != 1 {
			t.Fatalf("enabled workflows: %v, %v", ws, err)
		}
		if err := s.SetWorkflowEnabled(ctx, "acme", "nope", true); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("enabling a missing workflow: %v", err)
		}
		if _, err := s.RetireWorkflowVersion(ctx, "acme", "recall", "v9", "x", t0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("retiring a missing version: %v", err)
		}
	})
}

func newRun(member int64, key string, wake time.Time) *store.WorkflowRun {
	return &store.WorkflowRun{MemberID: member, BrandID: "acme", Workflow: "recall", Version: "v1", TriggerKey: key,
		Step: "wait", WakeAt: &wake, StartedAt: t0}
}

func TestRunsOneActivePerMember(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		a, b := seedMember(t, s, "acme", "wa"), seedMember(t, s, "acme", "wb")
		started, err := s.StartRuns(ctx, []*store.WorkflowRun{newRun(a, "e1", t0.Add(time.Hour)), newRun(b, "e1", t0)})
		if err != nil || len(started) != 2 {
			t.Fatalf("start: %v, %v", started, err)
		}
		// Another trigger while a's run is active starts nothing; the
		// same trigger twice starts nothing.
		started, err = s.StartRuns(ctx, []*store.WorkflowRun{newRun(a, "e2", t0)})
		if err != nil || len(started) != 0 {
			t.Fatalf("second active run: %v, %v", started, err)
		}
		steps, err := s.RunSteps(ctx, started0(t, s, a).ID)
		if err != nil || len(steps) != 1 || steps[0].State != store.StepWaiting || steps[0].Visit != 1 {
			t.Fatalf("first step: %+v, %v", steps, err)
		}
		run := started0(t, s, b)
		if ended, err := s.EndRun(ctx, run.ID, store.RunConverted, "goal", t0); err != nil || !ended {
			t.Fatalf("end: %v, %v", ended, err)
		}
		if ended, _ := s.EndRun(ctx, run.ID, store.RunConverted, "goal", t0); ended {
			t.Error("ended twice")
		}
		if started, _ = s.StartRuns(ctx, []*store.WorkflowRun{newRun(b, "e1", t0)}); len(started) != 0 {
			t.Error("the same trigger started a second run")
		}
		if started, _ = s.StartRuns(ctx, []*store.WorkflowRun{newRun(b, "e3", t0)}); len(started) != 1 {
			t.Error("a new trigger after the run ended started nothing")
		}
		h, err := s.RunHistories(ctx, "acme", "recall", []int64{a, b, 999})
		if err != nil {
			t.Fatal(err)
		}
		if h[a].Runs != 1 || !h[a].Active || h[b].Runs != 2 || !h[b].LastEnded.Equal(t0) {
			t.Errorf("histories: %+v", h)
		}

		// Concurrent starts for one member: one wins.
		c := seedMember(t, s, "acme", "wc")
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := s.StartRuns(ctx, []*store.WorkflowRun{newRun(c, "k"+string(rune('a'+i)), t0)})
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += len(got)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if total != 1 {
			t.Errorf("concurrent starts started %d runs", total)
		}
	})
}

func started0(t *testing.T, s *store.Store, member int64) *store.WorkflowRun {
	t.Helper()
	runs, err := s.Runs(context.Background(), store.RunFilter{MemberID: member})
	if err != nil || len(runs) == 0 {
		t.Fatalf("runs of %d: %v, %v", member, runs, err)
	}
	return &runs[0]
}

func TestMoveRunAndClaims(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		m := seedMember(t, s, "acme", "wa")
		if _, err := s.StartRuns(ctx, []*store.WorkflowRun{newRun(m, "e1", t0)}); err != nil {
			t.Fatal(err)
		}
		run := started0(t, s, m)
		move := store.RunMove{RunID: run.ID, Seq: 0, Step: "wait", Visit: 1, StepState: store.StepDone, Outcome: "waited",
			Next: "send", NextState: store.StepPending, WakeAt: &t0, QueuedAt: &t0, At: t0}
		moved, visit, err := s.MoveRun(ctx, move)
		if err != nil || !moved || visit != 1 {
			t.Fatalf("move: %v %d %v", moved, visit, err)
		}
		if moved, _, _ := s.MoveRun(ctx, move); moved {
			t.Error("a stale sequence moved the run")
		}
		// Claim once; a second claim fails until the first is stale.
		if ok, err := s.ClaimRunStep(ctx, run.ID, "send", 1, t0, t0.Add(-time.Minute)); err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		if ok, _ := s.ClaimRunStep(ctx, run.ID, "send", 1, t0, t0.Add(-time.Minute)); ok {
			t.Error("claimed twice")
		}
		if ok, _ := s.ClaimRunStep(ctx, run.ID, "send", 1, t0.Add(5*time.Minute), t0.Add(time.Minute)); !ok {
			t.Error("a stale claim was not taken over")
		}
		// Back to the wait: its second visit.
		moved, visit, err = s.MoveRun(ctx, store.RunMove{RunID: run.ID, Seq: 1, Step: "send", Visit: 1, StepState: store.StepDone,
			Next: "wait", Sent: 1, WakeAt: &t0, At: t0.Add(time.Second)})
		if err != nil || !moved || visit != 2 {
			t.Fatalf("move back: %v %d %v", moved, visit, err)
		}
		moved, _, err = s.MoveRun(ctx, store.RunMove{RunID: run.ID, Seq: 2, Step: "wait", Visit: 2, StepState: store.StepDone,
			Next: "end", End: store.RunDone, EndReason: "finished", At: t0.Add(2 * time.Second)})
		if err != nil || !moved {
			t.Fatal(moved, err)
		}
		got, _ := s.Run(ctx, run.ID)
		if got.State != store.RunDone || got.WakeAt != nil || got.Sent != 1 || got.WakeSeq != 3 || got.EndReason != "finished" {
			t.Errorf("ended run: %+v", got)
		}
		steps, _ := s.RunSteps(ctx, run.ID)
		var trail []string
		for _, st := range steps {
			trail = append(trail, st.StepID+":"+st.State)
		}
		if diff := cmp.Diff([]string{"wait:done", "send:done", "wait:done"}, trail); diff != "" {
			t.Errorf("steps (-want +got):\n%s", diff)
		}
		stats, err := s.RunStats(ctx, "acme", "recall")
		if err != nil || stats.States[store.RunDone] != 1 || stats.Sent != 1 || len(stats.Steps) != 2 || stats.Steps[1].Reached != 1 {
			t.Errorf("stats: %+v, %v", stats, err)
		}
	})
}

func TestHandWakes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		var runs []*store.WorkflowRun
		for i, off := range []time.Duration{time.Minute, 30 * time.Minute, 3 * time.Hour, -5 * time.Minute} {
			runs = append(runs, newRun(seedMember(t, s, "acme", "w"+string(rune('a'+i))), "s1", t0.Add(off)))
		}
		if _, err := s.StartRuns(ctx, runs); err != nil {
			t.Fatal(err)
		}
		var handed []time.Time
		n, err := s.HandWakes(ctx, store.WakeQuery{DueBefore: t0.Add(time.Hour), Unqueued: true, Limit: 10, Now: t0},
			func(ws []store.Wake) ([]int64, error) {
				for _, w := range ws {
					handed = append(handed, w.WakeAt)
				}
				return []int64{ws[0].RunID}, errors.New("first one failed")
			})
		if err != nil || n != 2 || len(handed) != 3 || !handed[0].Equal(t0.Add(-5*time.Minute)) {
			t.Fatalf("handed %d (%v), %v", n, handed, err)
		}
		// The failed one is handed again; the others are queued.
		n, _ = s.HandWakes(ctx, store.WakeQuery{DueBefore: t0.Add(time.Hour), Unqueued: true, Limit: 10, Now: t0},
			func(ws []store.Wake) ([]int64, error) { return nil, nil })
		if n != 1 {
			t.Errorf("second pass handed %d, want 1", n)
		}
		// Queued long ago and overdue: handed over again.
		n, _ = s.HandWakes(ctx, store.WakeQuery{DueBefore: t0.Add(10 * time.Minute), QueuedBefore: t0.Add(10 * time.Minute), Limit: 10, Now: t0.Add(10 * time.Minute)},
			func(ws []store.Wake) ([]int64, error) { return nil, nil })
		if n != 2 {
			t.Errorf("overdue pass handed %d, want 2", n)
		}
	})
}

func TestReserveSendCaps(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme", "zeta")
		m := seedMember(t, s, "acme", "wa")
		res := func(key, brand string, at time.Time) bool {
			t.Helper()
			ok, err := s.ReserveSend(ctx, store.SendReservation{Key: key, MemberID: m, BrandID: brand, Channel: "wecom", At: at,
				DayStart: t0, PerDay: 2, WeekStart: t0.Add(-48 * time.Hour), PerWeek: 3})
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !res("k1", "acme", t0) || !res("k2", "zeta", t0) {
			t.Fatal("the first two sends were capped")
		}
		if res("k3", "acme", t0) {
			t.Error("a third send of the day passed the daily cap of 2")
		}
		if !res("k1", "acme", t0) {
			t.Error("a retried send was capped")
		}
		if err := s.ReleaseSend(ctx, "k2"); err != nil {
			t.Fatal(err)
		}
		if !res("k3", "acme", t0) {
			t.Error("a released slot was not free")
		}
		// Concurrent reservations for one member never pass the cap.
		m2 := seedMember(t, s, "acme", "wb")
		var wg sync.WaitGroup
		var mu sync.Mutex
		granted := 0
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.ReserveSend(ctx, store.SendReservation{Key: "c" + string(rune('a'+i)), MemberID: m2, BrandID: "acme",
					Channel: "wecom", At: t0, DayStart: t0, PerDay: 3})
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if granted != 3 {
			t.Errorf("concurrent reservations granted %d, want 3", granted)
		}
	})
}

func TestPointsTagsConsentProfiles(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		m := seedMember(t, s, "acme", "wa")
		for range 2 {
			if _, err := s.AwardPoints(ctx, &store.PointsLine{MemberID: m, BrandID: "acme", Delta: 200, Reason: "gift", Ref: "wf:1:pts:1"}); err != nil {
				t.Fatal(err)
			}
		}
		if added, err := s.AddMemberTags(ctx, m, "acme", []string{"vip", "dormant"}, t0); err != nil || len(added) != 2 {
			t.Fatalf("tags: %v, %v", added, err)
		}
		if added, _ := s.AddMemberTags(ctx, m, "acme", []string{"vip"}, t0); len(added) != 0 {
			t.Errorf("re-tag added %v", added)
		}
		if removed, _ := s.RemoveMemberTags(ctx, m, "acme", []string{"dormant", "none"}); len(removed) != 1 {
			t.Errorf("removed %v", removed)
		}
		if err := s.SetConsent(ctx, m, "acme", "wecom", true, t0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendEvent(ctx, &store.Event{Type: "purchase.completed", BrandID: "acme", MemberID: &m, Source: "pos",
			SourceID: "o1", Payload: `{"order":{"id":"o1","total":128}}`, OccurredAt: t0}); err != nil {
			t.Fatal(err)
		}
		p, err := s.MemberProfile(ctx, "acme", m)
		if err != nil {
			t.Fatal(err)
		}
		if p.Membership == nil || p.Membership.Points != 200 || p.Identity("wecom") != "wa" || !p.IsUnsubscribed("wecom") ||
			p.IsUnsubscribed("dingtalk") || len(p.Purchases) != 1 || cmp.Diff([]string{"vip"}, p.Tags) != "" {
			t.Errorf("profile: %+v", p)
		}
		if err := s.SetConsent(ctx, m, "acme", "wecom", false, t0); err != nil {
			t.Fatal(err)
		}
		if p, _ = s.MemberProfile(ctx, "acme", m); p.IsUnsubscribed("wecom") {
			t.Error("subscribing again did not count")
		}
		lines, _ := s.PointsLines(ctx, m, "acme")
		if len(lines) != 1 {
			t.Errorf("ledger lines: %+v", lines)
		}
		// Segments: tags, purchases.
		other := seedMember(t, s, "acme", "wb")
		from, to := t0.Add(-time.Hour), t0.Add(time.Hour)
		ids, err := s.SegmentMembers(ctx, store.SegmentQuery{Brand: "acme", LastPurchaseFrom: &from, LastPurchaseTo: &to})
		if err != nil || cmp.Diff([]int64{m}, ids) != "" {
			t.Errorf("last purchase segment: %v, %v", ids, err)
		}
		ids, _ = s.SegmentMembers(ctx, store.SegmentQuery{Brand: "acme", WithoutTags: []string{"vip"}})
		if cmp.Diff([]int64{other}, ids) != "" {
			t.Errorf("without vip: %v", ids)
		}
		ids, _ = s.SegmentMembers(ctx, store.SegmentQuery{Brand: "acme", Tags: []string{"vip"}})
		if cmp.Diff([]int64{m}, ids) != "" {
			t.Errorf("with vip: %v", ids)
		}
	})
}

func TestLeasesAndScheduleFires(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if ok, err := s.AcquireLease(ctx, "sweep", "a", t0, time.Minute); err != nil || !ok {
			t.Fatalf("a: %v %v", ok, err)
		}
		if ok, _ := s.AcquireLease(ctx, "sweep", "b", t0.Add(30*time.Second), time.Minute); ok {
			t.Error("b took a's live lease")
		}
		if ok, _ := s.AcquireLease(ctx, "sweep", "a", t0.Add(30*time.Second), time.Minute); !ok {
			t.Error("a could not renew")
		}
		if ok, _ := s.AcquireLease(ctx, "sweep", "b", t0.Add(2*time.Minute), time.Minute); !ok {
			t.Error("b could not take an expired lease")
		}
		if err := s.ReleaseLease(ctx, "sweep", "b"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.AcquireLease(ctx, "sweep", "a", t0.Add(2*time.Minute), time.Minute); !ok {
			t.Error("a could not take a released lease")
		}

		if ok, _ := s.ClaimScheduleFire(ctx, "acme", "win", t0, "a", t0, t0.Add(-time.Minute)); !ok {
			t.Error("first claim failed")
		}
		if ok, _ := s.ClaimScheduleFire(ctx, "acme", "win", t0, "b", t0.Add(time.Second), t0.Add(-time.Minute)); ok {
			t.Error("second claim won")
		}
		if ok, _ := s.ClaimScheduleFire(ctx, "acme", "win", t0, "b", t0.Add(20*time.Minute), t0.Add(10*time.Minute)); !ok {
			t.Error("an unfinished stale claim was not taken over")
		}
		if err := s.FinishScheduleFire(ctx, "acme", "win", t0, 3, t0.Add(21*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.ClaimScheduleFire(ctx, "acme", "win", t0, "c", t0.Add(time.Hour), t0.Add(50*time.Minute)); ok {
			t.Error("a finished firing was claimed again")
		}
		fires, _ := s.ScheduleFires(ctx, "acme", "win", 10)
		if len(fires) != 1 || fires[0].Entered != 3 || fires[0].Holder != "b" {
			t.Errorf("fires: %+v", fires)
		}
	})
}

func TestGuideTasks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		key := "wf:1:call:1"
		task := &store.GuideTask{Key: &key, MemberID: 7, GuideID: "g1", BrandID: "acme", Title: "call", DueAt: t0, CreatedAt: t0}
		if fresh, err := s.CreateGuideTask(ctx, task); err != nil || !fresh {
			t.Fatalf("create: %v %v", fresh, err)
		}
		dup := &store.GuideTask{Key: &key, MemberID: 7, GuideID: "g1", BrandID: "acme", Title: "call again", DueAt: t0, CreatedAt: t0}
		if fresh, err := s.CreateGuideTask(ctx, dup); err != nil || fresh || dup.ID != task.ID || dup.Title != "call" {
			t.Fatalf("duplicate: %+v %v %v", dup, fresh, err)
		}
		got, ok, err := s.CompleteGuideTask(ctx, task.ID, t0.Add(time.Hour))
		if err != nil || !ok || got.State != store.GuideTaskDone {
			t.Fatalf("complete: %+v %v %v", got, ok, err)
		}
		if _, ok, _ := s.CompleteGuideTask(ctx, task.ID, t0); ok {
			t.Error("completed twice")
		}
		open, _ := s.GuideTasks(ctx, store.GuideTaskFilter{GuideID: "g1", State: store.GuideTaskOpen})
		if len(open) != 0 {
			t.Errorf("open tasks: %+v", open)
		}
	})
}
