package workflows

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

func (d *decoder) trigger(n *yaml.Node, t *Trigger) {
	known := []string{"event", "schedule", "time_zone", "segment", "filter"}
	if n.Kind == yaml.ScalarNode && slices.Contains(allEvents, n.Value) {
		d.Errorf(n, "trigger", "write the event under trigger: trigger: {event: %s}", n.Value)
		return
	}
	f := d.Fields(n, "trigger", "a mapping with event or schedule, and filter", known)
	if f == nil {
		return
	}
	ev, hasEvent := f["event"]
	sc, hasSchedule := f["schedule"]
	switch {
	case hasEvent && hasSchedule:
		d.Errorf(sc.Key, "trigger.schedule", "a trigger has an event or a schedule, not both")
	case !hasEvent && !hasSchedule:
		d.Errorf(n, "trigger", "missing event or schedule: e.g. event: member.joined, or schedule: every day at 10:00")
	}
	if hasEvent {
		t.Event, _ = d.event(ev.Val, "trigger.event", triggerEvents)
		for _, k := range []string{"time_zone", "segment"} {
			if p, ok := f[k]; ok {
				d.Errorf(p.Key, "trigger."+k, "%s is only for schedule triggers", k)
			}
		}
	}
	if hasSchedule && !hasEvent {
		loc, _ := loadZone(DefaultTimeZone)
		if p, ok := f["time_zone"]; ok {
			if l, _, ok := d.zone(p.Val, "trigger.time_zone"); ok {
				loc = l
			}
		}
		if s, ok := d.Str(sc.Val, "trigger.schedule", "a schedule such as \"every day at 10:00\""); ok {
			sched, err := parseSchedule(s, loc)
			if err != nil {
				d.Errorf(sc.Val, "trigger.schedule", "%v", err)
			}
			t.Schedule = sched
		}
		if p, ok := f["segment"]; ok {
			t.Segment = d.segment(p.Val)
		}
	}
	if p, ok := f["filter"]; ok {
		t.Filter = d.expr(p.Val, "trigger.filter", resultBool)
	}
}

func (d *decoder) segment(n *yaml.Node) *Segment {
	known := []string{"last_purchase_between", "joined_between", "levels", "tags", "without_tags"}
	f := d.Fields(n, "trigger.segment", "a mapping of segment rules", known)
	s := &Segment{}
	for _, k := range known {
		p, ok := f[k]
		if !ok {
			continue
		}
		path := "trigger.segment." + k
		switch k {
		case "last_purchase_between":
			s.LastPurchase = d.between(p.Val, path)
		case "joined_between":
			s.Joined = d.between(p.Val, path)
		case "levels":
			s.Levels = d.names(p.Val, path, "level", tagRE)
		case "tags":
			s.Tags = d.names(p.Val, path, "tag", tagRE)
		case "without_tags":
			s.WithoutTags = d.names(p.Val, path, "tag", tagRE)
		}
	}
	return s
}

// between reads [90d, 120d].
func (d *decoder) between(n *yaml.Node, path string) *Between {
	if n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
		d.Errorf(n, path, "expected two durations, the shortest and the longest time ago, like [90d, 120d]")
		return nil
	}
	lo, ok1 := d.duration(n.Content[0], path+"[0]")
	hi, ok2 := d.duration(n.Content[1], path+"[1]")
	if !ok1 || !ok2 {
		return nil
	}
	if lo > hi {
		d.Errorf(n, path, "the first duration (%s) must not be longer than the second (%s)", formatDuration(lo), formatDuration(hi))
		return nil
	}
	return &Between{Min: lo, Max: hi}
}

var reEntryAfterRE = regexp.MustCompile(`^after\s+(.+)$`)

