package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
)

// DefaultLease is how long a claimed send (outbox state sending) belongs
// to the handler that claimed it before Recover takes it back.
const DefaultLease = 2 * time.Minute

// MinLease is the shortest lease Recover accepts: longer than a send may
// take (SendTimeout) with a margin, so a send still in flight is never
// taken for a lost one.
const MinLease = SendTimeout + 10*time.Second

// Outcomes of Recover, also recorded as the send attempt's outcome.
const (
	// RecoveredSent: the channel had the message; the row is sent.
	RecoveredSent = "reconciled"
	// RecoveredResend: the channel did not have it (or refuses a repeat);
	// the row is pending and queued again.
	RecoveredResend = "resend"
	// RecoveredFailed: the channel cannot tell; the row is failed for an
	// operator.
	RecoveredFailed = "unknown"
	// OutcomeInDoubt: the send failed after the channel may have taken
	// it (Send wrapped adapters.ErrOutcomeUnknown); the row stays
	// sending until Recover settles it.
	OutcomeInDoubt = "in_doubt"
)

// Recovery counts what Recover did.
type Recovery struct {
	Sent, Resent, Failed int
}

// Recover takes back sends whose handler died, or whose outcome the
// handler could not learn (OutcomeInDoubt): rows claimed (sending) longer
// than lease ago.
// It never guesses: it asks the channel (adapters.Reconciler) whether the
// message went out, and
//   - marks it sent when the channel has it (with the channel's id, and a
//     delivery check for sends that complete later);
//   - returns it to pending and queues it when the channel does not have
//     it, or refuses a repeat of it;
//   - fails it, with the reason for an operator, when the channel cannot
//     tell (it does not implement Reconciler, or answers
//     ErrOutcomeUnknown): sending it again might reach the member twice.
//
// A channel that cannot be asked now (an error) leaves its rows for the
// next sweep, and one recovery takes at most recoverBudget. Each change is guarded by the claim, so a handler that was
// only slow, and settles the row itself, wins.
func (s *Sender) Recover(ctx context.Context, lease time.Duration) (Recovery, error) {
	if lease < MinLease {
		lease = MinLease
	}
	return s.recoverBefore(ctx, time.Now().Add(-lease))
}

// recoverBudget bounds one recovery (it runs in the periodic sweep and
// at a worker's start): what is left waits for the next sweep. A channel
// that fails to answer is not asked about its other sends until then.
const recoverBudget = 25 * time.Second

// reconcileError is a channel's failure to answer Reconcile.
type reconcileError struct {
	id  int64
	err error
}

func (e *reconcileError) Error() string {
	return fmt.Sprintf("outbox %d: reconciling: %v", e.id, e.err)
}
func (e *reconcileError) Unwrap() error { return e.err }

// recoverBefore recovers the sends claimed before cutoff.
func (s *Sender) recoverBefore(ctx context.Context, cutoff time.Time) (Recovery, error) {
	var rec Recovery
	rows, err := s.store.StaleSending(ctx, cutoff, 1000)
	if err != nil {
		return rec, fmt.Errorf("recovering lost sends: %w", err)
	}
	var errs []error
	deadline := time.Now().Add(recoverBudget)
	down := map[string]bool{} // channels that could not be asked this time
	for i := range rows {
		if time.Now().After(deadline) {
			break
		}
		if down[rows[i].Channel] {
			continue
		}
		outcome, err := s.recoverOne(ctx, &rows[i])
		var re *reconcileError
		if errors.As(err, &re) {
			down[rows[i].Channel] = true
		}
		switch {
		case err != nil:
			errs = append(errs, err)
		case outcome == RecoveredSent:
			rec.Sent++
		case outcome == RecoveredResend:
			rec.Resent++
		case outcome == RecoveredFailed:
			rec.Failed++
		}
	}
	if len(rows) > 0 {
		s.log.Warn("recovered sends whose worker stopped mid-send", slog.Int("sent", rec.Sent), slog.Int("resent", rec.Resent),
			slog.Int("failed_unknown", rec.Failed), slog.Int("left", len(rows)-rec.Sent-rec.Resent-rec.Failed))
	}
	return rec, errors.Join(errs...)
}

