package app

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"slices"
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
	  "data":{"member":{"phone":"13700137000"},"order_id":"SO-1","items":[{"sku":"A","qty":1,"price":128}]}},
	 {"specversion":"1.0","id":"v-1","source":"/pos/sh-1","type":"store.visited","brand":"acme",
	  "data":{"member":{"phone":"+86 137 0013 7000"},"store":"sh-1"}}]`
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
		if resp.StatusCode != 200 {
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
	types := map[string]string{}
	for _, e := range evs {
		types[e.Type] = e.Payload
	}
	if len(evs) != 2 || !strings.Contains(types["purchase.completed"], `"id":"SO-1"`) || types["store.visited"] == "" {
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

// TestWorkflowFromPurchaseToGuideTaskWithRedis: a marketer puts and
// enables a workflow through the API; a signed purchase event starts a
// run that tags the member, awards points and gives their guide a task;
// the guide completes it through the guide bot (WeCom app message), which
// ends the run as converted; the stats say so.
func TestWorkflowFromPurchaseToGuideTaskWithRedis(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "workflow-e2e-admin-token-01"
	cfg.Security.PhoneKey = strings.Repeat("34", 32)
	cfg.Webhook.Secret = secret
	s := startServe(t, cfg)
	tok := cfg.AdminToken
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li"}`},
		{"/api/v1/members", `{"phone":"13600136000","name":"孙女士","brand":"acme"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code/100 != 2 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	ctx := context.Background()
	v, _ := s.app.Store.MemberByPhone(ctx, "13600136000", "")
	if code, body := request(t, "POST", s.base+"/api/v1/members/"+strconv.FormatInt(v.ID, 10)+"/assign", tok, `{"brand":"acme","store_id":"sh-1"}`); code != 200 {
		t.Fatalf("assign: %d %s", code, body)
	}
	wf := `name: vip-thanks
trigger:
  event: purchase.completed
entry:
  brand: acme
  re_entry: never
goal: guide_task.completed
send_rules:
  quiet_hours: none
steps:
  - tag: vip
  - award_points: 50
    reason: thank-you bonus
  - id: call
    guide_task: "感谢 {{.Member.Name}} 的购买，回访一下"
    due_in: 1d
  - wait: 30d
`
	put := func(body string) (int, string) {
		req, _ := http.NewRequest("PUT", s.base+"/api/v1/workflows/vip-thanks?brand=acme", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := put(strings.Replace(wf, "guide_task:", "guide_tusk:", 1)); code != 400 || !strings.Contains(body, "vip-thanks.yaml:") {
		t.Fatalf("bad workflow: %d %s, want 400 with file:line", code, body)
	}
	if code, body := put(wf); code != 201 {
		t.Fatalf("PUT workflow: %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/workflows/vip-thanks/enable?brand=acme", tok, ""); code != 200 {
		t.Fatalf("enable: %d %s", code, body)
	}

	ev := `{"specversion":"1.0","id":"o-77","source":"/pos/sh-1","type":"purchase.completed","brand":"acme",
	  "data":{"member":{"phone":"13600136000"},"order_id":"SO-77","items":[{"sku":"A","qty":1,"price":999}]}}`
	ts := time.Now().Unix()
	req, _ := http.NewRequest("POST", s.base+webhook.EventsPath, strings.NewReader(ev))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("webhook-id", "evt-77")
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", webhook.Sign(mustKey(t, secret), "evt-77", ts, []byte(ev)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("event: %d", resp.StatusCode)
	}
	var tasks []store.GuideTask
	waitFor(t, "the guide task", func() bool {
		tasks, _ = s.app.Store.GuideTasks(ctx, store.GuideTaskFilter{GuideID: "g-li"})
		return len(tasks) == 1
	})
	if !strings.Contains(tasks[0].Title, "孙女士") {
		t.Errorf("task title = %q", tasks[0].Title)
	}
	p, err := s.app.Store.MemberProfile(ctx, "acme", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(p.Tags, "vip") || p.Membership == nil || p.Membership.Points != 50 {
		t.Errorf("member after the run's first steps: tags %v, membership %+v", p.Tags, p.Membership)
	}
	// The guide completes it (the guide bot does the same; here the API).
	if code, body := request(t, "POST", s.base+"/api/v1/guide-tasks/"+strconv.FormatInt(tasks[0].ID, 10)+"/complete", tok, ""); code != 200 || !strings.Contains(body, `"completed":true`) {
		t.Fatalf("complete: %d %s", code, body)
	}
	var stats string
	waitFor(t, "the run converted", func() bool {
		_, stats = request(t, "GET", s.base+"/api/v1/workflows/vip-thanks/stats?brand=acme", tok, "")
		return strings.Contains(stats, `"converted":1`)
	})
	if !strings.Contains(stats, `"entered":1`) || !strings.Contains(stats, `"active":0`) {
		t.Errorf("stats = %s", stats)
	}
}
