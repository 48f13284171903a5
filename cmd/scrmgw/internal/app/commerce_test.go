package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// signEvent signs per Standard Webhooks independently of the webhook
// package: HMAC-SHA256 with the base64 key after "whsec_" over
// "id.timestamp.body", base64, prefixed "v1,".
func signEvent(t *testing.T, secret, id string, ts int64, body string) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("secret %q...: %v", secret[:8], err)
	}
	m := hmac.New(sha256.New, key)
	io.WriteString(m, id+"."+strconv.FormatInt(ts, 10)+"."+body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// postSigned posts CloudEvents to /callbacks/events signed with secret.
func postSigned(t *testing.T, base, secret, msgID, contentType, body string) (int, string) {
	t.Helper()
	ts := time.Now().Unix()
	req, _ := http.NewRequest("POST", base+"/callbacks/events", strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", signEvent(t, secret, msgID, ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCommerceLedgerWithRedis is issue #10's whole path on PostgreSQL: a
// brand makes an event source through the API and signs with its secret;
// a sign-up binds the member to the nearest guide; a purchase writes one
// order with commission lines per the brand's rules however often it is
// sent; a refund claws back; the day's settlement matches figures worked
// out by hand and reconciles; brand tokens post only their own events.
func TestCommerceLedgerWithRedis(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "commission.yaml")
	os.WriteFile(rules, []byte(`brands:
  acme:
    - category: skincare
      guide: 5%
      store: 8%
      distributor: 2%
    - category: "*"
      guide: "2.00"
      store: 4%
bound_guide: true
`), 0o600)
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "commerce-e2e-admin-token-01"
	cfg.Security.PhoneKey = strings.Repeat("56", 32)
	cfg.Ledger.Rules = rules
	s := startServe(t, cfg)
	tok := cfg.AdminToken
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/brands", `{"id":"zeta","name":"Zeta"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme","zeta"],"lat":31.2304,"lng":121.4737,"distributor":"dist-east"}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜"}`},
		{"/api/v1/products/bulk", `{"items":[{"brand":"acme","sku":"CL-100","name":"洁面乳","category":"skincare","price":"129.00","replenish_days":30},
			{"brand":"acme","sku":"TN-200","name":"爽肤水","category":"toner","price":99.5}]}`},
	} {
		if code, body := request(t, "POST", s.base+req.path, tok, req.body); code/100 != 2 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	code, body := request(t, "POST", s.base+"/api/v1/event-sources", tok, `{"id":"pos-acme","brand":"acme","description":"POS"}`)
	var src struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	json.Unmarshal([]byte(body), &src)
	if code != 201 || !strings.HasPrefix(src.Secret, "whsec_") {
		t.Fatalf("event source: %d %s", code, body)
	}
	if code, body := request(t, "GET", s.base+"/api/v1/event-sources", tok, ""); code != 200 || strings.Contains(body, src.Secret) || !strings.Contains(body, "pos-acme") {
		t.Errorf("listing sources shows the secret or misses the source: %d %s", code, body)
	}

	// A sign-up with a location: one member by phone, bound nearest.
	signup := `{"specversion":"1.0","id":"su-1","source":"/crm","type":"member.signed_up",
	  "data":{"member":{"phone":"13900139000","crm_id":"C-9"},"name":"周女士","level":"gold","time_zone":"Asia/Urumqi","location":{"lat":31.23,"lng":121.47}}}`
	if code, body := postSigned(t, s.base, src.Secret, "m-su", "application/cloudevents+json", signup); code != 200 || body != `{"accepted":1,"duplicates":0}`+"\n" {
		t.Fatalf("sign-up: %d %s", code, body)
	}
	ctx := context.Background()
	var member *store.MemberView
	waitFor(t, "the member bound", func() bool {
		v, err := s.app.Store.MemberByPhone(ctx, "13900139000", "acme")
		if err != nil || len(v.Bindings) == 0 {
			return false
		}
		member = v
		return true
	})
	if b := member.Bindings[0]; b.GuideID != "g-li" || b.BrandID != "acme" || member.Name != "周女士" || member.TimeZone != "Asia/Urumqi" {
		t.Errorf("member after sign-up: %+v, bindings %+v", member.Member, member.Bindings)
	}

	// The purchase, sent as a batch twice and then once more under another
	// event id: one order.
	purchase := func(id string) string {
		return `{"specversion":"1.0","id":"` + id + `","source":"/pos/sh-1","type":"purchase.completed",
		  "data":{"member":{"crm_id":"C-9"},"order_id":"SO-1","store":"sh-1","guide":"g-li",
		  "items":[{"sku":"CL-100","qty":2,"price":"129.00"},{"sku":"TN-200","qty":1,"price":"99.50"}]}}`
	}
	batch := "[" + purchase("p-1") + "," + `{"specversion":"1.0","id":"v-1","source":"/pos/sh-1","type":"store.visited","data":{"member":{"crm_id":"C-9"},"store":"sh-1"}}` + "]"
	if code, body := postSigned(t, s.base, src.Secret, "m-b1", "application/cloudevents-batch+json", batch); code != 200 || !strings.Contains(body, `{"accepted":2,"duplicates":0}`) {
		t.Fatalf("batch: %d %s", code, body)
	}
	if code, body := postSigned(t, s.base, src.Secret, "m-b1", "application/cloudevents-batch+json", batch); code != 200 || !strings.Contains(body, `{"accepted":0,"duplicates":2}`) {
		t.Fatalf("batch again: %d %s", code, body)
	}
	if code, body := postSigned(t, s.base, src.Secret, "m-p2", "application/cloudevents+json", purchase("p-2")); code != 200 || !strings.Contains(body, `"accepted":1`) {
		t.Fatalf("same order, new event id: %d %s", code, body)
	}
	var order *store.Order
	waitFor(t, "the order", func() bool {
		o, err := s.app.Store.OrderByNo(ctx, "acme", "SO-1")
		order = o
		return err == nil
	})
	if order.TotalCents != 35750 || order.GuideID == nil || *order.GuideID != "g-li" || order.Attribution != "event" ||
		len(order.Items) != 2 || order.Items[0].ReplenishDays != 30 || order.Items[0].Category != "skincare" {
		t.Errorf("order = %+v", order)
	}
	// Hand-computed: CL-100 2 × 129.00 = 258.00 (skincare: guide 5% 12.90,
	// store 8% 20.64, distributor 2% 5.16); TN-200 99.50 (any: guide 2.00
	// per unit, store 4% 3.98, no distributor rate).
	want := map[string]int64{"1 guide g-li": 1290, "1 store sh-1": 2064, "1 distributor dist-east": 516, "2 guide g-li": 200, "2 store sh-1": 398}
	checkLines := func(what string, want map[string]int64, refund bool) {
		t.Helper()
		lines, err := s.app.Store.CommissionLines(ctx, order.ID)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, l := range lines {
			if (l.RefundID != 0) == refund {
				got[strconv.Itoa(l.ItemLine)+" "+l.Party+" "+l.PartyID] += l.AmountCents
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: lines %v, want %v", what, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %d, want %d (all: %v)", what, k, got[k], v, got)
			}
		}
	}
	time.Sleep(300 * time.Millisecond) // let the third delivery be processed too
	checkLines("commission", want, false)
	var purchases []store.Event
	purchases, _ = s.app.Store.Events(ctx, store.EventFilter{MemberID: member.ID, Type: "purchase.completed"})
	if len(purchases) != 1 || !strings.Contains(purchases[0].Payload, `"cycle_days":30`) {
		t.Errorf("purchase events logged: %+v", purchases)
	}
	if st, _ := s.app.Store.Stats(ctx, member.ID, "acme"); st.Orders != 1 || st.SpentCents != 35750 || st.LastVisitAt == nil {
		t.Errorf("member stats = %+v", st)
	}

	// A refund of one cleanser claws back half of line 1's commission.
	refund := `{"specversion":"1.0","id":"r-1","source":"/pos/sh-1","type":"purchase.refunded",
	  "data":{"member":{"crm_id":"C-9"},"order_id":"SO-1","refund_id":"RF-1","items":[{"sku":"CL-100","qty":1}]}}`
	for i := 0; i < 2; i++ {
		if code, body := postSigned(t, s.base, src.Secret, "m-r1", "application/cloudevents+json", refund); code != 200 {
			t.Fatalf("refund: %d %s", code, body)
		}
	}
	waitFor(t, "the refund", func() bool {
		o, _ := s.app.Store.OrderByNo(ctx, "acme", "SO-1")
		return o != nil && o.RefundedCents == 12900
	})
	checkLines("clawback", map[string]int64{"1 guide g-li": -645, "1 store sh-1": -1032, "1 distributor dist-east": -258}, true)
	// The same refund sent again under a new event id changes nothing and
	// is no fault.
	again := strings.Replace(refund, `"id":"r-1"`, `"id":"r-1b"`, 1)
	if code, body := postSigned(t, s.base, src.Secret, "m-r1b", "application/cloudevents+json", again); code != 200 || !strings.Contains(body, `"accepted":1`) {
		t.Fatalf("refund again: %d %s", code, body)
	}
	waitFor(t, "the repeated refund handled", func() bool {
		row, err := s.app.Store.InboxByKey(ctx, "webhook", "acme /pos/sh-1 r-1b")
		return err == nil && row.State != store.InboxPending
	})
	if row, _ := s.app.Store.InboxByKey(ctx, "webhook", "acme /pos/sh-1 r-1b"); row.State != store.InboxDone {
		t.Errorf("repeated refund: inbox %s (%s)", row.State, row.LastError)
	}
	// Refunding more than is left is refused for good, and changes nothing.
	over := strings.NewReplacer(`"r-1"`, `"r-2"`, `"RF-1"`, `"RF-2"`, `"qty":1`, `"qty":5`).Replace(refund)
	if code, body := postSigned(t, s.base, src.Secret, "m-r2", "application/cloudevents+json", over); code != 200 {
		t.Fatalf("over-refund accepted at the door (checked when applied): %d %s", code, body)
	}
	time.Sleep(500 * time.Millisecond)
	if o, _ := s.app.Store.OrderByNo(ctx, "acme", "SO-1"); o.RefundedCents != 12900 || o.Items[0].RefundedQty != 1 {
		t.Errorf("over-refund changed the order: %+v", o)
	}

	// A refund that arrives before its order waits for it (retried alone,
	// out of its batch) and then applies.
	early := `[{"specversion":"1.0","id":"r-early","source":"/shop","type":"purchase.refunded",
	  "data":{"member":{"crm_id":"C-9"},"order_id":"SO-LATE","refund_id":"RF-LATE"}}]`
	if code, body := postSigned(t, s.base, src.Secret, "m-early", "application/cloudevents-batch+json", early); code != 200 {
		t.Fatalf("early refund: %d %s", code, body)
	}
	time.Sleep(200 * time.Millisecond)
	late := `{"specversion":"1.0","id":"p-late","source":"/shop","type":"purchase.completed",
	  "data":{"member":{"crm_id":"C-9"},"order_id":"SO-LATE","channel":"online","items":[{"sku":"TN-200","qty":1,"price":"99.50"}]}}`
	if code, body := postSigned(t, s.base, src.Secret, "m-late", "application/cloudevents+json", late); code != 200 {
		t.Fatalf("late order: %d %s", code, body)
	}
	waitFor(t, "the early refund applied", func() bool {
		o, _ := s.app.Store.OrderByNo(ctx, "acme", "SO-LATE")
		return o != nil && o.RefundedCents == 9950
	})
	if o, _ := s.app.Store.OrderByNo(ctx, "acme", "SO-LATE"); o.StoreID == nil || *o.StoreID != "sh-1" || o.Attribution != "binding" {
		t.Errorf("online order credited to %v by %q, want the bound guide's store sh-1 by binding", o.StoreID, o.Attribution)
	}

	// Settlement: today is not over, so the API refuses; tomorrow it gives
	// the hand-computed figures, and again the same.
	loc, _ := time.LoadLocation(cfg.Ledger.TimeZone)
	today := time.Now().In(loc).Format(time.DateOnly)
	if code, body := request(t, "POST", s.base+"/api/v1/settlements?date="+today, tok, ""); code != 400 || !strings.Contains(body, "not over") {
		t.Errorf("settling today: %d %s", code, body)
	}
	tomorrow := time.Now().Add(24 * time.Hour)
	for i := 0; i < 2; i++ {
		sts, err := s.app.Store.SettleDay(ctx, today, loc, tomorrow)
		if err != nil {
			t.Fatal(err)
		}
		if len(sts) != 1 {
			t.Fatalf("settlements = %+v", sts)
		}
		st := sts[0]
		// SO-1 (357.50, refund 129.00) and SO-LATE (99.50, refunded whole,
		// its commission clawed back to zero).
		if st.StoreID != "sh-1" || st.BrandID != "acme" || st.Orders != 2 || st.SalesCents != 45700 || st.Refunds != 2 || st.RefundsCents != 22850 ||
			st.NetCents != 22850 || st.GuideCents != 845 || st.StoreCents != 1430 || st.DistributorCents != 258 || !st.Reconciled {
			t.Errorf("settlement %d = %+v", i, st)
		}
	}
	code, body = request(t, "GET", s.base+"/api/v1/settlements?date="+today+"&format=csv", tok, "")
	if code != 200 || !strings.Contains(body, today+",sh-1,acme,guide,g-li,5,8.45,2,457.00,228.50,228.50,true") {
		t.Errorf("settlement CSV: %d\n%s", code, body)
	}

	// Brand tokens post to /api/v1/events for their own brand only.
	code, body = request(t, "POST", s.base+"/api/v1/tokens", tok, `{"name":"zeta-pos","brand":"zeta"}`)
	var zt struct {
		Token string `json:"token"`
	}
	json.Unmarshal([]byte(body), &zt)
	if code != 201 || zt.Token == "" {
		t.Fatalf("zeta token: %d %s", code, body)
	}
	post := func(token, body string) (int, string) {
		req, _ := http.NewRequest("POST", s.base+"/api/v1/events", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	acmeEvent := `{"specversion":"1.0","id":"t-1","source":"/shop","type":"store.visited","brand":"acme","data":{"member":{"phone":"13900139000"},"store":"sh-1"}}`
	if code, body := post(zt.Token, acmeEvent); code != 400 || !strings.Contains(body, `belongs to brand \"zeta\"`) {
		t.Errorf("zeta token posting acme's event: %d %s", code, body)
	}
	if code, body := post(zt.Token, strings.Replace(acmeEvent, `"brand":"acme",`, "", 1)); code != 200 || !strings.Contains(body, `"accepted":1`) {
		t.Errorf("zeta token posting its own event: %d %s", code, body)
	}
	if code, _ := post("", acmeEvent); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, body := post(tok, strings.Replace(acmeEvent, `"13900139000"`, `"12345"`, 1)); code != 400 || !strings.Contains(body, `"field":"data.member.phone"`) {
		t.Errorf("unreadable phone: %d %s", code, body)
	}
	if code, body := post(tok, strings.Replace(acmeEvent, `"acme"`, `"nope"`, 1)); code != 400 || !strings.Contains(body, `unknown brand`) {
		t.Errorf("admin token, unknown brand: %d %s", code, body)
	}

	// Rotating with no overlap retires the old secret at once.
	code, body = request(t, "POST", s.base+"/api/v1/event-sources/pos-acme/rotate?overlap=0s", tok, "")
	var rotated struct {
		Secret string `json:"secret"`
	}
	json.Unmarshal([]byte(body), &rotated)
	if code != 200 || rotated.Secret == "" || rotated.Secret == src.Secret {
		t.Fatalf("rotate: %d %s", code, body)
	}
	visit := `{"specversion":"1.0","id":"v-9","source":"/pos/sh-1","type":"store.visited","data":{"member":{"crm_id":"C-9"},"store":"sh-1"}}`
	if code, _ := postSigned(t, s.base, src.Secret, "m-v9", "application/cloudevents+json", visit); code != 401 {
		t.Errorf("old secret after rotation: %d, want 401", code)
	}
	if code, body := postSigned(t, s.base, rotated.Secret, "m-v9", "application/cloudevents+json", visit); code != 200 {
		t.Errorf("new secret: %d %s", code, body)
	}
}
