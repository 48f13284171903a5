package workflows

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/templates"
)

// MaxFileSize bounds a workflow file.
const MaxFileSize = 1 << 20

// Templates is the set of message templates workflows may name;
// *templates.Registry implements it.
type Templates interface {
	Lookup(id string) (*templates.Template, bool)
	IDs() []string
}

// Options configure Load.
type Options struct {
	// Templates are the message templates send steps may name. Nil skips
	// the template checks: only for structure-only validation (a fuzzer);
	// the gateway and the CLI always pass their registry.
	Templates Templates
	// Channels are the channel kinds a send step may name besides
	// "member" (the kinds of the registered channels; see
	// adapters.KindOf). Empty: any name, and a send to "member" is
	// checked against no channel's kinds.
	Channels []string
	// MemberKinds are the message kinds each channel can send to a member
	// (its adapters.Spec MemberKinds), by channel name. A send step's
	// template must render, on each channel the step may use (its
	// channel, or for "member" every one of Channels), a kind the channel
	// sends; a channel without an entry is not checked.
	MemberKinds map[string][]string
}

// LoadFile reads and loads a workflow file; errors name it as given.
func LoadFile(path string, opts Options) (*Workflow, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading workflow: %w", err)
	}
	return Load(path, data, opts)
}

// Load parses and validates a workflow. filename names the file in
// errors. Decoding is strict (an unknown key is an error) and validation
// complete: on any problem Load returns an ErrorList with every problem
// found, each with file:line:column and, for misspellings, a "did you
// mean" suggestion.
func Load(filename string, data []byte, opts Options) (*Workflow, error) {
	d := &decoder{file: filename, opts: opts}
	if len(data) > MaxFileSize {
		d.errorAt(1, 1, "", "the file is %d bytes, more than the %d a workflow may have", len(data), MaxFileSize)
		return nil, d.errs.err()
	}
	d.lines = strings.Split(string(data), "\n")
	var doc yaml.Node
	if err := unmarshal(data, &doc); err != nil {
		line, msg := yamlError(err)
		d.errorAt(line, 1, "", "%s", msg)
		return nil, d.errs.err()
	}
	if len(doc.Content) == 0 {
		d.errorAt(1, 1, "", "empty file: a workflow needs name, trigger, entry and steps")
		return nil, d.errs.err()
	}
	if d.aliases(doc.Content[0]) {
		return nil, d.errs.err()
	}
	w := d.workflow(doc.Content[0])
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	w.File = filename
	w.Version = VersionOf(data)
	return w, nil
}

// unmarshal parses one YAML document, turning a panic of the parser
// into an error.
func unmarshal(data []byte, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: the file cannot be parsed: %v", r)
		}
	}()
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(n); err != nil {
		if err.Error() == "EOF" {
			return nil
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return fmt.Errorf("yaml: line %d: a file holds one workflow: remove the second document (---)", extra.Line)
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlError(err error) (int, string) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, "bad YAML: " + m[2]
	}
	return 1, "bad YAML: " + strings.TrimPrefix(msg, "yaml: ")
}

// decoder walks a workflow's YAML nodes, building the model and
// collecting every problem with its position.
type decoder struct {
	file  string
	lines []string
	opts  Options
	errs  ErrorList
	// refs are the step ids named by transitions, checked once every
	// step is known.
	refs []ref
	// falls are transitions left out, which go to the step after.
	falls []fall
	// unknownStep is set when a transition names no step.
	unknownStep bool
}

type ref struct {
	node   *yaml.Node
	path   string
	target *string
}

type fall struct {
	step   int
	target *string
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errorAt(n.Line, n.Column, path, format, args...)
}

func (d *decoder) errorAt(line, col int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: max(line, 1), Column: max(col, 1), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// aliases reports YAML aliases, which workflows do not support: they
// hide what a step does from whoever reads it.
func (d *decoder) aliases(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode {
		d.errorf(n, "", "anchors and aliases (*name) are not supported in workflows: write the value out")
		return true
	}
	found := false
	for _, c := range n.Content {
		found = d.aliases(c) || found
	}
	return found
}

type pair struct {
	key, val *yaml.Node
}

// fields returns the keys of a mapping node, reporting a node that is not
// a mapping, duplicate keys and keys not in known (with "did you mean").
func (d *decoder) fields(n *yaml.Node, path, what string, known []string) map[string]pair {
	pairs, ok := d.pairs(n, path, what)
	if !ok {
		return nil
	}
	m := make(map[string]pair, len(pairs))
	for _, p := range pairs {
		if !slices.Contains(known, p.key.Value) {
			d.unknownField(p.key, join(path, p.key.Value), known, "")
			continue
		}
		m[p.key.Value] = p
	}
	return m
}

func (d *decoder) pairs(n *yaml.Node, path, what string) ([]pair, bool) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected %s, got %s", what, nodeKind(n))
		return nil, false
	}
	var pairs []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			d.errorf(key, path, "a key must be a plain name, got %s", nodeKind(key))
			continue
		}
		if seen[key.Value] {
			d.errorf(key, join(path, key.Value), "%s is given twice", key.Value)
			continue
		}
		seen[key.Value] = true
		pairs = append(pairs, pair{key, val})
	}
	return pairs, true
}

func (d *decoder) unknownField(key *yaml.Node, path string, known []string, owner string) {
	if s := didYouMean(key.Value, known); s != "" {
		d.errorf(key, path, "unknown field %q%s", key.Value, s)
		return
	}
	if owner == "" {
		d.errorf(key, path, "unknown field %q; the fields here are %s", key.Value, list(known, "and"))
		return
	}
	d.errorf(key, path, "unknown field %q; %s has %s", key.Value, owner, list(known, "and"))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping (key: value lines)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// str returns a scalar's text, reporting anything else.
func (d *decoder) str(n *yaml.Node, path, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.errorf(n, path, "expected %s, got %s", what, nodeKind(n))
		return "", false
	}
	return n.Value, true
}

