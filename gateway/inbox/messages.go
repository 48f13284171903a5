package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/bots"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/gateway/outbox"
	"github.com/scrmgw/scrmgw/store"
)

// Messages hands member and guide messages to the bots and sends their
// replies back on the channel the message came from, in the same
// conversation.
type Messages struct {
	// OnLogged, when set, is handed each message.received logged (the
	// workflow engine); it must be idempotent.
	OnLogged func(ctx context.Context, e *store.Event) error

	store  *store.Store
	bot    bots.Bot
	sender *outbox.Sender
	log    *slog.Logger
}

// NewMessages returns the message handler.
func NewMessages(s *store.Store, bot bots.Bot, sender *outbox.Sender, log *slog.Logger) *Messages {
	return &Messages{store: s, bot: bot, sender: sender, log: log}
}

// Register routes messages to m.
func (m *Messages) Register(p *Processor) {
	p.On(OnMessage, HandlerFunc(m.handle))
}

func (m *Messages) handle(ctx context.Context, in *adapters.Inbound) error {
	attributed := *in
	in = &attributed
	v, err := m.attribute(ctx, in)
	if err != nil {
		return fmt.Errorf("attributing message: %w", err)
	}
	var memberID int64 // the sender's, once a member
	if v != nil {
		if err := m.logEvent(ctx, in, v.ID); err != nil {
			return err
		}
		memberID = v.ID
	}
	replies, err := m.bot.Handle(ctx, &bots.Message{Channel: in.Channel, From: in.From, SenderID: in.SenderID, Brand: in.Brand,
		Text: in.Text, Location: in.Location, ReplyTo: in.ReplyTo, ConversationID: in.ConversationID, DedupKey: in.DedupKey,
		Member: v})
	if err != nil {
		return fmt.Errorf("bot: %w", err)
	}
	if in.From == adapters.PartyMember && memberID == 0 {
		// The member bot makes a sender not yet known a member: their
		// first message is theirs too, logged after their member.joined.
		v, err := m.attribute(ctx, in)
		if err != nil {
			return fmt.Errorf("attributing message: %w", err)
		}
		if v != nil {
			if err := m.logEvent(ctx, in, v.ID); err != nil {
				return err
			}
			memberID = v.ID
		}
	}
	// Replies without a key of their own are keyed by the message and
	// their place among those, so a retried message that now also ends a
	// handoff (keyed notices) still answers once.
	//
	// They are sent at once, in order, each after the one before it was
	// accepted (or failed for good); once one has to wait (no send slot
	// at once, a temporary failure, an outcome in doubt), it and those
	// after it are queued, and queued sends keep no order.
	n, inline := 0, true
	for _, r := range replies {
		if r.To == nil {
			// The answer is the member's (their export and erasure
			// find it by member and brand).
			r.To = &bots.Recipient{Channel: in.Channel, ID: in.SenderID, Party: in.From, ReplyTo: in.ReplyTo, Brand: in.Brand, MemberID: memberID}
		}
		if r.Key == "" {
			r.Key = fmt.Sprintf("reply:%s:%s:%d", in.Channel, in.DedupKey, n)
			n++
		}
		if !inline {
			if err := m.Queue(ctx, r); err != nil {
				return err
			}
			continue
		}
		row, err := m.send(ctx, r, true)
		if err != nil {
			return err
		}
		inline = row.State == store.OutboxSent || row.State == store.OutboxFailed
	}
	return nil
}

// Queue saves a bot's reply in the outbox, keyed by r.Key, and queues its
// delivery to r.To; the bots' sweeps and digests send through it. (The
// replies to a message are sent by its handler at once: handle.)
func (m *Messages) Queue(ctx context.Context, r bots.Reply) error {
	_, err := m.send(ctx, r, false)
	return err
}

// send saves a reply in the outbox and sends it at once (now), or queues
// its delivery.
func (m *Messages) send(ctx context.Context, r bots.Reply, now bool) (*store.OutboxMessage, error) {
	if r.To == nil || r.Key == "" {
		return nil, errors.New("queueing reply: a recipient and a key are required")
	}
	out := &adapters.Outbound{IdempotencyKey: r.Key, To: r.To.ID, ToParty: r.To.Party, Kind: r.Kind, Text: r.Text,
		Fields: r.Fields, ReplyTo: r.To.ReplyTo}
	meta := outbox.Meta{BrandID: r.To.Brand, GuideID: r.To.GuideID}
	if r.To.MemberID != 0 {
		id := r.To.MemberID
		meta.MemberID = &id
	}
	send := m.sender.Send
	if now {
		send = m.sender.SendNow
	}
	row, err := send(ctx, r.To.Channel, out, meta)
	if err != nil {
		return nil, fmt.Errorf("sending reply: %w", err)
	}
	return row, nil
}

var _ bots.Outbox = (*Messages)(nil)

// logEvent records message.received for the sender, member memberID,
// for workflows waiting on it, with the message's brand (attributed).
func (m *Messages) logEvent(ctx context.Context, in *adapters.Inbound, memberID int64) error {
	e := &store.Event{Type: events.TypeMessageReceived, BrandID: in.Brand, MemberID: &memberID,
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
