package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestExportAndEraseLiveSessions: one person joined and bought in a live
// session of acme and one of zeta (store gz-1 carries both). Each brand's
// GET /members/{id}/export lists its own session only, with the order
// counted in it; after acme's erasure, acme's session's audience no
// longer names the person and its funnel counts the same, zeta's export
// is unchanged, and the admin's keeps only the order counted in acme's
// session (a ledger line, as the order itself is kept).
func TestExportAndEraseLiveSessions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := newAudited(t, s)
		c := a.client
		seed(c)
		acme, _ := a.token(`{"name":"acme","brand":"acme"}`)
		zeta, _ := a.token(`{"name":"zeta","brand":"zeta"}`)
		var id int64
		for _, tok := range []string{acme, zeta} {
			id = int64(c.must(201, "POST", "/api/v1/members", tok, `{"phone":"13800138000"}`)["id"].(float64))
		}
		start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		sessions := map[string]int64{}
		for _, b := range []string{"acme", "zeta"} {
			l := &store.LiveSession{Key: b + "-live", BrandID: b, StoreID: "gz-1", Title: b + " winter live", URL: "https://live.example.com/" + b,
				StartsAt: start, EndsAt: start.Add(time.Hour)}
			if _, err := s.CreateLiveSession(ctx, l); err != nil {
				t.Fatal(err)
			}
			sessions[b] = l.ID
			if _, err := s.EnsureLiveAudience(ctx, &store.LiveAudience{SessionID: l.ID, MemberID: id, BrandID: b, StoreID: "gz-1"}); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkLiveAudience(ctx, l.ID, id, store.LiveJoined, start.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			o := &store.Order{BrandID: b, OrderNo: "LIVE-" + b, MemberID: id, Channel: "live", Currency: "CNY", Attribution: "live",
				PlacedAt: start.Add(5 * time.Minute), SettleDate: "2026-12-01", Items: []store.OrderItem{{SKU: "A", Qty: 1, PriceCents: 1500}}}
			if _, err := s.RecordOrder(ctx, o, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordLiveOrder(ctx, &store.LiveOrder{OrderID: o.ID, SessionID: l.ID, MemberID: id, StoreID: "gz-1", TotalCents: 1500}); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkLiveAudience(ctx, l.ID, id, store.LiveOrdered, o.PlacedAt); err != nil {
				t.Fatal(err)
			}
		}
		path := fmt.Sprintf("/api/v1/members/%d/export", id)
		live := func(tok string) string {
			t.Helper()
			return body(c.must(200, "GET", path, tok, "")["live"])
		}
		want := map[string]string{}
		for _, b := range []string{"acme", "zeta"} {
			want[b] = `[{"brand":"` + b + `","joined_at":"2026-12-01T12:01:00Z","ordered_at":"2026-12-01T12:05:00Z",` +
				`"orders":[{"order_id":"LIVE-` + b + `","store_id":"gz-1","total_cents":1500}],"session":"` + b + `-live","starts_at":"2026-12-01T12:00:00Z","store_id":"gz-1","title":"` + b + ` winter live"}]`
		}
		for _, tc := range []struct{ brand, token string }{{"acme", acme}, {"zeta", zeta}} {
			if got := live(tc.token); got != want[tc.brand] {
				t.Errorf("%s's export, live:\n got %s\nwant %s", tc.brand, got, want[tc.brand])
			}
		}
		if got := live(adminToken); !strings.Contains(got, "acme-live") || !strings.Contains(got, "zeta-live") {
			t.Errorf("the admin's export, live: %s; want both sessions", got)
		}

		c.must(200, "POST", fmt.Sprintf("/api/v1/members/%d/erase", id), acme, "")
		c.must(404, "GET", path, acme, "")
		if got := live(zeta); got != want["zeta"] {
			t.Errorf("zeta's export after acme's erasure, live:\n got %s\nwant %s", got, want["zeta"])
		}
		// The order counted is a ledger line, kept with the pseudonymous
		// id (as the order is): the admin still sees it, not the audience.
		wantAdmin := `[{"brand":"acme","orders":[{"order_id":"LIVE-acme","store_id":"gz-1","total_cents":1500}],"session":"acme-live",` +
			`"starts_at":"2026-12-01T12:00:00Z","title":"acme winter live"},` + strings.TrimPrefix(want["zeta"], "[")
		if got := live(adminToken); got != wantAdmin {
			t.Errorf("the admin's export after acme's erasure, live:\n got %s\nwant %s", got, wantAdmin)
		}
		if _, err := s.LiveAudienceMember(ctx, sessions["acme"], id); err == nil {
			t.Error("acme's audience still names the person after acme's erasure")
		}
		f, err := s.LiveFunnel(ctx, sessions["acme"])
		if want := "[{StoreID:gz-1 Invited:0 Joined:1 Bought:1 Orders:1 SalesCents:1500}]"; err != nil || fmt.Sprintf("%+v", f) != want {
			t.Errorf("acme's funnel after the erasure: %+v, %v; want %s", f, err, want)
		}
	})
}
