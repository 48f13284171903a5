package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// cst is China Standard Time, the funnel counters' days.
var cst = time.FixedZone("CST", 8*3600)

// cstDay is midnight in China d days after t0's day there.
func cstDay(d int) time.Time {
	y, m, dd := t0.In(cst).Date()
	return time.Date(y, m, dd+d, 0, 0, 0, 0, cst)
}

// checkCounted compares the funnel of every brand and workflow over
// periods of whole days in China (read from the counters) with the
// recount of the rows one by one, and returns how many had steps and
// sends.
func checkCounted(t *testing.T, s *store.Store, w *funnelWorld, when string) (nonEmpty int) {
	t.Helper()
	ctx := context.Background()
	filters := map[string]store.FunnelFilter{"all": {}, "days 2-5": {From: cstDay(2), To: cstDay(6)},
		"from day 5": {From: cstDay(5)}, "to day 3": {To: cstDay(3)}, "empty": {From: cstDay(30), To: cstDay(31)}}
	for d := -1; d <= 11; d++ {
		filters[fmt.Sprintf("day %d", d)] = store.FunnelFilter{From: cstDay(d), To: cstDay(d + 1)}
	}
	for _, b := range []string{"acme", "zeta"} {
		for _, wf := range []string{"recall", "winback", "none"} {
			for name, f := range filters {
				wantRuns, wantSends := w.recompute(t, s, b, wf, f)
				got, err := s.RunStatsOf(ctx, b, wf, f)
				if err != nil {
					t.Fatal(err)
				}
				if diff := gocmp.Diff(wantRuns, got); diff != "" {
					t.Errorf("%s: %s/%s %s: run stats (-recount +counters):\n%s", when, b, wf, name, diff)
				}
				gotSends, err := s.SendStatsOf(ctx, b, wf, f)
				if err != nil {
					t.Fatal(err)
				}
				if diff := gocmp.Diff(wantSends, sortSendStats(gotSends)); diff != "" {
					t.Errorf("%s: %s/%s %s: send stats (-recount +counters):\n%s", when, b, wf, name, diff)
				}
				if len(wantRuns.Steps) > 0 && len(wantSends) > 0 {
					nonEmpty++
				}
			}
		}
	}
	return nonEmpty
}

