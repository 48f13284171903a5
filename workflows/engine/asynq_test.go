package engine

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
	"github.com/scrmgw/scrmgw/templates"
)

const realPath = `name: real-path
trigger:
  event: store.visited
entry:
  brand: camellia
  re_entry: always
goal: purchase.completed
send_rules:
  quiet_hours: none
steps:
  - id: hello
    send: welcome
    priority: high
  - id: short
    wait: 2s
  - id: nudge
    send: recall
  - id: long
    wait: 6s
  - id: mark
    tag: done
`

// TestRealAsynq runs the engine as the gateway does: a real asynq server
// and scheduler on Redis, the real clock, a horizon of 3 s so the 6 s
// wait goes through the sweeper. Every message goes once, never before
// its time, and a wake delivered many times over sends once; with wakes
// handed over ahead of time (the default Lead) and without.
func TestRealAsynq(t *testing.T) {
	for _, lead := range []time.Duration{0, -1} {
		t.Run(fmt.Sprintf("lead=%v", lead), func(t *testing.T) { testRealAsynq(t, lead) })
	}
}

func testRealAsynq(t *testing.T, lead time.Duration) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		redisOpt, err := asynq.ParseRedisURI(storetest.RedisURL(t))
		if err != nil {
			t.Fatal(err)
		}
		client := asynq.NewClient(redisOpt)
		defer client.Close()
		reg, err := templates.LoadFS(configs.BuiltinTemplates())
		if err != nil {
			t.Fatal(err)
		}
		sender := newFakeSender(s, time.Now)
		sender.auto = true
		var mu sync.Mutex
		var lateness []time.Duration
		e, err := New(Options{Store: s, Queue: client, Templates: reg, Channels: testChannels, Sender: sender, Logger: testLogger(t),
			Horizon: 3 * time.Second, SweepGrace: 5 * time.Second, Lead: lead,
			OnWake: func(due, acted time.Time) {
				mu.Lock()
				lateness = append(lateness, acted.Sub(due))
				mu.Unlock()
			}})
		if err != nil {
			t.Fatal(err)
		}
		sender.settled = e.SendSettled
		h := &harness{t: t, ctx: t.Context(), s: s, e: e, sender: sender}
		h.seed()
		h.clock = &vclock{}
		srv := asynq.NewServer(redisOpt, asynq.Config{
			Concurrency: 50, Queues: map[string]int{"critical": 6, "workflows": 3, "default": 3},
			DelayedTaskCheckInterval: time.Second, TaskCheckInterval: 100 * time.Millisecond,
			LogLevel: asynq.FatalLevel,
		})
		mux := asynq.NewServeMux()
		e.Register(mux)
		if err := srv.Start(mux); err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown()
		sched := asynq.NewScheduler(redisOpt, &asynq.SchedulerOpts{LogLevel: asynq.FatalLevel})
		if _, err := sched.Register("@every 1s", asynq.NewTask(TypeSweep, nil), asynq.Queue("default")); err != nil {
			t.Fatal(err)
		}
		if err := sched.Start(); err != nil {
			t.Fatal(err)
		}
		defer sched.Shutdown()

		h.put(realPath)
		var members []int64
		for i := range 3 {
			members = append(members, h.member(fmt.Sprintf("r%d", i), "wecom", "g1"))
		}
		started := time.Now()
		for _, m := range members {
			h.clock.Set(time.Now())
			h.event(events.TypeStoreVisited, m, `{}`)
		}
		// Deliver the first wake of one run ten more times at once.
		run := h.only(members[0])
		payload, _ := json.Marshal(wakePayload{Run: run.ID, Seq: 0})
		for range 10 {
			if _, err := client.Enqueue(asynq.NewTask(TypeWake, payload), asynq.Queue("critical")); err != nil {
				t.Fatal(err)
			}
		}

		deadline := time.Now().Add(40 * time.Second)
		for {
			done := 0
			for _, m := range members {
				if h.only(m).State == store.RunDone {
					done++
				}
			}
			if done == len(members) {
				break
			}
			if time.Now().After(deadline) {
				for _, m := range members {
					t.Logf("run %+v: %v", h.only(m), h.trail(h.only(m).ID))
				}
				t.Fatal("runs did not finish")
			}
			time.Sleep(200 * time.Millisecond)
		}
		if time.Since(started) < 8*time.Second {
			t.Errorf("runs finished in %v, before their waits", time.Since(started))
		}
		toMembers := sender.toMembers()
		sender.mu.Lock()
		defer sender.mu.Unlock()
		if sender.memberCalls != 6 || len(toMembers) != 6 {
			t.Errorf("%d send calls, %d messages to members; want 2 for each of 3 members", sender.memberCalls, len(toMembers))
		}
		first := map[string]time.Time{}
		for _, m := range toMembers {
			switch m.meta.Step {
			case "hello":
				first[m.out.To] = m.at
			case "nudge":
				if d := m.at.Sub(first[m.out.To]); d < 2*time.Second {
					t.Errorf("nudge to %s %v after hello, before its 2 s wait", m.out.To, d)
				}
			}
		}
		for _, m := range members {
			r := h.only(m)
			steps, _ := s.RunSteps(h.ctx, r.ID)
			var nudged, marked time.Time
			for _, st := range steps {
				switch st.StepID {
				case "nudge":
					nudged = *st.FinishedAt
				case "mark":
					marked = *st.FinishedAt
				}
			}
			if marked.Sub(nudged) < 6*time.Second {
				t.Errorf("run %d tagged %v after the nudge, before its 6 s wait", r.ID, marked.Sub(nudged))
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, l := range lateness {
			if l < 0 || l > 3*time.Second {
				t.Errorf("a wake acted %v after its time", l)
			}
		}
	})
}
