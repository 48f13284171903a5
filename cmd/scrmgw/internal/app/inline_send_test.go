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
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
)

// TestWeComWelcomeAndReplySentByTheirHandlersWithRedis: a welcome and a
// bot's answer are sent by the handler of the delivery that made them,
// with no send task of their own: the critical queue ran the recorder's
// batch and the contact event only, WeCom got the welcome (with its code) and the
// customer-service reply as the gateway sends them, each once, and their
// outbox rows are sent after one attempt.
func TestWeComWelcomeAndReplySentByTheirHandlersWithRedis(t *testing.T) {
	s, fake, _ := startWithWeCom(t)
	ins := asynq.NewInspector(s.app.Redis)
	defer ins.Close()
	processed := func(lane string) int {
		info, err := ins.GetQueueInfo(lane)
		if err != nil {
			return 0 // no task ran on it yet
		}
		return info.ProcessedTotal
	}

	// The metrics are the test process's: count from here.
	const inlineSeries, queuedSeries = `scrmgw_outbox_handler_sends_total{channel="wecom",path="inline"}`,
		`scrmgw_outbox_handler_sends_total{channel="wecom",path="queued"}`
	inlineBefore, queuedBefore := metricValue(t, s, inlineSeries), metricValue(t, s, queuedSeries)

	fake.AddContact(wecomfake.Contact{ExternalUserID: "wmChen", Name: "陈女士",
		FollowUsers: []wecom.FollowUser{{UserID: "li", State: "s:sh-1"}}})
	code := fake.IssueWelcomeCode("wmChen")
	ev := wecomfake.AddExternalContact("li", "wmChen", "s:sh-1", code)
	ev.CreateTime = time.Now().Truncate(time.Second)
	if status, body := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 || body != "success" {
		t.Fatalf("contact callback: %d %q", status, body)
	}
	waitFor(t, "the welcome", func() bool { return len(fake.Welcomes()) > 0 })
	waitFor(t, "the contact's task done", func() bool { return processed(queue.Critical) >= 2 })
	time.Sleep(500 * time.Millisecond) // let any other task surface
	if n := processed(queue.Critical); n != 2 {
		t.Errorf("the critical queue ran %d tasks, want 2 (the recorder's batch and the contact event; the welcome has no task of its own)", n)
	}
	welcomes := fake.Welcomes()
	if len(welcomes) != 1 {
		t.Fatalf("%d welcomes, want 1", len(welcomes))
	}
	var body struct {
		WelcomeCode string `json:"welcome_code"`
		Text        struct {
			Content string `json:"content"`
		} `json:"text"`
	}
	if err := json.Unmarshal(welcomes[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.WelcomeCode != code || welcomes[0].ExternalUserID != "wmChen" || !strings.Contains(body.Text.Content, "李娜") ||
		!strings.Contains(body.Text.Content, "静安店") {
		t.Errorf("welcome request = %s", welcomes[0].Body)
	}
	key := "welcome:evt:" + fake.Config().CorpID + ":" + strconv.FormatInt(ev.CreateTime.Unix(), 10) + ":" +
		wecom.ChangeTypeAddExternalContact + ":li:wmChen"
	sentOnce(t, s, key)

	token := fake.QueueKFMessages("wkKF1", wecomfake.KFMessage{MsgID: "kfmsg-points-1", ExternalUserID: "wmKF", MsgType: "text", Text: "我的积分"})
	if status, _ := deliver(t, s.base+wecom.CallbackPath, wecomfake.KfMsgOrEvent{Token: token, OpenKfID: "wkKF1"}.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatalf("kf callback: %d", status)
	}
	waitFor(t, "the kf reply", func() bool { return len(fake.KFSent()) > 0 })
	time.Sleep(300 * time.Millisecond)
	sent := fake.KFSent()
	if len(sent) != 1 || sent[0].ToUser != "wmKF" || sent[0].OpenKfID != "wkKF1" || sent[0].MsgType != "text" ||
		!strings.Contains(sent[0].Text, "积分：0") {
		t.Fatalf("kf replies = %+v", sent)
	}
	sentOnce(t, s, "reply:wecom:kfmsg:kfmsg-points-1:0")
	if got := metricValue(t, s, inlineSeries) - inlineBefore; got != 2 {
		t.Errorf("%s grew by %v, want 2 (the welcome and the reply)", inlineSeries, got)
	}
	if got := metricValue(t, s, queuedSeries) - queuedBefore; got != 0 {
		t.Errorf("%s grew by %v, want 0", queuedSeries, got)
	}
}

// sentOnce checks that the outbox row of key is sent after one attempt.
func sentOnce(t *testing.T, s *started, key string) {
	t.Helper()
	ctx := context.Background()
	row, err := s.app.Store.OutboxByKey(ctx, key)
	if err != nil {
		t.Fatalf("outbox row %s: %v", key, err)
	}
	atts, _ := s.app.Store.SendAttempts(ctx, row.ID)
	if row.State != store.OutboxSent || row.Attempts != 1 || len(atts) != 1 || atts[0].Outcome != "sent" {
		t.Errorf("outbox row %s: %s after %d attempts %+v, want sent after one", key, row.State, row.Attempts, atts)
	}
}
