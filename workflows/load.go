package workflows

import (
	"fmt"
	"os"
	"regexp"

	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/templates/yamlcheck"
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
	// GroupKinds are the message kinds each channel can send to its
	// customer groups (its adapters.Spec GroupKinds), by channel name:
	// a send_groups step's template must render a kind they send on
	// each of Channels that has groups, and one of Channels must have
	// them. Nil, or empty Channels: not checked.
	GroupKinds map[string][]string
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
	d := &decoder{Checker: yamlcheck.Checker{File: filename, Noun: "workflow"}, opts: opts}
	if len(data) > MaxFileSize {
		d.ErrorAt(1, 1, "", "the file is %d bytes, more than the %d a workflow may have", len(data), MaxFileSize)
		return nil, d.Errs.Err()
	}
	root := d.Parse(data)
	if root == nil {
		if len(d.Errs) == 0 {
			d.ErrorAt(1, 1, "", "empty file: a workflow needs name, trigger, entry and steps")
		}
		return nil, d.Errs.Err()
	}
	w := d.workflow(root)
	if err := d.Errs.Err(); err != nil {
		return nil, err
	}
	w.File = filename
	w.Version = VersionOf(data)
	return w, nil
}

// decoder walks a workflow's YAML nodes, building the model and
// collecting every problem with its position.
type decoder struct {
	yamlcheck.Checker
	opts Options
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

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	idRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	tagRE  = regexp.MustCompile(`^[\p{L}\p{N}_.:-]{1,64}$`)
)

var topFields = []string{"name", "description", "trigger", "entry", "goal", "exit", "send_rules", "steps"}

func (d *decoder) workflow(root *yaml.Node) *Workflow {
	w := &Workflow{SendRules: defaultSendRules()}
	f := d.Fields(root, "", "a workflow: a mapping with name, trigger, entry, goal, send_rules and steps", topFields)
	if f == nil {
		return w
	}
	if p, ok := f["name"]; ok {
		w.Name, _ = d.matching(p.Val, "name", "name", nameRE, "lowercase letters, digits, - and _ (it appears in URLs)")
	} else {
		d.Errorf(root, "", "missing name: give the workflow a name such as new-member-welcome")
	}
	if p, ok := f["description"]; ok {
		w.Description, _ = d.Str(p.Val, "description", "a text")
	}
	if p, ok := f["trigger"]; ok {
		d.trigger(p.Val, &w.Trigger)
	} else {
		d.Errorf(root, "", "missing trigger: say what starts a run, e.g. trigger: {event: member.joined}")
	}
	if p, ok := f["entry"]; ok {
		d.entry(p.Val, &w.Entry)
	} else {
		d.Errorf(root, "", "missing entry: say at least which brand's members the workflow is for (entry: {brand: ...})")
	}
	if p, ok := f["entry"]; ok && len(w.Entry.CrossBrandFrom) > 0 && w.Trigger.Schedule == nil && w.Trigger.Event != "" {
		d.Errorf(p.Val, "entry.cross_brand_from", "a cross-brand offer goes to a segment of the other brands' members: it needs a schedule trigger, not an event")
	}
	noGoal := false
	if p, ok := f["goal"]; ok {
		w.Goals, noGoal = d.goals(p.Val)
	}
	if p, ok := f["exit"]; ok {
		w.Exits = d.exits(p.Val)
	}
	if p, ok := f["send_rules"]; ok {
		d.sendRules(p.Val, &w.SendRules)
	}
	if p, ok := f["steps"]; ok {
		w.Steps = d.steps(p.Val)
		w.byID = make(map[string]*Step, len(w.Steps))
		for _, s := range w.Steps {
			w.byID[s.ID] = s
		}
		d.graph(w)
	} else {
		d.Errorf(root, "", "missing steps: a workflow needs at least one step")
	}
	if _, ok := f["goal"]; !ok && !noGoal && w.Sends() {
		d.Errorf(root, "goal", "missing goal: a workflow that sends messages needs a goal, the event that counts a member as converted and stops the nudges (e.g. goal: purchase.completed); write goal: none if it has none")
	}
	return w
}
