package console_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/store"
)

// seedCommerce gives camellia a settled day (2026-12-01: Jing'an's ledger
// reconciles, Xujiahui's does not), 53 coupons redeemed, events from two
// sources (one failed) and a signing source; peony a settlement and
// events of its own.
func (r *rig) seedCommerce() {
	r.t.Helper()
	ctx := context.Background()
	must := func(err error) {
		r.t.Helper()
		if err != nil {
			r.t.Fatal(err)
		}
	}
	m, _, err := r.store.EnsureMember(ctx, store.NewMember{Name: "Buyer", BrandID: "camellia", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-buyer"}}})
	must(err)
	pm, _, err := r.store.EnsureMember(ctx, store.NewMember{Name: "Peony buyer", BrandID: "peony", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-pbuyer"}}})
	must(err)
	placed := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	order := func(brand, no, storeID string, member int64, lines bool) {
		o := &store.Order{BrandID: brand, OrderNo: no, MemberID: member, StoreID: &storeID, Channel: "pos", Currency: "CNY", Attribution: "none",
			PlacedAt: placed, SettleDate: "2026-12-01", Items: []store.OrderItem{{SKU: "COAT", Qty: 1, PriceCents: 129900}}}
		var ls []store.CommissionLine
		if lines {
			ls = []store.CommissionLine{
				{BrandID: brand, ItemLine: 1, Party: store.PartyStore, PartyID: storeID, StoreID: storeID, BaseCents: 129900, AmountCents: 6495, Rule: "5%", SettleDate: "2026-12-01"},
				{BrandID: brand, ItemLine: 1, Party: store.PartyGuide, PartyID: "g-wang", StoreID: storeID, BaseCents: 129900, AmountCents: 3897, Rule: "3%", SettleDate: "2026-12-01"},
			}
		}
		_, err := r.store.RecordOrder(ctx, o, ls)
		must(err)
	}
	order("camellia", "SO-JA-1", "sh-jingan", m.ID, true)
	order("camellia", "SO-XJH-1", "sh-xujiahui", m.ID, false)
	order("peony", "SO-PEONY-1", "bj-sanlitun", pm.ID, true)
	_, err = r.store.SettleDay(ctx, "2026-12-01", shanghai, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
	must(err)
	for i := range 53 {
		code := fmt.Sprintf("AUTUMN-%02d", i)
		_, err := r.store.IssueCoupon(ctx, &store.IssuedCoupon{Key: "c-" + code, Code: code, Batch: "autumn", BrandID: "camellia", MemberID: m.ID,
			ValueCents: 2000, ExpiresAt: placed.Add(30 * 24 * time.Hour), IssuedAt: placed, Workflow: "win-back", GuideID: "g-wang"})
		must(err)
		_, _, err = r.store.RedeemCoupon(ctx, store.Redemption{Brand: "camellia", Code: code, OrderNo: fmt.Sprintf("SO-C-%02d", i), StoreID: "sh-jingan", At: placed.Add(time.Duration(i) * time.Minute)})
		must(err)
	}
	_, err = r.store.IssueCoupon(ctx, &store.IssuedCoupon{Key: "c-peony", Code: "PEONY-SECRET", Batch: "p", BrandID: "peony", MemberID: pm.ID,
		ValueCents: 100, ExpiresAt: placed.Add(time.Hour), IssuedAt: placed})
	must(err)
	_, _, err = r.store.RedeemCoupon(ctx, store.Redemption{Brand: "peony", Code: "PEONY-SECRET", OrderNo: "SO-P", At: placed})
	must(err)
	for _, key := range []string{"camellia pos-shanghai 1", "camellia pos-shanghai 2", "camellia pos-shanghai 3", "camellia shop.tmall 9", "peony pos-beijing 1"} {
		in := &store.InboxMessage{Channel: "webhook", DedupKey: key, Payload: []byte(`{}`), State: store.InboxPending}
		_, err := r.store.RecordInbound(ctx, in)
		must(err)
		switch {
		case strings.HasSuffix(key, " 2"):
			must(r.store.FailInbox(ctx, in.ID, "schema: data.order_id: required", true))
		case strings.HasSuffix(key, " 3"):
		default:
			must(r.store.FinishInbox(ctx, in.ID))
		}
	}
	must(r.store.CreateEventSource(ctx, &store.EventSource{ID: "pos-shanghai", BrandID: "camellia", Description: "Shanghai tills", Active: true}, "whsec_console_test_secret_value"))
	must(r.store.CreateEventSource(ctx, &store.EventSource{ID: "pos-beijing", BrandID: "peony", Active: true}, "whsec_peony_secret_value"))
}

var (
	settlementRE = regexp.MustCompile(`(?s)<tr data-store="([^"]+)"[^>]*>(.*?)</tr>`)
	sourceRE     = regexp.MustCompile(`(?s)<tr data-source="([^"]+)"[^>]*>(.*?)</tr>`)
	tagRE        = regexp.MustCompile(`<[^>]+>`)
)

func rowsOf(re *regexp.Regexp, page string) map[string]string {
	out := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(page, -1) {
		out[m[1]] = strings.Join(strings.Fields(htmlUnescape(tagRE.ReplaceAllString(m[2], " "))), " ")
	}
	return out
}

// A brand's commerce page: the day's settlements per store with the
// unreconciled one marked, its CSV as the API's, the coupons redeemed a
// page at a time, and what each event source sent; nothing of another
// brand's.
func TestConsoleCommerce(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) { testCommerce(t, dialect) })
	}
}

func testCommerce(t *testing.T, dialect string) {
	r := newRig(t, dialect, console.Config{})
	r.seedStores()
	r.seedCommerce()

	c := r.english()
	r.signIn(c, r.brandToken("camellia"))
	page := r.get(c, "/console/commerce?date=2026-12-01")
	sts := rowsOf(settlementRE, page)
	if want := "Jing'an Flagship sh-jingan 1 0 1299.00 0.00 1299.00 38.97 64.95 0.00 2 settled"; sts["sh-jingan"] != want {
		t.Errorf("Jing'an's settlement %q, want %q", sts["sh-jingan"], want)
	}
	if got := sts["sh-xujiahui"]; !strings.HasSuffix(got, "unreconciled") || len(sts) != 2 {
		t.Errorf("settlements %v: want Xujiahui unreconciled and no other brand's", sts)
	}
	if !strings.Contains(page, `<span class="tile-num" id="t-unreconciled">1</span>`) || strings.Contains(page, `id="settle-run"`) {
		t.Error("the unreconciled count is wrong, or a brand token sees the automatic run (it spans brands)")
	}
	if sts := rowsOf(settlementRE, r.get(c, "/console/commerce?date=2026-12-01&unreconciled=1")); len(sts) != 1 || sts["sh-xujiahui"] == "" {
		t.Errorf("only the unreconciled: %v", sts)
	}
	if sts := rowsOf(settlementRE, r.get(c, "/console/commerce?date=2026-12-01&after_store=sh-jingan")); len(sts) != 1 || sts["sh-xujiahui"] == "" {
		t.Errorf("the stores after sh-jingan: %v", sts)
	}
	srcs := rowsOf(sourceRE, page)
	if !strings.HasPrefix(srcs["pos-shanghai"], "pos-shanghai 3 1 1 2") || !strings.HasPrefix(srcs["shop.tmall"], "shop.tmall 1 0 0") || len(srcs) != 2 {
		t.Errorf("event sources: %v", srcs)
	}
	for _, leak := range []string{"whsec_", "PEONY", "pos-beijing", "bj-sanlitun"} {
		if strings.Contains(page, leak) {
			t.Errorf("camellia's commerce page shows %q", leak)
		}
	}
	if !strings.Contains(page, "Shanghai tills") {
		t.Error("the signing source is not listed")
	}
	// The redemptions: 25 a page, newest first, by the Older links.
	codeRE := regexp.MustCompile(`<code>(AUTUMN-\d+)</code>`)
	olderRE := regexp.MustCompile(`href="([^"]+)" id="older-redemptions"`)
	var codes []string
	for pages := 1; ; pages++ {
		found := codeRE.FindAllStringSubmatch(page, -1)
		if len(found) != 25 && len(found) != 3 {
			t.Fatalf("page %d of redemptions has %d", pages, len(found))
		}
		for _, m := range found {
			codes = append(codes, m[1])
		}
		older := olderRE.FindStringSubmatch(page)
		if older == nil {
			break
		}
		page = r.get(c, htmlUnescape(older[1]))
	}
	if len(codes) != 53 || codes[0] != "AUTUMN-52" || codes[52] != "AUTUMN-00" {
		t.Errorf("redemptions paged: %d, from %s to %s", len(codes), codes[0], codes[len(codes)-1])
	}
	for i := 1; i < len(codes); i++ {
		if codes[i] >= codes[i-1] {
			t.Errorf("redemption %s after %s: not newest first", codes[i], codes[i-1])
		}
	}

	// The CSV is the API's.
	resp, err := c.Get(r.srv.URL + "/console/commerce/settlements.csv?date=2026-12-01")
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, resp)
	stored, _ := r.store.Settlements(context.Background(), "2026-12-01", "camellia")
	var want bytes.Buffer
	api.WriteSettlementsCSV(csv.NewWriter(&want), stored)
	if resp.StatusCode != http.StatusOK || got != want.String() || !strings.Contains(got, "sh-xujiahui") || strings.Contains(got, "peony") {
		t.Errorf("CSV (%d):\n%s\nwant:\n%s", resp.StatusCode, got, want.String())
	}
	if code := mustGet(t, c, r.srv.URL+"/console/commerce/settlements.csv?date=yesterday").StatusCode; code != http.StatusBadRequest {
		t.Errorf("a CSV of a malformed day: %d", code)
	}
	for _, p := range []string{"/console/commerce?brand=peony", "/console/commerce/settlements.csv?brand=peony&date=2026-12-01"} {
		if code := mustGet(t, c, r.srv.URL+p).StatusCode; code != http.StatusNotFound {
			t.Errorf("camellia opening %s: %d, want 404", p, code)
		}
	}

	// The admin sees peony's, and the automatic run of the day.
	a := r.english()
	r.signIn(a, adminToken)
	page = r.get(a, "/console/commerce?brand=peony&date=2026-12-01")
	if sts := rowsOf(settlementRE, page); len(sts) != 1 || sts["bj-sanlitun"] == "" {
		t.Errorf("peony's settlements for the admin: %v", sts)
	}
	if !strings.Contains(page, `id="settle-run"`) || !strings.Contains(page, "pos-beijing") {
		t.Error("the admin's page lacks the automatic run or peony's source")
	}
}

// A day of 105 stores' settlements: the tiles add up all of them, the
// table shows 100 a page in store id order, and the unreconciled alone.
func TestConsoleCommerceManyStores(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) { testCommerceManyStores(t, dialect) })
	}
}

