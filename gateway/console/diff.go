package console

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// Line operations of a diff.
const (
	opSame = ' '
	opDel  = '-'
	opAdd  = '+'
)

// diffLine is one line of a line diff: kept, deleted from a or added in
// b, with its numbers in a and b (0 where it has none).
type diffLine struct {
	Op     rune
	A, B   int
	Text   string
	Marker string
	// Skipped counts the unchanged lines an opFold line stands for.
	Skipped int
}

// opFold stands for unchanged lines a diff leaves out (Skipped of them).
const opFold = '~'

// foldContext keeps context lines of unchanged text around each change
// and replaces longer unchanged runs with one opFold line.
func foldContext(lines []diffLine, context int) []diffLine {
	keep := make([]bool, len(lines))
	for i, l := range lines {
		if l.Op == opSame {
			continue
		}
		for j := max(0, i-context); j <= min(len(lines)-1, i+context); j++ {
			keep[j] = true
		}
	}
	var out []diffLine
	for i := 0; i < len(lines); {
		if keep[i] {
			out = append(out, lines[i])
			i++
			continue
		}
		j := i
		for j < len(lines) && !keep[j] {
			j++
		}
		out = append(out, diffLine{Op: opFold, Skipped: j - i, Marker: string(opFold)})
		i = j
	}
	return out
}

// maxDiffCells bounds the LCS table (lines of a × lines of b); larger
// inputs are diffed as a whole replacement.
const maxDiffCells = 4 << 20

// lineDiff is the shortest line diff of a and b, from their longest
// common subsequence of lines.
func lineDiff(a, b string) []diffLine {
	al, bl := splitLines(a), splitLines(b)
	// Common head and tail first: versions differ in a few lines.
	head := 0
	for head < len(al) && head < len(bl) && al[head] == bl[head] {
		head++
	}
	tail := 0
	for tail < len(al)-head && tail < len(bl)-head && al[len(al)-1-tail] == bl[len(bl)-1-tail] {
		tail++
	}
	var out []diffLine
	for i := 0; i < head; i++ {
		out = append(out, diffLine{Op: opSame, A: i + 1, B: i + 1, Text: al[i]})
	}
	ma, mb := al[head:len(al)-tail], bl[head:len(bl)-tail]
	out = append(out, lcsDiff(ma, mb, head)...)
	for i := 0; i < tail; i++ {
		ai, bi := len(al)-tail+i, len(bl)-tail+i
		out = append(out, diffLine{Op: opSame, A: ai + 1, B: bi + 1, Text: al[ai]})
	}
	for i := range out {
		out[i].Marker = string(out[i].Op)
	}
	return out
}

func lcsDiff(a, b []string, offset int) []diffLine {
	var out []diffLine
	if len(a)*len(b) > maxDiffCells {
		for i, l := range a {
			out = append(out, diffLine{Op: opDel, A: offset + i + 1, Text: l})
		}
		for j, l := range b {
			out = append(out, diffLine{Op: opAdd, B: offset + j + 1, Text: l})
		}
		return out
	}
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	w := len(b) + 1
	lcs := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			out = append(out, diffLine{Op: opSame, A: offset + i + 1, B: offset + j + 1, Text: a[i]})
			i++
			j++
		case i < len(a) && (j == len(b) || lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
			// Deletions before additions, as diff(1) shows them.
			out = append(out, diffLine{Op: opDel, A: offset + i + 1, Text: a[i]})
			i++
		default:
			out = append(out, diffLine{Op: opAdd, B: offset + j + 1, Text: b[j]})
			j++
		}
	}
	return out
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

type diffData struct {
	Brand, Name string
	A, B        string
	Versions    []versionRow
	Lines       []diffLine
	Added       int
	Deleted     int
	// Full shows every line (?full=1), not only the changes in context.
	Full bool
}

// diff shows the line diff between two versions (?a= and ?b=, default the
// previous and the current one).
func (c *Console) diff(ctx *gin.Context) {
	brand, ok := c.brandParam(ctx)
	if !ok {
		return
	}
	name := ctx.Param("name")
	d, ok := c.loadEditor(ctx, brand, name, "")
	if !ok {
		return
	}
	va, vb := ctx.Query("a"), ctx.Query("b")
	if vb == "" && len(d.Versions) > 0 {
		vb = d.Versions[0].Version
	}
	if va == "" {
		va = vb
		if len(d.Versions) > 1 {
			va = d.Versions[1].Version
		}
	}
	a, err := c.o.Store.WorkflowVersion(ctx.Request.Context(), brand, name, va)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	b, err := c.o.Store.WorkflowVersion(ctx.Request.Context(), brand, name, vb)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	dd := diffData{Brand: brand, Name: name, A: va, B: vb, Versions: d.Versions, Lines: lineDiff(a.Source, b.Source)}
	for _, l := range dd.Lines {
		switch l.Op {
		case opAdd:
			dd.Added++
		case opDel:
			dd.Deleted++
		}
	}
	dd.Full = ctx.Query("full") == "1"
	if !dd.Full {
		dd.Lines = foldContext(dd.Lines, 3)
	}
	c.render(ctx, http.StatusOK, "diff", "diff.title", "/workflows", dd)
}
