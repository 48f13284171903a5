package workflows

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

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
