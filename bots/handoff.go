package bots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
)

// Handing a conversation to a person.
//
// A member is handed to their bound guide when they ask for a person
// (the handoff intent: "转人工", "talk to a person"), or when the bot
// could not answer two messages in a row within unansweredWindow: the
// first gets the help menu (which offers "转人工"), the second goes to
// the guide, because a member who repeats themselves wants an answer, not
// the same menu again.
//
// The guide gets the message on their own channel (a WeCom app message
// or a DingTalk robot message) with the member's name, phone tail, level,
// store and latest messages. While the handoff is open, the member's
// messages go to the guide and the bot stays quiet, except that an
// unsubscribe still unsubscribes (and ends the handoff).
//
// A guide's message goes to the member of their most recent handoff (the
// one whose member wrote last); "#12 text" sends to handoff 12; "结束" or
// "end" ends the most recent, "结束 12" or "#12 结束" a numbered one. A
// guide command sent exactly (a pattern, or a whole message equal to a
// keyword: "我的任务") still reaches the guide bot; "完成" and "查" are
// commands then only with a number ("完成 12", "查 8000"), so "已完成，
// 给您寄出了" goes to the member.
//
// A handoff with no message either way for Deps.HandoffIdle ends: the
// periodic sweep (EndIdleHandoffs) or, if it has not run yet, the next
// message of either side ends it, and both sides are told.

// unansweredWindow is how close two unanswered messages must be for the
// second to go to the guide.
const unansweredWindow = 10 * time.Minute

// recentLines is how many of the member's earlier messages the guide sees.
const recentLines = 5

// handoffEventUnassigned is logged when a member asks for a person and
// nobody can take it, so operators see it.
const handoffEventUnassigned = "handoff.unassigned"

