package app

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// chirp is a channel that lives only in this test: a made-up messenger
// whose platform posts members' messages to the gateway signed with
// HMAC-SHA256 of the body (X-Chirp-Signature, hex), and takes messages
// at POST {api}/v1/messages with a bearer token. It is a channel package
// as any other would be: it imports adapters and nothing else of the
// project, and the gateway learns everything about it from its Spec.
type chirp struct {
	name   string
	secret []byte
	token  string
	brand  string
	api    string
	rec    adapters.Recorder
}

// chirpKinds are the kinds chirp carries, to members and guides alike.
var chirpKinds = []string{adapters.KindText, adapters.KindMarkdown}

// chirpCallbackPath is where chirp posts what members and guides write.
const chirpCallbackPath = "/callbacks/chirp"

func (c *chirp) Name() string { return c.name }

// Spec: text and markdown to anyone, directly (not through the guide),
// at most 10 a second.
func (c *chirp) Spec() adapters.Spec {
	return adapters.Spec{Name: c.name, MemberKinds: slices.Clone(chirpKinds), GuideKinds: slices.Clone(chirpKinds),
		Rate: adapters.Rate{N: 10, Per: time.Second},
		Preview: func(m *adapters.Outbound) (*adapters.Request, error) {
			b, err := chirpBody(m)
			if err != nil {
				return nil, err
			}
			return &adapters.Request{API: "v1/messages", Body: b}, nil
		}}
}

// chirpBody is the body of a send.
func chirpBody(m *adapters.Outbound) ([]byte, error) {
	if !slices.Contains(chirpKinds, m.Kind) {
		return nil, fmt.Errorf("chirp carries text and markdown, not %s: %w", m.Kind, adapters.ErrInvalidMessage)
	}
	return json.Marshal(map[string]string{"to": m.To, "kind": m.Kind, "text": m.Text, "key": m.IdempotencyKey})
}

func (c *chirp) Send(ctx context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	body, err := chirpBody(m)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.api+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("chirp send: %w: %w", err, adapters.ErrTemporary)
	}
	defer resp.Body.Close()
	var out struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	switch {
	case resp.StatusCode == http.StatusOK:
		return &adapters.Receipt{ExternalID: out.ID}, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, &adapters.APIError{Channel: c.name, Code: resp.StatusCode, Message: out.Error, Kind: adapters.ErrTemporary}
	}
	return nil, &adapters.APIError{Channel: c.name, Code: resp.StatusCode, Message: out.Error, Kind: adapters.ErrInvalidRecipient}
}

func (c *chirp) Routes() []adapters.Route {
	return []adapters.Route{{Method: "POST", Path: chirpCallbackPath, Handler: http.HandlerFunc(c.callback)}}
}

// chirpMessage is what chirp posts: a message from a member or a guide.
type chirpMessage struct {
	ID    string `json:"id"`
	From  string `json:"from"`
	Guide bool   `json:"guide"`
	Text  string `json:"text"`
	At    int64  `json:"at"`
}

