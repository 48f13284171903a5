package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
)

// SendNow saves an outbound message in the outbox (once per idempotency
// key) and sends it at once, from the calling handler, instead of queueing
// a task that a worker later takes: a bot's reply, a welcome (whose code
// expires 20 seconds after the contact was added). It returns the outbox
// row, whose State says what became of it.
//
// The outbox's guarantees hold as for a queued send:
//   - Once: the row is saved already claimed by this handler (state
//     sending, its lease starting), in the statement that saves it, and
//     only a fresh row is sent. A handler handling its delivery again
//     finds the row and sends nothing; a handler that dies mid-send
//     leaves the row claimed, and Recover settles it after the lease.
//   - The channel's rate and call windows: the send takes its slot from
//     the limiter first. A slot at most the Sender's maxWait away is
//     waited for here (as a queued send waits in its handler); a later
//     one, or a limiter that cannot be asked, sends it the queued way
//     (the row saved pending, a task queued for the slot it holds).
//   - A welcome's code: a welcome with no slot before its code expires,
//     or reached after it, is saved failed as expired, with the reason.
//   - Outcomes: "sent" only once the channel accepted it; a temporary
//     failure releases it to pending and queues its retry; a permanent
//     one fails it with its reason (failure and metric as SendTask's);
//     an outcome the channel may reconcile stays claimed for Recover.
//     The outcome and its attempt are recorded in one statement.
//
// The send runs to its end even if ctx is cancelled meanwhile (up to
// SendTimeout). A message for a channel that is not configured is queued
// (SendTask fails it as not configured).
func (s *Sender) SendNow(ctx context.Context, channel string, m *adapters.Outbound, meta Meta) (*store.OutboxMessage, error) {
	row, err := newRow(channel, m, meta)
	if err != nil {
		return nil, err
	}
	ch, ok := s.channels.Channel(channel)
	if !ok {
		return s.Send(ctx, channel, m, meta)
	}
	if row.CreatedAt.IsZero() {
		row.CreatedAt = time.Now().UTC()
	}
	lane := meta.Queue
	if lane == "" {
		lane = queue.Default
	}
	by := welcomeDeadline(row)
	if !by.IsZero() && time.Now().After(by) {
		return s.addFailed(ctx, row, FailureExpired, fmt.Sprintf("the welcome code expired (valid %s) before the send was reached", WelcomeValidity))
	}
	if s.limiter != nil {
		slot, expired, err := s.reserveSlot(ctx, row, lane, by)
		if expired != "" {
			return s.addFailed(ctx, row, FailureExpired, expired)
		}
		if err != nil {
			// The limiter is away: the queued send asks it again.
			s.log.Warn("no send slot for an immediate send; queued", slog.String("channel", channel), slog.Any("error", err))
			s.counted(channel, pathQueued)
			return s.Send(ctx, channel, m, meta)
		}
		wait := time.Until(slot)
		if wait > s.maxWait {
			return s.addForSlot(ctx, row, slot, lane)
		}
		if wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-ctx.Done(): // shutting down: the queued send keeps the slot
				timer.Stop()
				return s.addForSlot(context.WithoutCancel(ctx), row, slot, lane)
			}
		}
	}
	fresh, claimed, err := s.store.AddOutboxClaimed(ctx, row)
	if err != nil {
		// The row may have been saved, claimed by this handler, with the
		// answer lost (the database went away): this handler has not
		// sent it, so it gives the claim back and queues the send, which
		// its retry would otherwise find claimed and leave to Recover.
		if rerr := s.settle(ctx, row.ID, func(ctx context.Context) error {
			_, err := s.store.ReleaseUnsentClaim(ctx, row.IdempotencyKey)
			return err
		}); rerr != nil {
			return nil, fmt.Errorf("saving outbox message: %w", err)
		}
		s.counted(channel, pathQueued)
		return s.Send(ctx, channel, m, meta)
	}
	if !fresh {
		return row, nil // saved before: sent, failed, or on its way
	}
	if !claimed {
		s.settled(ctx, row) // the member's part was erased
		return row, nil
	}
	s.counted(channel, pathInline)
	out := *m
	if out.Brand == "" {
		out.Brand = row.BrandID
	}
	res, sendErr, err := s.deliver(ctx, ch, row, &out, false)
	switch res {
	case resultRetry:
		row.State = store.OutboxPending
		s.retryLater(ctx, row, lane, sendErr)
	case resultFailed:
		row.State = store.OutboxFailed
	}
	if err != nil {
		// The channel has it; the outcome could not be recorded. The row
		// stays claimed and Recover settles it: not an error of the
		// handler, which must not make it again.
		s.log.Warn("recording the outcome of an immediate send; left to recovery", slog.Int64("outbox_id", row.ID), slog.Any("error", err))
	}
	return row, nil
}

