package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

const waitThenSend = `name: %s
trigger:
  event: store.visited
entry:
  brand: camellia
  re_entry: always
goal: purchase.completed
send_rules:
  time_zone: %s
  quiet_hours: 21:00-09:00
steps:
  - id: wait
    wait: 1h
  - id: nudge
    send: recall
`

// TestQuietHoursAcrossZones: a message due at 21:30 in Shanghai waits for
// 09:00 the next day there (plus its spread), while the same message for
// a member of the London store goes at once; a workflow in a fixed zone
// reads the hours there.
func TestQuietHoursAcrossZones(t *testing.T) {
	london := mustZone("Europe/London")
	forEach(t, at(3, 20, 30), func(t *testing.T, h *harness) {
		h.put(fmt.Sprintf(waitThenSend, "quiet", "member"))
		sh := h.member("Sh", "wecom", "g1")
		ldn := h.member("Ldn", "wecom", "g2")
		h.event(events.TypeStoreVisited, sh, `{}`)
		h.event(events.TypeStoreVisited, ldn, `{}`)
		h.runUntil(at(3, 21, 45))
		msgs := h.sender.toMembers()
		if len(msgs) != 1 || msgs[0].out.To != "wecom-Ldn" || !msgs[0].at.Equal(at(3, 21, 30)) {
			t.Fatalf("by 21:45 Shanghai (13:45 London): %+v", msgs)
		}
		if got := msgs[0].at.In(london).Format("15:04"); got != "13:30" {
			t.Errorf("London member's message at %s London time", got)
		}
		run := h.only(sh)
		rs, _ := h.s.RunStep(h.ctx, run.ID, "nudge", 1)
		release := at(4, 9, 0).Add(spread(run.ID, 5*time.Minute))
		if !run.WakeAt.Equal(release) || rs.State != store.StepPending {
			t.Errorf("Shanghai member held until %v (want %v): %+v", run.WakeAt.In(shanghai), release.In(shanghai), rs)
		}
		h.runUntil(at(4, 12, 0))
		msgs = h.sender.toMembers()
		if len(msgs) != 2 || !msgs[1].at.Equal(release) {
			t.Fatalf("next morning: %+v", msgs)
		}

		// A workflow read in New York: 21:30 Shanghai is 08:30 there,
		// in its quiet hours until 09:00 New York.
		h.put(fmt.Sprintf(waitThenSend, "quiet-ny", "America/New_York"))
		h.clock.Set(at(5, 20, 30))
		ny := h.member("Ny", "wecom", "g1")
		h.event(events.TypeStoreVisited, ny, `{}`)
		h.runUntil(at(5, 23, 0))
		want := time.Date(2025, 3, 5, 9, 0, 0, 0, mustZone("America/New_York")).Add(spread(h.runOf(ny, "quiet-ny").ID, 5*time.Minute))
		last := h.sender.toMembers()
		if got := last[len(last)-1]; got.out.To != "wecom-Ny" || !got.at.Equal(want) {
			t.Errorf("New York message at %v, want %v", got.at.In(shanghai), want.In(shanghai))
		}
		h.noErrors()
	})
}

// TestQuietHoursReleaseIsSpread: members held overnight go out over the
// spread window after 09:00, none before.
func TestQuietHoursReleaseIsSpread(t *testing.T) {
	forEach(t, at(3, 22, 0), func(t *testing.T, h *harness) {
		h.put(fmt.Sprintf(waitThenSend, "quiet", "store"))
		const n = 40
		for i := range n {
			h.event(events.TypeStoreVisited, h.member(fmt.Sprintf("m%02d", i), "wecom", "g1"), `{}`)
		}
		h.runUntil(at(4, 10, 0))
		msgs := h.sender.toMembers()
		if len(msgs) != n {
			t.Fatalf("%d messages, want %d", len(msgs), n)
		}
		seconds := map[time.Time]bool{}
		for _, m := range msgs {
			if m.at.Before(at(4, 9, 0)) || !m.at.Before(at(4, 9, 5)) {
				t.Errorf("released at %v, outside 09:00-09:05", m.at.In(shanghai))
			}
			seconds[m.at] = true
		}
		if len(seconds) < n*3/4 {
			t.Errorf("%d messages went out in only %d distinct seconds", n, len(seconds))
		}
		h.noErrors()
	})
}

