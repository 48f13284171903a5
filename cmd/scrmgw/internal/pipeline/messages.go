package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/bots"
	"github.com/scrmgw/scrmgw/store"
)

// TypeMessageReceived is the event logged for a known member's message.
const TypeMessageReceived = "message.received"

// Messages hands member and guide messages to the bots and sends their
// replies back on the channel the message came from, in the same
// conversation.
type Messages struct {
	// OnLogged, when set, is handed each message.received logged (the
	// workflow engine); it must be idempotent.
	OnLogged func(ctx context.Context, e *store.Event) error

	store  *store.Store
	bot    bots.Bot
	sender *Sender
	log    *slog.Logger
}

// NewMessages returns the message handler.
func NewMessages(s *store.Store, bot bots.Bot, sender *Sender, log *slog.Logger) *Messages {
	return &Messages{store: s, bot: bot, sender: sender, log: log}
}

// Register routes messages to m.
func (m *Messages) Register(p *Processor) {
	p.On(OnMessage, HandlerFunc(m.handle))
}

func (m *Messages) handle(ctx context.Context, in *adapters.Inbound) error {
	if in.From == adapters.PartyMember {
		if err := m.logEvent(ctx, in); err != nil {
			return err
		}
	}
	replies, err := m.bot.Handle(ctx, &bots.Message{Channel: in.Channel, From: in.From, SenderID: in.SenderID, Brand: in.Brand,
		Text: in.Text, Location: in.Location, ReplyTo: in.ReplyTo, ConversationID: in.ConversationID, DedupKey: in.DedupKey})
	if err != nil {
		return fmt.Errorf("bot: %w", err)
	}
	for i, r := range replies {
		out := &adapters.Outbound{IdempotencyKey: fmt.Sprintf("reply:%s:%s:%d", in.Channel, in.DedupKey, i), To: in.SenderID,
			ToParty: in.From, Kind: r.Kind, Text: r.Text, Fields: r.Fields, ReplyTo: in.ReplyTo}
		if _, err := m.sender.Send(ctx, in.Channel, out, OutboxMeta{BrandID: in.Brand}); err != nil {
			return fmt.Errorf("queueing reply: %w", err)
		}
	}
	return nil
}

// logEvent records message.received for a known member, for workflows
// waiting on it.
func (m *Messages) logEvent(ctx context.Context, in *adapters.Inbound) error {
	v, err := m.store.MemberByIdentity(ctx, in.Channel, in.SenderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	e := &store.Event{Type: TypeMessageReceived, BrandID: in.Brand, MemberID: &v.ID,
		Source: in.Channel, SourceID: in.DedupKey, OccurredAt: in.At,
		Payload: eventPayload(map[string]string{"kind": in.Kind, "text": in.Text})}
	if _, err := m.store.AppendEvent(ctx, e); err != nil {
		return err
	}
	if m.OnLogged != nil {
		return m.OnLogged(ctx, e)
	}
	return nil
}
