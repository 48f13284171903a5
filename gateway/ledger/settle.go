package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrmgw/scrmgw/store"
)

// AutoSettle settles each day's commissions by itself (T+1): run every
// few minutes on every replica, it settles the days that are over (After
// past midnight in Location) and not settled yet, each day by one
// replica (a claim in the database), retrying a failed day at its next
// run until it succeeds. A store whose ledger does not reconcile is
// reported (an error log, the metric, the settlement's and the run's
// status unreconciled), not settled silently.
type AutoSettle struct {
	Store    *store.Store
	Location *time.Location
	// After is how long after midnight a day is settled. Default 30m.
	After time.Duration
	// CatchUp is how many days back a run looks for days never settled
	// (the gateway was down). Default 7.
	CatchUp int
	// Stale is how long a claim holds before another replica may take
	// it over (its replica died mid-way). Default 30m.
	Stale time.Duration
	Log   *slog.Logger
	// Metrics, when set, counts runs and unreconciled stores.
	Metrics *SettleMetrics
}

// SettleMetrics are the automatic settlement's Prometheus metrics.
type SettleMetrics struct {
	// Runs counts the days settled by result: settled, unreconciled,
	// failed.
	Runs *prometheus.CounterVec
	// Unreconciled is the number of store settlements of the last day
	// settled whose ledger does not reconcile.
	Unreconciled prometheus.Gauge
}

// NewSettleMetrics makes the metrics and registers them on reg.
func NewSettleMetrics(reg prometheus.Registerer) *SettleMetrics {
	m := &SettleMetrics{
		Runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scrmgw_ledger_settlement_runs_total",
			Help: "Automatic T+1 settlements of a day, by result (settled, unreconciled, failed)."}, []string{"result"}),
		Unreconciled: prometheus.NewGauge(prometheus.GaugeOpts{Name: "scrmgw_ledger_unreconciled_stores",
			Help: "Store settlements of the last day settled whose commission ledger does not add up to net sales."}),
	}
	if reg != nil {
		reg.MustRegister(m.Runs, m.Unreconciled)
	}
	return m
}

// DueDays are the days a run at now settles: the CatchUp days up to the
// last one that is over by After, oldest first.
func (a *AutoSettle) DueDays(now time.Time) []string {
	after := a.After
	if after <= 0 {
		after = 30 * time.Minute
	}
	n := a.CatchUp
	if n <= 0 {
		n = 7
	}
	t := now.In(a.Location)
	today := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, a.Location)
	last := today.AddDate(0, 0, -1)
	if now.Before(today.Add(after)) {
		last = last.AddDate(0, 0, -1)
	}
	days := make([]string, 0, n)
	for i := n - 1; i >= 0; i-- {
		days = append(days, last.AddDate(0, 0, -i).Format(time.DateOnly))
	}
	return days
}

// Run settles the due days not settled yet, as holder, and returns those
// this call settled. It fails when a day could not be settled (the
// queue retries; so does the next run).
func (a *AutoSettle) Run(ctx context.Context, holder string, now time.Time) ([]string, error) {
	log := a.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stale := a.Stale
	if stale <= 0 {
		stale = 30 * time.Minute
	}
	var (
		settled []string
		errs    []error
	)
	for _, day := range a.DueDays(now) {
		claimed, err := a.Store.ClaimSettlementRun(ctx, day, holder, now, now.Add(-stale))
		if err != nil {
			errs = append(errs, fmt.Errorf("claiming the settlement of %s: %w", day, err))
			continue
		}
		if !claimed {
			continue // settled, or another replica is at it
		}
		sts, err := a.Store.SettleDay(ctx, day, a.Location, now)
		if err != nil {
			a.count(store.SettlementFailed)
			log.ErrorContext(ctx, "settling the day failed; will retry", slog.String("date", day), slog.Any("error", err))
			if ferr := a.Store.FailSettlementRun(context.WithoutCancel(ctx), day, holder, err.Error()); ferr != nil {
				err = errors.Join(err, ferr)
			}
			errs = append(errs, fmt.Errorf("settling %s: %w", day, err))
			continue
		}
		unreconciled := 0
		for _, st := range sts {
			if st.Status != store.SettlementUnreconciled {
				continue
			}
			unreconciled++
			log.ErrorContext(ctx, "store ledger does not reconcile; settlement held as unreconciled",
				slog.String("date", day), slog.String("store", st.StoreID), slog.String("brand", st.BrandID),
				slog.Int64("net_cents", st.NetCents), slog.Int("lines", st.Lines))
		}
		if err := a.Store.FinishSettlementRun(ctx, day, holder, len(sts), unreconciled, now); err != nil {
			errs = append(errs, fmt.Errorf("recording the settlement of %s: %w", day, err))
			continue
		}
		if a.Metrics != nil {
			a.Metrics.Unreconciled.Set(float64(unreconciled))
		}
		result := store.SettlementSettled
		if unreconciled > 0 {
			result = store.SettlementUnreconciled
		}
		a.count(result)
		log.InfoContext(ctx, "day settled", slog.String("date", day), slog.Int("stores", len(sts)), slog.Int("unreconciled", unreconciled))
		settled = append(settled, day)
	}
	return settled, errors.Join(errs...)
}

func (a *AutoSettle) count(result string) {
	if a.Metrics != nil {
		a.Metrics.Runs.WithLabelValues(result).Inc()
	}
}