const capped = `name: %s
trigger:
  event: store.visited
entry:
  brand: camellia
  re_entry: always
goal: none
send_rules:
  quiet_hours: none
  caps:
    per_day: 1
    when_capped: %s
steps:
  - id: nudge
    send: recall
`

// TestFrequencyCapsAcrossWorkflows: two workflows send to one member on
// one day; with a cap of one a day across workflows the second waits for
// the next day (or is skipped).
func TestFrequencyCapsAcrossWorkflows(t *testing.T) {
	forEach(t, at(3, 15, 0), func(t *testing.T, h *harness) {
		h.put(fmt.Sprintf(capped, "cap-a", "delay"))
		h.put(fmt.Sprintf(capped, "cap-b", "delay"))
		m := h.member("C", "wecom", "g1")
		h.event(events.TypeStoreVisited, m, `{}`)
		h.runUntil(at(3, 23, 0))
		if msgs := h.sender.toMembers(); len(msgs) != 1 {
			t.Fatalf("on the first day: %d messages, want 1", len(msgs))
		}
		var held store.WorkflowRun
		for _, r := range h.runs(m) {
			if r.State == store.RunActive {
				held = r
			}
		}
		midnight := at(4, 0, 0)
		if held.ID == 0 || !held.WakeAt.Equal(midnight.Add(spread(held.ID, 5*time.Minute))) {
			t.Fatalf("capped run: %+v", held)
		}
		h.runUntil(at(4, 12, 0))
		msgs := h.sender.toMembers()
		if len(msgs) != 2 || msgs[1].at.Before(midnight) {
			t.Fatalf("next day: %+v", msgs)
		}

		// With skip, the capped message is dropped.
		h.put(fmt.Sprintf(capped, "cap-c", "skip"))
		h.clock.Set(at(4, 15, 0))
		h.event(events.TypeStoreVisited, m, `{}`)
		h.runUntil(at(6, 0, 0))
		msgs = h.sender.toMembers()
		// The 4th already had its message (cap-b's, delayed from the
		// 3rd): cap-c skips; cap-a and cap-b go on the 5th and the 6th.
		if len(msgs) != 3 {
			t.Errorf("%d messages by the 6th, want 3", len(msgs))
		}
		skipped := 0
		for _, r := range h.runs(m) {
			if r.Workflow == "cap-c" {
				if rs, _ := h.s.RunStep(h.ctx, r.ID, "nudge", 1); rs.State == store.StepSkipped {
					skipped++
				}
			}
		}
		perDay := map[string]int{}
		for _, s := range msgs {
			perDay[s.at.In(shanghai).Format("01-02")]++
		}
		for day, n := range perDay {
			if n > 1 {
				t.Errorf("%d messages on %s, cap 1", n, day)
			}
		}
		if skipped != 1 {
			t.Errorf("cap-c skipped %d messages, want 1", skipped)
		}
		h.noErrors()
	})
}

const reEntry = `name: re-%s
trigger:
  event: store.visited
entry:
  brand: camellia
  re_entry: %s
steps:
  - tag: seen
`

// TestReEntry: never runs once, always runs again after a run ended,
// after a cool-down only once it has passed; and however re-entry is set,
// one run at a time.
func TestReEntry(t *testing.T) {
	forEach(t, at(1, 12, 0), func(t *testing.T, h *harness) {
		h.put(fmt.Sprintf(reEntry, "never", "never"))
		h.put(fmt.Sprintf(reEntry, "always", "always"))
		h.put(fmt.Sprintf(reEntry, "after", "after 30d"))
		h.put(`name: one-at-a-time
trigger:
  event: store.visited
entry:
  brand: camellia
  re_entry: always
steps:
  - wait: 10d
`)
		m := h.member("R", "wecom", "g1")
		for _, day := range []int{1, 2, 14, 31} {
			h.runUntil(at(day, 12, 0))
			h.event(events.TypeStoreVisited, m, `{}`)
			h.fire()
		}
		count := map[string]int{}
		for _, r := range h.runs(m) {
			count[r.Workflow]++
		}
		// one-at-a-time: the visit of the 2nd comes while the run of the
		// 1st waits; those of the 14th and 31st start runs.
		want := map[string]int{"re-never": 1, "re-always": 4, "re-after": 2, "one-at-a-time": 3}
		for w, n := range want {
			if count[w] != n {
				t.Errorf("%s: %d runs, want %d", w, count[w], n)
			}
		}
		h.noErrors()
	})
}
