package engine

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

const truthful = `name: truthful
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
    when_capped: skip
steps:
  - id: nudge
    send: recall
    via: guide
  - id: mark
    tag: nudged
`

// TestSendOutcomes: a send step is done only once the channel took its
// message, and fails (with the run) when the channel refuses it for good,
// with the channel's reason on the step, the run and in the stats; a
// message through a guide is "not confirmed" until WeCom reports it sent,
// then "delivered", and the guide's task to confirm it closes itself.
func TestSendOutcomes(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		h.put(truthful)
		var mu sync.Mutex
		refuse := map[string]sendResult{
			"wecom-B": {failure: "invalid_recipient", reason: "wecom api error 41048: no customer to send"},
		}
		h.sender.outcome = func(_ string, m *adapters.Outbound) sendResult {
			mu.Lock()
			defer mu.Unlock()
			return refuse[m.To]
		}
		a, b, d := h.member("A", "wecom", "g1"), h.member("B", "wecom", "g1"), h.member("D", "wecom", "g1")
		if err := h.s.SetConsent(h.ctx, d, "camellia", "wecom", true, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		for _, m := range []int64{a, b, d} {
			h.event(events.TypeStoreVisited, m, `{}`)
		}
		h.fire()

		// A: sent (WeCom created the task), the run went on.
		runA := h.only(a)
		if got := h.trail(runA.ID); !cmp.Equal(got, []string{"nudge:done", "mark:done"}) || runA.State != store.RunDone || runA.Sent != 1 {
			t.Errorf("A: run %+v, steps %v", runA, got)
		}
		rs, _ := h.s.RunStep(h.ctx, runA.ID, "nudge", 1)
		if !strings.Contains(rs.Outcome, "sent recall on wecom; not confirmed yet; task") || rs.OutboxKey != stepKey(runA.ID, "nudge", 1) {
			t.Errorf("A's send step: %+v", rs)
		}
		tasks, _ := h.s.GuideTasks(h.ctx, store.GuideTaskFilter{RunID: runA.ID})
		if len(tasks) != 1 || tasks[0].State != store.GuideTaskOpen || tasks[0].GuideID != "g1" || !strings.Contains(tasks[0].Title, "A") {
			t.Fatalf("A's confirmation task: %+v", tasks)
		}
		// The guide is told of the task once, naming the member and the
		// message.
		var notes []sent
		for _, s := range h.sender.toGuides() {
			if s.out.IdempotencyKey == stepKey(runA.ID, "nudge", 1)+":confirm:notify" {
				notes = append(notes, s)
			}
		}
		if len(notes) != 1 || notes[0].out.To != "wang" || notes[0].channel != "wecom" ||
			!strings.Contains(notes[0].out.Text, "确认发送「recall」给 A") || !strings.Contains(notes[0].out.Text, "小王") {
			t.Errorf("A's guide was told: %+v", notes)
		}

		// B: refused for good: the step and the run fail with the reason,
		// no task for the guide, and the message does not count against
		// the caps.
		runB := h.only(b)
		rs, _ = h.s.RunStep(h.ctx, runB.ID, "nudge", 1)
		if runB.State != store.RunFailed || !strings.Contains(runB.EndReason, "41048") || runB.Sent != 0 ||
			rs.State != store.StepFailed || rs.Reason != "invalid_recipient" || !strings.Contains(rs.Error, "no customer to send") {
			t.Errorf("B: run %+v, step %+v", runB, rs)
		}
		if tasks, _ := h.s.GuideTasks(h.ctx, store.GuideTaskFilter{RunID: runB.ID}); len(tasks) != 0 {
			t.Errorf("a task to confirm a message that was not sent: %+v", tasks)
		}
		if sends, _ := h.s.MemberSends(h.ctx, b, at(3, 0, 0)); len(sends) != 0 {
			t.Errorf("the refused message counts against B's caps: %+v", sends)
		}
		if o, _ := h.s.OutboxByKey(h.ctx, stepKey(runB.ID, "nudge", 1)); o.State != store.OutboxFailed || o.Failure != "invalid_recipient" {
			t.Errorf("B's outbox row: %+v", o)
		}

		// A again the same day: capped. B again: its cap is free, and
		// this time WeCom takes it.
		mu.Lock()
		delete(refuse, "wecom-B")
		mu.Unlock()
		h.clock.Set(at(3, 13, 0))
		h.event(events.TypeStoreVisited, a, `{}`)
		h.event(events.TypeStoreVisited, b, `{}`)
		h.fire()

		want := SendCounts{Sent: 2, NotConfirmed: 2, Failed: 1, FailedBy: map[string]int64{"invalid_recipient": 1},
			Skipped: 2, SkippedBy: map[string]int64{"cap": 1, "consent": 1}}
		st, err := h.e.Stats(h.ctx, "camellia", "truthful")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, st.Sends); diff != "" {
			t.Errorf("sends (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(&want, st.Steps[0].Sends); diff != "" {
			t.Errorf("nudge's sends (-want +got):\n%s", diff)
		}
		if st.Sent != 2 || st.Failed != 1 || st.Done != 4 || st.Steps[0].FailedBy["invalid_recipient"] != 1 || st.Steps[1].Sends != nil {
			t.Errorf("stats: %+v", st)
		}

		// WeCom reports A's first message sent by the guide: delivered,
		// and the guide's task closes itself.
		key := stepKey(runA.ID, "nudge", 1)
		o, _ := h.s.OutboxByKey(h.ctx, key)
		if err := h.s.SetDelivery(h.ctx, o.ID, string(adapters.DeliveryDelivered), ""); err != nil {
			t.Fatal(err)
		}
		for range 2 { // told twice: the same
			if err := h.e.Delivered(h.ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		task, _ := h.s.GuideTask(h.ctx, tasks[0].ID)
		if task.State != store.GuideTaskDone || task.CompletedAt == nil {
			t.Errorf("the confirmation task after delivery: %+v", task)
		}
		st, _ = h.e.Stats(h.ctx, "camellia", "truthful")
		if st.Sends.Delivered != 1 || st.Sends.NotConfirmed != 1 || st.Sends.Sent != 2 {
			t.Errorf("after delivery: %+v", st.Sends)
		}
		h.noErrors()
	})
}

// TestSendWaitsForTheChannel: a message waiting for its rate slot keeps
// its step waiting ("queued"); when the news that it was sent is lost
// (a worker stopped between the two), the step finds out by itself.
func TestSendWaitsForTheChannel(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		h.put(truthful)
		var mu sync.Mutex
		hold := true
		h.sender.outcome = func(string, *adapters.Outbound) sendResult {
			mu.Lock()
			defer mu.Unlock()
			return sendResult{hold: hold}
		}
		m := h.member("C", "wecom", "g1")
		h.event(events.TypeStoreVisited, m, `{}`)
		h.runUntil(at(3, 13, 0))
		run := h.only(m)
		rs, _ := h.s.RunStep(h.ctx, run.ID, "nudge", 1)
		if run.State != store.RunActive || rs.State != store.StepSending || !strings.Contains(rs.Outcome, "waits for the channel") {
			t.Fatalf("held message: run %+v, step %+v", run, rs)
		}
		st, _ := h.e.Stats(h.ctx, "camellia", "truthful")
		if st.Sends.Queued != 1 || st.Sends.Sent != 0 || st.Steps[0].Sending != 1 || st.Done != 0 {
			t.Errorf("stats of a held message: %+v %+v", st.Sends, st.Steps[0])
		}
		// The pipeline sends it, but the engine is not told.
		mu.Lock()
		hold = false
		mu.Unlock()
		h.sender.settled = nil
		h.fire()
		if run := h.only(m); run.State != store.RunActive {
			t.Fatalf("the run moved without news: %+v", run)
		}
		h.runUntil(at(3, 14, 0))
		run = h.only(m)
		if got := h.trail(run.ID); run.State != store.RunDone || !cmp.Equal(got, []string{"nudge:done", "mark:done"}) {
			t.Errorf("after the lost news: run %+v, steps %v", run, got)
		}
		if len(h.sender.toMembers()) != 1 {
			t.Errorf("%d messages to the member, want 1", len(h.sender.toMembers()))
		}
		h.noErrors()
	})
}

