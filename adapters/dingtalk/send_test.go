package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
)

// replyTo is the ReplyTo of a received message whose session webhook is
// url, valid until exp.
func replyTo(url string, exp time.Time) map[string]string {
	return map[string]string{
		"session_webhook":         url,
		"session_webhook_expires": strconv.FormatInt(exp.UnixMilli(), 10),
		"conversation_type":       "1",
		"robot_code":              dingtalkfake.DefaultClientID,
	}
}

func decodeJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decoding %s: %v", s, err)
	}
	return m
}

// kindCases are the message kinds with what the session webhook and the
// robot send APIs get for each.
var kindCases = []struct {
	name        string
	m           adapters.Outbound
	wantWebhook string
	wantKey     string
	wantParam   string
}{
	{
		name:        "text",
		m:           adapters.Outbound{Kind: "text", Text: "You have 3 members to call back today."},
		wantWebhook: `{"msgtype":"text","text":{"content":"You have 3 members to call back today."}}`,
		wantKey:     "sampleText",
		wantParam:   `{"content":"You have 3 members to call back today."}`,
	},
	{
		name:        "markdown",
		m:           adapters.Outbound{Kind: "markdown", Text: "## Today\n> call Li Lei & Han Mei", Fields: map[string]string{"title": "Tasks"}},
		wantWebhook: `{"msgtype":"markdown","markdown":{"title":"Tasks","text":"## Today\n> call Li Lei & Han Mei"}}`,
		wantKey:     "sampleMarkdown",
		wantParam:   `{"title":"Tasks","text":"## Today\n> call Li Lei & Han Mei"}`,
	},
	{
		name:        "markdown titled by its first line",
		m:           adapters.Outbound{Kind: "markdown", Text: "## Today\n- call Li Lei"},
		wantWebhook: `{"msgtype":"markdown","markdown":{"title":"Today","text":"## Today\n- call Li Lei"}}`,
		wantKey:     "sampleMarkdown",
		wantParam:   `{"title":"Today","text":"## Today\n- call Li Lei"}`,
	},
	{
		name: "action card",
		m: adapters.Outbound{Kind: "action_card", Text: "Li Lei has not been back for 60 days.",
			Fields: map[string]string{"title": "Recall", "single_title": "Open", "single_url": "https://example.com/m/1"}},
		wantWebhook: `{"msgtype":"actionCard","actionCard":{"title":"Recall","text":"Li Lei has not been back for 60 days.","singleTitle":"Open","singleURL":"https://example.com/m/1"}}`,
		wantKey:     "sampleActionCard",
		wantParam:   `{"title":"Recall","text":"Li Lei has not been back for 60 days.","singleTitle":"Open","singleURL":"https://example.com/m/1"}`,
	},
	{
		name: "news",
		m: adapters.Outbound{Kind: "news",
			Fields: map[string]string{"title": "Spring", "description": "New arrivals", "url": "https://example.com/s", "picurl": "https://example.com/s.png"}},
		wantWebhook: `{"msgtype":"link","link":{"title":"Spring","text":"New arrivals","messageUrl":"https://example.com/s","picUrl":"https://example.com/s.png"}}`,
		wantKey:     "sampleLink",
		wantParam:   `{"title":"Spring","text":"New arrivals","messageUrl":"https://example.com/s","picUrl":"https://example.com/s.png"}`,
	},
	{
		name: "news without description or picture",
		m: adapters.Outbound{Kind: "news", Text: "Spring arrivals are in store",
			Fields: map[string]string{"title": "Spring", "url": "https://example.com/s"}},
		wantWebhook: `{"msgtype":"link","link":{"title":"Spring","text":"Spring arrivals are in store","messageUrl":"https://example.com/s"}}`,
		wantKey:     "sampleLink",
		wantParam:   `{"title":"Spring","text":"Spring arrivals are in store","messageUrl":"https://example.com/s"}`,
	},
	{
		// A session webhook cannot carry a picture: a reply goes out
		// proactively.
		name:      "image",
		m:         adapters.Outbound{Kind: "image", Fields: map[string]string{"picurl": "https://example.com/s.png"}},
		wantKey:   "sampleImageMsg",
		wantParam: `{"photoURL":"https://example.com/s.png"}`,
	},
}