// memberInHandoff handles a member's message while they have a handoff
// open: it passes the message to the guide (handled), or ends the handoff
// that was idle too long or that an unsubscribe ends, returning the
// notices and leaving the message to the bot (not handled).
func (d Deps) memberInHandoff(ctx context.Context, m *Message, v *store.MemberView, intent string) ([]Reply, bool, error) {
	h, err := d.Handoffs.OpenHandoffOf(ctx, v.ID, m.Brand)
	if errors.Is(err, store.ErrNotFound) {
		// A retry of the message that ended the member's last handoff
		// tells both sides again (the same keys: once each).
		last, err := d.Handoffs.LastHandoffOf(ctx, v.ID, m.Brand)
		if err == nil && m.DedupKey != "" && last.State == store.HandoffEnded && last.EndKey == m.DedupKey {
			rs, err := d.endNotices(ctx, last, last.EndReason != store.HandoffEndedUnsubscr)
			return rs, false, err
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, false, err
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	now := d.now()
	switch {
	case h.OpenKey == deliveryKey(m):
		// This message opened it (a retry): answer as the first time.
		rs, err := d.startHandoff(ctx, m, v, h.Reason)
		return rs, true, err
	case now.Sub(h.LastActivityAt) > d.idle():
		rs, err := d.endHandoff(ctx, h, store.HandoffEndedIdle, m.DedupKey, now, true)
		return rs, false, err
	case intent == IntentUnsubscribe:
		// The guide is told; the member gets the unsubscribe answer.
		rs, err := d.endHandoff(ctx, h, store.HandoffEndedUnsubscr, m.DedupKey, now, false)
		return rs, false, err
	}
	var rt *string
	if m.Channel == h.MemberChannel && m.SenderID == h.MemberAddress && len(m.ReplyTo) > 0 {
		// The latest conversation data (a fresh DingTalk session webhook).
		b, _ := json.Marshal(m.ReplyTo)
		s := string(b)
		rt = &s
	}
	if err := d.Handoffs.TouchHandoff(ctx, h.ID, true, rt, now); err != nil {
		return nil, false, fmt.Errorf("recording handoff message: %w", err)
	}
	data := &templates.Data{Member: templates.Member{Name: v.NameFor(h.BrandID)},
		Handoff: templates.Handoff{ID: h.ID, Text: messageText(m)}}
	r, err := d.renderTo(TemplateHandoffForward, d.guideLocale(), guideRecipient(h), data)
	if err != nil {
		return nil, false, err
	}
	return []Reply{r}, true, nil
}

// startHandoff hands the member's conversation to their guide, or says
// why nobody can take it.
func (d Deps) startHandoff(ctx context.Context, m *Message, v *store.MemberView, reason string) ([]Reply, error) {
	if v == nil {
		return d.noGuide(ctx, m, nil, reason, "unknown member")
	}
	var b *store.Binding
	for i := range v.Bindings {
		if v.Bindings[i].BrandID == m.Brand || m.Brand == "" {
			b = &v.Bindings[i]
			break
		}
	}
	if b == nil {
		return d.noGuide(ctx, m, v, reason, "no guide bound")
	}
	g, err := d.Directory.Guide(ctx, b.GuideID, "")
	if err != nil {
		return nil, err
	}
	channel, addr := d.guideAddress(g, m.Channel)
	if !g.Active || channel == "" {
		return d.noGuide(ctx, m, v, reason, "guide not reachable")
	}
	rs, err := d.Directory.RetailStore(ctx, b.StoreID, "")
	if err != nil {
		return nil, err
	}
	replyTo, _ := json.Marshal(m.ReplyTo)
	h := &store.Handoff{BrandID: b.BrandID, MemberID: v.ID, GuideID: g.ID, MemberChannel: m.Channel, MemberAddress: m.SenderID,
		MemberReplyTo: string(replyTo), MemberName: cut(v.NameFor(b.BrandID), 50), MemberTail: v.TailFor(b.BrandID), GuideChannel: channel, GuideAddress: addr, Locale: m.Locale, Reason: reason,
		OpenKey: deliveryKey(m), OpenedAt: d.now()}
	fresh, err := d.Handoffs.OpenHandoff(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("opening handoff: %w", err)
	}
	if !fresh && h.OpenKey != deliveryKey(m) {
		// Opened meanwhile by another message: pass this one on.
		data := &templates.Data{Member: templates.Member{Name: v.NameFor(h.BrandID)}, Handoff: templates.Handoff{ID: h.ID, Text: messageText(m)}}
		r, err := d.renderTo(TemplateHandoffForward, d.guideLocale(), guideRecipient(h), data)
		if err != nil {
			return nil, err
		}
		return []Reply{r}, nil
	}
	if fresh {
		d.log().InfoContext(ctx, "conversation handed to guide", slog.Int64("handoff_id", h.ID), slog.Int64("member_id", v.ID),
			slog.String("guide_id", g.ID), slog.String("reason", reason), slog.String("channel", m.Channel))
	}
	mdata := &templates.Data{Guide: templates.Guide{Name: g.Name, Store: rs.Name}, Handoff: templates.Handoff{ID: h.ID, Reason: reason}}
	brandData(ctx, d, m.Brand, mdata)
	toMember, err := d.render(TemplateHandoffStarted, m, mdata, nil)
	if err != nil {
		return nil, err
	}
	gdata := &templates.Data{Member: memberData(v, b.BrandID), Store: templates.Store{Name: rs.Name},
		Guide:   templates.Guide{Name: g.Name, Store: rs.Name},
		Handoff: templates.Handoff{ID: h.ID, Text: messageText(m), Reason: reason, Member: v.NameFor(b.BrandID)}}
	brandData(ctx, d, m.Brand, gdata)
	// What the member wrote recently to the handoff's brand (or to no
	// one brand), never to another brand.
	recent, err := d.recent(ctx, v.ID, b.BrandID, m.DedupKey, zoneOf(rs.TimeZone))
	if err != nil {
		return nil, err
	}
	gdata.Handoff.Recent = recent
	toGuide, err := d.renderTo(TemplateHandoffRequest, d.guideLocale(), guideRecipient(h), gdata)
	if err != nil {
		return nil, err
	}
	return append(toMember, toGuide), nil
}

// noGuide answers a member nobody can take and logs the case as an event.
func (d Deps) noGuide(ctx context.Context, m *Message, v *store.MemberView, reason, why string) ([]Reply, error) {
	e := &store.Event{Type: handoffEventUnassigned, BrandID: m.Brand, Source: "bots", SourceID: "handoff:" + deliveryKey(m),
		Payload: mustJSON(map[string]string{"channel": m.Channel, "reason": reason, "why": why}), OccurredAt: d.now()}
	var memberID int64
	if v != nil {
		e.MemberID, memberID = &v.ID, v.ID
	}
	if _, err := d.Handoffs.AppendEvent(ctx, e); err != nil {
		return nil, fmt.Errorf("logging unassigned handoff: %w", err)
	}
	d.log().WarnContext(ctx, "member asked for a person; no guide can take it", slog.Int64("member_id", memberID),
		slog.String("brand", m.Brand), slog.String("channel", m.Channel), slog.String("why", why))
	data := &templates.Data{Handoff: templates.Handoff{Reason: reason}}
	brandData(ctx, d, m.Brand, data)
	return d.render(TemplateHandoffNoGuide, m, data, nil)
}

// unansweredBefore reports whether the member's previous message, within
// unansweredWindow and after their last handoff, was one the bot could
// not answer either.
func (d Deps) unansweredBefore(ctx context.Context, m *Message, v *store.MemberView) (bool, error) {
	evs, err := d.Handoffs.RecentMessages(ctx, v.ID, m.Brand, 3)
	if err != nil {
		return false, err
	}
	var prev *store.Event
	for i := range evs {
		if evs[i].SourceID != m.DedupKey || m.DedupKey == "" {
			prev = &evs[i]
			break
		}
	}
	if prev == nil || d.now().Sub(prev.OccurredAt) > unansweredWindow {
		return false, nil
	}
	var p struct{ Kind, Text string }
	if err := json.Unmarshal([]byte(prev.Payload), &p); err != nil || p.Kind == "location" {
		return false, nil
	}
	if intent, _ := d.Intents.Member(m.Brand).Match(p.Text); intent != "" {
		return false, nil
	}
	last, err := d.Handoffs.LastHandoffOf(ctx, v.ID, m.Brand)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	// The previous message came before (or during) a handoff: it was
	// answered, by the guide.
	return last.EndedAt != nil && last.EndedAt.Before(prev.OccurredAt.Truncate(time.Microsecond)), nil
}

// addressRe is a guide's "#12 text": the handoff number and the text.
var addressRe = regexp.MustCompile(`(?s)^\s*#\s*(\d{1,18})\s*(.*?)\s*$`)

// guideInHandoff handles a guide's message about handoffs: ending one,
// or text for a member. handled is false for everything else (a guide
// command, or a guide with no open handoff).
func (d Deps) guideInHandoff(ctx context.Context, m *Message, g *store.Guide) ([]Reply, bool, error) {
	open, err := d.Handoffs.GuideHandoffs(ctx, g.ID)
	if err != nil {
		return nil, false, err
	}
	now := d.now()
	intent, arg := d.Intents.Guide(m.Brand).MatchCommand(m.Text)
	if len(open) > 0 && (intent == IntentDone || intent == IntentLookup) && !isDigits(strings.TrimPrefix(strings.TrimSpace(arg), "#")) {
		// "已完成，谢谢" or "找到了" is for the member: in a handoff these
		// commands take a number ("完成 12", "查 8000").
		intent, arg = "", ""
	}
	if intent == IntentHandoffEnd {
		if m.DedupKey != "" {
			h, err := d.Handoffs.HandoffEndedBy(ctx, g.ID, m.DedupKey)
			switch {
			case err == nil:
				// This message ended it (a retry): the same notices again.
				rs, err := d.endNotices(ctx, h, true)
				return d.answerGuide(rs, h), true, err
			case !errors.Is(err, store.ErrNotFound):
				return nil, true, err
			}
		}
		h, rs, err := d.pick(ctx, m, open, arg)
		if h == nil || err != nil {
			return rs, true, err
		}
		rs, err = d.endHandoff(ctx, h, store.HandoffEndedByGuide, m.DedupKey, now, true)
		return d.answerGuide(rs, h), true, err
	}
	text := m.Text
	var target *store.Handoff
	if sub := addressRe.FindStringSubmatch(m.Text); sub != nil {
		h, rs, err := d.pick(ctx, m, open, sub[1])
		if h == nil || err != nil {
			return rs, true, err
		}
		if sub[2] == "" {
			rs, err := d.unknownHandoff(m, 0, open)
			return rs, true, err
		}
		target, text = h, sub[2]
	} else {
		if len(open) == 0 || intent != "" {
			return nil, false, nil
		}
		target = &open[0]
	}
	if now.Sub(target.LastActivityAt) > d.idle() {
		// Ended for inactivity before the sweep came by: the text is not
		// passed on, and the guide is told why.
		rs, err := d.endHandoff(ctx, target, store.HandoffEndedIdle, m.DedupKey, now, true)
		return d.answerGuide(rs, target), true, err
	}
	if err := d.Handoffs.TouchHandoff(ctx, target.ID, false, nil, now); err != nil {
		return nil, true, fmt.Errorf("recording handoff message: %w", err)
	}
	if text == "" {
		text = "[" + m.Channel + "]" // a picture or location: not passed on as such
	}
	data := &templates.Data{Guide: templates.Guide{Name: g.Name}, Handoff: templates.Handoff{ID: target.ID, Text: text}}
	r, err := d.renderTo(TemplateHandoffReply, target.Locale, memberRecipient(target), data)
	if err != nil {
		return nil, true, err
	}
	return []Reply{r}, true, nil
}

// pick finds the open handoff a guide named (number arg), or their most
// recent one when arg is empty; when there is none, it returns the reply
// that says so.
func (d Deps) pick(_ context.Context, m *Message, open []store.Handoff, arg string) (*store.Handoff, []Reply, error) {
	if arg == "" {
		if len(open) == 0 {
			rs, err := d.unknownHandoff(m, 0, open)
			return nil, rs, err
		}
		return &open[0], nil, nil
	}
	n, err := strconv.ParseInt(arg, 10, 64)
	if err == nil {
		for i := range open {
			if open[i].ID == n {
				return &open[i], nil, nil
			}
		}
	}
	rs, err := d.unknownHandoff(m, n, open)
	return nil, rs, err
}

func (d Deps) unknownHandoff(m *Message, n int64, open []store.Handoff) ([]Reply, error) {
	data := &templates.Data{Handoff: templates.Handoff{ID: n}, Handoffs: handoffList(open, 0)}
	return d.render(TemplateHandoffUnknown, m, data, nil)
}

// answerGuide turns the guide's notice among end notices into a reply in
// the guide's own conversation (they just wrote).
func (d Deps) answerGuide(rs []Reply, h *store.Handoff) []Reply {
	for i := range rs {
		if rs[i].To != nil && rs[i].To.Party == adapters.PartyGuide && rs[i].To.GuideID == h.GuideID {
			rs[i].To = nil
		}
	}
	return rs
}

// endHandoff ends a handoff and returns the notices for the guide and,
// when toMember, the member. A handoff someone else ended meanwhile gets
// no notices from here.
func (d Deps) endHandoff(ctx context.Context, h *store.Handoff, reason, key string, now time.Time, toMember bool) ([]Reply, error) {
	if key == "" {
		key = fmt.Sprintf("%s:%d", reason, now.UnixNano())
	}
	h, ended, err := d.Handoffs.EndHandoff(ctx, h.ID, reason, key, now)
	if err != nil {
		return nil, fmt.Errorf("ending handoff: %w", err)
	}
	if !ended {
		return nil, nil
	}
	d.log().InfoContext(ctx, "handoff ended", slog.Int64("handoff_id", h.ID), slog.String("guide_id", h.GuideID), slog.String("reason", reason))
	rs, err := d.endNotices(ctx, h, toMember)
	if err != nil {
		return nil, err
	}
	if err := d.Handoffs.MarkHandoffNotified(ctx, h.ID, now); err != nil {
		return nil, err
	}
	return rs, nil
}

// endNotices renders what both sides are told when a handoff ended. They
// are keyed by the handoff, so however many paths end it (the guide, the
// sweep, the next message) each side is told once.
func (d Deps) endNotices(ctx context.Context, h *store.Handoff, toMember bool) ([]Reply, error) {
	g, err := d.Directory.Guide(ctx, h.GuideID, "")
	if err != nil {
		return nil, err
	}
	v, err := d.Directory.Member(ctx, h.MemberID, "")
	if err != nil {
		return nil, err
	}
	var out []Reply
	if toMember {
		data := &templates.Data{Guide: templates.Guide{Name: g.Name}, Handoff: templates.Handoff{ID: h.ID, Reason: h.EndReason}}
		r, err := d.renderTo(TemplateHandoffEnded, h.Locale, memberRecipient(h), data)
		if err != nil {
			return nil, err
		}
		r.Key = fmt.Sprintf("handoff:%d:ended:member", h.ID)
		out = append(out, r)
	}
	open, err := d.Handoffs.GuideHandoffs(ctx, h.GuideID)
	if err != nil {
		return nil, err
	}
	data := &templates.Data{Member: templates.Member{Name: v.NameFor(h.BrandID)}, Guide: templates.Guide{Name: g.Name},
		Handoff: templates.Handoff{ID: h.ID, Reason: h.EndReason, Member: v.NameFor(h.BrandID)}, Handoffs: handoffList(open, h.ID)}
	r, err := d.renderTo(TemplateHandoffClosed, d.guideLocale(), guideRecipient(h), data)
	if err != nil {
		return nil, err
	}
	r.Key = fmt.Sprintf("handoff:%d:ended:guide", h.ID)
	return append(out, r), nil
}

// EndIdleHandoffs ends the handoffs with no message for HandoffIdle and
// queues the notices to both sides; it returns how many it ended. Run it
// periodically (the gateway does, every minute); several runs at once
// tell each side once.
func (d Deps) EndIdleHandoffs(ctx context.Context, out Outbox) (int, error) {
	now := d.now()
	hs, err := d.Handoffs.IdleHandoffs(ctx, now.Add(-d.idle()), 200)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range hs {
		h := &hs[i]
		if h.State == store.HandoffOpen {
			var ended bool
			h, ended, err = d.Handoffs.EndHandoff(ctx, h.ID, store.HandoffEndedIdle, "idle", now)
			if err != nil {
				return n, err
			}
			if !ended {
				continue
			}
			n++
		}
		rs, err := d.endNotices(ctx, h, true)
		if err != nil {
			return n, err
		}
		for _, r := range rs {
			if err := out.Queue(ctx, r); err != nil {
				return n, fmt.Errorf("queueing handoff notice: %w", err)
			}
		}
		if err := d.Handoffs.MarkHandoffNotified(ctx, h.ID, now); err != nil {
			return n, err
		}
		d.log().InfoContext(ctx, "handoff ended for inactivity", slog.Int64("handoff_id", h.ID), slog.String("guide_id", h.GuideID))
	}
	return n, nil
}

// recent returns the member's messages to brand (and to no one brand)
// before the one being handled, oldest first, times in loc.
func (d Deps) recent(ctx context.Context, memberID int64, brand, current string, loc *time.Location) ([]templates.Line, error) {
	evs, err := d.Handoffs.RecentMessages(ctx, memberID, brand, recentLines+1)
	if err != nil {
		return nil, err
	}
	var lines []templates.Line
	for _, e := range evs {
		if e.SourceID == current || len(lines) == recentLines {
			continue
		}
		var p struct{ Kind, Text string }
		if json.Unmarshal([]byte(e.Payload), &p) != nil {
			continue
		}
		text := p.Text
		if text == "" {
			text = "[" + p.Kind + "]"
		}
		lines = append(lines, templates.Line{At: e.OccurredAt.In(loc).Format("01-02 15:04"), Text: cut(text, 200)})
	}
	slices.Reverse(lines)
	return lines, nil
}

// renderTo renders a template for a recipient other than the sender.
func (d Deps) renderTo(id, locale string, to *Recipient, data *templates.Data) (Reply, error) {
	msg, err := d.Templates.Render(id, locale, kindOf(to.Channel), data)
	if err != nil {
		return Reply{}, fmt.Errorf("rendering %s: %w", id, err)
	}
	text := msg.Text
	if sp, ok := d.spec(to.Channel); ok && sp.MaxTextBytes > 0 {
		text = fitBytes(text, sp.MaxTextBytes)
	}
	return Reply{Kind: msg.Kind, Text: text, Fields: msg.Fields, To: to}, nil
}

// fitBytes cuts s to at most n bytes at a character boundary, marking the
// cut with "…".
func fitBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

func guideRecipient(h *store.Handoff) *Recipient {
	return &Recipient{Channel: h.GuideChannel, ID: h.GuideAddress, Party: adapters.PartyGuide, GuideID: h.GuideID,
		MemberID: h.MemberID, Brand: h.BrandID}
}

func memberRecipient(h *store.Handoff) *Recipient {
	var replyTo map[string]string
	_ = json.Unmarshal([]byte(h.MemberReplyTo), &replyTo)
	return &Recipient{Channel: h.MemberChannel, ID: h.MemberAddress, Party: adapters.PartyMember, ReplyTo: replyTo,
		MemberID: h.MemberID, GuideID: h.GuideID, Brand: h.BrandID}
}

// guideAddress is the channel instance a guide is reached on: the
// member's, when the guide is on it, else the guide's first identity in
// the channels' registration order on one that sends guides text. Without
// Channels, any of the guide's identities.
func (d Deps) guideAddress(g *store.Guide, memberChannel string) (channel, id string) {
	if d.Channels == nil {
		if id := g.Identity(memberChannel); id != "" {
			return memberChannel, id
		}
		if len(g.Identities) > 0 {
			return g.Identities[0].Channel, g.Identities[0].ExternalID
		}
		return "", ""
	}
	if id := g.Identity(memberChannel); id != "" && d.sendsGuidesText(memberChannel) {
		return memberChannel, id
	}
	for _, key := range d.Channels.Names() {
		if id := g.Identity(key); id != "" && d.sendsGuidesText(key) {
			return key, id
		}
	}
	return "", ""
}

// sendsGuidesText reports whether a channel instance is registered and
// sends guides text.
func (d Deps) sendsGuidesText(key string) bool {
	sp, ok := d.spec(key)
	return ok && slices.Contains(sp.GuideKinds, adapters.KindText)
}

// spec returns a channel instance's spec, when Channels has it.
func (d Deps) spec(key string) (adapters.Spec, bool) {
	if d.Channels == nil {
		return adapters.Spec{}, false
	}
	return d.Channels.Spec(key)
}

// kindOf is the channel kind of an instance key, which templates'
// variants name.
func kindOf(key string) string {
	k, _ := adapters.KindOf(key)
	return k
}

func handoffList(open []store.Handoff, except int64) []templates.Handoff {
	var out []templates.Handoff
	for _, h := range open {
		if h.ID != except && h.State == store.HandoffOpen {
			out = append(out, templates.Handoff{ID: h.ID, Member: memberNameOf(h)})
		}
	}
	return out
}

// memberNameOf labels a handoff's member in lists.
func memberNameOf(h store.Handoff) string {
	if h.MemberName != "" {
		return h.MemberName
	}
	return "…" + h.MemberTail
}

func memberData(v *store.MemberView, brand string) templates.Member {
	md := templates.Member{Name: v.NameFor(brand), PhoneTail: v.TailFor(brand)}
	for _, ms := range v.Memberships {
		if ms.BrandID == brand {
			md.Level, md.Points = ms.Level, ms.Points
		}
	}
	return md
}

// messageText is what a message says, cut for passing on.
func messageText(m *Message) string {
	if m.Location != nil {
		if m.Location.Label != "" {
			return "📍" + m.Location.Label
		}
		return fmt.Sprintf("📍%.5f,%.5f", m.Location.Lat, m.Location.Lng)
	}
	return m.Text
}

func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// deliveryKey names the message's delivery for keys; a message without a
// dedup key (tests, a channel without ids) gets one from its sender.
func deliveryKey(m *Message) string {
	if m.DedupKey != "" {
		return m.Channel + ":" + m.DedupKey
	}
	return fmt.Sprintf("%s:%s:%d", m.Channel, m.SenderID, time.Now().UnixNano())
}

func zoneOf(name string) *time.Location {
	if loc, err := time.LoadLocation(name); err == nil && name != "" {
		return loc
	}
	loc, err := time.LoadLocation(store.DefaultTimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
