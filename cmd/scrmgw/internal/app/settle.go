package app

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/gateway/ledger"
	"github.com/scrmgw/scrmgw/gateway/queue"
)

// TypeSettle settles the days that are over (T+1 commissions).
const TypeSettle = "ledger:settle"

// settleEvery is how often the settlement task runs; a day settles at the
// first run after ledger.settle_after past its end.
const settleEvery = 5 * time.Minute

// settleMetrics are the automatic settlement's metrics (on /metrics).
var settleMetrics = ledger.NewSettleMetrics(nil)

// autoSettle is the automatic T+1 settlement, in the ledger's zone.
func (a *App) autoSettle() *ledger.AutoSettle {
	return &ledger.AutoSettle{Store: a.Store, Location: a.ledgerZone(), After: a.Config.Ledger.SettleAfter, Log: a.Log, Metrics: settleMetrics}
}

// registerSettle handles TypeSettle: every replica's worker may run it;
// each day is claimed in the database, so one of them settles it.
func (a *App) registerSettle(mux *asynq.ServeMux) {
	holder := instanceName()
	settle := a.autoSettle()
	mux.HandleFunc(TypeSettle, func(ctx context.Context, _ *asynq.Task) error {
		_, err := settle.Run(ctx, holder, a.now())
		return err
	})
}

// registerSettlePeriodic schedules TypeSettle, unique per period across
// the replicas' schedulers, retried a few times on failure (the next
// period retries as well).
func registerSettlePeriodic(s *asynq.Scheduler) error {
	if _, err := s.Register(fmt.Sprintf("@every %s", settleEvery), asynq.NewTask(TypeSettle, nil),
		asynq.Queue(queue.Low), asynq.Unique(settleEvery-30*time.Second), asynq.MaxRetry(3)); err != nil {
		return fmt.Errorf("registering %s: %w", TypeSettle, err)
	}
	return nil
}

// now is the app's clock (tests set a virtual one).
func (a *App) now() time.Time {
	if a.clock != nil {
		return a.clock()
	}
	return time.Now()
}