// checkPreview checks that the channel's Spec previews m as the request
// the fake received: api and body byte for byte.
func checkPreview(t *testing.T, c *Client, m *adapters.Outbound, api string, body []byte) {
	t.Helper()
	req, err := c.Spec().Preview(m)
	if err != nil {
		t.Fatalf("Preview: %v", err)
	}
	if req.API != api || string(req.Body) != string(body) {
		t.Errorf("Preview = %s %s\nsent      %s %s", req.API, req.Body, api, body)
	}
}

func TestReplyThroughSessionWebhook(t *testing.T) {
	env := newEnv(t, nil)
	for _, tc := range kindCases {
		t.Run(tc.name, func(t *testing.T) {
			hook, exp := env.api.NewSessionWebhook("cid-"+tc.name, time.Hour)
			m := tc.m
			m.To, m.ReplyTo = "guide01", replyTo(hook, exp)
			r, err := env.c.Send(context.Background(), &m)
			if err != nil {
				t.Fatal(err)
			}
			if r == nil || r.Pending {
				t.Errorf("receipt = %+v", r)
			}
			if tc.wantWebhook == "" {
				sent := env.api.Sent()
				if len(sent) != 1 || sent[0].MsgKey != tc.wantKey || sent[0].MsgParam != tc.wantParam || !cmp.Equal(sent[0].UserIDs, []string{"guide01"}) {
					t.Errorf("proactive sends = %+v, want one %s %s to guide01", sent, tc.wantKey, tc.wantParam)
				}
				return
			}
			replies := env.api.Replies()
			got := replies[len(replies)-1]
			checkPreview(t, env.c, &m, APISessionWebhook, got.Body)
			if got.ConversationID != "cid-"+tc.name {
				t.Errorf("reply went to %q", got.ConversationID)
			}
			if diff := cmp.Diff(decodeJSON(t, tc.wantWebhook), decodeJSON(t, string(got.Body))); diff != "" {
				t.Errorf("webhook body (-want +got):\n%s", diff)
			}
		})
	}
	if n := len(env.api.Sent()); n != 1 {
		t.Errorf("%d proactive sends, want the image's only", n)
	}
}

// A guide asks the bot for their tasks; the answer goes back through the
// session webhook of the message.
func TestReplyToReceivedMessage(t *testing.T) {
	env := newEnv(t, nil)
	env.run(t)
	id := env.gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cidGuide01==", SenderStaffID: "guide01",
		Text: &dingtalkfake.Text{Content: "my tasks"}})
	waitAck(t, env.gw, id)
	in := env.rec.Recorded()[0]
	_, err := env.c.Send(context.Background(), &adapters.Outbound{
		To: in.SenderID, ToParty: in.From, Kind: "text", Text: "3 members to call back", ReplyTo: in.ReplyTo,
	})
	if err != nil {
		t.Fatal(err)
	}
	replies := env.api.Replies()
	if len(replies) != 1 || replies[0].ConversationID != "cidGuide01==" ||
		string(replies[0].Body) != `{"msgtype":"text","text":{"content":"3 members to call back"}}` {
		t.Errorf("replies = %+v", replies)
	}
}

func TestExpiredSessionWebhookFallsBackToProactive(t *testing.T) {
	tests := []struct {
		name       string
		clock      time.Duration // client clock ahead of the real one
		hookTTL    time.Duration // lifetime of the webhook at the fake
		claimedTTL time.Duration // expiry the message claimed
		wantPosts  int           // posts to the webhook
	}{
		{"expired by the clock", 2 * time.Hour, time.Hour, time.Hour, 0},
		{"too close to expiry", 59*time.Minute + 45*time.Second, time.Hour, time.Hour, 0},
		{"refused by DingTalk", 0, time.Millisecond, time.Hour, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, nil, func(_ *Config, d *Deps) {
				d.Clock = func() time.Time { return time.Now().Add(tc.clock) }
			})
			hook, _ := env.api.NewSessionWebhook("cid1", tc.hookTTL)
			time.Sleep(5 * time.Millisecond)
			r, err := env.c.Send(context.Background(), &adapters.Outbound{
				To: "staff01", Kind: "text", Text: "still there?", ReplyTo: replyTo(hook, time.Now().Add(tc.claimedTTL)),
			})
			if err != nil {
				t.Fatal(err)
			}
			if n := env.api.Calls(dingtalkfake.PathSessionWebhook); n != tc.wantPosts {
				t.Errorf("%d webhook posts, want %d", n, tc.wantPosts)
			}
			sent := env.api.Sent()
			if len(sent) != 1 || sent[0].Path != dingtalkfake.PathBatchSend || !cmp.Equal(sent[0].UserIDs, []string{"staff01"}) {
				t.Fatalf("proactive sends = %+v", sent)
			}
			if r.ExternalID != sent[0].ProcessQueryKey {
				t.Errorf("ExternalID = %q, want processQueryKey %q", r.ExternalID, sent[0].ProcessQueryKey)
			}
		})
	}
}