// newRow is the outbox row of a message.
func newRow(channel string, m *adapters.Outbound, meta Meta) (*store.OutboxMessage, error) {
	if m.IdempotencyKey == "" {
		return nil, errors.New("sending: an idempotency key is required")
	}
	payload, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("sending: %w", err)
	}
	row := &store.OutboxMessage{IdempotencyKey: m.IdempotencyKey, Channel: channel, Recipient: m.To, MemberID: meta.MemberID,
		GuideID: meta.GuideID, BrandID: meta.BrandID, Kind: m.Kind, Payload: payload}
	if !meta.Since.IsZero() && meta.Since.Before(time.Now()) {
		row.CreatedAt = meta.Since.UTC()
	}
	return row, nil
}

// addFailed saves a message that will not be sent (a welcome past its
// code's life), with its failure and reason, in one statement.
func (s *Sender) addFailed(ctx context.Context, row *store.OutboxMessage, failure, reason string) (*store.OutboxMessage, error) {
	row.State, row.Failure, row.LastError = store.OutboxFailed, failure, reason
	fresh, err := s.store.AddOutbox(ctx, row)
	if err != nil {
		return nil, fmt.Errorf("saving outbox message: %w", err)
	}
	if fresh {
		s.settled(ctx, row)
		s.log.Warn("message could not be sent in time", slog.Int64("outbox_id", row.ID), slog.String("channel", row.Channel),
			slog.String("failure", failure), slog.String("reason", reason))
	}
	return row, nil
}

// addForSlot saves a message pending and queues its send for the slot it
// reserved, as SendTask does for a send over the rate: the task waits
// for the slot, and the sweep leaves the row alone until then.
func (s *Sender) addForSlot(ctx context.Context, row *store.OutboxMessage, slot time.Time, lane string) (*store.OutboxMessage, error) {
	s.counted(row.Channel, pathQueued)
	row.UpdatedAt = slot.UTC()
	fresh, err := s.store.AddOutbox(ctx, row)
	if err != nil {
		return nil, fmt.Errorf("saving outbox message: %w", err)
	}
	if fresh && row.State == store.OutboxPending {
		if err := s.enqueueSlot(ctx, row.ID, slot, lane); err != nil {
			s.log.Warn("queueing outbox message failed; the sweep will retry", slog.Int64("outbox_id", row.ID), slog.Any("error", err))
		}
	}
	return row, nil
}

// retryLater queues the send of a row released after a temporary
// failure, as asynq would retry a SendTask that failed (queue.RetryDelay).
func (s *Sender) retryLater(ctx context.Context, row *store.OutboxMessage, lane string, sendErr error) {
	_, err := s.queue.EnqueueContext(context.WithoutCancel(ctx), queue.IDTask(TypeSend, row.ID),
		asynq.TaskID(fmt.Sprintf("%s:%d", TypeSend, row.ID)), asynq.ProcessIn(queue.RetryDelay(0, sendErr, nil)),
		asynq.Queue(lane), asynq.MaxRetry(12))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		s.log.Warn("queueing the retry of an immediate send failed; the sweep will retry", slog.Int64("outbox_id", row.ID), slog.Any("error", err))
	}
}

// How a handler's send went (Metrics.Handler).
const (
	pathInline = "inline"
	pathQueued = "queued"
)
