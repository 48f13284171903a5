package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
)

const pinned = `# version %s
name: pinned
trigger:
  event: store.visited
entry:
  brand: camellia
  re_entry: always
steps:
  - id: wait
    wait: 1d
  - id: mark
    tag: %s
`

// TestVersionPinning: an edit starts new runs on the new version and
// leaves running ones on theirs; retiring a version ends its runs.
func TestVersionPinning(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		v1 := h.put(fmt.Sprintf(pinned, "1", "v1"))
		a := h.member("A", "wecom", "g1")
		h.event(events.TypeStoreVisited, a, `{}`)
		v2 := h.put(fmt.Sprintf(pinned, "2", "v2"))
		if v1.Version == v2.Version || !v2.Created || !v2.Enabled {
			t.Fatalf("versions %+v %+v", v1, v2)
		}
		b := h.member("B", "wecom", "g1")
		h.event(events.TypeStoreVisited, b, `{}`)
		h.runUntil(at(4, 13, 0))
		for m, want := range map[int64]string{a: "v1", b: "v2"} {
			tags, _ := h.s.MemberTags(h.ctx, m, "camellia")
			if len(tags) != 1 || tags[0] != want {
				t.Errorf("member %d tagged %v, want %s", m, tags, want)
			}
		}

		// Retire v2 while a run of it waits: the run exits, its wake does
		// nothing, and the workflow starts nothing until a new version.
		c := h.member("C", "wecom", "g1")
		h.event(events.TypeStoreVisited, c, `{}`)
		n, err := h.e.Retire(h.ctx, "camellia", "pinned", v2.Version)
		if err != nil || n != 1 {
			t.Fatalf("retire: %d, %v", n, err)
		}
		run := h.only(c)
		if run.State != store.RunExited || run.EndReason != "version retired" {
			t.Errorf("run of the retired version: %+v", run)
		}
		d := h.member("D", "wecom", "g1")
		h.event(events.TypeStoreVisited, d, `{}`)
		if len(h.runs(d)) != 0 {
			t.Error("a retired current version started a run")
		}
		h.runUntil(at(6, 12, 0))
		if tags, _ := h.s.MemberTags(h.ctx, c, "camellia"); len(tags) != 0 {
			t.Errorf("the exited run acted: %v", tags)
		}
		st, _ := h.e.Stats(h.ctx, "camellia", "pinned")
		if st.Exited != 1 || st.Done != 2 || st.Enabled {
			t.Errorf("stats: %+v", st)
		}
		// Putting it again brings it back.
		v3 := h.put(fmt.Sprintf(pinned, "2", "v2"))
		if v3.Version != v2.Version || v3.Created {
			t.Errorf("put again: %+v", v3)
		}
		h.event(events.TypeStoreVisited, d, `{}`)
		if len(h.runs(d)) != 1 {
			t.Error("the version put again started no run")
		}
		h.noErrors()
	})
}

// TestPutRejects: invalid YAML, and a name or brand that does not match.
func TestPutRejects(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		good := fmt.Sprintf(pinned, "1", "x")
		for _, tc := range []struct {
			name, brand, yaml, want string
		}{
			{"pinned", "camellia", strings.Replace(good, "wait: 1d", "wait: 1 day", 1), `bad duration "1 day" (did you mean 1d?)`},
			{"other", "camellia", good, `named "pinned", not "other"`},
			{"pinned", "acme", good, `for brand "camellia", not "acme"`},
		} {
			_, err := h.e.Put(h.ctx, tc.brand, tc.name, []byte(tc.yaml))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s/%s: %v, want %q", tc.brand, tc.name, err, tc.want)
			}
		}
		var list workflows.ErrorList
		_, err := h.e.Put(h.ctx, "camellia", "pinned", []byte(strings.Replace(good, "tag: x", "tga: x", 1)))
		if !errors.As(err, &list) || len(list) == 0 {
			t.Errorf("validation errors are not a workflows.ErrorList: %v", err)
		}
	})
}

const sendNow = `name: send-now
trigger:
  event: store.visited
entry:
  brand: camellia
  re_entry: always
goal: none
send_rules:
  quiet_hours: none
steps:
  - id: wait
    wait: 10m
  - id: nudge
    send: recall
`

