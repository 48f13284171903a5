package store_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// funnelWorld is generated runs of two workflows of two brands, moved
// through their steps by MoveRun as the engine moves them, with what a
// test knows independently of the funnel's queries: each member's current
// binding per brand.
type funnelWorld struct {
	// bound[brand][member] is the member's current guide and store.
	bound map[string]map[int64][2]string
}

// genFunnel writes the world: members, bindings (some ended and made
// again elsewhere), runs started over ten days, each moved through random
// steps (revisits included) with done, skipped, failed and sending
// visits, errors and reasons, messages in the outbox in every state, and
// ends (converted, done, exited).
func genFunnel(t *testing.T, s *store.Store) *funnelWorld {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(17, 23))
	brands := []string{"acme", "zeta"}
	seedBrands(t, s, brands...)
	w := &funnelWorld{bound: map[string]map[int64][2]string{}}
	guides := []string{"g1", "g2", "g3", "g4", "g5"}
	storeOf := map[string]string{"g1": "st1", "g2": "st1", "g3": "st2", "g4": "st2", "g5": "st3"}
	var members []int64
	for i := range 40 {
		members = append(members, seedMember(t, s, brands[i%2], fmt.Sprintf("wm-funnel-%d", i)))
	}
	for _, b := range brands {
		w.bound[b] = map[int64][2]string{}
		var bs []store.Binding
		for _, m := range members {
			if rng.IntN(6) == 0 {
				continue // not bound in this brand
			}
			g := guides[rng.IntN(len(guides))]
			bs = append(bs, store.Binding{MemberID: m, BrandID: b, GuideID: g, StoreID: storeOf[g], Reason: "manual"})
			w.bound[b][m] = [2]string{g, storeOf[g]}
		}
		if _, err := s.InsertBindings(ctx, bs); err != nil {
			t.Fatal(err)
		}
		// A few move: their old binding ends, a new one is current.
		for _, m := range members[:8] {
			old, ok := w.bound[b][m]
			if !ok {
				continue
			}
			if err := store.Exec(s, `UPDATE bindings SET ended_at = ? WHERE member_id = ? AND brand_id = ? AND ended_at IS NULL`, t0, m, b); err != nil {
				t.Fatal(err)
			}
			g := guides[(slices.Index(guides, old[0])+1)%len(guides)]
			if _, err := s.InsertBindings(ctx, []store.Binding{{MemberID: m, BrandID: b, GuideID: g, StoreID: storeOf[g], Reason: "manual"}}); err != nil {
				t.Fatal(err)
			}
			w.bound[b][m] = [2]string{g, storeOf[g]}
		}
	}

	steps := []string{"wait", "hello", "check", "bye"}
	sends := map[string]bool{"hello": true, "bye": true}
	key := 0
	for _, b := range brands {
		for _, wf := range []string{"recall", "winback"} {
			var runs []*store.WorkflowRun
			for _, m := range members {
				if wf == "winback" && rng.IntN(2) == 0 {
					continue
				}
				start := t0.Add(time.Duration(rng.IntN(10*24*60)) * time.Minute)
				wake := start.Add(time.Hour)
				runs = append(runs, &store.WorkflowRun{MemberID: m, BrandID: b, Workflow: wf, Version: "v1",
					TriggerKey: fmt.Sprintf("s%d", rng.IntN(1000)), Step: "wait", WakeAt: &wake, StartedAt: start})
			}
			started, err := s.StartRuns(ctx, runs)
			if err != nil || len(started) != len(runs) {
				t.Fatalf("starting runs: %d of %d, %v", len(started), len(runs), err)
			}
			for _, r := range started {
				step, visit, seq, at := r.Step, 1, r.WakeSeq, r.StartedAt
				for move := range rng.IntN(6) {
					at = at.Add(time.Hour)
					m := store.RunMove{RunID: r.ID, Seq: seq, Step: step, Visit: visit, At: at}
					switch x := rng.IntN(10); {
					case sends[step] && x < 5:
						key++
						k := fmt.Sprintf("funnel-%d", key)
						m.StepState, m.OutboxKey, m.Sent = store.StepDone, k, 1
						if rng.IntN(8) > 0 { // now and then the key's row is gone
							msg := &store.OutboxMessage{IdempotencyKey: k, Channel: "wecom", Recipient: "wm", Kind: "text", Payload: []byte("{}")}
							if _, err := s.AddOutbox(ctx, msg); err != nil {
								t.Fatal(err)
							}
							state := []string{store.OutboxPending, store.OutboxSent, store.OutboxSent, store.OutboxFailed}[rng.IntN(4)]
							delivery := []string{"", "delivered", "read", "undelivered"}[rng.IntN(4)]
							failure := ""
							if state == store.OutboxFailed {
								failure = []string{"refused", "invalid_recipient"}[rng.IntN(2)]
							}
							if err := store.Exec(s, `UPDATE outbox_messages SET state = ?, delivery = ?, failure = ? WHERE idempotency_key = ?`,
								state, delivery, failure, k); err != nil {
								t.Fatal(err)
							}
						}
					case x < 6:
						m.StepState, m.Reason = store.StepSkipped, []string{"cap", "quota", "consent"}[rng.IntN(3)]
					case x < 7:
						m.StepState, m.Reason, m.Error = store.StepFailed, "unreachable", "no channel"
					default:
						m.StepState = store.StepDone
						if x == 9 {
							m.Error = "flaky"
						}
					}
					last := move == 4 || rng.IntN(5) == 0
					if last {
						m.End, m.EndReason = []string{store.RunConverted, store.RunDone, store.RunExited}[rng.IntN(3)], "test"
					} else {
						m.Next = steps[rng.IntN(len(steps))]
						next := at.Add(time.Hour)
						m.WakeAt = &next
						if rng.IntN(3) == 0 {
							m.NextState = store.StepWaiting
						}
					}
					moved, v, err := s.MoveRun(ctx, m)
					if err != nil || !moved {
						t.Fatalf("moving run %d: %v, %v", r.ID, moved, err)
					}
					seq++
					if last {
						break
					}
					step, visit = m.Next, v
				}
			}
		}
	}
	return w
}