// callback verifies a delivery's signature, records it and only then
// answers 200; a bad signature is 401 and records nothing.
func (c *chirp) callback(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, "reading body", http.StatusBadRequest)
		return
	}
	got, err := hex.DecodeString(r.Header.Get("X-Chirp-Signature"))
	if err != nil || !hmac.Equal(got, chirpSign(c.secret, body)) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var m chirpMessage
	if err := json.Unmarshal(body, &m); err != nil || m.ID == "" || m.From == "" {
		http.Error(w, "bad message", http.StatusBadRequest)
		return
	}
	from := adapters.PartyMember
	if m.Guide {
		from = adapters.PartyGuide
	}
	in := &adapters.Inbound{Channel: c.name, DedupKey: m.ID, Brand: c.brand, From: from, SenderID: m.From,
		Kind: adapters.KindText, Text: m.Text, At: time.Unix(m.At, 0).UTC()}
	if err := c.rec.Record(r.Context(), in); err != nil {
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func chirpSign(secret, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return mac.Sum(nil)
}

// chirpFake is chirp's message API: it keeps every request it gets.
type chirpFake struct {
	*httptest.Server
	mu   sync.Mutex
	sent []chirpSent
}

// chirpSent is one request the fake got, as it got it.
type chirpSent struct {
	Method, Path, Auth, ContentType string
	Body                            map[string]string
}

func newChirpFake(t *testing.T) *chirpFake {
	f := &chirpFake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.sent = append(f.sent, chirpSent{Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization"),
			ContentType: r.Header.Get("Content-Type"), Body: body})
		n := len(f.sent)
		f.mu.Unlock()
		fmt.Fprintf(w, `{"id":"chirp-%d"}`, n)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *chirpFake) requests() []chirpSent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

// waitSent waits for a request to a recipient whose body key starts
// with prefix, and returns it.
func (f *chirpFake) waitSent(t *testing.T, what, to, prefix string) chirpSent {
	t.Helper()
	var got chirpSent
	waitFor(t, what, func() bool {
		for _, s := range f.requests() {
			if s.Body["to"] == to && strings.HasPrefix(s.Body["key"], prefix) {
				got = s
				return true
			}
		}
		return false
	})
	return got
}

// say posts a signed chirp message to the gateway.
func chirpSay(t *testing.T, base string, secret []byte, m chirpMessage) int {
	t.Helper()
	body, _ := json.Marshal(m)
	req, _ := http.NewRequest("POST", base+chirpCallbackPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Chirp-Signature", hex.EncodeToString(chirpSign(secret, body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestChirpChannelWithRedis registers a channel the gateway's code does
// not know, from this test alone, and uses it end to end on PostgreSQL
// and Redis: a guide and a member get ids on it through the API; a
// member's message, signed, reaches the member bot, which answers on
// chirp; the message starts a workflow whose send step names chirp,
// which sends there; "转人工" hands the member to their guide, who is
// told on chirp. Every request chirp's API gets is asserted as sent.
func TestChirpChannelWithRedis(t *testing.T) {
	fake := newChirpFake(t)
	secret := []byte("chirp-signing-secret")
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "chirp-e2e-admin-token-0001"
	cfg.Security.PhoneKey = strings.Repeat("a7", 32)
	s := startServeWith(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil,
		WithChannel(func(d ChannelDeps) (adapters.Channel, error) {
			return &chirp{name: "chirp", secret: secret, token: "chirp-api-token", brand: "acme", api: fake.URL, rec: d.Recorder}, nil
		}))
	ctx := context.Background()
	tok := cfg.AdminToken
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47,"address":"南京西路1号","opening_hours":"10:00-22:00"}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","identities":[{"channel":"chirp","external_id":"c-li"}]}`},
		{"/api/v1/members", `{"phone":"13800138000","name":"陈女士","brand":"acme","identities":[{"channel":"chirp","external_id":"c-chen"}]}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code/100 != 2 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	if code, body := request(t, "GET", s.base+"/api/v1/guides/g-li", tok, ""); code != 200 || !strings.Contains(body, `"identities":[{"channel":"chirp","external_id":"c-li"`) {
		t.Errorf("guide: %d %s", code, body)
	}
	// The API knows the channels the gateway has: a typo is refused.
	if code, body := request(t, "POST", s.base+"/api/v1/guides", tok, `{"id":"g-x","store_id":"sh-1","name":"X","identities":[{"channel":"chrip","external_id":"x"}]}`); code != 400 || !strings.Contains(body, `unknown channel \"chrip\"`) {
		t.Errorf("guide on an unknown channel: %d %s", code, body)
	}
	v, err := s.app.Store.MemberByPhone(ctx, "13800138000", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.app.Store.Bind(ctx, &store.Binding{MemberID: v.ID, BrandID: "acme", GuideID: "g-li", StoreID: "sh-1", Reason: "manual"}); err != nil {
		t.Fatal(err)
	}
	wf := `name: chirp-back
trigger:
  event: message.received
entry:
  brand: acme
  re_entry: never
goal: purchase.completed
send_rules:
  quiet_hours: none
steps:
  - id: nudge
    send: recall
    channel: chirp
`
	if code, body := putWorkflow(t, s, tok, "acme", "chirp-back", wf); code != 201 {
		t.Fatalf("PUT workflow: %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/workflows/chirp-back/enable?brand=acme", tok, ""); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}

	// A forged message is refused and reaches nobody.
	body, _ := json.Marshal(chirpMessage{ID: "forged", From: "c-chen", Text: "我的导购"})
	req, _ := http.NewRequest("POST", s.base+chirpCallbackPath, bytes.NewReader(body))
	req.Header.Set("X-Chirp-Signature", hex.EncodeToString(chirpSign([]byte("wrong"), body)))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("forged message: %v %v", resp, err)
	}

	now := time.Now().Unix()
	if code := chirpSay(t, s.base, secret, chirpMessage{ID: "m-1", From: "c-chen", Text: "我的导购", At: now}); code != 200 {
		t.Fatalf("chirp callback: %d", code)
	}
	reply := fake.waitSent(t, "the bot's answer on chirp", "c-chen", "reply:chirp:m-1:")
	want := chirpSent{Method: "POST", Path: "/v1/messages", Auth: "Bearer chirp-api-token", ContentType: "application/json",
		Body: map[string]string{"to": "c-chen", "kind": "text", "key": "reply:chirp:m-1:0",
			"text": "您的专属导购是 李娜（静安店）。门店地址：南京西路1号，营业时间 10:00-22:00。"}}
	if fmt.Sprint(reply) != fmt.Sprint(want) {
		t.Errorf("bot answer at chirp:\n got %+v\nwant %+v", reply, want)
	}
	nudge := fake.waitSent(t, "the workflow's message on chirp", "c-chen", "wf:")
	want = chirpSent{Method: "POST", Path: "/v1/messages", Auth: "Bearer chirp-api-token", ContentType: "application/json",
		Body: map[string]string{"to": "c-chen", "kind": "text", "key": "wf:1:nudge:1",
			"text": "陈女士好，我是静安店的李娜。店里这周到了不少新款，想着您可能会喜欢，\n有空来静安店坐坐，我帮您挑几件试试？（营业时间 10:00-22:00）"}}
	if fmt.Sprint(nudge) != fmt.Sprint(want) {
		t.Errorf("workflow message at chirp:\n got %+v\nwant %+v", nudge, want)
	}

	// Handed over: the guide is told on chirp, their address there.
	if code := chirpSay(t, s.base, secret, chirpMessage{ID: "m-2", From: "c-chen", Text: "转人工", At: now + 1}); code != 200 {
		t.Fatalf("chirp callback: %d", code)
	}
	toGuide := fake.waitSent(t, "the guide told on chirp", "c-li", "reply:chirp:m-2:")
	if toGuide.Auth != "Bearer chirp-api-token" || toGuide.Body["kind"] != "text" || !strings.Contains(toGuide.Body["text"], "【转人工 #") ||
		!strings.Contains(toGuide.Body["text"], "陈女士") || strings.Contains(toGuide.Body["text"], "13800138000") {
		t.Errorf("guide's request at chirp: %+v", toGuide)
	}
	toMember := fake.waitSent(t, "the member told on chirp", "c-chen", "reply:chirp:m-2:")
	if toMember.Body["to"] != "c-chen" || !strings.Contains(toMember.Body["text"], "已为您转接专属导购 李娜（静安店）") {
		t.Errorf("member's answer at chirp: %+v", toMember)
	}
	// The guide answers on chirp; the member gets it there.
	if code := chirpSay(t, s.base, secret, chirpMessage{ID: "g-1", From: "c-li", Guide: true, Text: "您好，我是李娜", At: now + 2}); code != 200 {
		t.Fatalf("chirp callback: %d", code)
	}
	waitFor(t, "the guide's answer relayed on chirp", func() bool {
		for _, r := range fake.requests() {
			if r.Body["to"] == "c-chen" && strings.Contains(r.Body["text"], "李娜：您好，我是李娜") {
				return true
			}
		}
		return false
	})
	time.Sleep(300 * time.Millisecond) // let duplicates surface
	if n := len(fake.requests()); n != 5 {
		t.Errorf("chirp got %d requests, want 5: %+v", n, fake.requests())
	}
	if code, body := request(t, "GET", s.base+"/api/v1/guides/g-x", tok, ""); code != 404 {
		t.Errorf("refused guide stored: %d %s", code, body)
	}
}