func (s *Sender) recoverOne(ctx context.Context, row *store.OutboxMessage) (string, error) {
	log := s.log.With(slog.Int64("outbox_id", row.ID), slog.String("channel", row.Channel))
	var m adapters.Outbound
	if err := json.Unmarshal(row.Payload, &m); err != nil {
		return s.recoverFailed(ctx, row, "the worker stopped mid-send and its payload is unreadable: "+err.Error())
	}
	if m.Brand == "" {
		m.Brand = row.BrandID
	}
	ch, ok := s.channels.Channel(row.Channel)
	if !ok {
		return s.recoverFailed(ctx, row, "the worker stopped mid-send and channel "+row.Channel+" is not configured")
	}
	rc, ok := ch.(adapters.Reconciler)
	if !ok {
		return s.recoverFailed(ctx, row, fmt.Sprintf("the worker stopped while sending (claimed %s) and %s cannot tell whether it went out: "+
			"not sent again, to avoid a duplicate; check with the recipient and send again by hand if needed",
			row.UpdatedAt.UTC().Format(time.RFC3339), row.Channel))
	}
	askCtx, cancel := context.WithTimeout(ctx, SendTimeout)
	defer cancel()
	started := time.Now()
	receipt, sent, err := rc.Reconcile(askCtx, &m, row.UpdatedAt)
	if errors.Is(err, adapters.ErrOutcomeUnknown) {
		return s.recoverFailed(ctx, row, fmt.Sprintf("the worker stopped while sending (claimed %s) and %s cannot tell whether it went out (%v): "+
			"not sent again, to avoid a duplicate", row.UpdatedAt.UTC().Format(time.RFC3339), row.Channel, err))
	}
	if err != nil {
		log.Warn("asking the channel about a lost send; trying again at the next sweep", slog.Any("error", err))
		return "", &reconcileError{id: row.ID, err: err}
	}
	attempt := &store.SendAttempt{OutboxID: row.ID, Attempt: row.Attempts, At: started.UTC(), DurationMS: time.Since(started).Milliseconds()}
	if sent {
		ext, delivery := "", ""
		if receipt != nil {
			ext = receipt.ExternalID
			if receipt.Pending {
				delivery = string(adapters.DeliveryPending)
			}
		}
		ok, err := s.store.SettleStaleSent(ctx, row, ext, delivery, "")
		if err != nil || !ok {
			return "", err
		}
		attempt.Outcome, attempt.Error = RecoveredSent, "the worker stopped mid-send; the channel has it ("+ext+")"
		s.recordRecovery(ctx, attempt)
		if _, ok := ch.(adapters.DeliveryChecker); ok && delivery != "" {
			s.scheduleCheck(ctx, row.ID, 0)
		}
		s.settled(ctx, row)
		log.Info("lost send found at the channel; recorded as sent", slog.String("external_id", ext))
		return RecoveredSent, nil
	}
	reason := "the worker stopped mid-send; the channel does not have it: sent again"
	ok, err = s.store.SettleStalePending(ctx, row, reason)
	if err != nil || !ok {
		return "", err
	}
	attempt.Outcome, attempt.Error = RecoveredResend, reason
	s.recordRecovery(ctx, attempt)
	lane := queue.Default
	if strings.HasPrefix(row.IdempotencyKey, WelcomeKeyPrefix) {
		lane = queue.Critical
	}
	if err := queue.EnqueueID(ctx, s.queue, TypeSend, row.ID, lane); err != nil {
		log.Warn("queueing a recovered send failed; the sweep will retry", slog.Any("error", err))
	}
	log.Info("lost send not at the channel; queued again")
	return RecoveredResend, nil
}

func (s *Sender) recoverFailed(ctx context.Context, row *store.OutboxMessage, reason string) (string, error) {
	ok, err := s.store.SettleStaleFailed(ctx, row, reason)
	if err != nil || !ok {
		return "", err
	}
	s.recordRecovery(ctx, &store.SendAttempt{OutboxID: row.ID, Attempt: row.Attempts, At: time.Now().UTC(), Outcome: RecoveredFailed, Error: reason})
	s.failed(row.Channel, "unknown")
	s.settled(ctx, row)
	s.log.Warn("lost send failed for an operator", slog.Int64("outbox_id", row.ID), slog.String("channel", row.Channel), slog.String("reason", reason))
	return RecoveredFailed, nil
}

func (s *Sender) recordRecovery(ctx context.Context, a *store.SendAttempt) {
	if err := s.store.RecordSendAttempt(ctx, a); err != nil {
		s.log.Warn("recording a recovered send", slog.Int64("outbox_id", a.OutboxID), slog.Any("error", err))
	}
}
