// Package yamlcheck words the problems of a YAML file a person wrote:
// message templates (package templates) and workflows (package
// workflows) report through it, so both say the same thing the same way.
//
// It holds the error type (file:line:col: path: message) and the list
// of them, the "did you mean" suggestion, the wording of a YAML node's
// kind and of a value's type (DescribeType: what a template or a
// workflow expression gives), and a Checker that parses a file and
// collects the problems of its mappings, keys and values with their
// positions.
//
// Import rule: yamlcheck imports only the standard library and
// gopkg.in/yaml.v3, never a package of this module. It lives under
// templates because workflows already imports templates; templates,
// workflows and any other package that reads a hand-written YAML file
// may import it, with no cycle.
package yamlcheck

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem of a file, at the position of the value (or key)
// at fault.
type Error struct {
	// File is the file's name as given; empty for a text checked on its
	// own (a template text), whose Line and Column count inside the text.
	File string
	// Line and Column are 1-based; Column counts characters.
	Line   int
	Column int
	// Subject names what the file defines, when messages name it:
	// "template welcome".
	Subject string
	// Path locates the value in the file: steps[1].channel,
	// zh.wecom.title. Indexes count from 0.
	Path string
	Msg  string
}

// Error formats e as "file:line:col: subject: path: message", the form
// editors and CI logs link to; empty parts are left out.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	fmt.Fprintf(&b, "%d:%d: ", e.Line, e.Column)
	for _, s := range []string{e.Subject, e.Path} {
		if s != "" {
			b.WriteString(s)
			b.WriteString(": ")
		}
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found, in file and position order once
// sorted, so a person fixes them all in one pass.
type ErrorList []*Error

// Error lists the errors one a line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the errors, for errors.As on a single *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Sort orders l by file, line and column, keeping the order of errors
// at the same position.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// Err returns l sorted as an error, or nil when it is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	l.Sort()
	return l
}
