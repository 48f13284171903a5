package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
)

// TypeSend is the task that sends one outbox row.
const TypeSend = "outbox:send"

// WelcomeKeyPrefix starts the idempotency key of welcome messages, which
// go on the critical queue (also when the sweep or the recovery re-queues
// them).
const WelcomeKeyPrefix = "welcome:"

// Sender delivers outbox messages.
type Sender struct {
	store    *store.Store
	channels *adapters.Registry
	queue    queue.Enqueuer
	log      *slog.Logger

	limiter RateLimiter
	maxWait time.Duration
	metrics *Metrics

	outcomes   Outcomes
	checkEvery atomic.Int64 // nanoseconds; 0: DefaultCheckEvery
}

// Outcomes is told what became of outbox messages: the workflow engine,
// whose send steps wait for their messages. Each call is idempotent, and
// its error is logged only: the engine looks at the outbox itself too.
type Outcomes interface {
	// SendSettled: the message of key was sent (the channel accepted
	// it) or failed for good.
	SendSettled(ctx context.Context, key string) error
	// Delivered: the message of key, sent pending, reached the member.
	Delivered(ctx context.Context, key string) error
	// Undelivered: the message of key, sent pending, never will (the
	// guide did not send it in time, the member is no longer their
	// contact); why says which.
	Undelivered(ctx context.Context, key, why string) error
}

// Report makes the Sender tell o what becomes of its messages.
func (s *Sender) Report(o Outcomes) { s.outcomes = o }

// CheckEvery sets how often a send that completes later (a WeCom message
// task the guide sends) is checked; default DefaultCheckEvery.
func (s *Sender) CheckEvery(d time.Duration) { s.checkEvery.Store(int64(d)) }

func (s *Sender) checkInterval() time.Duration {
	if d := time.Duration(s.checkEvery.Load()); d > 0 {
		return d
	}
	return DefaultCheckEvery
}

// settled tells Outcomes that a message settled.
func (s *Sender) settled(ctx context.Context, row *store.OutboxMessage) {
	if s.outcomes == nil {
		return
	}
	if err := s.outcomes.SendSettled(context.WithoutCancel(ctx), row.IdempotencyKey); err != nil {
		s.log.Warn("telling the engine a message settled; its step looks again later", slog.Int64("outbox_id", row.ID), slog.Any("error", err))
	}
}

// failure says in a word why a send failed for good (store.OutboxMessage.Failure).
func failure(err error) string {
	var apiErr *adapters.APIError
	switch {
	case errors.Is(err, adapters.ErrInvalidMessage):
		return "invalid_message"
	case errors.Is(err, adapters.ErrInvalidRecipient):
		return "invalid_recipient"
	case errors.Is(err, adapters.ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, adapters.ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, adapters.ErrTemporary):
		return "gave_up" // retried until the last attempt
	case errors.As(err, &apiErr):
		return "refused"
	}
	return "error"
}

// RateLimiter schedules sends within each channel's rate (*Limiter).
type RateLimiter interface {
	// ReserveBy takes the next send slot of a channel and returns how
	// long from now it is; with a deadline by, a slot after it is not
	// taken (a *NoSlotError).
	ReserveBy(ctx context.Context, channel string, critical bool, by time.Time) (time.Duration, error)
}

// WelcomeValidity is how long a welcome can be sent after the contact
// was added: WeCom's welcome_code is valid for 20 seconds. A welcome
// that gets no send slot within it fails as expired.
const WelcomeValidity = 20 * time.Second

// welcomeMargin is how long before its code expires a welcome's send
// must start: the request must reach WeCom in time.
const welcomeMargin = 500 * time.Millisecond

// Rate limiting of deliveries: a send whose slot is at most maxWait away
// waits for it in the handler; a later one is handed back to the queue as
// a new task due slotLead before its slot, and waits the rest there. A
// task that reaches its handler more than slotGrace after its slot (the
// workers were busy) takes a new one, so sends that were held up do not
// go out all at once.
const (
	DefaultMaxWait = time.Second
	slotLead       = time.Second
	slotGrace      = time.Second
)

