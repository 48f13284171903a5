package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// hookServer is the brand's system: it checks each webhook's signature and
// answers with the status the test sets.
type hookServer struct {
	*httptest.Server
	secret []byte
	status atomic.Int32
	mu     sync.Mutex
	got    []http.Header
	bodies [][]byte
	bad    int
}

func newHookServer(t *testing.T, secret string) *hookServer {
	hs := &hookServer{secret: []byte(secret)}
	hs.status.Store(http.StatusOK)
	hs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hs.mu.Lock()
		want := SignWebhook(hs.secret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), body)
		if r.Header.Get("webhook-signature") != want || r.Header.Get("Content-Type") != "application/cloudevents+json" {
			hs.bad++
		}
		hs.got = append(hs.got, r.Header.Clone())
		hs.bodies = append(hs.bodies, body)
		hs.mu.Unlock()
		w.WriteHeader(int(hs.status.Load()))
	}))
	t.Cleanup(hs.Close)
	return hs
}

func (hs *hookServer) calls() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return len(hs.got)
}

// fixedAssigner assigns every member to one guide.
type fixedAssigner struct{ guide, store string }

func (a fixedAssigner) Assign(context.Context, AssignRequest) (string, string, error) {
	return a.guide, a.store, nil
}

const allKinds = `name: all-kinds
trigger:
  event: store.visited
entry:
  brand: camellia
  re_entry: always
goal: none
send_rules:
  quiet_hours: none
steps:
  - id: assign
    assign_guide: nearest
  - id: hello
    send: welcome
    priority: high
  - id: task
    guide_task: "回访 {{.Member.Name}}"
    due_in: 2h
  - id: mark
    tag: [visited, vip]
  - id: points
    award_points: 50
    reason: 到店礼
  - id: hook
    webhook: %s/hook
    event: member.visited
    secret: crm
  - id: wait_1h
    wait: 1h
  - id: reply
    wait_for: message.received
    filter: event.text != ""
    timeout: 1d
    on_event: by_level
    on_timeout: untag_vip
  - id: by_level
    switch: member.level
    cases:
      gold: vip_call
    default: untag_vip
  - id: vip_call
    guide_task: "金卡会员 {{.Member.Name}} 回复了"
    next: check
  - id: untag_vip
    untag: vip
  - id: check
    if: '"visited" in member.tags'
    then: until
    else: end
  - id: until
    wait:
      until: run.started_at + hours(5)
  - id: bye
    end: all done
`

const onVIP = `name: on-vip
trigger:
  event: member.tagged
  filter: event.tag == "vip"
entry:
  brand: camellia
goal: none
steps:
  - award_points: 10
    reason: VIP
`