// oneOf returns a scalar that must be one of options.
func (d *decoder) oneOf(n *yaml.Node, path, what string, options []string) (string, bool) {
	s, ok := d.str(n, path, what)
	if !ok {
		return "", false
	}
	if !slices.Contains(options, s) {
		if sug := didYouMean(s, options); sug != "" {
			d.errorf(n, path, "unknown %s %q%s", what, s, sug)
		} else {
			d.errorf(n, path, "unknown %s %q: use %s", what, s, list(quoteAll(options), "or"))
		}
		return "", false
	}
	return s, true
}

func quoteAll(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return q
}

// names returns a scalar or a list of scalars.
func (d *decoder) names(n *yaml.Node, path, what string, re *regexp.Regexp) []string {
	var nodes []*yaml.Node
	switch n.Kind {
	case yaml.SequenceNode:
		nodes = n.Content
	default:
		nodes = []*yaml.Node{n}
	}
	var out []string
	for i, c := range nodes {
		p := path
		if n.Kind == yaml.SequenceNode {
			p = fmt.Sprintf("%s[%d]", path, i)
		}
		s, ok := d.str(c, p, what)
		if !ok {
			continue
		}
		if re != nil && !re.MatchString(s) {
			d.errorf(c, p, "bad %s %q: use letters, digits, _ and - only", what, s)
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 && n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		d.errorf(n, path, "expected at least one %s, got an empty list", what)
	}
	return out
}

func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := d.str(n, path, "a duration such as 3d, 72h or 1h30m")
	if !ok {
		return 0, false
	}
	v, err := ParseDuration(strings.TrimSpace(s))
	if err != nil {
		d.errorf(n, path, "%v", err)
		return 0, false
	}
	if v == 0 {
		d.errorf(n, path, "duration %q is zero: it must be longer", s)
		return 0, false
	}
	return v, true
}

// expr compiles an expression, reporting errors at their position inside
// the YAML value when it can be known.
func (d *decoder) expr(n *yaml.Node, path string, want result) *Expr {
	src, ok := d.str(n, path, "an expression")
	if !ok {
		return nil
	}
	if strings.TrimSpace(src) == "" {
		d.errorf(n, path, "empty expression")
		return nil
	}
	p, ferr := compileExpr(src, want)
	if ferr != nil {
		line, col := scalarPosition(n, d.lines, max(ferr.Line, 1), ferr.Column+1)
		d.errorAt(line, col, path, "%s", ferr.Message)
		return nil
	}
	return &Expr{Source: src, Pos: Pos{n.Line, n.Column}, program: p}
}

func (d *decoder) zone(n *yaml.Node, path string) (*time.Location, string, bool) {
	s, ok := d.str(n, path, "a time zone such as Asia/Shanghai")
	if !ok {
		return nil, "", false
	}
	loc, err := loadZone(s)
	if err != nil {
		d.errorf(n, path, "%v", err)
		return nil, "", false
	}
	return loc, s, true
}

func (d *decoder) event(n *yaml.Node, path string, events []string) (string, bool) {
	s, ok := d.str(n, path, "an event such as purchase.completed")
	if !ok {
		return "", false
	}
	if !slices.Contains(events, s) && !isCustomEvent(s) {
		if slices.Contains(allEvents, s) {
			d.errorf(n, path, "%s cannot start a run; triggers use %s", s, list(events, "or"))
		} else if sug := didYouMean(s, events); sug != "" {
			d.errorf(n, path, "unknown event %q%s", s, sug)
		} else {
			d.errorf(n, path, "unknown event %q; events are %s, or x.<name> for a brand's own", s, list(events, "and"))
		}
		return "", false
	}
	return s, true
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	idRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	tagRE  = regexp.MustCompile(`^[\p{L}\p{N}_.:-]{1,64}$`)
)

var topFields = []string{"name", "description", "trigger", "entry", "goal", "send_rules", "steps"}

func (d *decoder) workflow(root *yaml.Node) *Workflow {
	w := &Workflow{SendRules: defaultSendRules()}
	f := d.fields(root, "", "a workflow: a mapping with name, trigger, entry, goal, send_rules and steps", topFields)
	if f == nil {
		return w
	}
	if p, ok := f["name"]; ok {
		if s, ok := d.str(p.val, "name", "a name"); ok {
			if !nameRE.MatchString(s) {
				d.errorf(p.val, "name", "bad name %q: use lowercase letters, digits, - and _ (it appears in URLs)", s)
			}
			w.Name = s
		}
	} else {
		d.errorf(root, "", "missing name: give the workflow a name such as new-member-welcome")
	}
	if p, ok := f["description"]; ok {
		w.Description, _ = d.str(p.val, "description", "a text")
	}
	if p, ok := f["trigger"]; ok {
		d.trigger(p.val, &w.Trigger)
	} else {
		d.errorf(root, "", "missing trigger: say what starts a run, e.g. trigger: {event: member.joined}")
	}
	if p, ok := f["entry"]; ok {
		d.entry(p.val, &w.Entry)
	} else {
		d.errorf(root, "", "missing entry: say at least which brand's members the workflow is for (entry: {brand: ...})")
	}
	if p, ok := f["entry"]; ok && len(w.Entry.CrossBrandFrom) > 0 && w.Trigger.Schedule == nil && w.Trigger.Event != "" {
		d.errorf(p.val, "entry.cross_brand_from", "a cross-brand offer goes to a segment of the other brands' members: it needs a schedule trigger, not an event")
	}
	noGoal := false
	if p, ok := f["goal"]; ok {
		w.Goals, noGoal = d.goals(p.val)
	}
	if p, ok := f["send_rules"]; ok {
		d.sendRules(p.val, &w.SendRules)
	}
	if p, ok := f["steps"]; ok {
		w.Steps = d.steps(p.val)
		w.byID = make(map[string]*Step, len(w.Steps))
		for _, s := range w.Steps {
			w.byID[s.ID] = s
		}
		d.graph(w)
	} else {
		d.errorf(root, "", "missing steps: a workflow needs at least one step")
	}
	if _, ok := f["goal"]; !ok && !noGoal && w.Sends() {
		d.errorf(root, "goal", "missing goal: a workflow that sends messages needs a goal, the event that counts a member as converted and stops the nudges (e.g. goal: purchase.completed); write goal: none if it has none")
	}
	return w
}