// Limit makes the Sender keep each channel's send rate with l. A send over
// the rate waits (up to maxWait, default DefaultMaxWait, in the handler)
// or is queued again for its slot: it does not fail, does not count as a
// retry, and is sent once.
func (s *Sender) Limit(l RateLimiter, maxWait time.Duration) {
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	s.limiter, s.maxWait = l, maxWait
}

// NewSender returns a Sender.
func NewSender(s *store.Store, channels *adapters.Registry, q queue.Enqueuer, log *slog.Logger) *Sender {
	return &Sender{store: s, channels: channels, queue: q, log: log}
}

// Send saves an outbound message in the outbox (once per idempotency key)
// and queues its delivery. It returns the outbox row.
func (s *Sender) Send(ctx context.Context, channel string, m *adapters.Outbound, meta Meta) (*store.OutboxMessage, error) {
	row, err := newRow(channel, m, meta)
	if err != nil {
		return nil, err
	}
	if _, err := s.store.AddOutbox(ctx, row); err != nil {
		return nil, fmt.Errorf("saving outbox message: %w", err)
	}
	if row.State == store.OutboxPending {
		lane := meta.Queue
		if lane == "" {
			lane = queue.Default
		}
		if err := queue.EnqueueID(ctx, s.queue, TypeSend, row.ID, lane); err != nil {
			s.log.Warn("queueing outbox message failed; the sweep will retry", slog.Int64("outbox_id", row.ID), slog.Any("error", err))
		}
	}
	return row, nil
}

// Meta describes an outbox message for reporting and routing.
type Meta struct {
	MemberID *int64
	GuideID  string
	BrandID  string
	// Queue is the asynq queue of the delivery; default "default".
	Queue string
	// Since, when set and past, is when the message came to be, before
	// it was saved: a welcome's contact was added then, and its code's
	// 20 seconds count from it, not from when the welcome was queued.
	// It is the row's CreatedAt.
	Since time.Time
}

