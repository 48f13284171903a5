package console

import (
	"regexp"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/workflows"
)

const branchy = `name: branchy
trigger:
  event: member.joined
entry:
  brand: acme
steps:
  - id: wait_reply
    wait_for: message.received
    timeout: 2d12h
    on_event: by_level
    on_timeout: nudge
  - id: by_level
    switch: member.level
    cases:
      gold: call
      silver: nudge
    default: end
  - id: nudge
    wait: 3d
  - id: again
    if: member.orders == 0
    then: wait_reply
    else: end
  - id: call
    guide_task: "Call {{.Member.Name}}"
    due_in: 1d
`

func TestDiagram(t *testing.T) {
	wf, err := workflows.Load("branchy.yaml", []byte(branchy), workflows.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svg := string(diagram(wf, "en"))
	text := regexp.MustCompile(`<[^>]+>`).ReplaceAllString(regexp.MustCompile(`<desc.*</desc>`).ReplaceAllString(svg, ""), "|")
	if !strings.Contains(svg, "again (if · member.orders == 0) then → wait_reply, else → end;") {
		t.Error("the description does not say the transitions in words")
	}
	for _, want := range []string{
		"|wait_reply|", "|wait_for · message.received ≤ 2d12h|", "|on_event|", "|on_timeout 2d12h|",
		"|by_level|", "|switch · member.level|", "|case gold|", "|case silver|", "|default|",
		"|nudge|", "|wait · 3d|", "|again|", "|if · member.orders == 0|", "|then|", "|else|",
		"|call|", "|guide_task · due in 1d|", "|end|",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("diagram lacks %q:\n%s", want, text)
		}
	}
	// then: wait_reply goes back up: a back edge on the left.
	if !strings.Contains(svg, `class="edge back"`) {
		t.Error("no back edge for then: wait_reply")
	}
	// Every transition is an edge: 2 + 3 + 1 + 2 + 1.
	if n := strings.Count(svg, `<path class="edge`); n != 9 {
		t.Errorf("%d edges, want 9", n)
	}
	if strings.Contains(svg, "style=") || strings.Contains(svg, "<script") {
		t.Error("the diagram has inline style or script (the CSP forbids them)")
	}
	// Text is escaped.
	wf.Steps[0].ID = `<b>&"x"`
	if svg := string(diagram(wf, "en")); strings.Contains(svg, "<b>") || !strings.Contains(svg, "&lt;b&gt;&amp;") {
		t.Error("a step id is not escaped in the SVG")
	}
}
