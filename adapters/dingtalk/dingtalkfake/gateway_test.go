package dingtalkfake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"

	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
)

// These tests speak the stream protocol by hand, with one reader and one
// writer per connection, to pin down the gateway's behaviour where the
// SDK cannot go under the race detector (several frames per connection).

var botSub = dingtalkfake.Subscription{Type: "CALLBACK", Topic: dingtalkfake.BotTopic}

type rawClient struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan dingtalkfake.Frame // closed when the connection ends
}

// openConnection registers with connections/open and returns the
// endpoint and ticket.
func openConnection(t *testing.T, gw *dingtalkfake.Gateway, subs ...dingtalkfake.Subscription) (endpoint, ticket string) {
	t.Helper()
	status, body := postJSON(t, gw.URL()+dingtalkfake.PathConnectionsOpen, "", map[string]any{
		"clientId":      gw.ClientID(),
		"clientSecret":  gw.ClientSecret(),
		"subscriptions": subs,
		"ua":            "dingtalkfake-test/1",
	})
	if status != http.StatusOK {
		t.Fatalf("connections/open: %d %s", status, body)
	}
	var resp struct{ Endpoint, Ticket string }
	if err := json.Unmarshal(body, &resp); err != nil || resp.Endpoint == "" || resp.Ticket == "" {
		t.Fatalf("connections/open answered %s (%v)", body, err)
	}
	return resp.Endpoint, resp.Ticket
}

func dialRaw(t *testing.T, gw *dingtalkfake.Gateway, subs ...dingtalkfake.Subscription) *rawClient {
	t.Helper()
	endpoint, ticket := openConnection(t, gw, subs...)
	ws, _, err := websocket.DefaultDialer.Dial(endpoint+"?ticket="+ticket, nil)
	if err != nil {
		t.Fatalf("dialing %s: %v", endpoint, err)
	}
	c := &rawClient{t: t, ws: ws, frames: make(chan dingtalkfake.Frame, 16)}
	go func() {
		defer close(c.frames)
		for {
			var f dingtalkfake.Frame
			if err := ws.ReadJSON(&f); err != nil {
				return
			}
			c.frames <- f
		}
	}()
	t.Cleanup(func() { _ = ws.Close() })
	return c
}

// next returns the next frame, failing the test if none comes soon.
func (c *rawClient) next() dingtalkfake.Frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatal("connection closed, want a frame")
		}
		return f
	case <-time.After(5 * time.Second):
		c.t.Fatal("no frame")
	}
	return dingtalkfake.Frame{}
}

// quiet fails the test if a frame arrives within d.
func (c *rawClient) quiet(d time.Duration) {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if ok {
			c.t.Fatalf("unexpected frame %s %s", f.Type, f.Topic())
		}
	case <-time.After(d):
	}
}

