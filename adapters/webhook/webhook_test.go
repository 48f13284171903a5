package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// The Standard Webhooks specification's published example.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = 1614265330
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesTheSpecVector(t *testing.T) {
	key, err := decodeSecret(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := Sign(key, specID, specTS, []byte(specBody)); got != specSig {
		t.Errorf("Sign = %s, want %s", got, specSig)
	}
}

type memRecorder struct {
	mu   sync.Mutex
	seen map[string]*adapters.Inbound
	fail error
}

func (r *memRecorder) Record(_ context.Context, in *adapters.Inbound) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	if r.seen == nil {
		r.seen = map[string]*adapters.Inbound{}
	}
	if _, ok := r.seen[in.DedupKey]; !ok {
		r.seen[in.DedupKey] = in
	}
	return nil
}

func newChannel(t *testing.T, rec adapters.Recorder) (*Channel, *httptest.Server) {
	t.Helper()
	ch, err := New(Config{Secret: specSecret}, rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch.now = func() time.Time { return time.Unix(specTS, 0) }
	mux := http.NewServeMux()
	for _, r := range ch.Routes() {
		mux.Handle(r.Method+" "+r.Path, r.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return ch, srv
}

func post(t *testing.T, ch *Channel, url, contentType, body string, mutate func(http.Header)) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+EventsPath, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("webhook-id", "msg_1")
	req.Header.Set("webhook-timestamp", strconv.FormatInt(specTS, 10))
	req.Header.Set("webhook-signature", "v1,bogus "+Sign(ch.key, "msg_1", specTS, []byte(body)))
	if mutate != nil {
		mutate(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func event(id, typ string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/pos/sh-1","type":%q,"brand":"acme","time":"2026-11-25T10:00:00+08:00",
		"datacontenttype":"application/json","data":{"member":{"phone":"13800138000"},"order_id":"SO-1","total":45800}}`, id, typ)
}

func TestReceiveEvents(t *testing.T) {
	rec := &memRecorder{}
	ch, srv := newChannel(t, rec)
	if code, body := post(t, ch, srv.URL, "application/cloudevents+json", event("e1", "purchase.completed"), nil); code != 202 {
		t.Fatalf("single event: %d %s", code, body)
	}
	batch := "[" + event("e2", "purchase.completed") + "," + event("e3", "store.visited") + "," + event("e2", "purchase.completed") + "]"
	if code, body := post(t, ch, srv.URL, "application/cloudevents-batch+json", batch, nil); code != 400 || !strings.Contains(body, "same source and id as event 0") {
		t.Fatalf("batch repeating an id in itself: %d %s", code, body)
	}
	batch = "[" + event("e2", "purchase.completed") + "," + event("e3", "store.visited") + "]"
	if code, body := post(t, ch, srv.URL, "application/cloudevents-batch+json", batch, nil); code != 202 || !strings.Contains(body, `"accepted":2`) {
		t.Fatalf("batch: %d %s", code, body)
	}
	post(t, ch, srv.URL, "application/cloudevents+json", event("e1", "purchase.completed"), nil) // a redelivery
	if len(rec.seen) != 3 {
		t.Fatalf("recorded %d events, want 3", len(rec.seen))
	}
	in := rec.seen["/pos/sh-1 e1"]
	var data map[string]any
	json.Unmarshal([]byte(in.Attrs["data"]), &data)
	if in.Event != "purchase.completed" || in.Brand != "acme" || !in.At.Equal(time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)) || data["order_id"] != "SO-1" {
		t.Errorf("recorded %+v", in)
	}
}

func TestRefusedEventsRecordNothing(t *testing.T) {
	rec := &memRecorder{}
	ch, srv := newChannel(t, rec)
	good := event("g1", "purchase.completed")
	tests := []struct {
		name, ct, body string
		mutate         func(http.Header)
		status         int
		want           string
	}{
		{"no signature", "application/cloudevents+json", good, func(h http.Header) { h.Del("webhook-signature") }, 401, "missing"},
		{"wrong signature", "application/cloudevents+json", good, func(h http.Header) { h.Set("webhook-signature", "v1,AAAA") }, 401, "no matching signature"},
		{"replayed", "application/cloudevents+json", good, func(h http.Header) { h.Set("webhook-timestamp", strconv.Itoa(specTS-3600)) }, 401, "outside"},
		{"signed other id", "application/cloudevents+json", good, func(h http.Header) { h.Set("webhook-id", "msg_2") }, 401, "no matching signature"},
		{"content type", "text/plain", good, nil, 415, "content type"},
		{"not json", "application/cloudevents+json", "{", nil, 400, "want a CloudEvent"},
		{"unknown type", "application/cloudevents+json", event("x", "purchase.exploded"), nil, 400, `purchase.exploded\" is not one of`},
		{"no member", "application/cloudevents+json", strings.Replace(good, `"member":{"phone":"13800138000"},`, "", 1), nil, 400, "data.member"},
		{"bad time", "application/cloudevents+json", strings.Replace(good, "2026-11-25T10:00:00+08:00", "yesterday", 1), nil, 400, "time: want RFC 3339"},
		{"one bad in a batch", "application/cloudevents-batch+json", "[" + good + "," + strings.Replace(good, `"1.0"`, `"0.3"`, 1) + "]", nil, 400, `"index":1`},
		{"empty batch", "application/cloudevents-batch+json", "[]", nil, 400, "want 1 to 1000 events"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, ch, srv.URL, tc.ct, tc.body, tc.mutate)
			if code != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("%d %s; want %d containing %q", code, body, tc.status, tc.want)
			}
		})
	}
	if len(rec.seen) != 0 {
		t.Errorf("refused requests recorded %d events", len(rec.seen))
	}
	rec.fail = errors.New("database down")
	if code, _ := post(t, ch, srv.URL, "application/cloudevents+json", good, nil); code != 503 {
		t.Errorf("recorder down: %d, want 503 so the sender retries", code)
	}
}

func TestSendSignsWebhooks(t *testing.T) {
	var got *http.Request
	var body []byte
	status := 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, body = r, must(io.ReadAll(r.Body))
		w.WriteHeader(status)
	}))
	defer srv.Close()
	ch, err := New(Config{Secret: specSecret, URL: srv.URL}, &memRecorder{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rcpt, err := ch.Send(context.Background(), &adapters.Outbound{IdempotencyKey: "wf:1:nudge:1", To: "m-1", Kind: "text", Text: "hi"})
	if err != nil || rcpt.ExternalID != "wf:1:nudge:1" {
		t.Fatalf("Send = %+v, %v", rcpt, err)
	}
	ts, _ := strconv.ParseInt(got.Header.Get("webhook-timestamp"), 10, 64)
	if got.Header.Get("webhook-signature") != Sign(ch.key, "wf:1:nudge:1", ts, body) || got.Header.Get("webhook-id") != "wf:1:nudge:1" {
		t.Errorf("headers %v do not sign the body", got.Header)
	}
	for code, want := range map[int]error{429: adapters.ErrRateLimited, 503: adapters.ErrTemporary, 401: adapters.ErrUnauthorized} {
		status = code
		if _, err := ch.Send(context.Background(), &adapters.Outbound{To: "m"}); !errors.Is(err, want) {
			t.Errorf("HTTP %d: %v, want %v", code, err, want)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Secret: "plain"}, "webhook.secret"},
		{Config{Secret: "whsec_c2hvcnQ="}, "24 to 64 bytes"},
		{Config{Secret: specSecret, URL: "ftp://x"}, "webhook.url"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
