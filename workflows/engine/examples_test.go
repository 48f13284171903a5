package engine

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
)

// TestExamplesPut stores every shipped example, so they never rot for the
// engine either.
func TestExamplesPut(t *testing.T) {
	forEach(t, at(3, 10, 0), func(t *testing.T, h *harness) {
		names, err := fs.Glob(configs.ExampleWorkflows(), "*.yaml")
		if err != nil || len(names) < 3 {
			t.Fatalf("examples: %v, %v", names, err)
		}
		for _, n := range names {
			v := h.putExample(strings.TrimSuffix(n, ".yaml"))
			if !v.Created || len(v.Version) != 16 {
				t.Errorf("%s: %+v", n, v)
			}
		}
		ws, err := h.s.Workflows(h.ctx, store.WorkflowFilter{Brand: "camellia", EnabledOnly: true})
		if err != nil || len(ws) != len(names) {
			t.Errorf("enabled workflows: %v, %v", ws, err)
		}
	})
}

// TestNewMemberWelcome runs the shipped welcome journey for a member who
// joins late in the evening and never buys (the welcome message itself is
// the channel's; the workflow starts after it).
func TestNewMemberWelcome(t *testing.T) {
	forEach(t, at(3, 22, 30), func(t *testing.T, h *harness) {
		h.putExample("new-member-welcome")
		lily := h.member("Lily", "wecom", "g1")
		h.event(events.TypeMemberJoined, lily, `{"state":"s:sh1"}`)
		h.fire()

		run := h.only(lily)
		tasks, _ := h.s.GuideTasks(h.ctx, store.GuideTaskFilter{RunID: run.ID})
		if len(tasks) != 1 || !strings.Contains(tasks[0].Title, "新会员 Lily") || !tasks[0].DueAt.Equal(at(4, 22, 30)) ||
			!strings.Contains(tasks[0].Note, "静安店") {
			t.Errorf("guide tasks: %+v", tasks)
		}
		if g := h.sender.toGuides(); len(g) != 1 || g[0].out.To != "wang" || g[0].channel != "wecom" || !strings.Contains(g[0].out.Text, "新会员 Lily") {
			t.Errorf("guide notices: %+v", g)
		}
		if run.Step != "wait_3d" || !run.WakeAt.Equal(at(6, 22, 30)) || run.QueuedAt != nil {
			t.Errorf("after the first steps: %+v", run)
		}
		if len(h.q.pending()) != 0 {
			t.Errorf("a wake 3 days away is in the queue: %+v", h.q.pending())
		}

		// Three days later, in quiet hours: the coupon waits for 09:00
		// (plus the run's spread), never before.
		h.runUntil(at(7, 12, 0))
		msgs := h.sender.toMembers()
		if len(msgs) != 1 {
			t.Fatalf("after 3 days: %d messages, want the coupon", len(msgs))
		}
		c := msgs[0]
		release := at(7, 9, 0)
		if c.at.Before(release) || !c.at.Before(release.Add(5*time.Minute)) || c.out.Kind != "news" || c.channel != "wecom" ||
			c.out.To != "wecom-Lily" || c.out.Via != "wang" || c.out.ToParty != adapters.PartyMember ||
			!strings.Contains(c.out.Fields["url"], "NEW-MEMBER-50-") || c.meta.Queue != "default" {
			t.Errorf("coupon at %v: %+v", c.at.In(shanghai), c)
		}
		if want := release.Add(spread(run.ID, 5*time.Minute)); !c.at.Equal(want) {
			t.Errorf("coupon at %v, want the run's spread %v", c.at.In(shanghai), want.In(shanghai))
		}
		if c.out.IdempotencyKey != fmt.Sprintf("wf:%d:coupon:1", run.ID) {
			t.Errorf("coupon key %q", c.out.IdempotencyKey)
		}

		// A month after joining: the recall through the guide, then the end.
		h.runUntil(at(31, 23, 0).AddDate(0, 0, 7))
		msgs = h.sender.toMembers()
		if len(msgs) != 2 || !strings.Contains(msgs[1].out.Text, "新款") {
			t.Fatalf("after a month: %+v", msgs)
		}
		run = h.only(lily)
		if run.State != store.RunDone || run.EndReason != "no purchase in the first month" || run.Sent != 2 {
			t.Errorf("run: %+v", run)
		}
		tasks, _ = h.s.GuideTasks(h.ctx, store.GuideTaskFilter{RunID: run.ID})
		// Both WeCom messages went out as message tasks the guide sends:
		// each gave them a task to confirm it.
		if len(tasks) != 3 || !strings.Contains(tasks[1].Title, "确认发送「first_purchase_coupon」给 Lily") ||
			!strings.Contains(tasks[2].Title, "确认发送「recall」给 Lily") {
			t.Errorf("the coupon and the recall through the guide made no confirmation tasks: %+v", tasks)
		}
		want := []string{"assign:done", "say_hello:done", "wait_3d:done", "not_bought_yet:done",
			"coupon:done", "wait_27d:done", "recall:done", "done:done"}
		if diff := cmp.Diff(want, h.trail(run.ID)); diff != "" {
			t.Errorf("trail (-want +got):\n%s", diff)
		}
		h.noErrors()

		st, err := h.e.Stats(h.ctx, "camellia", "new-member-welcome")
		if err != nil {
			t.Fatal(err)
		}
		if st.Entered != 1 || st.Done != 1 || st.Sent != 2 || st.Steps[0].ID != "assign" || st.Steps[6].Reached != 1 || st.Errors != 0 {
			t.Errorf("stats: %+v", st)
		}
	})
}