// fold folds every delta, batch rows at a time, and says how many
// folds it took.
func fold(t *testing.T, s *store.Store, batch int) int {
	t.Helper()
	for i := 1; ; i++ {
		f, err := s.FoldFunnelDeltas(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		if f.Busy {
			t.Fatal("the fold is busy: no other folder runs")
		}
		if f.Runs < int64(batch) && f.Steps < int64(batch) {
			runs, steps, err := s.FunnelDeltas(context.Background())
			if err != nil || runs != 0 || steps != 0 {
				t.Fatalf("after folding: %d run and %d step deltas left, %v", runs, steps, err)
			}
			return i
		}
	}
}

// TestFunnelCountersMatchRecount checks that the funnel counters (totals
// plus the deltas not folded yet) are the recount of the rows after
// every kind of write, before, between and after folds: the generated
// runs' moves (sends with their messages in every state, skips and
// failures by reason, revisits, ends), then messages settling and
// delivered after their step ended, messages deleted, runs ended with
// their open steps cancelled in one statement (a goal, a retired
// version), visits and runs deleted as the retention job deletes them,
// runs' sends counted; and that the migration fills the totals from the
// rows there are.
func TestFunnelCountersMatchRecount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := genFunnel(t, s)
		runs0, steps0, err := s.FunnelDeltas(ctx)
		if err != nil || runs0 == 0 || steps0 == 0 {
			t.Fatalf("the writes appended %d run and %d step deltas, %v", runs0, steps0, err)
		}
		if n := checkCounted(t, s, w, "as written, nothing folded"); n < 30 {
			t.Errorf("only %d of the funnels compared had steps and sends: the generated data is too thin", n)
		}
		// One small fold: part in the totals, part in the deltas.
		if f, err := s.FoldFunnelDeltas(ctx, 7); err != nil || f.Runs != 7 || f.Steps != 7 {
			t.Fatalf("folding 7: %+v, %v", f, err)
		}
		checkCounted(t, s, w, "7 deltas folded")
		if n := fold(t, s, 50); n < 2 {
			t.Errorf("folded in %d batches of 50", n)
		}
		checkCounted(t, s, w, "all folded")

		rng := rand.New(rand.NewPCG(5, 8))
		// Messages settle and are delivered later; some are deleted.
		for _, e := range []string{
			`UPDATE outbox_messages SET state = 'sent', delivery = 'delivered' WHERE state = 'pending' AND id % 2 = 0`,
			`UPDATE outbox_messages SET delivery = 'undelivered' WHERE state = 'sent' AND id % 5 = 0`,
			`UPDATE outbox_messages SET state = 'failed', failure = 'quota' WHERE state = 'pending'`,
			`DELETE FROM outbox_messages WHERE id % 7 = 0`,
		} {
			if err := store.Exec(s, e); err != nil {
				t.Fatal(err)
			}
		}
		checkCounted(t, s, w, "after messages settled")
		// Active runs end (a goal, or their version retired); their open
		// steps are cancelled.
		runs, err := s.Runs(ctx, store.RunFilter{State: store.RunActive, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) < 5 {
			t.Fatalf("only %d active runs to end", len(runs))
		}
		for _, r := range runs[:len(runs)/2] {
			state, reason := store.RunConverted, "goal"
			if rng.IntN(2) == 0 {
				state, reason = store.RunExited, "retired"
			}
			if ended, err := s.EndRun(ctx, r.ID, state, reason, t0.Add(300*time.Hour)); err != nil || !ended {
				t.Fatalf("ending run %d: %v, %v", r.ID, ended, err)
			}
		}
		fold(t, s, 1000)
		if n := checkCounted(t, s, w, "after messages settled and runs ended, folded"); n < 20 {
			t.Errorf("only %d funnels with steps and sends", n)
		}
		// Retention deletes old visits, and runs with their visits; a
		// visit loses its copies.
		for _, e := range []string{
			`DELETE FROM run_steps WHERE run_id % 9 = 0 AND visit > 1`,
			`DELETE FROM run_steps WHERE run_id IN (SELECT id FROM workflow_runs WHERE id % 11 = 0)`,
			`DELETE FROM workflow_runs WHERE id % 11 = 0`,
			`UPDATE workflow_runs SET sent = sent + 2 WHERE id % 3 = 0`,
		} {
			if err := store.Exec(s, e); err != nil {
				t.Fatal(err)
			}
		}
		checkCounted(t, s, w, "after deletes")
		fold(t, s, 3)
		checkCounted(t, s, w, "after deletes, folded")

		// The migration fills the totals from the rows.
		if err := store.UndoFunnelDeltas(s); err != nil {
			t.Fatal(err)
		}
		applied, err := s.Migrate(ctx)
		if err != nil || !slices.Equal(applied, []string{"0042_funnel_deltas"}) {
			t.Fatalf("migrating again: %v, %v", applied, err)
		}
		if runs, steps, err := s.FunnelDeltas(ctx); err != nil || runs != 0 || steps != 0 {
			t.Fatalf("the backfill left %d run and %d step deltas, %v", runs, steps, err)
		}
		checkCounted(t, s, w, "backfilled")
	})
}

