package assign

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
)

// ResignedTransferer hands the contacts of a guide who left the
// organisation to another guide on a channel (WeCom 离职继承:
// resigned/transfer_customer and resigned/transfer_result).
type ResignedTransferer interface {
	// TransferResigned asks the channel to move contacts (at most 100)
	// from the guide who left to another and returns each contact's
	// outcome. An error wrapping adapters.ErrOutcomeUnknown means the
	// channel may have acted on the request all the same.
	TransferResigned(ctx context.Context, fromUserID, toUserID string, externalIDs []string) ([]TransferOutcome, error)
	// ResignedTransferStatus says where each contact moved from
	// fromUserID to toUserID stands; contacts not listed are unknown.
	ResignedTransferStatus(ctx context.Context, fromUserID, toUserID string) (map[string]TakeoverStatus, error)
}

// TransferResult is what a channel answered for one contact of a
// transfer request.
type TransferResult int

// Transfer results.
const (
	// TransferAccepted: the contact is moving (or was already moving).
	TransferAccepted TransferResult = iota
	// TransferTakeoverFull: the new guide holds as many contacts as the
	// channel allows; another guide may take them.
	TransferTakeoverFull
	// TransferTooSoon: the contact was moved recently (WeCom: once in 90
	// days); no guide can take them now.
	TransferTooSoon
	// TransferNotContact: the contact is not (any more) the leaving
	// guide's.
	TransferNotContact
	// TransferNotYet: the channel does not know yet that the guide left;
	// asking later may succeed.
	TransferNotYet
	// TransferRefused: any other refusal.
	TransferRefused
)

// TransferOutcome is one contact's TransferResult, with the channel's
// code.
type TransferOutcome struct {
	ExternalID string
	Result     TransferResult
	Code       int
}

// TakeoverStatus is where a requested transfer of a contact stands.
type TakeoverStatus int

// Takeover statuses.
const (
	TakeoverUnknown TakeoverStatus = iota
	TakeoverWaiting
	TakeoverDone
	// TakeoverRefused: the contact refused the new guide.
	TakeoverRefused
	// TakeoverFull: the new guide reached the channel's contact limit.
	TakeoverFull
)

// Task types of handovers.
const (
	// TypeHandoverRequest claims a leaving guide's pending handovers,
	// chooses their new guides and asks the channel to move them.
	TypeHandoverRequest = "handover:request"
	// TypeHandoverPoll checks a leaving guide's requested handovers with
	// the channel.
	TypeHandoverPoll = "handover:poll"
)

// HandoverOptions configure Handovers.
type HandoverOptions struct {
	// PollInterval is how often requested handovers are checked with the
	// channel (WeCom moves a contact 24 hours after the request unless
	// they refuse). Default 1 hour.
	PollInterval time.Duration
	// GiveUp is how long after its handover began a member the channel
	// still does not report taken over (nor refused) is settled as
	// failed, for an operator. Default 7 days (WeCom moves a contact
	// within a day of each request).
	GiveUp time.Duration
	// Lease is how long a claimed handover belongs to the worker that
	// claimed it. Default 2 minutes.
	Lease time.Duration
	// Queue is the asynq queue of handover tasks. Default "default".
	Queue  string
	Logger *slog.Logger
}

// Enqueuer is the part of *asynq.Client handovers use.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// Handovers hands the members of a guide who left the organisation to
// colleagues durably: a row per member (store.Handover) moves pending →
// requested → transferred | failed, claimed by one worker at a time;
// tasks keyed by what triggered them drive the rows, and Sweep re-drives
// what a lost task left. A member is never asked of the channel twice
// once their row is settled, and a claim that may follow a request whose
// answer was lost asks the channel's status first.
//
// Each handover row records the channel instance (store.Handover.Channel)
// whose ids it uses and that is asked to move the member: the instance on
// which the guide left (one WeCom corp of several).
type Handovers struct {
	a     *Assigner
	store *store.Store
	xfers map[string]ResignedTransferer
	queue Enqueuer
	opts  HandoverOptions
	log   *slog.Logger
}