// TestSendPollBacksOff: the step looks at a message that waits long less
// and less often, up to SendPollMax.
func TestSendPollBacksOff(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		h.put(truthful)
		h.sender.outcome = func(string, *adapters.Outbound) sendResult { return sendResult{hold: true} }
		m := h.member("H", "wecom", "g1")
		h.event(events.TypeStoreVisited, m, `{}`)
		h.fire()
		var gaps []time.Duration
		last := h.clock.Now()
		for range 8 {
			run := h.only(m)
			if run.WakeAt == nil {
				t.Fatalf("run %+v has no wake", run)
			}
			gaps = append(gaps, run.WakeAt.Sub(last))
			last = *run.WakeAt
			h.clock.Set(last)
			h.sweep()
			h.fire()
		}
		want := []time.Duration{time.Minute, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 30 * time.Minute, 30 * time.Minute}
		if diff := cmp.Diff(want, gaps); diff != "" {
			t.Errorf("gaps between looks (-want +got):\n%s", diff)
		}
		h.noErrors()
	})
}

// TestSendSettledBeforeTheStepWaits: the pipeline may send a message and
// tell the engine before the step that queued it records that it waits
// for it; the news is ignored then, and the step finds the message sent
// as soon as it waits, without waiting for its next look.
func TestSendSettledBeforeTheStepWaits(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		h.put(truthful)
		h.sender.instant = true
		m := h.member("F", "wecom", "g1")
		h.event(events.TypeStoreVisited, m, `{}`)
		h.fire() // at the same instant: no look at the outbox is due
		run := h.only(m)
		if got := h.trail(run.ID); run.State != store.RunDone || !cmp.Equal(got, []string{"nudge:done", "mark:done"}) {
			t.Errorf("run %+v, steps %v", run, got)
		}
		h.noErrors()
	})
}
