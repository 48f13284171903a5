package yamlcheck

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"everything", Error{File: "recall.yaml", Line: 10, Column: 14, Path: "steps[0].channel", Msg: "unknown channel"}, "recall.yaml:10:14: steps[0].channel: unknown channel"},
		{"subject", Error{File: "welcome.yaml", Line: 3, Column: 25, Subject: "template welcome", Path: "zh.default", Msg: "bad"}, "welcome.yaml:3:25: template welcome: zh.default: bad"},
		{"no path", Error{File: "a.yaml", Line: 1, Column: 1, Msg: "empty file"}, "a.yaml:1:1: empty file"},
		{"no file: a text on its own", Error{Line: 2, Column: 11, Path: ".Member.Nmae", Msg: "no field"}, "2:11: .Member.Nmae: no field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorListSortsByFileLineColumn(t *testing.T) {
	at := func(file string, line, col int, msg string) *Error {
		return &Error{File: file, Line: line, Column: col, Msg: msg}
	}
	l := ErrorList{
		at("b.yaml", 1, 1, "b first"),
		at("a.yaml", 9, 5, "a line 9"),
		at("a.yaml", 2, 7, "a 2:7 reported first"),
		at("a.yaml", 2, 3, "a 2:3"),
		at("a.yaml", 2, 7, "a 2:7 reported second"),
	}
	err := l.Err()
	want := "a.yaml:2:3: a 2:3\n" +
		"a.yaml:2:7: a 2:7 reported first\n" +
		"a.yaml:2:7: a 2:7 reported second\n" +
		"a.yaml:9:5: a line 9\n" +
		"b.yaml:1:1: b first"
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
	var one *Error
	if !errors.As(err, &one) || one.Msg != "a 2:3" {
		t.Errorf("errors.As found %v, want the first error", one)
	}
	var list ErrorList
	if !errors.As(fmt.Errorf("loading: %w", err), &list) || len(list) != 5 {
		t.Errorf("errors.As through a wrap found %d errors, want 5", len(list))
	}
	if err := (ErrorList{}).Err(); err != nil {
		t.Errorf("an empty list is an error: %v", err)
	}
}

func TestSuggest(t *testing.T) {
	fields := []string{"channel", "send", "next", "id"}
	tests := []struct {
		got   string
		names []string
		want  string
	}{
		{"chanel", fields, "channel"},  // a letter left out
		{"chnanel", fields, "channel"}, // two letters swapped: one edit
		{"Channel", fields, "channel"}, // case only
		{"sned", fields, "send"},       // swap in a short word
		{"nxet", fields, "next"},       // swap
		{"channel", fields, ""},        // the name itself
		{"destination", fields, ""},    // nothing close
		{"ix", fields, "id"},           // one edit is always allowed
		{"xyz", fields, ""},            // three edits from next: too far for three letters
		{"actioncard", []string{"action_card", "text"}, "action_card"},
		{"Asia/Shangai", []string{"Asia/Shanghai", "Asia/Tokyo"}, "Asia/Shanghai"},
		{"门店", []string{"门店编号", "门"}, "门"}, // runes, not bytes
		{"anything", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.got, func(t *testing.T) {
			if got := Suggest(tt.got, tt.names); got != tt.want {
				t.Errorf("Suggest(%q) = %q, want %q", tt.got, got, tt.want)
			}
		})
	}
	if got, want := DidYouMean("chanel", fields), ` (did you mean "channel"?)`; got != want {
		t.Errorf("DidYouMean = %q, want %q", got, want)
	}
	if got := DidYouMean("destination", fields); got != "" {
		t.Errorf("DidYouMean with nothing close = %q, want nothing", got)
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"ab", "ba", 1},
		{"chanel", "channel", 1},
		{"门店", "门市", 1},
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestEnumerate(t *testing.T) {
	tests := []struct {
		names []string
		last  string
		want  string
	}{
		{nil, "and", ""},
		{[]string{"a"}, "and", "a"},
		{[]string{"a", "b"}, "or", "a or b"},
		{[]string{"a", "b", "c"}, "and", "a, b and c"},
		{QuoteAll([]string{"delay", "skip"}), "or", `"delay" or "skip"`},
	}
	for _, tt := range tests {
		if got := Enumerate(tt.names, tt.last); got != tt.want {
			t.Errorf("Enumerate(%q, %q) = %q, want %q", tt.names, tt.last, got, tt.want)
		}
	}
}

// node parses a YAML value and returns its node.
func node(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		src  string
		want string
	}{
		{"a: 1", "a mapping (key: value lines)"},
		{"{a: 1}", "a mapping (key: value lines)"},
		{"- a", "a list"},
		{"[]", "a list"},
		{"~", "nothing"},
		{"null", "nothing"},
		{"hello", `"hello"`},
		{"3", `"3"`},
		{`"say \"hi\""`, `"say \"hi\""`},
	}
	for _, tt := range tests {
		if got := Describe(node(t, tt.src)); got != tt.want {
			t.Errorf("Describe(%s) = %s, want %s", tt.src, got, tt.want)
		}
	}
	if got := Describe(&yaml.Node{Kind: yaml.AliasNode}); got != "an alias" {
		t.Errorf("Describe(alias) = %s", got)
	}
}