// NewHandovers returns the handover driver of the channel instances
// xfers names by key (each WeCom corp's instance key and its
// transferer).
func NewHandovers(a *Assigner, xfers map[string]ResignedTransferer, q Enqueuer, opts HandoverOptions) *Handovers {
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Hour
	}
	if opts.GiveUp <= 0 {
		opts.GiveUp = 7 * 24 * time.Hour
	}
	if opts.Lease <= 0 {
		opts.Lease = 2 * time.Minute
	}
	if opts.Queue == "" {
		opts.Queue = "default"
	}
	if opts.Logger == nil {
		opts.Logger = a.log
	}
	return &Handovers{a: a, store: a.store, xfers: xfers, queue: q, opts: opts, log: opts.Logger}
}

// Handles reports whether the guides of a channel instance who leave are
// handed over on it.
func (h *Handovers) Handles(channel string) bool { return h.xfers[channel] != nil }

// Register adds the handover task handlers.
func (h *Handovers) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeHandoverRequest, h.requestTask)
	mux.HandleFunc(TypeHandoverPoll, h.pollTask)
}

type handoverPayload struct {
	GuideID string `json:"guide_id"`
}

// Start deactivates a guide who left the organisation of a channel
// instance (the corp that reported it) and saves a pending handover on
// that instance for each member bound to them, then queues their
// request. key identifies what reported the departure (a delivery), so
// that a repeat queues nothing new. Calling it again saves nothing
// twice.
func (h *Handovers) Start(ctx context.Context, channel, guideID, key string) (int, error) {
	if !h.Handles(channel) {
		return 0, fmt.Errorf("handing over on %s: not a channel instance of handovers", channel)
	}
	g, err := h.store.Guide(ctx, guideID, "")
	if err != nil {
		return 0, err
	}
	if _, err := h.store.MarkGuideLeft(ctx, guideID); err != nil {
		return 0, fmt.Errorf("marking guide left: %w", err)
	}
	bindings, err := h.store.CurrentBindings(ctx, guideID)
	if err != nil {
		return 0, err
	}
	from := channelID(g, channel)
	rows := make([]store.Handover, 0, len(bindings))
	for _, b := range bindings {
		ext, err := h.store.MemberChannelID(ctx, b.MemberID, channel)
		if err != nil {
			return 0, err
		}
		rows = append(rows, store.Handover{GuideID: guideID, MemberID: b.MemberID, BrandID: b.BrandID, StoreID: g.StoreID,
			Channel: channel, HandoverUserID: from, ExternalUserID: ext})
	}
	n, err := h.store.CreateHandovers(ctx, rows)
	if err != nil {
		return n, fmt.Errorf("saving handovers: %w", err)
	}
	if err := h.enqueueRequest(ctx, guideID, "start:"+key); err != nil {
		// Saved: the sweep queues it.
		h.log.Warn("queueing a handover failed; the sweep will retry", slog.String("guide_id", guideID), slog.Any("error", err))
	}
	h.log.Info("guide left; handing their members over", slog.String("guide_id", guideID), slog.String("channel", channel),
		slog.Int("members", len(rows)), slog.Int("new", n))
	return n, nil
}

// TransferFailed acts on a channel instance reporting that a contact
// refused to be handed to takeoverUserID, or that the takeover guide has
// too many contacts (WeCom transfer_fail): the member goes to another
// guide.
func (h *Handovers) TransferFailed(ctx context.Context, channel, takeoverUserID, externalID, reason string) error {
	row, err := h.store.RequestedHandover(ctx, channel, takeoverUserID, externalID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not a handover of ours, or settled already
	}
	if err != nil {
		return err
	}
	why := h.refusal(ctx, row, reason == "customer_limit_exceed", reason)
	ok, err := h.store.RetargetHandover(ctx, row, store.HandoverRequested, why, 0)
	if err != nil || !ok {
		return err
	}
	h.log.Warn("handover refused; trying another guide", slog.Int64("member_id", row.MemberID), slog.String("guide_id", row.GuideID),
		slog.String("to_guide_id", row.ToGuideID), slog.String("reason", why))
	return h.enqueueRequest(ctx, row.GuideID, fmt.Sprintf("refused:%d:%d", row.ID, row.Attempts))
}

// refusal says why a guide did not get a member.
func (h *Handovers) refusal(ctx context.Context, row *store.Handover, full bool, detail string) string {
	name := row.ToGuideID
	if g, err := h.store.Guide(ctx, row.ToGuideID, ""); err == nil {
		name = g.Name + " (" + g.ID + ")"
	}
	if full {
		return fmt.Sprintf("%s holds as many customers as %s allows (%s)", name, row.Channel, detail)
	}
	return fmt.Sprintf("the customer refused to be handed to %s (%s)", name, detail)
}

