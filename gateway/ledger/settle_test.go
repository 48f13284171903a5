package ledger_test

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrmgw/scrmgw/gateway/ledger"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestAutoSettle: the previous day settles by itself after the close,
// once even when two replicas run the task at the same time; a store
// whose ledger does not add up is reported unreconciled.
func TestAutoSettle(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		shanghai, _ := time.LoadLocation("Asia/Shanghai")
		must(s.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "ACME"}))
		for _, id := range []string{"sh-1", "gz-1"} {
			must(s.CreateRetailStore(ctx, &store.RetailStore{ID: id, Name: id, BrandIDs: []string{"acme"}, Lat: 31, Lng: 121, Active: true}))
		}
		m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: "acme"})
		must(err)
		rules, err := ledger.ParseRules("r.yaml", []byte(`brands: {"*": [{category: "*", guide: 3%, store: 5%}]}`))
		must(err)
		day := "2026-12-06"
		order := func(no, st string, withLines bool) {
			o := &store.Order{BrandID: "acme", OrderNo: no, MemberID: m.ID, StoreID: &st, Channel: "pos", Currency: "CNY", Attribution: "none",
				PlacedAt: time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC), SettleDate: day, Items: []store.OrderItem{{SKU: "A", Qty: 1, PriceCents: 10000}}}
			var lines []store.CommissionLine
			if withLines {
				lines = rules.Lines(o, ledger.Parties{Store: st, Guide: "g-li"}, day)
			}
			_, err := s.RecordOrder(ctx, o, lines)
			must(err)
		}
		order("SO-1", "sh-1", true)
		// gz-1's order has no ledger lines (recorded with no rules): its
		// day does not reconcile.
		order("SO-2", "gz-1", false)

		reg := prometheus.NewRegistry()
		metrics := ledger.NewSettleMetrics(reg)
		auto := func() *ledger.AutoSettle {
			return &ledger.AutoSettle{Store: s, Location: shanghai, After: 30 * time.Minute, CatchUp: 1, Metrics: metrics}
		}
		// 00:10 in Shanghai: the day closed ten minutes ago; too early.
		early := time.Date(2026, 12, 7, 0, 10, 0, 0, shanghai)
		if got := auto().DueDays(early); !slices.Equal(got, []string{"2026-12-05"}) {
			t.Errorf("due at 00:10 = %v", got)
		}
		// 00:40: two replicas fire the task at once.
		now := time.Date(2026, 12, 7, 0, 40, 0, 0, shanghai)
		var (
			wg  sync.WaitGroup
			mu  sync.Mutex
			all []string
		)
		for _, holder := range []string{"replica-a", "replica-b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				days, err := auto().Run(ctx, holder, now)
				if err != nil {
					t.Errorf("%s: %v", holder, err)
				}
				mu.Lock()
				all = append(all, days...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if !slices.Equal(all, []string{day}) {
			t.Fatalf("days settled by the two replicas = %v, want %s once", all, day)
		}
		run, err := s.SettlementRunOf(ctx, day)
		must(err)
		if run.Attempts != 1 || run.Status != store.SettlementUnreconciled || run.Stores != 2 || run.Unreconciled != 1 || run.FinishedAt == nil {
			t.Errorf("run = %+v", run)
		}
		sts, err := s.Settlements(ctx, day, "")
		must(err)
		status := map[string]string{}
		for _, st := range sts {
			status[st.StoreID] = st.Status
		}
		if status["sh-1"] != store.SettlementSettled || status["gz-1"] != store.SettlementUnreconciled {
			t.Errorf("statuses = %v", status)
		}
		got := map[string]float64{}
		mfs, err := reg.Gather()
		must(err)
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				name := mf.GetName()
				for _, l := range m.GetLabel() {
					name += " " + l.GetName() + "=" + l.GetValue()
				}
				got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		want := map[string]float64{"scrmgw_ledger_settlement_runs_total result=unreconciled": 1, "scrmgw_ledger_unreconciled_stores": 1}
		if !maps.Equal(got, want) {
			t.Errorf("metrics = %v, want %v", got, want)
		}
		// The next run finds the day done.
		if days, err := auto().Run(ctx, "replica-a", now.Add(5*time.Minute)); err != nil || len(days) != 0 {
			t.Errorf("next run = %v, %v", days, err)
		}

	})
}

// TestSettlementRunRetried: a failed attempt gives the day back; the next
// run (another replica's too) takes it again.
func TestSettlementRunRetried(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
		claim := func(holder string, at time.Time) bool {
			t.Helper()
			ok, err := s.ClaimSettlementRun(ctx, "2026-12-06", holder, at, at.Add(-30*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !claim("a", now) || claim("b", now) {
			t.Fatal("first claim: a wins, b does not")
		}
		if err := s.FailSettlementRun(ctx, "2026-12-06", "a", "database went away"); err != nil {
			t.Fatal(err)
		}
		if !claim("b", now.Add(time.Minute)) {
			t.Fatal("a failed day is not taken again")
		}
		// b dies mid-way: after the stale time, a takes over.
		if claim("a", now.Add(10*time.Minute)) || !claim("a", now.Add(40*time.Minute)) {
			t.Fatal("a stale claim is not taken over (or a fresh one is)")
		}
		if err := s.FinishSettlementRun(ctx, "2026-12-06", "a", 3, 0, now.Add(41*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if claim("b", now.Add(24*time.Hour)) {
			t.Error("a finished day is claimed again")
		}
		run, _ := s.SettlementRunOf(ctx, "2026-12-06")
		if run.Attempts != 3 || run.Status != store.SettlementSettled || run.LastError != "" {
			t.Errorf("run = %+v", run)
		}
	})
}
