package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestPurchaseEndsRecallAndStartsRepurchaseWithRedis: a CRM sign-up
// starts a recall run that waits; the member's first purchase, sent as a
// signed event, converts it, and starts a repurchase run that waits until
// three days before the bought product (30-day cycle, from the catalogue)
// runs out.
func TestPurchaseEndsRecallAndStartsRepurchaseWithRedis(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "recall-e2e-admin-token-0001"
	cfg.Security.PhoneKey = strings.Repeat("9a", 32)
	cfg.Webhook.Secret, cfg.Webhook.Brand = secret, "acme"
	s := startServe(t, cfg)
	tok := cfg.AdminToken
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜"}`},
		{"/api/v1/products/bulk", `{"items":[{"brand":"acme","sku":"CL-100","name":"洁面乳","price":129,"replenish_days":30}]}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code/100 != 2 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	put := func(name, yaml string) {
		req, _ := http.NewRequest("PUT", s.base+"/api/v1/workflows/"+name+"?brand=acme", strings.NewReader(yaml))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("PUT %s: %d %s", name, resp.StatusCode, b)
		}
		if code, body := request(t, "POST", s.base+"/api/v1/workflows/"+name+"/enable?brand=acme", tok, ""); code != 200 {
			t.Fatalf("enable %s: %d %s", name, code, body)
		}
	}
	put("first-purchase", `name: first-purchase
trigger:
  event: member.signed_up
entry:
  brand: acme
goal: purchase.completed
steps:
  - wait: 3d
  - tag: no-purchase-yet
`)
	put("refill", `name: refill
trigger:
  event: purchase.completed
  filter: any(order.items, .cycle_days > 0)
entry:
  brand: acme
  re_entry: always
goal: purchase.completed
steps:
  - wait:
      until: order.purchased_at + days(min(map(filter(order.items, .cycle_days > 0), .cycle_days)) - 3)
  - tag: refill-due
`)
	signup := `{"specversion":"1.0","id":"su-1","source":"/crm","type":"member.signed_up","data":{"member":{"phone":"13500135000"},"name":"吴先生","home_store":"sh-1"}}`
	if code, body := postSigned(t, s.base, secret, "m-1", "application/cloudevents+json", signup); code != 200 {
		t.Fatalf("sign-up: %d %s", code, body)
	}
	ctx := context.Background()
	var member *store.MemberView
	runs := func(workflow string) []store.WorkflowRun {
		rs, _ := s.app.Store.Runs(ctx, store.RunFilter{Brand: "acme", Workflow: workflow, MemberID: member.ID})
		return rs
	}
	waitFor(t, "the recall run waiting", func() bool {
		v, err := s.app.Store.MemberByPhone(ctx, "13500135000", "acme")
		if err != nil {
			return false
		}
		member = v
		rs := runs("first-purchase")
		return len(rs) == 1 && rs[0].State == store.RunActive && rs[0].WakeAt != nil
	})
	placed := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
	purchase := `{"specversion":"1.0","id":"p-1","source":"/pos/sh-1","type":"purchase.completed","time":"` + placed.Format(time.RFC3339) + `",
	  "data":{"member":{"phone":"13500135000"},"order_id":"SO-9","store":"sh-1","items":[{"sku":"CL-100","qty":1,"price":"129.00"}]}}`
	for i := 0; i < 2; i++ {
		if code, body := postSigned(t, s.base, secret, "m-2", "application/cloudevents+json", purchase); code != 200 {
			t.Fatalf("purchase: %d %s", code, body)
		}
	}
	waitFor(t, "the recall converted and a refill run waiting", func() bool {
		rec, ref := runs("first-purchase"), runs("refill")
		return len(rec) == 1 && rec[0].State == store.RunConverted && len(ref) == 1 && ref[0].WakeAt != nil
	})
	time.Sleep(300 * time.Millisecond)
	ref := runs("refill")
	want := placed.Add(27 * 24 * time.Hour)
	if len(ref) != 1 || ref[0].State != store.RunActive || !ref[0].WakeAt.Equal(want) {
		b, _ := json.Marshal(ref)
		t.Errorf("refill runs = %s, want one waking at %s", b, want)
	}
}
