package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
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

// TestFunnelCountersMatchRecount checks that the funnel counters are the
// recount of the rows after every kind of write: the generated runs'
// moves (sends with their messages in every state, skips, failures,
// revisits, ends), then messages settling and delivered after their
// step ended, messages deleted, runs ended with their open steps
// cancelled in one statement, visits and runs deleted as the retention
// job deletes them, runs' sends counted; and that the
// migration fills them from the rows there are.
func TestFunnelCountersMatchRecount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := genFunnel(t, s)
		if n := checkCounted(t, s, w, "as written"); n < 30 {
			t.Errorf("only %d of the funnels compared had steps and sends: the generated data is too thin", n)
		}

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
		// Active runs end; their open steps are cancelled.
		runs, err := s.Runs(ctx, store.RunFilter{State: store.RunActive, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) < 5 {
			t.Fatalf("only %d active runs to end", len(runs))
		}
		for _, r := range runs[:len(runs)/2] {
			if ended, err := s.EndRun(ctx, r.ID, []string{store.RunConverted, store.RunExited}[rng.IntN(2)], "goal", t0.Add(300*time.Hour)); err != nil || !ended {
				t.Fatalf("ending run %d: %v, %v", r.ID, ended, err)
			}
		}
		if n := checkCounted(t, s, w, "after messages settled and runs ended"); n < 20 {
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

		// The migration fills them from the rows.
		if err := store.UndoFunnelCounts(s); err != nil {
			t.Fatal(err)
		}
		applied, err := s.Migrate(ctx)
		if err != nil || !slices.Equal(applied, []string{"0042_funnel_counts"}) {
			t.Fatalf("migrating again: %v, %v", applied, err)
		}
		checkCounted(t, s, w, "backfilled")
	})
}

// TestFunnelCountersConcurrent moves many runs of one workflow through
// the same steps from 16 workers at once, while their messages settle,
// on both databases: no move fails (no deadlock, no lost update) and the
// counters are the recount afterwards.
func TestFunnelCountersConcurrent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		w := &funnelWorld{bound: map[string]map[int64][2]string{"acme": {}}}
		n := 160
		if s.Dialect() == "sqlite" {
			n = 40 // one writer at a time: the workers queue
		}
		runs := make([]*store.WorkflowRun, n)
		for i := range runs {
			m := seedMember(t, s, "acme", fmt.Sprintf("wm-conc-%d", i))
			wake := t0.Add(time.Hour)
			runs[i] = &store.WorkflowRun{MemberID: m, BrandID: "acme", Workflow: "recall", Version: "v1", TriggerKey: "c",
				Step: "hello", WakeAt: &wake, StartedAt: t0.Add(time.Duration(i) * time.Minute)}
		}
		started, err := s.StartRuns(ctx, runs)
		if err != nil || len(started) != n {
			t.Fatalf("starting runs: %d, %v", len(started), err)
		}
		work := make(chan *store.WorkflowRun)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		begin := time.Now()
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range work {
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
					if err := store.Exec(s, `UPDATE outbox_messages SET state = 'sent', delivery = 'delivered' WHERE idempotency_key = ?`, k); err != nil {
						errs <- err
						continue
					}
					end := store.RunMove{RunID: r.ID, Seq: r.WakeSeq + 1, Step: "wait", Visit: 1, At: t0.Add(2 * time.Hour), StepState: store.StepDone}
					if r.ID%3 == 0 {
						end.End, end.EndReason = store.RunConverted, "goal"
					} else {
						end.Next, end.WakeAt = "bye", &next
					}
					if _, _, err := s.MoveRun(ctx, end); err != nil {
						errs <- fmt.Errorf("moving run %d: %w", r.ID, err)
					}
				}
			}()
		}
		for _, r := range started {
			work <- r
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		t.Logf("%d runs moved through 2 steps by 16 workers in %v", n, time.Since(begin))
		got, err := s.RunStatsOf(ctx, "acme", "recall", store.FunnelFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if got.States[store.RunConverted] != int64(len(slices.DeleteFunc(slices.Clone(started), func(r *store.WorkflowRun) bool { return r.ID%3 != 0 }))) {
			t.Errorf("converted %d", got.States[store.RunConverted])
		}
		checkCounted(t, s, w, "after concurrent moves")
	})
}