// TestDuplicateWakes: the same wake delivered twice, one after the other
// and at the same time, sends once.
func TestDuplicateWakes(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		h.put(sendNow)
		var tasks []queued
		for i := range 6 {
			h.event(events.TypeStoreVisited, h.member(fmt.Sprintf("d%d", i), "wecom", "g1"), `{}`)
		}
		tasks = h.q.pending()
		if len(tasks) != 6 {
			t.Fatalf("queued %d wakes, want 6", len(tasks))
		}
		h.clock.Set(at(3, 12, 10))
		h.q.take(h.clock.Now())
		// One after the other.
		for _, task := range tasks[:3] {
			for range 2 {
				if err := h.deliver(task); err != nil {
					t.Fatal(err)
				}
			}
		}
		// At the same time, 8 deliveries each.
		var wg sync.WaitGroup
		for _, task := range tasks[3:] {
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := h.e.HandleWake(h.ctx, asynq.NewTask(TypeWake, task.payload)); err != nil && !errors.Is(err, errStepBusy) {
						t.Error(err)
					}
				}()
			}
		}
		wg.Wait()
		h.fire()
		if h.sender.memberCalls != 6 || len(h.sender.toMembers()) != 6 {
			t.Errorf("%d send calls for 6 members, %d messages", h.sender.memberCalls, len(h.sender.toMembers()))
		}
		st, _ := h.e.Stats(h.ctx, "camellia", "send-now")
		if st.Done != 6 || st.Sent != 6 {
			t.Errorf("stats: %+v", st)
		}
	})
}

// TestEarlyWake: a wake delivered half an hour early does nothing but
// schedule itself again for its time; one delivered a second early waits
// that second; none acts early.
func TestEarlyWake(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		var mu sync.Mutex
		var acted []time.Duration
		h.e.opts.OnWake = func(due, at time.Time) {
			mu.Lock()
			acted = append(acted, at.Sub(due))
			mu.Unlock()
		}
		h.put(sendNow)
		m := h.member("E", "wecom", "g1")
		h.event(events.TypeStoreVisited, m, `{}`)
		task := h.q.take(at(3, 12, 10))[0]
		h.clock.Set(at(3, 11, 40).Add(10 * time.Minute)) // 11:50, 20 minutes early
		if err := h.deliver(task); err != nil {
			t.Fatal(err)
		}
		if len(h.sender.sent) != 0 {
			t.Fatal("an early wake sent")
		}
		again := h.q.pending()
		if len(again) != 1 || !again[0].at.Equal(at(3, 12, 10)) || !strings.Contains(again[0].id, ":early") {
			t.Fatalf("rescheduled: %+v", again)
		}
		// One second early: real time passes by that second, the virtual
		// clock is moved by it meanwhile.
		h.clock.Set(at(3, 12, 10).Add(-time.Second))
		go func() {
			time.Sleep(200 * time.Millisecond)
			h.clock.Set(at(3, 12, 10))
		}()
		h.q.take(at(3, 12, 10))
		if err := h.deliver(again[0]); err != nil {
			t.Fatal(err)
		}
		msgs := h.sender.toMembers()
		if len(msgs) != 1 || msgs[0].at.Before(at(3, 12, 10)) {
			t.Errorf("sent %+v", msgs)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(acted) != 1 || acted[0] < 0 {
			t.Errorf("acted %v after the due time", acted)
		}
	})
}

