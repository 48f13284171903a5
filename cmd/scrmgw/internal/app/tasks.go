package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/gateway/inbox"
	"github.com/scrmgw/scrmgw/gateway/outbox"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// Task types handled by every worker.
const (
	// TypePruneInbox deletes processed inbox rows past retention.
	TypePruneInbox = "maintenance:prune_inbox"
	// TypeRetention strips personal data past privacy.retention from
	// message payloads and event attributes, and deletes audit entries
	// past privacy.audit_retention.
	TypeRetention = "maintenance:privacy_retention"
	// TypeSweep queues inbox and outbox rows whose task was lost, and
	// recovers sends whose worker died mid-send (Sender.Recover).
	TypeSweep = "maintenance:sweep"
)

// sweepAge is how old pending work must be before the periodic sweep
// queues it again.
const sweepAge = time.Minute

// inboxRetention is how long processed inbox rows guard against
// redeliveries; platforms retry within minutes.
const inboxRetention = 7 * 24 * time.Hour

func (a *App) registerTasks(mux *asynq.ServeMux) {
	mux.HandleFunc(TypePruneInbox, a.pruneInbox)
	mux.HandleFunc(TypeRetention, a.retention)
	mux.HandleFunc(TypeSweep, func(ctx context.Context, _ *asynq.Task) error {
		err := inbox.Sweep(ctx, a.Store, a.Queue, sweepAge, a.Log)
		_, rerr := a.sender.Recover(ctx, a.Config.Send.Lease)
		var herr error
		if a.handovers != nil {
			herr = a.handovers.Sweep(ctx, sweepAge)
		}
		return errors.Join(err, rerr, herr, a.sweepLive(ctx))
	})
	mux.HandleFunc(inbox.TypeProcess, a.processor.ProcessTask)
	mux.HandleFunc(inbox.TypeBatch, a.recorder.BatchTask)
	mux.HandleFunc(outbox.TypeSend, a.sender.SendTask)
	mux.HandleFunc(outbox.TypeCheckDelivery, a.sender.CheckTask)
	mux.HandleFunc(outbox.TypeWithdraw, a.sender.WithdrawTask)
	if a.handovers != nil {
		a.handovers.Register(mux)
	}
	a.registerSettle(mux)
	a.registerLive(mux)
	holder := instanceName()
	mux.HandleFunc(TypeMomentsPoll, func(ctx context.Context, _ *asynq.Task) error {
		return a.pollMoments(ctx, holder)
	})
	mux.HandleFunc(TypeGroupDeliveries, a.checkGroupDeliveries)
	mux.HandleFunc(TypeFunnelFold, a.foldFunnel)
}

