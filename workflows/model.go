package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/templates"
)

// triggerEvents can start a run; guide_task.completed belongs to a run
// and can only be awaited or be a goal.
var triggerEvents = []string{
	events.TypeMemberJoined, events.TypeMemberLeft, events.TypeMemberTagged, events.TypePurchaseCompleted,
	events.TypePurchaseRefunded, events.TypeMessageReceived, events.TypeStoreVisited, events.TypeMemberSignedUp, events.TypeMemberUpdated, events.TypeMemberUntagged,
	events.TypeCouponRedeemed, events.TypeCouponUnredeemed,
	events.TypeLiveScheduled, events.TypeLiveJoined, events.TypeLiveLeft, events.TypeLiveOrdered, events.TypeLiveCancelled,
}

// isCustomEvent reports a brand's own event type: "x." and a name.
func isCustomEvent(s string) bool {
	name, ok := strings.CutPrefix(s, "x.")
	return ok && name != "" && len(s) <= 64 && !strings.ContainsAny(name, " \t")
}

var allEvents = append(slices.Clone(triggerEvents), events.TypeGuideTaskCompleted)

// End is the step id transitions name to end the run: next: end.
const End = "end"

// DefaultTimeZone is the zone rules fall back to when neither the member
// nor their store has one.
const DefaultTimeZone = "Asia/Shanghai"

// DefaultQuietHours are the quiet hours of a workflow that names none:
// no nudges from 21:00 to 09:00 in the member's zone. quiet_hours: none
// turns them off.
var DefaultQuietHours = Window{Start: 21 * 60, End: 9 * 60}

// Workflow is a validated workflow definition: the model the engine
// executes. Every step has a stable id, every transition names a step id
// (or End), every duration is a time.Duration and every expression is
// compiled and type-checked.
type Workflow struct {
	// Name identifies the workflow within its brand (PUT
	// /api/v1/workflows/{name}).
	Name        string
	Description string
	// File is the file name the workflow was loaded from.
	File string
	// Version is the content hash of the YAML the workflow was loaded
	// from: runs are pinned to it. See VersionOf.
	Version string
	Trigger Trigger
	Entry   Entry
	Goals   []Goal
	// Exits are events that end a run without counting it as converted
	// (exit: live.cancelled): the reason to nudge is gone.
	Exits     []Goal
	SendRules SendRules
	// Steps in file order; a run starts at Steps[0].
	Steps []*Step
	byID  map[string]*Step
}

// Step returns the step with the given id.
func (w *Workflow) Step(id string) (*Step, bool) {
	s, ok := w.byID[id]
	return s, ok
}

// Start returns the id of the step a run starts at.
func (w *Workflow) Start() string { return w.Steps[0].ID }

// Sends reports whether the workflow sends messages to members.
func (w *Workflow) Sends() bool {
	return slices.ContainsFunc(w.Steps, func(s *Step) bool { return s.Kind == KindSend })
}

