package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
)

// confirmTaskDue is how long a guide has to confirm a message sent
// through them before the task is overdue.
const confirmTaskDue = 24 * time.Hour

// send executes a send step: consent, channel, send rules and caps are
// checked now, when the message is due; a message held by the rules or a
// cap stays on the step with a wake for when it may go.
func (e *Engine) send(ctx context.Context, rc *runCtx, step *workflows.Step, key string, now time.Time) (outcome, error) {
	s := step.Send
	run := rc.run
	p, err := rc.member(ctx)
	if err != nil {
		return outcome{}, err
	}
	channel, to := recipient(e.opts.Channels, p, s.Channel)
	if to == "" {
		return skipped(step.Next, reasonUnreachable, "member cannot be reached on "+orWord(channel, "any channel")+": nothing sent"), nil
	}
	if p.IsUnsubscribed(channel) {
		return skipped(step.Next, reasonConsent, "member unsubscribed from "+channel+": nothing sent"), nil
	}
	if via := run.ViaBrandID; via != "" {
		// A cross-brand offer: the guide's store must still carry the
		// brand, and the member still accept its offers.
		ok, why, err := e.store.CrossBrandAllowed(ctx, run.MemberID, via, run.BrandID, channel)
		if err != nil {
			return outcome{}, fmt.Errorf("checking the cross-brand offer: %w", err)
		}
		if !ok {
			return skipped(step.Next, reasonCrossBrand, "cross-brand offer through "+via+" not allowed ("+why+"): nothing sent"), nil
		}
	}
	// Outside the channel's window since the member last wrote, only a
	// template message may go, if the channel has them.
	sp, _ := e.opts.Channels.Spec(channel)
	outside := !sp.InWindow(p.LastInbound(channel), now)
	if outside && !slices.Contains(sp.OutsideKinds, adapters.KindTemplate) {
		return skipped(step.Next, reasonWindow, "member has not written on "+channel+" within "+sp.Window.String()+": nothing sent"), nil
	}
	rules := &rc.wf.SendRules
	loc := rules.Location(p.Member.TimeZone, storeZone(p))
	var validUntil time.Time
	if s.ValidUntil != nil {
		env, err := rc.env(ctx, now)
		if err != nil {
			return outcome{}, err
		}
		if validUntil, err = s.ValidUntil.Time(env); err != nil {
			return outcome{}, fmt.Errorf("%v: %w", err, errPermanent)
		}
		if now.After(validUntil) {
			return skipped(step.Next, reasonExpired, "past valid_until "+validUntil.In(loc).Format("2006-01-02 15:04:05 MST")+": skipped"), nil
		}
	}
	late := func(at time.Time) bool { return !validUntil.IsZero() && at.After(validUntil) }
	if s.Priority != workflows.PriorityHigh {
		if at, held := holdUntil(rules, now, loc, spread(run.ID, e.opts.SpreadWindow)); held {
			if late(at) {
				return skipped(step.Next, reasonExpired, "held by the send rules past valid_until "+
					validUntil.In(loc).Format("2006-01-02 15:04:05 MST")+": skipped"), nil
			}
			return outcome{stepState: store.StepPending, wakeAt: at,
				decision: "held by the send rules until " + at.In(loc).Format("2006-01-02 15:04:05 MST")}, nil
		}
	}
	via := ""
	switch {
	case throughGuide(e.opts.Channels, channel):
		// The channel reaches a member through an account of their guide
		// on the same instance (WeCom: a message task the guide
		// confirms).
		if p.Guide == nil || p.Guide.Identity(channel) == "" {
			return skipped(step.Next, reasonNoGuide, "member has no guide on "+channel+" to send through: nothing sent"), nil
		}
		via = p.Guide.Identity(channel)
	case s.Via == workflows.ViaGuide:
		if p.Guide == nil {
			return skipped(step.Next, reasonNoGuide, "member has no guide to send through: nothing sent"), nil
		}
		via = p.Guide.Identity(channel)
	}

	caps := rules.Caps
	day := midnight(now, loc)
	week := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	reserved, err := e.store.ReserveSend(ctx, store.SendReservation{Key: key, MemberID: run.MemberID, BrandID: run.BrandID,
		RunID: run.ID, Channel: channel, At: now, DayStart: day, PerDay: caps.PerDay, WeekStart: week, PerWeek: caps.PerWeek})
	if err != nil {
		return outcome{}, fmt.Errorf("checking frequency caps: %w", err)
	}
	if !reserved {
		if caps.WhenCapped == workflows.CapSkip {
			return skipped(step.Next, reasonCap, capWords(caps)+" reached: skipped"), nil
		}
		at := ceilSecond(day.AddDate(0, 0, 1).Add(spread(run.ID, e.opts.SpreadWindow)))
		if late(at) {
			return skipped(step.Next, reasonExpired, capWords(caps)+" reached, and the next day is past valid_until: skipped"), nil
		}
		return outcome{stepState: store.StepPending, wakeAt: at,
			decision: capWords(caps) + " reached: delayed to " + at.In(loc).Format("2006-01-02 15:04:05 MST")}, nil
	}

	if out, capped, err := e.reserveQuota(ctx, rc, step, channel, key, now, loc); err != nil || capped {
		if rerr := e.store.ReleaseSend(ctx, key); rerr != nil {
			e.log.WarnContext(ctx, "releasing send reservation", "run_id", run.ID, "error", rerr)
		}
		return out, err
	}
	release := func() {
		if rerr := e.store.ReleaseSend(ctx, key); rerr != nil {
			e.log.WarnContext(ctx, "releasing send reservation", "run_id", run.ID, "error", rerr)
		}
		if rerr := e.store.ReleaseQuota(ctx, key); rerr != nil {
			e.log.WarnContext(ctx, "releasing quota reservation", "run_id", run.ID, "error", rerr)
		}
	}

	data, err := rc.templateData(ctx, step.ID, loc.String())
	if err != nil {
		return outcome{}, err
	}
	if s.Coupon != "" {
		req := CouponRequest{Batch: s.Coupon, MemberID: run.MemberID, Brand: run.BrandID, Key: key, At: now, RunID: run.ID, Workflow: run.Workflow}
		if p.Guide != nil {
			req.GuideID = p.Guide.ID
		}
		c, err := e.opts.Coupons.Issue(ctx, req)
		if errors.Is(err, ErrUnknownCouponBatch) {
			release()
			return outcome{}, fmt.Errorf("issuing coupon: %v: %w", err, errPermanent)
		}
		if err != nil {
			return outcome{}, fmt.Errorf("issuing coupon from %s: %w", s.Coupon, err)
		}
		data.Coupon = c
	}
	msg, err := e.opts.Templates.Render(s.Template, e.opts.Locale, kindOf(channel), data)
	if err != nil {
		release()
		return outcome{}, fmt.Errorf("rendering %s: %v: %w", s.Template, err, errPermanent)
	}
	out := &adapters.Outbound{IdempotencyKey: key, To: to, ToParty: adapters.PartyMember, Via: via,
		Kind: msg.Kind, Text: msg.Text, Fields: msg.Fields}
	if outside {
		out = asTemplate(out, s.Template)
	}
	meta := SendMeta{MemberID: run.MemberID, Brand: run.BrandID, Queue: e.opts.SendQueue, RunID: run.ID, Workflow: run.Workflow, Step: step.ID}
	if p.Guide != nil {
		meta.GuideID = p.Guide.ID
	}
	if s.Priority == workflows.PriorityHigh {
		meta.Queue = e.opts.CriticalQueue
	}
	if err := e.opts.Sender.Send(ctx, channel, out, meta); err != nil {
		return outcome{}, fmt.Errorf("sending %s on %s: %w", s.Template, channel, err)
	}
	// The message is in the outbox: the step waits for the channel's
	// answer (SendSettled), and looks at the outbox itself now and then
	// in case that news was lost.
	return outcome{stepState: store.StepSending, outboxKey: key, wakeAt: now.Add(e.opts.SendPoll),
		decision: fmt.Sprintf("queued %s on %s (%s); waits for the channel", s.Template, channel, msg.Kind)}, nil
}

