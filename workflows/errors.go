package workflows

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Pos is a position in a workflow file: 1-based line and column, the
// column counting characters.
type Pos struct {
	Line   int
	Column int
}

// Error is one problem of a workflow file, at the position of the value
// (or key) at fault.
type Error struct {
	File   string
	Line   int
	Column int
	// Path locates the value in the workflow: steps[1].channel. Indexes
	// count from 0.
	Path string
	Msg  string
}

// Error formats e as "file:line:col: path: message", the form editors
// and CI logs link to.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: ", e.File, e.Line, e.Column)
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in a workflow file, in position
// order. Load returns one whenever it finds any problem, so a marketer
// fixes them all in one pass.
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

func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Column < l[j].Column
	})
	return l
}

// didYouMean returns " (did you mean "x"?)" for the name closest to got,
// or "" when none is close enough to be a typo of it.
func didYouMean(got string, names []string) string {
	if s := suggest(got, names); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// suggest returns the name closest to got, if it is close enough to be a
// typo of it.
func suggest(got string, names []string) string {
	best, bestD := "", 0
	for _, n := range names {
		d := distance(strings.ToLower(got), strings.ToLower(n))
		if best == "" || d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" || bestD == 0 && got == best || bestD > max(1, min(3, utf8.RuneCountInString(got)/3)) {
		return ""
	}
	return best
}

// distance is the Levenshtein edit distance between a and b, in runes,
// counting a swap of two neighbours as one edit.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// list words a list of names for a message: "a, b or c".
func list(names []string, last string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " " + last + " " + names[len(names)-1]
}
