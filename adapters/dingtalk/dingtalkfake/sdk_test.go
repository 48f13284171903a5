package dingtalkfake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/chatbot"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/client"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/event"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/logger"

	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
)

// These tests drive the fake with the real stream SDK, v0.9.1, which
// needs handling with care to be race-free:
//
//   - Each connection carries at most one frame the SDK acks: the SDK
//     writes every ack from a goroutine of its own, and the race detector
//     reports two such writes on one connection (see the package comment).
//   - Nothing calls StreamClient.Close: it sets the client's conn field to
//     nil while the client's read goroutine may be about to read it again,
//     which is a data race and can crash the process with a nil pointer
//     dereference in that goroutine. A client is stopped from the server
//     side instead: the gateway's Close (or Drop) ends its read loop.
//   - A client with AutoReconnect on would then dial again, forever; the
//     tests that use it switch AutoReconnect off from the handler of their
//     last frame, which the socket write of its ack orders before the read
//     loop looks at the flag.
//   - There is no test of the SDK receiving a SYSTEM disconnect: its
//     handler calls Close, with the consequences above (the race detector
//     reports it, and the read goroutine crashed the test binary with a nil
//     pointer dereference). gateway_test.go covers the disconnect frame.

func TestMain(m *testing.M) {
	// The SDK lazily sets its global logger on first use, from whichever
	// goroutine gets there first: a data race unless it is set up front.
	logger.SetLogger(sdkLogger{verbose: os.Getenv("DINGTALKFAKE_SDK_LOG") != ""})
	os.Exit(m.Run())
}

type sdkLogger struct{ verbose bool }

func (l sdkLogger) Debugf(format string, args ...any)   { l.logf("debug", format, args...) }
func (l sdkLogger) Infof(format string, args ...any)    { l.logf("info", format, args...) }
func (l sdkLogger) Warningf(format string, args ...any) { l.logf("warn", format, args...) }
func (l sdkLogger) Errorf(format string, args ...any)   { l.logf("error", format, args...) }
func (l sdkLogger) Fatalf(format string, args ...any)   { l.logf("fatal", format, args...) }