func TestProactiveSend(t *testing.T) {
	env := newEnv(t, nil)
	for _, tc := range kindCases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			m.To, m.ToParty, m.IdempotencyKey = "staff01", adapters.PartyMember, "outbox-1"
			r, err := env.c.Send(context.Background(), &m)
			if err != nil {
				t.Fatal(err)
			}
			sent := env.api.Sent()
			got := sent[len(sent)-1]
			want := dingtalkfake.SentMessage{
				Path:            dingtalkfake.PathBatchSend,
				RobotCode:       env.api.RobotCode(),
				UserIDs:         []string{"staff01"},
				MsgKey:          tc.wantKey,
				MsgParam:        got.MsgParam,
				ProcessQueryKey: r.ExternalID,
				InvalidStaffIDs: []string{}, FlowControlledStaffIDs: []string{},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("sent (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(decodeJSON(t, tc.wantParam), decodeJSON(t, got.MsgParam)); diff != "" {
				t.Errorf("msgParam (-want +got):\n%s", diff)
			}
			if strings.Contains(got.MsgParam, `\u00`) {
				t.Errorf("msgParam %s escapes <, > or &", got.MsgParam)
			}
			body, _ := adapters.MarshalBody(batchSendRequest{RobotCode: got.RobotCode, UserIDs: got.UserIDs, MsgKey: got.MsgKey, MsgParam: got.MsgParam})
			checkPreview(t, env.c, &m, "robot/oToMessages/batchSend", body)
		})
	}
}

