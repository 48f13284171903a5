package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/outbox"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestBrandWebhookEndpointWithRedis: a brand registers its own endpoint
// through the API; a message for the brand on the webhook channel goes
// there as a CloudEvent signed with the brand's secret (checked here
// without the webhook package's signer), not to webhook.url.
func TestBrandWebhookEndpointWithRedis(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var bodies []string
	brandSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, string(b))
		mu.Unlock()
	}))
	defer brandSrv.Close()
	defaultHits := 0
	defaultSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defaultHits++
		mu.Unlock()
	}))
	defer defaultSrv.Close()
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "endpoint-e2e-admin-token-01"
	cfg.Security.PhoneKey = strings.Repeat("ab", 32)
	cfg.Webhook.Secret, cfg.Webhook.URL = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", defaultSrv.URL
	s := startServe(t, cfg)
	tok := cfg.AdminToken
	if code, body := request(t, "POST", s.base+"/api/v1/brands", tok, `{"id":"acme","name":"ACME"}`); code != 201 {
		t.Fatalf("brand: %d %s", code, body)
	}
	code, body := request(t, "PUT", s.base+"/api/v1/brands/acme/webhook-endpoint", tok, `{"url":"`+brandSrv.URL+`/push"}`)
	var ep struct {
		URL    string `json:"url"`
		Secret string `json:"secret"`
	}
	json.Unmarshal([]byte(body), &ep)
	if code != 200 || !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("endpoint: %d %s", code, body)
	}
	if code, body := request(t, "GET", s.base+"/api/v1/brands/acme/webhook-endpoint", tok, ""); code != 200 || strings.Contains(body, ep.Secret) {
		t.Errorf("reading the endpoint: %d %s", code, body)
	}
	if code, body := request(t, "PUT", s.base+"/api/v1/brands/acme/webhook-endpoint", tok, `{"url":"ftp://x"}`); code != 400 {
		t.Errorf("bad URL: %d %s", code, body)
	}
	ctx := context.Background()
	if _, err := s.app.sender.Send(ctx, webhook.ChannelName, &adapters.Outbound{IdempotencyKey: "push:1", To: "app-user-7", Kind: "text", Text: "新品到店"},
		outbox.Meta{BrandID: "acme"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the brand's endpoint called", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	r := got[0]
	if sig := signEvent(t, ep.Secret, r.Header.Get("webhook-id"), mustInt(t, r.Header.Get("webhook-timestamp")), bodies[0]); r.Header.Get("webhook-signature") != sig {
		t.Errorf("signature %q, want %q (the brand's secret)", r.Header.Get("webhook-signature"), sig)
	}
	if r.URL.Path != "/push" || r.Header.Get("webhook-id") != "push:1" || !strings.Contains(bodies[0], `"type":"scrmgw.message"`) ||
		!strings.Contains(bodies[0], "新品到店") || defaultHits != 0 {
		t.Errorf("delivery %s %v %s; webhook.url hit %d times", r.URL.Path, r.Header, bodies[0], defaultHits)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}
