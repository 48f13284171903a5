package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
)

func TestGuideTaskMessageRecordedOnceAckedAfterRecord(t *testing.T) {
	env := newEnv(t, nil, func(c *Config, _ *Deps) { c.Brand = "acme" })
	env.run(t)
	release := env.rec.blockRecords()
	defer release()

	id := env.gw.PushBotMessage(dingtalkfake.BotMessage{
		ConversationID: "cidGuide01==",
		SenderStaffID:  "guide01",
		SenderNick:     "Wang Fang",
		Text:           &dingtalkfake.Text{Content: " my tasks"},
	})
	msgID := botMsgID(t, env.gw, id)
	env.rec.waitEntered(t, msgID)

	// Record has not returned: nothing may be acked yet.
	time.Sleep(100 * time.Millisecond)
	if acks := env.gw.Acks(id); len(acks) != 0 {
		t.Fatalf("acked before Record returned: %+v", acks)
	}
	release()
	if ack := waitAck(t, env.gw, id); ack.Code != 200 {
		t.Fatalf("ack code %d, want 200", ack.Code)
	}

	f, _ := env.gw.Frame(id)
	var sent dingtalkfake.BotMessage
	if err := json.Unmarshal([]byte(f.Data), &sent); err != nil {
		t.Fatal(err)
	}
	want := adapters.Inbound{
		Channel:        "dingtalk",
		DedupKey:       sent.MsgID,
		Brand:          "acme",
		From:           adapters.PartyGuide,
		SenderID:       "guide01",
		ConversationID: "cidGuide01==",
		Kind:           "text",
		Text:           "my tasks",
		Attrs:          map[string]string{"sender_nick": "Wang Fang", "msgtype": "text"},
		ReplyTo: map[string]string{
			"session_webhook":         sent.SessionWebhook,
			"session_webhook_expires": itoa(sent.SessionWebhookExpiredTime),
			"conversation_type":       "1",
			"robot_code":              env.gw.ClientID(),
		},
		At: time.UnixMilli(sent.CreateAt),
	}
	got := env.rec.Recorded()
	if len(got) != 1 {
		t.Fatalf("recorded %d inbounds, want 1", len(got))
	}
	if diff := cmp.Diff(want, got[0]); diff != "" {
		t.Errorf("inbound (-want +got):\n%s", diff)
	}

	// DingTalk delivers it again: the inbox ignores the repeat, and the
	// channel still acks it 200 so it is not delivered a third time.
	if err := env.gw.Redeliver(id); err != nil {
		t.Fatal(err)
	}
	if ack := waitAck(t, env.gw, id); ack.Code != 200 {
		t.Errorf("ack of the redelivery: code %d, want 200", ack.Code)
	}
	if n := len(env.gw.Acks(id)); n != 2 {
		t.Errorf("%d acks, want 2", n)
	}
	if n := env.rec.Calls(); n != 2 {
		t.Errorf("Record called %d times, want 2", n)
	}
	if n := len(env.rec.Recorded()); n != 1 {
		t.Errorf("recorded %d times, want once", n)
	}
}