// TestSweeperRecovers: wakes beyond the horizon stay out of Redis until
// the sweeper hands them over; when Redis loses them, the sweeper hands
// them over again once they are overdue; a step claimed by a worker that
// died is taken over.
func TestSweeperRecovers(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		h.put(strings.Replace(sendNow, "wait: 10m", "wait: 3h", 1))
		var ms []int64
		for i := range 5 {
			m := h.member(fmt.Sprintf("s%d", i), "wecom", "g1")
			ms = append(ms, m)
			h.event(events.TypeStoreVisited, m, `{}`)
		}
		if len(h.q.pending()) != 0 {
			t.Fatal("wakes 3 hours away were queued")
		}
		h.clock.Set(at(3, 14, 30))
		h.sweep()
		if p := h.q.pending(); len(p) != 5 || !p[0].at.Equal(at(3, 15, 0)) {
			t.Fatalf("after the sweep at 14:30: %+v", p)
		}
		for _, m := range ms {
			if r := h.only(m); r.QueuedAt == nil {
				t.Errorf("run %d not marked queued", r.ID)
			}
		}
		// Redis loses everything.
		h.q.lose(t)
		h.clock.Set(at(3, 15, 1))
		h.sweep()
		if len(h.q.pending()) != 0 {
			t.Fatal("the sweeper handed over wakes that are not overdue by the grace period")
		}
		h.clock.Set(at(3, 15, 3))
		h.sweep()
		if p := h.q.pending(); len(p) != 5 {
			t.Fatalf("after the grace period: %d wakes handed over again", len(p))
		}
		// A worker claims the first send and dies before acting (the
		// run's wake, now stale, does nothing).
		task := h.q.take(h.clock.Now())
		run := h.only(ms[0])
		moved, _, err := h.s.MoveRun(h.ctx, store.RunMove{RunID: run.ID, Seq: run.WakeSeq, Step: "wait", Visit: 1,
			StepState: store.StepDone, Next: "nudge", NextState: store.StepPending, WakeAt: ptr(h.clock.Now()), QueuedAt: ptr(h.clock.Now()), At: h.clock.Now()})
		if err != nil || !moved {
			t.Fatal(moved, err)
		}
		if ok, _ := h.s.ClaimRunStep(h.ctx, run.ID, "nudge", 1, h.clock.Now(), h.clock.Now().Add(-time.Minute)); !ok {
			t.Fatal("claim")
		}
		for _, tk := range task {
			if err := h.deliver(tk); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(h.sender.toMembers()); n != 4 {
			t.Fatalf("%d sent, want 4 (the fifth is claimed by a dead worker)", n)
		}
		h.runUntil(at(3, 15, 10))
		if n := len(h.sender.toMembers()); n != 5 {
			t.Errorf("the dead worker's step was not taken over: %d sent", n)
		}
		for _, m := range ms {
			if r := h.only(m); r.State != store.RunDone {
				t.Errorf("run %+v", r)
			}
		}
	})
}

// TestQueueDown: when Redis refuses new wakes, runs still start and the
// sweeper hands their wakes over once it is back.
func TestQueueDown(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		h.put(sendNow)
		h.q.mu.Lock()
		h.q.fail = true
		h.q.mu.Unlock()
		m := h.member("Q", "wecom", "g1")
		h.event(events.TypeStoreVisited, m, `{}`)
		if r := h.only(m); r.QueuedAt != nil {
			t.Errorf("a wake that could not be queued is marked queued: %+v", r)
		}
		h.q.mu.Lock()
		h.q.fail = false
		h.q.mu.Unlock()
		h.runUntil(at(3, 12, 30))
		if len(h.sender.toMembers()) != 1 {
			t.Errorf("nothing sent after the queue came back")
		}
		h.noErrors()
	})
}

// TestConcurrentEventsStartOneRun: events for one member handled at the
// same time start one run; the same event handled twice starts one run.
func TestConcurrentEventsStartOneRun(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		h.put(sendNow)
		m := h.member("P", "wecom", "g1")
		var evs []*store.Event
		for i := range 10 {
			ev := &store.Event{Type: events.TypeStoreVisited, BrandID: "camellia", MemberID: &m, Source: "test",
				SourceID: fmt.Sprintf("visit-%d", i), Payload: `{}`, OccurredAt: h.clock.Now()}
			if _, err := h.s.AppendEvent(h.ctx, ev); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev, ev) // each twice
		}
		var wg sync.WaitGroup
		for _, ev := range evs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := h.e.HandleEvent(context.Background(), ev); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if runs := h.runs(m); len(runs) != 1 {
			t.Errorf("%d runs started, want 1", len(runs))
		}
		// Redelivered after the run ended: the event that started it
		// starts nothing; another one starts a run once, however often it
		// is handled.
		h.runUntil(at(3, 13, 0))
		first := h.only(m)
		var winner, other *store.Event
		for _, ev := range evs {
			if ev.ID == *first.EventID {
				winner = ev
			} else {
				other = ev
			}
		}
		if err := h.e.HandleEvent(h.ctx, winner); err != nil {
			t.Fatal(err)
		}
		if len(h.runs(m)) != 1 {
			t.Error("the event that started the ended run started another")
		}
		for range 2 {
			if err := h.e.HandleEvent(h.ctx, other); err != nil {
				t.Fatal(err)
			}
			h.runUntil(h.clock.Now().Add(time.Hour))
		}
		if n := len(h.runs(m)); n != 2 {
			t.Errorf("%d runs, want 2: one event started two runs", n)
		}
	})
}