// Sweep queues the work lost tasks left: pending handovers no one holds
// and untouched for idle, and requested ones due for a check.
func (h *Handovers) Sweep(ctx context.Context, idle time.Duration) error {
	now := time.Now()
	pending, requested, err := h.store.DueHandovers(ctx, now, now.Add(-idle), 1000)
	if err != nil {
		return fmt.Errorf("sweeping handovers: %w", err)
	}
	key := "sweep:" + strconv.FormatInt(now.Unix()/60, 10)
	var errs []error
	for _, g := range pending {
		errs = append(errs, h.enqueueRequest(ctx, g, key))
	}
	for _, g := range requested {
		errs = append(errs, h.schedulePoll(ctx, g, now))
	}
	if len(pending)+len(requested) > 0 {
		h.log.Info("swept handovers", slog.Int("pending_guides", len(pending)), slog.Int("requested_guides", len(requested)))
	}
	return errors.Join(errs...)
}

func (h *Handovers) enqueueRequest(ctx context.Context, guideID, key string) error {
	return h.enqueue(ctx, TypeHandoverRequest, guideID, TypeHandoverRequest+":"+guideID+":"+key)
}

// pollEarly is how much earlier than due asynq may run a task (it keeps
// due times in whole seconds).
const pollEarly = time.Second

// schedulePoll queues a check of a guide's requested handovers at the
// start of the poll period after at, so that checks scheduled from
// several places in one period are one task. A check is never scheduled
// within pollEarly of now: the check running now (perhaps early) would
// take its task id.
func (h *Handovers) schedulePoll(ctx context.Context, guideID string, at time.Time) error {
	if soonest := time.Now().Add(pollEarly + time.Millisecond); at.Before(soonest) {
		at = soonest
	}
	if up := at.Truncate(h.opts.PollInterval); up.Before(at) {
		at = up.Add(h.opts.PollInterval)
	}
	return h.enqueue(ctx, TypeHandoverPoll, guideID, TypeHandoverPoll+":"+guideID+":"+strconv.FormatInt(at.UnixMilli(), 10),
		asynq.ProcessAt(at))
}

func (h *Handovers) enqueue(ctx context.Context, typ, guideID, id string, opts ...asynq.Option) error {
	pl, _ := json.Marshal(handoverPayload{GuideID: guideID})
	opts = append(opts, asynq.TaskID(id), asynq.Queue(h.opts.Queue), asynq.MaxRetry(12))
	_, err := h.queue.EnqueueContext(ctx, asynq.NewTask(typ, pl), opts...)
	if errors.Is(err, asynq.ErrTaskIDConflict) || errors.Is(err, asynq.ErrDuplicateTask) {
		return nil // the same work is queued
	}
	return err
}

func decodeHandoverTask(t *asynq.Task) (string, error) {
	var pl handoverPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil || pl.GuideID == "" {
		return "", fmt.Errorf("bad %s payload %q: %w", t.Type(), t.Payload(), asynq.SkipRetry)
	}
	return pl.GuideID, nil
}

func (h *Handovers) requestTask(ctx context.Context, t *asynq.Task) error {
	guideID, err := decodeHandoverTask(t)
	if err != nil {
		return err
	}
	return h.Request(ctx, guideID)
}

func (h *Handovers) pollTask(ctx context.Context, t *asynq.Task) error {
	guideID, err := decodeHandoverTask(t)
	if err != nil {
		return err
	}
	return h.Poll(ctx, guideID)
}

// errRetryLater stops a request pass: the channel cannot take it now;
// the rows are released and the task retried.
type errRetryLater struct{ err error }

func (e *errRetryLater) Error() string { return e.err.Error() }
func (e *errRetryLater) Unwrap() error { return e.err }

