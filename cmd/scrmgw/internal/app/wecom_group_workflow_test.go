package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// memberDay is a workflow that announces the store's member day in the
// customer groups of the member's store, started by the brand's own
// CloudEvent.
const memberDay = `name: member-day
trigger:
  event: x.member_day
entry:
  brand: acme
  re_entry: always
goal: none
send_rules:
  quiet_hours: none
steps:
  - id: announce
    send_groups: group_member_day
    to: store
`

// postMemberEvent posts the brand's CloudEvent typ about a member to
// /api/v1/events with the admin token.
func postMemberEvent(t *testing.T, s *started, tok, id, typ string, memberID int64) {
	t.Helper()
	ev := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/crm","type":%q,"brand":"acme","data":{"member":{"member_id":%d}}}`, id, typ, memberID)
	req, _ := http.NewRequest("POST", s.base+"/api/v1/events", strings.NewReader(ev))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/cloudevents+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST /events %s: %d", id, resp.StatusCode)
	}
}

// memberRun waits for the member's run of member-day to end and
// returns it with its announce step.
func memberRun(t *testing.T, s *started, memberID int64) (store.WorkflowRun, store.RunStep) {
	t.Helper()
	ctx := context.Background()
	var run store.WorkflowRun
	var step store.RunStep
	waitFor(t, fmt.Sprintf("member %d's run to end", memberID), func() bool {
		runs, err := s.app.Store.Runs(ctx, store.RunFilter{Brand: "acme", Workflow: "member-day", MemberID: memberID})
		if err != nil || len(runs) != 1 || runs[0].State == store.RunActive {
			return false
		}
		steps, err := s.app.Store.RunSteps(ctx, runs[0].ID)
		if err != nil || len(steps) != 1 {
			return false
		}
		run, step = runs[0], steps[0]
		return true
	})
	return run, step
}

