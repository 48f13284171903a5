package bots

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Intents a member can have.
const (
	IntentNearestStore = "nearest_store"
	IntentMyGuide      = "my_guide"
	IntentMyPoints     = "my_points"
	IntentUnsubscribe  = "unsubscribe"
	IntentResubscribe  = "resubscribe"
	// IntentHandoff hands the conversation to the member's guide.
	IntentHandoff = "handoff"
	IntentHelp    = "help"
)

// Intents a guide can have.
const (
	IntentMyMembers = "my_members"
	IntentMyTasks   = "my_tasks"
	// IntentDone completes a task; its pattern captures the task number.
	IntentDone = "done"
	// IntentLookup finds one of the guide's members; its pattern captures
	// the phone tail or name.
	IntentLookup  = "lookup"
	IntentMyStats = "my_stats"
	// IntentHandoffEnd ends a handoff; its pattern may capture its number.
	IntentHandoffEnd = "handoff_end"
)

var knownIntents = map[string][]string{
	"member": {IntentNearestStore, IntentMyGuide, IntentMyPoints, IntentMyOrders, IntentUnsubscribe, IntentResubscribe,
		IntentCrossBrandOn, IntentCrossBrandOff, IntentHandoff, IntentHelp, IntentMemberCode},
	"guide": {IntentMyMembers, IntentMyTasks, IntentDone, IntentLookup, IntentMyStats, IntentLeaderboard, IntentShareLink, IntentHandoffEnd, IntentHelp},
}

// IntentRule recognises one intent.
type IntentRule struct {
	Keywords []string `yaml:"keywords"`
	Patterns []string `yaml:"patterns"`
}

// intentFile is one file of configs/bots.
type intentFile struct {
	Member map[string]IntentRule `yaml:"member"`
	Guide  map[string]IntentRule `yaml:"guide"`
}

// Matcher finds the intent of a message.
type Matcher struct {
	keywords []keyword // longest first
	patterns []pattern
}

type keyword struct {
	text, intent string
	latin        bool
}

type pattern struct {
	re     *regexp.Regexp
	intent string
}

// Match returns the intent of text and the first submatch of a pattern,
// or "" when nothing matches.
func (m *Matcher) Match(text string) (intent, arg string) {
	for _, p := range m.patterns {
		if sub := p.re.FindStringSubmatch(text); sub != nil {
			if len(sub) > 1 {
				arg = sub[1]
			}
			return p.intent, arg
		}
	}
	lower := strings.ToLower(text)
	// Latin keywords match whole words ("hi" is not in "this").
	words := " " + strings.Join(strings.FieldsFunc(lower, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 0x7f)
	}), " ") + " "
	for _, k := range m.keywords {
		if k.latin {
			if strings.Contains(words, " "+k.text+" ") {
				return k.intent, ""
			}
		} else if strings.Contains(lower, k.text) {
			return k.intent, ""
		}
	}
	return "", ""
}

// MatchCommand is Match for a guide in a conversation with a member:
// only a pattern, or a keyword that is the whole message (trailing
// punctuation aside), is a command; anything else is text for the member.
func (m *Matcher) MatchCommand(text string) (intent, arg string) {
	for _, p := range m.patterns {
		if sub := p.re.FindStringSubmatch(text); sub != nil {
			if len(sub) > 1 {
				arg = sub[1]
			}
			return p.intent, arg
		}
	}
	whole := strings.Join(strings.Fields(strings.ToLower(strings.TrimRight(strings.TrimSpace(text), "。.!！?？~～ "))), " ")
	for _, k := range m.keywords {
		if k.text == whole {
			return k.intent, ""
		}
	}
	return "", ""
}

// Intents holds the matchers of the default intents and of each brand.
type Intents struct {
	member, guide map[string]*Matcher // brand ("" default) → matcher
}

// Member returns the member intent matcher of a brand.
func (in *Intents) Member(brand string) *Matcher { return pick(in.member, brand) }

// Guide returns the guide intent matcher of a brand.
func (in *Intents) Guide(brand string) *Matcher { return pick(in.guide, brand) }

func pick(m map[string]*Matcher, brand string) *Matcher {
	if x, ok := m[brand]; ok {
		return x
	}
	return m[""]
}

// LoadIntents reads default.yaml and <brand>.yaml files from fsys; a
// brand's file replaces the intents it names. Unknown keys, unknown
// intents and bad patterns are errors naming the file.
func LoadIntents(fsys fs.FS) (*Intents, error) {
	files, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("reading bot intents: %w", err)
	}
	parsed := map[string]*intentFile{}
	var errs []error
	for _, f := range files {
		if f.IsDir() || (path.Ext(f.Name()) != ".yaml" && path.Ext(f.Name()) != ".yml") {
			continue
		}
		data, err := fs.ReadFile(fsys, f.Name())
		if err != nil {
			return nil, err
		}
		var file intentFile
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&file); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.Name(), err))
			continue
		}
		for party, rules := range map[string]map[string]IntentRule{"member": file.Member, "guide": file.Guide} {
			for name, r := range rules {
				if !slices.Contains(knownIntents[party], name) {
					errs = append(errs, fmt.Errorf("%s: %s.%s: unknown intent (known: %s)", f.Name(), party, name, strings.Join(knownIntents[party], ", ")))
				}
				for _, p := range r.Patterns {
					if _, err := regexp.Compile(p); err != nil {
						errs = append(errs, fmt.Errorf("%s: %s.%s: pattern %q: %v", f.Name(), party, name, p, err))
					}
				}
			}
		}
		parsed[strings.TrimSuffix(strings.TrimSuffix(f.Name(), ".yaml"), ".yml")] = &file
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	def, ok := parsed["default"]
	if !ok {
		return nil, errors.New("bot intents: default.yaml is missing")
	}
	in := &Intents{member: map[string]*Matcher{}, guide: map[string]*Matcher{}}
	for name, f := range parsed {
		brand := name
		if name == "default" {
			brand = ""
		}
		in.member[brand] = newMatcher(merge(def.Member, f.Member))
		in.guide[brand] = newMatcher(merge(def.Guide, f.Guide))
	}
	return in, nil
}

func merge(base, over map[string]IntentRule) map[string]IntentRule {
	out := make(map[string]IntentRule, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

func newMatcher(rules map[string]IntentRule) *Matcher {
	m := &Matcher{}
	names := make([]string, 0, len(rules))
	for n := range rules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, k := range rules[n].Keywords {
			if k = strings.ToLower(strings.TrimSpace(k)); k != "" {
				latin := true
				for _, r := range k {
					if r > 0x7f {
						latin = false
					}
				}
				m.keywords = append(m.keywords, keyword{text: strings.Join(strings.Fields(k), " "), intent: n, latin: latin})
			}
		}
		for _, p := range rules[n].Patterns {
			m.patterns = append(m.patterns, pattern{re: regexp.MustCompile(p), intent: n})
		}
	}
	sort.SliceStable(m.keywords, func(i, j int) bool { return len(m.keywords[i].text) > len(m.keywords[j].text) })
	return m
}
