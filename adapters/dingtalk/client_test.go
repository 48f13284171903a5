package dingtalk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-dingtalk/dingtalk-stream-sdk-go/payload"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
)

func TestConfigValidate(t *testing.T) {
	valid := Config{ClientID: "dingabc", ClientSecret: "s"}
	tests := []struct {
		name string
		edit func(*Config)
		want []string // substrings of the error, in order; none for valid
	}{
		{"valid", func(*Config) {}, nil},
		{"valid with hosts", func(c *Config) { c.StreamHost, c.APIBase = "https://api.dingtalk.com", "http://127.0.0.1:8080/" }, nil},
		{"not enabled", func(c *Config) { *c = Config{StreamHost: "https://api.dingtalk.com"} }, nil},
		{"secret without id", func(c *Config) { c.ClientID = "" }, []string{"dingtalk.client_id: required"}},
		{"id without secret", func(c *Config) { c.ClientSecret = "" }, []string{"dingtalk.client_secret: required"}},
		{"only a robot code", func(c *Config) { *c = Config{RobotCode: "ding"} },
			[]string{"dingtalk.client_id: required", "dingtalk.client_secret: required"}},
		{"blank client id", func(c *Config) { c.ClientID = "  " }, []string{"dingtalk.client_id: required"}},
		{"robot code spaces", func(c *Config) { c.RobotCode = " ding " }, []string{"dingtalk.robot_code:"}},
		{"stream host not a URL", func(c *Config) { c.StreamHost = "api.dingtalk.com" }, []string{`dingtalk.stream_host: "api.dingtalk.com" is not an absolute http(s) URL`}},
		{"api base with query", func(c *Config) { c.APIBase = "https://api.dingtalk.com/?x=1" }, []string{"dingtalk.api_base:", "query"}},
		{"ws scheme", func(c *Config) { c.APIBase = "ws://x" }, []string{"dingtalk.api_base:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.edit(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil")
			}
			msg := err.Error()
			for _, w := range tc.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("Validate() = %q, want it to contain %q", msg, w)
				}
				msg = msg[i+len(w):]
			}
		})
	}
}

func TestNew(t *testing.T) {
	cfg := Config{ClientID: "dingabc", ClientSecret: "s"}
	deps := Deps{Recorder: newMemRecorder(), Tokens: newMemTokens(), Guides: guidesNamed()}
	c, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "dingtalk" || c.cfg.RobotCode != "dingabc" || c.cfg.APIBase != DefaultHost || c.cfg.StreamHost != DefaultHost {
		t.Errorf("defaults: name %q, config %v", c.Name(), c.cfg)
	}
	if st := c.State(); st.Status != StatusDisconnected || c.Connected() || st.Status.String() != "disconnected" {
		t.Errorf("initial state %+v", st)
	}

	if _, err := New(Config{}, deps); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("New with an empty config = %v", err)
	}
	if _, err := New(Config{ClientID: "dingabc"}, deps); err == nil || !strings.Contains(err.Error(), "dingtalk.client_secret") {
		t.Errorf("New without a secret = %v", err)
	}
	if _, err := New(cfg, Deps{}); err == nil || err.Error() != "dingtalk: missing deps: Recorder, Tokens, Guides" {
		t.Errorf("New without deps = %v", err)
	}
}