// TestEveryStepKind runs a workflow with every step kind for a gold
// member on WeCom (who replies) and a member on DingTalk (who does not).
func TestEveryStepKind(t *testing.T) {
	hook := newHookServer(t, "s3cret")
	secrets := func(o *Options) {
		o.WebhookSecret = func(name string) ([]byte, error) {
			if name != "crm" {
				return nil, fmt.Errorf("no secret %q: %w", name, errPermanent)
			}
			return []byte("s3cret"), nil
		}
		o.Assigner = fixedAssigner{guide: "g1", store: "sh1"}
	}
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		h.put(fmt.Sprintf(allKinds, hook.URL))
		h.put(onVIP)
		kai := h.member("Kai", "wecom", "")
		h.s.SetMembership(h.ctx, kai, "camellia", "gold", nil)
		lu := h.member("Lu", "dingtalk", "g3")
		calls := hook.calls()

		h.event(events.TypeStoreVisited, kai, `{"store_id":"sh1"}`)
		h.event(events.TypeStoreVisited, lu, `{"store_id":"sh1"}`)
		h.fire()

		runK, runL := h.runOf(kai, "all-kinds"), h.runs(lu)[0]
		p, err := h.s.MemberProfile(h.ctx, "camellia", kai)
		if err != nil {
			t.Fatal(err)
		}
		if p.Binding == nil || p.Binding.GuideID != "g1" || p.Binding.Reason != "nearest" {
			t.Errorf("assign_guide: binding %+v", p.Binding)
		}
		if p.Membership.Points != 60 || cmp.Diff([]string{"vip", "visited"}, p.Tags) != "" {
			t.Errorf("points %d (want 50 + 10 from on-vip), tags %v", p.Membership.Points, p.Tags)
		}
		if lines, _ := h.s.PointsLines(h.ctx, kai, "camellia"); len(lines) != 2 || lines[0].Ref != fmt.Sprintf("wf:%d:points:1", runK.ID) {
			t.Errorf("ledger: %+v", lines)
		}
		msgs := h.sender.toMembers()
		if len(msgs) != 2 {
			t.Fatalf("hello messages: %+v", msgs)
		}
		byTo := map[string]sent{}
		for _, m := range msgs {
			byTo[m.out.To] = m
		}
		if k := byTo["wecom-Kai"]; k.channel != "wecom" || k.out.Via != "wang" || k.meta.Queue != "critical" {
			t.Errorf("hello to Kai: %+v", k)
		}
		if l := byTo["dingtalk-Lu"]; l.channel != "dingtalk" || l.out.Kind != "markdown" || l.out.Via != "" || l.meta.GuideID != "g3" {
			t.Errorf("hello to Lu: %+v", l)
		}
		var notices, confirms []sent
		for _, n := range h.sender.toGuides() {
			if strings.HasSuffix(n.out.IdempotencyKey, ":confirm:notify") {
				confirms = append(confirms, n)
			} else {
				notices = append(notices, n)
			}
		}
		if len(notices) != 2 || notices[0].channel == notices[1].channel {
			t.Errorf("task notices (one on WeCom to wang, one on DingTalk to li): %+v", notices)
		}
		// Kai's hello is a WeCom message task wang sends: wang is told to
		// confirm it; Lu's went out on DingTalk, with nothing to confirm.
		if len(confirms) != 1 || confirms[0].channel != "wecom" || confirms[0].out.To != "wang" {
			t.Errorf("confirmation notices (one on WeCom to wang): %+v", confirms)
		}
		if hook.calls()-calls != 2 || hook.bad != 0 {
			t.Fatalf("webhook calls %d, bad signatures %d", hook.calls()-calls, hook.bad)
		}
		hook.mu.Lock()
		var body webhookBody
		json.Unmarshal(hook.bodies[calls], &body)
		id := hook.got[calls].Get("webhook-id")
		hook.mu.Unlock()
		if body.Type != "member.visited" || !strings.HasPrefix(id, "wf:") || !strings.HasSuffix(id, ":hook:1") || body.Data.Workflow != "all-kinds" ||
			body.SpecVersion != "1.0" || body.ID != id || body.Source != "scrmgw/workflows/all-kinds" {
			t.Errorf("webhook %s: %+v", id, body)
		}

		// Kai replies two hours later; Lu never does.
		h.runUntil(at(3, 14, 0))
		h.event(events.TypeMessageReceived, kai, `{"text":"谢谢"}`)
		h.runUntil(at(5, 12, 0))
		runK, runL = h.runOf(kai, "all-kinds"), h.runs(lu)[0]
		wantK := []string{"assign:done", "hello:done", "task:done", "mark:done", "points:done", "hook:done", "wait_1h:done",
			"reply:done", "by_level:done", "vip_call:done", "check:done", "until:done", "bye:done"}
		if diff := cmp.Diff(wantK, h.trail(runK.ID)); diff != "" {
			t.Errorf("Kai's trail (-want +got):\n%s", diff)
		}
		wantL := []string{"assign:done", "hello:done", "task:done", "mark:done", "points:done", "hook:done", "wait_1h:done",
			"reply:done", "untag_vip:done", "check:done", "until:done", "bye:done"}
		if diff := cmp.Diff(wantL, h.trail(runL.ID)); diff != "" {
			t.Errorf("Lu's trail (-want +got):\n%s", diff)
		}
		if runK.State != store.RunDone || runK.EndReason != "all done" || !runK.EndedAt.Equal(at(3, 17, 0)) {
			t.Errorf("Kai's run: %+v (want done at 17:00, 5 hours after it started)", runK)
		}
		if !runL.EndedAt.Equal(at(4, 13, 0)) {
			t.Errorf("Lu's run ended at %v, want when wait_for timed out (past the until)", runL.EndedAt.In(shanghai))
		}
		if tags, _ := h.s.MemberTags(h.ctx, lu, "camellia"); cmp.Diff([]string{"visited"}, tags) != "" {
			t.Errorf("Lu's tags %v after untag", tags)
		}
		tasks, _ := h.s.GuideTasks(h.ctx, store.GuideTaskFilter{RunID: runK.ID})
		if len(tasks) != 3 || !strings.HasPrefix(tasks[0].Title, "确认发送「welcome」") || tasks[2].Title != "金卡会员 Kai 回复了" ||
			!tasks[1].DueAt.Equal(at(3, 14, 0)) {
			t.Errorf("Kai's tasks: %+v", tasks)
		}
		st, _ := h.e.Stats(h.ctx, "camellia", "all-kinds")
		if st.Entered != 2 || st.Done != 2 || st.Sent != 2 || st.Steps[9].ID != "vip_call" || st.Steps[9].Reached != 1 || st.Steps[10].Reached != 1 {
			t.Errorf("stats: %+v", st)
		}
		h.noErrors()
	}, secrets)
}

const hookOnly = `name: hook-only
trigger:
  event: store.visited
entry:
  brand: camellia
  re_entry: always
steps:
  - id: hook
    webhook: %s/hook
    secret: %s
  - id: after
    tag: hooked
`