// TestFunnelCountersConcurrent enters runs from 16 workers at once, each
// a multi-row insert (as a schedule trigger enters its pages of members),
// and moves them through the same steps while their messages settle,
// while a folder folds the deltas in small batches: no write fails (no
// deadlock), and the counters are the recount while deltas are left and
// after the last fold (nothing counted twice, nothing lost).
func TestFunnelCountersConcurrent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		w := &funnelWorld{bound: map[string]map[int64][2]string{"acme": {}}}
		const workers = 16
		per := 20
		if s.Dialect() == "sqlite" {
			per = 5 // one writer at a time: the workers queue
		}
		pages := make([][]*store.WorkflowRun, workers)
		for p := range pages {
			for i := range per {
				m := seedMember(t, s, "acme", fmt.Sprintf("wm-conc-%d-%d", p, i))
				wake := t0.Add(time.Hour)
				// Started over three days in China.
				pages[p] = append(pages[p], &store.WorkflowRun{MemberID: m, BrandID: "acme", Workflow: "recall", Version: "v1", TriggerKey: "c",
					Step: "hello", WakeAt: &wake, StartedAt: t0.Add(time.Duration(p*per+i) * 11 * time.Minute)})
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers*per*4+100)
		folding := make(chan struct{})
		folded := make(chan int)
		go func() {
			n := 0
			for {
				select {
				case <-folding:
					folded <- n
					return
				default:
				}
				f, err := s.FoldFunnelDeltas(ctx, 5)
				if err != nil {
					errs <- fmt.Errorf("folding: %w", err)
				}
				n += int(f.Runs + f.Steps)
				time.Sleep(time.Millisecond)
			}
		}()
		begin := time.Now()
		var converted atomic.Int64
		for p := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				started, err := s.StartRuns(ctx, pages[p])
				if err != nil || len(started) != per {
					errs <- fmt.Errorf("page %d: %d runs entered, %v", p, len(started), err)
					return
				}
				for _, r := range started {
					k := fmt.Sprintf("conc-%d", r.ID)
					next := t0.Add(2 * time.Hour)
					// The send: its message, the step done, then the
					// message settles while the next step moves.
					if _, err := s.AddOutbox(ctx, &store.OutboxMessage{IdempotencyKey: k, Channel: "wecom", Recipient: "wm", Kind: "text", Payload: []byte("{}")}); err != nil {
						errs <- err
						continue
					}
					if _, _, err := s.MoveRun(ctx, store.RunMove{RunID: r.ID, Seq: r.WakeSeq, Step: "hello", Visit: 1, At: t0.Add(time.Hour),
						StepState: store.StepDone, OutboxKey: k, Sent: 1, Next: "wait", WakeAt: &next}); err != nil {
						errs <- fmt.Errorf("moving run %d: %w", r.ID, err)
						continue
					}
					settle := `UPDATE outbox_messages SET state = 'sent', delivery = 'delivered' WHERE idempotency_key = ?`
					if r.ID%4 == 0 {
						settle = `UPDATE outbox_messages SET state = 'failed', failure = 'invalid_recipient' WHERE idempotency_key = ?`
					}
					if err := store.Exec(s, settle, k); err != nil {
						errs <- err
						continue
					}
					end := store.RunMove{RunID: r.ID, Seq: r.WakeSeq + 1, Step: "wait", Visit: 1, At: t0.Add(2 * time.Hour), StepState: store.StepDone}
					if r.ID%3 == 0 {
						end.End, end.EndReason = store.RunConverted, "goal"
						converted.Add(1)
					} else {
						end.Next, end.WakeAt = "bye", &next
					}
					if _, _, err := s.MoveRun(ctx, end); err != nil {
						errs <- fmt.Errorf("moving run %d: %w", r.ID, err)
					}
				}
			}()
		}
		wg.Wait()
		close(folding)
		n := <-folded
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		t.Logf("%d runs entered in pages of %d and moved through 2 steps by %d workers in %v; %d deltas folded meanwhile",
			workers*per, per, workers, time.Since(begin), n)
		if n == 0 {
			t.Error("the folder folded nothing while the workers wrote")
		}
		check := func(when string) {
			got, err := s.RunStatsOf(ctx, "acme", "recall", store.FunnelFilter{})
			if err != nil {
				t.Fatal(err)
			}
			var entered int64
			for _, n := range got.States {
				entered += n
			}
			if entered != int64(workers*per) || got.States[store.RunConverted] != converted.Load() || got.Sent != int64(workers*per) {
				t.Errorf("%s: %d entered, %d converted, %d sent; want %d, %d, %d", when, entered, got.States[store.RunConverted], got.Sent,
					workers*per, converted.Load(), workers*per)
			}
			checkCounted(t, s, w, when)
		}
		check("after concurrent writes and folds")
		fold(t, s, 1000)
		check("folded")
	})
}

