package app

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestCommissionT0AndSettleWithRedis: a purchase's commission lines are
// readable per order (GET /orders/{id}/commission) the moment it is
// recorded, by the store's own rule where it has one; a refund claws
// back at once; after midnight the settlement task settles the previous
// day by itself, once even when two workers run it, and a re-run
// (POST /settlements, as scrmgw ledger settle) answers the same figures.
func TestCommissionT0AndSettleWithRedis(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "commission.yaml")
	os.WriteFile(rules, []byte(`brands:
  acme:
    - category: "*"
      guide: 3%
      store: 5%
      distributor: 1%
    - category: "*"
      stores: [sh-1]
      guide: 6%
      store: 5%
    - category: "*"
      distributors: [dist-east]
      guide: 4%
      store: 5%
      distributor: 2%
bound_guide: true
`), 0o600)
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "commission-e2e-admin-token-1"
	cfg.Security.PhoneKey = strings.Repeat("57", 32)
	cfg.Webhook.Secret = journeySecret
	cfg.Ledger.Rules = rules
	// 15:00 in Shanghai on 7 December 2026.
	clock := newVirtualClock(time.Date(2026, 12, 7, 15, 0, 0, 0, shanghai))
	s := startServeClock(t, cfg, clock.Now)
	tok := cfg.AdminToken
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47,"distributor":"dist-east"}`},
		{"/api/v1/stores", `{"id":"hz-1","name":"西湖店","brands":["acme"],"lat":30.25,"lng":120.15,"distributor":"dist-east"}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜"}`},
		{"/api/v1/guides", `{"id":"g-wang","store_id":"hz-1","name":"王芳"}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code/100 != 2 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	sale := func(id, order, st, guide string) {
		t.Helper()
		body := `{"specversion":"1.0","id":"` + id + `","source":"/pos/` + st + `","type":"purchase.completed","brand":"acme",
		  "data":{"member":{"phone":"13800138000"},"order_id":"` + order + `","store":"` + st + `","guide":"` + guide + `",
		  "items":[{"sku":"CL-100","qty":2,"price":"129.00"},{"sku":"BG-1","qty":1,"price":"59.00"}]}}`
		if code, resp := postSigned(t, s.base, journeySecret, "m-"+id, "application/cloudevents+json", body); code != 200 {
			t.Fatalf("purchase %s: %d %s", order, code, resp)
		}
	}
	type out struct {
		StoreID    string `json:"store_id"`
		SettleDate string `json:"settle_date"`
		Lines      []store.CommissionLine
		Net        map[string]map[string]int64 `json:"net_cents"`
	}
	commission := func(order string) (int, out) {
		code, body := request(t, "GET", s.base+"/api/v1/orders/"+order+"/commission?brand=acme", tok, "")
		var o out
		json.Unmarshal([]byte(body), &o)
		return code, o
	}
	sale("p-1", "SO-1", "sh-1", "g-li")
	sale("p-2", "SO-2", "hz-1", "g-wang")
	var so1, so2 out
	waitFor(t, "the orders' commission (T+0)", func() bool {
		c1, o1 := commission("SO-1")
		c2, o2 := commission("SO-2")
		so1, so2 = o1, o2
		return c1 == 200 && c2 == 200
	})
	// SO-1 (sh-1): 317.00; the store's rule, 6% to the guide and
	// nothing to the distributor, beats its distributor's. SO-2 (hz-1):
	// the distributor's rule.
	wantNet := func(o out, guide string, g, st, d int64) {
		t.Helper()
		want := map[string]map[string]int64{"guide": {guide: g}, "store": {o.StoreID: st}}
		if d >= 0 {
			want["distributor"] = map[string]int64{"dist-east": d}
		}
		if b1, b2 := jsonOf(want), jsonOf(o.Net); b1 != b2 {
			t.Errorf("%s net = %s, want %s", o.StoreID, b2, b1)
		}
	}
	wantNet(so1, "g-li", 1548+354, 1290+295, -1)
	if so1.Lines[0].Rule != "store sh-1 * 6%" || so1.SettleDate != "2026-12-07" {
		t.Errorf("SO-1 first line by %q, settles %s", so1.Lines[0].Rule, so1.SettleDate)
	}
	wantNet(so2, "g-wang", 1032+236, 1290+295, 516+118)
	if code, _ := commission("SO-404"); code != 404 {
		t.Errorf("unknown order: %d", code)
	}
	// A brand token of another brand does not see the order.
	request(t, "POST", s.base+"/api/v1/brands", tok, `{"id":"zeta","name":"Zeta"}`)
	_, body := request(t, "POST", s.base+"/api/v1/tokens", tok, `{"name":"zeta","brand":"zeta"}`)
	var zeta struct{ Token string }
	json.Unmarshal([]byte(body), &zeta)
	if code, body := request(t, "GET", s.base+"/api/v1/orders/SO-1/commission", zeta.Token, ""); code != 404 {
		t.Errorf("another brand's token: %d %s", code, body)
	}

	// The bag of SO-1 comes back: its commission is clawed back at once.
	refund := `{"specversion":"1.0","id":"r-1","source":"/pos/sh-1","type":"purchase.refunded","brand":"acme",
	  "data":{"member":{"phone":"13800138000"},"order_id":"SO-1","refund_id":"RF-1","items":[{"sku":"BG-1","qty":1}]}}`
	if code, resp := postSigned(t, s.base, journeySecret, "m-r-1", "application/cloudevents+json", refund); code != 200 {
		t.Fatalf("refund: %d %s", code, resp)
	}
	if len(so1.Lines) != 4 {
		t.Errorf("SO-1 lines = %+v, want 4 (2 items × guide, store)", so1.Lines)
	}
	waitFor(t, "the clawback", func() bool { _, o := commission("SO-1"); so1 = o; return len(o.Lines) == 6 })
	wantNet(so1, "g-li", 1548, 1290, -1)

	// After midnight (00:40, settle_after 30m) two workers run the
	// settlement task at once: the 7th is settled once.
	clock.Advance(9*time.Hour + 40*time.Minute)
	var wg sync.WaitGroup
	for range 2 {
		mux := asynq.NewServeMux()
		s.app.registerSettle(mux)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := mux.ProcessTask(context.Background(), asynq.NewTask(TypeSettle, nil)); err != nil {
				t.Errorf("settle task: %v", err)
			}
		}()
	}
	wg.Wait()
	run, err := s.app.Store.SettlementRunOf(context.Background(), "2026-12-07")
	if err != nil || run.Attempts != 1 || run.Status != store.SettlementSettled || run.Stores != 2 {
		t.Fatalf("settlement run of the 7th = %+v, %v", run, err)
	}
	code, body := request(t, "GET", s.base+"/api/v1/settlements?date=2026-12-07", tok, "")
	var sts struct{ Items []store.Settlement }
	json.Unmarshal([]byte(body), &sts)
	if code != 200 || len(sts.Items) != 2 {
		t.Fatalf("settlements: %d %s", code, body)
	}
	for _, st := range sts.Items {
		if st.Status != store.SettlementSettled || !st.Reconciled {
			t.Errorf("settlement of %s = %+v", st.StoreID, st)
		}
	}
	if st := sts.Items[1]; st.StoreID != "sh-1" || st.NetCents != 31700-5900 || st.GuideCents != 1548 || st.StoreCents != 1290 {
		t.Errorf("sh-1 settled %+v", st)
	}
	if code, again := request(t, "POST", s.base+"/api/v1/settlements?date=2026-12-07", tok, ""); code != 200 || !strings.Contains(again, `"guide_cents":1548`) {
		t.Errorf("re-run: %d %s", code, again)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