func (d *decoder) trigger(n *yaml.Node, t *Trigger) {
	known := []string{"event", "schedule", "time_zone", "segment", "filter"}
	if n.Kind == yaml.ScalarNode && slices.Contains(allEvents, n.Value) {
		d.errorf(n, "trigger", "write the event under trigger: trigger: {event: %s}", n.Value)
		return
	}
	f := d.fields(n, "trigger", "a mapping with event or schedule, and filter", known)
	if f == nil {
		return
	}
	ev, hasEvent := f["event"]
	sc, hasSchedule := f["schedule"]
	switch {
	case hasEvent && hasSchedule:
		d.errorf(sc.key, "trigger.schedule", "a trigger has an event or a schedule, not both")
	case !hasEvent && !hasSchedule:
		d.errorf(n, "trigger", "missing event or schedule: e.g. event: member.joined, or schedule: every day at 10:00")
	}
	if hasEvent {
		t.Event, _ = d.event(ev.val, "trigger.event", triggerEvents)
		for _, k := range []string{"time_zone", "segment"} {
			if p, ok := f[k]; ok {
				d.errorf(p.key, "trigger."+k, "%s is only for schedule triggers", k)
			}
		}
	}
	if hasSchedule && !hasEvent {
		loc, _ := loadZone(DefaultTimeZone)
		if p, ok := f["time_zone"]; ok {
			if l, _, ok := d.zone(p.val, "trigger.time_zone"); ok {
				loc = l
			}
		}
		if s, ok := d.str(sc.val, "trigger.schedule", "a schedule such as \"every day at 10:00\""); ok {
			sched, err := parseSchedule(s, loc)
			if err != nil {
				d.errorf(sc.val, "trigger.schedule", "%v", err)
			}
			t.Schedule = sched
		}
		if p, ok := f["segment"]; ok {
			t.Segment = d.segment(p.val)
		}
	}
	if p, ok := f["filter"]; ok {
		t.Filter = d.expr(p.val, "trigger.filter", resultBool)
	}
}

func (d *decoder) segment(n *yaml.Node) *Segment {
	known := []string{"last_purchase_between", "joined_between", "levels", "tags", "without_tags"}
	f := d.fields(n, "trigger.segment", "a mapping of segment rules", known)
	s := &Segment{}
	for _, k := range known {
		p, ok := f[k]
		if !ok {
			continue
		}
		path := "trigger.segment." + k
		switch k {
		case "last_purchase_between":
			s.LastPurchase = d.between(p.val, path)
		case "joined_between":
			s.Joined = d.between(p.val, path)
		case "levels":
			s.Levels = d.names(p.val, path, "level", tagRE)
		case "tags":
			s.Tags = d.names(p.val, path, "tag", tagRE)
		case "without_tags":
			s.WithoutTags = d.names(p.val, path, "tag", tagRE)
		}
	}
	return s
}

// between reads [90d, 120d].
func (d *decoder) between(n *yaml.Node, path string) *Between {
	if n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
		d.errorf(n, path, "expected two durations, the shortest and the longest time ago, like [90d, 120d]")
		return nil
	}
	lo, ok1 := d.duration(n.Content[0], path+"[0]")
	hi, ok2 := d.duration(n.Content[1], path+"[1]")
	if !ok1 || !ok2 {
		return nil
	}
	if lo > hi {
		d.errorf(n, path, "the first duration (%s) must not be longer than the second (%s)", formatDuration(lo), formatDuration(hi))
		return nil
	}
	return &Between{Min: lo, Max: hi}
}

var reEntryAfterRE = regexp.MustCompile(`^after\s+(.+)$`)

func (d *decoder) entry(n *yaml.Node, e *Entry) {
	f := d.fields(n, "entry", "a mapping with brand, re_entry and cross_brand_from", []string{"brand", "re_entry", "cross_brand_from"})
	if f == nil {
		return
	}
	if p, ok := f["cross_brand_from"]; ok {
		e.CrossBrandFrom = d.names(p.val, "entry.cross_brand_from", "brand id", nameRE)
		nodes := []*yaml.Node{p.val}
		if p.val.Kind == yaml.SequenceNode {
			nodes = p.val.Content
		}
		seen := map[string]bool{}
		for i, n := range nodes {
			path := "entry.cross_brand_from"
			if p.val.Kind == yaml.SequenceNode {
				path = fmt.Sprintf("%s[%d]", path, i)
			}
			switch b := n.Value; {
			case n.Kind != yaml.ScalarNode:
			case seen[b]:
				d.errorf(n, path, "brand %q is listed twice", b)
			case f["brand"].val != nil && f["brand"].val.Value == b:
				d.errorf(n, path, "brand %q is the workflow's own brand: list the other brands whose guides may offer it", b)
			}
			seen[n.Value] = true
		}
	}
	if p, ok := f["brand"]; ok {
		if s, ok := d.str(p.val, "entry.brand", "a brand id"); ok {
			if !nameRE.MatchString(s) {
				d.errorf(p.val, "entry.brand", "bad brand id %q: use lowercase letters, digits, - and _", s)
			}
			e.Brand = s
		}
	} else {
		d.errorf(n, "entry", "missing brand: the brand whose members the workflow is for")
	}
	e.ReEntry = ReEntry{Policy: ReEntryNever}
	p, ok := f["re_entry"]
	if !ok {
		return
	}
	s, ok := d.str(p.val, "entry.re_entry", "never, always or after a cool-down such as after 30d")
	if !ok {
		return
	}
	switch {
	case s == string(ReEntryNever) || s == string(ReEntryAlways):
		e.ReEntry.Policy = ReEntryPolicy(s)
	case reEntryAfterRE.MatchString(s):
		v, err := ParseDuration(strings.TrimSpace(reEntryAfterRE.FindStringSubmatch(s)[1]))
		if err != nil {
			d.errorf(p.val, "entry.re_entry", "%v", err)
			return
		}
		e.ReEntry = ReEntry{Policy: ReEntryAfter, CoolDown: v}
	default:
		msg := fmt.Sprintf("unknown re-entry %q: use never, always or after a cool-down such as after 30d", s)
		if sug := didYouMean(s, []string{"never", "always"}); sug != "" {
			msg = fmt.Sprintf("unknown re-entry %q%s", s, sug)
		}
		d.errorf(p.val, "entry.re_entry", "%s", msg)
	}
}

