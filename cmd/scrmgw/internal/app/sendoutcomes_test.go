package app

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

const nudgeNow = `name: nudge-now
trigger:
  event: member.joined
entry:
  brand: acme
goal: purchase.completed
send_rules:
  quiet_hours: none
steps:
  - id: nudge
    send: recall
    via: guide
    priority: high         # its wakes go on the critical lane
  - id: mark
    tag: nudged
`

// TestSendOutcomesOnWeComWithRedis: what the stats, the run and the
// outbox say of a nudge through a guide on WeCom is what WeCom answered.
// WeCom refusing the message task for good fails the step and the run
// with WeCom's reason and counts nothing as sent; a task WeCom created
// counts as sent and "not confirmed" until the guide sends it, then as
// delivered, and the guide's task to confirm it (of which the guide was
// told by an app message) closes itself.
func TestSendOutcomesOnWeComWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	ctx := context.Background()
	s.app.sender.CheckEvery(200 * time.Millisecond) // 30 min in production
	// What the runs did, when something went wrong.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		rs, _ := s.app.Store.Runs(ctx, store.RunFilter{Brand: "acme"})
		for _, r := range rs {
			steps, _ := s.app.Store.RunSteps(ctx, r.ID)
			t.Logf("run %+v\n  steps %+v", r, steps)
		}
		t.Logf("wecom calls: %v", fake.Calls())
	})
	if code, body := putWorkflow(t, s, tok, "acme", "nudge-now", nudgeNow); code != 201 {
		t.Fatalf("PUT workflow: %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/workflows/nudge-now/enable?brand=acme", tok, ""); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}
	join := func(externalID, name, phone string) store.WorkflowRun {
		t.Helper()
		fake.AddContact(wecomfake.Contact{ExternalUserID: externalID, Name: name,
			FollowUsers: []wecom.FollowUser{{UserID: "li", State: "s:sh-1", RemarkMobiles: []string{phone}}}})
		ev := wecomfake.AddExternalContact("li", externalID, "s:sh-1", fake.IssueWelcomeCode(externalID))
		ev.CreateTime = time.Now().Truncate(time.Second)
		if status, _ := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 {
			t.Fatalf("contact callback: %d", status)
		}
		var run store.WorkflowRun
		waitFor(t, "the run of "+name+" over", func() bool {
			m, err := s.app.Store.MemberByIdentity(ctx, "wecom", externalID)
			if err != nil {
				return false
			}
			rs, _ := s.app.Store.Runs(ctx, store.RunFilter{Brand: "acme", Workflow: "nudge-now", MemberID: m.ID})
			if len(rs) == 1 {
				run = rs[0]
			}
			return len(rs) == 1 && rs[0].State != store.RunActive
		})
		return run
	}
	stats := func() engine.Stats {
		t.Helper()
		code, body := request(t, "GET", s.base+"/api/v1/workflows/nudge-now/stats?brand=acme", tok, "")
		var st engine.Stats
		if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
			t.Fatalf("stats: %d %s (%v)", code, body, err)
		}
		return st
	}
	nudge := func(run store.WorkflowRun) *store.RunStep {
		t.Helper()
		rs, err := s.app.Store.RunStep(ctx, run.ID, "nudge", 1)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}

	// WeCom refuses the message task: no customer to send to.
	const refusedSeries = `scrmgw_outbox_failures_total{channel="wecom",reason="invalid_recipient"}`
	failuresBefore, wakesBefore := metricValue(t, s, refusedSeries), metricValue(t, s, "scrmgw_workflow_wake_lateness_seconds_count")
	fake.FailNext(wecomfake.PathAddMsgTemplate, 1, wecomfake.CodeNoCustomerToSend, "no customer to send")
	run := join("wmZhao", "赵女士", "13500135000")
	step := nudge(run)
	// On /metrics: the send failed for good, and the run's wakes acted.
	if got := metricValue(t, s, refusedSeries); got < failuresBefore+1 {
		t.Errorf("%s = %v, was %v: the refusal is not counted", refusedSeries, got, failuresBefore)
	}
	if got := metricValue(t, s, "scrmgw_workflow_wake_lateness_seconds_count"); got <= wakesBefore {
		t.Errorf("scrmgw_workflow_wake_lateness_seconds_count = %v, was %v: the run's wakes are not observed", got, wakesBefore)
	}
	if run.State != store.RunFailed || !strings.Contains(run.EndReason, "41048") || run.Sent != 0 {
		t.Errorf("refused: run %+v", run)
	}
	if step.State != store.StepFailed || step.Reason != "invalid_recipient" || !strings.Contains(step.Error, "no customer to send") {
		t.Errorf("refused: step %+v", step)
	}
	if o, err := s.app.Store.OutboxByKey(ctx, step.OutboxKey); err != nil || o.State != store.OutboxFailed ||
		o.Failure != "invalid_recipient" || !strings.Contains(o.LastError, "41048") {
		t.Errorf("refused: outbox %+v, %v", o, err)
	}
	if tasks, _ := s.app.Store.GuideTasks(ctx, store.GuideTaskFilter{RunID: run.ID}); len(tasks) != 0 {
		t.Errorf("a task to confirm a message WeCom refused: %+v", tasks)
	}
	st := stats()
	if st.Sent != 0 || st.Sends.Sent != 0 || st.Sends.Failed != 1 || st.Sends.FailedBy["invalid_recipient"] != 1 || st.Failed != 1 ||
		len(st.Steps) != 2 || st.Steps[0].FailedBy["invalid_recipient"] != 1 || st.Steps[0].Sends.Failed != 1 || st.Steps[1].Reached != 0 {
		t.Errorf("stats after the refusal: %s", mustJSON(st))
	}
	if n := len(fake.MsgTemplates()); n != 0 {
		t.Errorf("%d message tasks created", n)
	}

	// WeCom creates the next one: sent, not confirmed until the guide
	// sends it.
	run = join("wmSun", "孙先生", "13600136000")
	step = nudge(run)
	if run.State != store.RunDone || run.Sent != 1 || step.State != store.StepDone || !strings.Contains(step.Outcome, "not confirmed yet") {
		t.Errorf("sent: run %+v, step %+v", run, step)
	}
	tpls := fake.MsgTemplates()
	if len(tpls) != 1 || tpls[0].Sender != "li" || len(tpls[0].ExternalUserIDs) != 1 || tpls[0].ExternalUserIDs[0] != "wmSun" ||
		!strings.Contains(tpls[0].Text, "李娜") {
		t.Fatalf("message tasks: %+v", tpls)
	}
	tasks, _ := s.app.Store.GuideTasks(ctx, store.GuideTaskFilter{RunID: run.ID})
	if len(tasks) != 1 || tasks[0].GuideID != "g-li" || tasks[0].State != store.GuideTaskOpen || tasks[0].Title != "确认发送「recall」给 孙先生" {
		t.Fatalf("confirmation task: %+v", tasks)
	}
	// The guide is told, once, by an app message naming the member and
	// the message.
	var told []wecomfake.AppMessageRequest
	waitFor(t, "the guide told of the task", func() bool {
		told = told[:0]
		for _, m := range fake.AppMessages() {
			if strings.Contains(m.Content, "确认发送「recall」给 孙先生") {
				told = append(told, m)
			}
		}
		return len(told) > 0
	})
	if len(told) != 1 || len(told[0].ToUser) != 1 || told[0].ToUser[0] != "li" || told[0].MsgType != "text" ||
		!strings.Contains(told[0].Content, tpls[0].Text) {
		t.Errorf("the guide was told: %+v", told)
	}
	st = stats()
	if st.Sent != 1 || st.Sends.Sent != 1 || st.Sends.NotConfirmed != 1 || st.Sends.Delivered != 0 || st.Sends.Failed != 1 || st.Done != 1 {
		t.Errorf("stats after the send: %s", mustJSON(st))
	}

	// The guide sends it in WeCom: the delivery check finds it delivered
	// and the task closes itself.
	if !fake.ConfirmMsgTemplate(tpls[0].MsgID) {
		t.Fatal("no such message task")
	}
	waitFor(t, "the confirmation task closed", func() bool {
		task, err := s.app.Store.GuideTask(ctx, tasks[0].ID)
		return err == nil && task.State == store.GuideTaskDone
	})
	st = stats()
	if st.Sends.Sent != 1 || st.Sends.Delivered != 1 || st.Sends.NotConfirmed != 0 || st.Steps[0].Sends.Delivered != 1 {
		t.Errorf("stats after delivery: %s", mustJSON(st))
	}
	if o, _ := s.app.Store.OutboxByKey(ctx, step.OutboxKey); o.Delivery != "delivered" || o.ExternalID != tpls[0].MsgID {
		t.Errorf("delivered outbox row: %+v", o)
	}
	time.Sleep(300 * time.Millisecond) // let any duplicate surface
	if n := len(fake.MsgTemplates()); n != 1 {
		t.Errorf("%d message tasks, want 1", n)
	}

	// The stats read the funnel counters: the periodic fold moves their
	// deltas into the per-day totals, and the stats read the same.
	if runs, steps, err := s.app.Store.FunnelDeltas(ctx); err != nil || runs == 0 || steps == 0 {
		t.Errorf("funnel deltas before the fold: %d runs, %d steps, %v", runs, steps, err)
	}
	before := mustJSON(stats())
	if err := s.app.foldFunnel(ctx, asynq.NewTask(TypeFunnelFold, nil)); err != nil {
		t.Fatal(err)
	}
	if runs, steps, err := s.app.Store.FunnelDeltas(ctx); err != nil || runs != 0 || steps != 0 {
		t.Errorf("funnel deltas after the fold: %d runs, %d steps, %v", runs, steps, err)
	}
	if after := mustJSON(stats()); after != before {
		t.Errorf("stats after the fold:\n%s\nbefore:\n%s", after, before)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// metricValue is the value of a series on the gateway's /metrics; 0 when
// it is absent.
func metricValue(t *testing.T, s *started, series string) float64 {
	t.Helper()
	code, body := request(t, "GET", s.base+"/metrics", "", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}