func TestBotMessageKinds(t *testing.T) {
	env := newEnv(t, nil)
	env.run(t)
	tests := []struct {
		name string
		msg  dingtalkfake.BotMessage
		want adapters.Inbound // the fields compared
	}{
		{
			name: "member text",
			msg:  dingtalkfake.BotMessage{SenderStaffID: "staff77", Text: &dingtalkfake.Text{Content: "nearest store?"}},
			want: adapters.Inbound{From: adapters.PartyMember, SenderID: "staff77", Kind: "text", Text: "nearest store?"},
		},
		{
			name: "sender outside the organisation",
			msg:  dingtalkfake.BotMessage{SenderID: "$:LWCP_v1:$ext42", Text: &dingtalkfake.Text{Content: "my points"}},
			want: adapters.Inbound{From: adapters.PartyMember, SenderID: "$:LWCP_v1:$ext42", Kind: "text", Text: "my points"},
		},
		{
			name: "picture",
			msg: dingtalkfake.BotMessage{SenderStaffID: "guide01", Msgtype: "picture",
				Content: map[string]string{"downloadCode": "dl-1", "pictureDownloadCode": "pdl-1"}},
			want: adapters.Inbound{From: adapters.PartyGuide, SenderID: "guide01", Kind: "image",
				Attrs: map[string]string{"download_code": "dl-1"}},
		},
		{
			name: "rich text",
			msg: dingtalkfake.BotMessage{SenderStaffID: "staff77", Msgtype: "richText",
				Content: map[string]any{"richText": []map[string]string{
					{"text": "receipt "}, {"type": "picture", "downloadCode": "dl-2"}, {"text": "is attached"}}}},
			want: adapters.Inbound{From: adapters.PartyMember, SenderID: "staff77", Kind: "text", Text: "receipt\nis attached",
				Attrs: map[string]string{"download_code": "dl-2"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.msg.ConversationID = "cid-" + tc.name
			id := env.gw.PushBotMessage(tc.msg)
			if ack := waitAck(t, env.gw, id); ack.Code != 200 {
				t.Fatalf("ack code %d", ack.Code)
			}
			var got *adapters.Inbound
			for _, in := range env.rec.Recorded() {
				if in.ConversationID == tc.msg.ConversationID {
					got = &in
				}
			}
			if got == nil {
				t.Fatal("not recorded")
			}
			if tc.want.Attrs == nil {
				tc.want.Attrs = map[string]string{}
			}
			delete(got.Attrs, "msgtype")
			tc.want.Channel, tc.want.ConversationID = "dingtalk", tc.msg.ConversationID
			opts := cmpopts.IgnoreFields(adapters.Inbound{}, "DedupKey", "ReplyTo", "At")
			if diff := cmp.Diff(tc.want, *got, opts); diff != "" {
				t.Errorf("inbound (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecordFailureAcks500AndRedeliveryRecords(t *testing.T) {
	env := newEnv(t, nil)
	env.run(t)
	env.rec.setFail(errDBDown)

	id := env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "staff01", Text: &dingtalkfake.Text{Content: "hello"}})
	if ack := waitAck(t, env.gw, id); ack.Code != 500 {
		t.Fatalf("ack code %d, want 500", ack.Code)
	}
	if n := env.rec.Calls(); n != env.c.recordTries {
		t.Errorf("Record called %d times, want %d (retried before giving up)", n, env.c.recordTries)
	}
	if n := len(env.rec.Recorded()); n != 0 {
		t.Fatalf("recorded %d", n)
	}

	env.rec.setFail(nil)
	if err := env.gw.Redeliver(id); err != nil {
		t.Fatal(err)
	}
	if ack := waitAck(t, env.gw, id); ack.Code != 200 {
		t.Fatalf("ack of the redelivery: code %d, want 200", ack.Code)
	}
	if got := env.rec.Recorded(); len(got) != 1 || got[0].Text != "hello" {
		t.Errorf("recorded %+v, want the message once", got)
	}
}

func TestRecordRetriedWithinOneDelivery(t *testing.T) {
	env := newEnv(t, nil)
	env.run(t)
	var once sync.Once
	env.c.recorder = recorderFunc(func(ctx context.Context, in *adapters.Inbound) error {
		var err error
		once.Do(func() { err = errDBDown })
		if err != nil {
			return err
		}
		return env.rec.Record(ctx, in)
	})
	id := env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "staff01", Text: &dingtalkfake.Text{Content: "hi"}})
	if ack := waitAck(t, env.gw, id); ack.Code != 200 {
		t.Fatalf("ack code %d, want 200 after a second attempt", ack.Code)
	}
	if n := len(env.rec.Recorded()); n != 1 {
		t.Errorf("recorded %d", n)
	}
}

type recorderFunc func(ctx context.Context, in *adapters.Inbound) error

func (f recorderFunc) Record(ctx context.Context, in *adapters.Inbound) error { return f(ctx, in) }

func TestGuideLookupFailureIsRetriedNotGuessed(t *testing.T) {
	var calls int
	var mu sync.Mutex
	env := newEnv(t, nil, func(_ *Config, d *Deps) {
		d.Guides = GuideFunc(func(context.Context, string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			return false, errDBDown
		})
	})
	env.run(t)
	id := env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "guide01", Text: &dingtalkfake.Text{Content: "my tasks"}})
	if ack := waitAck(t, env.gw, id); ack.Code != 500 {
		t.Fatalf("ack code %d, want 500", ack.Code)
	}
	if n := len(env.rec.Recorded()); n != 0 {
		t.Errorf("recorded %d inbounds with an unknown sender party", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != env.c.recordTries {
		t.Errorf("IsGuide called %d times, want %d", calls, env.c.recordTries)
	}
}

func TestOrgEvents(t *testing.T) {
	env := newEnv(t, nil, func(c *Config, _ *Deps) { c.Brand = "acme" })
	env.run(t)
	tests := []struct {
		eventType string
		users     []string
		want      string
	}{
		{dingtalkfake.EventUserAddOrg, []string{"u1", "u2"}, "guide.joined"},
		{dingtalkfake.EventUserLeaveOrg, []string{"u3"}, "guide.left"},
		{dingtalkfake.EventUserModifyOrg, []string{"u4"}, "guide.updated"},
		{dingtalkfake.EventUserActiveOrg, []string{"u5"}, "guide.updated"},
	}
	for _, tc := range tests {
		t.Run(tc.eventType, func(t *testing.T) {
			before := len(env.rec.Recorded())
			id := env.gw.PushEvent(tc.eventType, map[string]any{"timeStamp": "1700000000000", "userId": tc.users})
			ack := waitAck(t, env.gw, id)
			if ack.Code != 200 || !strings.Contains(ack.Data, `"status":"SUCCESS"`) {
				t.Fatalf("ack = %+v, want 200 SUCCESS", ack)
			}
			f, _ := env.gw.Frame(id)
			eventID := f.Headers["eventId"]
			born := time.UnixMilli(mustAtoi(t, f.Headers["eventBornTime"]))
			var want []adapters.Inbound
			for _, u := range tc.users {
				want = append(want, adapters.Inbound{
					Channel:  "dingtalk",
					DedupKey: eventID + ":" + u,
					Brand:    "acme",
					From:     adapters.PartyGuide,
					SenderID: u,
					Kind:     "event",
					Event:    tc.want,
					Attrs:    map[string]string{"user_id": u, "event_type": tc.eventType, "corp_id": env.gw.CorpID()},
					At:       born,
				})
			}
			if diff := cmp.Diff(want, env.rec.Recorded()[before:]); diff != "" {
				t.Errorf("inbounds (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("unknown event type", func(t *testing.T) {
		before := env.rec.Calls()
		id := env.gw.PushEvent("chat_update_title", map[string]any{"chatId": "c1"})
		ack := waitAck(t, env.gw, id)
		if ack.Code != 200 || !strings.Contains(ack.Data, `"status":"SUCCESS"`) {
			t.Errorf("ack = %+v, want 200 SUCCESS", ack)
		}
		if env.rec.Calls() != before {
			t.Error("an unknown event was recorded")
		}
		if !strings.Contains(env.logs.String(), "ignoring event") {
			t.Error("unknown event not logged")
		}
	})

	t.Run("record fails", func(t *testing.T) {
		env.rec.setFail(errDBDown)
		id := env.gw.PushEvent(dingtalkfake.EventUserLeaveOrg, map[string]any{"timeStamp": 1700000000000, "userId": []string{"u9"}})
		ack := waitAck(t, env.gw, id)
		if ack.Code != 500 || !strings.Contains(ack.Data, `"status":"LATER"`) {
			t.Errorf("ack = %+v, want 500 LATER", ack)
		}
		env.rec.setFail(nil)
		if err := env.gw.Redeliver(id); err != nil {
			t.Fatal(err)
		}
		if ack := waitAck(t, env.gw, id); ack.Code != 200 {
			t.Errorf("ack of the redelivery = %+v", ack)
		}
		got := env.rec.Recorded()
		if last := got[len(got)-1]; last.SenderID != "u9" || last.Event != "guide.left" {
			t.Errorf("last recorded = %+v", last)
		}
	})
}

func TestPingAnsweredWhileRecordBlocks(t *testing.T) {
	env := newEnv(t, []dingtalkfake.Option{dingtalkfake.WithMaxInFlight(2)})
	env.run(t)
	release := env.rec.blockRecords()
	defer release()
	id := env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "s1", Text: &dingtalkfake.Text{Content: "a"}})
	env.rec.waitEntered(t, botMsgID(t, env.gw, id))

	ack, err := env.gw.Ping(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Code != 200 || !strings.HasPrefix(ack.Data, `{"opaque":"`) || ack.MessageID() == "" {
		t.Errorf("pong = %+v", ack)
	}
	release()
	if ack := waitAck(t, env.gw, id); ack.Code != 200 {
		t.Errorf("ack code %d", ack.Code)
	}
}

func TestReconnectAfterDropLosesNothing(t *testing.T) {
	var mu sync.Mutex
	var changes []bool
	env := newEnv(t, nil, func(_ *Config, d *Deps) {
		d.OnStateChange = func(up bool) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, up)
		}
	})
	env.run(t)
	ctx := testContext(t)
	if err := env.gw.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	release := env.rec.blockRecords()
	defer release()
	a := env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "s1", Text: &dingtalkfake.Text{Content: "before the drop"}})
	env.rec.waitEntered(t, botMsgID(t, env.gw, a))

	env.gw.Drop() // a is being recorded and not acked
	b := env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "s2", Text: &dingtalkfake.Text{Content: "after the drop"}})
	release()

	for _, id := range []string{a, b} {
		if ack := waitAck(t, env.gw, id); ack.Code != 200 {
			t.Errorf("ack of %s: code %d", id, ack.Code)
		}
	}
	var texts []string
	for _, in := range env.rec.Recorded() {
		texts = append(texts, in.Text)
	}
	if diff := cmp.Diff([]string{"before the drop", "after the drop"}, texts); diff != "" {
		t.Errorf("recorded (-want +got):\n%s", diff)
	}
	if n := env.gw.Accepted(); n != 2 {
		t.Errorf("%d connections accepted, want 2", n)
	}
	st := env.c.State()
	if st.Status != StatusConnected || st.Connects != 2 || st.LastErr == nil {
		t.Errorf("State() = %+v, want connected, 2 connects, and the drop as LastErr", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]bool{true, false, true}, changes); diff != "" {
		t.Errorf("OnStateChange calls (-want +got):\n%s", diff)
	}
}