// TestGoalEndsWaitingRun: a purchase while the run waits ends it as
// converted; its queued wake does nothing.
func TestGoalEndsWaitingRun(t *testing.T) {
	forEach(t, at(3, 15, 0), func(t *testing.T, h *harness) {
		h.putExample("new-member-welcome")
		ann := h.member("Ann", "wecom", "g1")
		h.event(events.TypeMemberJoined, ann, `{}`)
		h.fire()
		run := h.only(ann)
		// 2h50m before the wake: the sweeper hands it to the queue.
		h.runUntil(at(6, 14, 30))
		if p := h.q.pending(); len(p) != 1 || !p[0].at.Equal(at(6, 15, 0)) {
			t.Fatalf("queued wakes: %+v", p)
		}
		h.event(events.TypePurchaseCompleted, ann, `{"order":{"id":"o1","total":299}}`)
		run = h.only(ann)
		if run.State != store.RunConverted || run.WakeAt != nil || run.EndReason != "goal: purchase.completed" {
			t.Fatalf("after the purchase: %+v", run)
		}
		before := len(h.sender.toMembers())
		h.runUntil(at(20, 12, 0))
		if got := len(h.sender.toMembers()); got != before {
			t.Errorf("a converted run sent %d more messages", got-before)
		}
		if trail := h.trail(run.ID); trail[len(trail)-1] != "wait_3d:cancelled" {
			t.Errorf("trail %v", trail)
		}
		st, _ := h.e.Stats(h.ctx, "camellia", "new-member-welcome")
		if st.Converted != 1 || st.Active != 0 {
			t.Errorf("stats: %+v", st)
		}
		h.noErrors()
	})
}

