package workflows

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

// kindFields are the fields each step kind has besides id and its kind.
var kindFields = map[Kind][]string{
	KindAssignGuide: {"store_id", "max_distance_km", "fallback", "keep_current", "next"},
	KindSend:        {"channel", "via", "coupon", "priority", "when_capped", "valid_until", "next"},
	KindGuideTask:   {"note", "due_in", "next"},
	KindWait:        {"next"},
	KindWaitFor:     {"filter", "timeout", "on_event", "on_timeout"},
	KindIf:          {"then", "else"},
	KindSwitch:      {"cases", "default"},
	KindTag:         {"next"},
	KindUntag:       {"next"},
	KindAwardPoints: {"reason", "next"},
	KindWebhook:     {"event", "secret", "timeout", "next"},
	KindSendGroups:  {"to", "next"},
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
		d.Errorf(n, "steps", "expected a list of steps (lines starting with -), got %s", yamlcheck.Describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		d.Errorf(n, "steps", "no steps: a workflow needs at least one")
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
			d.Errorf(n.Content[j], fmt.Sprintf("steps[%d].id", j), "id %q is also the id steps[%d] gets from its position: choose another", s.ID, i)
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
		d.Errorf(r.node, r.path, "unknown step %q%s", *r.target, yamlcheck.DidYouMean(*r.target, append(ids, End)))
	}
	return steps
}

// step decodes one step. A step that cannot be decoded still gets an id
// (kind empty), so the steps after it keep theirs.
func (d *decoder) step(i int, n *yaml.Node, explicit map[string]int) *Step {
	path := fmt.Sprintf("steps[%d]", i)
	s := &Step{ID: fmt.Sprintf("step_%d", i), Pos: Pos{n.Line, n.Column}}
	pairs, ok := d.Pairs(n, path, "a step: a mapping with id and one of "+yamlcheck.Enumerate(kindNames(), "or"))
	if !ok {
		return s
	}
	f := make(map[string]yamlcheck.Pair, len(pairs))
	var kinds []yamlcheck.Pair
	for _, p := range pairs {
		f[p.Key.Value] = p
		if slices.Contains(Kinds, Kind(p.Key.Value)) {
			kinds = append(kinds, p)
		}
	}
	if p, ok := f["id"]; ok {
		if id, ok := d.Str(p.Val, path+".id", "a step id"); ok {
			switch {
			case id == End:
				d.Errorf(p.Val, path+".id", "end is reserved: next: end ends the run; choose another id")
			case !idRE.MatchString(id):
				d.Errorf(p.Val, path+".id", "bad step id %q: use lowercase letters, digits, _ and -, starting with a letter", id)
			default:
				if j, dup := explicit[id]; dup {
					d.Errorf(p.Val, path+".id", "steps[%d] already has id %q", j, id)
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
			k := p.Key.Value
			if k != "id" && k != "next" && !isField(k) {
				d.Errorf(p.Key, yamlcheck.JoinPath(path, k), "unknown step kind %q%s", k, yamlcheck.DidYouMean(k, kindNames()))
				return s
			}
		}
		d.Errorf(n, path, "missing step kind: a step needs one of %s", yamlcheck.Enumerate(kindNames(), "or"))
		return s
	case 1:
	default:
		d.Errorf(kinds[1].Key, yamlcheck.JoinPath(path, kinds[1].Key.Value), "a step does one thing, but this one is both %s and %s: split it into two steps", kinds[0].Key.Value, kinds[1].Key.Value)
		return s
	}
	s.Kind = Kind(kinds[0].Key.Value)
	allowed := append([]string{"id", string(s.Kind)}, kindFields[s.Kind]...)
	for _, p := range pairs {
		k := p.Key.Value
		if slices.Contains(allowed, k) {
			continue
		}
		delete(f, k)
		if k == "next" {
			d.Errorf(p.Key, yamlcheck.JoinPath(path, k), "%s step does not take next: %s", article(s.Kind), branchesOf[s.Kind])
			continue
		}
		if owners := fieldOwners(k); len(owners) > 0 {
			d.Errorf(p.Key, yamlcheck.JoinPath(path, k), "%s step has no %s (%s steps do)", article(s.Kind), k, yamlcheck.Enumerate(owners, "and"))
			continue
		}
		d.UnknownField(p.Key, yamlcheck.JoinPath(path, k), allowed, article(s.Kind)+" step")
	}
	sf := stepFields{d: d, i: i, path: path, f: f, n: n}
	val := kinds[0].Val
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
		s.Tag = &Tag{Tags: d.names(val, yamlcheck.JoinPath(path, string(s.Kind)), "tag", tagRE)}
	case KindAwardPoints:
		s.AwardPoints = sf.awardPoints(val)
	case KindWebhook:
		s.Webhook = sf.webhook(val)
	case KindSendGroups:
		s.SendGroups = sf.sendGroups(val)
	case KindEnd:
		s.End = &EndStep{}
		if !yamlcheck.IsNull(val) {
			s.End.Reason, _ = d.Str(val, yamlcheck.JoinPath(path, "end"), "a reason, or nothing")
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
	f    map[string]yamlcheck.Pair
	n    *yaml.Node
}

func (sf *stepFields) get(k string) (*yaml.Node, string, bool) {
	p, ok := sf.f[k]
	if !ok {
		return nil, "", false
	}
	return p.Val, yamlcheck.JoinPath(sf.path, k), true
}

// target reads a transition field; left out, it goes to the next step.
func (sf *stepFields) target(k string, to *string) bool {
	n, path, ok := sf.get(k)
	if !ok {
		sf.d.falls = append(sf.d.falls, fall{step: sf.i, target: to})
		return false
	}
	s, ok := sf.d.Str(n, path, "a step id, or end")
	if !ok {
		*to = End
		return true
	}
	*to = s
	sf.d.refs = append(sf.d.refs, ref{node: n, path: path, target: to})
	return true
}