// goals reads goal: none, an event, {event, filter}, or a list of these.
func (d *decoder) goals(n *yaml.Node) ([]Goal, bool) {
	if n.Kind == yaml.ScalarNode && n.Value == "none" {
		return nil, true
	}
	nodes := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		nodes = n.Content
		if len(nodes) == 0 {
			d.errorf(n, "goal", "empty goal list: name at least one event, or write goal: none")
		}
	}
	var goals []Goal
	for i, c := range nodes {
		path := "goal"
		if n.Kind == yaml.SequenceNode {
			path = fmt.Sprintf("goal[%d]", i)
		}
		var g Goal
		switch c.Kind {
		case yaml.ScalarNode:
			if c.Value == "none" {
				d.errorf(c, path, "none cannot be in a list of goals: write goal: none alone")
				continue
			}
			g.Event, _ = d.event(c, path, allEvents)
		case yaml.MappingNode:
			f := d.fields(c, path, "a goal", []string{"event", "filter"})
			if p, ok := f["event"]; ok {
				g.Event, _ = d.event(p.val, path+".event", allEvents)
			} else {
				d.errorf(c, path, "missing event: the event that reaches the goal")
			}
			if p, ok := f["filter"]; ok {
				g.Filter = d.expr(p.val, path+".filter", resultBool)
			}
		default:
			d.errorf(c, path, "expected an event, a mapping with event and filter, or none; got %s", nodeKind(c))
			continue
		}
		goals = append(goals, g)
	}
	return goals, false
}

func defaultSendRules() SendRules {
	q := DefaultQuietHours
	return SendRules{TimeZone: ZoneMember, QuietHours: &q, Caps: Caps{WhenCapped: CapDelay}}
}

func (d *decoder) sendRules(n *yaml.Node, r *SendRules) {
	known := []string{"time_zone", "quiet_hours", "send_window", "send_days", "caps"}
	f := d.fields(n, "send_rules", "a mapping of send rules", known)
	if f == nil {
		return
	}
	if p, ok := f["time_zone"]; ok {
		if s, ok := d.str(p.val, "send_rules.time_zone", "member, store or a time zone such as Asia/Shanghai"); ok {
			switch s {
			case ZoneMember, ZoneStore:
				r.TimeZone = s
			default:
				if _, err := loadZone(s); err != nil {
					d.errorf(p.val, "send_rules.time_zone", "%v; or use member or store", err)
				} else {
					r.TimeZone = s
				}
			}
		}
	}
	window := func(k string) (*Window, bool) {
		p, ok := f[k]
		if !ok {
			return nil, false
		}
		s, ok := d.str(p.val, "send_rules."+k, "a span of time such as 21:00-09:00")
		if !ok {
			return nil, true
		}
		if k == "quiet_hours" && s == "none" {
			return nil, true
		}
		w, err := parseWindow(s)
		if err != nil {
			d.errorf(p.val, "send_rules."+k, "bad %s: %v", strings.ReplaceAll(k, "_", " "), err)
			return nil, true
		}
		return &w, true
	}
	if w, ok := window("quiet_hours"); ok {
		r.QuietHours = w
	}
	r.SendWindow, _ = window("send_window")
	if p, ok := f["send_days"]; ok {
		r.SendDays = d.sendDays(p.val)
	}
	if p, ok := f["caps"]; ok {
		d.caps(p.val, &r.Caps)
	}
	// The rules must leave some time to send in any week.
	if r.SendTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC).IsZero() {
		d.errorf(n, "send_rules", "these rules leave no time to send: the send window, send days and quiet hours never overlap")
	}
}

func (d *decoder) sendDays(n *yaml.Node) []time.Weekday {
	if n.Kind == yaml.ScalarNode && n.Value == "weekdays" {
		return []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	}
	if n.Kind == yaml.ScalarNode && n.Value == "weekends" {
		return []time.Weekday{time.Saturday, time.Sunday}
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "send_rules.send_days", "expected a list of days such as [mon, tue, wed, thu, fri], or weekdays or weekends; got %s", nodeKind(n))
		return nil
	}
	var days []time.Weekday
	for i, c := range n.Content {
		path := fmt.Sprintf("send_rules.send_days[%d]", i)
		s, ok := d.str(c, path, "a day such as mon")
		if !ok {
			continue
		}
		wd, ok := parseWeekday(s)
		if !ok {
			d.errorf(c, path, "unknown day %q%s", s, didYouMean(strings.ToLower(s), weekdayList))
			continue
		}
		if !slices.Contains(days, wd) {
			days = append(days, wd)
		}
	}
	return days
}

