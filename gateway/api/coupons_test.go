package api_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/api/openapitest"
	"github.com/scrmgw/scrmgw/gateway/commerce"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestRedeemCouponAPI: POST /coupons/redeem on SQLite and PostgreSQL:
// the first redemption 201, the same order again 200 with the same
// redemption, each refusal a clear error naming the field, with nothing
// written; requests racing for one coupon on different orders: one wins.
func TestRedeemCouponAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		gin.SetMode(gin.TestMode)
		r := gin.New()
		api.New(api.Options{Store: s, AdminToken: adminToken, MaxBodyBytes: 64 << 10, MaxBulkBodyBytes: 1 << 20,
			Redeemer: commerce.New(s, nil)}).Mount(r)
		srv := httptest.NewServer(openapitest.Check(t, r))
		t.Cleanup(srv.Close)
		c := client{t: t, url: srv.URL}
		seed(c)
		m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Name: "陈女士", BrandID: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		for _, cp := range []store.IssuedCoupon{
			{Key: "k1", Code: "ACME-10", Batch: "welcome", BrandID: "acme", MemberID: m.ID, ValueCents: 1000, ExpiresAt: now.Add(72 * time.Hour), IssuedAt: now,
				Workflow: "welcome", GuideID: "g-li"},
			{Key: "k2", Code: "ACME-OLD", Batch: "spring", BrandID: "acme", MemberID: m.ID, ValueCents: 500, ExpiresAt: now.Add(-time.Hour), IssuedAt: now.Add(-48 * time.Hour)},
			{Key: "k3", Code: "ZETA-5", Batch: "z", BrandID: "zeta", MemberID: m.ID, ValueCents: 500, ExpiresAt: now.Add(time.Hour), IssuedAt: now},
			{Key: "k4", Code: "ACME-RACE", Batch: "welcome", BrandID: "acme", MemberID: m.ID, ValueCents: 1000, ExpiresAt: now.Add(time.Hour), IssuedAt: now},
		} {
			if _, err := s.IssueCoupon(ctx, &cp); err != nil {
				t.Fatal(err)
			}
		}
		acme := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"acme pos","brand":"acme"}`)["token"].(string)
		zeta := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"zeta pos","brand":"zeta"}`)["token"].(string)

		first := c.must(201, "POST", "/api/v1/coupons/redeem", acme, `{"code":"ACME-10","order_id":"SO-1","store_id":"sh-1"}`)
		if first["order_id"] != "SO-1" || first["guide_id"] != "g-li" || first["workflow"] != "welcome" || first["value_cents"] != 1000.0 {
			t.Errorf("redemption = %v", first)
		}
		tests := []struct {
			name, token, body string
			status            int
			code, field       string
		}{
			{"the same order again", acme, `{"code":"ACME-10","order_id":"SO-1","store_id":"sh-1"}`, 200, "", ""},
			{"another order", acme, `{"code":"ACME-10","order_id":"SO-2","store_id":"sh-1"}`, 409, api.CodeCouponRedeemed, "code"},
			{"expired", acme, `{"code":"ACME-OLD","order_id":"SO-3"}`, 410, api.CodeCouponExpired, "code"},
			{"another brand's coupon", acme, `{"code":"ZETA-5","order_id":"SO-4"}`, 404, api.CodeNotFound, "code"},
			{"unknown code", acme, `{"code":"NOPE","order_id":"SO-4"}`, 404, api.CodeNotFound, "code"},
			{"no code", acme, `{"order_id":"SO-4"}`, 400, api.CodeInvalidArgument, "code"},
			{"no order", acme, `{"code":"ACME-OLD"}`, 400, api.CodeInvalidArgument, "order_id"},
			{"a store of another brand", acme, `{"code":"ACME-RACE","order_id":"SO-5","store_id":"bj-1"}`, 400, api.CodeInvalidArgument, "store_id"},
			{"another brand's token", zeta, `{"code":"ACME-RACE","order_id":"SO-5"}`, 404, api.CodeNotFound, "code"},
			{"a brand token naming another brand", zeta, `{"code":"ACME-RACE","order_id":"SO-5","brand":"acme"}`, 404, api.CodeNotFound, ""},
			{"an admin token without a brand", adminToken, `{"code":"ACME-RACE","order_id":"SO-5"}`, 400, api.CodeInvalidArgument, "brand"},
			{"an unknown field", acme, `{"code":"ACME-RACE","order_id":"SO-5","coupon":"x"}`, 400, "", ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, out := c.do("POST", "/api/v1/coupons/redeem", tc.token, tc.body)
				if status != tc.status {
					t.Fatalf("status %d, want %d: %v", status, tc.status, out)
				}
				if tc.status == 200 && out["id"] != first["id"] {
					t.Errorf("the same order answered %v, want %v", out, first)
				}
				if tc.code != "" && errCode(out) != tc.code {
					t.Errorf("error code %q, want %q: %v", errCode(out), tc.code, out)
				}
				if tc.field != "" {
					e, _ := out["error"].(map[string]any)
					details, _ := e["details"].([]any)
					if len(details) != 1 || details[0].(map[string]any)["field"] != tc.field {
						t.Errorf("details %v, want the field %s", e["details"], tc.field)
					}
				}
				if tc.status == 409 && fmt.Sprint(out) != fmt.Sprint(map[string]any{"error": map[string]any{"code": api.CodeCouponRedeemed,
					"message": "code: the coupon is already redeemed on another order", "details": []any{map[string]any{"field": "code", "message": "already redeemed"}}}}) {
					t.Errorf("409 says more than that: %v", out)
				}
			})
		}
		for _, order := range []string{"SO-2", "SO-3", "SO-4", "SO-5"} {
			if reds, _ := s.OrderRedemptions(ctx, "acme", order); len(reds) != 0 {
				t.Errorf("refused %s wrote %+v", order, reds)
			}
		}

		// Ten tills redeem ACME-RACE on ten orders at once.
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			counts = map[int]int{}
		)
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, _ := c.do("POST", "/api/v1/coupons/redeem", acme, fmt.Sprintf(`{"code":"ACME-RACE","order_id":"R-%d"}`, i))
				mu.Lock()
				counts[status]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if counts[201] != 1 || counts[409] != 9 {
			t.Errorf("racing redemptions answered %v, want one 201 and nine 409", counts)
		}
	})
}
