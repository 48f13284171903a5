package templates

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinel errors of Render. Callers use errors.Is.
var (
	// ErrUnknownTemplate means no template has the requested id.
	ErrUnknownTemplate = errors.New("unknown template")
	// ErrNoVariant means the template has neither a variant for the
	// requested channel nor a default one.
	ErrNoVariant = errors.New("no variant for channel")
)

// Error is one problem found in a template, at a position in its file.
type Error struct {
	// File is the template file's name as given to Add; empty for a text
	// checked by ParseText, whose Line and Column count inside the text.
	File string
	// Line and Column are 1-based; Column counts characters.
	Line   int
	Column int
	// Template is the template's id, when known.
	Template string
	// Path locates the value in the file: zh.wecom.title.
	Path string
	Msg  string
}

// Error formats e as "file:line:col: template id: path: message".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	fmt.Fprintf(&b, "%d:%d: ", e.Line, e.Column)
	if e.Template != "" {
		fmt.Fprintf(&b, "template %s: ", e.Template)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found while loading templates, in file and
// position order. It is returned as an error only when it is not empty.
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

func (l ErrorList) sort() {
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

// err returns l as an error, or nil when it is empty.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	l.sort()
	return l
}
