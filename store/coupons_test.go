package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestRedeemCoupon: a coupon is redeemed once; the same order again gets
// the same redemption, another order, an expired coupon and another
// brand's coupon are refused with nothing written.
func TestRedeemCoupon(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
		run := int64(42)
		for _, c := range []store.IssuedCoupon{
			{Key: "k1", Code: "NEW-50-AAAA", Batch: "NEW-50", BrandID: "acme", MemberID: 7, ValueCents: 5000, ExpiresAt: now.Add(24 * time.Hour),
				IssuedAt: now, RunID: &run, Workflow: "welcome", GuideID: "g-li"},
			{Key: "k2", Code: "OLD-10-BBBB", Batch: "OLD-10", BrandID: "acme", MemberID: 7, ValueCents: 1000, ExpiresAt: now.Add(-time.Minute), IssuedAt: now.Add(-48 * time.Hour)},
			{Key: "k3", Code: "ZETA-5-CCCC", Batch: "ZETA-5", BrandID: "zeta", MemberID: 7, ValueCents: 500, ExpiresAt: now.Add(time.Hour), IssuedAt: now},
		} {
			if _, err := s.IssueCoupon(ctx, &c); err != nil {
				t.Fatal(err)
			}
		}
		first, fresh, err := s.RedeemCoupon(ctx, store.Redemption{Brand: "acme", Code: "NEW-50-AAAA", OrderNo: "SO-1", StoreID: "sh-1", At: now})
		if err != nil || !fresh {
			t.Fatalf("first redemption = %v, %v", fresh, err)
		}
		if first.GuideID != "g-li" || first.Workflow != "welcome" || first.RunID == nil || *first.RunID != 42 || first.MemberID != 7 || first.ValueCents != 5000 {
			t.Errorf("redemption attribution = %+v", first)
		}
		tests := []struct {
			name    string
			r       store.Redemption
			want    error
			wantID  int64
			invalid string
		}{
			{"the same order again", store.Redemption{Brand: "acme", Code: "NEW-50-AAAA", OrderNo: "SO-1", StoreID: "sh-1", At: now.Add(time.Minute)}, nil, first.ID, ""},
			{"the same order after the coupon expired", store.Redemption{Brand: "acme", Code: "NEW-50-AAAA", OrderNo: "SO-1", At: now.Add(48 * time.Hour)}, nil, first.ID, ""},
			{"another order", store.Redemption{Brand: "acme", Code: "NEW-50-AAAA", OrderNo: "SO-2", At: now}, store.ErrCouponRedeemed, 0, ""},
			{"expired", store.Redemption{Brand: "acme", Code: "OLD-10-BBBB", OrderNo: "SO-3", At: now}, store.ErrCouponExpired, 0, ""},
			{"another brand's coupon", store.Redemption{Brand: "acme", Code: "ZETA-5-CCCC", OrderNo: "SO-4", At: now}, store.ErrNotFound, 0, ""},
			{"unknown code", store.Redemption{Brand: "acme", Code: "NOPE", OrderNo: "SO-4", At: now}, store.ErrNotFound, 0, ""},
			{"no order", store.Redemption{Brand: "acme", Code: "NEW-50-AAAA", At: now}, store.ErrInvalid, 0, "order_id"},
			{"bad store", store.Redemption{Brand: "acme", Code: "NEW-50-AAAA", OrderNo: "SO-1", StoreID: "a b", At: now}, store.ErrInvalid, 0, "store_id"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				red, fresh, err := s.RedeemCoupon(ctx, tc.r)
				if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if tc.invalid != "" {
					var fe *store.FieldError
					if !errors.As(err, &fe) || fe.Field != tc.invalid {
						t.Errorf("err = %v, want field %s", err, tc.invalid)
					}
				}
				if tc.want == nil && (fresh || red.ID != tc.wantID) {
					t.Errorf("redemption = %+v (fresh %v), want the first one (%d)", red, fresh, tc.wantID)
				}
				if tc.want != nil && red != nil {
					t.Errorf("refused redemption answered %+v", red)
				}
			})
		}
		if reds, _ := s.OrderRedemptions(ctx, "acme", "SO-2"); len(reds) != 0 {
			t.Errorf("a refused redemption wrote %+v", reds)
		}
		redeemedOn := func(code string) string {
			t.Helper()
			cs, err := s.MemberCoupons(ctx, 7, "acme")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if c.Code == code {
					return c.RedeemedOrder
				}
			}
			return "?"
		}
		if got := redeemedOn("NEW-50-AAAA"); got != "SO-1" {
			t.Errorf("coupon redeemed on %q, want SO-1", got)
		}

		// The order is refunded: the coupon is given back, once, and can
		// be redeemed on another order.
		back, err := s.UnredeemOrderCoupons(ctx, "acme", "SO-1", "RF-1", now.Add(time.Hour))
		if err != nil || len(back) != 1 || back[0].ID != first.ID || back[0].RefundNo != "RF-1" {
			t.Fatalf("unredeem = %+v, %v", back, err)
		}
		if again, err := s.UnredeemOrderCoupons(ctx, "acme", "SO-1", "RF-1", now.Add(time.Hour)); err != nil || len(again) != 0 {
			t.Errorf("unredeem again = %+v, %v", again, err)
		}
		if got := redeemedOn("NEW-50-AAAA"); got != "" {
			t.Errorf("coupon after the refund redeemed on %q, want none", got)
		}
		second, fresh, err := s.RedeemCoupon(ctx, store.Redemption{Brand: "acme", Code: "NEW-50-AAAA", OrderNo: "SO-2", At: now.Add(2 * time.Hour)})
		if err != nil || !fresh || second.ID == first.ID || second.GuideID != "g-li" {
			t.Fatalf("redeeming after the refund = %+v, %v, %v", second, fresh, err)
		}
		if got := redeemedOn("NEW-50-AAAA"); got != "SO-2" {
			t.Errorf("coupon after the second redemption redeemed on %q, want SO-2", got)
		}
	})
}

