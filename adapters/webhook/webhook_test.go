package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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
	"github.com/scrmgw/scrmgw/events"
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
	key, err := DecodeSecret(specSecret)
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
	_, err := r.RecordBatch(context.Background(), []*adapters.Inbound{in})
	return err
}

func (r *memRecorder) RecordBatch(_ context.Context, ins []*adapters.Inbound) ([]bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return nil, r.fail
	}
	if r.seen == nil {
		r.seen = map[string]*adapters.Inbound{}
	}
	fresh := make([]bool, len(ins))
	for i, in := range ins {
		if _, ok := r.seen[in.DedupKey]; !ok {
			r.seen[in.DedupKey] = in
			fresh[i] = true
		}
	}
	return fresh, nil
}

// testSign signs per the Standard Webhooks specification without the
// package's own Sign: the secret's base64 after "whsec_" is the key, and
// the signature is HMAC-SHA256 over "id.timestamp.body".
func testSign(t *testing.T, secret, id string, ts int64, body string) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "." + body))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

const (
	acmeSecret = "whsec_YWNtZS1zZWNyZXQta2V5LW9mLTMyLWJ5dGVzISE="
	zetaSecret = "whsec_emV0YS1zZWNyZXQta2V5LW9mLTMyLWJ5dGVzISE="
)

// sourceList is what the channel lists as the API-made sources.
type sourceList struct {
	mu   sync.Mutex
	srcs []Source
}

func (l *sourceList) list(context.Context) ([]Source, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Source(nil), l.srcs...), nil
}

// schema is the commerce event schema, as the wiring passes it.
func schema(typ string, data json.RawMessage) []string { return events.Check(typ, data, nil) }

func newChannel(t *testing.T, rec adapters.Recorder) (*Channel, *httptest.Server, *sourceList) {
	t.Helper()
	srcs := &sourceList{srcs: []Source{
		{ID: "pos-acme", Brand: "acme", Keys: [][]byte{must(DecodeSecret(acmeSecret))}},
		{ID: "crm-zeta", Brand: "zeta", Keys: [][]byte{must(DecodeSecret(zetaSecret))}},
	}}
	ing := NewIngester(rec, schema, 1000, nil)
	ing.now = func() time.Time { return time.Unix(specTS, 0) }
	ch, err := New(Config{Secret: specSecret}, ing, srcs.list, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch.now = ing.now
	mux := http.NewServeMux()
	for _, r := range ch.Routes() {
		mux.Handle(r.Method+" "+r.Path, r.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return ch, srv, srcs
}

// post sends body signed with secret (a bogus extra signature first, as a
// sender rotating secrets sends two).
func post(t *testing.T, url, secret, contentType, body string, mutate func(http.Header)) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+EventsPath, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("webhook-id", "msg_1")
	req.Header.Set("webhook-timestamp", strconv.FormatInt(specTS, 10))
	req.Header.Set("webhook-signature", "v1,Ym9ndXM= "+testSign(t, secret, "msg_1", specTS, body))
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

func purchase(id string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/pos/sh-1","type":"purchase.completed","time":"2026-11-25T10:00:00+08:00",
		"datacontenttype":"application/json","data":{"member":{"phone":"13800138000"},"order_id":"SO-1","store":"sh-1",
		"items":[{"sku":"CL-100","qty":2,"price":"129.00"},{"sku":"TN-200","qty":1,"price":99.5}]}}`, id)
}

func visit(id string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/pos/sh-1","type":"store.visited","data":{"member":{"crm_id":"C1"},"store":"sh-1"}}`, id)
}

func TestReceiveEvents(t *testing.T) {
	rec := &memRecorder{}
	_, srv, _ := newChannel(t, rec)
	if code, body := post(t, srv.URL, acmeSecret, "application/cloudevents+json", purchase("e1"), nil); code != 200 || body != `{"accepted":1,"duplicates":0}`+"\n" {
		t.Fatalf("single event: %d %s", code, body)
	}
	batch := "[" + purchase("e2") + "," + visit("e3") + "," + purchase("e2") + "]"
	if code, body := post(t, srv.URL, acmeSecret, "application/cloudevents-batch+json", batch, nil); code != 400 || !strings.Contains(body, "same source and id as events[0]") {
		t.Fatalf("batch repeating an id in itself: %d %s", code, body)
	}
	batch = "[" + purchase("e1") + "," + purchase("e2") + "," + visit("e3") + "]"
	if code, body := post(t, srv.URL, acmeSecret, "application/cloudevents-batch+json", batch, nil); code != 200 || !strings.Contains(body, `{"accepted":2,"duplicates":1}`) {
		t.Fatalf("batch with one event seen before: %d %s", code, body)
	}
	if len(rec.seen) != 3 {
		t.Fatalf("recorded %d events, want 3", len(rec.seen))
	}
	in := rec.seen["acme /pos/sh-1 e1"]
	if in == nil {
		t.Fatalf("no event under key %q: %v", "acme /pos/sh-1 e1", rec.seen)
	}
	var data events.PurchaseData
	if err := json.Unmarshal([]byte(in.Attrs["data"]), &data); err != nil {
		t.Fatal(err)
	}
	if in.Event != "purchase.completed" || in.Brand != "acme" || !in.At.Equal(time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)) ||
		data.OrderID != "SO-1" || data.Items[0].Price != 12900 || data.Items[1].Price != 9950 {
		t.Errorf("recorded %+v with data %+v", in, data)
	}
	// The same event id from another brand's source is another event.
	if code, body := post(t, srv.URL, zetaSecret, "application/cloudevents+json", purchase("e1"), nil); code != 200 || !strings.Contains(body, `"accepted":1`) {
		t.Fatalf("zeta's e1: %d %s", code, body)
	}
	if rec.seen["zeta /pos/sh-1 e1"] == nil {
		t.Errorf("zeta's event not recorded under its brand: %v", rec.seen)
	}
}