// TestWeComGroupWorkflowWithRedis is the issue's "workflow steps send a
// message to groups through their owner", from the wire: a CloudEvent
// starts member-day for a member of store sh-1, whose send_groups step
// sends the store's two customer groups one message task per owner
// (add_msg_template, chat_type group, the owner as sender) asserted at
// the fake; the run of another member of the store the same day finds
// both groups served (one message a day each) and sends nothing; the
// funnel counts one sent and one skipped for group_limit; the first
// visit's send again (a retry) creates no task.
func TestWeComGroupWorkflowWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	ctx := context.Background()
	if code, body := request(t, "POST", s.base+"/api/v1/guides", tok, `{"id":"g-wang","store_id":"sh-1","name":"王强","wecom_userid":"wang"}`); code != 201 {
		t.Fatalf("guide: %d %s", code, body)
	}
	fake.AddEmployees("wang")
	chen := joinWeComMember(t, s, fake, "wmChen", "陈女士")
	zhao := joinWeComMember(t, s, fake, "wmZhao", "赵先生")
	vip := fake.CreateGroup("li", "静安店VIP群", "wmChen", "wmZhao")
	news := fake.CreateGroup("wang", "静安店新品群", "wmChen")
	gone := fake.CreateGroup("li", "旧群", "wmZhao")
	for _, chat := range []string{vip, news, gone} {
		deliverChat(t, s, wecomfake.ChatChange{ChatID: chat, ChangeType: "create"})
	}
	waitFor(t, "the groups", func() bool {
		gs, _ := s.app.Store.CustomerGroups(ctx, store.GroupFilter{StoreID: "sh-1"})
		return len(gs) == 3
	})
	fake.ChangeGroup(gone, func(g *wecomfake.Group) { g.Dismissed = true })
	deliverChat(t, s, wecomfake.ChatChange{ChatID: gone, ChangeType: "dismiss"})
	waitFor(t, "the dismissal", func() bool {
		gs, _ := s.app.Store.CustomerGroups(ctx, store.GroupFilter{StoreID: "sh-1", State: store.GroupActive})
		g, err := s.app.Store.CustomerGroup(ctx, "wecom", gone)
		return len(gs) == 2 && err == nil && g.State == store.GroupDismissed
	})

	// A template that shows the member is refused for groups, at its place.
	bad := strings.Replace(memberDay, "group_member_day", "welcome", 1)
	if code, body := putWorkflow(t, s, tok, "acme", "member-day", bad); code != 400 || !strings.Contains(body, "member-day.yaml:12:18: steps[0].send_groups: template \\\"welcome\\\" shows .Member") {
		t.Fatalf("PUT with a member's template: %d %s", code, body)
	}
	if code, body := putWorkflow(t, s, tok, "acme", "member-day", memberDay); code != 201 {
		t.Fatalf("PUT workflow: %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/workflows/member-day/enable?brand=acme", tok, ""); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}

	postMemberEvent(t, s, tok, "day-chen", "x.member_day", chen.ID)
	run, step := memberRun(t, s, chen.ID)
	if run.State != store.RunDone || step.State != store.StepDone {
		t.Fatalf("chen's run %s, step %s: %s %s", run.State, step.State, step.Outcome, step.Error)
	}
	tasks := fake.GroupMsgTemplates()
	if len(tasks) != 2 {
		t.Fatalf("%d group message tasks, want one per owner", len(tasks))
	}
	got := map[string]map[string]any{}
	for _, tk := range tasks {
		var body map[string]any
		if err := json.Unmarshal(tk.Body, &body); err != nil {
			t.Fatal(err)
		}
		got[tk.Sender] = body
	}
	text := map[string]any{"content": "静安店会员日：本周六到店出示ACME会员码，全场95折。"}
	want := map[string]map[string]any{
		"li":   {"chat_type": "group", "chat_id_list": []any{vip}, "sender": "li", "text": text},
		"wang": {"chat_type": "group", "chat_id_list": []any{news}, "sender": "wang", "text": text},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("add_msg_template by sender (-want +got):\n%s", d)
	}
	if !strings.Contains(step.Outcome, "to 2 groups of store sh-1 through 2 owners") {
		t.Errorf("outcome = %q", step.Outcome)
	}
	first := step

	// Another member's run the same day: both groups had their message.
	postMemberEvent(t, s, tok, "day-zhao", "x.member_day", zhao.ID)
	_, step = memberRun(t, s, zhao.ID)
	if step.State != store.StepSkipped || step.Reason != "group_limit" {
		t.Errorf("zhao's step %s (%s): %s", step.State, step.Reason, step.Outcome)
	}
	if n := len(fake.GroupMsgTemplates()); n != 2 {
		t.Errorf("%d group message tasks after the second run", n)
	}

	// The first visit's send again, as a retry after a crash would: the
	// groups are the same key's, nothing is sent twice.
	key := fmt.Sprintf("wf:%d:announce:%d", run.ID, first.Visit)
	sent, err := engineGroups{s.app.groups}.SendGroups(ctx, engine.GroupSend{Brand: "acme", StoreID: "sh-1", Key: key,
		Render: func(string) (*adapters.Outbound, error) { return &adapters.Outbound{Kind: "text", Text: "again"}, nil }})
	if err != nil || sent.Groups != 2 || sent.Taken != 0 {
		t.Errorf("the send again = %+v, %v; want the 2 groups it sent", sent, err)
	}
	if n := len(fake.GroupMsgTemplates()); n != 2 {
		t.Errorf("%d group message tasks after the send again", n)
	}

	// The funnel: one sent, one skipped for the groups' limit.
	code, body := request(t, "GET", s.base+"/api/v1/workflows/member-day/stats?brand=acme", tok, "")
	var st engine.Stats
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || len(st.Steps) != 1 || st.Steps[0].Sends == nil {
		t.Fatalf("stats: %d %s", code, body)
	}
	if sc := st.Steps[0].Sends; st.Sent != 1 || sc.Sent != 1 || sc.Skipped != 1 || sc.SkippedBy["group_limit"] != 1 {
		t.Errorf("stats = %s", body)
	}
}

