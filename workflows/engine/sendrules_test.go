package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
)

func TestParseQuota(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Quota
		err  bool
	}{
		{in: "1/day", want: Quota{Limit: 1}},
		{in: "4/month", want: Quota{Limit: 4, Month: true}},
		{in: "off", want: Quota{}},
		{in: "1", err: true},
		{in: "0/day", err: true},
		{in: "2/week", err: true},
	} {
		got, err := ParseQuota(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseQuota(%q) = %+v, %v; want %+v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

const massSend = `name: %s
trigger:
  event: store.visited
entry:
  brand: camellia
  re_entry: always
goal: none
send_rules:
  quiet_hours: 21:00-09:00
steps:
  - id: nudge
    send: recall
%s`

// TestWeComMassLimit: WeCom lets a customer receive one group-send
// message a day (the quota here). A second workflow's message the same
// day waits for the next day's send time, or is skipped with when_capped:
// skip; either way the run records why, and DingTalk members are not
// counted.
func TestWeComMassLimit(t *testing.T) {
	forEach(t, at(3, 15, 0), func(t *testing.T, h *harness) {
		h.put(fmt.Sprintf(massSend, "mass-a", ""))
		h.put(fmt.Sprintf(massSend, "mass-b", ""))
		h.put(fmt.Sprintf(massSend, "mass-skip", "    when_capped: skip\n"))
		m := h.member("Q", "wecom", "g1")
		dt := h.member("D", "dingtalk", "g3")
		h.event(events.TypeStoreVisited, m, `{}`)
		h.event(events.TypeStoreVisited, dt, `{}`)
		h.runUntil(at(3, 23, 0))
		var toQ, toD int
		for _, s := range h.sender.toMembers() {
			switch s.out.To {
			case "wecom-Q":
				toQ++
			case "dingtalk-D":
				toD++
			}
		}
		if toQ != 1 || toD != 3 {
			t.Fatalf("on the first day: %d WeCom messages to Q (want 1, the limit), %d DingTalk to D (want 3, no limit)", toQ, toD)
		}
		var delayed, skipped store.WorkflowRun
		for _, r := range h.runs(m) {
			rs, err := h.s.RunStep(h.ctx, r.ID, "nudge", 1)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case rs.State == store.StepPending:
				delayed = r
				if !strings.Contains(rs.Outcome, "wecom limit of 1/day to a member reached: delayed to 2025-03-04 09:") {
					t.Errorf("delayed step outcome %q", rs.Outcome)
				}
			case rs.State == store.StepSkipped:
				skipped = r
				if rs.Outcome != "wecom limit of 1/day to a member reached: skipped" {
					t.Errorf("skipped step outcome %q", rs.Outcome)
				}
			}
		}
		if delayed.ID == 0 || skipped.ID == 0 || skipped.Workflow != "mass-skip" {
			t.Fatalf("want one delayed and one skipped run (mass-skip): %+v / %+v", delayed, skipped)
		}
		// Midnight in Beijing starts a new day, but quiet hours hold the
		// message until 09:00, spread.
		release := at(4, 9, 0).Add(spread(delayed.ID, 5*time.Minute))
		if !delayed.WakeAt.Equal(release) {
			t.Errorf("delayed to %v, want %v", delayed.WakeAt.In(shanghai), release.In(shanghai))
		}
		h.runUntil(at(4, 23, 0))
		perDay := map[string]int{}
		for _, s := range h.sender.toMembers() {
			if s.out.To == "wecom-Q" {
				perDay[s.at.In(shanghai).Format("01-02")]++
			}
		}
		if diff := cmp.Diff(map[string]int{"03-03": 1, "03-04": 1}, perDay); diff != "" {
			t.Errorf("WeCom messages to Q per day (-want +got):\n%s", diff)
		}
		if n, _ := h.s.QuotaUsed(h.ctx, m, "wecom", at(4, 0, 0)); n != 1 {
			t.Errorf("quota used on the 4th: %d, want 1", n)
		}
		h.noErrors()
	}, func(o *Options) { o.Quotas = map[string]Quota{"wecom": {Limit: 1}} })
}

// TestWeComMassLimitConcurrentWakes: the wakes of many workflows for one
// member run at the same time; exactly the quota goes out.
func TestWeComMassLimitConcurrentWakes(t *testing.T) {
	forEach(t, at(3, 15, 0), func(t *testing.T, h *harness) {
		const n = 6
		for i := range n {
			h.put(fmt.Sprintf(massSend, fmt.Sprintf("mass-%d", i), ""))
		}
		m := h.member("Q", "wecom", "g1")
		h.event(events.TypeStoreVisited, m, `{}`)
		var wg sync.WaitGroup
		for _, task := range h.q.take(h.clock.Now().Add(time.Minute)) {
			wg.Add(1)
			go func() { defer wg.Done(); h.deliver(task) }()
		}
		wg.Wait()
		h.runUntil(at(3, 20, 0))
		if got := len(h.sender.toMembers()); got != 2 {
			t.Fatalf("%d messages on one day with a quota of 2", got)
		}
	}, func(o *Options) { o.Quotas = map[string]Quota{"wecom": {Limit: 2}} })
}

const memberZoneSend = `name: tz
trigger:
  event: store.visited
entry:
  brand: camellia
  re_entry: always
goal: none
send_rules:
  time_zone: member
  quiet_hours: 22:00-08:00
steps:
  - id: wait
    wait: 2h
  - id: nudge
    send: recall
`

// TestQuietHoursInMemberZone: with time_zone: member the quiet hours are
// read in the member's own zone, across a day boundary there; a member
// without one falls back to their store's zone.
func TestQuietHoursInMemberZone(t *testing.T) {
	ny := mustZone("America/New_York")
	// 2025-03-03 10:30 Shanghai; the message is due at 12:30 Shanghai,
	// which is 23:30 on the 2nd in New York: quiet there until 08:00 on
	// the 3rd, New York time.
	forEach(t, at(3, 10, 30), func(t *testing.T, h *harness) {
		h.put(memberZoneSend)
		nyM := h.member("Ny", "wecom", "g1") // the guide's store is in Shanghai
		shM := h.member("Sh", "wecom", "g1")
		if err := h.s.SetMemberTimeZone(h.ctx, nyM, "America/New_York"); err != nil {
			t.Fatal(err)
		}
		h.event(events.TypeStoreVisited, nyM, `{}`)
		h.event(events.TypeStoreVisited, shM, `{}`)
		h.runUntil(at(3, 13, 0))
		msgs := h.sender.toMembers()
		if len(msgs) != 1 || msgs[0].out.To != "wecom-Sh" || !msgs[0].at.Equal(at(3, 12, 30)) {
			t.Fatalf("by 13:00 Shanghai only the Shanghai member's message is out at 12:30: %+v", msgs)
		}
		run := h.only(nyM)
		want := time.Date(2025, 3, 3, 8, 0, 0, 0, ny).Add(spread(run.ID, 5*time.Minute))
		if !run.WakeAt.Equal(want) {
			t.Fatalf("New York member held until %v, want %v (08:00 New York on the 3rd)", run.WakeAt.In(ny), want.In(ny))
		}
		rs, _ := h.s.RunStep(h.ctx, run.ID, "nudge", 1)
		if !strings.Contains(rs.Outcome, "held by the send rules until 2025-03-03 08:0") || !strings.Contains(rs.Outcome, "EST") {
			t.Errorf("outcome %q, want the hold in New York time", rs.Outcome)
		}
		h.runUntil(at(4, 0, 0))
		msgs = h.sender.toMembers()
		if len(msgs) != 2 || !msgs[1].at.Equal(want) {
			t.Fatalf("the New York member's message: %+v, want at %v", msgs, want)
		}
		if local := msgs[1].at.In(ny); local.Hour() != 8 || local.Day() != 3 {
			t.Errorf("went at %v New York time", local)
		}
		h.noErrors()
	})
}

// recAssigner records what assign_guide steps ask for.
type recAssigner struct {
	mu   sync.Mutex
	reqs []AssignRequest
}

func (a *recAssigner) Assign(_ context.Context, r AssignRequest) (string, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reqs = append(a.reqs, r)
	if r.Strategy == workflows.AssignPool {
		return "", "", ErrNoGuide
	}
	return "g1", "sh1", nil
}

// TestAssignGuideOptions: the step's strategy, store, distance and
// fallback reach the assigner; the store comes from the step, else the
// trigger event; the location from the event's attributes.
func TestAssignGuideOptions(t *testing.T) {
	rec := &recAssigner{}
	forEach(t, at(3, 10, 0), func(t *testing.T, h *harness) {
		rec.reqs = nil
		for name, step := range map[string]string{
			"by-store":      "assign_guide: store\n    fallback: nearest\n    max_distance_km: 15",
			"fixed-store":   "assign_guide: store\n    store_id: sh1",
			"near":          "assign_guide: nearest\n    max_distance_km: 30\n    fallback: online_pool",
			"pool-only":     "assign_guide: pool",
			"near-fallback": "assign_guide: nearest",
		} {
			h.put(fmt.Sprintf("name: %s\ntrigger:\n  event: store.visited\nentry:\n  brand: camellia\n  re_entry: always\nsteps:\n  - id: assign\n    %s\n    keep_current: false\n", name, step))
		}
		m := h.member("A", "wecom", "") // no guide yet
		h.event(events.TypeStoreVisited, m, `{"store_id":"ldn","lat":"51.5","lng":"-0.12"}`)
		h.runUntil(at(3, 11, 0))
		lat, lng := 51.5, -0.12
		got := map[string]AssignRequest{}
		for _, r := range rec.reqs {
			got[r.Strategy+"/"+r.StoreID+"/"+r.Fallback] = r
		}
		want := map[string]AssignRequest{
			"store/ldn/nearest": {MemberID: m, Brand: "camellia", Strategy: "store", StoreID: "ldn", Lat: &lat, Lng: &lng, MaxDistanceKm: 15, Fallback: "nearest"},
			"store/sh1/none":    {MemberID: m, Brand: "camellia", Strategy: "store", StoreID: "sh1", Lat: &lat, Lng: &lng, Fallback: "none"},
			"nearest//pool":     {MemberID: m, Brand: "camellia", Strategy: "nearest", Lat: &lat, Lng: &lng, MaxDistanceKm: 30, Fallback: "pool"},
			"pool//none":        {MemberID: m, Brand: "camellia", Strategy: "pool", Lat: &lat, Lng: &lng, Fallback: "none"},
			"nearest//none":     {MemberID: m, Brand: "camellia", Strategy: "nearest", Lat: &lat, Lng: &lng, Fallback: "none"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("assignment requests (-want +got):\n%s", diff)
		}
		h.noErrors()
	}, func(o *Options) { o.Assigner = rec })
}

// TestDryRunWeComMassLimit: the dry run shows a second message of the
// day held by WeCom's limit until the next day.
func TestDryRunWeComMassLimit(t *testing.T) {
	wf := loadWorkflow(t, `name: twice
trigger:
  event: store.visited
entry:
  brand: camellia
goal: none
send_rules:
  quiet_hours: none
steps:
  - id: first
    send: recall
  - id: second
    send: recall
`)
	opts := dryRunOptions(t)
	opts.Quotas = map[string]Quota{"wecom": {Limit: 1}}
	m := MemberFixture{ID: 7, Name: "Lily", Channel: "wecom", GuideID: "g1", GuideName: "小王", StoreTimeZone: "Asia/Shanghai"}
	tl, err := DryRun(opts, wf, m, nil, at(3, 15, 0))
	if err != nil {
		t.Fatal(err)
	}
	text := timelineText(t, tl)
	for _, want := range []string{"wecom limit of 1/day to a member reached: delayed to 2025-03-04 00:0", "2025-03-04 00:0"} {
		if !strings.Contains(text, want) {
			t.Errorf("timeline lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "sends recall on wecom"); n != 2 {
		t.Errorf("%d sends in the timeline, want 2 (the second the next day):\n%s", n, text)
	}
}