func TestGroupSend(t *testing.T) {
	env := newEnv(t, nil)
	r, err := env.c.Send(context.Background(), &adapters.Outbound{
		Conversation: "cidStoreGroup==", Kind: "markdown", Text: "**Sale** starts at 10:00",
		Fields: map[string]string{"title": "Sale"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []dingtalkfake.SentMessage{{
		Path:               dingtalkfake.PathGroupSend,
		RobotCode:          env.api.RobotCode(),
		OpenConversationID: "cidStoreGroup==",
		MsgKey:             "sampleMarkdown",
		MsgParam:           `{"text":"**Sale** starts at 10:00","title":"Sale"}`,
		ProcessQueryKey:    r.ExternalID,
	}}
	if diff := cmp.Diff(want, env.api.Sent()); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
}

func TestAccessTokenCachedAndRefreshed(t *testing.T) {
	env := newEnv(t, nil)
	send := func() {
		t.Helper()
		if _, err := env.c.Send(context.Background(), &adapters.Outbound{To: "staff01", Kind: "text", Text: "hi"}); err != nil {
			t.Fatal(err)
		}
	}
	send()
	send()
	if n, r := env.api.TokensIssued(), env.api.TokenRequests(); n != 1 || r != 1 {
		t.Errorf("TokensIssued() = %d, TokenRequests() = %d after two sends, want 1, 1", n, r)
	}
	if diff := cmp.Diff([]time.Duration{7200*time.Second - 5*time.Minute}, env.tokens.ttls); diff != "" {
		t.Errorf("cached for (-want +got):\n%s", diff)
	}

	env.api.ExpireTokens() // DingTalk refuses the cached token: dropped, refreshed, retried
	send()
	if n := env.api.TokensIssued(); n != 2 {
		t.Errorf("TokensIssued() = %d after expiry, want 2", n)
	}
	if env.tokens.deletes != 1 || len(env.tokens.ttls) != 2 {
		t.Errorf("cache: %d deletes, %d sets; want 1, 2", env.tokens.deletes, len(env.tokens.ttls))
	}
	if n := len(env.api.Sent()); n != 3 {
		t.Errorf("%d sent, want 3", n)
	}
}

func TestAccessTokenWithBrokenCache(t *testing.T) {
	env := newEnv(t, nil)
	env.tokens.broken = errors.New("redis: connection refused")
	if _, err := env.c.Send(context.Background(), &adapters.Outbound{To: "staff01", Kind: "text", Text: "hi"}); err != nil {
		t.Fatalf("Send with a broken token cache = %v, want it to go on", err)
	}
}

func TestTokenTTL(t *testing.T) {
	tests := []struct{ life, want time.Duration }{
		{7200 * time.Second, 7200*time.Second - 5*time.Minute},
		{8 * time.Minute, 4 * time.Minute},
		{0, time.Minute},
	}
	for _, tc := range tests {
		if got := tokenTTL(tc.life); got != tc.want {
			t.Errorf("tokenTTL(%v) = %v, want %v", tc.life, got, tc.want)
		}
	}
}

func TestSendErrors(t *testing.T) {
	failNext := func(n int, status int, code string) func(*testEnv) {
		return func(e *testEnv) { e.api.FailNext(n, dingtalkfake.Failure{Status: status, Code: code}) }
	}
	text := adapters.Outbound{To: "staff01", Kind: "text", Text: "hi"}
	tests := []struct {
		name      string
		setup     func(*testEnv)
		m         adapters.Outbound
		want      error // sentinel; nil for none
		retryable bool
		wantSent  bool
	}{
		{"api qps limit", failNext(1, 403, dingtalkfake.CodeQPSLimitForAPI), text, adapters.ErrRateLimited, true, false},
		{"app qps limit", failNext(1, 403, dingtalkfake.CodeQPSLimitForAppkeyAndAPI), text, adapters.ErrRateLimited, true, false},
		{"token endpoint throttled", func(e *testEnv) {
			e.api.FailNext(1, dingtalkfake.Failure{Path: dingtalkfake.PathAccessToken, Status: 403, Code: dingtalkfake.CodeQPSLimitForAPI})
		}, text, adapters.ErrRateLimited, true, false},
		{"recipient flow controlled", func(e *testEnv) { e.api.MarkFlowControlled("staff01") }, text, adapters.ErrRateLimited, true, false},
		{"invalid recipient", func(e *testEnv) { e.api.MarkInvalidUsers("staff01") }, text, adapters.ErrInvalidRecipient, false, false},
		{"staff not existed", failNext(1, 400, "staffId.notExisted"), text, adapters.ErrInvalidRecipient, false, false},
		{"token refused once", failNext(1, 400, dingtalkfake.CodeInvalidAuthentication), text, nil, false, true},
		{"token refused twice", failNext(2, 400, dingtalkfake.CodeInvalidAuthentication), text, adapters.ErrUnauthorized, true, false},
		{"server error", failNext(1, 500, "InternalError"), text, adapters.ErrTemporary, true, false},
		{"unavailable", failNext(1, 503, "ServiceUnavailable"), text, adapters.ErrTemporary, true, false},
		{"bad request", failNext(1, 400, dingtalkfake.CodeInvalidParameter), text, nil, false, false},
		{"unsupported kind", nil, adapters.Outbound{To: "staff01", Kind: "miniprogram"}, adapters.ErrInvalidMessage, false, false},
		{"empty text", nil, adapters.Outbound{To: "staff01", Kind: "text"}, adapters.ErrInvalidMessage, false, false},
		{"news without url", nil, adapters.Outbound{To: "staff01", Kind: "news", Fields: map[string]string{"title": "t"}}, adapters.ErrInvalidMessage, false, false},
		{"no recipient", nil, adapters.Outbound{Kind: "text", Text: "hi"}, adapters.ErrInvalidRecipient, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, nil)
			if tc.setup != nil {
				tc.setup(env)
			}
			m := tc.m
			_, err := env.c.Send(context.Background(), &m)
			sent := len(env.api.Sent()) > 0 && len(env.api.Sent()[0].InvalidStaffIDs)+len(env.api.Sent()[0].FlowControlledStaffIDs) == 0
			if sent != tc.wantSent {
				t.Errorf("sent = %v, want %v", sent, tc.wantSent)
			}
			if tc.wantSent {
				if err != nil {
					t.Fatalf("Send = %v, want success", err)
				}
				return
			}
			checkSendError(t, err, tc.want, tc.retryable)
		})
	}
}

func checkSendError(t *testing.T, err, want error, retryable bool) {
	t.Helper()
	if err == nil {
		t.Fatal("Send succeeded, want an error")
	}
	var apiErr *adapters.APIError
	if !errors.As(err, &apiErr) || apiErr.Channel != "dingtalk" {
		t.Fatalf("Send = %v (%T), want an *adapters.APIError of dingtalk", err, err)
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("Send = %v, want errors.Is %v", err, want)
	}
	if want == nil && apiErr.Kind != nil {
		t.Errorf("Send = %v, Kind %v, want no sentinel", err, apiErr.Kind)
	}
	if got := adapters.Retryable(err); got != retryable {
		t.Errorf("Retryable(%v) = %v, want %v", err, got, retryable)
	}
}

func TestSendErrorsWithoutOpenAPI(t *testing.T) {
	t.Run("wrong app secret", func(t *testing.T) {
		env := newEnv(t, nil, func(c *Config, _ *Deps) { c.ClientSecret = "not-the-secret" })
		_, err := env.c.Send(context.Background(), &adapters.Outbound{To: "staff01", Kind: "text", Text: "hi"})
		checkSendError(t, err, adapters.ErrUnauthorized, true)
	})
	t.Run("network", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		env := newEnv(t, nil, func(c *Config, _ *Deps) { c.APIBase = dead.URL })
		_, err := env.c.Send(context.Background(), &adapters.Outbound{To: "staff01", Kind: "text", Text: "hi"})
		checkSendError(t, err, adapters.ErrTemporary, true)
	})
}

