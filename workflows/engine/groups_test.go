package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
)

// fakeGroups stands in for the channels' groups: it answers each call
// with the next result and records the requests with their message.
type fakeGroups struct {
	mu      sync.Mutex
	results []groupResult
	got     []GroupSend
	msgs    []*adapters.Outbound
}

type groupResult struct {
	sent GroupSent
	err  error
}

func (f *fakeGroups) SendGroups(_ context.Context, req GroupSend) (*GroupSent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := req.Render("wecom")
	if err != nil {
		return nil, err
	}
	f.got, f.msgs = append(f.got, req), append(f.msgs, m)
	r := groupResult{sent: GroupSent{Groups: 1, Owners: 1}}
	if len(f.results) > 0 {
		r, f.results = f.results[0], f.results[1:]
	}
	return &r.sent, r.err
}

const groupsDay = `name: %s
trigger:
  event: x.%s
entry:
  brand: camellia
  re_entry: always
goal: none
send_rules:
  quiet_hours: 21:00-09:00
steps:
  - id: announce
    send_groups: group_member_day
    to: %s
`

// TestSendGroupsStep: the engine's part of a send_groups step, through
// a stand-in for the channels' groups (the wire test is the app's
// TestWeComGroupWorkflowWithRedis): the selection and the rendered
// message carry nothing of the member; quiet hours hold it; a channel
// failing for a while is retried with the same key; groups served today
// or none at all skip it with their reason; a refused message fails it;
// the funnel counts what happened, and whether the owner sent the task.
func TestSendGroupsStep(t *testing.T) {
	fg := &fakeGroups{}
	forEach(t, at(3, 22, 0), func(t *testing.T, h *harness) {
		fg.mu.Lock()
		fg.got, fg.msgs = nil, nil
		fg.results = []groupResult{
			{err: fmt.Errorf("adding group message task: %w", adapters.ErrRateLimited)},
			{sent: GroupSent{Groups: 2, Owners: 1, Taken: 1}},
			{sent: GroupSent{Taken: 2}},
			{},
			{err: fmt.Errorf("adding group message task: %w", adapters.ErrInvalidMessage)},
		}
		fg.mu.Unlock()
		h.put(fmt.Sprintf(groupsDay, "member-day", "member_day", "store"))
		kai := h.member("Kai", "wecom", "g1")
		h.event("x.member_day", kai, `{}`)
		h.fire()
		run := h.only(kai)
		if steps, _ := h.s.RunSteps(h.ctx, run.ID); len(steps) != 1 || steps[0].State != store.StepPending || len(fg.got) != 0 {
			t.Fatalf("in quiet hours: steps %+v, %d sends", steps, len(fg.got))
		}
		h.runUntil(at(4, 9, 30))
		h.runUntil(at(4, 10, 30)) // the retry after the rate limit
		run = h.only(kai)
		if run.State != store.RunDone || len(fg.got) != 2 {
			t.Fatalf("run %s after %d sends: %v", run.State, len(fg.got), h.trail(run.ID))
		}
		if fg.got[0].Key != fg.got[1].Key || fg.got[0].StoreID != "sh1" || fg.got[0].GuideID != "" || fg.got[0].Brand != "camellia" {
			t.Errorf("requests = %+v", fg.got)
		}
		if m := fg.msgs[1]; m.Kind != "text" || m.Text != "静安店会员日：本周六到店出示山茶花会员码，全场95折。" || slices.Contains([]string{m.To, m.Via}, "wecom-Kai") {
			t.Errorf("message = %+v", m)
		}

		// Three more members: groups served today, none, a refusal.
		var reasons []string
		for _, name := range []string{"Lu", "Mo", "Ni"} {
			id := h.member(name, "wecom", "g1")
			h.event("x.member_day", id, `{}`)
			h.fire()
			steps, err := h.s.RunSteps(h.ctx, h.only(id).ID)
			if err != nil || len(steps) != 1 {
				t.Fatalf("%s: %+v %v", name, steps, err)
			}
			reasons = append(reasons, steps[0].State+":"+steps[0].Reason)
		}
		if want := []string{"skipped:group_limit", "skipped:no_groups", "failed:error"}; !slices.Equal(reasons, want) {
			t.Errorf("outcomes = %v, want %v", reasons, want)
		}
		st, err := h.e.Stats(h.ctx, "camellia", "member-day")
		if err != nil {
			t.Fatal(err)
		}
		sc := st.Steps[0].Sends
		if st.Sent != 1 || sc == nil || sc.Sent != 1 || sc.Skipped != 2 || sc.SkippedBy["group_limit"] != 1 || sc.SkippedBy["no_groups"] != 1 || sc.Failed != 1 {
			t.Errorf("stats: sent %d, step sends %+v", st.Sent, sc)
		}
		// The owner's task for the visit's groups, as the groups' keeper
		// records it: not confirmed, then sent to one of the groups.
		key := fg.got[1].Key
		for _, id := range []string{"wr1", "wr2"} {
			if _, err := h.s.ReserveGroupSend(h.ctx, "wecom", id, "2026-03-04", key); err != nil {
				t.Fatal(err)
			}
			if err := h.s.SetGroupSendMsgID(h.ctx, "wecom", id, "2026-03-04", "li", "msg1"); err != nil {
				t.Fatal(err)
			}
		}
		deliveries := func() SendCounts {
			t.Helper()
			st, err := h.e.Stats(h.ctx, "camellia", "member-day")
			if err != nil {
				t.Fatal(err)
			}
			return *st.Steps[0].Sends
		}
		if sc := deliveries(); sc.Sent != 1 || sc.NotConfirmed != 1 || sc.Delivered != 0 || sc.Undelivered != 0 {
			t.Errorf("step sends before the owner sent it: %+v", sc)
		}
		if err := h.s.SetGroupSendDeliveries(h.ctx, "wecom", "msg1", map[string]string{"wr1": store.GroupDeliveryDelivered}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if sc := deliveries(); sc.Sent != 1 || sc.NotConfirmed != 0 || sc.Delivered != 1 || sc.Undelivered != 0 {
			t.Errorf("step sends once the owner sent it: %+v", sc)
		}

		// A guide's groups: the guide, not the store.
		fg.mu.Lock()
		fg.got, fg.msgs, fg.results = nil, nil, nil
		fg.mu.Unlock()
		h.put(fmt.Sprintf(groupsDay, "guide-day", "guide_day", "guide"))
		h.event("x.guide_day", kai, `{}`)
		h.fire()
		if len(fg.got) != 1 || fg.got[0].GuideID != "g1" || fg.got[0].StoreID != "" {
			t.Errorf("requests = %+v", fg.got)
		}
		nobody := h.member("Nobody", "wecom", "")
		h.event("x.guide_day", nobody, `{}`)
		h.fire()
		if steps, _ := h.s.RunSteps(h.ctx, h.runOf(nobody, "guide-day").ID); len(steps) != 1 || steps[0].Reason != "no_guide" || len(fg.got) != 1 {
			t.Errorf("a member without a guide: %+v", steps)
		}
		h.noErrors()
	}, func(o *Options) { o.Groups, o.GroupKinds = fg, map[string][]string{"wecom": {"text", "news"}} })
}