// TestFunnelCountersVisitAndMessage changes a send visit and its message
// at once, in both orders and at random, as a goal cancels a step whose
// message the outbox is sending: neither waits for the other forever
// (the withdrawn counters deadlocked here: each side read the other's
// row FOR SHARE), and the visits are counted with their messages as
// both left them.
func TestFunnelCountersVisitAndMessage(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		w := &funnelWorld{bound: map[string]map[int64][2]string{"acme": {}}}
		n := 60
		if s.Dialect() == "sqlite" {
			n = 20
		}
		var runs []*store.WorkflowRun
		for i := range n {
			m := seedMember(t, s, "acme", fmt.Sprintf("wm-vm-%d", i))
			wake := t0.Add(time.Hour)
			runs = append(runs, &store.WorkflowRun{MemberID: m, BrandID: "acme", Workflow: "recall", Version: "v1", TriggerKey: "vm",
				Step: "hello", WakeAt: &wake, StartedAt: t0.Add(time.Duration(i) * time.Hour)})
		}
		started, err := s.StartRuns(ctx, runs)
		if err != nil || len(started) != n {
			t.Fatalf("starting runs: %d, %v", len(started), err)
		}
		key := func(r *store.WorkflowRun) string { return fmt.Sprintf("vm-%d", r.ID) }
		for _, r := range started {
			if _, err := s.AddOutbox(ctx, &store.OutboxMessage{IdempotencyKey: key(r), Channel: "wecom", Recipient: "wm", Kind: "text", Payload: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.MoveRun(ctx, store.RunMove{RunID: r.ID, Seq: r.WakeSeq, Step: "hello", Visit: 1, At: t0.Add(time.Hour),
				StepState: store.StepSending, OutboxKey: key(r)}); err != nil {
				t.Fatal(err)
			}
		}
		checkCounted(t, s, w, "sending")
		cancel := func(r *store.WorkflowRun) string {
			return fmt.Sprintf(`UPDATE run_steps SET state = 'cancelled', outcome = 'goal' WHERE run_id = %d AND step_id = 'hello'`, r.ID)
		}
		send := func(r *store.WorkflowRun) string {
			return fmt.Sprintf(`UPDATE outbox_messages SET state = 'sent', delivery = 'pending' WHERE idempotency_key = '%s'`, key(r))
		}
		// held writes first inside a transaction that stays open a while,
		// then other writes: it waits (PostgreSQL: for the lock held;
		// SQLite: for the one writer) and must not deadlock.
		held := func(r *store.WorkflowRun, first, other string) {
			t.Helper()
			in := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				<-in
				done <- store.Exec(s, other)
			}()
			err := store.InTx(s, func(exec func(string, ...any) error) error {
				if err := exec(first); err != nil {
					return err
				}
				close(in)
				time.Sleep(50 * time.Millisecond)
				return nil
			})
			if err != nil {
				t.Fatalf("run %d: %v", r.ID, err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run %d: %v", r.ID, err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("run %d: the second write still waits after 20 s", r.ID)
			}
		}
		// The visit first, its message while the visit's transaction is
		// open; then the message first.
		held(started[0], cancel(started[0]), send(started[0]))
		held(started[1], send(started[1]), cancel(started[1]))
		checkCounted(t, s, w, "one visit then its message, one message then its visit")
		// The rest at random, each pair from two goroutines at once.
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for _, r := range started[2:] {
			for _, q := range []string{cancel(r), send(r)} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := store.Exec(s, q); err != nil {
						errs <- err
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		got, err := s.SendStatsOf(ctx, "acme", "recall", store.FunnelFilter{})
		if err != nil {
			t.Fatal(err)
		}
		want := []store.SendStat{{Step: "hello", State: store.StepCancelled, OutboxState: store.OutboxSent, Delivery: "pending", N: int64(n)}}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("send stats (-want +got):\n%s", diff)
		}
		checkCounted(t, s, w, "visits and messages changed at once")
		fold(t, s, 1000)
		checkCounted(t, s, w, "folded")
	})
}