func TestReconnectBacksOff(t *testing.T) {
	env := newEnv(t, nil)
	env.c.backoffMin = 20 * time.Millisecond
	env.gw.FailNextOpens(3, 503, "ServiceUnavailable", "try later")
	start := time.Now()
	env.run(t)
	if err := env.gw.WaitConnected(testContext(t)); err != nil {
		t.Fatal(err)
	}
	// Three failures wait at least 10+20+40ms (half of 20, 40, 80).
	if d := time.Since(start); d < 70*time.Millisecond {
		t.Errorf("connected %v after start, want backoff of at least 70ms", d)
	}
	eventually(t, "connected state", env.c.Connected)
	if err := env.c.State().LastErr; !errors.Is(err, adapters.ErrTemporary) || !strings.Contains(err.Error(), "ServiceUnavailable") {
		t.Errorf("LastErr = %v, want the 503", err)
	}
	if n := len(env.gw.OpenRequests()); n != 1 {
		t.Errorf("%d successful opens, want 1", n)
	}
}

func TestReconnectAfterSystemDisconnect(t *testing.T) {
	// A long grace: the client must close on its own to reconnect.
	env := newEnv(t, []dingtalkfake.Option{dingtalkfake.WithDisconnectGrace(time.Minute)})
	env.run(t)
	ctx := testContext(t)
	if err := env.gw.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	first := env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "s1", Text: &dingtalkfake.Text{Content: "one"}})
	waitAck(t, env.gw, first)

	env.gw.Disconnect()
	later := env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "s1", Text: &dingtalkfake.Text{Content: "two"}})
	if ack := waitAck(t, env.gw, later); ack.Code != 200 {
		t.Fatalf("ack code %d", ack.Code)
	}
	if n := env.gw.Accepted(); n != 2 {
		t.Errorf("%d connections accepted, want 2", n)
	}
	eventually(t, "the old connection closed by the client", func() bool { return env.gw.Connections() == 1 })
	if st := env.c.State(); st.LastErr != nil {
		t.Errorf("LastErr = %v after a clean disconnect, want nil", st.LastErr)
	}
	if n := len(env.rec.Recorded()); n != 2 {
		t.Errorf("recorded %d, want 2", n)
	}
}

