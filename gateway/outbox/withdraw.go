package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
)

// TypeWithdraw is the task that withdraws one send still waiting for a
// human step (see Sender.Withdraw).
const TypeWithdraw = "outbox:withdraw"

type withdrawPayload struct {
	ID  int64  `json:"id"`
	Why string `json:"why"`
	// Erased: the send's member was erased (store.Erasure.Withdraw): it
	// is recorded withdrawn already, and only stopped at its channel.
	Erased bool `json:"erased,omitempty"`
}

// Withdraw queues the withdrawal of the sends whose idempotency keys
// start with keyPrefix and whose delivery is still pending (a WeCom
// message task its guide has not confirmed): a run that ended (its member
// bought, its live session was cancelled or moved) takes back what its
// guides were still asked to send. It returns how many it queued; a
// withdrawal queued before (the same send) is not queued twice.
func (s *Sender) Withdraw(ctx context.Context, keyPrefix, why string) (int, error) {
	ids, err := s.store.PendingDeliveries(ctx, keyPrefix)
	if err != nil {
		return 0, fmt.Errorf("finding the pending sends of %s: %w", keyPrefix, err)
	}
	for _, id := range ids {
		if err := s.queueWithdrawal(ctx, withdrawPayload{ID: id, Why: why}); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// WithdrawErased queues the stopping of an erased member's message tasks
// at their channels (store.Erasure.Withdraw): their guides can no longer
// send them.
func (s *Sender) WithdrawErased(ctx context.Context, ws []store.Withdrawal) error {
	for _, w := range ws {
		if err := s.queueWithdrawal(ctx, withdrawPayload{ID: w.ID, Why: store.ErasedWithdrawn, Erased: true}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sender) queueWithdrawal(ctx context.Context, pl withdrawPayload) error {
	b, _ := json.Marshal(pl)
	_, err := s.queue.EnqueueContext(ctx, asynq.NewTask(TypeWithdraw, b), asynq.TaskID(fmt.Sprintf("%s:%d", TypeWithdraw, pl.ID)),
		asynq.Queue(queue.Low), asynq.MaxRetry(10))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("queueing the withdrawal of outbox %d: %w", pl.ID, err)
	}
	return nil
}

// WithdrawTask is the asynq handler of TypeWithdraw. It asks the channel
// to stop the send, then what became of it: sent before it was stopped,
// it is delivered (and told so); otherwise it is recorded failed, "withdrawn:
// <why>", and the engine is told it will not be delivered (which cancels
// the guide's confirmation task). A channel that refuses the withdrawal
// for good (the task is unknown to it) leaves the send to its regular
// checks. Retries act once: only a send still pending is settled.
func (s *Sender) WithdrawTask(ctx context.Context, t *asynq.Task) error {
	var pl withdrawPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil || pl.ID == 0 {
		return fmt.Errorf("bad %s payload: %w", TypeWithdraw, asynq.SkipRetry)
	}
	row, err := s.store.Outbox(ctx, pl.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if row.Delivery != string(adapters.DeliveryPending) && !pl.Erased {
		return nil
	}
	ch, _ := s.channels.Channel(row.Channel)
	w, ok := ch.(adapters.Withdrawer)
	if !ok {
		return nil
	}
	var m adapters.Outbound
	if err := json.Unmarshal(row.Payload, &m); err != nil {
		return fmt.Errorf("outbox %d: %v: %w", row.ID, err, asynq.SkipRetry)
	}
	err = w.Withdraw(ctx, &m, row.ExternalID)
	if pl.Erased && err == nil {
		// Recorded withdrawn by the erasure; the emptied payload leaves
		// nothing to check.
		s.log.Info("message task of an erased member stopped", slog.Int64("outbox_id", row.ID))
		return nil
	}
	if err != nil {
		if adapters.Retryable(err) {
			return fmt.Errorf("outbox %d: withdrawing: %w", row.ID, err)
		}
		s.log.Warn("the channel refused to withdraw a pending send; its checks go on", slog.Int64("outbox_id", row.ID), slog.Any("error", err))
		return nil
	}
	d, detail := adapters.DeliveryPending, ""
	if checker, ok := ch.(adapters.DeliveryChecker); ok {
		// The guide may have sent it before it was stopped.
		if d, detail, err = checker.CheckDelivery(ctx, &m, row.ExternalID); err != nil {
			return fmt.Errorf("outbox %d: checking after withdrawing: %w", row.ID, err)
		}
	}
	if d == adapters.DeliveryPending {
		d, detail = adapters.DeliveryFailed, "withdrawn: "+pl.Why
	}
	settled, err := s.store.SettlePendingDelivery(ctx, row.ID, string(d), detail)
	if err != nil || !settled {
		return err
	}
	s.log.Info("pending send withdrawn", slog.Int64("outbox_id", row.ID), slog.String("delivery", string(d)), slog.String("why", pl.Why))
	if d == adapters.DeliveryDelivered {
		return s.delivered(ctx, row)
	}
	return s.undelivered(ctx, row, detail)
}