// Session webhooks answer errors with an errcode; the fake only knows
// the expired session, so the others come from a server of the test's.
func TestSessionWebhookErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		want       error
		wantSent   bool // fell back to a proactive send
		wantErrNil bool
	}{
		{"too fast", 200, `{"errcode":130101,"errmsg":"send too fast"}`, adapters.ErrRateLimited, false, false},
		{"server error", 502, `bad gateway`, adapters.ErrTemporary, false, false},
		{"other errcode", 200, `{"errcode":310000,"errmsg":"keywords not in content"}`, nil, true, true},
		{"not found", 404, `{"code":"NotFound","message":"no"}`, nil, true, true},
		{"ok", 200, `{"errcode":0,"errmsg":"ok"}`, nil, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get(accessTokenHeader) != "" {
					t.Error("access token sent to a session webhook")
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer hook.Close()
			env := newEnv(t, nil)
			_, err := env.c.Send(context.Background(), &adapters.Outbound{
				To: "staff01", Kind: "text", Text: "hi", ReplyTo: replyTo(hook.URL+"/robot/sendBySession?session=s3cr3t", time.Now().Add(time.Hour)),
			})
			if sent := len(env.api.Sent()) == 1; sent != tc.wantSent {
				t.Errorf("proactive send = %v, want %v", sent, tc.wantSent)
			}
			if tc.wantErrNil {
				if err != nil {
					t.Fatalf("Send = %v", err)
				}
				return
			}
			checkSendError(t, err, tc.want, true)
		})
	}
}

func TestSessionWebhookURLNotInErrors(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	env := newEnv(t, nil)
	_, err := env.c.Send(context.Background(), &adapters.Outbound{
		To: "staff01", Kind: "text", Text: "hi", ReplyTo: replyTo(dead.URL+"/robot/sendBySession?session=s3cr3t", time.Now().Add(time.Hour)),
	})
	checkSendError(t, err, adapters.ErrTemporary, true)
	if containsAny(err.Error(), "s3cr3t") {
		t.Errorf("error %q shows the session", err)
	}
}