func TestConfigDoesNotPrintSecret(t *testing.T) {
	cfg := Config{ClientID: "dingabc", ClientSecret: "hunter2-secret"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", slog.Any("dingtalk", cfg))
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%v", &cfg), buf.String()} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("secret shown: %s", s)
		}
		if !strings.Contains(s, "dingabc") {
			t.Errorf("client id missing: %s", s)
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// secretSniffer is a RoundTripper that notes the tickets and access tokens
// DingTalk hands out, so a test can check they are not logged.
type secretSniffer struct {
	mu      sync.Mutex
	secrets []string
}

func (s *secretSniffer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var v struct {
		Ticket      string `json:"ticket"`
		AccessToken string `json:"accessToken"`
	}
	if json.Unmarshal(body, &v) == nil {
		s.mu.Lock()
		s.secrets = append(s.secrets, v.Ticket, v.AccessToken)
		s.mu.Unlock()
	}
	return resp, nil
}

func (s *secretSniffer) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, x := range s.secrets {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

func TestSecretsNeverLogged(t *testing.T) {
	const secret = "very-secret-app-secret"
	sniffer := &secretSniffer{}
	env := newEnv(t, []dingtalkfake.Option{dingtalkfake.WithCredential(dingtalkfake.DefaultClientID, secret)},
		func(c *Config, d *Deps) {
			c.ClientSecret = secret
			d.HTTPClient = &http.Client{Transport: sniffer}
		})
	// The OpenAPI fake has the default secret: make one that knows ours.
	api := dingtalkfake.NewOpenAPI(t, dingtalkfake.WithAppCredential(dingtalkfake.DefaultClientID, secret))
	env.c.cfg.APIBase = api.URL()

	env.gw.FailNextOpens(1, 401, "authFailed", "鉴权失败")
	env.run(t)
	ctx := testContext(t)

	// Receive: a message, an event, a ping, a record failure, a drop.
	id := env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "guide01", Text: &dingtalkfake.Text{Content: "my tasks"}})
	waitAck(t, env.gw, id)
	waitAck(t, env.gw, env.gw.PushEvent(dingtalkfake.EventUserAddOrg, map[string]any{"userId": []string{"u1"}}))
	if _, err := env.gw.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	env.rec.setFail(errDBDown)
	waitAck(t, env.gw, env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "s1", Text: &dingtalkfake.Text{Content: "x"}}))
	env.rec.setFail(nil)
	env.gw.Drop()
	waitAck(t, env.gw, env.gw.PushBotMessage(dingtalkfake.BotMessage{SenderStaffID: "s1", Text: &dingtalkfake.Text{Content: "y"}}))

	// Send: a reply, a proactive send, a refused token, a failure.
	in := env.rec.Recorded()[0]
	var errs []error
	send := func(m adapters.Outbound) {
		_, err := env.c.Send(ctx, &m)
		errs = append(errs, err)
	}
	send(adapters.Outbound{To: in.SenderID, Kind: "text", Text: "3 tasks", ReplyTo: in.ReplyTo})
	send(adapters.Outbound{To: "staff01", Kind: "text", Text: "hi"})
	api.ExpireTokens()
	send(adapters.Outbound{To: "staff01", Kind: "text", Text: "hi again"})
	api.FailNext(2, dingtalkfake.Failure{Status: 400, Code: dingtalkfake.CodeInvalidAuthentication})
	send(adapters.Outbound{To: "staff01", Kind: "text", Text: "refused"})

	secrets := append([]string{secret}, sniffer.all()...)
	if len(secrets) < 4 { // the secret, two tickets and a token at least
		t.Fatalf("sniffed only %d secrets", len(secrets))
	}
	webhookSession := in.ReplyTo["session_webhook"][strings.Index(in.ReplyTo["session_webhook"], "session=")+len("session="):]
	secrets = append(secrets, webhookSession)

	logs := env.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log shows a secret %q", s)
		}
	}
	for _, err := range append(errs, env.c.State().LastErr) {
		if err != nil && containsAny(err.Error(), secrets...) {
			t.Errorf("error %q shows a secret", err)
		}
	}
	if !strings.Contains(logs, "authFailed") {
		t.Error("the failed open is not logged") // the log is not simply empty
	}
	if errs[3] == nil {
		t.Error("refused send succeeded")
	}
}

func TestMalformedFramesAreDroppedLoudly(t *testing.T) {
	env := newEnv(t, nil)
	env.run(t)
	tests := []struct {
		name string
		push func() string
		want string // in the ack data
	}{
		{"bot message not JSON", func() string { return env.gw.PushCallback(dingtalkfake.BotTopic, "{not json") }, ""},
		{"bot message without msgId", func() string {
			return env.gw.PushCallback(dingtalkfake.BotTopic, map[string]any{"senderStaffId": "s1", "msgtype": "text"})
		}, ""},
		{"event not JSON", func() string { return env.gw.PushEvent(dingtalkfake.EventUserAddOrg, "{not json") }, `"status":"SUCCESS"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ack := waitAck(t, env.gw, tc.push())
			if ack.Code != 200 || !strings.Contains(ack.Data, tc.want) {
				t.Errorf("ack = %+v", ack)
			}
		})
	}
	if n := env.rec.Calls(); n != 0 {
		t.Errorf("Record called %d times", n)
	}
	if c := strings.Count(env.logs.String(), "level=ERROR"); c != 3 {
		t.Errorf("%d errors logged, want 3", c)
	}

	// Other CALLBACK topics (not subscribed to) are answered 404 like the
	// SDK does.
	ack := env.c.handleFrame(t.Context(), &payload.DataFrame{Type: "CALLBACK",
		Headers: payload.DataFrameHeader{"topic": dingtalkfake.CardTopic, "messageId": "m1"}})
	if ack.Code != 404 || ack.GetHeader("messageId") != "m1" {
		t.Errorf("card callback ack = %+v, want 404", ack)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[Status]string{StatusDisconnected: "disconnected", StatusConnecting: "connecting", StatusConnected: "connected", 9: "Status(9)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), want)
		}
	}
}

func TestStateSince(t *testing.T) {
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	env := newEnv(t, nil, func(_ *Config, d *Deps) { d.Clock = clock })
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	env.run(t)
	eventually(t, "connected", env.c.Connected)
	if st := env.c.State(); !st.Since.Equal(time.Date(2026, 5, 1, 9, 1, 0, 0, time.UTC)) || st.Connects != 1 {
		t.Errorf("State() = %+v", st)
	}
}