// Request works a leaving guide's pending handovers until none is left:
// claims them, chooses a new guide for those without one (binding the
// member to them), and asks the channel to move them, grouped by new
// guide.
func (h *Handovers) Request(ctx context.Context, guideID string) error {
	g, err := h.store.Guide(ctx, guideID, "")
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	home, err := h.store.RetailStore(ctx, g.StoreID, "")
	if errors.Is(err, store.ErrNotFound) {
		home = nil
	} else if err != nil {
		return fmt.Errorf("loading the guide's store: %w", err)
	}
	requested := false
	for round := 0; ; round++ {
		if round > 1000 {
			return fmt.Errorf("handing over the members of %s: still pending after %d rounds", guideID, round)
		}
		rows, err := h.store.ClaimHandovers(ctx, guideID, h.opts.Lease, 100)
		if err != nil {
			return fmt.Errorf("claiming handovers: %w", err)
		}
		if len(rows) == 0 {
			break
		}
		var ask []*store.Handover
		for i := range rows {
			r := &rows[i]
			if r.ToGuideID == "" {
				if ok, err := h.place(ctx, r, home); err != nil || !ok {
					if err != nil {
						h.release(ctx, rows, err.Error())
						return err
					}
					continue
				}
			}
			switch {
			case r.ExternalUserID == "" || r.HandoverUserID == "":
				h.settle(ctx, r, store.HandoverTransferred, fmt.Sprintf("not a contact on %s: moved in scrmgw only", r.Channel), 0)
			case r.TakeoverUserID == "":
				h.settle(ctx, r, store.HandoverFailed, fmt.Sprintf("the new guide %s has no %s id: bound to them in scrmgw, "+
					"but the customer stays with %s on %s", r.ToGuideID, r.Channel, r.HandoverUserID, r.Channel), 0)
			case !h.Handles(r.Channel):
				h.settle(ctx, r, store.HandoverFailed, fmt.Sprintf("%s is not configured any more: bound to %s in scrmgw, "+
					"but the customer stays with %s there", r.Channel, r.ToGuideID, r.HandoverUserID), 0)
			default:
				ask = append(ask, r)
			}
		}
		tos, byTo := byTakeover(ask)
		for i, to := range tos {
			n, err := h.request(ctx, to, byTo[to])
			requested = requested || n > 0
			if err != nil {
				for _, rest := range tos[i+1:] {
					h.release(ctx, derefs(byTo[rest]), "not asked yet: "+err.Error())
				}
				if requested {
					h.pollLater(ctx, guideID)
				}
				return err
			}
		}
	}
	if requested {
		h.pollLater(ctx, guideID)
	}
	return nil
}

// takeover is where a group of handovers goes: the takeover user on a
// channel instance, asked in one call.
type takeover struct{ channel, to string }

// byTakeover groups rows by takeover, in order of channel and user.
func byTakeover(rows []*store.Handover) ([]takeover, map[takeover][]*store.Handover) {
	by := map[takeover][]*store.Handover{}
	for _, r := range rows {
		k := takeover{r.Channel, r.TakeoverUserID}
		by[k] = append(by[k], r)
	}
	keys := slices.SortedFunc(maps.Keys(by), func(a, b takeover) int {
		return cmp.Or(cmp.Compare(a.channel, b.channel), cmp.Compare(a.to, b.to))
	})
	return keys, by
}

func derefs(rs []*store.Handover) []store.Handover {
	out := make([]store.Handover, len(rs))
	for i, r := range rs {
		out[i] = *r
	}
	return out
}

func (h *Handovers) pollLater(ctx context.Context, guideID string) {
	if err := h.schedulePoll(ctx, guideID, time.Now().Add(h.opts.PollInterval)); err != nil {
		h.log.Warn("scheduling a handover check failed; the sweep will retry", slog.String("guide_id", guideID), slog.Any("error", err))
	}
}

// release gives up the claims of rows not worked, so that the retry
// takes them.
func (h *Handovers) release(ctx context.Context, rows []store.Handover, reason string) {
	for i := range rows {
		if _, err := h.store.ReleaseHandover(ctx, &rows[i], reason); err != nil {
			h.log.Warn("releasing a handover", slog.Int64("handover_id", rows[i].ID), slog.Any("error", err))
		}
	}
}