func (d *decoder) entry(n *yaml.Node, e *Entry) {
	f := d.Fields(n, "entry", "a mapping with brand, re_entry and cross_brand_from", []string{"brand", "re_entry", "cross_brand_from"})
	if f == nil {
		return
	}
	if p, ok := f["cross_brand_from"]; ok {
		e.CrossBrandFrom = d.names(p.Val, "entry.cross_brand_from", "brand id", nameRE)
		nodes := []*yaml.Node{p.Val}
		if p.Val.Kind == yaml.SequenceNode {
			nodes = p.Val.Content
		}
		seen := map[string]bool{}
		for i, n := range nodes {
			path := "entry.cross_brand_from"
			if p.Val.Kind == yaml.SequenceNode {
				path = fmt.Sprintf("%s[%d]", path, i)
			}
			switch b := n.Value; {
			case n.Kind != yaml.ScalarNode:
			case seen[b]:
				d.Errorf(n, path, "brand %q is listed twice", b)
			case f["brand"].Val != nil && f["brand"].Val.Value == b:
				d.Errorf(n, path, "brand %q is the workflow's own brand: list the other brands whose guides may offer it", b)
			}
			seen[n.Value] = true
		}
	}
	if p, ok := f["brand"]; ok {
		e.Brand, _ = d.matching(p.Val, "entry.brand", "brand id", nameRE, "lowercase letters, digits, - and _")
	} else {
		d.Errorf(n, "entry", "missing brand: the brand whose members the workflow is for")
	}
	e.ReEntry = ReEntry{Policy: ReEntryNever}
	p, ok := f["re_entry"]
	if !ok {
		return
	}
	s, ok := d.Str(p.Val, "entry.re_entry", "never, always or after a cool-down such as after 30d")
	if !ok {
		return
	}
	switch {
	case s == string(ReEntryNever) || s == string(ReEntryAlways):
		e.ReEntry.Policy = ReEntryPolicy(s)
	case reEntryAfterRE.MatchString(s):
		v, err := ParseDuration(strings.TrimSpace(reEntryAfterRE.FindStringSubmatch(s)[1]))
		if err != nil {
			d.Errorf(p.Val, "entry.re_entry", "%v", err)
			return
		}
		e.ReEntry = ReEntry{Policy: ReEntryAfter, CoolDown: v}
	default:
		msg := fmt.Sprintf("unknown re-entry %q: use never, always or after a cool-down such as after 30d", s)
		if sug := yamlcheck.DidYouMean(s, []string{"never", "always"}); sug != "" {
			msg = fmt.Sprintf("unknown re-entry %q%s", s, sug)
		}
		d.Errorf(p.Val, "entry.re_entry", "%s", msg)
	}
}

// goals reads goal: none, an event, {event, filter}, or a list of these.
func (d *decoder) goals(n *yaml.Node) ([]Goal, bool) {
	if n.Kind == yaml.ScalarNode && n.Value == "none" {
		return nil, true
	}
	return d.eventConditions(n, goalList), false
}

// exits reads exit: an event, {event, filter}, or a list of these.
func (d *decoder) exits(n *yaml.Node) []Goal {
	return d.eventConditions(n, exitList)
}

// conditionList is how a list of event conditions (goal:, exit:) is
// named in its diagnostics.
type conditionList struct {
	key, what, empty, missing, expected string
	// none is whether "none" may stand alone (and so not in a list).
	none bool
}

var (
	goalList = conditionList{key: "goal", what: "a goal", none: true,
		empty:    "empty goal list: name at least one event, or write goal: none",
		missing:  "missing event: the event that reaches the goal",
		expected: "expected an event, a mapping with event and filter, or none; got %s"}
	exitList = conditionList{key: "exit", what: "an exit",
		empty:    "empty exit list: name at least one event, or leave exit out",
		missing:  "missing event: the event that ends the run",
		expected: "expected an event, or a mapping with event and filter; got %s"}
)

// eventConditions reads an event, {event, filter}, or a list of these.
func (d *decoder) eventConditions(n *yaml.Node, l conditionList) []Goal {
	nodes := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		nodes = n.Content
		if len(nodes) == 0 {
			d.Errorf(n, l.key, "%s", l.empty)
		}
	}
	var out []Goal
	for i, c := range nodes {
		path := l.key
		if n.Kind == yaml.SequenceNode {
			path = fmt.Sprintf("%s[%d]", l.key, i)
		}
		var g Goal
		switch c.Kind {
		case yaml.ScalarNode:
			if l.none && c.Value == "none" {
				d.Errorf(c, path, "none cannot be in a list of goals: write goal: none alone")
				continue
			}
			g.Event, _ = d.event(c, path, allEvents)
		case yaml.MappingNode:
			f := d.Fields(c, path, l.what, []string{"event", "filter"})
			if p, ok := f["event"]; ok {
				g.Event, _ = d.event(p.Val, path+".event", allEvents)
			} else {
				d.Errorf(c, path, "%s", l.missing)
			}
			if p, ok := f["filter"]; ok {
				g.Filter = d.expr(p.Val, path+".filter", resultBool)
			}
		default:
			d.Errorf(c, path, l.expected, yamlcheck.Describe(c))
			continue
		}
		out = append(out, g)
	}
	return out
}