func TestRunStopsPromptlyWithoutLeaks(t *testing.T) {
	env := newEnv(t, nil)
	base := runtime.NumGoroutine()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.c.Run(ctx) }()
	id := env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "s1", Text: &dingtalkfake.Text{Content: "a"}})
	waitAck(t, env.gw, id)
	if !env.c.Connected() {
		t.Error("Connected() = false while a frame was just acked")
	}

	if err := env.c.Run(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run = %v, want an error", err)
	}

	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Run took %v to return", d)
	}
	if st := env.c.State(); st.Status != StatusDisconnected {
		t.Errorf("state after Run = %v", st.Status)
	}
	if err := env.gw.WaitNoConnections(testContext(t)); err != nil {
		t.Fatal(err)
	}
	env.http.CloseIdleConnections()
	checkGoroutines(t, base)
}

func TestRunStopsWhileRecordBlocks(t *testing.T) {
	env := newEnv(t, nil)
	base := runtime.NumGoroutine()
	release := env.rec.blockRecords()
	defer release()
	stop := env.run(t)
	id := env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "s1", Text: &dingtalkfake.Text{Content: "a"}})
	env.rec.waitEntered(t, botMsgID(t, env.gw, id))

	start := time.Now()
	stop() // Record never returns by itself: the drain timeout cancels it
	if d := time.Since(start); d < env.c.drainTimeout || d > env.c.drainTimeout+time.Second {
		t.Errorf("Run took %v to return, want about the drain timeout %v", d, env.c.drainTimeout)
	}
	if n := len(env.rec.Recorded()); n != 0 {
		t.Errorf("recorded %d", n)
	}
	if err := env.gw.WaitNoConnections(testContext(t)); err != nil {
		t.Fatal(err)
	}
	env.http.CloseIdleConnections()
	checkGoroutines(t, base)
}