// messages returns the errors of c as formatted lines.
func messages(c *Checker) []string {
	c.Errs.Sort()
	var out []string
	for _, e := range c.Errs {
		out = append(out, e.Error())
	}
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		wantRoot bool
		want     []string
	}{
		{"a mapping", "a: 1\n", true, nil},
		{"byte order mark", "\xef\xbb\xbfa: 1\n", true, nil},
		{"empty: the caller words it", "", false, nil},
		{"comment only", "# nothing\n", false, nil},
		{"bad YAML at its line", "a: 1\nb: c: d\n", false, []string{"f.yaml:2:1: bad YAML: mapping values are not allowed in this context"}},
		{"unclosed quote", "a: \"x\n", false, []string{"f.yaml:2:1: bad YAML: found unexpected end of stream"}},
		{"tab indentation", "a:\n\tb: 1\n", false, []string{"f.yaml:2:1: bad YAML: found character that cannot start any token"}},
		{"second document", "a: 1\n---\nb: 2\n", false, []string{"f.yaml:2:1: bad YAML: a file holds one workflow: remove the second document (---)"}},
		{"every alias", "a: &x 1\nb: *x\nc: [*x]\n", false, []string{
			"f.yaml:2:4: anchors and aliases (*name) are not supported in workflows: write the value out",
			"f.yaml:3:5: anchors and aliases (*name) are not supported in workflows: write the value out",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Checker{File: "f.yaml", Noun: "workflow"}
			root := c.Parse([]byte(tt.src))
			if (root != nil) != tt.wantRoot {
				t.Errorf("root = %v, want one: %v", root, tt.wantRoot)
			}
			if diff := cmp.Diff(tt.want, messages(c)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMapping(t *testing.T) {
	known := []string{"send", "channel", "next"}
	tests := []struct {
		name  string
		src   string
		known []string
		keys  []string
		want  []string
	}{
		{"known fields in order", "send: a\nnext: b\n", known, []string{"send", "next"}, nil},
		{"unknown field with a suggestion", "send: a\nchanel: wecom\n", known, []string{"send"}, []string{
			`f.yaml:2:1: step.chanel: unknown field "chanel" (did you mean "channel"?)`,
		}},
		{"unknown field with nothing close", "send: a\ndestination: x\n", known, []string{"send"}, []string{
			`f.yaml:2:1: step.destination: unknown field "destination"; the fields here are send, channel and next`,
		}},
		{"any key when known is nil", "zh: a\nen: b\n", nil, []string{"zh", "en"}, nil},
		{"a key given twice", "send: a\nsend: b\n", known, []string{"send"}, []string{
			"f.yaml:2:1: step.send: send is given twice",
		}},
		{"a key that is not a name", "? [a, b]\n: 1\nsend: a\n", known, []string{"send"}, []string{
			`f.yaml:1:3: step: a key must be a plain name, got a list`,
		}},
		{"not a mapping", "- send: a\n", known, nil, []string{
			"f.yaml:1:1: step: expected a step: a mapping with send, channel and next, got a list",
		}},
		{"a text, not a mapping", "welcome\n", known, nil, []string{
			`f.yaml:1:1: step: expected a step: a mapping with send, channel and next, got "welcome"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Checker{File: "f.yaml", Noun: "workflow"}
			var keys []string
			for _, p := range c.Mapping(node(t, tt.src), "step", "a step: a mapping with send, channel and next", tt.known) {
				keys = append(keys, p.Key.Value)
			}
			if diff := cmp.Diff(tt.keys, keys); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, messages(c)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			// Fields reports the same and returns the same keys.
			c2 := &Checker{File: "f.yaml", Noun: "workflow"}
			f := c2.Fields(node(t, tt.src), "step", "a step: a mapping with send, channel and next", tt.known)
			if len(f) != len(keys) {
				t.Errorf("Fields has %d keys, Mapping %d", len(f), len(keys))
			}
			if diff := cmp.Diff(tt.want, messages(c2)); diff != "" {
				t.Errorf("Fields errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnknownFieldOfAnOwner(t *testing.T) {
	c := &Checker{File: "f.yaml"}
	key := node(t, "destination")
	c.UnknownField(key, "steps[0].destination", []string{"send", "channel"}, "a send step")
	want := []string{`f.yaml:1:1: steps[0].destination: unknown field "destination"; a send step has send and channel`}
	if diff := cmp.Diff(want, messages(c)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestStrAndOneOf(t *testing.T) {
	options := []string{"delay", "skip"}
	tests := []struct {
		src  string
		want string
		errs []string
	}{
		{"skip", "skip", nil},
		{"skp", "", []string{`f.yaml:1:1: when_capped: unknown cap action "skp" (did you mean "skip"?)`}},
		{"drop", "", []string{`f.yaml:1:1: when_capped: unknown cap action "drop": use "delay" or "skip"`}},
		{"~", "", []string{`f.yaml:1:1: when_capped: expected cap action, got nothing`}},
		{"[skip]", "", []string{`f.yaml:1:1: when_capped: expected cap action, got a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			c := &Checker{File: "f.yaml"}
			got, ok := c.OneOf(node(t, tt.src), "when_capped", "cap action", options)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("OneOf = %q, %v; want %q", got, ok, tt.want)
			}
			if diff := cmp.Diff(tt.errs, messages(c)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestErrorsIn maps the positions of errors found inside a value (an
// expression, a template text) to the file, for each style of scalar.
func TestErrorsIn(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		line, col int // inside the value
		want      string
	}{
		{"plain", "title: Hello {{.X}}\n", 1, 7, "f.yaml:1:14: title: no field X"},
		{"double quoted", "title: \"Hello {{.X}}\"\n", 1, 7, "f.yaml:1:15: title: no field X"},
		{"single quoted", "title: 'Hello {{.X}}'\n", 1, 7, "f.yaml:1:15: title: no field X"},
		{"literal block, second line", "title: |\n    Hello\n    there {{.X}}\n", 2, 7, "f.yaml:3:11: title: no field X"},
		{"literal block after a blank line", "title: |\n\n  Hello {{.X}}\n", 2, 7, "f.yaml:3:9: title: no field X"},
		{"folded block: the value's start", "title: >\n  Hello\n  {{.X}}\n", 2, 1, "f.yaml:1:8: title: no field X"},
		{"quoted over lines: the value's start", "title: \"Hello\n  {{.X}}\"\n", 2, 3, "f.yaml:1:8: title: no field X"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Checker{File: "f.yaml"}
			root := c.Parse([]byte(tt.src))
			if root == nil {
				t.Fatalf("parse: %v", c.Errs)
			}
			inside := ErrorList{{Line: tt.line, Column: tt.col, Msg: "no field X"}}
			c.ErrorsIn(root.Content[1], "title", fmt.Errorf("parsing: %w", inside))
			if diff := cmp.Diff([]string{tt.want}, messages(c)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	c := &Checker{File: "f.yaml"}
	c.ErrorsIn(node(t, "x"), "title", errors.New("some other failure"))
	if diff := cmp.Diff([]string{"f.yaml:1:1: title: some other failure"}, messages(c)); diff != "" {
		t.Errorf("a plain error (-want +got):\n%s", diff)
	}
}

func TestSubjectOnEveryError(t *testing.T) {
	c := &Checker{File: "welcome.yaml", Noun: "template", Subject: "template welcome"}
	c.ErrorAt(0, 0, "", "empty file")
	want := []string{"welcome.yaml:1:1: template welcome: empty file"}
	if diff := cmp.Diff(want, messages(c)); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestDescribeType(t *testing.T) {
	type order struct{}
	named := func(t reflect.Type) (string, bool) {
		if t == reflect.TypeFor[order]() {
			return "an order", true
		}
		return "", false
	}
	for _, tt := range []struct {
		t    reflect.Type
		want string
	}{
		{nil, "a value"},
		{reflect.TypeFor[string](), "text"},
		{reflect.TypeFor[int64](), "a number"},
		{reflect.TypeFor[float64](), "a number"},
		{reflect.TypeFor[bool](), "true or false"},
		{reflect.TypeFor[time.Time](), "a time"},
		{reflect.TypeFor[*time.Time](), "a time"},
		{reflect.TypeFor[time.Duration](), "a duration"},
		{reflect.TypeFor[[]string](), "a list of texts"},
		{reflect.TypeFor[[]int](), "a list"},
		{reflect.TypeFor[map[string]int](), "a map"},
		{reflect.TypeFor[any](), "a value"},
		{reflect.TypeFor[order](), "an order"},
		{reflect.TypeFor[*order](), "an order"},
		{reflect.TypeFor[struct{ A int }](), "struct { A int }"},
	} {
		if got := DescribeType(tt.t, named); got != tt.want {
			t.Errorf("DescribeType(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}