// place chooses the guide who takes a member over, binds the member to
// them and records them on the row. It reports false when the row was
// settled instead (no guide has room).
func (h *Handovers) place(ctx context.Context, r *store.Handover, home *store.RetailStore) (bool, error) {
	exclude := map[string]bool{r.GuideID: true}
	for _, g := range r.TriedGuides() {
		exclude[g] = true
	}
	cur, err := h.store.CurrentBinding(ctx, r.MemberID, r.BrandID)
	if errors.Is(err, store.ErrNotFound) {
		cur = nil
	} else if err != nil {
		return false, err
	}
	var target string
	if cur != nil && !exclude[cur.GuideID] {
		// Bound already: an earlier pass bound them and stopped, or
		// someone rebound them meanwhile.
		target = cur.GuideID
	} else {
		if cur != nil {
			if err := h.store.EndBinding(ctx, cur.ID); err != nil {
				return false, fmt.Errorf("ending binding: %w", err)
			}
		}
		nb, err := h.a.inheritExcept(ctx, r.MemberID, r.BrandID, home, exclude)
		if errors.Is(err, ErrUnassigned) {
			reason := "no other guide of the store, of a store nearby or of the brand's pool has room"
			if cur != nil && cur.GuideID != r.GuideID {
				// Keep them with the guide the channel refused rather
				// than with no one.
				if _, _, err := h.store.Bind(ctx, &store.Binding{MemberID: r.MemberID, BrandID: r.BrandID, GuideID: cur.GuideID,
					StoreID: cur.StoreID, Reason: ReasonInherit}); err != nil {
					return false, fmt.Errorf("binding back: %w", err)
				}
				reason += fmt.Sprintf("; stays bound to %s in scrmgw", cur.GuideID)
			}
			if r.Reason != "" {
				reason += "; last refusal: " + r.Reason
			}
			if r.HandoverUserID != "" && r.ExternalUserID != "" {
				reason += fmt.Sprintf("; the customer stays with %s on %s", r.HandoverUserID, r.Channel)
			}
			h.settle(ctx, r, store.HandoverFailed, reason, r.ErrCode)
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("choosing a new guide: %w", err)
		}
		target = nb.GuideID
	}
	g, err := h.store.Guide(ctx, target, "")
	if err != nil {
		return false, err
	}
	ok, err := h.store.SetHandoverTarget(ctx, r, target, channelID(g, r.Channel))
	if err != nil {
		return false, err
	}
	return ok, nil
}

// request asks the channel instance to.channel to move rows (claimed,
// pending, all to the takeover user to.to) and records each outcome. It returns how many are
// requested now; an error means the channel could not be asked (or its
// answer was lost) and the rows not settled are released: their next
// claim is a further attempt, which asks the channel's status before
// asking the channel again.
func (h *Handovers) request(ctx context.Context, to takeover, rows []*store.Handover) (int, error) {
	from, xfer := rows[0].HandoverUserID, h.xfers[to.channel]
	requested := 0
	var ask []*store.Handover
	var status map[string]TakeoverStatus
	for _, r := range rows {
		if r.Attempts > 1 && status == nil {
			// An earlier claim may have asked the channel without
			// learning its answer: the channel knows.
			st, err := xfer.ResignedTransferStatus(ctx, from, to.to)
			if err != nil {
				h.release(ctx, derefs(rows), "checking an earlier request: "+err.Error())
				return 0, fmt.Errorf("checking earlier handover requests to %s on %s: %w", to.to, to.channel, err)
			}
			status = st
			if status == nil {
				status = map[string]TakeoverStatus{}
			}
		}
		if r.Attempts > 1 {
			switch status[r.ExternalUserID] {
			case TakeoverWaiting:
				if h.markRequested(ctx, r) {
					requested++
				}
				continue
			case TakeoverDone:
				h.settle(ctx, r, store.HandoverTransferred, "", 0)
				continue
			case TakeoverRefused, TakeoverFull:
				h.retarget(ctx, r, h.refusal(ctx, r, status[r.ExternalUserID] == TakeoverFull, "transfer_result"), 0)
				continue
			}
		}
		ask = append(ask, r)
	}
	for start := 0; start < len(ask); start += 100 {
		batch := ask[start:min(start+100, len(ask))]
		n, err := h.requestBatch(ctx, xfer, from, to, batch)
		requested += n
		if err != nil {
			h.release(ctx, derefs(ask[start+len(batch):]), "not asked yet: "+err.Error())
			return requested, err
		}
	}
	return requested, nil
}