// Stopping Run closes the connection at once, so that the gateway pushes
// nothing more, but what was already read is still recorded.
func TestRunRecordsWhatWasReadDuringShutdown(t *testing.T) {
	env := newEnv(t, []dingtalkfake.Option{dingtalkfake.WithMaxInFlight(3)})
	env.c.drainTimeout = 5 * time.Second
	release := env.rec.blockRecords()
	defer release()
	stop := env.run(t)
	var ids []string
	for _, text := range []string{"a", "b", "c"} {
		ids = append(ids, env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "s1", Text: &dingtalkfake.Text{Content: text}}))
	}
	env.rec.waitEntered(t, botMsgID(t, env.gw, ids[0])) // a (and b and c, side by side) held by the database
	eventually(t, "all three delivered", func() bool { return env.gw.Deliveries(ids[2]) == 1 })

	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	if err := env.gw.WaitNoConnections(testContext(t)); err != nil {
		t.Fatal(err) // closed while a is still being recorded
	}
	release() // the database answers during shutdown
	<-stopped
	var texts []string
	for _, in := range env.rec.Recorded() {
		texts = append(texts, in.Text)
	}
	slices.Sort(texts) // recorded side by side, in any order
	if diff := cmp.Diff([]string{"a", "b", "c"}, texts); diff != "" {
		t.Errorf("recorded (-want +got):\n%s", diff)
	}
	// Their acks could not follow the close frame: the fake will deliver
	// them again (DingTalk would for events), and the inbox dedupes.
	if n := env.gw.Pending(); n != 3 {
		t.Errorf("%d frames pending redelivery, want 3", n)
	}
}

func TestKeepAlive(t *testing.T) {
	tests := []struct {
		name          string
		pingInterval  time.Duration
		readTimeout   time.Duration
		wantReconnect bool
	}{
		{"pongs keep an idle connection", 20 * time.Millisecond, 300 * time.Millisecond, false},
		{"silence ends it", time.Hour, 100 * time.Millisecond, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, nil)
			env.c.pingInterval, env.c.readTimeout = tc.pingInterval, tc.readTimeout
			env.run(t)
			time.Sleep(700 * time.Millisecond)
			if got := env.gw.Accepted() > 1; got != tc.wantReconnect {
				t.Errorf("reconnected = %v (%d connections), want %v", got, env.gw.Accepted(), tc.wantReconnect)
			}
			if tc.wantReconnect && !strings.Contains(fmt.Sprint(env.c.State().LastErr), "timeout") {
				t.Errorf("LastErr = %v, want a read timeout", env.c.State().LastErr)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: time.Second}
	wantCaps := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, c := range wantCaps {
		c *= time.Millisecond
		d := b.next()
		if d < c/2 || d > c {
			t.Errorf("attempt %d: %v, want in [%v, %v]", i, d, c/2, c)
		}
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Errorf("after reset: %v", d)
	}
	for range 100 {
		b.next() // no overflow
	}
	if d := b.next(); d < 500*time.Millisecond || d > time.Second {
		t.Errorf("after many attempts: %v", d)
	}
}