// VersionOf returns the version id of a workflow file's content: the
// first 16 hex digits of the SHA-256 of its bytes, with a byte-order mark
// dropped and CRLF line ends read as LF. Any other change, comments
// included, makes a new version.
func VersionOf(data []byte) string {
	s := strings.TrimPrefix(string(data), "\ufeff")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// Trigger starts runs: an event, or a schedule that goes through a
// segment of members.
type Trigger struct {
	// Event is the event type of an event trigger.
	Event string
	// Schedule is set for a schedule trigger.
	Schedule *Schedule
	// Segment narrows the members a schedule trigger considers, in terms
	// the member store can index; nil for event triggers.
	Segment *Segment
	// Filter, when set, must be true for a run to start.
	Filter *Expr
}

// Matches reports whether an event of the given type with env starts a
// run (entry rules aside). A schedule trigger matches event type
// "schedule".
func (t *Trigger) Matches(eventType string, env *Env) (bool, error) {
	want := t.Event
	if t.Schedule != nil {
		want = "schedule"
	}
	if eventType != want {
		return false, nil
	}
	return t.Filter.Bool(env)
}

// Segment is the structured part of a schedule trigger's audience.
type Segment struct {
	// LastPurchase, when set, keeps members whose last purchase was
	// between Min and Max ago (inclusive).
	LastPurchase *Between
	// Joined, when set, keeps members who joined between Min and Max ago.
	Joined *Between
	// Levels keeps members of one of these levels; empty keeps all.
	Levels []string
	// Tags keeps members with all of these tags.
	Tags []string
	// WithoutTags drops members with any of these tags.
	WithoutTags []string
}

// Between is a range of ages: from Min to Max ago.
type Between struct {
	Min time.Duration
	Max time.Duration
}

// Contains reports whether t, seen from now, is between Min and Max ago.
// A zero t (never) is not.
func (b *Between) Contains(t, now time.Time) bool {
	if t.IsZero() {
		return false
	}
	age := now.Sub(t)
	return age >= b.Min && age <= b.Max
}

// Entry says which members may start a run.
type Entry struct {
	// Brand is the brand whose members the workflow is for.
	Brand   string
	ReEntry ReEntry
	// CrossBrandFrom, when set, makes the workflow a cross-brand offer:
	// its schedule's segment is read from the members of these brands,
	// and a run starts only for a member bound to a guide of one of them
	// in a store that carries Brand, who accepted Brand's offers and
	// unsubscribed from neither brand. The run sends through that guide
	// and re-checks all of it before every message.
	CrossBrandFrom []string
}

// ReEntryPolicy says whether a member may run a workflow again.
type ReEntryPolicy string

// Re-entry policies. However re-entry is set, a member has at most one
// active run of a workflow: an event that would start a second one while
// the first is active starts nothing.
const (
	// ReEntryNever lets a member run the workflow once.
	ReEntryNever ReEntryPolicy = "never"
	// ReEntryAlways lets a member start again once their run ended.
	ReEntryAlways ReEntryPolicy = "always"
	// ReEntryAfter lets a member start again a cool-down after their
	// last run ended.
	ReEntryAfter ReEntryPolicy = "after"
)

// ReEntry is the re-entry rule: never, always, or after a cool-down.
type ReEntry struct {
	Policy   ReEntryPolicy
	CoolDown time.Duration
}

// Allows reports whether a member whose last run of the workflow ended at
// lastEnded (zero: never ran) may start one at now.
func (r ReEntry) Allows(lastEnded, now time.Time) bool {
	if lastEnded.IsZero() {
		return true
	}
	switch r.Policy {
	case ReEntryAlways:
		return true
	case ReEntryAfter:
		return !now.Before(lastEnded.Add(r.CoolDown))
	}
	return false
}

// Goal is an event that ends a run and counts it as converted.
type Goal struct {
	Event string
	// Filter, when set, must be true for the event to count.
	Filter *Expr
}

// Matches reports whether an event of the given type with env reaches
// the goal.
func (g *Goal) Matches(eventType string, env *Env) (bool, error) {
	if eventType != g.Event {
		return false, nil
	}
	return g.Filter.Bool(env)
}

// Zone rules of SendRules.TimeZone besides an IANA name.
const (
	ZoneMember = "member"
	ZoneStore  = "store"
)

// SendRules say when a workflow's messages may go out. They are checked
// when a message is due, not when it is scheduled.
type SendRules struct {
	// TimeZone is ZoneMember (default), ZoneStore or an IANA zone name:
	// the zone QuietHours, SendWindow and SendDays are read in.
	TimeZone string
	// QuietHours is when nothing is sent; nil for none. A message due in
	// quiet hours moves to their end.
	QuietHours *Window
	// SendWindow, when set, is the only time of day messages go out.
	SendWindow *Window
	// SendDays, when not empty, are the only days messages go out.
	SendDays []time.Weekday
	Caps     Caps
}

// Caps limit how many messages a member gets from all workflows
// together; 0 means no limit.
type Caps struct {
	PerDay  int
	PerWeek int
	// WhenCapped is what happens to a message over a cap.
	WhenCapped CapAction
}

// CapAction is what happens to a message over a frequency cap.
type CapAction string

// Cap actions.
const (
	// CapDelay holds the message until the cap allows it (default).
	CapDelay CapAction = "delay"
	// CapSkip drops the message and moves the run on.
	CapSkip CapAction = "skip"
)

// Location returns the zone the rules are read in, given the member's and
// their store's zones (either may be empty): the member's, else the
// store's, else DefaultTimeZone, or the other way round for ZoneStore.
func (r *SendRules) Location(memberZone, storeZone string) *time.Location {
	candidates := []string{memberZone, storeZone, DefaultTimeZone}
	switch r.TimeZone {
	case ZoneStore:
		candidates = []string{storeZone, memberZone, DefaultTimeZone}
	case ZoneMember, "":
	default:
		candidates = []string{r.TimeZone, DefaultTimeZone}
	}
	for _, name := range candidates {
		if name == "" {
			continue
		}
		if loc, err := loadZone(name); err == nil {
			return loc
		}
	}
	return time.UTC
}

// Allowed reports whether a message may go out at t, read in loc.
func (r *SendRules) Allowed(t time.Time, loc *time.Location) bool {
	local := t.In(loc)
	c := Clock(local.Hour()*60 + local.Minute())
	if len(r.SendDays) > 0 && !slices.Contains(r.SendDays, local.Weekday()) {
		return false
	}
	if r.SendWindow != nil && !r.SendWindow.Contains(c) {
		return false
	}
	return r.QuietHours == nil || !r.QuietHours.Contains(c)
}

// SendTime returns the first time at or after t when a message may go
// out, read in loc: t itself, or the end of the quiet hours, the start of
// the send window or of the next send day. It returns the zero time when
// the rules never allow a send, which Load rejects.
func (r *SendRules) SendTime(t time.Time, loc *time.Location) time.Time {
	if r.Allowed(t, loc) {
		return t
	}
	local := t.In(loc)
	y, m, d := local.Date()
	var best time.Time
	for i := 0; i <= 8; i++ {
		starts := []Clock{0}
		if r.QuietHours != nil {
			starts = append(starts, r.QuietHours.End)
		}
		if r.SendWindow != nil {
			starts = append(starts, r.SendWindow.Start)
		}
		for _, c := range starts {
			at := wallTime(y, m, d+i, c, loc)
			if at.After(t) && r.Allowed(at, loc) && (best.IsZero() || at.Before(best)) {
				best = at
			}
		}
		if !best.IsZero() {
			return best
		}
	}
	return best
}

// Kind is the kind of a step.
type Kind string

// Step kinds.
const (
	KindAssignGuide Kind = "assign_guide"
	KindSend        Kind = "send"
	KindGuideTask   Kind = "guide_task"
	KindWait        Kind = "wait"
	KindWaitFor     Kind = "wait_for"
	KindIf          Kind = "if"
	KindSwitch      Kind = "switch"
	KindTag         Kind = "tag"
	KindUntag       Kind = "untag"
	KindAwardPoints Kind = "award_points"
	KindWebhook     Kind = "webhook"
	KindSendGroups  Kind = "send_groups"
	KindEnd         Kind = "end"
)

// Kinds lists every step kind, in the order the documentation gives them.
var Kinds = []Kind{
	KindAssignGuide, KindSend, KindGuideTask, KindWait, KindWaitFor, KindIf, KindSwitch,
	KindTag, KindUntag, KindAwardPoints, KindWebhook, KindSendGroups, KindEnd,
}

// Step is one step of a workflow. Exactly one of the kind fields is set,
// the one Kind names (Tag for both tag and untag).
type Step struct {
	// ID is stable: written in the file (id:) or derived from the step's
	// position (step_3). Runs record it as their current step.
	ID   string
	Kind Kind
	// Pos is where the step starts in the file.
	Pos Pos
	// Next is the step after this one, a step id or End, for the kinds
	// that do not branch (all but wait_for, if, switch and end).
	Next string

	AssignGuide *AssignGuide
	Send        *Send
	GuideTask   *GuideTask
	Wait        *Wait
	WaitFor     *WaitFor
	If          *If
	Switch      *Switch
	Tag         *Tag
	AwardPoints *AwardPoints
	Webhook     *Webhook
	SendGroups  *SendGroups
	End         *EndStep
}

// Transition is an edge of the workflow graph.
type Transition struct {
	// Label says when it is taken: next, then, else, case VALUE,
	// default, on_event, on_timeout.
	Label string
	// To is a step id or End.
	To string
}

// Transitions lists the steps a step can lead to.
func (s *Step) Transitions() []Transition {
	switch s.Kind {
	case KindEnd:
		return nil
	case KindIf:
		return []Transition{{"then", s.If.Then}, {"else", s.If.Else}}
	case KindSwitch:
		ts := make([]Transition, 0, len(s.Switch.Cases)+1)
		for _, c := range s.Switch.Cases {
			ts = append(ts, Transition{"case " + c.Label, c.To})
		}
		return append(ts, Transition{"default", s.Switch.Default})
	case KindWaitFor:
		return []Transition{{"on_event", s.WaitFor.OnEvent}, {"on_timeout", s.WaitFor.OnTimeout}}
	}
	return []Transition{{"next", s.Next}}
}

// Strategies of assign_guide.
const (
	// AssignNearest binds the member to a guide of the nearest store
	// carrying the brand with capacity; a QR code's state naming a store
	// or guide wins over location.
	AssignNearest = "nearest"
	// AssignStore binds the member to a guide of one store: StoreID, else
	// the store of the run's trigger event, else of the member's last
	// order.
	AssignStore = "store"
	// AssignPool binds the member to a guide of the brand's online pool.
	AssignPool = "pool"
	// AssignOnlinePool is the former name of AssignPool, still read.
	AssignOnlinePool = "online_pool"
	// AssignNone is the Fallback that gives up.
	AssignNone = "none"
)

// AssignGuide binds the member to a guide.
type AssignGuide struct {
	// Strategy is AssignNearest, AssignStore or AssignPool.
	Strategy string
	// StoreID is the store of AssignStore, or "" for the trigger event's.
	StoreID string
	// MaxDistanceKm limits AssignNearest; 0 uses the gateway's limit.
	MaxDistanceKm float64
	// Fallback is what to do when the strategy finds no guide with room:
	// AssignPool, AssignNearest (after AssignStore) or AssignNone.
	Fallback string
	// KeepCurrent keeps a member's current active guide (default true).
	KeepCurrent bool
}

// ChannelMember sends on the member's own channel (Member.Channel).
const ChannelMember = "member"

// How a send reaches the member.
const (
	// ViaBrand sends from the brand's account (app, bot).
	ViaBrand = "brand"
	// ViaGuide sends through the member's guide (a WeCom message task
	// the guide confirms), and so also makes a guide task with a
	// reminder.
	ViaGuide = "guide"
)

// Send priorities.
const (
	PriorityNormal = "normal"
	// PriorityHigh goes ahead of every other send and is not held by
	// quiet hours or the send window: for answers to the member's own
	// action, such as a welcome (WeCom's welcome_code lives 20 seconds).
	// Caps and consent still apply.
	PriorityHigh = "high"
)

// Send sends a message template to the member.
type Send struct {
	Template string
	// Channel is ChannelMember or a channel name (wecom, dingtalk).
	Channel string
	// Via is ViaBrand or ViaGuide.
	Via string
	// Coupon is the coupon batch to issue the member a coupon from
	// before rendering (.Coupon), or "".
	Coupon   string
	Priority string
	// WhenCapped is what happens when the channel's own limit on messages
	// to the member (WeCom's mass-message limit) is reached; "" follows
	// the send rules' caps.when_capped.
	WhenCapped CapAction
	// ValidUntil, when set, is when the message stops being worth
	// sending: one held by quiet hours, the send window or a cap past it
	// is skipped, not sent late (a live session's reminder).
	ValidUntil *Expr
}

// GuideTask gives the member's guide a task.
type GuideTask struct {
	// Title and Note are checked templates executed with the same data
	// as message templates; Note may be nil.
	Title *templates.Text
	Note  *templates.Text
	// TitleSource is the title as written.
	TitleSource string
	// DueIn is how long the guide has, from the step.
	DueIn time.Duration
}

// Wait pauses the run for a duration or until a time.
type Wait struct {
	// For is the duration, when Until is nil.
	For time.Duration
	// Until gives the time to wake at; a time already past wakes at once.
	Until *Expr
}

// WaitFor waits for an event, up to a timeout.
type WaitFor struct {
	Event string
	// Filter, when set, must be true for the event to count.
	Filter  *Expr
	Timeout time.Duration
	// OnEvent and OnTimeout are the steps (or End) to go to.
	OnEvent   string
	OnTimeout string
}

// If branches on a condition.
type If struct {
	Cond *Expr
	Then string
	Else string
}

// Switch branches on a value.
type Switch struct {
	Value *Expr
	// Cases in file order; the first equal to the value is taken.
	Cases []Case
	// Default is taken when no case is.
	Default string
}

// Case is one case of a switch.
type Case struct {
	// Label is the case's value as written; it matches a text value
	// equal to it, or a number or true/false it spells.
	Label string
	To    string
}

// Target evaluates the switch and returns the step to go to.
func (s *Switch) Target(env *Env) (string, error) {
	v, err := s.Value.Eval(env)
	if err != nil {
		return "", err
	}
	for _, c := range s.Cases {
		if caseEqual(c, v) {
			return c.To, nil
		}
	}
	return s.Default, nil
}

func caseEqual(c Case, v any) bool {
	switch x := v.(type) {
	case string:
		return c.Label == x
	case bool:
		b, err := strconv.ParseBool(c.Label)
		return err == nil && b == x
	case int:
		n, err := strconv.ParseInt(c.Label, 10, 64)
		return err == nil && n == int64(x)
	case int64:
		n, err := strconv.ParseInt(c.Label, 10, 64)
		return err == nil && n == x
	case float64:
		f, err := strconv.ParseFloat(c.Label, 64)
		return err == nil && f == x
	}
	return c.Label == fmt.Sprint(v)
}

// Tag adds (tag) or removes (untag) member tags.
type Tag struct {
	Tags []string
}

// AwardPoints credits the member points on the brand's points ledger.
type AwardPoints struct {
	Points int64
	// Reason is written on the ledger line.
	Reason string
}

// Webhook calls the brand's system with a signed request (Standard
// Webhooks: webhook-id, webhook-timestamp, webhook-signature).
type Webhook struct {
	URL string
	// Event is the type of the event posted, default "workflow.step".
	Event string
	// Secret names the configured signing secret, default "default".
	Secret  string
	Timeout time.Duration
}

// Whose customer groups a send_groups step sends to.
const (
	// GroupsOfGuide are the groups the member's guide owns.
	GroupsOfGuide = "guide"
	// GroupsOfStore are the groups of the member's store, each through
	// its owner.
	GroupsOfStore = "store"
)

// SendGroups sends a message template to customer groups (WeCom 客户群)
// through their owners: the groups of the member's guide or of their
// store, of the workflow's brand. A group gets one message a day,
// whoever sends it: groups that had theirs are left out.
type SendGroups struct {
	Template string
	// To is GroupsOfGuide (default) or GroupsOfStore.
	To string
}

// EndStep ends the run.
type EndStep struct {
	// Reason is recorded on the run, when given.
	Reason string
}