func (h *Handovers) requestBatch(ctx context.Context, xfer ResignedTransferer, from string, to takeover, rows []*store.Handover) (int, error) {
	channel := to.channel
	ids := make([]string, len(rows))
	byID := make(map[string]*store.Handover, len(rows))
	for i, r := range rows {
		ids[i], byID[r.ExternalUserID] = r.ExternalUserID, r
	}
	outs, err := xfer.TransferResigned(ctx, from, to.to, ids)
	switch {
	case errors.Is(err, adapters.ErrOutcomeUnknown):
		// The channel may have acted: the next claim counts another
		// attempt and so asks the channel's status before asking again.
		h.release(ctx, derefs(rows), "outcome unknown, to be checked before asking again: "+err.Error())
		return 0, fmt.Errorf("requesting the handover to %s on %s (outcome unknown): %w", to.to, channel, err)
	case errors.Is(err, adapters.ErrInvalidRecipient) && takeoverRefused(apiCode(err)):
		// The channel does not take this guide: another one will do.
		for _, r := range rows {
			h.retarget(ctx, r, fmt.Sprintf("%s refused %s as the new guide: %v", channel, r.ToGuideID, err), apiCode(err))
		}
		return 0, nil
	case err != nil:
		h.release(ctx, derefs(rows), err.Error())
		return 0, fmt.Errorf("requesting the handover to %s on %s: %w", to.to, channel, err)
	}
	requested := 0
	var later error
	for _, o := range outs {
		r := byID[o.ExternalID]
		if r == nil {
			continue
		}
		delete(byID, o.ExternalID)
		switch o.Result {
		case TransferAccepted:
			if h.markRequested(ctx, r) {
				requested++
			}
		case TransferTakeoverFull:
			h.retarget(ctx, r, h.refusal(ctx, r, true, fmt.Sprintf("errcode %d", o.Code)), o.Code)
		case TransferTooSoon:
			h.settle(ctx, r, store.HandoverFailed, fmt.Sprintf("%s refuses to move the customer: they were handed over within the last 90 days "+
				"(errcode %d); they stay with %s on %s and are bound to %s in scrmgw", channel, o.Code, r.HandoverUserID, channel, r.ToGuideID), o.Code)
		case TransferNotContact:
			h.settle(ctx, r, store.HandoverFailed, fmt.Sprintf("not a contact of %s on %s any more (errcode %d); bound to %s in scrmgw",
				r.HandoverUserID, channel, o.Code, r.ToGuideID), o.Code)
		case TransferNotYet:
			h.release(ctx, []store.Handover{*r}, fmt.Sprintf("%s does not know yet that %s left (errcode %d)", channel, r.HandoverUserID, o.Code))
			later = fmt.Errorf("%s does not know yet that %s left (errcode %d)", channel, r.HandoverUserID, o.Code)
		default:
			h.settle(ctx, r, store.HandoverFailed, fmt.Sprintf("%s refused the handover to %s (errcode %d)", channel, r.ToGuideID, o.Code), o.Code)
		}
	}
	for _, r := range byID {
		h.release(ctx, []store.Handover{*r}, "not in the channel's answer")
		later = errors.Join(later, fmt.Errorf("no answer for a customer of the handover to %s on %s", to.to, channel))
	}
	return requested, later
}

// takeoverRefused reports whether a call-level refusal of a transfer
// names the guide taking over (an unknown or deactivated user), so that
// another guide will do. Other refusals (no permission for customer
// contact, an app outside its visible range) would refuse every guide:
// they are retried, for an operator to fix.
func takeoverRefused(code int) bool {
	switch code {
	case 40003, 46004, 60111, 92000:
		return true
	}
	return false
}