// TestRepurchase: a purchase of a 30-day product starts a reminder three
// days before it runs out, inside the send window; a reply gives the guide
// a task; the next purchase converts the run and starts the next one.
func TestRepurchase(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		h.putExample("repurchase-replenishment")
		bo := h.member("Bo", "wecom", "g1")
		order := `{"order":{"id":"o-1","total":199,"items":[{"sku":"c1","name":"洁面乳","qty":1,"price":199,"cycle_days":30},{"sku":"bag","name":"袋","qty":1,"price":0}]}}`
		h.event(events.TypePurchaseCompleted, bo, order)
		run := h.only(bo)
		if run.Step != "wait_refill" {
			t.Fatalf("run: %+v", run)
		}
		h.runUntil(at(3, 13, 0))
		run = h.only(bo)
		if !run.WakeAt.Equal(at(30, 12, 0)) {
			t.Fatalf("waits until %v, want 27 days after the purchase", run.WakeAt.In(shanghai))
		}
		h.runUntil(at(30, 12, 30))
		msgs := h.sender.toMembers()
		if len(msgs) != 1 || !strings.Contains(msgs[0].out.Text+msgs[0].out.Fields["title"]+msgs[0].out.Fields["description"], "洁面乳") {
			t.Fatalf("reminder: %+v", msgs)
		}
		h.clock.Set(at(31, 9, 0))
		h.event(events.TypeMessageReceived, bo, `{"text":"好的，帮我留一支","channel":"wecom"}`)
		h.fire()
		run = h.only(bo)
		if run.State != store.RunActive || run.Step != "follow_up" {
			// follow_up is the last step: the run is done after it.
			if run.State != store.RunDone {
				t.Fatalf("after the reply: %+v", run)
			}
		}
		tasks, _ := h.s.GuideTasks(h.ctx, store.GuideTaskFilter{RunID: run.ID})
		if len(tasks) != 2 || !strings.Contains(tasks[0].Title, "确认发送「repurchase_reminder」") ||
			!strings.Contains(tasks[1].Title, "o-1") || !tasks[1].DueAt.Equal(at(31, 13, 0)) {
			t.Errorf("the reminder's confirmation and the follow-up task: %+v", tasks)
		}
		// The next purchase starts the next reminder.
		h.clock.Set(at(31, 15, 0))
		h.event(events.TypePurchaseCompleted, bo, strings.Replace(order, "o-1", "o-2", 1))
		runs := h.runs(bo)
		if len(runs) != 2 || runs[1].State != store.RunActive || runs[1].Version != run.Version {
			t.Errorf("runs after the second purchase: %+v", runs)
		}
		// While it waits, another purchase converts it and starts a new one.
		h.clock.Set(at(31, 16, 0))
		h.event(events.TypePurchaseCompleted, bo, strings.Replace(order, "o-1", "o-3", 1))
		runs = h.runs(bo)
		if len(runs) != 3 || runs[1].State != store.RunConverted || runs[2].State != store.RunActive {
			t.Errorf("runs after the third purchase: %+v", runs)
		}
		h.noErrors()
	})
}