// recompute counts the funnel the plain way: every run and step visit of
// the database read one by one, selected in Go.
func (w *funnelWorld) recompute(t *testing.T, s *store.Store, brand, workflow string, f store.FunnelFilter) (*store.RunStats, []store.SendStat) {
	t.Helper()
	ctx := context.Background()
	st := &store.RunStats{States: map[string]int64{}}
	by := map[string]*store.StepStats{}
	reached := map[string]map[int64]bool{}
	sends := map[store.SendStat]int64{}
	var after int64
	for {
		runs, err := s.Runs(ctx, store.RunFilter{AfterID: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 0 {
			break
		}
		after = runs[len(runs)-1].ID
		for _, r := range runs {
			if r.BrandID != brand || r.Workflow != workflow ||
				!f.From.IsZero() && r.StartedAt.Before(f.From) || !f.To.IsZero() && !r.StartedAt.Before(f.To) {
				continue
			}
			b, ok := w.bound[brand][r.MemberID]
			if f.StoreID != "" && (!ok || b[1] != f.StoreID) || f.GuideID != "" && (!ok || b[0] != f.GuideID) {
				continue
			}
			st.States[r.State]++
			st.Sent += int64(r.Sent)
			visits, err := s.RunSteps(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range visits {
				c := by[v.StepID]
				if c == nil {
					c = &store.StepStats{Step: v.StepID}
					by[v.StepID], reached[v.StepID] = c, map[int64]bool{}
				}
				reached[v.StepID][r.ID] = true
				switch v.State {
				case store.StepDone:
					c.Done++
				case store.StepSkipped:
					c.Skipped++
				case store.StepFailed:
					c.Failed++
				case store.StepWaiting:
					c.Waiting++
				case store.StepPending, store.StepRunning:
					c.Pending++
				case store.StepSending:
					c.Sending++
				case store.StepCancelled:
					c.Canceled++
				}
				if v.Failures > 0 {
					c.Errors++
				}
				if v.OutboxKey == "" && v.State != store.StepSkipped && v.State != store.StepFailed {
					continue
				}
				k := store.SendStat{Step: v.StepID, State: v.State, Reason: v.Reason}
				if v.OutboxKey != "" {
					if o, err := s.OutboxByKey(ctx, v.OutboxKey); err == nil {
						k.OutboxState, k.Delivery, k.Failure = o.State, o.Delivery, o.Failure
					}
				}
				sends[k]++
			}
		}
	}
	for id, c := range by {
		c.Reached = int64(len(reached[id]))
		st.Steps = append(st.Steps, *c)
	}
	slices.SortFunc(st.Steps, func(a, b store.StepStats) int { return cmp.Compare(a.Step, b.Step) })
	var out []store.SendStat
	for k, n := range sends {
		k.N = n
		out = append(out, k)
	}
	return st, sortSendStats(out)
}

func sortSendStats(ss []store.SendStat) []store.SendStat {
	slices.SortFunc(ss, func(a, b store.SendStat) int {
		return cmp.Or(cmp.Compare(a.Step, b.Step), cmp.Compare(a.State, b.State), cmp.Compare(a.Reason, b.Reason),
			cmp.Compare(a.OutboxState, b.OutboxState), cmp.Compare(a.Delivery, b.Delivery), cmp.Compare(a.Failure, b.Failure))
	})
	return ss
}

// TestFunnelMatchesRecount compares the funnel's queries (RunStatsOf,
// SendStatsOf: step visits counted on their copies of the run's brand,
// workflow and start time) with the same counts made one run at a time,
// under every kind of filter; then blanks those copies as a database
// migrated before 0040_funnel_steps has them and checks the migration's
// backfill gives the same funnel again.
func TestFunnelMatchesRecount(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		w := genFunnel(t, s)
		day := func(d int) time.Time { return t0.Truncate(24*time.Hour).AddDate(0, 0, d) }
		filters := map[string]store.FunnelFilter{
			"all":                {},
			"period":             {From: day(2), To: day(6)},
			"from only":          {From: day(5)},
			"to only":            {To: day(3)},
			"empty period":       {From: day(20), To: day(21)},
			"store":              {StoreID: "st1"},
			"store and period":   {StoreID: "st2", From: day(1), To: day(8)},
			"guide":              {GuideID: "g3"},
			"guide of a store":   {StoreID: "st1", GuideID: "g2"},
			"guide not of store": {StoreID: "st1", GuideID: "g5"},
			"nobody's store":     {StoreID: "st9"},
		}
		check := func(t *testing.T, when string) (nonEmpty int) {
			t.Helper()
			for _, b := range []string{"acme", "zeta"} {
				for _, wf := range []string{"recall", "winback", "none"} {
					for name, f := range filters {
						wantRuns, wantSends := w.recompute(t, s, b, wf, f)
						got, err := s.RunStatsOf(ctx, b, wf, f)
						if err != nil {
							t.Fatal(err)
						}
						if diff := gocmp.Diff(wantRuns, got); diff != "" {
							t.Errorf("%s: %s/%s %s: run stats (-recount +funnel):\n%s", when, b, wf, name, diff)
						}
						gotSends, err := s.SendStatsOf(ctx, b, wf, f)
						if err != nil {
							t.Fatal(err)
						}
						if diff := gocmp.Diff(wantSends, sortSendStats(gotSends)); diff != "" {
							t.Errorf("%s: %s/%s %s: send stats (-recount +funnel):\n%s", when, b, wf, name, diff)
						}
						if len(wantRuns.Steps) > 0 && len(wantSends) > 0 {
							nonEmpty++
						}
					}
				}
			}
			return nonEmpty
		}
		if n := check(t, "as written"); n < 30 {
			t.Errorf("only %d of the funnels compared had steps and sends: the generated data is too thin", n)
		}

		// A database migrated before 0037: the visits have no copies.
		if err := store.Exec(s, `UPDATE run_steps SET brand_id = '', workflow = '', run_started_at = NULL`); err != nil {
			t.Fatal(err)
		}
		if err := store.Exec(s, `DELETE FROM schema_migrations WHERE id = '0040_funnel_steps'`); err != nil {
			t.Fatal(err)
		}
		if st, err := s.RunStatsOf(ctx, "acme", "recall", store.FunnelFilter{}); err != nil || len(st.Steps) != 0 {
			t.Fatalf("before the backfill the funnel reads no visits: %+v, %v", st, err)
		}
		applied, err := s.Migrate(ctx)
		if err != nil || !slices.Equal(applied, []string{"0040_funnel_steps"}) {
			t.Fatalf("migrating again: %v, %v", applied, err)
		}
		check(t, "backfilled")
	})
}
