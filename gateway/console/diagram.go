package console

import (
	"fmt"
	"html/template"
	"strings"
	"unicode/utf8"

	"github.com/scrmgw/scrmgw/workflows"
)

// Diagram geometry, in SVG user units.
const (
	boxW      = 300
	boxH      = 52
	rowGap    = 40 // between boxes: room for a straight edge's label
	laneGap   = 18 // between parallel detour lanes
	labelRoom = 118
	marginTop = 16
)

// diagram draws a workflow's steps (in file order, top to bottom) and
// their transitions as SVG: an edge to the next box is a straight arrow,
// others detour on the right (forward) or the left (back), each in its
// own lane, labelled with when it is taken (then/else, case X, default,
// on_event, on_timeout after the wait_for's timeout). Waits show their
// durations. The SVG uses classes of console.css, no inline style.
func diagram(wf *workflows.Workflow, lang string) template.HTML {
	n := len(wf.Steps)
	index := make(map[string]int, n+1)
	for i, s := range wf.Steps {
		index[s.ID] = i
	}
	index[workflows.End] = n // the end node, below the last step

	type edge struct {
		from, to  int
		label     string
		lane      int
		right     bool
		straight  bool
		exitY     float64
		entryY    float64
		labelText string
	}
	var edges []*edge
	for i, s := range wf.Steps {
		for _, t := range s.Transitions() {
			to, ok := index[t.To]
			if !ok {
				continue
			}
			e := &edge{from: i, to: to, label: transitionLabel(s, t, lang)}
			e.straight = to == i+1
			e.right = to > i
			edges = append(edges, e)
		}
	}
	// Several edges between the same two neighbours: only one goes
	// straight; the others detour.
	seenStraight := map[int]bool{}
	for _, e := range edges {
		if e.straight {
			if seenStraight[e.from] {
				e.straight = false
			}
			seenStraight[e.from] = true
		}
	}
	// Lanes: greedy interval colouring per side.
	var rightLanes, leftLanes [][][2]int
	assign := func(lanes *[][][2]int, lo, hi int) int {
		for li, spans := range *lanes {
			free := true
			for _, sp := range spans {
				if lo <= sp[1] && sp[0] <= hi {
					free = false
					break
				}
			}
			if free {
				(*lanes)[li] = append(spans, [2]int{lo, hi})
				return li
			}
		}
		*lanes = append(*lanes, [][2]int{{lo, hi}})
		return len(*lanes) - 1
	}
	for _, e := range edges {
		if e.straight {
			continue
		}
		lo, hi := min(e.from, e.to), max(e.from, e.to)
		if e.right {
			e.lane = assign(&rightLanes, lo, hi)
		} else {
			e.lane = assign(&leftLanes, lo, hi)
		}
	}
	leftW := 12.0
	if len(leftLanes) > 0 {
		leftW = labelRoom + float64(len(leftLanes))*laneGap + 8
	}
	rightW := 12.0
	if len(rightLanes) > 0 {
		rightW = labelRoom + float64(len(rightLanes))*laneGap + 8
	}
	boxX := leftW
	top := func(i int) float64 { return marginTop + float64(i)*(boxH+rowGap) }
	// Exit points of detours spread over the box's side.
	outs := map[[2]int][]*edge{} // (from, side) -> edges
	ins := map[[2]int][]*edge{}
	side := func(e *edge) int {
		if e.right {
			return 1
		}
		return 0
	}
	for _, e := range edges {
		if !e.straight {
			outs[[2]int{e.from, side(e)}] = append(outs[[2]int{e.from, side(e)}], e)
			ins[[2]int{e.to, side(e)}] = append(ins[[2]int{e.to, side(e)}], e)
		}
	}
	for k, es := range outs {
		for j, e := range es {
			e.exitY = top(k[0]) + boxH*float64(j+1)/float64(len(es)+1)
		}
	}
	for k, es := range ins {
		for j, e := range es {
			e.entryY = top(k[0]) + boxH*float64(j+1)/float64(len(es)+1)
		}
	}

	width := leftW + boxW + rightW
	height := top(n) + 36 + marginTop
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="diagram" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-labelledby="diagram-title" aria-describedby="diagram-desc">`,
		width, height, width, height)
	fmt.Fprintf(&b, `<title id="diagram-title">%s</title>`, esc(translate(lang, "diagram.title", wf.Name)))
	// The transitions in words, for screen readers.
	var desc []string
	for _, s := range wf.Steps {
		var to []string
		for _, t := range s.Transitions() {
			if l := transitionLabel(s, t, lang); l != "" {
				to = append(to, l+" → "+t.To)
			} else {
				to = append(to, "→ "+t.To)
			}
		}
		desc = append(desc, s.ID+" ("+stepDetail(s, lang)+") "+strings.Join(to, ", "))
	}
	fmt.Fprintf(&b, `<desc id="diagram-desc">%s</desc>`, esc(strings.Join(desc, "; ")))
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>`)

	cx := boxX + boxW/2
	for _, e := range edges {
		if e.straight {
			y1, y2 := top(e.from)+boxH, top(e.to)
			fmt.Fprintf(&b, `<path class="edge" d="M%.1f,%.1f L%.1f,%.1f" marker-end="url(#arrow)"/>`, cx, y1, cx, y2-1)
			if e.label != "" {
				fmt.Fprintf(&b, `<text class="edge-label" x="%.1f" y="%.1f">%s</text>`, cx+8, y1+rowGap/2+4, esc(e.label))
			}
			continue
		}
		var x0, lx float64
		if e.right {
			x0 = boxX + boxW
			lx = x0 + labelRoom + float64(e.lane)*laneGap
		} else {
			x0 = boxX
			lx = x0 - labelRoom - float64(e.lane)*laneGap
		}
		entryY := e.entryY
		if e.to == n {
			entryY = top(n) + 18
		}
		cls := "edge detour"
		if !e.right {
			cls = "edge back"
		}
		fmt.Fprintf(&b, `<path class="%s" d="M%.1f,%.1f H%.1f V%.1f H%.1f" marker-end="url(#arrow)"/>`, cls, x0, e.exitY, lx, entryY, endX(e.to == n, e.right, x0, cx))
		if e.label != "" {
			tx, anchor := x0+6, "start"
			if !e.right {
				tx, anchor = x0-6, "end"
			}
			fmt.Fprintf(&b, `<text class="edge-label" x="%.1f" y="%.1f" text-anchor="%s">%s</text>`, tx, e.exitY-5, anchor, esc(truncateText(e.label, 16)))
		}
	}
	for i, s := range wf.Steps {
		y := top(i)
		fmt.Fprintf(&b, `<g class="step kind-%s"><rect x="%.1f" y="%.1f" width="%d" height="%d" rx="8"/>`, esc(string(s.Kind)), boxX, y, boxW, boxH)
		fmt.Fprintf(&b, `<text class="step-id" x="%.1f" y="%.1f">%s</text>`, boxX+14, y+21, esc(truncateText(s.ID, 34)))
		fmt.Fprintf(&b, `<text class="step-detail" x="%.1f" y="%.1f">%s</text></g>`, boxX+14, y+40, esc(truncateText(stepDetail(s, lang), 42)))
	}
	// The end node.
	ey := top(n)
	fmt.Fprintf(&b, `<g class="step end-node"><rect x="%.1f" y="%.1f" width="%d" height="36" rx="18"/><text class="step-id" x="%.1f" y="%.1f" text-anchor="middle">%s</text></g>`,
		cx-60, ey, 120, cx, ey+23, esc(translate(lang, "diagram.end")))
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every text is escaped above
}