// TestDormantWinBack runs the schedule-triggered example: two replicas
// run the schedule at once and the members enter once.
func TestDormantWinBack(t *testing.T) {
	forEach(t, at(3, 9, 0), func(t *testing.T, h *harness) {
		h.putExample("dormant-win-back")
		mei := h.member("Mei", "wecom", "g1")
		gold := h.member("Gold", "wecom", "g1")
		if err := h.s.SetMembership(h.ctx, gold, "camellia", "gold", nil); err != nil {
			t.Fatal(err)
		}
		fresh := h.member("Fresh", "wecom", "g1")
		never := h.member("Never", "wecom", "g1")
		optOut := h.member("OptOut", "wecom", "g1")
		h.s.AddMemberTags(h.ctx, optOut, "camellia", []string{"no_marketing"}, h.clock.Now())
		for m, ago := range map[int64]int{mei: 100, gold: 95, fresh: 10, optOut: 100} {
			h.clock.Set(at(3, 9, 0).AddDate(0, 0, -ago))
			h.event(events.TypePurchaseCompleted, m, `{"order":{"id":"x","total":88}}`)
		}
		_ = never
		h.clock.Set(at(3, 10, 0).Add(20 * time.Second))
		other, err := New(h.e.opts)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan int)
		for _, e := range []*Engine{h.e, other} {
			go func() {
				n, err := e.RunSchedules(h.ctx, h.clock.Now())
				if err != nil {
					t.Error(err)
				}
				done <- n
			}()
		}
		if n := <-done + <-done; n != 2 {
			t.Fatalf("the schedule started %d runs, want 2 (Mei and Gold)", n)
		}
		h.runUntil(at(3, 10, 5))
		msgs := h.sender.toMembers()
		if len(msgs) != 2 || !strings.Contains(msgs[0].out.Fields["url"], "WIN-BACK-30-") {
			t.Fatalf("win-back messages: %+v", msgs)
		}
		// Mei replies; Gold does not and is called after 7 days.
		h.clock.Set(at(4, 11, 0))
		h.event(events.TypeMessageReceived, mei, `{"text":"有新品吗"}`)
		h.fire()
		h.runUntil(at(11, 12, 0))
		for _, m := range []int64{mei, gold} {
			run := h.only(m)
			tasks, _ := h.s.GuideTasks(h.ctx, store.GuideTaskFilter{RunID: run.ID})
			if run.State != store.RunDone || len(tasks) != 2 || !strings.Contains(tasks[1].Title, "回访沉睡会员") {
				t.Errorf("member %d: run %+v, tasks %+v", m, run, tasks)
			}
		}
		if trail := h.trail(h.only(gold).ID); !strings.Contains(strings.Join(trail, " "), "by_level:done call:done") {
			t.Errorf("gold trail %v", trail)
		}
		// The next day the firing repeats, but re-entry waits 180 days.
		h.runUntil(at(12, 10, 30))
		if len(h.runs(mei)) != 1 {
			t.Error("Mei entered again within 180 days")
		}
		h.noErrors()
	})
}