// sendSettled goes on with a send step whose message is in the outbox.
// Sent (the channel accepted it) ends the step done, and a message the
// guide still has to send (delivery pending) gets the guide a task to
// confirm it. Failed for good fails the step and the run with the
// outbox's reason. Anything else (queued, sending, waiting for its rate
// slot, retrying) keeps the step waiting, to look again after a while
// that grows with the wait.
func (e *Engine) sendSettled(ctx context.Context, rc *runCtx, step *workflows.Step, cur *store.RunStep, now time.Time) (outcome, error) {
	run := rc.run
	key := stepKey(run.ID, step.ID, run.Visit)
	if cur != nil && cur.OutboxKey != "" {
		key = cur.OutboxKey
	}
	row, err := e.store.OutboxByKey(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		out := failed(step.ID, fmt.Errorf("the outbox has no message %s", key))
		out.reason = reasonLost
		return out, nil
	}
	if err != nil {
		return outcome{}, fmt.Errorf("reading the outbox message of the send: %w", err)
	}
	s := step.Send
	switch row.State {
	case store.OutboxSent:
		decision := fmt.Sprintf("sent %s on %s", s.Template, row.Channel)
		if row.Delivery == string(adapters.DeliveryPending) {
			decision += "; not confirmed yet"
		}
		if row.Delivery == string(adapters.DeliveryPending) {
			// The guide has to send it (a WeCom message task goes out
			// only when they confirm it, whether or not the step said
			// via: guide): a task reminds them.
			id, err := e.confirmTask(ctx, rc, step, row, now)
			if err != nil {
				return outcome{}, err
			}
			if id != "" {
				decision += "; " + id
			}
		}
		out := done(step.Next, decision)
		out.sent = 1
		return out, nil
	case store.OutboxFailed:
		// Nothing reached the member: it counts against no cap or quota.
		if rerr := e.store.ReleaseSend(ctx, key); rerr != nil {
			e.log.WarnContext(ctx, "releasing send reservation", "run_id", run.ID, "error", rerr)
		}
		if rerr := e.store.ReleaseQuota(ctx, key); rerr != nil {
			e.log.WarnContext(ctx, "releasing quota reservation", "run_id", run.ID, "error", rerr)
		}
		why := orWord(row.LastError, "the channel did not take it")
		out := failed(step.ID, fmt.Errorf("%s on %s not sent: %s", s.Template, row.Channel, why))
		out.reason = orWord(row.Failure, reasonError)
		return out, nil
	}
	since := now
	if cur != nil && cur.ClaimedAt != nil {
		since = *cur.ClaimedAt
	}
	wait := min(max(now.Sub(since), e.opts.SendPoll), e.opts.SendPollMax)
	return outcome{stepState: store.StepSending, outboxKey: key, wakeAt: now.Add(wait),
		decision: fmt.Sprintf("queued %s on %s; waits for the channel (outbox %s)", s.Template, row.Channel, row.State)}, nil
}