func (d *decoder) caps(n *yaml.Node, c *Caps) {
	f := d.fields(n, "send_rules.caps", "a mapping with per_day, per_week and when_capped", []string{"per_day", "per_week", "when_capped"})
	if f == nil {
		return
	}
	count := func(k string) int {
		p, ok := f[k]
		if !ok {
			return 0
		}
		path := "send_rules.caps." + k
		s, ok := d.str(p.val, path, "a number of messages")
		if !ok {
			return 0
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			d.errorf(p.val, path, "%s must be a whole number of messages, got %q", k, s)
			return 0
		}
		if v < 1 || v > 1000 {
			d.errorf(p.val, path, "%s must be from 1 to 1000 (leave it out for no cap), got %d", k, v)
			return 0
		}
		return v
	}
	c.PerDay = count("per_day")
	c.PerWeek = count("per_week")
	if c.PerDay > 0 && c.PerWeek > 0 && c.PerWeek < c.PerDay {
		d.errorf(f["per_week"].val, "send_rules.caps.per_week", "per_week (%d) is less than per_day (%d): a week would never reach the daily cap", c.PerWeek, c.PerDay)
	}
	if p, ok := f["when_capped"]; ok {
		if s, ok := d.oneOf(p.val, "send_rules.caps.when_capped", "cap action", []string{string(CapDelay), string(CapSkip)}); ok {
			c.WhenCapped = CapAction(s)
		}
	}
}

// kindFields are the fields each step kind has besides id and its kind.
var kindFields = map[Kind][]string{
	KindAssignGuide: {"store_id", "max_distance_km", "fallback", "keep_current", "next"},
	KindSend:        {"channel", "via", "coupon", "priority", "when_capped", "next"},
	KindGuideTask:   {"note", "due_in", "next"},
	KindWait:        {"next"},
	KindWaitFor:     {"filter", "timeout", "on_event", "on_timeout"},
	KindIf:          {"then", "else"},
	KindSwitch:      {"cases", "default"},
	KindTag:         {"next"},
	KindUntag:       {"next"},
	KindAwardPoints: {"reason", "next"},
	KindWebhook:     {"event", "secret", "timeout", "next"},
	KindEnd:         {},
}

func kindNames() []string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return names
}

func (d *decoder) steps(n *yaml.Node) []*Step {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "steps", "expected a list of steps (lines starting with -), got %s", nodeKind(n))
		return nil
	}
	if len(n.Content) == 0 {
		d.errorf(n, "steps", "no steps: a workflow needs at least one")
		return nil
	}
	steps := make([]*Step, len(n.Content))
	explicit := map[string]int{}
	for i, c := range n.Content {
		steps[i] = d.step(i, c, explicit)
	}
	// Derived ids must not collide with explicit ones.
	for i, s := range steps {
		if j, ok := explicit[s.ID]; ok && j != i {
			d.errorf(n.Content[j], fmt.Sprintf("steps[%d].id", j), "id %q is also the id steps[%d] gets from its position: choose another", s.ID, i)
		}
	}
	for _, f := range d.falls {
		*f.target = End
		if f.step+1 < len(steps) {
			*f.target = steps[f.step+1].ID
		}
	}
	ids := make([]string, 0, len(steps)+1)
	for _, s := range steps {
		ids = append(ids, s.ID)
	}
	for _, r := range d.refs {
		if *r.target == End || slices.Contains(ids, *r.target) {
			continue
		}
		d.unknownStep = true
		d.errorf(r.node, r.path, "unknown step %q%s", *r.target, didYouMean(*r.target, append(ids, End)))
	}
	return steps
}

// step decodes one step. A step that cannot be decoded still gets an id
// (kind empty), so the steps after it keep theirs.
func (d *decoder) step(i int, n *yaml.Node, explicit map[string]int) *Step {
	path := fmt.Sprintf("steps[%d]", i)
	s := &Step{ID: fmt.Sprintf("step_%d", i), Pos: Pos{n.Line, n.Column}}
	pairs, ok := d.pairs(n, path, "a step: a mapping with id and one of "+list(kindNames(), "or"))
	if !ok {
		return s
	}
	f := make(map[string]pair, len(pairs))
	var kinds []pair
	for _, p := range pairs {
		f[p.key.Value] = p
		if slices.Contains(Kinds, Kind(p.key.Value)) {
			kinds = append(kinds, p)
		}
	}
	if p, ok := f["id"]; ok {
		if id, ok := d.str(p.val, path+".id", "a step id"); ok {
			switch {
			case id == End:
				d.errorf(p.val, path+".id", "end is reserved: next: end ends the run; choose another id")
			case !idRE.MatchString(id):
				d.errorf(p.val, path+".id", "bad step id %q: use lowercase letters, digits, _ and -, starting with a letter", id)
			default:
				if j, dup := explicit[id]; dup {
					d.errorf(p.val, path+".id", "steps[%d] already has id %q", j, id)
				} else {
					explicit[id] = i
					s.ID = id
				}
			}
		}
	}
	switch len(kinds) {
	case 0:
		for _, p := range pairs {
			k := p.key.Value
			if k != "id" && k != "next" && !isField(k) {
				d.errorf(p.key, join(path, k), "unknown step kind %q%s", k, didYouMean(k, kindNames()))
				return s
			}
		}
		d.errorf(n, path, "missing step kind: a step needs one of %s", list(kindNames(), "or"))
		return s
	case 1:
	default:
		d.errorf(kinds[1].key, join(path, kinds[1].key.Value), "a step does one thing, but this one is both %s and %s: split it into two steps", kinds[0].key.Value, kinds[1].key.Value)
		return s
	}
	s.Kind = Kind(kinds[0].key.Value)
	allowed := append([]string{"id", string(s.Kind)}, kindFields[s.Kind]...)
	for _, p := range pairs {
		k := p.key.Value
		if slices.Contains(allowed, k) {
			continue
		}
		delete(f, k)
		if k == "next" {
			d.errorf(p.key, join(path, k), "%s step does not take next: %s", article(s.Kind), branchesOf[s.Kind])
			continue
		}
		if owners := fieldOwners(k); len(owners) > 0 {
			d.errorf(p.key, join(path, k), "%s step has no %s (%s steps do)", article(s.Kind), k, list(owners, "and"))
			continue
		}
		d.unknownField(p.key, join(path, k), allowed, article(s.Kind)+" step")
	}
	sf := stepFields{d: d, i: i, path: path, f: f, n: n}
	val := kinds[0].val
	switch s.Kind {
	case KindAssignGuide:
		s.AssignGuide = sf.assignGuide(val)
	case KindSend:
		s.Send = sf.send(val)
	case KindGuideTask:
		s.GuideTask = sf.guideTask(val)
	case KindWait:
		s.Wait = sf.wait(val)
	case KindWaitFor:
		s.WaitFor = sf.waitFor(val)
	case KindIf:
		s.If = sf.ifStep(val)
	case KindSwitch:
		s.Switch = sf.switchStep(val)
	case KindTag, KindUntag:
		s.Tag = &Tag{Tags: d.names(val, join(path, string(s.Kind)), "tag", tagRE)}
	case KindAwardPoints:
		s.AwardPoints = sf.awardPoints(val)
	case KindWebhook:
		s.Webhook = sf.webhook(val)
	case KindEnd:
		s.End = &EndStep{}
		if !isNull(val) {
			s.End.Reason, _ = d.str(val, join(path, "end"), "a reason, or nothing")
		}
	}
	if slices.Contains(kindFields[s.Kind], "next") {
		sf.target("next", &s.Next)
	}
	return s
}