// SendTask is the asynq handler of TypeSend: it claims the row, so a
// duplicate or retried task never sends twice, and delivers it.
func (s *Sender) SendTask(ctx context.Context, t *asynq.Task) error {
	var pl sendPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil || pl.ID == 0 {
		return fmt.Errorf("bad %s payload %q: %w", TypeSend, t.Payload(), asynq.SkipRetry)
	}
	if s.limiter != nil {
		if now, err := s.awaitSlot(ctx, &pl); !now || err != nil {
			return err
		}
	}
	row, claimed, err := s.store.ClaimOutbox(ctx, pl.ID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("outbox %d: %w", pl.ID, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	if !claimed {
		return nil
	}
	if by := welcomeDeadline(row); !by.IsZero() && time.Now().After(by) {
		// Its slot came, but too late to reach WeCom with a live code
		// (the worker was held up): WeCom would refuse it (41050).
		return s.expire(ctx, row, fmt.Sprintf("the welcome code expired (valid %s) before the send could start", WelcomeValidity))
	}
	var m adapters.Outbound
	if err := json.Unmarshal(row.Payload, &m); err != nil {
		if s.store.FailOutboxFor(ctx, row.ID, "invalid_message", "undecodable payload: "+err.Error()) == nil {
			s.failed(row.Channel, "invalid_message")
			s.settled(ctx, row)
		}
		return fmt.Errorf("outbox %d: %v: %w", row.ID, err, asynq.SkipRetry)
	}
	ch, ok := s.channels.Channel(row.Channel)
	if !ok {
		if s.store.FailOutboxFor(ctx, row.ID, "not_configured", "channel not configured: "+row.Channel) == nil {
			s.failed(row.Channel, "not_configured")
			s.settled(ctx, row)
		}
		return fmt.Errorf("outbox %d: channel %q not configured: %w", row.ID, row.Channel, asynq.SkipRetry)
	}
	if m.Brand == "" {
		m.Brand = row.BrandID
	}
	res, sendErr, err := s.deliver(ctx, ch, row, &m, queue.LastAttempt(ctx))
	switch res {
	case resultRetry:
		return fmt.Errorf("outbox %d: %w", row.ID, sendErr)
	case resultFailed:
		return fmt.Errorf("outbox %d: %w: %w", row.ID, sendErr, asynq.SkipRetry)
	}
	return err
}

// What became of a send (deliver).
type sendResult int

const (
	resultSent    sendResult = iota // the channel accepted it (or the outcome is being recorded)
	resultInDoubt                   // the channel may have it: left claimed for Recover
	resultRetry                     // failed transiently: released to pending for another attempt
	resultFailed                    // failed for good
)

// deliver sends the claimed row's message m through ch and records the
// outcome with its attempt; last makes a temporary failure final. It
// returns what became of it, the channel's error, and an error only when
// the outcome of a send the channel accepted could not be recorded (the
// row stays claimed: Recover settles it after the lease).
func (s *Sender) deliver(ctx context.Context, ch adapters.Channel, row *store.OutboxMessage, m *adapters.Outbound, last bool) (sendResult, error, error) {
	// A claimed send finishes even if shutdown starts meanwhile.
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SendTimeout)
	defer cancel()
	started := time.Now()
	receipt, err := ch.Send(sendCtx, m)
	attempt := &store.SendAttempt{OutboxID: row.ID, Attempt: row.Attempts, At: started.UTC(), DurationMS: time.Since(started).Milliseconds(), Outcome: "sent"}
	if _, canTell := ch.(adapters.Reconciler); canTell && errors.Is(err, adapters.ErrOutcomeUnknown) {
		// The platform may have taken it: sending it again could deliver
		// it twice. The row stays claimed; once its lease is over,
		// Recover asks the channel and settles it.
		attempt.Outcome, attempt.Error = OutcomeInDoubt, err.Error()
		if aerr := s.store.RecordSendAttempt(sendCtx, attempt); aerr != nil {
			s.log.Warn("recording a send attempt", slog.Int64("outbox_id", row.ID), slog.Any("error", aerr))
		}
		s.log.Warn("send in doubt: left for reconciliation after the lease", slog.Int64("outbox_id", row.ID),
			slog.String("channel", row.Channel), slog.Any("error", err))
		return resultInDoubt, err, nil
	}
	if err != nil {
		if adapters.Retryable(err) && !last {
			attempt.Outcome, attempt.Error = "retry", err.Error()
			out := store.SendOutcome{State: store.OutboxPending, Reason: err.Error()}
			if rerr := s.settle(ctx, row.ID, func(ctx context.Context) error { _, err := s.store.SettleSend(ctx, row.ID, out, attempt); return err }); rerr != nil {
				s.log.Warn("releasing outbox message", slog.Int64("outbox_id", row.ID), slog.Any("error", rerr))
			}
			return resultRetry, err, nil
		}
		why := failure(err)
		attempt.Outcome, attempt.Error = "failed", err.Error()
		out := store.SendOutcome{State: store.OutboxFailed, Failure: why, Reason: err.Error()}
		if ferr := s.settle(ctx, row.ID, func(ctx context.Context) error { _, err := s.store.SettleSend(ctx, row.ID, out, attempt); return err }); ferr != nil {
			s.log.Warn("failing outbox message", slog.Int64("outbox_id", row.ID), slog.Any("error", ferr))
		} else {
			s.failed(row.Channel, why)
			s.settled(ctx, row)
		}
		s.log.Warn("message not delivered", slog.Int64("outbox_id", row.ID), slog.String("channel", row.Channel),
			slog.String("failure", why), slog.Any("error", err))
		return resultFailed, err, nil
	}
	out := store.SendOutcome{State: store.OutboxSent}
	if receipt != nil {
		out.ExternalID = receipt.ExternalID
		if receipt.Pending {
			out.Delivery = string(adapters.DeliveryPending)
		}
	}
	if err := s.settle(ctx, row.ID, func(ctx context.Context) error { _, err := s.store.SettleSend(ctx, row.ID, out, attempt); return err }); err != nil {
		return resultSent, nil, err
	}
	row.State, row.ExternalID, row.Delivery = store.OutboxSent, out.ExternalID, out.Delivery
	if _, ok := ch.(adapters.DeliveryChecker); ok && out.Delivery != "" {
		s.scheduleCheck(sendCtx, row.ID, 0)
	}
	s.settled(sendCtx, row)
	return resultSent, nil, nil
}

// SendTimeout bounds one send: a channel's Send gets this long to hand
// the message over. A claim older than this plus a margin (the lease of
// Recover) belongs to a handler that is gone.
const SendTimeout = 30 * time.Second

// sendPayload is the payload of TypeSend tasks: the outbox row and,
// for a send queued again by the rate limit, the slot it holds (Unix
// milliseconds).
type sendPayload struct {
	ID   int64 `json:"id"`
	Slot int64 `json:"slot,omitempty"`
}

// awaitSlot keeps the channel's rate: it returns true when the send may go
// now (after waiting for its slot), false when the message is not pending
// any more or was queued again for a later slot. Nothing in it counts as
// an attempt of the send.
func (s *Sender) awaitSlot(ctx context.Context, pl *sendPayload) (sendNow bool, err error) {
	row, err := s.store.Outbox(ctx, pl.ID)
	if errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("outbox %d: %w", pl.ID, asynq.SkipRetry)
	}
	if err != nil {
		return false, err
	}
	if row.State != store.OutboxPending {
		return false, nil // sent, failed, or another worker has it
	}
	lane, ok := asynq.GetQueueName(ctx)
	if !ok {
		lane = queue.Default
	}
	now := time.Now()
	by := welcomeDeadline(row)
	slot, maxWait := time.UnixMilli(pl.Slot), s.maxWait
	if pl.Slot == 0 || now.Sub(slot) > slotGrace {
		if !by.IsZero() && now.After(by) {
			return false, s.expire(ctx, row, fmt.Sprintf("the welcome code expired (valid %s) before the send was reached", WelcomeValidity))
		}
		var expired string
		var err error
		if slot, expired, err = s.reserveSlot(ctx, row, lane, by); expired != "" {
			return false, s.expire(ctx, row, expired)
		}
		if err != nil {
			return false, err
		}
	} else {
		// Queued for its slot: it may arrive up to slotLead and a second
		// (asynq's whole-second due times) early.
		maxWait = max(maxWait, slotLead+2*time.Second)
	}
	wait := time.Until(slot)
	if wait > maxWait {
		return false, s.requeue(ctx, row.ID, slot, lane)
	}
	if wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done(): // shutting down: keep the slot for a later task
			return false, s.requeue(context.WithoutCancel(ctx), row.ID, slot, lane)
		}
	}
	return true, nil
}