func (l sdkLogger) logf(level, format string, args ...any) {
	if l.verbose {
		log.Printf("sdk %s: %s", level, fmt.Sprintf(format, args...))
	}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startClient starts a real SDK stream client against gw. register adds
// the handlers before the client registers its subscriptions.
func startClient(t *testing.T, gw *dingtalkfake.Gateway, autoReconnect bool, register func(*client.StreamClient)) *client.StreamClient {
	t.Helper()
	cli := client.NewStreamClient(
		client.WithAppCredential(client.NewAppCredentialConfig(gw.ClientID(), gw.ClientSecret())),
		client.WithOpenApiHost(gw.URL()),
		client.WithAutoReconnect(autoReconnect),
	)
	register(cli)
	if err := cli.Start(testContext(t)); err != nil {
		t.Fatalf("starting stream client: %v", err)
	}
	// No cleanup: gw's, registered before, stops the client.
	return cli
}

func noProtocolErrors(t *testing.T, gw *dingtalkfake.Gateway) {
	t.Helper()
	for _, err := range gw.ProtocolErrors() {
		t.Errorf("protocol error: %v", err)
	}
}

func TestSDKReceivesBotMessageAndAcks(t *testing.T) {
	api := dingtalkfake.NewOpenAPI(t)
	gw := dingtalkfake.New(t, dingtalkfake.WithOpenAPI(api))
	ctx := testContext(t)

	got := make(chan *chatbot.BotCallbackDataModel, 1)
	startClient(t, gw, false, func(cli *client.StreamClient) {
		cli.RegisterChatBotCallbackRouter(func(ctx context.Context, m *chatbot.BotCallbackDataModel) ([]byte, error) {
			// Reply the way the SDK's example does, through the session webhook.
			if err := chatbot.NewChatbotReplier().SimpleReplyText(ctx, m.SessionWebhook, []byte("hi "+m.SenderNick)); err != nil {
				return nil, err
			}
			got <- m
			return []byte(`{"response":null}`), nil
		})
	})

	id := gw.PushBotMessage(dingtalkfake.BotMessage{
		ConversationID: "cidMember01==",
		SenderStaffID:  "staff01",
		SenderNick:     "Li Lei",
		Text:           &dingtalkfake.Text{Content: " nearest store"},
	})
	var m *chatbot.BotCallbackDataModel
	select {
	case m = <-got:
	case <-ctx.Done():
		t.Fatal("bot message not handled")
	}
	ack, err := gw.WaitAck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	f, _ := gw.Frame(id)
	var sent dingtalkfake.BotMessage
	if err := json.Unmarshal([]byte(f.Data), &sent); err != nil {
		t.Fatal(err)
	}
	gotFields := map[string]any{
		"conversationId": m.ConversationId, "msgId": m.MsgId, "senderStaffId": m.SenderStaffId,
		"senderId": m.SenderId, "sessionWebhook": m.SessionWebhook,
		"sessionWebhookExpiredTime": m.SessionWebhookExpiredTime, "text.content": m.Text.Content,
		"msgtype": m.Msgtype, "conversationType": m.ConversationType, "chatbotCorpId": m.ChatbotCorpId,
	}
	wantFields := map[string]any{
		"conversationId": "cidMember01==", "msgId": sent.MsgID, "senderStaffId": "staff01",
		"senderId": sent.SenderID, "sessionWebhook": sent.SessionWebhook,
		"sessionWebhookExpiredTime": sent.SessionWebhookExpiredTime, "text.content": " nearest store",
		"msgtype": "text", "conversationType": "1", "chatbotCorpId": gw.CorpID(),
	}
	if diff := cmp.Diff(wantFields, gotFields); diff != "" {
		t.Errorf("bot message (-want +got):\n%s", diff)
	}
	if sent.RobotCode != gw.ClientID() {
		t.Errorf("robotCode = %q, want %q", sent.RobotCode, gw.ClientID())
	}

	wantAck := dingtalkfake.Ack{
		Code:    200,
		Headers: map[string]string{"messageId": id, "contentType": "application/json"},
		Data:    `{"response":null}`,
	}
	if diff := cmp.Diff(wantAck, ack); diff != "" {
		t.Errorf("ack (-want +got):\n%s", diff)
	}

	replies := api.Replies()
	if len(replies) != 1 || replies[0].ConversationID != "cidMember01==" || replies[0].Msgtype != "text" ||
		!strings.Contains(string(replies[0].Body), "hi Li Lei") {
		t.Errorf("session webhook replies = %+v", replies)
	}

	opens := gw.OpenRequests()
	if len(opens) != 1 {
		t.Fatalf("%d connections/open requests, want 1", len(opens))
	}
	subs := map[dingtalkfake.Subscription]bool{}
	for _, s := range opens[0].Subscriptions {
		subs[s] = true
	}
	for _, s := range []dingtalkfake.Subscription{
		{Type: "CALLBACK", Topic: dingtalkfake.BotTopic},
		{Type: "SYSTEM", Topic: "ping"},
		{Type: "SYSTEM", Topic: "disconnect"},
	} {
		if !subs[s] {
			t.Errorf("subscriptions %v lack %v", opens[0].Subscriptions, s)
		}
	}
	if opens[0].UA != "dingtalk-sdk-go/v0.9.1" {
		t.Errorf("ua = %q", opens[0].UA)
	}
	noProtocolErrors(t, gw)
}

func TestSDKAnswersPing(t *testing.T) {
	gw := dingtalkfake.New(t)
	ctx := testContext(t)
	startClient(t, gw, false, func(cli *client.StreamClient) {
		cli.RegisterChatBotCallbackRouter(func(context.Context, *chatbot.BotCallbackDataModel) ([]byte, error) {
			return nil, nil
		})
	})

	pong, err := gw.Ping(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ping, _ := gw.Frame(pong.MessageID())
	want := dingtalkfake.Ack{
		Code:    200,
		Headers: map[string]string{"messageId": ping.MessageID(), "contentType": "application/json"},
		Message: "ok",
		Data:    ping.Data, // the opaque comes back
	}
	if diff := cmp.Diff(want, pong); diff != "" {
		t.Errorf("pong (-want +got):\n%s", diff)
	}
	if !strings.Contains(ping.Data, `"opaque"`) {
		t.Errorf("ping data = %s", ping.Data)
	}
	noProtocolErrors(t, gw)
}

func TestSDKEvents(t *testing.T) {
	tests := []struct {
		eventType string
		data      any
		status    event.EventProcessStatusType
		wantCode  int
		wantData  string
	}{
		{dingtalkfake.EventUserAddOrg, map[string]any{"timeStamp": "1685501863357", "userId": []string{"staff07"}},
			event.EventProcessStatusKSuccess, 200, `{"status":"SUCCESS","message":"success"}`},
		{dingtalkfake.EventUserLeaveOrg, map[string]any{"timeStamp": "1685501863358", "userId": []string{"staff01", "staff02"}},
			event.EventProcessStatusKSuccess, 200, `{"status":"SUCCESS","message":"success"}`},
		{dingtalkfake.EventUserModifyOrg, map[string]any{"timeStamp": "1685501863359", "userId": []string{"staff03"}},
			event.EventProcessStatusKSuccess, 200, `{"status":"SUCCESS","message":"success"}`},
		// LATER asks the gateway to push the event again later; the SDK's
		// event handler acks it with code 500.
		{dingtalkfake.EventUserLeaveOrg, map[string]any{"timeStamp": "1685501863360", "userId": []string{"staff04"}},
			event.EventProcessStatusKLater, 500, `{"status":"LATER","message":"later"}`},
	}
	for _, tc := range tests {
		t.Run(tc.eventType+"/"+string(tc.status), func(t *testing.T) {
			gw := dingtalkfake.New(t)
			ctx := testContext(t)
			type received struct {
				header *event.EventHeader
				data   string
			}
			got := make(chan received, 1)
			startClient(t, gw, false, func(cli *client.StreamClient) {
				// Events arrive on topic "*": a handler registered for one
				// eventType with RegisterEventRouter would never be called.
				h := event.NewDefaultEventFrameHandler(func(_ context.Context, h *event.EventHeader, raw []byte) (event.EventProcessStatusType, error) {
					got <- received{h, string(raw)}
					return tc.status, nil
				})
				cli.RegisterAllEventRouter(h.OnEventReceived)
			})

			id := gw.PushEvent(tc.eventType, tc.data)
			var r received
			select {
			case r = <-got:
			case <-ctx.Done():
				t.Fatal("event not handled")
			}
			f, _ := gw.Frame(id)
			wantHeader := &event.EventHeader{
				EventId:           f.Headers["eventId"],
				EventBornTime:     r.header.EventBornTime,
				EventCorpId:       gw.CorpID(),
				EventType:         tc.eventType,
				EventUnifiedAppId: dingtalkfake.DefaultAppID,
			}
			if diff := cmp.Diff(wantHeader, r.header); diff != "" {
				t.Errorf("event header (-want +got):\n%s", diff)
			}
			if r.header.EventId == "" || r.header.EventBornTime == 0 {
				t.Errorf("event header lacks id or born time: %+v", r.header)
			}
			wantData, _ := json.Marshal(tc.data)
			if r.data != string(wantData) {
				t.Errorf("event data = %s, want %s", r.data, wantData)
			}
			ack, err := gw.WaitAck(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			want := dingtalkfake.Ack{
				Code:    tc.wantCode,
				Headers: map[string]string{"messageId": id, "contentType": "application/json"},
				Message: "ok",
				Data:    tc.wantData,
			}
			if diff := cmp.Diff(want, ack); diff != "" {
				t.Errorf("ack (-want +got):\n%s", diff)
			}
			if subs := gw.OpenRequests()[0].Subscriptions; !slices.Contains(subs, dingtalkfake.Subscription{Type: "EVENT", Topic: "*"}) {
				t.Errorf("subscriptions %v lack EVENT *", subs)
			}
			noProtocolErrors(t, gw)
		})
	}
}

func TestSDKReconnectsAfterDrop(t *testing.T) {
	gw := dingtalkfake.New(t)
	ctx := testContext(t)

	got := make(chan string, 4)
	startClient(t, gw, true, func(cli *client.StreamClient) {
		cli.RegisterChatBotCallbackRouter(func(_ context.Context, m *chatbot.BotCallbackDataModel) ([]byte, error) {
			if m.Text.Content == "during" {
				cli.AutoReconnect = false // the last frame: let the cleanup stop the client
			}
			got <- m.Text.Content
			return nil, nil
		})
	})
	expect := func(want string) {
		t.Helper()
		select {
		case text := <-got:
			if text != want {
				t.Fatalf("handled %q, want %q", text, want)
			}
		case <-ctx.Done():
			t.Fatalf("%q not handled", want)
		}
	}

	first := gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid1", SenderStaffID: "s1", Text: &dingtalkfake.Text{Content: "before"}})
	expect("before")
	if _, err := gw.WaitAck(ctx, first); err != nil {
		t.Fatal(err)
	}

	gw.Drop()
	// Pushed while the client is away: it waits for the next connection.
	during := gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid1", SenderStaffID: "s1", Text: &dingtalkfake.Text{Content: "during"}})

	if err := gw.WaitAccepted(ctx, 2); err != nil {
		t.Fatal(err)
	}
	expect("during")
	if _, err := gw.WaitAck(ctx, during); err != nil {
		t.Fatal(err)
	}

	if n := len(gw.OpenRequests()); n != 2 {
		t.Errorf("%d connections/open requests, want 2 (one per connection)", n)
	}
	for _, id := range []string{first, during} {
		if n := gw.Deliveries(id); n != 1 {
			t.Errorf("frame %s delivered %d times, want 1", id, n)
		}
	}
	noProtocolErrors(t, gw)
}

func TestSDKGetsUnackedFrameAgainAfterReconnect(t *testing.T) {
	gw := dingtalkfake.New(t, dingtalkfake.WithAckTimeout(time.Minute))
	ctx := testContext(t)

	calls := make(chan int32, 4)
	var n atomic.Int32
	startClient(t, gw, true, func(cli *client.StreamClient) {
		cli.RegisterChatBotCallbackRouter(func(context.Context, *chatbot.BotCallbackDataModel) ([]byte, error) {
			c := n.Add(1)
			if c == 1 {
				calls <- c
				// The SDK recovers the panic and sends no ack, as when
				// the process dies while handling a message.
				panic("handler crashed")
			}
			cli.AutoReconnect = false // the last frame: let the cleanup stop the client
			calls <- c
			return nil, nil
		})
	})

	id := gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid1", SenderStaffID: "s1", Text: &dingtalkfake.Text{Content: "hello"}})
	select {
	case <-calls:
	case <-ctx.Done():
		t.Fatal("message not handled")
	}
	if len(gw.Acks(id)) != 0 {
		t.Fatal("crashed handler acked")
	}
	gw.Drop()
	select {
	case c := <-calls:
		if c != 2 {
			t.Fatalf("handler call %d, want 2", c)
		}
	case <-ctx.Done():
		t.Fatal("frame not delivered again after reconnect")
	}
	if _, err := gw.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	if d := gw.Deliveries(id); d != 2 {
		t.Errorf("delivered %d times, want 2", d)
	}
	noProtocolErrors(t, gw)
}

func TestSDKStartFailsOnBadCredentials(t *testing.T) {
	gw := dingtalkfake.New(t)
	cli := client.NewStreamClient(
		client.WithAppCredential(client.NewAppCredentialConfig(gw.ClientID(), "wrong")),
		client.WithOpenApiHost(gw.URL()),
		client.WithAutoReconnect(false),
	)
	cli.RegisterChatBotCallbackRouter(func(context.Context, *chatbot.BotCallbackDataModel) ([]byte, error) { return nil, nil })
	err := cli.Start(testContext(t))
	if err == nil {
		t.Fatal("Start succeeded with a wrong secret")
	}
	// The SDK's error is the raw response body.
	var body struct{ Code, Message, Requestid string }
	if jerr := json.Unmarshal([]byte(err.Error()), &body); jerr != nil || body.Code != "authFailed" || body.Requestid == "" {
		t.Errorf("error = %v, want the authFailed body", err)
	}
	if gw.Accepted() != 0 {
		t.Errorf("a connection was accepted")
	}
}

// The SDK's replier only looks at the HTTP status, and the session webhook
// answers an expired or unknown session with 200 and errcode 300001: the
// reply is lost and the SDK reports success.
func TestSDKReplierMissesExpiredSession(t *testing.T) {
	api := dingtalkfake.NewOpenAPI(t)
	url, _ := api.NewSessionWebhook("cidMember01==", time.Nanosecond)
	time.Sleep(time.Millisecond)
	if err := chatbot.NewChatbotReplier().SimpleReplyText(testContext(t), url, []byte("hi")); err != nil {
		t.Fatalf("SimpleReplyText() = %v; the SDK now sees the errcode, update the adapter notes", err)
	}
	if n := len(api.Replies()); n != 0 {
		t.Errorf("%d replies accepted on an expired session", n)
	}
}
