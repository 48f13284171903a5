package app

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// authTransport is how a brand's system wraps the CloudEvents SDK's
// transport: a bearer token for /api/v1/events, or Standard Webhooks
// headers signing the body for /callbacks/events. It keeps the last
// answer's body, which the SDK hands its caller only for a refusal.
type authTransport struct {
	t      *testing.T
	token  string
	secret string
	n      int
	last   string
}

func (a *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	if a.token != "" {
		r.Header.Set("Authorization", "Bearer "+a.token)
	}
	if a.secret != "" {
		a.n++
		id, ts := "msg_sdk_"+strconv.Itoa(a.n), time.Now().Unix()
		r.Header.Set("webhook-id", id)
		r.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		r.Header.Set("webhook-signature", signEvent(a.t, a.secret, id, ts, string(body)))
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	a.last = string(b)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, err
}

// TestCloudEventsSDKWithRedis: the official CloudEvents Go SDK, as a
// brand's POS would use it, posts store visits to both endpoints in each
// content mode of the HTTP binding (binary is its default); every event
// is logged for the member its data names, once.
func TestCloudEventsSDKWithRedis(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "cloudevents-sdk-admin-token-01"
	cfg.Security.PhoneKey = strings.Repeat("78", 32)
	cfg.Webhook.Secret = secret
	cfg.Webhook.Brand = "acme"
	s := startServe(t, cfg)
	if code, body := request(t, "POST", s.base+"/api/v1/brands", cfg.AdminToken, `{"id":"acme","name":"ACME"}`); code != 201 {
		t.Fatalf("brand: %d %s", code, body)
	}
	visit := func(id string) cloudevents.Event {
		e := cloudevents.NewEvent()
		e.SetID(id)
		e.SetSource("/pos/sh-1")
		e.SetType("store.visited")
		e.SetTime(time.Now())
		e.SetExtension("brand", "acme")
		if err := e.SetData(cloudevents.ApplicationJSON, map[string]any{"member": map[string]any{"phone": "13700137000"}, "store": "sh-1"}); err != nil {
			t.Fatal(err)
		}
		return e
	}
	ctx := context.Background()
	tests := []struct {
		name, path string
		auth       *authTransport
		mode       string
		ids        []string
	}{
		{"api binary", "/api/v1/events", &authTransport{t: t, token: cfg.AdminToken}, "binary", []string{"a-b"}},
		{"api structured", "/api/v1/events", &authTransport{t: t, token: cfg.AdminToken}, "structured", []string{"a-s"}},
		{"api batched", "/api/v1/events", &authTransport{t: t, token: cfg.AdminToken}, "batched", []string{"a-m1", "a-m2"}},
		{"signed binary", "/callbacks/events", &authTransport{t: t, secret: secret}, "binary", []string{"c-b"}},
		{"signed structured", "/callbacks/events", &authTransport{t: t, secret: secret}, "structured", []string{"c-s"}},
		{"signed batched", "/callbacks/events", &authTransport{t: t, secret: secret}, "batched", []string{"c-m1", "c-m2"}},
	}
	var logged []string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status := 0
			if tc.mode == "batched" {
				var evs []cloudevents.Event
				for _, id := range tc.ids {
					evs = append(evs, visit(id))
				}
				req, err := cehttp.NewHTTPRequestFromEvents(ctx, s.base+tc.path, evs)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := (&http.Client{Transport: tc.auth}).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				status = resp.StatusCode
			} else {
				c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(s.base+tc.path), cehttp.WithRoundTripper(tc.auth))
				if err != nil {
					t.Fatal(err)
				}
				sctx := ctx
				if tc.mode == "structured" {
					sctx = cloudevents.WithEncodingStructured(ctx)
				}
				res := c.Send(sctx, visit(tc.ids[0]))
				var hr *cehttp.Result
				if !cloudevents.ResultAs(res, &hr) {
					t.Fatalf("no HTTP result: %v", res)
				}
				status = hr.StatusCode
			}
			want := `{"accepted":` + strconv.Itoa(len(tc.ids)) + `,"duplicates":0}` + "\n"
			if status != 200 || tc.auth.last != want {
				t.Fatalf("%d %s, want 200 %s", status, tc.auth.last, want)
			}
			for _, id := range tc.ids {
				logged = append(logged, "acme /pos/sh-1 "+id)
			}
		})
	}
	var evs []store.Event
	waitFor(t, "every visit logged", func() bool {
		v, err := s.app.Store.MemberByPhone(ctx, "13700137000", "acme")
		if err != nil {
			return false
		}
		evs, _ = s.app.Store.Events(ctx, store.EventFilter{MemberID: v.ID})
		return len(evs) >= len(logged)
	})
	var got []string
	for _, e := range evs {
		got = append(got, e.SourceID)
		if e.Type != "store.visited" || e.BrandID != "acme" || e.Payload != `{"source":"/pos/sh-1","store_id":"sh-1"}` {
			t.Errorf("logged %+v", e)
		}
	}
	slices.Sort(got)
	slices.Sort(logged)
	if !slices.Equal(got, logged) {
		t.Errorf("logged %v, want %v", got, logged)
	}
	// A binary request without ce-id is refused, naming the header.
	req, _ := http.NewRequest("POST", s.base+"/api/v1/events", strings.NewReader(`{"member":{"phone":"13700137000"},"store":"sh-1"}`))
	req.Header.Set("Authorization", "Bearer "+cfg.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-source", "/pos/sh-1")
	req.Header.Set("ce-type", "store.visited")
	req.Header.Set("ce-brand", "acme")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), `"field":"ce-id"`) || !strings.Contains(string(b), "ce-id: header is missing") {
		t.Errorf("binary without ce-id: %d %s", resp.StatusCode, b)
	}
}