// TestStoreVisitRecall runs the shipped recall after a store visit (离店召回):
// a member who buys within three days of a visit converts, with no task
// and no nudge; one who does not is given a guide of the store they
// visited, whose task and nudge (through the guide, on the member's own
// channel) come three days after the visit.
func TestStoreVisitRecall(t *testing.T) {
	visited := &storeGuides{guides: map[string]string{"sh1": "g1"}}
	forEach(t, at(3, 15, 0), func(t *testing.T, h *harness) {
		h.putExample("store-visit-recall")
		mia := h.member("Mia", "wecom", "g1")    // bound already; buys
		nora := h.member("Nora", "wecom", "")    // no guide yet; does not buy
		dan := h.member("Dan", "dingtalk", "g3") // a DingTalk member; does not buy
		for _, m := range []int64{mia, nora, dan} {
			h.event(events.TypeStoreVisited, m, `{"store_id":"sh1"}`)
		}
		h.fire()
		if run := h.only(nora); run.Step != "wait_3d" || !run.WakeAt.Equal(at(6, 15, 0)) {
			t.Fatalf("after the visit: %+v", run)
		}
		if v, err := h.s.Member(h.ctx, nora, "camellia"); err != nil || len(v.Bindings) != 1 || v.Bindings[0].StoreID != "sh1" {
			t.Fatalf("Nora was not given a guide of the store she visited: %+v, %v", v, err)
		}

		// Mia buys two days later: converted, nothing more for her.
		h.runUntil(at(5, 11, 0))
		h.event(events.TypePurchaseCompleted, mia, `{"order":{"id":"o-mia","total":399}}`)
		run := h.only(mia)
		if run.State != store.RunConverted || run.EndReason != "goal: purchase.completed" {
			t.Fatalf("Mia after buying: %+v", run)
		}

		h.runUntil(at(7, 12, 0))
		if tasks, _ := h.s.GuideTasks(h.ctx, store.GuideTaskFilter{RunID: run.ID}); len(tasks) != 0 {
			t.Errorf("Mia's guide got tasks: %+v", tasks)
		}
		byMember := map[string]sent{}
		for _, m := range h.sender.toMembers() {
			byMember[m.out.To] = m
		}
		if _, ok := byMember["wecom-Mia"]; ok || len(byMember) != 2 {
			t.Fatalf("nudges: %+v", h.sender.toMembers())
		}

		// Nora: her guide's task, and the nudge through her guide on WeCom.
		run = h.only(nora)
		if run.State != store.RunDone || run.EndReason != "visited, no purchase within 3 days" || run.Sent != 1 {
			t.Errorf("Nora's run: %+v", run)
		}
		tasks, _ := h.s.GuideTasks(h.ctx, store.GuideTaskFilter{RunID: run.ID})
		if len(tasks) != 2 || tasks[0].Title != "离店召回：Nora，3 天前到店未购买，问问有没有看中的款" || !tasks[0].DueAt.Equal(at(7, 15, 0)) ||
			!strings.Contains(tasks[0].Note, "门店 静安店") || !strings.Contains(tasks[1].Title, "确认发送「store_visit_recall」给 Nora") {
			t.Errorf("Nora's guide tasks: %+v", tasks)
		}
		n := byMember["wecom-Nora"]
		if n.channel != "wecom" || n.out.Kind != "text" || n.out.ToParty != adapters.PartyMember || n.out.Via != "wang" ||
			!strings.HasPrefix(n.out.Text, "Nora好，我是静安店的") || !strings.Contains(n.out.Text, "前几天您来店里看了看") ||
			!n.at.Equal(at(6, 15, 0)) || n.out.IdempotencyKey != fmt.Sprintf("wf:%d:nudge:1", run.ID) {
			t.Errorf("Nora's nudge at %v: %+v", n.at.In(shanghai), n)
		}
		want := []string{"guide:done", "wait_3d:done", "call:done", "nudge:done", "done:done"}
		if diff := cmp.Diff(want, h.trail(run.ID)); diff != "" {
			t.Errorf("Nora's trail (-want +got):\n%s", diff)
		}

		// Dan: the DingTalk variant, markdown, through his guide 小李.
		d := byMember["dingtalk-Dan"]
		if d.channel != "dingtalk" || d.out.Kind != "markdown" || d.out.To != "dingtalk-Dan" || d.out.Fields["title"] != "小李：上次到店的那几件" ||
			!strings.Contains(d.out.Text, "我是静安店的 **小李**") || !strings.Contains(d.out.Text, "南京西路1号") {
			t.Errorf("Dan's nudge: %+v", d)
		}
		h.noErrors()
		if reqs := visited.asked(); len(reqs) != 1 || reqs[0].Strategy != workflows.AssignStore || reqs[0].StoreID != "sh1" ||
			reqs[0].Fallback != workflows.AssignNearest || reqs[0].MaxDistanceKm != 10 {
			t.Errorf("assignments asked: %+v", reqs)
		}

		st, err := h.e.Stats(h.ctx, "camellia", "store-visit-recall")
		if err != nil {
			t.Fatal(err)
		}
		if st.Entered != 3 || st.Converted != 1 || st.Done != 2 || st.Sent != 2 || st.Errors != 0 {
			t.Errorf("stats: %+v", st)
		}
	}, func(o *Options) { visited.reset(); o.Assigner = visited })
}

// storeGuides assigns a member to a given guide of the store asked for,
// and records what was asked.
type storeGuides struct {
	guides map[string]string // store → guide
	mu     sync.Mutex
	reqs   []AssignRequest
}

func (a *storeGuides) Assign(_ context.Context, r AssignRequest) (string, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reqs = append(a.reqs, r)
	if g, ok := a.guides[r.StoreID]; ok {
		return g, r.StoreID, nil
	}
	return "", "", ErrNoGuide
}

func (a *storeGuides) asked() []AssignRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reqs)
}

func (a *storeGuides) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reqs = nil
}
