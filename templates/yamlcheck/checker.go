package yamlcheck

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Checker parses one file and collects its problems with their
// positions. A decoder embeds it and walks the nodes Parse returns,
// reporting through it; Errs.Err() is the result.
type Checker struct {
	// File names the file in errors.
	File string
	// Noun is what a file holds, for messages: "workflow", "template".
	Noun string
	// Subject is set on every error reported: "template welcome".
	Subject string
	// Errs are the problems found so far.
	Errs ErrorList
	// lines are the file's lines, for positions inside block values.
	lines []string
}

// Errorf reports a problem at the node n.
func (c *Checker) Errorf(n *yaml.Node, path, format string, args ...any) {
	c.ErrorAt(n.Line, n.Column, path, format, args...)
}

// ErrorAt reports a problem at a line and column of the file.
func (c *Checker) ErrorAt(line, col int, path, format string, args ...any) {
	c.Errs = append(c.Errs, &Error{File: c.File, Line: max(line, 1), Column: max(col, 1), Subject: c.Subject, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// ErrorIn reports a problem at a 1-based line and column inside the
// value of the scalar n, such as an expression's syntax error.
func (c *Checker) ErrorIn(n *yaml.Node, line, col int, path, format string, args ...any) {
	line, col = ScalarPosition(n, c.lines, line, col)
	c.ErrorAt(line, col, path, format, args...)
}

// ErrorsIn reports the errors found inside the value of the scalar n:
// an ErrorList whose lines and columns count inside the value (a
// template text's) lands at their positions in the file; any other error
// at n.
func (c *Checker) ErrorsIn(n *yaml.Node, path string, err error) {
	var l ErrorList
	if !errors.As(err, &l) {
		c.Errorf(n, path, "%v", err)
		return
	}
	for _, e := range l {
		c.ErrorIn(n, e.Line, e.Column, path, "%s", e.Msg)
	}
}

// Parse parses the file's one YAML document and returns its root node.
// It reports bad YAML, a second document and anchors or aliases (which
// hide what a value is from whoever reads it), returning nil; it returns
// nil with no error for a file with no document, which the caller words.
func (c *Checker) Parse(data []byte) *yaml.Node {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	c.lines = strings.Split(string(data), "\n")
	var doc yaml.Node
	if err := c.unmarshal(data, &doc); err != nil {
		line, msg := yamlError(err)
		c.ErrorAt(line, 1, "", "bad YAML: %s", msg)
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	if c.aliases(doc.Content[0]) {
		return nil
	}
	return doc.Content[0]
}

// unmarshal decodes one YAML document, turning a panic of the parser
// into an error.
func (c *Checker) unmarshal(data []byte, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: the file cannot be parsed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(n); err != nil {
		if err.Error() == "EOF" {
			return nil
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return fmt.Errorf("yaml: line %d: a file holds one %s: remove the second document (---)", extra.Line, c.Noun)
	}
	return nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError splits an error of the YAML parser into its line and
// message.
func yamlError(err error) (int, string) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, m[2]
	}
	return 1, strings.TrimPrefix(msg, "yaml: ")
}

// aliases reports every alias under n.
func (c *Checker) aliases(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode {
		c.Errorf(n, "", "anchors and aliases (*name) are not supported in %ss: write the value out", c.Noun)
		return true
	}
	found := false
	for _, k := range n.Content {
		found = c.aliases(k) || found
	}
	return found
}

// Pair is a key of a mapping and its value.
type Pair struct {
	Key, Val *yaml.Node
}

// Pairs returns the key/value pairs of a mapping node in order. It
// reports a node that is not a mapping (what words the mapping
// expected) and returns false; it reports and leaves out keys that are
// not plain names and keys given twice.
func (c *Checker) Pairs(n *yaml.Node, path, what string) ([]Pair, bool) {
	if n.Kind != yaml.MappingNode {
		c.Errorf(n, path, "expected %s, got %s", what, Describe(n))
		return nil, false
	}
	var pairs []Pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			c.Errorf(key, path, "a key must be a plain name, got %s", Describe(key))
			continue
		}
		if seen[key.Value] {
			c.Errorf(key, JoinPath(path, key.Value), "%s is given twice", key.Value)
			continue
		}
		seen[key.Value] = true
		pairs = append(pairs, Pair{key, val})
	}
	return pairs, true
}

// Mapping is Pairs that also reports, and leaves out, keys not in known
// (with "did you mean"); a nil known takes any key.
func (c *Checker) Mapping(n *yaml.Node, path, what string, known []string) []Pair {
	pairs, _ := c.Pairs(n, path, what)
	return c.known(pairs, path, known)
}

// Fields is Mapping by key; nil when n is not a mapping.
func (c *Checker) Fields(n *yaml.Node, path, what string, known []string) map[string]Pair {
	pairs, ok := c.Pairs(n, path, what)
	if !ok {
		return nil
	}
	pairs = c.known(pairs, path, known)
	m := make(map[string]Pair, len(pairs))
	for _, p := range pairs {
		m[p.Key.Value] = p
	}
	return m
}

func (c *Checker) known(pairs []Pair, path string, known []string) []Pair {
	if known == nil {
		return pairs
	}
	var out []Pair
	for _, p := range pairs {
		if !slices.Contains(known, p.Key.Value) {
			c.UnknownField(p.Key, JoinPath(path, p.Key.Value), known, "")
			continue
		}
		out = append(out, p)
	}
	return out
}

// UnknownField reports the key of a field that is not one of known:
// with "did you mean" when one is close, else listing known, as the
// fields of owner ("a send step") when it is given.
func (c *Checker) UnknownField(key *yaml.Node, path string, known []string, owner string) {
	if s := DidYouMean(key.Value, known); s != "" {
		c.Errorf(key, path, "unknown field %q%s", key.Value, s)
		return
	}
	if owner == "" {
		c.Errorf(key, path, "unknown field %q; the fields here are %s", key.Value, Enumerate(known, "and"))
		return
	}
	c.Errorf(key, path, "unknown field %q; %s has %s", key.Value, owner, Enumerate(known, "and"))
}

// Str returns a scalar's text, reporting anything else, an empty value
// included; what words the value expected: "a text".
func (c *Checker) Str(n *yaml.Node, path, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || IsNull(n) {
		c.Errorf(n, path, "expected %s, got %s", what, Describe(n))
		return "", false
	}
	return n.Value, true
}

// OneOf returns a scalar that must be one of options, reporting
// anything else with "did you mean" or the options.
func (c *Checker) OneOf(n *yaml.Node, path, what string, options []string) (string, bool) {
	s, ok := c.Str(n, path, what)
	if !ok {
		return "", false
	}
	if !slices.Contains(options, s) {
		if sug := DidYouMean(s, options); sug != "" {
			c.Errorf(n, path, "unknown %s %q%s", what, s, sug)
		} else {
			c.Errorf(n, path, "unknown %s %q: use %s", what, s, Enumerate(QuoteAll(options), "or"))
		}
		return "", false
	}
	return s, true
}

// ScalarPosition maps a 1-based line and column inside the value of the
// scalar n to a position in the file whose lines are given. It is exact
// for plain and quoted one-line values and for literal blocks (|); for
// other multi-line values it gives the value's start.
func ScalarPosition(n *yaml.Node, lines []string, line, col int) (int, int) {
	switch n.Style {
	case yaml.LiteralStyle:
		// The value starts on the line after the | indicator, at the
		// block's indentation: that of its first non-blank line.
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
