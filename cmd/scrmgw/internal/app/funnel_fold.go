package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
)

// TypeFunnelFold folds the funnel counters' deltas into their per-day
// totals (store.FoldFunnelDeltas): reads are exact either way, the fold
// keeps the deltas they sum few.
const TypeFunnelFold = "maintenance:funnel_fold"

// The fold's batch (delta rows per transaction), the time one run may
// take (the next run goes on), and how often it runs.
const (
	funnelFoldBatch  = 20000
	funnelFoldBudget = 20 * time.Second
	funnelFoldEvery  = "@every 30s"
)

// foldFunnel folds the funnel deltas in batches until fewer than a batch
// are left or its budget is spent. One folder at a time folds (the
// store's advisory lock); another finds it busy and returns.
func (a *App) foldFunnel(ctx context.Context, _ *asynq.Task) error {
	deadline := time.Now().Add(funnelFoldBudget)
	var runs, steps int64
	for {
		f, err := a.Store.FoldFunnelDeltas(ctx, funnelFoldBatch)
		if err != nil {
			return fmt.Errorf("folding funnel deltas: %w", err)
		}
		runs, steps = runs+f.Runs, steps+f.Steps
		if f.Busy || f.Runs < funnelFoldBatch && f.Steps < funnelFoldBatch || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	if runs+steps > 0 {
		a.Log.Debug("funnel deltas folded", slog.Int64("runs", runs), slog.Int64("steps", steps))
	}
	return nil
}
