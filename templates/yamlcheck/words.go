package yamlcheck

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// DidYouMean returns ` (did you mean "x"?)` for the name closest to got,
// or "" when none is close enough to be a typo of it.
func DidYouMean(got string, names []string) string {
	if s := Suggest(got, names); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// Suggest returns the name closest to got, ignoring case, if it is close
// enough to be a typo of it: at most a third of got's characters apart,
// at least one and at most three edits. It never suggests got itself.
func Suggest(got string, names []string) string {
	best, bestD := "", 0
	for _, n := range names {
		d := distance(strings.ToLower(got), strings.ToLower(n))
		if best == "" || d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" || best == got || bestD > max(1, min(3, utf8.RuneCountInString(got)/3)) {
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

// Enumerate words a list of names for a message: "a, b and c" with last
// "and".
func Enumerate(names []string, last string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " " + last + " " + names[len(names)-1]
}

// QuoteAll returns the names quoted, for Enumerate.
func QuoteAll(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return q
}

// Describe words what a node is, for "expected X, got Y": "a mapping
// (key: value lines)", "a list", "nothing" (an empty value), a quoted
// scalar, or "an alias".
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping (key: value lines)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if IsNull(n) {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

// IsNull reports an empty value (key: with nothing after it) or null.
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// JoinPath appends key to a value's path: steps[0] and channel give
// steps[0].channel.
func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