// confirmTask gives the guide a message sent through them to confirm in
// WeCom a task, and tells them about it; both once per send. It returns
// words for the step's outcome, "" when there is no guide.
func (e *Engine) confirmTask(ctx context.Context, rc *runCtx, step *workflows.Step, row *store.OutboxMessage, now time.Time) (string, error) {
	p, err := rc.member(ctx)
	if err != nil {
		return "", err
	}
	if p.Guide == nil || (row.GuideID != "" && row.GuideID != p.Guide.ID) {
		return "", nil // the guide it went through is not the member's any more
	}
	// A sent message's payload was read by the pipeline that sent it.
	var m adapters.Outbound
	_ = json.Unmarshal(row.Payload, &m)
	run := rc.run
	title := fmt.Sprintf("确认发送「%s」给 %s", step.Send.Template, orWord(p.Member.Name, "会员"+p.Member.PhoneTail))
	confirm := row.IdempotencyKey + ":confirm"
	note := strings.TrimSpace(m.Text + " " + m.Fields["title"])
	task := &store.GuideTask{Key: &confirm, RunID: &run.ID, MemberID: run.MemberID, GuideID: p.Guide.ID, BrandID: run.BrandID,
		Title: truncateText(title, 500), Note: truncateText(note, 2000), DueAt: now.Add(confirmTaskDue), CreatedAt: now}
	if _, err := e.store.CreateGuideTask(ctx, task); err != nil {
		return "", fmt.Errorf("creating the guide's confirmation task: %w", err)
	}
	if task.State == store.GuideTaskOpen {
		loc := rc.wf.SendRules.Location(p.Member.TimeZone, storeZone(p))
		if err := e.notifyGuide(ctx, rc, p, task, loc); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("task %d for guide %s", task.ID, p.Guide.ID), nil
}

// Reasons a step was skipped or failed, recorded on its visit and counted
// in Stats.
const (
	reasonUnreachable = "unreachable"
	reasonConsent     = "consent"
	reasonCrossBrand  = "cross_brand"
	reasonNoGuide     = "no_guide"
	reasonCap         = "cap"
	reasonQuota       = "quota"
	// reasonWindow: the channel sends only within a window after the
	// member last wrote (adapters.Spec.Window), and it was closed.
	reasonWindow = "window"
	// reasonExpired: held past the send's valid_until.
	reasonExpired = "expired"
	// reasonError is a step's own failure (a template that does not
	// render, a webhook answering 4xx, a channel's unnamed refusal).
	reasonError = "error"
	// reasonLost: the send's outbox message is gone.
	reasonLost = "lost"
)

// holdUntil says when a message due at now may go out under the send
// rules, read in loc: held is false when it may go now. A held message
// goes at the first allowed time plus its spread, unless the spread
// would leave the allowed time.
func holdUntil(rules *workflows.SendRules, now time.Time, loc *time.Location, spread time.Duration) (at time.Time, held bool) {
	if rules.Allowed(now, loc) {
		return time.Time{}, false
	}
	release := rules.SendTime(now, loc)
	if release.IsZero() {
		return ceilSecond(now.Add(time.Hour)), true // Load rejects rules that never allow a send
	}
	at = release.Add(spread)
	if !rules.Allowed(at, loc) {
		at = release
	}
	return ceilSecond(at), true
}

// midnight is the start of t's day in loc.
func midnight(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

func capWords(c workflows.Caps) string {
	var parts []string
	if c.PerDay > 0 {
		parts = append(parts, strconv.Itoa(c.PerDay)+" a day")
	}
	if c.PerWeek > 0 {
		parts = append(parts, strconv.Itoa(c.PerWeek)+" a week")
	}
	return "frequency cap (" + strings.Join(parts, ", ") + ")"
}

func orWord(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// notifyGuide sends a guide their new task on the first channel they are
// on that sends guides text (WeCom: an app message).
func (e *Engine) notifyGuide(ctx context.Context, rc *runCtx, p *store.MemberProfile, task *store.GuideTask, loc *time.Location) error {
	g := p.Guide
	channel, to := guideChannel(e.opts.Channels, g)
	if channel == "" {
		return nil // the guide sees it in the guide bot's task list
	}
	text := "【任务】" + task.Title
	if task.Note != "" {
		text += "\n" + task.Note
	}
	text += "\n截止：" + task.DueAt.In(loc).Format("01-02 15:04")
	out := &adapters.Outbound{IdempotencyKey: *task.Key + ":notify", To: to, ToParty: adapters.PartyGuide, Kind: "text", Text: text}
	meta := SendMeta{MemberID: rc.run.MemberID, GuideID: g.ID, Brand: rc.run.BrandID, Queue: e.opts.SendQueue,
		RunID: rc.run.ID, Workflow: rc.run.Workflow, Step: rc.run.Step}
	if err := e.opts.Sender.Send(ctx, channel, out, meta); err != nil {
		return fmt.Errorf("notifying guide %s: %w", g.ID, err)
	}
	return nil
}

// asTemplate turns a rendered message into a template message
// (adapters.KindTemplate) of the template it was rendered from, for a
// channel outside its window.
func asTemplate(m *adapters.Outbound, template string) *adapters.Outbound {
	cp := *m
	cp.Kind = adapters.KindTemplate
	cp.Fields = make(map[string]string, len(m.Fields)+2)
	for k, v := range m.Fields {
		cp.Fields[k] = v
	}
	cp.Fields["template"] = template
	cp.Fields["kind"] = m.Kind
	return &cp
}
