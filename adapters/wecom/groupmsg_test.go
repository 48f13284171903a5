package wecom_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// TestReconcileMessageTask: a send whose worker died is found among the
// message tasks WeCom lists (get_groupmsg_list_v2, across pages) only
// when a task of that text, guide and member was created around its
// claim; other sends are reported unsent.
func TestReconcileMessageTask(t *testing.T) {
	fake := wecomfake.New(t)
	fake.AddEmployees("li", "wang")
	const n = 120 // more than one page of 100
	for i := range n {
		fake.AddContact(wecomfake.Contact{ExternalUserID: fmt.Sprintf("wm%03d", i), FollowUsers: []wecom.FollowUser{{UserID: "li"}}})
	}
	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmWang", FollowUsers: []wecom.FollowUser{{UserID: "wang"}, {UserID: "li"}}})
	cfg := fake.Config()
	cfg.Brand = "acme"
	c := newSendClient(t, cfg)
	ctx := context.Background()
	nudge := func(to, via string) *adapters.Outbound {
		return &adapters.Outbound{IdempotencyKey: "wf:" + to, To: to, ToParty: adapters.PartyMember, Via: via, Kind: "text", Text: "店里上新了"}
	}
	claimed := time.Now()
	msgIDs := map[string]string{}
	for i := range n {
		m := nudge(fmt.Sprintf("wm%03d", i), "li")
		r, err := c.Send(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		msgIDs[m.To] = r.ExternalID
	}
	// The same text to another member through another guide.
	if _, err := c.Send(ctx, nudge("wmWang", "wang")); err != nil {
		t.Fatal(err)
	}

	guide := &adapters.Outbound{To: "li", ToParty: adapters.PartyGuide, Text: "任务"}
	if _, _, err := c.Reconcile(ctx, guide, claimed); !errors.Is(err, adapters.ErrOutcomeUnknown) {
		t.Errorf("Reconcile of an app message to a guide: %v, want the outcome unknown (WeCom cannot be asked)", err)
	}
	for _, tc := range []struct {
		name      string
		m         *adapters.Outbound
		claimedAt time.Time
		sent      bool
		msgID     string
		lists     bool // whether WeCom is asked
	}{
		{"sent, on the second page", nudge("wm107", "li"), claimed, true, msgIDs["wm107"], true},
		{"sent, on the first page", nudge("wm003", "li"), claimed, true, msgIDs["wm003"], true},
		{"never sent", nudge("wmNobody", "li"), claimed, false, "", true},
		{"sent through another guide only", nudge("wmWang", "li"), claimed, false, "", true},
		{"other text", &adapters.Outbound{To: "wm005", ToParty: adapters.PartyMember, Via: "li", Kind: "text", Text: "另一条"}, claimed, false, "", true},
		{"claimed two hours before", nudge("wm005", "li"), claimed.Add(-2 * time.Hour), false, "", true},
		{"kf reply: msgid from the key", &adapters.Outbound{To: "wmKf", ToParty: adapters.PartyMember, ReplyTo: map[string]string{"open_kfid": "wk1"}, Text: "您好"}, claimed, false, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := fake.CallCount(wecomfake.PathGroupMsgListV2)
			r, sent, err := c.Reconcile(ctx, tc.m, tc.claimedAt)
			if err != nil {
				t.Fatal(err)
			}
			if sent != tc.sent {
				t.Fatalf("sent = %v, want %v", sent, tc.sent)
			}
			if tc.sent && (r == nil || r.ExternalID != tc.msgID || !r.Pending) {
				t.Errorf("receipt = %+v, want the task %s, pending the guide's confirmation", r, tc.msgID)
			}
			if asked := fake.CallCount(wecomfake.PathGroupMsgListV2) > before; asked != tc.lists {
				t.Errorf("listed message tasks: %v, want %v", asked, tc.lists)
			}
		})
	}

	// Sends a dead worker left were claimed moments apart: once their
	// windows are over, one list (two pages here) serves them all.
	later, err := wecom.New(cfg, wecom.Deps{Recorder: nopRecorder{}, Tokens: newMemTokens(), Cursors: nopCursors{},
		Now: func() time.Time { return time.Now().Add(2 * time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	before := fake.CallCount(wecomfake.PathGroupMsgListV2)
	for _, to := range []string{"wm003", "wm050", "wm107", "wmNobody"} {
		r, sent, err := later.Reconcile(ctx, nudge(to, "li"), claimed)
		if err != nil || sent != (to != "wmNobody") || sent && r.ExternalID != msgIDs[to] {
			t.Errorf("%s: %+v %v %v", to, r, sent, err)
		}
	}
	if n := fake.CallCount(wecomfake.PathGroupMsgListV2) - before; n != 2 {
		t.Errorf("4 reconciliations listed %d pages, want 2 (one list of 121 tasks)", n)
	}

	// A failing list is temporary, not "unknown": the sweep asks again.
	fake.FailNext(wecomfake.PathGroupMsgListV2, 1, wecomfake.CodeFreqLimit, "")
	if _, _, err := c.Reconcile(ctx, nudge("wm001", "li"), claimed); !errors.Is(err, adapters.ErrRateLimited) || errors.Is(err, adapters.ErrOutcomeUnknown) {
		t.Errorf("list refused: err = %v, want a rate limit", err)
	}
	if _, err := c.API().GroupMsgList(ctx, claimed.Add(-32*24*time.Hour), claimed, wecom.CreatedByCorp); !errors.Is(err, wecom.ErrInvalidRequest) {
		t.Errorf("a span over a month: err = %v, want ErrInvalidRequest", err)
	}
	tasks, err := c.API().GroupMsgList(ctx, claimed.Add(-time.Minute), time.Now().Add(time.Minute), wecom.CreatedByAnyone)
	if err != nil || len(tasks) != n+1 {
		t.Fatalf("listed %d tasks, %v; want %d", len(tasks), err, n+1)
	}
	if g := tasks[0]; g.MsgID != msgIDs["wm000"] || g.Text != "店里上新了" || g.CreateType != wecom.CreatedByCorp || g.Creator != "" ||
		g.CreateTime.Before(claimed.Add(-time.Second)) {
		t.Errorf("first task = %+v", g)
	}
	if tasks, err := c.API().GroupMsgList(ctx, claimed.Add(-time.Minute), time.Now().Add(time.Minute), wecom.CreatedByEmployee); err != nil || len(tasks) != 0 {
		t.Errorf("tasks created by employees = %d, %v; want none", len(tasks), err)
	}
}

// TestFakeRateLimit: over its limit the fake answers WeCom's 45009 and
// does nothing, which the adapter maps onto ErrRateLimited.
func TestFakeRateLimit(t *testing.T) {
	fake := wecomfake.New(t)
	fake.AddEmployees("li")
	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmChen", FollowUsers: []wecom.FollowUser{{UserID: "li"}}})
	fake.LimitRate(wecomfake.PathAddMsgTemplate, 3, time.Minute)
	cfg := fake.Config()
	cfg.Brand = "acme"
	c := newSendClient(t, cfg)
	m := &adapters.Outbound{To: "wmChen", ToParty: adapters.PartyMember, Via: "li", Kind: "text", Text: "店里上新了"}
	for i := range 3 {
		if _, err := c.Send(context.Background(), m); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	_, err := c.Send(context.Background(), m)
	var apiErr *adapters.APIError
	if !errors.Is(err, adapters.ErrRateLimited) || !errors.As(err, &apiErr) || apiErr.Code != 45009 {
		t.Fatalf("fourth send in the minute: %v, want 45009", err)
	}
	if n, tasks := fake.RateLimited(), len(fake.MsgTemplates()); n != 1 || tasks != 3 {
		t.Errorf("refused %d, tasks created %d; want 1 and 3", n, tasks)
	}
	fake.LimitRate(wecomfake.PathAddMsgTemplate, 0, 0)
	if _, err := c.Send(context.Background(), m); err != nil {
		t.Errorf("after the limit was lifted: %v", err)
	}
}

// TestMessageTaskInDoubt: a message task whose answer is lost (a
// timeout, a 5xx after the request went out) may have been created, so
// Send says so (adapters.ErrOutcomeUnknown) instead of inviting a retry,
// and Reconcile finds the task when WeCom did create it. An errcode, a
// failed gettoken or a refused connection are not in doubt.
func TestMessageTaskInDoubt(t *testing.T) {
	fake := wecomfake.New(t)
	fake.AddEmployees("li")
	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmChen", FollowUsers: []wecom.FollowUser{{UserID: "li"}}})
	cfg := fake.Config()
	cfg.Brand = "acme"
	m := &adapters.Outbound{IdempotencyKey: "wf:1:nudge:1", To: "wmChen", ToParty: adapters.PartyMember, Via: "li", Kind: "text", Text: "店里上新了"}
	for _, tc := range []struct {
		name    string
		fail    func()
		inDoubt bool
	}{
		{"HTTP 502 from add_msg_template", func() { fake.FailHTTPNext(wecomfake.PathAddMsgTemplate, 1, 502) }, true},
		{"errcode 45009", func() { fake.FailNext(wecomfake.PathAddMsgTemplate, 1, wecomfake.CodeFreqLimit, "") }, false},
		{"errcode -1", func() { fake.FailNext(wecomfake.PathAddMsgTemplate, 1, wecomfake.CodeSystemBusy, "") }, false},
		{"gettoken fails first", func() { fake.FailHTTPNext(wecomfake.PathGetToken, 1, 502) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSendClient(t, cfg) // no cached token
			tc.fail()
			_, err := c.Send(context.Background(), m)
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, adapters.ErrOutcomeUnknown); got != tc.inDoubt || wecom.InDoubt(err) != tc.inDoubt {
				t.Errorf("in doubt = %v (InDoubt %v), want %v: %v", got, wecom.InDoubt(err), tc.inDoubt, err)
			}
		})
	}

	t.Run("answer lost after the task was created", func(t *testing.T) {
		c := newSendClient(t, cfg)
		fake.Delay(wecomfake.PathAddMsgTemplate, 0, 2*time.Second)
		defer fake.Delay(wecomfake.PathAddMsgTemplate, 0, 0)
		before := len(fake.MsgTemplates())
		claimed := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := c.Send(ctx, m)
		if !errors.Is(err, adapters.ErrOutcomeUnknown) {
			t.Fatalf("err = %v, want the outcome unknown", err)
		}
		tasks := fake.MsgTemplates()
		if len(tasks) != before+1 {
			t.Fatalf("WeCom has %d new tasks, want 1", len(tasks)-before)
		}
		r, sent, err := c.Reconcile(context.Background(), m, claimed)
		if err != nil || !sent || r.ExternalID != tasks[len(tasks)-1].MsgID {
			t.Errorf("Reconcile = %+v, %v, %v; want the task WeCom created", r, sent, err)
		}
	})

	t.Run("request cut off before WeCom took it", func(t *testing.T) {
		c := newSendClient(t, cfg)
		fake.Delay(wecomfake.PathAddMsgTemplate, time.Second, 0)
		defer fake.Delay(wecomfake.PathAddMsgTemplate, 0, 0)
		fake.AddContact(wecomfake.Contact{ExternalUserID: "wmLin", FollowUsers: []wecom.FollowUser{{UserID: "li"}}})
		m := &adapters.Outbound{IdempotencyKey: "wf:2:nudge:1", To: "wmLin", ToParty: adapters.PartyMember, Via: "li", Kind: "text", Text: "店里上新了"}
		before := len(fake.MsgTemplates())
		claimed := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, err := c.Send(ctx, m); !errors.Is(err, adapters.ErrOutcomeUnknown) {
			t.Fatalf("err = %v, want the outcome unknown (the gateway cannot tell)", err)
		}
		time.Sleep(time.Second) // the fake's delay ends, and it drops the call
		if n := len(fake.MsgTemplates()) - before; n != 0 {
			t.Fatalf("WeCom created %d tasks for a request cut off on its way", n)
		}
		if _, sent, err := c.Reconcile(context.Background(), m, claimed); err != nil || sent {
			t.Errorf("Reconcile = %v, %v; want not sent", sent, err)
		}
	})

	t.Run("connection refused", func(t *testing.T) {
		gone := wecomfake.New(t)
		refused := gone.Config()
		refused.Brand = "acme"
		c := newSendClient(t, refused)
		gone.Close()
		defer newSendClient(t, cfg) // point the process's WeCom client back at fake
		_, err := c.Send(context.Background(), m)
		if err == nil || errors.Is(err, adapters.ErrOutcomeUnknown) || wecom.InDoubt(err) {
			t.Errorf("refused connection: %v, want an error not in doubt", err)
		}
	})
}