// endX is where a detour enters its target: the side of the box, or the
// side of the (narrower) end node.
func endX(toEnd, right bool, x0, cx float64) float64 {
	if !toEnd {
		return x0
	}
	if right {
		return cx + 60
	}
	return cx - 60
}

// transitionLabel says when a transition is taken; "" for a plain next.
func transitionLabel(s *workflows.Step, t workflows.Transition, lang string) string {
	switch {
	case t.Label == "next":
		return ""
	case t.Label == "on_timeout" && s.WaitFor != nil:
		return "on_timeout " + workflows.FormatDuration(s.WaitFor.Timeout)
	}
	return t.Label
}

// stepDetail is the second line of a step's box: its kind and what it
// does.
func stepDetail(s *workflows.Step, lang string) string {
	k := string(s.Kind)
	switch s.Kind {
	case workflows.KindSend:
		d := k + " · " + s.Send.Template
		if s.Send.Via == workflows.ViaGuide {
			d += " " + translate(lang, "diagram.via_guide")
		}
		return d
	case workflows.KindWait:
		if s.Wait.Until != nil {
			return k + " · " + translate(lang, "diagram.until") + " " + s.Wait.Until.Source
		}
		return k + " · " + workflows.FormatDuration(s.Wait.For)
	case workflows.KindWaitFor:
		return k + " · " + s.WaitFor.Event + " ≤ " + workflows.FormatDuration(s.WaitFor.Timeout)
	case workflows.KindIf:
		return k + " · " + s.If.Cond.Source
	case workflows.KindSwitch:
		return k + " · " + s.Switch.Value.Source
	case workflows.KindGuideTask:
		return k + " · " + translate(lang, "diagram.due") + " " + workflows.FormatDuration(s.GuideTask.DueIn)
	case workflows.KindAssignGuide:
		return k + " · " + s.AssignGuide.Strategy
	case workflows.KindTag, workflows.KindUntag:
		return k + " · " + strings.Join(s.Tag.Tags, ", ")
	case workflows.KindAwardPoints:
		return fmt.Sprintf("%s · %+d", k, s.AwardPoints.Points)
	case workflows.KindWebhook:
		return k + " · " + s.Webhook.URL
	case workflows.KindSendGroups:
		return k + " · " + s.SendGroups.Template + " → " + s.SendGroups.To
	case workflows.KindEnd:
		if s.End != nil && s.End.Reason != "" {
			return k + " · " + s.End.Reason
		}
	}
	return k
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// truncateText shortens s to n characters with an ellipsis.
func truncateText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