// registerPeriodic registers periodic tasks. The scheduler runs on every
// replica, so each periodic task is made unique for its period: a second
// replica's enqueue in the same period is refused by asynq, and the
// handlers are idempotent in any case.
func (a *App) registerPeriodic(s *asynq.Scheduler) error {
	if _, err := s.Register("@hourly", asynq.NewTask(TypePruneInbox, nil),
		asynq.Queue(queue.Low), asynq.Unique(55*time.Minute), asynq.MaxRetry(3)); err != nil {
		return fmt.Errorf("registering %s: %w", TypePruneInbox, err)
	}
	if a.Config.Privacy.Retention > 0 || a.Config.Privacy.AuditRetention > 0 {
		if _, err := s.Register("@hourly", asynq.NewTask(TypeRetention, nil),
			asynq.Queue(queue.Low), asynq.Unique(55*time.Minute), asynq.MaxRetry(3)); err != nil {
			return fmt.Errorf("registering %s: %w", TypeRetention, err)
		}
	}
	// The workflow sweep hands the next horizon's wakes to asynq, re-hands
	// lost ones and fires schedule triggers; it takes a lease, so one
	// replica does the work.
	if _, err := s.Register("@every 30s", asynq.NewTask(engine.TypeSweep, nil),
		asynq.Queue(queue.Workflows), asynq.Unique(25*time.Second), asynq.MaxRetry(0)); err != nil {
		return fmt.Errorf("registering %s: %w", engine.TypeSweep, err)
	}
	if _, err := s.Register("@every 1m", asynq.NewTask(TypeSweep, nil),
		asynq.Queue(queue.Low), asynq.Unique(50*time.Second), asynq.MaxRetry(0)); err != nil {
		return fmt.Errorf("registering %s: %w", TypeSweep, err)
	}
	if _, err := s.Register("@every 1m", asynq.NewTask(TypeMomentsPoll, nil),
		asynq.Queue(queue.Low), asynq.Unique(50*time.Second), asynq.MaxRetry(0)); err != nil {
		return fmt.Errorf("registering %s: %w", TypeMomentsPoll, err)
	}
	if _, err := s.Register("@every 5m", asynq.NewTask(TypeGroupDeliveries, nil),
		asynq.Queue(queue.Low), asynq.Unique(4*time.Minute), asynq.MaxRetry(0)); err != nil {
		return fmt.Errorf("registering %s: %w", TypeGroupDeliveries, err)
	}
	if _, err := s.Register(funnelFoldEvery, asynq.NewTask(TypeFunnelFold, nil),
		asynq.Queue(queue.Low), asynq.Unique(25*time.Second), asynq.MaxRetry(0)); err != nil {
		return fmt.Errorf("registering %s: %w", TypeFunnelFold, err)
	}
	return registerSettlePeriodic(s)
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

// Retention batches: rows of each kind per statement, and the time one run
// may take (the next hour's run goes on).
const (
	retentionBatch  = 500
	retentionBudget = 5 * time.Minute
	retentionLease  = "privacy.retention"
)

// retention strips personal data older than privacy.retention from
// inbox and outbox payloads and event attributes, and deletes audit
// entries older than privacy.audit_retention, in batches, on one replica
// at a time (a lease, besides the task's uniqueness).
func (a *App) retention(ctx context.Context, _ *asynq.Task) error {
	keep, keepAudit := a.Config.Privacy.Retention, a.Config.Privacy.AuditRetention
	if keep <= 0 && keepAudit <= 0 {
		return nil
	}
	holder := fmt.Sprintf("retention-%d", time.Now().UnixNano())
	ok, err := a.Store.AcquireLease(ctx, retentionLease, holder, time.Now(), retentionBudget+time.Minute)
	if err != nil || !ok {
		return err
	}
	defer a.Store.ReleaseLease(context.WithoutCancel(ctx), retentionLease, holder)
	deadline := time.Now().Add(retentionBudget)
	if keep > 0 {
		if err := a.stripExpired(ctx, keep, deadline); err != nil {
			return err
		}
	}
	if keepAudit > 0 {
		return a.pruneAudit(ctx, keepAudit, deadline)
	}
	return nil
}

func (a *App) stripExpired(ctx context.Context, keep time.Duration, deadline time.Time) error {
	cutoff := time.Now().Add(-keep)
	var total store.Retained
	for {
		r, err := a.Store.StripExpired(ctx, cutoff, retentionBatch)
		if err != nil {
			return fmt.Errorf("stripping expired personal data: %w", err)
		}
		total.Add(r)
		if !r.More || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	if total.Total() > 0 {
		a.Log.Info("expired personal data stripped", slog.Int64("inbox", total.Inbox), slog.Int64("outbox", total.Outbox),
			slog.Int64("events", total.Events), slog.Int64("run_steps", total.Steps), slog.Int64("send_attempts", total.Attempts),
			slog.Int64("handovers", total.Handovers), slog.Duration("retention", keep))
	}
	return nil
}

// pruneAudit deletes audit entries older than keep and, when it deleted
// some, says so in the audit trail itself (action audit.prune, actor
// "retention", resource_ids deleted=N&before=T).
func (a *App) pruneAudit(ctx context.Context, keep time.Duration, deadline time.Time) error {
	before := time.Now().Add(-keep).UTC().Truncate(time.Second)
	var total int64
	for {
		n, err := a.Store.PruneAudit(ctx, before, retentionBatch)
		total += n
		if err != nil {
			return fmt.Errorf("pruning the audit log: %w", err)
		}
		if n < retentionBatch || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	if total == 0 {
		return nil
	}
	a.Log.Info("audit log pruned", slog.Int64("deleted", total), slog.Duration("audit_retention", keep))
	return a.Store.AppendAudit(ctx, []store.AuditEntry{{Actor: "retention", Action: store.AuditPrune,
		ResourceIDs: fmt.Sprintf("deleted=%d&before=%s", total, store.AuditIDValue(before.Format(time.RFC3339)))}})
}