func testCommerceManyStores(t *testing.T, dialect string) {
	r := newRig(t, dialect, console.Config{})
	r.seedStores()
	ctx := context.Background()
	var stores []store.RetailStore
	for i := range 105 {
		stores = append(stores, store.RetailStore{ID: fmt.Sprintf("zz-%03d", i), Name: fmt.Sprintf("Zone %03d", i), Lat: 31, Lng: 121,
			TimeZone: "Asia/Shanghai", Active: true, BrandIDs: []string{"camellia"}})
	}
	if err := r.store.UpsertRetailStores(ctx, stores); err != nil {
		t.Fatal(err)
	}
	m, _, err := r.store.EnsureMember(ctx, store.NewMember{Name: "Buyer", BrandID: "camellia", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-buyer"}}})
	if err != nil {
		t.Fatal(err)
	}
	placed := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	for i, s := range stores {
		o := &store.Order{BrandID: "camellia", OrderNo: fmt.Sprintf("SO-%03d", i), MemberID: m.ID, StoreID: &s.ID, Channel: "pos", Currency: "CNY",
			Attribution: "none", PlacedAt: placed, SettleDate: "2026-12-01", Items: []store.OrderItem{{SKU: "COAT", Qty: 1, PriceCents: 1000}}}
		var ls []store.CommissionLine
		if i%10 != 0 { // every tenth has no store line: unreconciled
			ls = []store.CommissionLine{{BrandID: "camellia", ItemLine: 1, Party: store.PartyStore, PartyID: s.ID, StoreID: s.ID, BaseCents: 1000,
				AmountCents: 50, Rule: "5%", SettleDate: "2026-12-01"}}
		}
		if _, err := r.store.RecordOrder(ctx, o, ls); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.store.SettleDay(ctx, "2026-12-01", shanghai, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	c := r.english()
	r.signIn(c, r.brandToken("camellia"))
	moreRE := regexp.MustCompile(`href="([^"]+)" id="more-stores"`)
	page := r.get(c, "/console/commerce?date=2026-12-01")
	for _, want := range []string{`id="t-stores">105<`, `id="t-unreconciled">11<`, `id="t-net">1050.00<`, `id="t-commission">47.00<`} {
		if !strings.Contains(page, want) {
			t.Errorf("the tiles lack %s", want)
		}
	}
	sts := rowsOf(settlementRE, page)
	more := moreRE.FindStringSubmatch(page)
	if len(sts) != 100 || sts["zz-000"] == "" || sts["zz-099"] == "" || more == nil {
		t.Fatalf("first page: %d settlements, next %v", len(sts), more)
	}
	if !strings.HasPrefix(sts["zz-042"], "Zone 042 zz-042 1 0 10.00 0.00 10.00 0.00 0.50 0.00 1 settled") {
		t.Errorf("zz-042's row %q", sts["zz-042"])
	}
	second := r.get(c, htmlUnescape(more[1]))
	if sts := rowsOf(settlementRE, second); len(sts) != 5 || sts["zz-100"] == "" || sts["zz-104"] == "" || moreRE.MatchString(second) ||
		!strings.Contains(second, `id="t-stores">105<`) {
		t.Errorf("second page: %d settlements (%v)", len(sts), sts)
	}
	only := r.get(c, "/console/commerce?date=2026-12-01&unreconciled=1")
	if sts := rowsOf(settlementRE, only); len(sts) != 11 || sts["zz-100"] == "" || moreRE.MatchString(only) {
		t.Errorf("the unreconciled: %d (%v)", len(sts), sts)
	}
}
