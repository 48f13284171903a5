package workflows

import (
	"fmt"
	"os"
	"regexp"
	"strings"

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
	// Channels are the channel names a send step may name besides
	// "member". Default: wecom and dingtalk.
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
	if len(opts.Channels) == 0 {
		opts.Channels = []string{templates.ChannelWeCom, templates.ChannelDingTalk}
	}
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