// TestWebhookFailures: a 5xx is retried with backoff until it succeeds; a
// 4xx or a missing secret fails the run at once, recorded on the step.
func TestWebhookFailures(t *testing.T) {
	hook := newHookServer(t, "k")
	secrets := func(o *Options) {
		o.WebhookSecret = func(name string) ([]byte, error) {
			if name == "crm" {
				return []byte("k"), nil
			}
			return envSecret(name)
		}
	}
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		h.put(fmt.Sprintf(hookOnly, hook.URL, "crm"))
		m := h.member("W", "wecom", "g1")
		hook.status.Store(http.StatusBadGateway)
		h.event(events.TypeStoreVisited, m, `{}`)
		h.fire()
		run := h.only(m)
		rs, _ := h.s.RunStep(h.ctx, run.ID, "hook", 1)
		if rs.State != store.StepPending || rs.Failures != 1 || !strings.Contains(rs.Error, "502") || !run.WakeAt.Equal(at(3, 12, 0).Add(30*time.Second)) {
			t.Fatalf("after a 502: step %+v, run %+v", rs, run)
		}
		h.runUntil(at(3, 12, 1)) // the second attempt fails too
		hook.status.Store(http.StatusOK)
		h.runUntil(at(3, 12, 10))
		run = h.only(m)
		rs, _ = h.s.RunStep(h.ctx, run.ID, "hook", 1)
		if run.State != store.RunDone || rs.State != store.StepDone || rs.Attempts != 3 || rs.Failures != 2 {
			t.Errorf("after recovery: step %+v, run %+v", rs, run)
		}
		st, _ := h.e.Stats(h.ctx, "camellia", "hook-only")
		if st.Errors != 1 {
			t.Errorf("stats errors %d, want 1 (one step retried)", st.Errors)
		}

		hook.status.Store(http.StatusBadRequest)
		h.event(events.TypeStoreVisited, m, `{}`)
		h.fire()
		run = h.runs(m)[1]
		if run.State != store.RunFailed || !strings.Contains(run.EndReason, "step hook failed: webhook 127.0.0.1") {
			t.Errorf("after a 400: %+v", run)
		}
		hook.status.Store(http.StatusOK)

		h.put(fmt.Sprintf(hookOnly, hook.URL, "missing"))
		h.event(events.TypeStoreVisited, m, `{}`)
		h.fire()
		run = h.runs(m)[2]
		rs, _ = h.s.RunStep(h.ctx, run.ID, "hook", 1)
		if run.State != store.RunFailed || rs.State != store.StepFailed || !strings.Contains(rs.Error, "SCRMGW_WEBHOOK_SECRET_MISSING") {
			t.Errorf("missing secret: run %+v, step %+v", run, rs)
		}
		st, _ = h.e.Stats(h.ctx, "camellia", "hook-only")
		if st.Failed != 2 || st.Done != 1 {
			t.Errorf("stats: %+v", st)
		}
	}, secrets)
}

const sendOnly = `name: %s
trigger:
  event: %s
entry:
  brand: camellia
  re_entry: %s
goal: purchase.completed
send_rules:
  time_zone: %s
  quiet_hours: %s
  caps: %s
steps:
  - id: nudge
    send: recall
`

func sendWorkflow(name, event, reEntry, zone, quiet, caps string) string {
	return fmt.Sprintf(sendOnly, name, event, reEntry, zone, quiet, caps)
}

// TestConsent: a member who unsubscribed from their channel gets
// nothing; the step records why and the run goes on.
func TestConsent(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		h.put(sendWorkflow("nudge", "store.visited", "always", "member", "none", "{}"))
		m := h.member("U", "wecom", "g1")
		if err := h.s.SetConsent(h.ctx, m, "camellia", "wecom", true, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		h.event(events.TypeStoreVisited, m, `{}`)
		h.fire()
		run := h.only(m)
		rs, _ := h.s.RunStep(h.ctx, run.ID, "nudge", 1)
		if len(h.sender.sent) != 0 || run.State != store.RunDone || rs.State != store.StepSkipped || !strings.Contains(rs.Outcome, "unsubscribed") {
			t.Errorf("sent %v; run %+v; step %+v", h.sender.sent, run, rs)
		}
		// Unsubscribed from every channel of every brand: same.
		h.s.SetConsent(h.ctx, m, "camellia", "wecom", false, h.clock.Now())
		h.s.SetConsent(h.ctx, m, store.ConsentAll, store.ConsentAll, true, h.clock.Now())
		h.event(events.TypeStoreVisited, m, `{}`)
		h.fire()
		if len(h.sender.sent) != 0 {
			t.Errorf("sent to a member unsubscribed from everything: %v", h.sender.sent)
		}
		// A member without a guide on WeCom cannot be reached there.
		n := h.member("N", "wecom", "")
		h.event(events.TypeStoreVisited, n, `{}`)
		h.fire()
		rs, _ = h.s.RunStep(h.ctx, h.only(n).ID, "nudge", 1)
		if rs.State != store.StepSkipped || !strings.Contains(rs.Outcome, "no guide on wecom to send through") {
			t.Errorf("member without a guide: %+v", rs)
		}
		h.noErrors()
	})
}
