package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters"
)

// signer signs each request's body per Standard Webhooks, as a brand's
// system wraps the CloudEvents SDK's transport to reach the signed
// endpoint.
type signer struct {
	t      *testing.T
	secret string
	ts     int64
	n      int
	next   http.RoundTripper
	// last is the body of the last answer (the SDK hands only a
	// refusal's to its caller).
	last string
}

func (s *signer) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	s.n++
	id := "msg_sdk_" + strconv.Itoa(s.n)
	r.Header.Set("webhook-id", id)
	r.Header.Set("webhook-timestamp", strconv.FormatInt(s.ts, 10))
	r.Header.Set("webhook-signature", testSign(s.t, s.secret, id, s.ts, string(body)))
	resp, err := s.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	s.last = string(b)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// sdkPurchase is a purchase made with the CloudEvents SDK.
func sdkPurchase(t *testing.T, id string) cloudevents.Event {
	t.Helper()
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetSource("/pos/sh-1")
	e.SetType("purchase.completed")
	e.SetSubject("静安店 till 3")
	e.SetTime(time.Date(2026, 11, 25, 10, 0, 0, 0, time.FixedZone("CST", 8*3600)))
	e.SetExtension("brand", "acme")
	if err := e.SetData(cloudevents.ApplicationJSON, map[string]any{"member": map[string]any{"phone": "13800138000"},
		"order_id": "SO-" + id, "store": "sh-1", "items": []any{map[string]any{"sku": "CL-100", "qty": 2, "price": "129.00"}}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// wantInbound is what a purchase made by sdkPurchase is recorded as.
func wantInbound(id string) *adapters.Inbound {
	return &adapters.Inbound{Channel: ChannelName, DedupKey: "acme /pos/sh-1 " + id, Brand: "acme", Kind: "event",
		Event: "purchase.completed", At: time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC),
		Attrs: map[string]string{"source": "/pos/sh-1", "id": id, "subject": "静安店 till 3",
			"data": `{"items":[{"price":"129.00","qty":2,"sku":"CL-100"}],"member":{"phone":"13800138000"},"order_id":"SO-` + id + `","store":"sh-1"}`}}
}

// TestCloudEventsSDKContentModes: the official CloudEvents Go SDK posts
// to the signed endpoint in each content mode of the HTTP binding
// (binary, its default; structured; batched), its transport wrapped to
// sign the body; each event is recorded with every attribute.
func TestCloudEventsSDKContentModes(t *testing.T) {
	rec := &memRecorder{}
	_, srv, _ := newChannel(t, rec)
	rt := &signer{t: t, secret: acmeSecret, ts: specTS, next: http.DefaultTransport}
	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(srv.URL+EventsPath), cehttp.WithRoundTripper(rt))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name string
		send func() (status int, body string)
		ids  []string
	}{
		{"binary", func() (int, string) {
			status, body := sdkSend(t, c, rt, ctx, sdkPurchase(t, "b-1"))
			if body != `{"accepted":1,"duplicates":0}`+"\n" {
				t.Errorf("answer %s", body)
			}
			return status, body
		}, []string{"b-1"}},
		{"structured", func() (int, string) {
			return sdkSend(t, c, rt, cloudevents.WithEncodingStructured(ctx), sdkPurchase(t, "s-1"))
		}, []string{"s-1"}},
		{"batched", func() (int, string) {
			req, err := cehttp.NewHTTPRequestFromEvents(ctx, srv.URL+EventsPath, []cloudevents.Event{sdkPurchase(t, "m-1"), sdkPurchase(t, "m-2")})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := (&http.Client{Transport: rt}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}, []string{"m-1", "m-2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := tc.send(); status != 200 {
				t.Fatalf("%d %s", status, body)
			}
			for _, id := range tc.ids {
				got := rec.seen["acme /pos/sh-1 "+id]
				if got == nil {
					t.Fatalf("event %s not recorded: %v", id, rec.seen)
				}
				var data bytes.Buffer
				if err := json.Compact(&data, []byte(got.Attrs["data"])); err != nil {
					t.Fatal(err)
				}
				g := *got
				g.Attrs = map[string]string{}
				for k, v := range got.Attrs {
					g.Attrs[k] = v
				}
				g.Attrs["data"] = data.String()
				if diff := cmp.Diff(wantInbound(id), &g); diff != "" {
					t.Errorf("recorded (-want +got):\n%s", diff)
				}
			}
		})
	}
	// The SDK's retry of a binary event is a duplicate.
	if status, body := sdkSend(t, c, rt, ctx, sdkPurchase(t, "b-1")); status != 200 || body != `{"accepted":0,"duplicates":1}`+"\n" {
		t.Errorf("binary event sent again: %d %s", status, body)
	}
}

