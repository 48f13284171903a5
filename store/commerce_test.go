package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func TestOrdersRefundsAndSettlement(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "ACME"}))
		must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "sh-1", Name: "SH", BrandIDs: []string{"acme"}, Lat: 31, Lng: 121, Active: true}))
		m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: "acme"})
		must(err)
		sh := "sh-1"
		placed := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
		order := func() *store.Order {
			return &store.Order{BrandID: "acme", OrderNo: "SO-1", MemberID: m.ID, StoreID: &sh, Channel: "pos", Currency: "CNY",
				Attribution: "none", PlacedAt: placed, SettleDate: "2026-11-20",
				Items: []store.OrderItem{{SKU: "A", Qty: 2, PriceCents: 1000}, {SKU: "B", Qty: 1, PriceCents: 550}}}
		}
		lines := func() []store.CommissionLine {
			return []store.CommissionLine{
				{BrandID: "acme", ItemLine: 1, Party: store.PartyStore, PartyID: "sh-1", StoreID: "sh-1", BaseCents: 2000, AmountCents: 100, Rule: "5%", SettleDate: "2026-11-20"},
				{BrandID: "acme", ItemLine: 2, Party: store.PartyStore, PartyID: "sh-1", StoreID: "sh-1", BaseCents: 550, AmountCents: 28, Rule: "5%", SettleDate: "2026-11-20"},
			}
		}
		o := order()
		fresh, err := s.RecordOrder(ctx, o, lines())
		if err != nil || !fresh || o.TotalCents != 2550 {
			t.Fatalf("RecordOrder = %v, %v, total %d", fresh, err, o.TotalCents)
		}
		again := order()
		if fresh, err := s.RecordOrder(ctx, again, lines()); err != nil || fresh || again.ID != o.ID {
			t.Fatalf("recording again = %v, %v (id %d, want %d)", fresh, err, again.ID, o.ID)
		}
		if ls, _ := s.CommissionLines(ctx, o.ID); len(ls) != 2 {
			t.Errorf("lines after a repeat = %d, want 2", len(ls))
		}
		st, _ := s.Stats(ctx, m.ID, "acme")
		if st.Orders != 1 || st.SpentCents != 2550 || st.LastPurchaseAt == nil || !st.LastPurchaseAt.Equal(placed) {
			t.Errorf("stats = %+v", st)
		}
		ids, err := s.MembersLastPurchasedBetween(ctx, "acme", placed.Add(-time.Hour), placed.Add(time.Hour), 0, 10)
		if err != nil || len(ids) != 1 || ids[0] != m.ID {
			t.Errorf("segment = %v, %v", ids, err)
		}
		if ids, _ := s.MembersLastPurchasedBetween(ctx, "acme", placed.Add(time.Hour), placed.Add(2*time.Hour), 0, 10); len(ids) != 0 {
			t.Errorf("segment outside the range = %v", ids)
		}

		refund := func(no string, qty int) *store.Refund {
			return &store.Refund{BrandID: "acme", RefundNo: no, OrderID: o.ID, AmountCents: int64(qty) * 1000, RefundedAt: placed,
				SettleDate: "2026-11-20", Items: []store.RefundItem{{Line: 1, Qty: qty}}}
		}
		claw := []store.CommissionLine{{BrandID: "acme", ItemLine: 1, Party: store.PartyStore, PartyID: "sh-1", StoreID: "sh-1",
			BaseCents: -1000, AmountCents: -50, Rule: "clawback", SettleDate: "2026-11-20"}}
		if fresh, err := s.RecordRefund(ctx, refund("RF-1", 1), m.ID, claw); err != nil || !fresh {
			t.Fatalf("refund = %v, %v", fresh, err)
		}
		if fresh, err := s.RecordRefund(ctx, refund("RF-1", 1), m.ID, claw); err != nil || fresh {
			t.Fatalf("refund again = %v, %v", fresh, err)
		}
		if _, err := s.RecordRefund(ctx, refund("RF-2", 2), m.ID, nil); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("refunding 2 of the 1 left: %v, want ErrInvalid", err)
		}
		got, _ := s.OrderByNo(ctx, "acme", "SO-1")
		if got.RefundedCents != 1000 || got.Items[0].RefundedQty != 1 {
			t.Errorf("order after refunds = %+v", got)
		}
		if st, _ := s.Stats(ctx, m.ID, "acme"); st.SpentCents != 1550 || st.Orders != 1 {
			t.Errorf("stats after refund = %+v", st)
		}

		loc, _ := time.LoadLocation("Asia/Shanghai")
		if _, err := s.SettleDay(ctx, "2026-11-20", loc, time.Date(2026, 11, 20, 15, 59, 0, 0, time.UTC)); !errors.Is(err, store.ErrDayNotOver) {
			t.Errorf("settling before the day ends: %v", err)
		}
		sts, err := s.SettleDay(ctx, "2026-11-20", loc, time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC))
		if err != nil || len(sts) != 1 {
			t.Fatalf("settle = %+v, %v", sts, err)
		}
		if st := sts[0]; st.SalesCents != 2550 || st.RefundsCents != 1000 || st.NetCents != 1550 || st.StoreCents != 78 || !st.Reconciled || st.Lines != 3 {
			t.Errorf("settlement = %+v", st)
		}
		// A line written late does not change a settled day.
		late := lines()[:1]
		late[0].ItemLine, late[0].OrderID = 3, o.ID
		o2 := order()
		o2.OrderNo = "SO-2"
		if _, err := s.RecordOrder(ctx, o2, late); err != nil {
			t.Fatal(err)
		}
		sts, _ = s.SettleDay(ctx, "2026-11-20", loc, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
		if sts[0].SalesCents != 2550 || sts[0].StoreCents != 78 {
			t.Errorf("re-settled day changed: %+v", sts[0])
		}
		if stored, _ := s.Settlements(ctx, "2026-11-20", "acme"); len(stored) != 1 || stored[0].NetCents != 1550 {
			t.Errorf("stored settlements = %+v", stored)
		}
	})
}

