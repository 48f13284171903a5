package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows"
)

// MemberFixture is the member a dry run simulates, as a JSON file gives
// it (scrmgw workflow dry-run --member FILE.json).
type MemberFixture struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	PhoneTail string   `json:"phone_tail"`
	Level     string   `json:"level"`
	Points    int64    `json:"points"`
	Tags      []string `json:"tags"`
	// Channel is the member's channel: wecom (default) or dingtalk.
	Channel string `json:"channel"`
	// ChannelID is the member's id on Channel (a WeCom external_userid,
	// a DingTalk userid), shown in the requests; default member-<id>.
	ChannelID      string        `json:"channel_id"`
	JoinedAt       time.Time     `json:"joined_at"`
	LastPurchaseAt time.Time     `json:"last_purchase_at"`
	Orders         int           `json:"orders"`
	TotalSpent     float64       `json:"total_spent"`
	LastOrder      *events.Order `json:"last_order"`
	GuideID        string        `json:"guide_id"`
	GuideName      string        `json:"guide_name"`
	StoreID        string        `json:"store_id"`
	StoreName      string        `json:"store_name"`
	StoreAddress   string        `json:"store_address"`
	OpeningHours   string        `json:"opening_hours"`
	// TimeZone and StoreTimeZone are IANA zones; either may be empty.
	TimeZone      string `json:"time_zone"`
	StoreTimeZone string `json:"store_time_zone"`
	// Unsubscribed lists the channels (or "*") the member left.
	Unsubscribed []string `json:"unsubscribed"`
	// LastInboundAt is when the member last wrote on Channel (zero:
	// never). A channel that sends freely only for a while after that
	// (adapters.Spec.Window, WeChat's 48 hours) sends a template message
	// outside it, or nothing; a message.received event on Channel
	// during the dry run moves it.
	LastInboundAt time.Time `json:"last_inbound_at"`
	Locale        string    `json:"locale"`
	BrandName     string    `json:"brand_name"`
}

// EventFixture is an event that happens to the member during a dry run.
type EventFixture struct {
	At      time.Time         `json:"at"`
	Type    string            `json:"type"`
	Channel string            `json:"channel,omitempty"`
	StoreID string            `json:"store_id,omitempty"`
	Tag     string            `json:"tag,omitempty"`
	Text    string            `json:"text,omitempty"`
	Attrs   map[string]string `json:"attrs,omitempty"`
	Order   *events.Order     `json:"order,omitempty"`
}

// TimelineEntry is one line of a dry run: what a step decided, when, and
// the message it would send.
type TimelineEntry struct {
	At       time.Time          `json:"at"`
	Step     string             `json:"step"`
	Kind     workflows.Kind     `json:"kind,omitempty"`
	Decision string             `json:"decision"`
	Channel  string             `json:"channel,omitempty"`
	Message  *templates.Message `json:"message,omitempty"`
	// Request is the request the channel would make to send the message
	// (its Spec's Preview): the exact body the platform gets, which is
	// what the member sees. RequestError says why there is none.
	Request      *adapters.Request `json:"request,omitempty"`
	RequestError string            `json:"request_error,omitempty"`
}

// String formats the entry as the CLI prints it.
func (t TimelineEntry) String() string {
	var b strings.Builder
	what := t.Step
	if t.Kind != "" {
		what += " (" + string(t.Kind) + ")"
	}
	fmt.Fprintf(&b, "%s  %-28s %s", t.At.Format("2006-01-02 15:04:05 MST"), what, t.Decision)
	if m := t.Message; m != nil {
		fmt.Fprintf(&b, "\n    [%s %s, %s/%s]", t.Channel, m.Kind, m.Locale, m.Variant)
		for _, k := range sortedKeys(m.Fields) {
			fmt.Fprintf(&b, "\n    %s: %s", k, m.Fields[k])
		}
		for _, line := range strings.Split(strings.TrimSpace(m.Text), "\n") {
			if line != "" {
				fmt.Fprintf(&b, "\n    | %s", line)
			}
		}
	}
	switch {
	case t.Request != nil:
		fmt.Fprintf(&b, "\n    request %s: %s", t.Request.API, t.Request.Body)
	case t.RequestError != "":
		fmt.Fprintf(&b, "\n    request: none, %s cannot send it: %s", t.Channel, t.RequestError)
	}
	return b.String()
}

