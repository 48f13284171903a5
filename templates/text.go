package templates

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"

	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

// Text is one template text checked against Data: a field of a message
// template (a news title, a markdown body) or a text a workflow writes
// inline, such as a guide task's title. It is safe for concurrent use.
type Text struct {
	tmpl *template.Template
	uses map[string]bool
}

// ParseText parses and checks text, a Go text/template executed with
// Data. Every problem is reported, as an ErrorList whose Line and Column
// count inside text: a syntax error, an unknown function, a field Data
// does not have ({{.Member.Nmae}}, {{.Guide.Phone}}, also inside range
// and with, where dot changes), a function given the wrong number or
// kinds of arguments, and a raw time, struct or list that would print as
// Go debug output.
func ParseText(name, text string) (*Text, error) {
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, ErrorList{parseError(text, err)}
	}
	var errs ErrorList
	if len(t.Templates()) > 1 {
		pos := max(0, strings.Index(text, "define"))
		line, col := textPosition(text, pos)
		errs = append(errs, &Error{Line: line, Column: col, Msg: "{{define}} is not supported in message templates: write the text out"})
	}
	c := check(t, text)
	for _, e := range c.errs {
		line, col := textPosition(text, e.pos)
		errs = append(errs, &Error{Line: line, Column: col, Msg: e.msg})
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &Text{tmpl: t, uses: c.uses}, nil
}

// Execute renders the text with data, whose times it shows in
// data.TimeZone.
func (t *Text) Execute(data *Data) (string, error) {
	if data == nil {
		data = &Data{}
	}
	d, err := data.localize()
	if err != nil {
		return "", err
	}
	return t.execute(d)
}

// MaxTextBytes bounds what one text renders to: far above any channel's
// message limits, it stops a runaway range from filling memory.
const MaxTextBytes = 64 << 10

var errTooLong = fmt.Errorf("rendered text is longer than %d bytes", MaxTextBytes)

func (t *Text) execute(d *Data) (string, error) {
	w := &limitedBuilder{}
	if err := t.tmpl.Execute(w, d); err != nil {
		if errors.Is(err, errTooLong) {
			return "", errTooLong
		}
		return "", err
	}
	return strings.TrimSpace(w.String()), nil
}

// limitedBuilder is a strings.Builder that refuses to grow past
// MaxTextBytes.
type limitedBuilder struct {
	strings.Builder
}

func (b *limitedBuilder) Write(p []byte) (int, error) {
	if b.Len()+len(p) > MaxTextBytes {
		return 0, errTooLong
	}
	return b.Builder.Write(p)
}

// Uses reports whether the text reads the given field of Data, such as
// "Coupon" or "Order", so a workflow can check that a step provides it.
func (t *Text) Uses(field string) bool { return t.uses[field] }

// static reports whether the text has no actions: it renders as written.
func (t *Text) static() (string, bool) {
	root := t.tmpl.Tree.Root
	if len(root.Nodes) == 0 {
		return "", true
	}
	if n, ok := root.Nodes[0].(*parse.TextNode); ok && len(root.Nodes) == 1 {
		return strings.TrimSpace(string(n.Text)), true
	}
	return "", false
}

var parseErrorRE = regexp.MustCompile(`^template: [^:]*:(\d+): (.*)$`)
var undefinedFuncRE = regexp.MustCompile(`^function "([^"]*)" not defined$`)

// parseError turns a text/template parse error into an Error at its line.
func parseError(text string, err error) *Error {
	msg := err.Error()
	line := 1
	if m := parseErrorRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	switch msg {
	case "bad character U+007D '}'":
		msg = "unexpected } : close an action with }}"
	case "unclosed action":
		msg = "unclosed action: close it with }}"
	}
	col := 1
	if m := undefinedFuncRE.FindStringSubmatch(msg); m != nil {
		names := append(sortedKeys(funcs), builtins...)
		msg = fmt.Sprintf("unknown function %s", m[1])
		if s := yamlcheck.DidYouMean(m[1], names); s != "" {
			msg += s
		} else {
			msg += "; functions are " + strings.Join(sortedKeys(funcs), ", ") + " and text/template's builtins"
		}
		if i := lineStart(text, line); i >= 0 {
			if j := strings.Index(text[i:], m[1]); j >= 0 {
				_, col = textPosition(text, i+j)
			}
		}
	}
	return &Error{Line: line, Column: col, Msg: msg}
}

func lineStart(text string, line int) int {
	i := 0
	for l := 1; l < line; l++ {
		j := strings.IndexByte(text[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
	}
	return i
}

// textPosition converts a byte offset of text into a 1-based line and
// column, the column counting characters.
func textPosition(text string, off int) (line, col int) {
	off = min(max(off, 0), len(text))
	before := text[:off]
	line = 1 + strings.Count(before, "\n")
	if i := strings.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	return line, 1 + utf8.RuneCountInString(before)
}