func TestSourcesPinBrandsAndRotate(t *testing.T) {
	rec := &memRecorder{}
	ch, srv, srcs := newChannel(t, rec)
	// acme's source cannot post for zeta.
	ev := strings.Replace(purchase("b1"), `"specversion"`, `"brand":"zeta","specversion"`, 1)
	if code, body := post(t, srv.URL, acmeSecret, "application/cloudevents+json", ev, nil); code != 400 || !strings.Contains(body, `belongs to brand \"acme\"`) {
		t.Errorf("acme source posting for zeta: %d %s", code, body)
	}
	// The default source (webhook.secret without webhook.brand) needs the
	// brand attribute.
	if code, body := post(t, srv.URL, specSecret, "application/cloudevents+json", purchase("d1"), nil); code != 400 || !strings.Contains(body, `"field":"brand"`) {
		t.Errorf("default source without brand: %d %s", code, body)
	}
	if code, body := post(t, srv.URL, specSecret, "application/cloudevents+json", ev, nil); code != 200 {
		t.Errorf("default source naming its brand: %d %s", code, body)
	}
	// ?source= limits the check to one source.
	req := func(source, secret string) int {
		r, _ := http.NewRequest("POST", srv.URL+EventsPath+"?source="+source, strings.NewReader(purchase("q1")))
		r.Header.Set("Content-Type", "application/cloudevents+json")
		r.Header.Set("webhook-id", "m")
		r.Header.Set("webhook-timestamp", strconv.FormatInt(specTS, 10))
		r.Header.Set("webhook-signature", testSign(t, secret, "m", specTS, purchase("q1")))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := req("crm-zeta", acmeSecret); code != 401 {
		t.Errorf("acme's signature checked as crm-zeta: %d, want 401", code)
	}
	if code := req("nope", acmeSecret); code != 401 {
		t.Errorf("unknown source: %d, want 401", code)
	}
	// Rotation: the new key and the old one both work while listed.
	newSecret := "whsec_bmV3LWFjbWUtc2VjcmV0LWtleS1vZi0zMi1ieXRlcw=="
	srcs.mu.Lock()
	srcs.srcs[0].Keys = [][]byte{must(DecodeSecret(newSecret)), must(DecodeSecret(acmeSecret))}
	srcs.mu.Unlock()
	ch.InvalidateSources()
	for _, sec := range []string{newSecret, acmeSecret} {
		if code, body := post(t, srv.URL, sec, "application/cloudevents+json", purchase("r-"+sec[6:10]), nil); code != 200 {
			t.Errorf("during rotation, %s...: %d %s", sec[:10], code, body)
		}
	}
	srcs.mu.Lock()
	srcs.srcs[0].Keys = [][]byte{must(DecodeSecret(newSecret))}
	srcs.mu.Unlock()
	ch.InvalidateSources()
	if code, _ := post(t, srv.URL, acmeSecret, "application/cloudevents+json", purchase("r-old"), nil); code != 401 {
		t.Errorf("retired secret: %d, want 401", code)
	}
}

func TestRefusedEventsRecordNothing(t *testing.T) {
	rec := &memRecorder{}
	_, srv, _ := newChannel(t, rec)
	good := purchase("g1")
	bad := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	tests := []struct {
		name, ct, body string
		mutate         func(http.Header)
		status         int
		want           string
	}{
		{"no signature", "application/cloudevents+json", good, func(h http.Header) { h.Del("webhook-signature") }, 401, "missing"},
		{"wrong signature", "application/cloudevents+json", good, func(h http.Header) { h.Set("webhook-signature", "v1,AAAA") }, 401, "no matching signature"},
		{"stale", "application/cloudevents+json", good, func(h http.Header) { h.Set("webhook-timestamp", strconv.Itoa(specTS-301)) }, 401, "outside"},
		{"future", "application/cloudevents+json", good, func(h http.Header) { h.Set("webhook-timestamp", strconv.Itoa(specTS+301)) }, 401, "outside"},
		{"signed other id", "application/cloudevents+json", good, func(h http.Header) { h.Set("webhook-id", "msg_2") }, 401, "no matching signature"},
		{"content type", "text/plain", good, nil, 415, "content type"},
		{"not json", "application/cloudevents+json", "{", nil, 400, "want a CloudEvent"},
		{"unknown type", "application/cloudevents+json", bad("purchase.completed", "purchase.exploded"), nil, 400, `purchase.exploded\" is not one of`},
		{"bad custom type", "application/cloudevents+json", bad("purchase.completed", "x.Bad Type"), nil, 400, `"field":"type"`},
		{"no member", "application/cloudevents+json", bad(`"member":{"phone":"13800138000"},`, ""), nil, 400, `"field":"data.member","message":"is required"`},
		{"zero qty", "application/cloudevents+json", bad(`"qty":2`, `"qty":0`), nil, 400, `"field":"data.items[0].qty","message":"must be > 0"`},
		{"price with 3 decimals", "application/cloudevents+json", bad(`"129.00"`, `"129.001"`), nil, 400, `"field":"data.items[0].price"`},
		{"no items", "application/cloudevents+json", bad(`"items":[`, `"itemz":[`), nil, 400, `"field":"data.items","message":"is required"`},
		{"no order id", "application/cloudevents+json", bad(`"order_id":"SO-1",`, ""), nil, 400, `"field":"data.order_id"`},
		{"bad time", "application/cloudevents+json", bad("2026-11-25T10:00:00+08:00", "yesterday"), nil, 400, "time"},
		{"one bad in a batch", "application/cloudevents-batch+json", "[" + good + "," + visit("v1") + "," +
			strings.Replace(purchase("g2"), `"qty":2`, `"qty":-1`, 1) + "]", nil, 400, `"field":"events[2].data.items[0].qty"`},
		{"empty batch", "application/cloudevents-batch+json", "[]", nil, 400, "want 1 to 1000 events"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, srv.URL, acmeSecret, tc.ct, tc.body, tc.mutate)
			if code != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("%d %s; want %d containing %q", code, body, tc.status, tc.want)
			}
		})
	}
	if len(rec.seen) != 0 {
		t.Errorf("refused requests recorded %d events", len(rec.seen))
	}
	rec.fail = errors.New("database down")
	if code, _ := post(t, srv.URL, acmeSecret, "application/cloudevents+json", good, nil); code != 503 {
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
	ch, err := New(Config{Secret: specSecret, URL: srv.URL}, NewIngester(&memRecorder{}, nil, 0, nil), nil, nil)
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