// sdkSend sends an event with the SDK client and returns the HTTP status
// and the answer's body.
func sdkSend(t *testing.T, c cloudevents.Client, rt *signer, ctx context.Context, e cloudevents.Event) (int, string) {
	t.Helper()
	res := c.Send(ctx, e)
	if cloudevents.IsUndelivered(res) {
		t.Fatalf("undelivered: %v", res)
	}
	var hr *cehttp.Result
	if !cloudevents.ResultAs(res, &hr) {
		t.Fatalf("no HTTP result: %v", res)
	}
	return hr.StatusCode, rt.last
}

// TestBinaryModeFaultsNameTheHeader: a binary-mode request built by hand
// from the HTTP binding is refused with the header at fault named.
func TestBinaryModeFaultsNameTheHeader(t *testing.T) {
	rec := &memRecorder{}
	_, srv, _ := newChannel(t, rec)
	const data = `{"member":{"phone":"13800138000"},"order_id":"SO-1","store":"sh-1","items":[{"sku":"CL-100","qty":2,"price":"129.00"}]}`
	good := func(h http.Header) {
		h.Set("ce-specversion", "1.0")
		h.Set("ce-id", "b-9")
		h.Set("ce-source", "/pos/sh-1")
		h.Set("ce-type", "purchase.completed")
		h.Set("ce-time", "2026-11-25T10:00:00+08:00")
	}
	tests := []struct {
		name, ct, body string
		edit           func(http.Header)
		field, message string
	}{
		{"no ce-id", "application/json", data, func(h http.Header) { h.Del("ce-id") }, "ce-id", "ce-id: header is missing"},
		{"no ce-specversion", "application/json", data, func(h http.Header) { h.Del("ce-specversion") }, "ce-specversion", "ce-specversion: header is missing"},
		{"old specversion", "application/json", data, func(h http.Header) { h.Set("ce-specversion", "0.3") }, "ce-specversion", `want \"1.0\", got \"0.3\"`},
		{"no ce-type", "application/json", data, func(h http.Header) { h.Del("ce-type") }, "ce-type", "ce-type: header is missing"},
		{"bad ce-time", "application/json", data, func(h http.Header) { h.Set("ce-time", "yesterday") }, "ce-time", `want RFC 3339`},
		{"other brand", "application/json", data, func(h http.Header) { h.Set("ce-brand", "zeta") }, "ce-brand", `belongs to brand \"acme\"`},
		{"text data", "text/plain", "hello", nil, "Content-Type", "only application/json data"},
		{"body not JSON", "application/json", "{", nil, "body", "want JSON data"},
		{"bad data", "application/json", strings.Replace(data, `"qty":2`, `"qty":0`, 1), nil, "data.items[0].qty", "must be > 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, srv.URL, acmeSecret, tc.ct, tc.body, func(h http.Header) {
				good(h)
				if tc.edit != nil {
					tc.edit(h)
				}
			})
			var e struct {
				Error struct {
					Message string  `json:"message"`
					Details []Fault `json:"details"`
				} `json:"error"`
			}
			json.Unmarshal([]byte(body), &e)
			if code != 400 || len(e.Error.Details) == 0 || e.Error.Details[0].Path != tc.field || !strings.Contains(body, tc.message) ||
				!strings.HasPrefix(e.Error.Message, "binary-mode CloudEvent refused: "+tc.field) {
				t.Errorf("%d %s; want 400 naming %s with %q", code, body, tc.field, tc.message)
			}
		})
	}
	if len(rec.seen) != 0 {
		t.Errorf("refused requests recorded %d events", len(rec.seen))
	}
	// The same request with every header is accepted.
	if code, body := post(t, srv.URL, acmeSecret, "application/json; charset=utf-8", data, good); code != 200 || body != `{"accepted":1,"duplicates":0}`+"\n" {
		t.Errorf("good binary request: %d %s", code, body)
	}
	if in := rec.seen["acme /pos/sh-1 b-9"]; in == nil || in.Attrs["data"] != data {
		t.Errorf("recorded %+v", in)
	}
}