// branchesOf says how the kinds without next choose their next step.
var branchesOf = map[Kind]string{
	KindWaitFor: "it goes on with on_event or on_timeout",
	KindIf:      "it goes on with then or else",
	KindSwitch:  "it goes on with its cases or default",
	KindEnd:     "it ends the run",
}

// article prefixes a step kind with a or an.
func article(k Kind) string {
	if strings.ContainsRune("aeiou", rune(k[0])) {
		return "an " + string(k)
	}
	return "a " + string(k)
}

// isField reports whether name is a field of some step kind.
func isField(name string) bool { return len(fieldOwners(name)) > 0 }

func fieldOwners(name string) []string {
	var owners []string
	for _, k := range Kinds {
		if name != "next" && slices.Contains(kindFields[k], name) {
			owners = append(owners, string(k))
		}
	}
	return owners
}

// stepFields decodes the fields of one step.
type stepFields struct {
	d    *decoder
	i    int
	path string
	f    map[string]pair
	n    *yaml.Node
}

func (sf *stepFields) get(k string) (*yaml.Node, string, bool) {
	p, ok := sf.f[k]
	if !ok {
		return nil, "", false
	}
	return p.val, join(sf.path, k), true
}

// target reads a transition field; left out, it goes to the next step.
func (sf *stepFields) target(k string, to *string) bool {
	n, path, ok := sf.get(k)
	if !ok {
		sf.d.falls = append(sf.d.falls, fall{step: sf.i, target: to})
		return false
	}
	s, ok := sf.d.str(n, path, "a step id, or end")
	if !ok {
		*to = End
		return true
	}
	*to = s
	sf.d.refs = append(sf.d.refs, ref{node: n, path: path, target: to})
	return true
}

func (sf *stepFields) assignGuide(val *yaml.Node) *AssignGuide {
	d := sf.d
	a := &AssignGuide{Strategy: AssignNearest, Fallback: AssignNone, KeepCurrent: true}
	// online_pool is the former spelling of pool.
	canon := func(s string) string {
		if s == AssignOnlinePool {
			return AssignPool
		}
		return s
	}
	if !isNull(val) {
		s, _ := d.oneOf(val, join(sf.path, "assign_guide"), "assignment", []string{AssignNearest, AssignStore, AssignPool, AssignOnlinePool})
		a.Strategy = canon(s)
	}
	if n, path, ok := sf.get("store_id"); ok {
		if id, ok := d.str(n, path, "a store id"); ok {
			if !storeIDRE.MatchString(id) {
				d.errorf(n, path, "bad store id %q: use letters, digits, _, - and .", id)
			}
			a.StoreID = id
		}
		if a.Strategy != AssignStore {
			d.errorf(n, path, "store_id is for assign_guide: store, not %s", a.Strategy)
		}
	}
	if n, path, ok := sf.get("max_distance_km"); ok {
		v, err := strconv.ParseFloat(n.Value, 64)
		if n.Kind != yaml.ScalarNode || err != nil || !(v > 0 && v <= 20000) {
			d.errorf(n, path, "max_distance_km must be a number of kilometres above 0, got %s", nodeKind(n))
		} else {
			a.MaxDistanceKm = v
		}
		if a.Strategy != AssignNearest && !(a.Strategy == AssignStore && sf.has("fallback", AssignNearest)) {
			d.errorf(n, path, "max_distance_km is for the nearest assignment (assign_guide: nearest, or fallback: nearest), not %s", a.Strategy)
		}
	}
	if n, path, ok := sf.get("fallback"); ok {
		options := map[string][]string{
			AssignNearest: {AssignPool, AssignOnlinePool, AssignNone},
			AssignStore:   {AssignNearest, AssignPool, AssignOnlinePool, AssignNone},
			AssignPool:    {AssignNone},
		}[a.Strategy]
		all := []string{AssignNearest, AssignPool, AssignOnlinePool, AssignNone}
		if s, ok := d.oneOf(n, path, "fallback", all); ok {
			if slices.Contains(options, s) {
				a.Fallback = canon(s)
			} else {
				d.errorf(n, path, "fallback %s does not apply to assign_guide: %s; use %s", s, a.Strategy, list(slices.DeleteFunc(slices.Clone(options), func(o string) bool { return o == AssignOnlinePool }), "or"))
			}
		}
	}
	if n, path, ok := sf.get("keep_current"); ok {
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.errorf(n, path, "keep_current must be true or false, got %s", nodeKind(n))
		}
		a.KeepCurrent = b
	}
	return a
}

var storeIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// has reports whether the step has field k with the scalar value v.
func (sf *stepFields) has(k, v string) bool {
	p, ok := sf.f[k]
	return ok && p.val.Kind == yaml.ScalarNode && (p.val.Value == v)
}

var couponRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func (sf *stepFields) send(val *yaml.Node) *Send {
	d := sf.d
	s := &Send{Channel: ChannelMember, Via: ViaBrand, Priority: PriorityNormal}
	channels := append([]string{ChannelMember}, d.opts.Channels...)
	if n, path, ok := sf.get("channel"); ok {
		if len(d.opts.Channels) > 0 {
			s.Channel, _ = d.oneOf(n, path, "channel", channels)
		} else if c, ok := d.str(n, path, "a channel"); ok {
			s.Channel = c
		}
	}
	if n, path, ok := sf.get("via"); ok {
		s.Via, _ = d.oneOf(n, path, "via", []string{ViaBrand, ViaGuide})
	}
	if n, path, ok := sf.get("priority"); ok {
		s.Priority, _ = d.oneOf(n, path, "priority", []string{PriorityNormal, PriorityHigh})
	}
	if n, path, ok := sf.get("when_capped"); ok {
		if w, ok := d.oneOf(n, path, "cap action", []string{string(CapDelay), string(CapSkip)}); ok {
			s.WhenCapped = CapAction(w)
		}
	}
	if n, path, ok := sf.get("coupon"); ok {
		if c, ok := d.str(n, path, "a coupon batch id"); ok {
			if !couponRE.MatchString(c) {
				d.errorf(n, path, "bad coupon batch %q: use letters, digits, _ and -", c)
			}
			s.Coupon = c
		}
	}
	path := join(sf.path, "send")
	id, ok := d.str(val, path, "a template id")
	if !ok {
		return s
	}
	s.Template = id
	if d.opts.Templates == nil {
		return s
	}
	t, ok := d.opts.Templates.Lookup(id)
	if !ok {
		if sug := didYouMean(id, d.opts.Templates.IDs()); sug != "" {
			d.errorf(val, path, "unknown template %q%s", id, sug)
		} else {
			d.errorf(val, path, "unknown template %q; the templates are %s", id, list(d.opts.Templates.IDs(), "and"))
		}
		return s
	}
	targets := []string{s.Channel}
	if s.Channel == ChannelMember {
		targets = d.opts.Channels
	}
	for _, c := range targets {
		if !t.CanRender(c) {
			d.errorf(val, path, "template %q has neither a %s variant nor a default one, so it cannot be sent on %s", id, c, c)
			continue
		}
		sends, ok := d.opts.MemberKinds[c]
		if !ok {
			continue
		}
		for _, k := range t.Kinds(c) {
			if !slices.Contains(sends, k) {
				d.errorf(val, path, "template %q renders a %s message on %s, which %s cannot send to a member; it sends %s", id, k, c, c, strings.Join(sends, ", "))
			}
		}
	}
	if t.Uses("Coupon") && s.Coupon == "" {
		d.errorf(val, path, "template %q shows a coupon (.Coupon) but this step issues none: add coupon: with the coupon batch", id)
	}
	return s
}

func (sf *stepFields) guideTask(val *yaml.Node) *GuideTask {
	d := sf.d
	g := &GuideTask{DueIn: Day}
	g.Title, g.TitleSource = sf.text(val, join(sf.path, "guide_task"), "a task title")
	if n, path, ok := sf.get("note"); ok {
		g.Note, _ = sf.text(n, path, "a note")
	}
	if n, path, ok := sf.get("due_in"); ok {
		if v, ok := d.duration(n, path); ok {
			g.DueIn = v
		}
	}
	return g
}

// text parses an inline template text, such as a guide task's title.
func (sf *stepFields) text(n *yaml.Node, path, what string) (*templates.Text, string) {
	d := sf.d
	s, ok := d.str(n, path, what)
	if !ok {
		return nil, ""
	}
	if strings.TrimSpace(s) == "" {
		d.errorf(n, path, "empty %s", what)
		return nil, s
	}
	t, err := templates.ParseText(path, s)
	if err != nil {
		var l templates.ErrorList
		if !errors.As(err, &l) {
			d.errorf(n, path, "%v", err)
			return nil, s
		}
		for _, e := range l {
			line, col := scalarPosition(n, d.lines, e.Line, e.Column)
			d.errorAt(line, col, path, "%s", e.Msg)
		}
		return nil, s
	}
	return t, s
}

func (sf *stepFields) wait(val *yaml.Node) *Wait {
	d := sf.d
	path := join(sf.path, "wait")
	w := &Wait{}
	if val.Kind != yaml.MappingNode {
		w.For, _ = d.duration(val, path)
		return w
	}
	f := d.fields(val, path, "a duration, or a mapping with for or until", []string{"for", "until"})
	p1, hasFor := f["for"]
	p2, hasUntil := f["until"]
	switch {
	case hasFor && hasUntil:
		d.errorf(p2.key, path+".until", "a wait is for a duration or until a time, not both")
	case hasFor:
		w.For, _ = d.duration(p1.val, path+".for")
	case hasUntil:
		w.Until = d.expr(p2.val, path+".until", resultTime)
	default:
		if f != nil {
			d.errorf(val, path, "missing for or until: wait: 3d, or wait: {until: order.purchased_at + days(30)}")
		}
	}
	return w
}