func apiCode(err error) int {
	var e *adapters.APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func (h *Handovers) markRequested(ctx context.Context, r *store.Handover) bool {
	ok, err := h.store.MarkHandoverRequested(ctx, r, time.Now().Add(h.opts.PollInterval))
	if err != nil {
		h.log.Warn("recording a requested handover", slog.Int64("handover_id", r.ID), slog.Any("error", err))
	}
	return ok
}

// settle ends a row (pending, claimed) and tells an operator about
// failures.
func (h *Handovers) settle(ctx context.Context, r *store.Handover, state, reason string, code int) {
	from := r.State
	if state == store.HandoverTransferred && reason == "" && r.Reason != "" && r.Tried != "" {
		reason = "taken over by " + r.ToGuideID + " after a refusal: " + r.Reason
	}
	ok, err := h.store.SettleHandover(ctx, r, from, state, reason, code)
	if err != nil {
		h.log.Warn("settling a handover", slog.Int64("handover_id", r.ID), slog.Any("error", err))
		return
	}
	if ok && state == store.HandoverFailed {
		h.log.Warn("handover failed; an operator should look", slog.Int64("handover_id", r.ID), slog.Int64("member_id", r.MemberID),
			slog.String("guide_id", r.GuideID), slog.String("to_guide_id", r.ToGuideID), slog.Int("errcode", code), slog.String("reason", reason))
	}
}

// retarget sends a claimed pending row back for another guide.
func (h *Handovers) retarget(ctx context.Context, r *store.Handover, reason string, code int) {
	ok, err := h.store.RetargetHandover(ctx, r, store.HandoverPending, reason, code)
	if err != nil {
		h.log.Warn("retargeting a handover", slog.Int64("handover_id", r.ID), slog.Any("error", err))
		return
	}
	if ok {
		h.log.Warn("handover refused; trying another guide", slog.Int64("member_id", r.MemberID), slog.String("guide_id", r.GuideID),
			slog.String("to_guide_id", r.ToGuideID), slog.Int("errcode", code), slog.String("reason", reason))
	}
}

// Poll checks a leaving guide's requested handovers that are due with the
// channel: taken over ones are settled, refused ones go to another guide,
// waiting ones are checked again later.
func (h *Handovers) Poll(ctx context.Context, guideID string) error {
	var rows []store.Handover
	for after := int64(0); ; {
		page, err := h.store.Handovers(ctx, store.HandoverFilter{GuideID: guideID, State: store.HandoverRequested, AfterID: after, Limit: 1000})
		if err != nil {
			return err
		}
		rows = append(rows, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	now := time.Now()
	var due []*store.Handover
	var next time.Time
	for i := range rows {
		r := &rows[i]
		// Due: asynq may run this check up to pollEarly before its time.
		if r.CheckAt != nil && r.CheckAt.After(now.Add(pollEarly)) {
			if next.IsZero() || r.CheckAt.Before(next) {
				next = *r.CheckAt
			}
			continue
		}
		due = append(due, r)
	}
	tos, byTo := byTakeover(due)
	retargeted, waiting := 0, false
	var errs []error
	for _, to := range tos {
		group := byTo[to]
		xfer := h.xfers[to.channel]
		if xfer == nil {
			for _, r := range group {
				h.settle(ctx, r, store.HandoverFailed, fmt.Sprintf("%s is not configured any more: its takeover by %s cannot be checked",
					r.Channel, r.ToGuideID), 0)
			}
			continue
		}
		status, err := xfer.ResignedTransferStatus(ctx, group[0].HandoverUserID, to.to)
		if err != nil {
			errs = append(errs, fmt.Errorf("checking handovers to %s on %s: %w", to.to, to.channel, err))
			continue
		}
		for _, r := range group {
			switch status[r.ExternalUserID] {
			case TakeoverDone:
				h.settle(ctx, r, store.HandoverTransferred, "", 0)
			case TakeoverRefused, TakeoverFull:
				why := h.refusal(ctx, r, status[r.ExternalUserID] == TakeoverFull, "transfer_result")
				if ok, err := h.store.RetargetHandover(ctx, r, store.HandoverRequested, why, 0); err != nil {
					errs = append(errs, err)
				} else if ok {
					retargeted++
					h.log.Warn("handover refused; trying another guide", slog.Int64("member_id", r.MemberID),
						slog.String("guide_id", r.GuideID), slog.String("to_guide_id", r.ToGuideID), slog.String("reason", why))
				}
			default:
				if now.Sub(r.CreatedAt) > h.opts.GiveUp {
					// Not listed, or in a state it never leaves: an
					// operator looks (the member stays bound to the new
					// guide here).
					h.settle(ctx, r, store.HandoverFailed, fmt.Sprintf("%s did not report the takeover within %s of the handover",
						r.Channel, h.opts.GiveUp), 0)
					continue
				}
				if _, err := h.store.DeferHandoverCheck(ctx, r, now.Add(h.opts.PollInterval)); err != nil {
					errs = append(errs, err)
				}
				waiting = true
			}
		}
	}
	if retargeted > 0 {
		errs = append(errs, h.enqueueRequest(ctx, guideID, "poll:"+strconv.FormatInt(now.UnixMilli(), 10)))
	}
	if waiting && (next.IsZero() || now.Add(h.opts.PollInterval).Before(next)) {
		next = now.Add(h.opts.PollInterval)
	}
	if !next.IsZero() && len(errs) == 0 {
		errs = append(errs, h.schedulePoll(ctx, guideID, next))
	}
	return errors.Join(errs...)
}

// channelID is a guide's id on a channel instance.
func channelID(g *store.Guide, channel string) string { return g.Identity(channel) }