// WriteTimeline prints a timeline, one entry after the other.
func WriteTimeline(w io.Writer, entries []TimelineEntry) error {
	for _, t := range entries {
		if _, err := fmt.Fprintln(w, t.String()); err != nil {
			return err
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// DryRunOptions configure DryRun.
type DryRunOptions struct {
	Templates *templates.Registry
	// Locale defaults to "zh", SpreadWindow to 5m.
	Locale       string
	SpreadWindow time.Duration
	// Quotas are the channels' limits on messages to one member
	// (Options.Quotas), counted over the run's own sends.
	Quotas map[string]Quota
	// Coupons are the configured coupon batches; nil issues value-less
	// codes from any batch.
	Coupons CouponBatches
	// Specs are the channels' specs, by kind (Name): the member's
	// channel is the first one's unless the fixture names one; a send
	// on a channel that reaches members through their guide needs one;
	// and each send shows the request its channel's Preview gives. A
	// channel without one shows none.
	Specs []adapters.Spec
}

// DryRun simulates the member through a workflow with the engine's
// templates, locale and spread: see the package function DryRun.
func (e *Engine) DryRun(wf *workflows.Workflow, member MemberFixture, events []EventFixture, start time.Time) ([]TimelineEntry, error) {
	var specs []adapters.Spec
	for _, key := range e.opts.Channels.Names() {
		if sp, ok := e.opts.Channels.Spec(key); ok && !slices.ContainsFunc(specs, func(s adapters.Spec) bool { return s.Name == kindOf(key) }) {
			sp.Name = kindOf(key)
			specs = append(specs, sp)
		}
	}
	return DryRun(DryRunOptions{Templates: e.opts.Templates, Locale: e.opts.Locale, SpreadWindow: e.opts.SpreadWindow,
		Quotas: e.opts.Quotas, Coupons: e.opts.CouponBatches, Specs: specs}, wf, member, events, start)
}

// maxDryRunSteps bounds a dry run of a workflow that loops.
const maxDryRunSteps = 500

// DryRun simulates one member through a workflow with a virtual clock that
// starts at start, and returns the timeline: each step's time, decision
// and rendered message. Nothing is stored or sent. An event trigger starts
// the run with the first event of its type in events (at or after start),
// or with one at start; the events happen to the member in time order
// (purchases count as orders, tags tag) and reach goals and wait_for steps
// as they would in the engine. Send rules and caps apply (caps count this
// run's messages only).
func DryRun(opts DryRunOptions, wf *workflows.Workflow, member MemberFixture, events []EventFixture, start time.Time) ([]TimelineEntry, error) {
	if wf == nil || len(wf.Steps) == 0 {
		return nil, errors.New("dry run: no workflow")
	}
	if opts.Templates == nil {
		return nil, errors.New("dry run: templates are required")
	}
	setDefault(&opts.Locale, "zh")
	setDefault(&opts.SpreadWindow, 5*time.Minute)
	if member.Channel == "" && len(opts.Specs) > 0 {
		member.Channel = opts.Specs[0].Name
	}
	if member.ID == 0 {
		member.ID = 1
	}
	member.Tags = slices.Clone(member.Tags)
	s := &sim{opts: opts, wf: wf, m: &member, now: start}
	s.loc = wf.SendRules.Location(member.TimeZone, member.StoreTimeZone)
	s.events = slices.Clone(events)
	slices.SortStableFunc(s.events, func(a, b EventFixture) int { return a.At.Compare(b.At) })
	s.run()
	return s.out, nil
}

// sim is one dry run.
type sim struct {
	opts   DryRunOptions
	wf     *workflows.Workflow
	m      *MemberFixture
	loc    *time.Location
	now    time.Time
	events []EventFixture

	trigger      workflows.Event
	triggerOrder *events.Order
	started      time.Time
	step         string
	sends        []time.Time
	visits       map[string]int
	out          []TimelineEntry
}

func (s *sim) record(step string, kind workflows.Kind, decision string) *TimelineEntry {
	s.out = append(s.out, TimelineEntry{At: s.now.In(s.loc), Step: step, Kind: kind, Decision: decision})
	return &s.out[len(s.out)-1]
}

func (s *sim) run() {
	wf := s.wf
	if sched := wf.Trigger.Schedule; sched != nil {
		s.trigger = workflows.Event{Type: "schedule", At: s.now, Attrs: map[string]string{}}
		s.record("trigger", "", "schedule "+sched.Spec+" fires")
	} else {
		s.trigger = workflows.Event{Type: wf.Trigger.Event, At: s.now, Attrs: map[string]string{}}
		for i, ev := range s.events {
			if ev.Type == wf.Trigger.Event && !ev.At.Before(s.now) {
				s.deliverBefore(ev.At)
				s.now = ev.At
				s.trigger, s.triggerOrder = s.eventModel(ev)
				s.apply(ev)
				s.events = slices.Delete(s.events, i, i+1)
				break
			}
		}
		s.record("trigger", "", wf.Trigger.Event+" happens")
	}
	if ok, err := wf.Trigger.Matches(s.trigger.Type, s.env(s.trigger)); err != nil || !ok {
		s.record("trigger", "", fmt.Sprintf("filter is not true (%v): no run starts", orError(err)))
		return
	}
	s.started, s.step, s.visits = s.now, wf.Start(), map[string]int{}
	s.record("trigger", "", "run starts on version "+wf.Version)
	for range maxDryRunSteps {
		if s.step == workflows.End {
			s.record("end", "", "run ends (done)")
			return
		}
		step, _ := wf.Step(s.step)
		s.visits[step.ID]++
		next, stop := s.exec(step)
		if stop {
			return
		}
		s.step = next
	}
	s.record(s.step, "", fmt.Sprintf("dry run stopped after %d steps", maxDryRunSteps))
}

func orError(err error) string {
	if err != nil {
		return err.Error()
	}
	return "false"
}

// exec simulates one step and returns the next; stop ends the run.
func (s *sim) exec(step *workflows.Step) (next string, stop bool) {
	switch step.Kind {
	case workflows.KindEnd:
		reason := "run ends (done)"
		if step.End.Reason != "" {
			reason += ": " + step.End.Reason
		}
		s.record(step.ID, step.Kind, reason)
		return "", true
	case workflows.KindWait:
		until := s.now.Add(step.Wait.For)
		if step.Wait.Until != nil {
			t, err := step.Wait.Until.Time(s.env(s.trigger))
			if err != nil {
				return s.fail(step, err)
			}
			until = t
		}
		at := until
		if !at.After(s.now) {
			s.record(step.ID, step.Kind, "until "+until.In(s.loc).Format(time.DateTime)+" is past: goes on")
			return step.Next, false
		}
		s.record(step.ID, step.Kind, "waits until "+at.In(s.loc).Format(time.DateTime))
		if s.until(at, nil) != nil {
			return "", true
		}
		return step.Next, false
	case workflows.KindWaitFor:
		w := step.WaitFor
		deadline := s.now.Add(w.Timeout)
		s.record(step.ID, step.Kind, "waits for "+w.Event+" until "+deadline.In(s.loc).Format(time.DateTime))
		switch r := s.until(deadline, w); {
		case r == nil:
			s.record(step.ID, step.Kind, "no "+w.Event+": goes to "+w.OnTimeout)
			return w.OnTimeout, false
		case r.goal:
			return "", true
		default:
			s.record(step.ID, step.Kind, "got "+w.Event+": goes to "+w.OnEvent)
			return w.OnEvent, false
		}
	case workflows.KindIf:
		ok, err := step.If.Cond.Bool(s.env(s.trigger))
		if err != nil {
			return s.fail(step, err)
		}
		if ok {
			s.record(step.ID, step.Kind, step.If.Cond.Source+": true, goes to "+step.If.Then)
			return step.If.Then, false
		}
		s.record(step.ID, step.Kind, step.If.Cond.Source+": false, goes to "+step.If.Else)
		return step.If.Else, false
	case workflows.KindSwitch:
		to, err := step.Switch.Target(s.env(s.trigger))
		if err != nil {
			return s.fail(step, err)
		}
		s.record(step.ID, step.Kind, step.Switch.Value.Source+": goes to "+to)
		return to, false
	case workflows.KindAssignGuide:
		if step.AssignGuide.KeepCurrent && s.m.GuideID != "" {
			s.record(step.ID, step.Kind, "keeps guide "+orWord(s.m.GuideName, s.m.GuideID))
		} else {
			s.record(step.ID, step.Kind, "assigns a guide ("+step.AssignGuide.Strategy+"; not simulated)")
		}
		return step.Next, false
	case workflows.KindSend:
		return s.send(step)
	case workflows.KindGuideTask:
		if s.m.GuideID == "" {
			s.record(step.ID, step.Kind, "member has no guide: no task")
			return step.Next, false
		}
		data := s.data(step.ID)
		title, err := step.GuideTask.Title.Execute(data)
		if err != nil {
			return s.fail(step, err)
		}
		due := s.now.Add(step.GuideTask.DueIn).In(s.loc).Format(time.DateTime)
		s.record(step.ID, step.Kind, fmt.Sprintf("task for guide %s, due %s: %s", orWord(s.m.GuideName, s.m.GuideID), due, title))
		return step.Next, false
	case workflows.KindTag:
		for _, t := range step.Tag.Tags {
			if !slices.Contains(s.m.Tags, t) {
				s.m.Tags = append(s.m.Tags, t)
			}
		}
		s.record(step.ID, step.Kind, fmt.Sprintf("tags %v", step.Tag.Tags))
		return step.Next, false
	case workflows.KindUntag:
		s.m.Tags = slices.DeleteFunc(s.m.Tags, func(t string) bool { return slices.Contains(step.Tag.Tags, t) })
		s.record(step.ID, step.Kind, fmt.Sprintf("untags %v", step.Tag.Tags))
		return step.Next, false
	case workflows.KindAwardPoints:
		s.m.Points += step.AwardPoints.Points
		s.record(step.ID, step.Kind, fmt.Sprintf("awards %d points (%d now)", step.AwardPoints.Points, s.m.Points))
		return step.Next, false
	case workflows.KindWebhook:
		s.record(step.ID, step.Kind, fmt.Sprintf("posts %s to %s (signed with secret %q; not sent)", step.Webhook.Event, step.Webhook.URL, step.Webhook.Secret))
		return step.Next, false
	case workflows.KindSendGroups:
		return s.sendGroups(step)
	}
	return s.fail(step, fmt.Errorf("unknown step kind %q", step.Kind))
}

func (s *sim) fail(step *workflows.Step, err error) (string, bool) {
	s.record(step.ID, step.Kind, "fails: "+err.Error()+"; the run ends as failed")
	return "", true
}

// send simulates a send: consent, send rules, caps, then the message.
func (s *sim) send(step *workflows.Step) (string, bool) {
	snd := step.Send
	channel := snd.Channel
	if channel == workflows.ChannelMember {
		channel = s.m.Channel
	}
	if channel != s.m.Channel {
		s.record(step.ID, step.Kind, "member is not on "+channel+": nothing sent")
		return step.Next, false
	}
	if slices.Contains(s.m.Unsubscribed, channel) || slices.Contains(s.m.Unsubscribed, "*") {
		s.record(step.ID, step.Kind, "member unsubscribed from "+channel+": nothing sent")
		return step.Next, false
	}
	if (s.throughGuide(channel) || snd.Via == workflows.ViaGuide) && s.m.GuideID == "" {
		s.record(step.ID, step.Kind, "member has no guide to send through: nothing sent")
		return step.Next, false
	}
	rules := &s.wf.SendRules
	sp, _ := s.spec(channel)
	outside := false
	for range 30 {
		// The engine looks at the window each time the step runs, before
		// its send rules hold it.
		if outside = !sp.InWindow(s.m.LastInboundAt, s.now); outside && !slices.Contains(sp.OutsideKinds, adapters.KindTemplate) {
			s.record(step.ID, step.Kind, "member has not written on "+channel+" within "+sp.Window.String()+": nothing sent")
			return step.Next, false
		}
		if snd.Priority != workflows.PriorityHigh {
			if at, held := holdUntil(rules, s.now, s.loc, spread(s.m.ID, s.opts.SpreadWindow)); held {
				s.record(step.ID, step.Kind, "held by the send rules until "+at.In(s.loc).Format(time.DateTime))
				if s.until(at, nil) != nil {
					return "", true
				}
				continue
			}
		}
		if capped := s.capped(rules.Caps); capped {
			if rules.Caps.WhenCapped == workflows.CapSkip {
				s.record(step.ID, step.Kind, capWords(rules.Caps)+" reached: skipped")
				return step.Next, false
			}
			at := ceilSecond(midnight(s.now, s.loc).AddDate(0, 0, 1).Add(spread(s.m.ID, s.opts.SpreadWindow)))
			s.record(step.ID, step.Kind, capWords(rules.Caps)+" reached: delayed to "+at.In(s.loc).Format(time.DateTime))
			if s.until(at, nil) != nil {
				return "", true
			}
			continue
		}
		if q := s.opts.Quotas[channel]; q.Limit > 0 {
			start, next := q.period(s.now)
			if s.sentSince(start) >= q.Limit {
				words := fmt.Sprintf("%s limit of %s to a member reached", channel, q.String())
				action := snd.WhenCapped
				if action == "" {
					action = rules.Caps.WhenCapped
				}
				if action == workflows.CapSkip {
					s.record(step.ID, step.Kind, words+": skipped")
					return step.Next, false
				}
				at := ceilSecond(next.Add(spread(s.m.ID, s.opts.SpreadWindow)))
				s.record(step.ID, step.Kind, words+": delayed to "+at.In(s.loc).Format(time.DateTime))
				if s.until(at, nil) != nil {
					return "", true
				}
				continue
			}
		}
		break
	}
	data := s.data(step.ID)
	if snd.Coupon != "" {
		req := CouponRequest{Batch: snd.Coupon, MemberID: s.m.ID, Key: stepKey(s.m.ID, step.ID, s.visits[step.ID]), At: s.now}
		if s.opts.Coupons == nil {
			data.Coupon, _ = batchCodes{}.Issue(context.Background(), req)
		} else {
			c, err := s.opts.Coupons.Coupon(req)
			if err != nil {
				return s.fail(step, err)
			}
			data.Coupon = c
		}
	}
	locale := orWord(s.m.Locale, s.opts.Locale)
	msg, err := s.opts.Templates.Render(snd.Template, locale, kindOf(channel), data)
	if err != nil {
		return s.fail(step, err)
	}
	s.sends = append(s.sends, s.now)
	decision := fmt.Sprintf("sends %s on %s", snd.Template, channel)
	if snd.Via == workflows.ViaGuide {
		decision += " through guide " + orWord(s.m.GuideName, s.m.GuideID) + " (a task asks them to confirm)"
	}
	if outside {
		decision += " as a template message (the member has not written on " + channel + " within " + sp.Window.String() + ")"
	}
	e := s.record(step.ID, step.Kind, decision)
	e.Channel, e.Message = channel, msg
	e.Request, e.RequestError = s.preview(step, snd, channel, msg, outside)
	return step.Next, false
}

// spec returns the channel's spec, if the dry run has it.
func (s *sim) spec(channel string) (adapters.Spec, bool) {
	i := slices.IndexFunc(s.opts.Specs, func(sp adapters.Spec) bool { return sp.Name == channel })
	if i < 0 {
		return adapters.Spec{}, false
	}
	return s.opts.Specs[i], true
}

// throughGuide reports whether channel reaches a member only through
// their guide.
func (s *sim) throughGuide(channel string) bool {
	sp, _ := s.spec(channel)
	return sp.ThroughGuide
}

// preview asks the channel's spec for the request that sends msg, as the
// engine would hand it over (see Engine's send): outside the channel's
// window, as a template message.
func (s *sim) preview(step *workflows.Step, snd *workflows.Send, channel string, msg *templates.Message, outside bool) (*adapters.Request, string) {
	sp, ok := s.spec(channel)
	if !ok || sp.Preview == nil {
		return nil, ""
	}
	to := s.m.ChannelID
	if to == "" {
		to = fmt.Sprintf("member-%d", s.m.ID)
	}
	via := ""
	if s.throughGuide(channel) || snd.Via == workflows.ViaGuide {
		via = s.m.GuideID
	}
	out := &adapters.Outbound{IdempotencyKey: stepKey(s.m.ID, step.ID, s.visits[step.ID]), To: to, ToParty: adapters.PartyMember,
		Via: via, Kind: msg.Kind, Text: msg.Text, Fields: msg.Fields}
	if outside {
		out = asTemplate(out, snd.Template)
	}
	req, err := sp.Preview(out)
	if err != nil {
		return nil, err.Error()
	}
	return req, ""
}

// sentSince counts the run's own sends since a time.
func (s *sim) sentSince(t time.Time) int {
	n := 0
	for _, at := range s.sends {
		if !at.Before(t) {
			n++
		}
	}
	return n
}

// capped reports whether the run's own sends reached a cap.
func (s *sim) capped(c workflows.Caps) bool {
	day := midnight(s.now, s.loc)
	week := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	count := func(since time.Time) int {
		n := 0
		for _, t := range s.sends {
			if !t.Before(since) {
				n++
			}
		}
		return n
	}
	return (c.PerDay > 0 && count(day) >= c.PerDay) || (c.PerWeek > 0 && count(week) >= c.PerWeek)
}

// reached is an event that ended a wait: a goal, or what a wait_for waited
// for.
type reached struct {
	goal bool
}

// until moves the clock to t, delivering the events up to t in order. It
// stops at an event that reaches a goal (the run ends converted) or that
// the wait_for w waits for.
func (s *sim) until(t time.Time, w *workflows.WaitFor) *reached {
	for len(s.events) > 0 && !s.events[0].At.After(t) {
		ev := s.events[0]
		s.events = s.events[1:]
		if ev.At.After(s.now) {
			s.now = ev.At
		}
		s.apply(ev)
		model, order := s.eventModel(ev)
		env := s.env(model)
		if order != nil {
			env.Order = *order
		}
		for i := range s.wf.Goals {
			if ok, _ := s.wf.Goals[i].Matches(ev.Type, env); ok {
				s.record("goal", "", ev.Type+" reaches the goal: run ends (converted)")
				return &reached{goal: true}
			}
		}
		for i := range s.wf.Exits {
			if ok, _ := s.wf.Exits[i].Matches(ev.Type, env); ok {
				s.record("exit", "", ev.Type+" is an exit: run ends (exited)")
				return &reached{goal: true}
			}
		}
		if w != nil && ev.Type == w.Event {
			if ok, _ := w.Filter.Bool(env); ok {
				return &reached{}
			}
		}
	}
	if t.After(s.now) {
		s.now = t
	}
	return nil
}

// deliverBefore applies the events before t (before the trigger).
func (s *sim) deliverBefore(t time.Time) {
	for len(s.events) > 0 && s.events[0].At.Before(t) {
		s.apply(s.events[0])
		s.events = s.events[1:]
	}
}

// apply changes the member as an event does.
func (s *sim) apply(ev EventFixture) {
	switch ev.Type {
	case events.TypeMessageReceived:
		if ev.Channel == "" || ev.Channel == s.m.Channel {
			s.m.LastInboundAt = ev.At
		}
	case events.TypePurchaseCompleted:
		s.m.Orders++
		s.m.LastPurchaseAt = ev.At
		if ev.Order != nil {
			s.m.TotalSpent += ev.Order.Total
			o := *ev.Order
			if o.PurchasedAt.IsZero() {
				o.PurchasedAt = ev.At
			}
			s.m.LastOrder = &o
		}
	case events.TypePurchaseRefunded:
		if ev.Order != nil {
			s.m.TotalSpent -= ev.Order.Total
		}
	case events.TypeMemberTagged:
		if ev.Tag != "" && !slices.Contains(s.m.Tags, ev.Tag) {
			s.m.Tags = append(s.m.Tags, ev.Tag)
		}
	}
}

func (s *sim) eventModel(ev EventFixture) (workflows.Event, *events.Order) {
	m := workflows.Event{Type: ev.Type, At: ev.At, Channel: ev.Channel, StoreID: ev.StoreID, Tag: ev.Tag, Text: ev.Text, Attrs: ev.Attrs}
	if m.Attrs == nil {
		m.Attrs = map[string]string{}
	}
	if ev.Order == nil {
		return m, nil
	}
	o := *ev.Order
	if o.PurchasedAt.IsZero() {
		o.PurchasedAt = ev.At
	}
	if m.StoreID == "" {
		m.StoreID = o.StoreID
	}
	return m, &o
}

// env is what expressions see, with ev as the event.
func (s *sim) env(ev workflows.Event) *workflows.Env {
	m := s.m
	env := &workflows.Env{
		Event: ev,
		Member: workflows.Member{ID: m.ID, Name: m.Name, Level: m.Level, Points: m.Points, Tags: slices.Clone(m.Tags),
			Channel: m.Channel, JoinedAt: m.JoinedAt, LastPurchaseAt: m.LastPurchaseAt, Orders: m.Orders,
			TotalSpent: m.TotalSpent, GuideID: m.GuideID, StoreID: m.StoreID, TimeZone: m.TimeZone},
		Run: workflows.Run{StartedAt: s.started, Step: s.step, Sent: len(s.sends)},
		Now: s.now,
	}
	if env.Member.Tags == nil {
		env.Member.Tags = []string{}
	}
	switch {
	case s.triggerOrder != nil:
		env.Order = *s.triggerOrder
	case m.LastOrder != nil:
		env.Order = *m.LastOrder
	}
	return env
}

// data is what messages and task texts are rendered with.
func (s *sim) data(step string) *templates.Data {
	m := s.m
	d := &templates.Data{
		Member:   templates.Member{Name: m.Name, Level: m.Level, Points: m.Points, PhoneTail: m.PhoneTail},
		Guide:    templates.Guide{Name: m.GuideName, Store: m.StoreName},
		Store:    templates.Store{Name: m.StoreName, Address: m.StoreAddress, OpeningHours: m.OpeningHours},
		Workflow: templates.Workflow{Name: s.wf.Name, Step: step},
		Brand:    templates.Brand{Name: orWord(m.BrandName, s.wf.Entry.Brand)},
		TimeZone: s.loc.String(),
	}
	switch {
	case s.triggerOrder != nil:
		d.Order = orderData(*s.triggerOrder)
	case m.LastOrder != nil:
		d.Order = orderData(*m.LastOrder)
	}
	return d
}

// sendGroups simulates a send_groups step: the send rules' hours, then
// the message as the first channel with customer groups renders it.
// Which groups, and whether they had their message of the day, is not
// simulated.
func (s *sim) sendGroups(step *workflows.Step) (string, bool) {
	sg := step.SendGroups
	if s.m.GuideID == "" {
		s.record(step.ID, step.Kind, "member has no guide, so no "+sg.To+" groups: nothing sent")
		return step.Next, false
	}
	channel := ""
	for _, sp := range s.opts.Specs {
		if len(sp.GroupKinds) > 0 {
			channel = sp.Name
			break
		}
	}
	if channel == "" && len(s.opts.Specs) > 0 {
		s.record(step.ID, step.Kind, "no channel has customer groups: nothing sent")
		return step.Next, false
	}
	rules := &s.wf.SendRules
	for range 30 {
		at, held := holdUntil(rules, s.now, s.loc, spread(s.m.ID, s.opts.SpreadWindow))
		if !held {
			break
		}
		s.record(step.ID, step.Kind, "held by the send rules until "+at.In(s.loc).Format(time.DateTime))
		if s.until(at, nil) != nil {
			return "", true
		}
	}
	locale := orWord(s.m.Locale, s.opts.Locale)
	msg, err := s.opts.Templates.Render(sg.Template, locale, orWord(channel, "wecom"), groupData(s.data(step.ID)))
	if err != nil {
		return s.fail(step, err)
	}
	e := s.record(step.ID, step.Kind, fmt.Sprintf("sends %s to %s through their owners (a message task each owner confirms; "+
		"groups that had their message today are left out; the groups are not simulated)", sg.Template, groupWords(sg, s.m)))
	e.Channel, e.Message = channel, msg
	return step.Next, false
}
