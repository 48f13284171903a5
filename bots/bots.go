// Package bots answers members and guides who write to the brand on any
// channel. A Bot takes one inbound Message and returns the Replies to send
// back; middleware wraps bots (logging, recovering, limiting input); the
// Router picks the member bot or the guide bot by who wrote. Intents are
// recognised by keywords and patterns in zh and en, configurable per brand
// (configs/bots/), and replies are rendered from message templates.
//
// A member who shares their location is told the nearest stores and, as
// the bot promises, bound to a guide of the nearest one selling the brand
// (a sender not yet known becomes a member first, and member.joined is
// logged for the workflows): enrol.go.
//
// The member bot hands a conversation to the member's guide when asked
// (or when it could not answer twice in a row); while the handoff is
// open, messages pass between member and guide on their own channels
// (handoff.go says how a guide addresses and ends them). The guide bot
// also looks up the guide's own members, counts their stats and guide
// points, ranks them on their store's and brand's leaderboards, and
// (SendDigests) pushes their daily digest. Members can list their recent
// orders and accept or decline the offers of the other brands their
// store carries (incentives.go).
//
// bots uses channels only through the Replies handed back to the caller
// (a Reply may name another Recipient) and the Outbox it queues into; it
// never imports a channel package.
package bots

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
)

// Message is one inbound message a bot answers.
type Message struct {
	Channel  string
	From     adapters.Party
	SenderID string
	Brand    string
	Text     string
	Location *adapters.Location
	// ReplyTo is the channel's data for answering in the conversation.
	ReplyTo        map[string]string
	ConversationID string
	// DedupKey identifies the delivery; replies are keyed by it, so a
	// message handled twice is answered once.
	DedupKey string
	// Locale is zh or en: the member's language as the bot guessed it.
	Locale string
	// Member is the sender's member as read for this message (the
	// gateway reads it to attribute the message, the member bot after
	// making the sender a member), nil when not read or not a member:
	// the bots answer from it instead of reading the member again.
	Member *store.MemberView
}

// Reply is one message back to the sender, or, with To set, to someone
// else: the guide a member was handed to, or the member a guide answers.
type Reply struct {
	Kind   string
	Text   string
	Fields map[string]string
	// To, when set, is the recipient instead of the sender.
	To *Recipient
	// Key, when set, is the reply's idempotency key; else it is keyed by
	// the message answered and its place among the replies.
	Key string
}

// Recipient is someone a reply goes to on a channel.
type Recipient struct {
	Channel string
	// ID is the recipient's id on the channel.
	ID    string
	Party adapters.Party
	// ReplyTo is the channel's data for answering in the recipient's
	// conversation (a WeCom kf open_kfid, a DingTalk session webhook).
	ReplyTo  map[string]string
	MemberID int64
	GuideID  string
	Brand    string
}

// Outbox queues replies that answer no message (a handoff ended idle, a
// digest) for delivery, once per Reply.Key.
type Outbox interface {
	Queue(ctx context.Context, r Reply) error
}

// Bot answers a message.
type Bot interface {
	Handle(ctx context.Context, m *Message) ([]Reply, error)
}

// BotFunc adapts a function to Bot.
type BotFunc func(ctx context.Context, m *Message) ([]Reply, error)

// Handle calls f.
func (f BotFunc) Handle(ctx context.Context, m *Message) ([]Reply, error) { return f(ctx, m) }

// Middleware wraps a Bot.
type Middleware func(Bot) Bot

// Chain wraps b in middleware, the first outermost.
func Chain(b Bot, mw ...Middleware) Bot {
	for i := len(mw) - 1; i >= 0; i-- {
		b = mw[i](b)
	}
	return b
}

// MaxTextRunes is how much of a message bots read; longer messages are
// cut (WeCom allows 2048 bytes, DingTalk about 5000 characters).
const MaxTextRunes = 2000

// Normalize trims the text, cuts it to MaxTextRunes, replaces invalid
// UTF-8 and guesses the locale from the script.
func Normalize() Middleware {
	return func(next Bot) Bot {
		return BotFunc(func(ctx context.Context, m *Message) ([]Reply, error) {
			t := strings.ToValidUTF8(strings.TrimSpace(m.Text), "\uFFFD")
			if utf8.RuneCountInString(t) > MaxTextRunes {
				t = string([]rune(t)[:MaxTextRunes])
			}
			m.Text = t
			if m.Locale == "" {
				m.Locale = guessLocale(t)
			}
			return next.Handle(ctx, m)
		})
	}
}

// guessLocale says zh when the text has any Han character, en when it has
// Latin letters and no Han, and zh otherwise (the default market).
func guessLocale(t string) string {
	latin := false
	for _, r := range t {
		switch {
		case r >= 0x4E00 && r <= 0x9FFF, r >= 0x3400 && r <= 0x4DBF:
			return "zh"
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			latin = true
		}
	}
	if latin {
		return "en"
	}
	return "zh"
}

// Recover turns a panic in a bot into an error, so one bad message never
// takes the worker down.
func Recover(log *slog.Logger) Middleware {
	return func(next Bot) Bot {
		return BotFunc(func(ctx context.Context, m *Message) (replies []Reply, err error) {
			defer func() {
				if r := recover(); r != nil {
					log.Error("bot panicked", slog.String("channel", m.Channel), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
					err = fmt.Errorf("bot panicked: %v", r)
				}
			}()
			return next.Handle(ctx, m)
		})
	}
}

// Router sends members' messages to the member bot and guides' to the
// guide bot.
type Router struct {
	Member Bot
	Guide  Bot
}

// Handle routes m.
func (r *Router) Handle(ctx context.Context, m *Message) ([]Reply, error) {
	if m.From == adapters.PartyGuide {
		return r.Guide.Handle(ctx, m)
	}
	return r.Member.Handle(ctx, m)
}