// TestWeComGroupWorkflowAnswerLostWithRedis is issue #19's crash window
// of group sends through a workflow, from the wire: WeCom creates the
// first owner's message task of member-day's send_groups step and its
// answer is lost (an HTTP 502 after the work); the step fails and is
// retried, and the retry finds the task among the corp's group tasks
// (get_groupmsg_list_v2, chat_type group) instead of creating a second
// one for the owner to confirm: each owner has exactly one task, and
// the groups' sends carry WeCom's msgids. The funnel counts the visit
// not confirmed until li sends the task, then delivered.
func TestWeComGroupWorkflowAnswerLostWithRedis(t *testing.T) {
	clock := newVirtualClock(time.Now())
	s, fake, tok := startWithWeComClock(t, clock.Now)
	ctx := context.Background()
	if code, body := request(t, "POST", s.base+"/api/v1/guides", tok, `{"id":"g-wang","store_id":"sh-1","name":"王强","wecom_userid":"wang"}`); code != 201 {
		t.Fatalf("guide: %d %s", code, body)
	}
	fake.AddEmployees("wang")
	chen := joinWeComMember(t, s, fake, "wmChen", "陈女士")
	vip := fake.CreateGroup("li", "静安店VIP群", "wmChen")
	news := fake.CreateGroup("wang", "静安店新品群", "wmChen")
	for _, chat := range []string{vip, news} {
		deliverChat(t, s, wecomfake.ChatChange{ChatID: chat, ChangeType: "create"})
	}
	waitFor(t, "the groups", func() bool {
		gs, _ := s.app.Store.CustomerGroups(ctx, store.GroupFilter{StoreID: "sh-1"})
		return len(gs) == 2
	})
	if code, body := putWorkflow(t, s, tok, "acme", "member-day", memberDay); code != 201 {
		t.Fatalf("PUT workflow: %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/workflows/member-day/enable?brand=acme", tok, ""); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}

	fake.FailHTTPAfterNext(wecomfake.PathAddMsgTemplate, 1, 502)
	postMemberEvent(t, s, tok, "day-chen", "x.member_day", chen.ID)
	var run store.WorkflowRun
	waitFor(t, "the step's first failure", func() bool {
		runs, err := s.app.Store.Runs(ctx, store.RunFilter{Brand: "acme", Workflow: "member-day", MemberID: chen.ID})
		if err != nil || len(runs) != 1 {
			return false
		}
		steps, err := s.app.Store.RunSteps(ctx, runs[0].ID)
		run = runs[0]
		return err == nil && len(steps) == 1 && steps[0].Failures == 1
	})
	first := fake.GroupMsgTemplates()
	if len(first) != 1 {
		t.Fatalf("%d tasks after the lost answer, want the one WeCom created", len(first))
	}

	// The retry, due 30 s later: the engine's clock moves on and the
	// wake queued for then runs now.
	clock.Advance(time.Minute)
	ins := asynq.NewInspector(s.app.Redis)
	defer ins.Close()
	if _, err := ins.RunAllScheduledTasks(queue.Workflows); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retried run to end", func() bool {
		r, err := s.app.Store.Run(ctx, run.ID)
		return err == nil && r.State != store.RunActive
	})
	run, step := memberRun(t, s, chen.ID)
	if run.State != store.RunDone || step.State != store.StepDone || !strings.Contains(step.Outcome, "to 2 groups of store sh-1 through 2 owners") {
		t.Fatalf("run %s, step %s: %s %s", run.State, step.State, step.Outcome, step.Error)
	}
	tasks := fake.GroupMsgTemplates()
	bySender := map[string][]string{}
	msgIDs := map[string]string{}
	for _, tk := range tasks {
		bySender[tk.Sender] = append(bySender[tk.Sender], tk.MsgID)
		for _, id := range tk.ChatIDs {
			msgIDs[id] = tk.MsgID
		}
	}
	if len(tasks) != 2 || len(bySender["li"]) != 1 || len(bySender["wang"]) != 1 || tasks[0].MsgID != first[0].MsgID {
		t.Fatalf("tasks by sender %v; want one each, the lost one among them", bySender)
	}
	if fake.CallCount(wecomfake.PathGroupMsgListV2) == 0 {
		t.Error("the retry did not list the group tasks")
	}
	key := fmt.Sprintf("wf:%d:announce:%d", run.ID, step.Visit)
	day := time.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly)
	for _, id := range []string{vip, news} {
		rs, err := s.app.Store.ReserveGroupSend(ctx, "wecom", id, day, key)
		if err != nil || rs.MsgID == "" || rs.MsgID != msgIDs[id] {
			t.Errorf("group %s's send: %+v, %v; want WeCom's msgid %s", id, rs, err, msgIDs[id])
		}
	}

	// The funnel: sent, not confirmed until an owner sends the task in
	// WeCom and the delivery check records it.
	sends := func() engine.SendCounts {
		t.Helper()
		code, body := request(t, "GET", s.base+"/api/v1/workflows/member-day/stats?brand=acme", tok, "")
		var st engine.Stats
		if code != 200 || json.Unmarshal([]byte(body), &st) != nil || len(st.Steps) != 1 || st.Steps[0].Sends == nil {
			t.Fatalf("stats: %d %s", code, body)
		}
		return *st.Steps[0].Sends
	}
	if sc := sends(); sc.Sent != 1 || sc.NotConfirmed != 1 || sc.Delivered != 0 {
		t.Errorf("step sends before the owners sent it: %+v", sc)
	}
	fake.ConfirmMsgTemplate(bySender["li"][0])
	if err := s.app.checkGroupDeliveries(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if sc := sends(); sc.Sent != 1 || sc.NotConfirmed != 0 || sc.Delivered != 1 {
		t.Errorf("step sends once li sent it: %+v", sc)
	}
}
