package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store"
)

// TestUnsubscribeHonouredByRunningWorkflowWithRedis: a member added on
// WeCom enters a workflow that waits and then nudges them through their
// guide; meanwhile they write "退订" to the brand's customer service. The
// bot confirms, and when the wait ends the nudge is skipped: no message
// task reaches WeCom, and the run says why.
func TestUnsubscribeHonouredByRunningWorkflowWithRedis(t *testing.T) {
	s, fake, tok := startWithWeCom(t)
	ctx := context.Background()
	run := joinNudgeLater(t, s, fake, tok, "wmQian", "钱女士", "13300133000")
	token := fake.QueueKFMessages("wkKF1", wecomfake.KFText("wmQian", "退订"))
	notify := wecomfake.KfMsgOrEvent{Token: token, OpenKfID: "wkKF1"}
	if status, _ := deliver(t, s.base+wecom.CallbackPath, notify.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatalf("kf callback: %d", status)
	}
	waitFor(t, "the unsubscribe confirmed", func() bool {
		for _, m := range fake.KFSent() {
			if m.ToUser == "wmQian" && strings.Contains(m.Text, "退订") {
				return true
			}
		}
		return false
	})
	waitFor(t, "the run over", func() bool {
		r, err := s.app.Store.Run(ctx, run.ID)
		return err == nil && r.State != store.RunActive
	})
	steps, _ := s.app.Store.RunSteps(ctx, run.ID)
	var nudge *store.RunStep
	for i := range steps {
		if steps[i].StepID == "nudge" {
			nudge = &steps[i]
		}
	}
	if nudge == nil || nudge.State != store.StepSkipped || !strings.Contains(nudge.Outcome, "unsubscribed") {
		t.Errorf("nudge step = %+v", nudge)
	}
	if n := len(fake.MsgTemplates()); n != 0 {
		t.Errorf("%d message tasks reached WeCom after the member unsubscribed", n)
	}
}

// joinNudgeLater enables "nudge-later" for acme (wait 4 s, then a recall
// through the guide li) and adds a WeCom contact of li's through a signed
// callback; it returns the contact's run, waiting.
func joinNudgeLater(t *testing.T, s *started, fake *wecomfake.Server, tok, externalID, name, phone string) store.WorkflowRun {
	t.Helper()
	ctx := context.Background()
	wf := `name: nudge-later
trigger:
  event: member.joined
entry:
  brand: acme
goal: purchase.completed
send_rules:
  quiet_hours: none
steps:
  - wait: 4s
  - id: nudge
    send: recall
`
	if code, body := putWorkflow(t, s, tok, "acme", "nudge-later", wf); code != 201 {
		t.Fatalf("PUT workflow: %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/workflows/nudge-later/enable?brand=acme", tok, ""); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}
	fake.AddContact(wecomfake.Contact{ExternalUserID: externalID, Name: name,
		FollowUsers: []wecom.FollowUser{{UserID: "li", State: "s:sh-1", RemarkMobiles: []string{phone}}}})
	ev := wecomfake.AddExternalContact("li", externalID, "s:sh-1", fake.IssueWelcomeCode(externalID))
	ev.CreateTime = time.Now().Truncate(time.Second)
	if status, _ := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatalf("contact callback: %d", status)
	}
	var run store.WorkflowRun
	waitFor(t, "the run waiting", func() bool {
		rs, _ := s.app.Store.Runs(ctx, store.RunFilter{Brand: "acme", Workflow: "nudge-later"})
		if len(rs) == 1 {
			run = rs[0]
		}
		return len(rs) == 1
	})
	return run
}