// reserveSlot takes the send slot of row from the limiter, on lane (a
// welcome, with its deadline by, is critical on whatever queue it runs)
// and returns it; expired is the reason a welcome has no slot before its
// code expires (nothing was taken then).
func (s *Sender) reserveSlot(ctx context.Context, row *store.OutboxMessage, lane string, by time.Time) (slot time.Time, expired string, err error) {
	wait, err := s.limiter.ReserveBy(ctx, row.Channel, lane == queue.Critical || !by.IsZero(), by)
	var noSlot *NoSlotError
	if errors.As(err, &noSlot) {
		return time.Time{}, fmt.Sprintf("the welcome code expires %s after the contact was added, and the first free %s "+
			"send slot (within its send rate and call windows) was %s away", WelcomeValidity, row.Channel, noSlot.Wait.Round(time.Millisecond)), nil
	}
	if err != nil {
		return time.Time{}, "", err
	}
	if s.metrics != nil {
		s.metrics.RateWait.WithLabelValues(row.Channel).Observe(max(wait, 0).Seconds())
	}
	// Counted from the reply, the slot errs late, never early.
	return time.Now().Add(wait), "", nil
}

// welcomeDeadline is when a welcome's send must have started, counted
// from when its contact was added (its row's CreatedAt); zero for other
// messages.
func welcomeDeadline(row *store.OutboxMessage) time.Time {
	if !strings.HasPrefix(row.IdempotencyKey, WelcomeKeyPrefix) {
		return time.Time{}
	}
	return row.CreatedAt.Add(WelcomeValidity - welcomeMargin)
}