func TestEventSourceSecrets(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "ACME"}); err != nil {
			t.Fatal(err)
		}
		src := &store.EventSource{ID: "pos", BrandID: "acme"}
		if err := s.CreateEventSource(ctx, src, "whsec_one"); err != nil {
			t.Fatal(err)
		}
		if string(src.Secret) == "whsec_one" {
			t.Fatal("secret stored in the clear")
		}
		if err := s.CreateEventSource(ctx, &store.EventSource{ID: "pos", BrandID: "acme"}, "x"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("duplicate source: %v", err)
		}
		now := time.Now()
		if _, err := s.RotateEventSource(ctx, "pos", "acme", "whsec_two", time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := s.ActiveSourceSecrets(ctx, now)
		if err != nil || len(got) != 1 || len(got[0].Secrets) != 2 || got[0].Secrets[0] != "whsec_two" || got[0].Secrets[1] != "whsec_one" {
			t.Fatalf("during overlap = %+v, %v", got, err)
		}
		if got, _ := s.ActiveSourceSecrets(ctx, now.Add(2*time.Hour)); len(got[0].Secrets) != 1 {
			t.Errorf("after overlap = %+v", got)
		}
		if _, err := s.RotateEventSource(ctx, "pos", "zeta", "whsec_three", 0); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rotating another brand's source: %v", err)
		}
		if err := s.SetEventSourceActive(ctx, "pos", "acme", false); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ActiveSourceSecrets(ctx, now); len(got) != 0 {
			t.Errorf("inactive source listed: %+v", got)
		}
	})
}

func TestIssueCouponOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		at := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
		c := func(code string) *store.IssuedCoupon {
			return &store.IssuedCoupon{Key: "wf:1:coupon:1", Code: code, Batch: "NEW-50", BrandID: "acme", MemberID: 7, ValueCents: 5000,
				ExpiresAt: at.AddDate(0, 0, 30), IssuedAt: at}
		}
		first, err := s.IssueCoupon(ctx, c("NEW-50-AAAA"))
		if err != nil || first.Code != "NEW-50-AAAA" {
			t.Fatalf("issue = %+v, %v", first, err)
		}
		again, err := s.IssueCoupon(ctx, c("NEW-50-BBBB"))
		if err != nil || again.Code != "NEW-50-AAAA" || again.ID != first.ID {
			t.Errorf("issuing again under the same key = %+v, %v", again, err)
		}
		if cs, _ := s.MemberCoupons(ctx, 7, "acme"); len(cs) != 1 || cs[0].ValueCents != 5000 {
			t.Errorf("member coupons = %+v", cs)
		}
		if _, err := s.IssueCoupon(ctx, &store.IssuedCoupon{Code: "X"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("no key: %v", err)
		}
	})
}

