package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
)

// Task types handled by every worker.
const (
	// TypePruneInbox deletes processed inbox rows past retention.
	TypePruneInbox = "maintenance:prune_inbox"
)

// inboxRetention is how long processed inbox rows guard against
// redeliveries; platforms retry within minutes.
const inboxRetention = 7 * 24 * time.Hour

func (a *App) registerTasks(mux *asynq.ServeMux) {
	mux.HandleFunc(TypePruneInbox, a.pruneInbox)
}

// registerPeriodic registers periodic tasks. The scheduler runs on every
// replica, so each periodic task is made unique for its period: a second
// replica's enqueue in the same period is refused by asynq, and the
// handlers are idempotent in any case.
func (a *App) registerPeriodic(s *asynq.Scheduler) error {
	if _, err := s.Register("@hourly", asynq.NewTask(TypePruneInbox, nil),
		asynq.Queue(QueueLow), asynq.Unique(55*time.Minute), asynq.MaxRetry(3)); err != nil {
		return fmt.Errorf("registering %s: %w", TypePruneInbox, err)
	}
	return nil
}

func (a *App) pruneInbox(ctx context.Context, _ *asynq.Task) error {
	n, err := a.Store.PruneInbox(ctx, time.Now().Add(-inboxRetention))
	if err != nil {
		return fmt.Errorf("pruning inbox: %w", err)
	}
	if n > 0 {
		a.Log.Info("inbox pruned", slog.Int64("deleted", n))
	}
	return nil
}