func (c *rawClient) ack(f dingtalkfake.Frame, data string) {
	c.t.Helper()
	err := c.ws.WriteJSON(dingtalkfake.Ack{
		Code:    200,
		Headers: map[string]string{"messageId": f.MessageID(), "contentType": "application/json"},
		Message: "OK",
		Data:    data,
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

func bot(text string) dingtalkfake.BotMessage {
	return dingtalkfake.BotMessage{ConversationID: "cid1", SenderStaffID: "s1", Text: &dingtalkfake.Text{Content: text}}
}

func TestGatewaySendsOneFrameAtATime(t *testing.T) {
	gw := dingtalkfake.New(t)
	ctx := testContext(t)
	c := dialRaw(t, gw, botSub)
	ids := []string{gw.PushBotMessage(bot("a")), gw.PushBotMessage(bot("b")), gw.PushBotMessage(bot("c"))}
	for i, id := range ids {
		f := c.next()
		if f.MessageID() != id {
			t.Fatalf("frame %d is %s, want %s (push order)", i, f.MessageID(), id)
		}
		c.quiet(50 * time.Millisecond) // nothing more until the ack
		c.ack(f, `{"response":null}`)
		if _, err := gw.WaitAck(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	noProtocolErrors(t, gw)
}

func TestGatewayFrameShape(t *testing.T) {
	gw := dingtalkfake.New(t)
	c := dialRaw(t, gw, botSub, dingtalkfake.Subscription{Type: "EVENT", Topic: "*"})

	id := gw.PushBotMessage(bot("hello"))
	f := c.next()
	c.ack(f, "")
	if f.SpecVersion != "1.0" || f.Type != "CALLBACK" || f.Topic() != dingtalkfake.BotTopic || f.MessageID() != id {
		t.Errorf("bot frame = %+v", f)
	}
	for _, h := range []string{"contentType", "time", "appId", "connectionId"} {
		if f.Headers[h] == "" {
			t.Errorf("bot frame lacks header %s: %v", h, f.Headers)
		}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(f.Data), &m); err != nil {
		t.Fatalf("bot data is not JSON in a string: %v", err)
	}
	for _, k := range []string{"conversationId", "msgId", "senderStaffId", "senderId", "sessionWebhookExpiredTime",
		"createAt", "conversationType", "text", "msgtype", "robotCode", "chatbotCorpId"} {
		if _, ok := m[k]; !ok {
			t.Errorf("bot data lacks %s: %s", k, f.Data)
		}
	}

	id = gw.PushEvent(dingtalkfake.EventUserLeaveOrg, map[string]any{"timeStamp": "1", "userId": []string{"u1"}})
	f = c.next()
	c.ack(f, `{"status":"SUCCESS","message":"success"}`)
	if f.Type != "EVENT" || f.Topic() != "*" || f.MessageID() != id || f.Headers["eventType"] != "user_leave_org" ||
		f.Headers["eventCorpId"] != gw.CorpID() || f.Headers["eventId"] == "" || f.Headers["eventBornTime"] == "" ||
		f.Headers["eventUnifiedAppId"] == "" || f.Data != `{"timeStamp":"1","userId":["u1"]}` {
		t.Errorf("event frame = %+v", f)
	}
	noProtocolErrors(t, gw)
}

func TestGatewayMaxInFlight(t *testing.T) {
	gw := dingtalkfake.New(t, dingtalkfake.WithMaxInFlight(3))
	c := dialRaw(t, gw, botSub)
	for _, s := range []string{"a", "b", "c", "d"} {
		gw.PushBotMessage(bot(s))
	}
	var got []dingtalkfake.Frame
	for range 3 {
		got = append(got, c.next())
	}
	c.quiet(50 * time.Millisecond)
	c.ack(got[0], "")
	c.next() // "d" takes the freed slot
}

func TestGatewayRedeliversUnackedFramesOnNextConnection(t *testing.T) {
	gw := dingtalkfake.New(t, dingtalkfake.WithAckTimeout(50*time.Millisecond))
	ctx := testContext(t)
	c1 := dialRaw(t, gw, botSub)
	a := gw.PushBotMessage(bot("a"))
	b := gw.PushBotMessage(bot("b"))
	if f := c1.next(); f.MessageID() != a {
		t.Fatalf("got %s, want a", f.MessageID())
	}
	// a is not acked: after the ack timeout the gateway moves on to b.
	fb := c1.next()
	if fb.MessageID() != b {
		t.Fatalf("got %s, want b", fb.MessageID())
	}
	c1.ack(fb, "")
	if _, err := gw.WaitAck(ctx, b); err != nil {
		t.Fatal(err)
	}
	_ = c1.ws.Close()
	if err := gw.WaitNoConnections(ctx); err != nil {
		t.Fatal(err)
	}
	c := gw.PushBotMessage(bot("c")) // pushed while nobody is connected
	if n := gw.Pending(); n != 2 {
		t.Errorf("Pending() = %d, want 2 (a again, and c)", n)
	}

	c2 := dialRaw(t, gw, botSub)
	for _, want := range []string{a, c} {
		f := c2.next()
		if f.MessageID() != want {
			t.Fatalf("got %s, want %s", f.MessageID(), want)
		}
		c2.ack(f, "")
		if _, err := gw.WaitAck(ctx, want); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]int{a: 2, b: 1, c: 1} {
		if n := gw.Deliveries(id); n != want {
			t.Errorf("Deliveries(%s) = %d, want %d", id, n, want)
		}
	}
	noProtocolErrors(t, gw)
}

func TestGatewayDropRequeuesFrameInFlight(t *testing.T) {
	gw := dingtalkfake.New(t)
	ctx := testContext(t)
	c1 := dialRaw(t, gw, botSub)
	id := gw.PushBotMessage(bot("a"))
	c1.next()
	gw.Drop()
	if n := gw.Connections(); n != 0 {
		t.Errorf("Connections() = %d after Drop", n)
	}
	c2 := dialRaw(t, gw, botSub)
	f := c2.next()
	if f.MessageID() != id {
		t.Fatalf("got %s, want %s", f.MessageID(), id)
	}
	c2.ack(f, "")
	if _, err := gw.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n := gw.Accepted(); n != 2 {
		t.Errorf("Accepted() = %d, want 2", n)
	}
}

func TestGatewayPushesOnlySubscribedTopics(t *testing.T) {
	gw := dingtalkfake.New(t)
	c := dialRaw(t, gw, dingtalkfake.Subscription{Type: "EVENT", Topic: "*"})
	botID := gw.PushBotMessage(bot("a"))
	evID := gw.PushEvent(dingtalkfake.EventUserAddOrg, map[string]any{"timeStamp": "1", "userId": []string{"u1"}})
	f := c.next()
	if f.MessageID() != evID {
		t.Fatalf("got %s %s, want the event", f.Type, f.Topic())
	}
	c.ack(f, `{"status":"SUCCESS","message":"success"}`)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := gw.WaitAck(ctx, botID)
	if err == nil || !strings.Contains(err.Error(), "no connection subscribed to CALLBACK "+dingtalkfake.BotTopic) {
		t.Errorf("WaitAck error = %v, want it to name the missing subscription", err)
	}
}

func TestGatewayTickets(t *testing.T) {
	gw := dingtalkfake.New(t)
	endpoint, ticket := openConnection(t, gw, botSub)
	ws, _, err := websocket.DefaultDialer.Dial(endpoint+"?ticket="+ticket, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()

	short := dingtalkfake.New(t, dingtalkfake.WithTicketTTL(time.Millisecond))
	shortEndpoint, expired := openConnection(t, short, botSub)
	time.Sleep(5 * time.Millisecond)

	tests := []struct {
		name, url string
	}{
		{"used twice", endpoint + "?ticket=" + ticket},
		{"unknown", endpoint + "?ticket=nope"},
		{"missing", endpoint},
		{"expired", shortEndpoint + "?ticket=" + expired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws, resp, err := websocket.DefaultDialer.Dial(tc.url, nil)
			if err == nil {
				ws.Close()
				t.Fatal("dial succeeded")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("dial error %v, response %v; want 401", err, resp)
			}
		})
	}
	if n := gw.Accepted(); n != 1 {
		t.Errorf("Accepted() = %d, want 1", n)
	}
}

func TestGatewayConnectionsOpenErrors(t *testing.T) {
	gw := dingtalkfake.New(t)
	gw.FailNextOpens(1, http.StatusServiceUnavailable, "ServiceUnavailable", "try later")
	body := map[string]any{"clientId": gw.ClientID(), "clientSecret": gw.ClientSecret(), "subscriptions": []dingtalkfake.Subscription{botSub}}
	wrong := map[string]any{"clientId": gw.ClientID(), "clientSecret": "wrong", "subscriptions": []dingtalkfake.Subscription{botSub}}

	tests := []struct {
		name       string
		body       any
		wantStatus int
		wantCode   string
	}{
		{"injected failure", body, http.StatusServiceUnavailable, "ServiceUnavailable"},
		{"wrong secret", wrong, http.StatusUnauthorized, "authFailed"},
		{"then fine", body, http.StatusOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := postJSON(t, gw.URL()+dingtalkfake.PathConnectionsOpen, "", tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tc.wantStatus, raw)
			}
			if tc.wantCode != "" {
				checkAPIError(t, raw, tc.wantCode)
			}
		})
	}
	if n := len(gw.OpenRequests()); n != 1 {
		t.Errorf("%d open requests recorded, want 1", n)
	}
}

func TestGatewayDisconnect(t *testing.T) {
	gw := dingtalkfake.New(t, dingtalkfake.WithDisconnectGrace(100*time.Millisecond))
	ctx := testContext(t)
	c := dialRaw(t, gw, botSub)
	gw.PushBotMessage(bot("a"))
	fa := c.next() // in flight

	gw.Disconnect()
	if n := gw.Connections(); n != 0 {
		t.Errorf("Connections() = %d after Disconnect, want 0", n)
	}
	later := gw.PushBotMessage(bot("b")) // not for a draining connection
	c.quiet(50 * time.Millisecond)       // the disconnect waits for the ack of a
	c.ack(fa, "")

	f := c.next()
	want := dingtalkfake.Frame{
		SpecVersion: "1.0",
		Type:        "SYSTEM",
		Headers:     map[string]string{"topic": "disconnect", "contentType": "application/json"},
		Data:        `{"reason":"connection is expired"}`,
	}
	if diff := cmp.Diff(want, f); diff != "" {
		t.Errorf("disconnect frame (-want +got):\n%s", diff)
	}
	// The client does not answer; the gateway closes after the grace period.
	select {
	case _, ok := <-c.frames:
		if ok {
			t.Fatal("frame after disconnect")
		}
	case <-ctx.Done():
		t.Fatal("connection not closed after the grace period")
	}
	if err := gw.WaitNoConnections(ctx); err != nil {
		t.Fatal(err)
	}

	c2 := dialRaw(t, gw, botSub)
	if f := c2.next(); f.MessageID() != later {
		t.Errorf("got %s, want the frame pushed during the disconnect", f.MessageID())
	}
	noProtocolErrors(t, gw)
}

func TestGatewayRedeliver(t *testing.T) {
	gw := dingtalkfake.New(t)
	ctx := testContext(t)
	c := dialRaw(t, gw, botSub)
	id := gw.PushBotMessage(bot("a"))
	f1 := c.next()
	c.ack(f1, `"first"`)
	if _, err := gw.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := gw.Redeliver(id); err != nil {
		t.Fatal(err)
	}
	f2 := c.next()
	if diff := cmp.Diff(f1, f2); diff != "" {
		t.Errorf("redelivered frame differs (-first +second):\n%s", diff)
	}
	c.ack(f2, `"second"`)
	ack, err := gw.WaitAck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Data != `"second"` || len(gw.Acks(id)) != 2 || gw.Deliveries(id) != 2 {
		t.Errorf("after redelivery: ack %+v, %d acks, %d deliveries", ack, len(gw.Acks(id)), gw.Deliveries(id))
	}
	if err := gw.Redeliver("nope"); err == nil {
		t.Error("Redeliver of an unknown id succeeded")
	}
}

func TestGatewayPing(t *testing.T) {
	gw := dingtalkfake.New(t)
	ctx := testContext(t)
	c := dialRaw(t, gw, botSub)
	type result struct {
		ack dingtalkfake.Ack
		err error
	}
	done := make(chan result, 1)
	go func() {
		ack, err := gw.Ping(ctx)
		done <- result{ack, err}
	}()
	f := c.next()
	if f.Type != "SYSTEM" || f.Topic() != "ping" || f.MessageID() == "" || !strings.HasPrefix(f.Data, `{"opaque":"`) {
		t.Errorf("ping frame = %+v", f)
	}
	c.ack(f, f.Data)
	r := <-done
	if r.err != nil || r.ack.Data != f.Data || r.ack.MessageID() != f.MessageID() {
		t.Errorf("Ping() = %+v, %v", r.ack, r.err)
	}
}

func TestGatewayRecordsProtocolErrors(t *testing.T) {
	gw := dingtalkfake.New(t)
	ctx := testContext(t)
	c := dialRaw(t, gw, botSub)
	id := gw.PushBotMessage(bot("a"))
	f := c.next()
	for _, msg := range []string{
		`not json`,
		`{"code":200,"headers":{"contentType":"application/json"},"message":"OK","data":""}`,
		`{"code":200,"headers":{"messageId":"unknown","contentType":"application/json"},"message":"OK","data":""}`,
		`{"code":200,"headers":{"messageId":"` + id + `","contentType":"text/plain"},"message":"OK","data":""}`,
	} {
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := gw.WaitAck(ctx, f.MessageID()); err != nil {
		t.Fatal(err)
	}
	if n := len(gw.ProtocolErrors()); n != 4 {
		t.Errorf("%d protocol errors, want 4: %v", n, gw.ProtocolErrors())
	}
}

func TestGatewayServesOpenAPI(t *testing.T) {
	api := dingtalkfake.NewOpenAPI(t)
	gw := dingtalkfake.New(t, dingtalkfake.WithOpenAPI(api))
	status, raw := postJSON(t, gw.URL()+dingtalkfake.PathAccessToken, "", map[string]string{
		"appKey": dingtalkfake.DefaultClientID, "appSecret": dingtalkfake.DefaultClientSecret,
	})
	if status != http.StatusOK || !bytes.Contains(raw, []byte(`"accessToken"`)) {
		t.Errorf("accessToken on the gateway host: %d %s", status, raw)
	}
	if api.TokenRequests() != 1 {
		t.Errorf("TokenRequests() = %d, want 1", api.TokenRequests())
	}
}

func TestGatewayCloseEndsConnections(t *testing.T) {
	gw := dingtalkfake.New(nil)
	c := dialRaw(t, gw, botSub)
	gw.Close()
	gw.Close() // idempotent
	select {
	case _, ok := <-c.frames:
		if ok {
			t.Fatal("unexpected frame")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connection still open after Close")
	}
}
