package app

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestCommerceEventsWithRedis: a signed CloudEvents batch from the brand's
// POS is logged once per event (redelivery included), for a member found
// or created by phone.
func TestCommerceEventsWithRedis(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "events-e2e-admin-token-0123"
	cfg.Security.PhoneKey = strings.Repeat("12", 32)
	cfg.Webhook.Secret = secret
	s := startServe(t, cfg)
	if code, body := request(t, "POST", s.base+"/api/v1/brands", cfg.AdminToken, `{"id":"acme","name":"ACME"}`); code != 201 {
		t.Fatalf("brand: %d %s", code, body)
	}
	batch := `[{"specversion":"1.0","id":"o-1","source":"/pos/sh-1","type":"purchase.completed","brand":"acme",
	  "data":{"member":{"phone":"13700137000"},"order_id":"SO-1","total":12800}},
	 {"specversion":"1.0","id":"v-1","source":"/pos/sh-1","type":"store.visited","brand":"acme",
	  "data":{"member":{"phone":"+86 137 0013 7000"},"store_id":"sh-1"}}]`
	key := []byte(nil)
	for i := 0; i < 2; i++ { // the POS retries the same batch
		ts := time.Now().Unix()
		req, _ := http.NewRequest("POST", s.base+webhook.EventsPath, strings.NewReader(batch))
		req.Header.Set("Content-Type", "application/cloudevents-batch+json")
		req.Header.Set("webhook-id", "batch-1")
		req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
		if key == nil {
			key = mustKey(t, secret)
		}
		req.Header.Set("webhook-signature", webhook.Sign(key, "batch-1", ts, []byte(batch)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("delivery %d: %d", i, resp.StatusCode)
		}
	}
	ctx := context.Background()
	var evs []store.Event
	waitFor(t, "two logged events", func() bool {
		v, err := s.app.Store.MemberByPhone(ctx, "13700137000", "acme")
		if err != nil {
			return false
		}
		evs, _ = s.app.Store.Events(ctx, store.EventFilter{MemberID: v.ID})
		return len(evs) >= 2
	})
	time.Sleep(300 * time.Millisecond)
	v, _ := s.app.Store.MemberByPhone(ctx, "13700137000", "acme")
	evs, _ = s.app.Store.Events(ctx, store.EventFilter{MemberID: v.ID})
	if len(evs) != 2 || evs[0].Type != "purchase.completed" || !strings.Contains(evs[0].Payload, `"order_id":"SO-1"`) {
		t.Errorf("events = %+v", evs)
	}
}

func mustKey(t *testing.T, secret string) []byte {
	t.Helper()
	raw := strings.TrimPrefix(secret, "whsec_")
	key, err := base64Std(raw)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func base64Std(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
