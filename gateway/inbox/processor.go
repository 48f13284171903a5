package inbox

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

// Channel-neutral event names carried in adapters.Inbound.Event.
const (
	EventContactAdded   = "contact.added"
	EventContactRemoved = "contact.removed"
	EventContactUpdated = "contact.updated"
	EventGuideJoined    = "guide.joined"
	EventGuideLeft      = "guide.left"
	// EventLocationReported: the channel reported where a member is,
	// without them sending it (an Official Account's LOCATION).
	EventLocationReported = "location.reported"
	// EventTagsChanged: a channel's own tag library changed (a WeCom
	// change_external_tag).
	EventTagsChanged = "tags.changed"
)

// Handler acts on one recorded delivery. Handlers must be idempotent
// (their writes keyed by the delivery's DedupKey): a delivery is handled
// again when a previous attempt failed part-way.
type Handler interface {
	Handle(ctx context.Context, in *adapters.Inbound) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, in *adapters.Inbound) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, in *adapters.Inbound) error { return f(ctx, in) }

// Touching marks h as recording the member's touch itself (the
// identity's last inbound time, store.TouchIdentity, folded into its own
// writes): a delivery whose every handler is Touching is not touched by
// the processor, which saves one or two statements per delivery.
func Touching(h Handler) Handler { return touching{h} }

type touching struct{ Handler }

// Processor handles queued inbox rows.
type Processor struct {
	store    *store.Store
	channels *adapters.Registry
	log      *slog.Logger
	handlers []route
}

type route struct {
	match func(*adapters.Inbound) bool
	h     Handler
}

// NewProcessor returns a Processor.
func NewProcessor(s *store.Store, channels *adapters.Registry, log *slog.Logger) *Processor {
	return &Processor{store: s, channels: channels, log: log}
}

// On routes deliveries matching match to h; every matching handler runs,
// in registration order.
func (p *Processor) On(match func(*adapters.Inbound) bool, h Handler) {
	p.handlers = append(p.handlers, route{match: match, h: h})
}

// OnEvent routes events of a name.
func OnEvent(name string) func(*adapters.Inbound) bool {
	return func(in *adapters.Inbound) bool { return in.Kind == "event" && in.Event == name }
}

// OnMessage routes messages (everything but events).
func OnMessage(in *adapters.Inbound) bool { return in.Kind != "event" }

// ProcessTask is the asynq handler of TypeProcess.
func (p *Processor) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var pl queue.IDPayload
	if err := json.Unmarshal(t.Payload(), &pl); err != nil || pl.ID == 0 {
		return fmt.Errorf("bad %s payload %q: %w", TypeProcess, t.Payload(), asynq.SkipRetry)
	}
	return p.process(ctx, pl.ID, queue.LastAttempt(ctx))
}

// process handles one inbox row unless it was handled already; final
// makes a failure final.
func (p *Processor) process(ctx context.Context, id int64, last bool) error {
	row, err := p.store.Inbox(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil // pruned: it was processed long ago
	}
	if err != nil {
		return err
	}
	if row.State != store.InboxPending {
		return nil
	}
	var in adapters.Inbound
	if err := json.Unmarshal(row.Payload, &in); err != nil {
		p.store.FailInbox(ctx, row.ID, "undecodable payload: "+err.Error(), true)
		return fmt.Errorf("inbox %d: %v: %w", row.ID, err, asynq.SkipRetry)
	}
	if err := p.handle(ctx, &in); err != nil {
		final := last || errors.Is(err, store.ErrInvalid) || errors.Is(err, asynq.SkipRetry)
		if ferr := p.store.FailInbox(ctx, row.ID, err.Error(), final); ferr != nil {
			p.log.Warn("recording inbox failure", slog.Int64("inbox_id", row.ID), slog.Any("error", ferr))
		}
		p.log.Warn("handling inbound failed", slog.Int64("inbox_id", row.ID), slog.String("channel", in.Channel),
			slog.String("kind", in.Kind), slog.String("event", in.Event), slog.Bool("final", final), slog.Any("error", err))
		if final {
			return fmt.Errorf("inbox %d: %w: %w", row.ID, err, asynq.SkipRetry)
		}
		return fmt.Errorf("inbox %d: %w", row.ID, err)
	}
	return p.store.FinishInbox(ctx, row.ID)
}

func (p *Processor) handle(ctx context.Context, in *adapters.Inbound) error {
	if ch, ok := p.channels.Channel(in.Channel); ok {
		if ex, ok := ch.(adapters.Expander); ok {
			handled, err := ex.Expand(ctx, in)
			if err != nil {
				return fmt.Errorf("expanding %s delivery: %w", in.Channel, err)
			}
			if handled {
				return nil
			}
		}
	}
	var hs []Handler
	touched := true // by every handler itself
	for _, r := range p.handlers {
		if r.match(in) {
			hs = append(hs, r.h)
			if _, ok := r.h.(touching); !ok {
				touched = false
			}
		}
	}
	if len(hs) == 0 {
		p.log.Debug("no handler for inbound", slog.String("channel", in.Channel), slog.String("kind", in.Kind), slog.String("event", in.Event))
		touched = false
	}
	if touched {
		for _, h := range hs {
			if err := h.Handle(ctx, in); err != nil {
				return err
			}
		}
		return nil
	}
	// Before the handlers (a workflow they start may send at once) and
	// after them (they may have made the sender a member), unless it
	// moved the time before them: then it is recorded.
	moved, err := p.touch(ctx, in)
	if err != nil {
		return err
	}
	for _, h := range hs {
		if err := h.Handle(ctx, in); err != nil {
			return err
		}
	}
	if moved {
		return nil
	}
	_, err = p.touch(ctx, in)
	return err
}

// touch records that a member wrote or did something on the channel (any
// delivery from a member but their leaving): the windows some channels
// send in (adapters.Spec.Window) run from it.
// It reports whether it moved the identity's time.
func (p *Processor) touch(ctx context.Context, in *adapters.Inbound) (bool, error) {
	if in.From != adapters.PartyMember || in.Event == EventContactRemoved {
		return false, nil
	}
	moved, err := p.store.TouchIdentityMoved(ctx, in.Channel, in.SenderID, in.At)
	if err != nil {
		return false, fmt.Errorf("recording the member's last message: %w", err)
	}
	return moved, nil
}