func (sf *stepFields) waitFor(val *yaml.Node) *WaitFor {
	d := sf.d
	w := &WaitFor{}
	w.Event, _ = d.event(val, join(sf.path, "wait_for"), allEvents)
	if n, path, ok := sf.get("filter"); ok {
		w.Filter = d.expr(n, path, resultBool)
	}
	if n, path, ok := sf.get("timeout"); ok {
		w.Timeout, _ = d.duration(n, path)
	} else {
		d.errorf(sf.n, sf.path, "missing timeout: how long to wait for %s, e.g. timeout: 7d", w.Event)
	}
	sf.target("on_event", &w.OnEvent)
	sf.target("on_timeout", &w.OnTimeout)
	return w
}

func (sf *stepFields) ifStep(val *yaml.Node) *If {
	st := &If{Cond: sf.d.expr(val, join(sf.path, "if"), resultBool)}
	then := sf.target("then", &st.Then)
	els := sf.target("else", &st.Else)
	if !then && !els {
		sf.d.errorf(sf.n, sf.path, "an if needs then or else: the step to go to when the condition holds, or when it does not (the other goes on to the next step)")
	}
	return st
}

func (sf *stepFields) switchStep(val *yaml.Node) *Switch {
	d := sf.d
	st := &Switch{Value: d.expr(val, join(sf.path, "switch"), resultValue)}
	var kind reflect.Kind
	if st.Value != nil {
		if t := st.Value.program.Node().Type(); t != nil {
			kind = t.Kind()
		}
	}
	if n, path, ok := sf.get("cases"); ok {
		pairs, ok := d.pairs(n, path, "a mapping of values to step ids, like gold: vip_offer")
		if ok && len(pairs) == 0 {
			d.errorf(n, path, "no cases: map values to step ids, like gold: vip_offer")
		}
		st.Cases = make([]Case, len(pairs))
		for i, p := range pairs {
			st.Cases[i].Label = p.key.Value
			d.checkCase(p.key, join(path, p.key.Value), kind)
			cp := join(path, p.key.Value)
			if s, ok := d.str(p.val, cp, "a step id, or end"); ok {
				st.Cases[i].To = s
				d.refs = append(d.refs, ref{node: p.val, path: cp, target: &st.Cases[i].To})
			} else {
				st.Cases[i].To = End
			}
		}
	} else {
		d.errorf(sf.n, sf.path, "missing cases: map values to step ids, like gold: vip_offer")
	}
	sf.target("default", &st.Default)
	return st
}

// checkCase reports a case that can never equal a switch value of the
// given kind.
func (d *decoder) checkCase(key *yaml.Node, path string, kind reflect.Kind) {
	v := key.Value
	switch kind {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			d.errorf(key, path, "case %q is not a whole number, but the switch value is one", v)
		}
	case reflect.Float32, reflect.Float64:
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			d.errorf(key, path, "case %q is not a number, but the switch value is one", v)
		}
	case reflect.Bool:
		if _, err := strconv.ParseBool(v); err != nil {
			d.errorf(key, path, "case %q is not true or false, but the switch value is", v)
		}
	}
}

func (sf *stepFields) awardPoints(val *yaml.Node) *AwardPoints {
	d := sf.d
	path := join(sf.path, "award_points")
	a := &AwardPoints{}
	if s, ok := d.str(val, path, "a number of points"); ok {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 1 || v > 1_000_000 {
			d.errorf(val, path, "points must be a whole number from 1 to 1000000, got %q", s)
		}
		a.Points = v
	}
	if n, path, ok := sf.get("reason"); ok {
		a.Reason, _ = d.str(n, path, "a reason")
	}
	return a
}

var secretNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

func (sf *stepFields) webhook(val *yaml.Node) *Webhook {
	d := sf.d
	path := join(sf.path, "webhook")
	h := &Webhook{Event: "workflow.step", Secret: "default", Timeout: 10 * time.Second}
	if s, ok := d.str(val, path, "an https URL"); ok {
		u, err := url.Parse(s)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			d.errorf(val, path, "bad webhook URL %q: write a full https:// URL", s)
		case u.Scheme == "http" && u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1":
			d.errorf(val, path, "webhook URL %q must use https: the request carries member data", s)
		case u.User != nil:
			d.errorf(val, path, "webhook URL must not carry a user or password: requests are signed with secret instead")
		}
		h.URL = s
	}
	if n, p, ok := sf.get("event"); ok {
		h.Event, _ = d.str(n, p, "an event type")
	}
	if n, p, ok := sf.get("secret"); ok {
		if s, ok := d.str(n, p, "the name of a signing secret"); ok {
			if !secretNameRE.MatchString(s) {
				d.errorf(n, p, "secret names a signing secret configured on the gateway (such as crm); never write the secret itself in a workflow")
			}
			h.Secret = s
		}
	}
	if n, p, ok := sf.get("timeout"); ok {
		if v, ok := d.duration(n, p); ok {
			if v > 30*time.Second {
				d.errorf(n, p, "webhook timeout must be at most 30s, got %s", formatDuration(v))
			}
			h.Timeout = v
		}
	}
	return h
}

// scalarPosition maps a 1-based line and column inside the value of the
// scalar n to a position in the file. It is exact for plain and quoted
// one-line values and for literal blocks (|); for other multi-line values
// it gives the value's start.
func scalarPosition(n *yaml.Node, lines []string, line, col int) (int, int) {
	switch n.Style {
	case yaml.LiteralStyle:
		indent := 0
		for i := n.Line; i < len(lines); i++ {
			if s := strings.TrimRight(lines[i], " \r"); s != "" {
				indent = len(s) - len(strings.TrimLeft(s, " "))
				break
			}
		}
		return n.Line + line, indent + col
	case yaml.FoldedStyle:
		return n.Line, n.Column
	}
	if line != 1 || strings.Contains(n.Value, "\n") || n.Line-1 >= len(lines) {
		return n.Line, n.Column
	}
	off := 0
	if n.Style == yaml.DoubleQuotedStyle || n.Style == yaml.SingleQuotedStyle {
		off = 1
	}
	return n.Line, n.Column + off + col - 1
}
