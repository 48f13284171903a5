package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestStoreVisitRecallDryRunInDocs runs the dry runs docs/workflows.md
// shows for the shipped store-visit recall and checks the document shows
// what the CLI prints, so the example never rots: a visit without a
// purchase gives the guide a task and the member a nudge through the
// guide three days later; a purchase in between converts the run.
func TestStoreVisitRecallDryRunInDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/workflows.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		events string
		want   []string
	}{
		{"store-visit-events.json", []string{"call (guide_task)            task for guide 李娜, due 2026-11-29 15:20:00",
			"nudge (send)                 sends store_visit_recall on wecom through guide 李娜", "run ends (done): visited, no purchase within 3 days"}},
		{"store-visit-purchase-events.json", []string{"2026-11-27 19:05:00 CST  goal                         purchase.completed reaches the goal: run ends (converted)"}},
	} {
		t.Run(tc.events, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run([]string{"workflow", "dry-run", "../../configs/workflows/store-visit-recall.yaml", "--member", "../../configs/samples/member.json",
				"--events", "../../configs/samples/" + tc.events, "--start", "2026-11-25T15:00:00+08:00"}, &out, &errb); code != 0 {
				t.Fatalf("dry run: %d %s", code, errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("dry run lacks %q:\n%s", w, out.String())
				}
			}
			if !bytes.Contains(doc, out.Bytes()) {
				t.Errorf("docs/workflows.md does not show this dry run's output:\n%s", out.String())
			}
			if tc.events == "store-visit-purchase-events.json" && strings.Contains(out.String(), "nudge") {
				t.Errorf("a member who bought was nudged:\n%s", out.String())
			}
		})
	}
}