// expire fails a pending message that can no longer be sent in time (a
// welcome whose code expired), with the reason for an operator.
//
// A message whose last attempt was taken back by Recover (its handler
// died, or its outcome was lost, and the channel could not say it had
// it) may have reached the member: it fails as
// store.FailureOutcomeUnknown, not expired, for the channel can no
// longer be asked (WeCom answers 41050 for any welcome code past its
// 20 s, used or not).
func (s *Sender) expire(ctx context.Context, row *store.OutboxMessage, reason string) error {
	failure := FailureExpired
	if row.Attempts > 0 {
		atts, err := s.store.SendAttempts(ctx, row.ID)
		if err != nil {
			return fmt.Errorf("outbox %d: reading its attempts: %w", row.ID, err)
		}
		if n := len(atts); n > 0 && atts[n-1].Outcome == RecoveredResend {
			failure = store.FailureOutcomeUnknown
			reason += "; an earlier attempt may have reached the channel (its outcome was lost), and it can no longer tell"
		}
	}
	if err := s.store.FailOutboxFor(ctx, row.ID, failure, reason); err != nil {
		return fmt.Errorf("outbox %d: failing it as %s: %w", row.ID, failure, err)
	}
	s.settled(ctx, row)
	s.log.Warn("message could not be sent in time", slog.Int64("outbox_id", row.ID), slog.String("channel", row.Channel),
		slog.String("failure", failure), slog.String("reason", reason))
	return nil
}

// FailureExpired is the Failure of a message that could not be sent in
// time (store.OutboxMessage.Failure).
const FailureExpired = "expired"

// requeue queues the send again as a task due just before its slot. The
// task's id is new each time (the running task, whose id may be the one
// of the last requeue, is still held): a duplicate requeue makes a second
// task, which the claim keeps from sending twice.
func (s *Sender) requeue(ctx context.Context, id int64, slot time.Time, lane string) error {
	if err := s.enqueueSlot(ctx, id, slot, lane); err != nil {
		return err
	}
	if err := s.store.DeferOutbox(ctx, id, slot); err != nil {
		// Only the sweep may queue it once more meanwhile (its claim
		// keeps it to one send).
		s.log.Warn("deferring outbox message", slog.Int64("outbox_id", id), slog.Any("error", err))
	}
	s.log.Debug("send waits for its rate slot", slog.Int64("outbox_id", id), slog.Time("slot", slot))
	return nil
}

// enqueueSlot queues the send of row id as a task due just before its
// slot, holding it.
func (s *Sender) enqueueSlot(ctx context.Context, id int64, slot time.Time, lane string) error {
	b, _ := json.Marshal(sendPayload{ID: id, Slot: slot.UnixMilli()})
	_, err := s.queue.EnqueueContext(ctx, asynq.NewTask(TypeSend, b), asynq.ProcessAt(slot.Add(-slotLead)),
		asynq.TaskID(fmt.Sprintf("%s:%d:%d:%d", TypeSend, id, slot.UnixMilli(), time.Now().UnixNano())),
		asynq.Queue(lane), asynq.MaxRetry(12))
	if err != nil {
		return fmt.Errorf("outbox %d: queueing for its send slot: %w", id, err)
	}
	return nil
}

// SettleTimeout is how long SendTask keeps trying to record the outcome
// of a send (sent, released for a retry, failed) while the database is
// away. Only the handler that claimed the row knows the outcome: if it
// gave up, the row would stay "sending" for ever, and a send released for
// a retry would never be retried.
var SettleTimeout = 2 * time.Minute