// TestRedeemCouponRace: redemptions of one coupon on different orders
// racing each other: exactly one wins, the others are refused.
func TestRedeemCouponRace(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC()
		if _, err := s.IssueCoupon(ctx, &store.IssuedCoupon{Key: "k", Code: "RACE-1", Batch: "RACE", BrandID: "acme", MemberID: 1, ValueCents: 100,
			ExpiresAt: now.Add(time.Hour), IssuedAt: now}); err != nil {
			t.Fatal(err)
		}
		const n = 8
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			won     []string
			refused int
			others  []error
		)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				order := fmt.Sprintf("SO-%d", i)
				_, fresh, err := s.RedeemCoupon(ctx, store.Redemption{Brand: "acme", Code: "RACE-1", OrderNo: order, At: now})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && fresh:
					won = append(won, order)
				case errors.Is(err, store.ErrCouponRedeemed):
					refused++
				default:
					others = append(others, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(won) != 1 || refused != n-1 || len(others) != 0 {
			t.Fatalf("won %v, refused %d, other outcomes %v; want one winner", won, refused, others)
		}
		reds, err := s.OrderRedemptions(ctx, "acme", won[0])
		if err != nil || len(reds) != 1 {
			t.Errorf("the winner's redemptions = %+v, %v", reds, err)
		}
	})
}

// TestSettleUnreconciledAgain: a store whose day does not reconcile is
// settled as unreconciled, and settling the day again recomputes it
// (settled once its ledger adds up), while a settled store keeps its
// figures.
func TestSettleUnreconciledAgain(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "ACME"}))
		m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: "acme"})
		must(err)
		day := "2026-12-06"
		record := func(no, st string, withLine bool) int64 {
			o := &store.Order{BrandID: "acme", OrderNo: no, MemberID: m.ID, StoreID: &st, Channel: "pos", Currency: "CNY", Attribution: "none",
				PlacedAt: time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC), SettleDate: day, Items: []store.OrderItem{{SKU: "A", Qty: 1, PriceCents: 10000}}}
			var lines []store.CommissionLine
			if withLine {
				lines = []store.CommissionLine{{BrandID: "acme", ItemLine: 1, Party: store.PartyStore, PartyID: st, StoreID: st, BaseCents: 10000,
					AmountCents: 500, Rule: "* 5%", SettleDate: day}}
			}
			_, err := s.RecordOrder(ctx, o, lines)
			must(err)
			return o.ID
		}
		record("SO-1", "sh-1", true)
		gz := record("SO-2", "gz-1", false)
		now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
		status := func() map[string]string {
			sts, err := s.SettleDay(ctx, day, time.UTC, now)
			must(err)
			out := map[string]string{}
			for _, st := range sts {
				out[st.StoreID] = fmt.Sprintf("%s %d", st.Status, st.StoreCents)
			}
			return out
		}
		if got := status(); got["sh-1"] != "settled 500" || got["gz-1"] != "unreconciled 0" {
			t.Fatalf("first settlement = %v", got)
		}
		// gz-1's line arrives; sh-1 gets a late line that must not change
		// its settled figures.
		must(store.AppendCommissionLines(s, []store.CommissionLine{
			{BrandID: "acme", OrderID: gz, ItemLine: 1, Party: store.PartyStore, PartyID: "gz-1", StoreID: "gz-1", BaseCents: 10000, AmountCents: 400, Rule: "* 4%", SettleDate: day},
			{BrandID: "acme", OrderID: gz, ItemLine: 1, Party: store.PartyGuide, PartyID: "g-x", StoreID: "sh-1", BaseCents: 10000, AmountCents: 300, Rule: "* 3%", SettleDate: day},
		}))
		if got := status(); got["sh-1"] != "settled 500" || got["gz-1"] != "settled 400" {
			t.Errorf("settled again = %v", got)
		}
	})
}