// Each stored settlement carries its own store's and brand's party totals,
// of all brands or of one.
func TestSettlementsParties(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "ACME"}))
		must(s.CreateBrand(ctx, &store.Brand{ID: "beta", Name: "Beta"}))
		must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "sh-1", Name: "SH 1", BrandIDs: []string{"acme", "beta"}, Lat: 31, Lng: 121, Active: true}))
		must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "sh-2", Name: "SH 2", BrandIDs: []string{"acme"}, Lat: 31, Lng: 121, Active: true}))
		placed := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
		order := func(brand, no, storeID string, lines ...store.CommissionLine) {
			t.Helper()
			m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: brand})
			must(err)
			o := &store.Order{BrandID: brand, OrderNo: no, MemberID: m.ID, StoreID: &storeID, Channel: "pos", Currency: "CNY",
				Attribution: "none", PlacedAt: placed, SettleDate: "2026-11-20", Items: []store.OrderItem{{SKU: "A", Qty: 1, PriceCents: 1000}}}
			for i := range lines {
				lines[i].BrandID, lines[i].StoreID, lines[i].ItemLine, lines[i].BaseCents, lines[i].Rule, lines[i].SettleDate =
					brand, storeID, 1, 1000, "r", "2026-11-20"
			}
			_, err = s.RecordOrder(ctx, o, lines)
			must(err)
		}
		order("acme", "A-1", "sh-1", store.CommissionLine{Party: store.PartyStore, PartyID: "sh-1", AmountCents: 100},
			store.CommissionLine{Party: store.PartyGuide, PartyID: "g-1", AmountCents: 50})
		order("acme", "A-2", "sh-1", store.CommissionLine{Party: store.PartyGuide, PartyID: "g-1", AmountCents: 20})
		order("acme", "A-3", "sh-2", store.CommissionLine{Party: store.PartyStore, PartyID: "sh-2", AmountCents: 30})
		order("beta", "B-1", "sh-1", store.CommissionLine{Party: store.PartyStore, PartyID: "sh-1", AmountCents: 7})
		loc, _ := time.LoadLocation("Asia/Shanghai")
		if _, err := s.SettleDay(ctx, "2026-11-20", loc, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		type got struct {
			Store, Brand string
			Parties      []store.PartyTotal
		}
		read := func(brand string) []got {
			t.Helper()
			sts, err := s.Settlements(ctx, "2026-11-20", brand)
			must(err)
			var out []got
			for _, st := range sts {
				out = append(out, got{st.StoreID, st.BrandID, st.Parties})
			}
			return out
		}
		acmeSH1 := got{"sh-1", "acme", []store.PartyTotal{{Party: "guide", PartyID: "g-1", Lines: 2, AmountCents: 70}, {Party: "store", PartyID: "sh-1", Lines: 1, AmountCents: 100}}}
		betaSH1 := got{"sh-1", "beta", []store.PartyTotal{{Party: "store", PartyID: "sh-1", Lines: 1, AmountCents: 7}}}
		acmeSH2 := got{"sh-2", "acme", []store.PartyTotal{{Party: "store", PartyID: "sh-2", Lines: 1, AmountCents: 30}}}
		if all := read(""); !reflect.DeepEqual(all, []got{acmeSH1, betaSH1, acmeSH2}) {
			t.Errorf("all brands' settlements:\n%+v", all)
		}
		if acme := read("acme"); !reflect.DeepEqual(acme, []got{acmeSH1, acmeSH2}) {
			t.Errorf("acme's settlements:\n%+v", acme)
		}
	})
}