// settle runs a guarded outbox update until it succeeds, backing off, for
// at most SettleTimeout, even if shutdown has begun. The updates are
// guarded by the row's state, so running one again after a commit whose
// answer was lost changes nothing.
func (s *Sender) settle(ctx context.Context, id int64, update func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SettleTimeout)
	defer cancel()
	wait := 50 * time.Millisecond
	for tries := 1; ; tries++ {
		err := update(ctx)
		if err == nil {
			if tries > 1 {
				s.log.Info("outbox outcome recorded after the database came back", slog.Int64("outbox_id", id), slog.Int("tries", tries))
			}
			return nil
		}
		if tries == 1 {
			s.log.Warn("recording an outbox outcome failed; retrying", slog.Int64("outbox_id", id), slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("recording the outcome of outbox %d: %w", id, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Delivery checks of sends that complete later: the first after
// CheckEvery (DefaultCheckEvery), then every CheckEvery, for at most
// maxChecks.
const (
	TypeCheckDelivery = "outbox:check_delivery"
	DefaultCheckEvery = 30 * time.Minute
	maxChecks         = 96 // two days at the default
)

type checkPayload struct {
	ID int64 `json:"id"`
	N  int   `json:"n"`
}

func (s *Sender) scheduleCheck(ctx context.Context, id int64, n int) {
	b, _ := json.Marshal(checkPayload{ID: id, N: n})
	_, err := s.queue.EnqueueContext(ctx, asynq.NewTask(TypeCheckDelivery, b), asynq.ProcessIn(s.checkInterval()),
		asynq.TaskID(fmt.Sprintf("%s:%d:%d", TypeCheckDelivery, id, n)), asynq.Queue(queue.Low), asynq.MaxRetry(3))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		s.log.Warn("scheduling delivery check", slog.Int64("outbox_id", id), slog.Any("error", err))
	}
}

// CheckTask is the asynq handler of TypeCheckDelivery: it asks the
// channel what became of a pending send and records it.
func (s *Sender) CheckTask(ctx context.Context, t *asynq.Task) error {
	var pl checkPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil || pl.ID == 0 {
		return fmt.Errorf("bad %s payload: %w", TypeCheckDelivery, asynq.SkipRetry)
	}
	row, err := s.store.Outbox(ctx, pl.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if row.Delivery == string(adapters.DeliveryDelivered) {
		// Checked before, and maybe the engine was not told (this is a
		// retry): telling it again is harmless.
		return s.delivered(ctx, row)
	}
	if row.Delivery != string(adapters.DeliveryPending) {
		return nil
	}
	ch, ok := s.channels.Channel(row.Channel)
	checker, ok2 := ch.(adapters.DeliveryChecker)
	if !ok || !ok2 {
		return nil
	}
	var m adapters.Outbound
	if err := json.Unmarshal(row.Payload, &m); err != nil {
		return fmt.Errorf("outbox %d: %v: %w", row.ID, err, asynq.SkipRetry)
	}
	d, detail, err := checker.CheckDelivery(ctx, &m, row.ExternalID)
	if err != nil {
		return err
	}
	switch {
	case d == adapters.DeliveryDelivered:
		if err := s.store.SetDelivery(ctx, row.ID, string(d), detail); err != nil {
			return err
		}
		return s.delivered(ctx, row)
	case d != adapters.DeliveryPending:
		if err := s.store.SetDelivery(ctx, row.ID, string(d), detail); err != nil {
			return err
		}
		return s.undelivered(ctx, row, detail)
	case pl.N+1 >= maxChecks:
		why := "the guide did not confirm the message task within two days"
		if err := s.store.SetDelivery(ctx, row.ID, string(adapters.DeliveryFailed), why); err != nil {
			return err
		}
		return s.undelivered(ctx, row, why)
	}
	s.scheduleCheck(ctx, row.ID, pl.N+1)
	return nil
}

// undelivered tells Outcomes that a message will not reach its member;
// an error has the check task retried.
func (s *Sender) undelivered(ctx context.Context, row *store.OutboxMessage, why string) error {
	if s.outcomes == nil {
		return nil
	}
	if err := s.outcomes.Undelivered(ctx, row.IdempotencyKey, why); err != nil {
		return fmt.Errorf("outbox %d: telling it was not delivered: %w", row.ID, err)
	}
	return nil
}

// delivered tells Outcomes that a message reached its member; an error
// has the check task retried.
func (s *Sender) delivered(ctx context.Context, row *store.OutboxMessage) error {
	if s.outcomes == nil {
		return nil
	}
	if err := s.outcomes.Delivered(ctx, row.IdempotencyKey); err != nil {
		return fmt.Errorf("outbox %d: telling of its delivery: %w", row.ID, err)
	}
	return nil
}
