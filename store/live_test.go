package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// retailFixture is brand acme with stores sh-1 and sh-2 (guides g-1 and
// g-2), members bound to each, and products A and B.
func retailFixture(t *testing.T, s *store.Store) (sh1, sh2 []int64) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "ACME"}))
	must(s.CreateBrand(ctx, &store.Brand{ID: "zeta", Name: "Zeta"}))
	for _, st := range []string{"sh-1", "sh-2"} {
		must(s.CreateRetailStore(ctx, &store.RetailStore{ID: st, Name: st, BrandIDs: []string{"acme"}, Lat: 31, Lng: 121, Active: true}))
	}
	must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "z-1", Name: "Z", BrandIDs: []string{"zeta"}, Lat: 31, Lng: 121, Active: true}))
	must(s.CreateGuide(ctx, &store.Guide{ID: "g-1", StoreID: "sh-1", Name: "One", Active: true}))
	must(s.CreateGuide(ctx, &store.Guide{ID: "g-2", StoreID: "sh-2", Name: "Two", Active: true}))
	must(s.UpsertProducts(ctx, []store.Product{{BrandID: "acme", SKU: "A", Name: "A", PriceCents: 1000}, {BrandID: "acme", SKU: "B", Name: "B", PriceCents: 2000}}))
	for i, phone := range []string{"13800138001", "13800138002", "13800138003"} {
		m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: phone, BrandID: "acme"})
		must(err)
		guide, st := "g-1", "sh-1"
		if i == 2 {
			guide, st = "g-2", "sh-2"
		}
		_, _, err = s.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: "acme", GuideID: guide, StoreID: st, Reason: "manual"})
		must(err)
		if st == "sh-1" {
			sh1 = append(sh1, m.ID)
		} else {
			sh2 = append(sh2, m.ID)
		}
	}
	return sh1, sh2
}

// TestLiveSessions: a session is validated field by field (nothing
// written on a fault), is idempotent by id, its audience is the members
// bound to its store (every store's for a brand's session) announced in
// resumable batches, and its funnel counts invited, joined and bought
// per store.
func TestLiveSessions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		sh1, sh2 := retailFixture(t, s)
		start := time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)
		good := func() *store.LiveSession {
			return &store.LiveSession{Key: "l-1", BrandID: "acme", StoreID: "sh-1", Title: "Spring", URL: "https://live.example.com/l-1",
				StartsAt: start, EndsAt: start.Add(90 * time.Minute)}
		}
		for _, tc := range []struct {
			name, field string
			edit        func(*store.LiveSession)
		}{
			{"ends before it starts", "ends_at", func(l *store.LiveSession) { l.EndsAt = l.StartsAt.Add(-time.Minute) }},
			{"ends as it starts", "ends_at", func(l *store.LiveSession) { l.EndsAt = l.StartsAt }},
			{"lasts two days", "ends_at", func(l *store.LiveSession) { l.EndsAt = l.StartsAt.Add(48 * time.Hour) }},
			{"no title", "title", func(l *store.LiveSession) { l.Title = " " }},
			{"not a URL", "url", func(l *store.LiveSession) { l.URL = "javascript:alert(1)" }},
			{"bad id", "id", func(l *store.LiveSession) { l.Key = "a b" }},
			{"another brand's store", "store_id", func(l *store.LiveSession) { l.StoreID = "z-1" }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				l := good()
				tc.edit(l)
				_, err := s.CreateLiveSession(ctx, l)
				var fe *store.FieldError
				if !errors.As(err, &fe) || fe.Field != tc.field {
					t.Errorf("err = %v, want a fault of %s", err, tc.field)
				}
				if _, err := s.LiveSession(ctx, "acme", l.Key); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("a refused session was written (%v)", err)
				}
			})
		}
		l := good()
		if fresh, err := s.CreateLiveSession(ctx, l); err != nil || !fresh {
			t.Fatalf("CreateLiveSession = %v, %v", fresh, err)
		}
		if fresh, err := s.CreateLiveSession(ctx, good()); err != nil || fresh {
			t.Errorf("the same session again = %v, %v; want the recorded one", fresh, err)
		}
		other := good()
		other.Title = "Other"
		if _, err := s.CreateLiveSession(ctx, other); !errors.Is(err, store.ErrConflict) {
			t.Errorf("the id with another title: %v, want ErrConflict", err)
		}

		// The audience of sh-1, one member a batch: resumable.
		var got []int64
		for {
			batch, err := s.InviteLiveBatch(ctx, l, start.Add(-72*time.Hour), 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(batch) == 0 {
				break
			}
			if batch[0].StoreID != "sh-1" || batch[0].GuideID != "g-1" || batch[0].InvitedAt == nil {
				t.Errorf("audience row = %+v", batch[0])
			}
			got = append(got, batch[0].MemberID)
			l.InvitedThrough = batch[0].MemberID
			if _, err := s.AdvanceLiveInvite(ctx, l.ID, 0, l.InvitedThrough, false, start); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(got, sh1) {
			t.Errorf("announced %v, want sh-1's members %v", got, sh1)
		}
		if _, err := s.AdvanceLiveInvite(ctx, l.ID, 0, l.InvitedThrough, true, start); err != nil {
			t.Fatal(err)
		}
		if todo, _ := s.LiveSessionsToInvite(ctx, start.Add(time.Hour*1000), 10); len(todo) != 0 {
			t.Errorf("an announced session is still to announce: %+v", todo)
		}

		// A brand's session reaches every store's members.
		all := &store.LiveSession{Key: "l-all", BrandID: "acme", Title: "All", URL: "https://live.example.com/all", StartsAt: start, EndsAt: start.Add(time.Hour)}
		if _, err := s.CreateLiveSession(ctx, all); err != nil {
			t.Fatal(err)
		}
		batch, err := s.InviteLiveBatch(ctx, all, start, 100)
		if err != nil || len(batch) != 3 {
			t.Fatalf("the brand's audience = %+v, %v", batch, err)
		}

		// Joined (the first time counts), left, ordered; one uninvited.
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.MarkLiveAudience(ctx, l.ID, sh1[0], store.LiveJoined, start.Add(5*time.Minute)))
		must(s.MarkLiveAudience(ctx, l.ID, sh1[0], store.LiveJoined, start.Add(9*time.Minute)))
		must(s.MarkLiveAudience(ctx, l.ID, sh1[0], store.LiveOrdered, start.Add(10*time.Minute)))
		must(s.RecordLiveOrder(ctx, &store.LiveOrder{OrderID: 501, SessionID: l.ID, MemberID: sh1[0], StoreID: "sh-1", GuideID: "g-1", TotalCents: 3000}))
		must(s.RecordLiveOrder(ctx, &store.LiveOrder{OrderID: 501, SessionID: l.ID, MemberID: sh1[0], StoreID: "sh-1", GuideID: "g-1", TotalCents: 3000}))
		if _, err := s.EnsureLiveAudience(ctx, &store.LiveAudience{SessionID: l.ID, MemberID: sh2[0], BrandID: "acme", StoreID: "sh-2"}); err != nil {
			t.Fatal(err)
		}
		must(s.MarkLiveAudience(ctx, l.ID, sh2[0], store.LiveJoined, start))
		a, _ := s.LiveAudienceMember(ctx, l.ID, sh1[0])
		if a.JoinedAt == nil || !a.JoinedAt.Equal(start.Add(5*time.Minute)) {
			t.Errorf("joined at %v, want the first join", a.JoinedAt)
		}
		funnel, err := s.LiveFunnel(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []store.LiveStoreFunnel{
			{StoreID: "sh-1", Invited: 2, Joined: 1, Bought: 1, Orders: 1, SalesCents: 3000},
			{StoreID: "sh-2", Invited: 0, Joined: 1},
		}
		if !slices.Equal(funnel, want) {
			t.Errorf("funnel = %+v\nwant %+v", funnel, want)
		}
	})
}

// TestAssortment: a store carries a subset of its brand's catalogue at
// its own price or the brand's; unknown SKUs, a brand the store does
// not carry and negative prices are refused with nothing written.
func TestAssortment(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		retailFixture(t, s)
		own := int64(900)
		if err := s.SetAssortment(ctx, "sh-1", "acme", []store.StoreProduct{{SKU: "A", PriceCents: &own, InStock: true}, {SKU: "B"}}); err != nil {
			t.Fatal(err)
		}
		neg := int64(-1)
		for _, tc := range []struct {
			name, brand, field string
			items              []store.StoreProduct
		}{
			{"unknown sku", "acme", "items[1].sku", []store.StoreProduct{{SKU: "A"}, {SKU: "C"}}},
			{"twice", "acme", "items[1].sku", []store.StoreProduct{{SKU: "A"}, {SKU: "A"}}},
			{"negative price", "acme", "items[0].price", []store.StoreProduct{{SKU: "A", PriceCents: &neg}}},
			{"a brand the store does not carry", "zeta", "brand", nil},
		} {
			var fe *store.FieldError
			if err := s.SetAssortment(ctx, "sh-1", tc.brand, tc.items); !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("%s: %v, want a fault of %s", tc.name, err, tc.field)
			}
		}
		got, err := s.Assortment(ctx, "sh-1", "")
		want := []store.AssortmentItem{
			{BrandID: "acme", SKU: "A", Name: "A", PriceCents: 900, BrandPriceCents: 1000, OwnPrice: true, InStock: true},
			{BrandID: "acme", SKU: "B", Name: "B", PriceCents: 2000, BrandPriceCents: 2000},
		}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("assortment = %+v, %v\nwant %+v", got, err, want)
		}
		if _, err := s.StoreItem(ctx, "sh-2", "acme", "A"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("sh-2 carries A: %v", err)
		}
		var fe *store.FieldError
		if err := s.UpsertProducts(ctx, []store.Product{{BrandID: "acme", SKU: "A", Name: "A", URL: "javascript:alert(1)"}}); !errors.As(err, &fe) || fe.Field != "url" {
			t.Errorf("a product page that is no web URL: %v", err)
		}
		if err := s.UpsertProducts(ctx, []store.Product{{BrandID: "acme", SKU: "A", Name: "A", PriceCents: 1000, URL: "https://shop.example.com/p/A"}}); err != nil {
			t.Fatal(err)
		}
		if it, err := s.StoreItem(ctx, "sh-1", "acme", "A"); err != nil || it.URL != "https://shop.example.com/p/A" {
			t.Errorf("the product's page in the store's item: %+v, %v", it, err)
		}
	})
}

// TestRedeemCouponMember: a coupon is its member's: redeeming it on an
// order recorded for another member, or for another member the till
// names, is refused and writes nothing.
func TestRedeemCouponMember(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		sh1, _ := retailFixture(t, s)
		owner, other := sh1[0], sh1[1]
		now := time.Date(2027, 1, 5, 10, 0, 0, 0, time.UTC)
		if _, err := s.IssueCoupon(ctx, &store.IssuedCoupon{Key: "k", Code: "C-1", Batch: "B", BrandID: "acme", MemberID: owner, ValueCents: 500,
			ExpiresAt: now.Add(time.Hour), IssuedAt: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordOrder(ctx, &store.Order{BrandID: "acme", OrderNo: "SO-OTHER", MemberID: other, Channel: "pos", Currency: "CNY",
			Attribution: "none", PlacedAt: now, SettleDate: "2027-01-05", Items: []store.OrderItem{{SKU: "A", Qty: 1, PriceCents: 1000}}}, nil); err != nil {
			t.Fatal(err)
		}
		for name, r := range map[string]store.Redemption{
			"another member's order":        {Brand: "acme", Code: "C-1", OrderNo: "SO-OTHER", At: now},
			"the till names another member": {Brand: "acme", Code: "C-1", OrderNo: "SO-NEW", MemberID: other, At: now},
		} {
			if _, _, err := s.RedeemCoupon(ctx, r); !errors.Is(err, store.ErrCouponMember) {
				t.Errorf("%s: %v, want ErrCouponMember", name, err)
			}
		}
		if reds, _ := s.OrderRedemptions(ctx, "acme", "SO-OTHER"); len(reds) != 0 {
			t.Errorf("a refused redemption wrote %+v", reds)
		}
		if _, fresh, err := s.RedeemCoupon(ctx, store.Redemption{Brand: "acme", Code: "C-1", OrderNo: "SO-NEW", MemberID: owner, At: now}); err != nil || !fresh {
			t.Errorf("the owner's redemption = %v, %v", fresh, err)
		}
	})
}

// TestStoreCards: the stores of a page with their active guides (at
// most as many as asked) and each one's contact ways, in one call.
func TestStoreCards(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		retailFixture(t, s)
		for _, g := range []store.Guide{{ID: "g-1b", StoreID: "sh-1", Name: "B", Active: true}, {ID: "g-1c", StoreID: "sh-1", Name: "C", Active: true},
			{ID: "g-1x", StoreID: "sh-1", Name: "X"}} {
			if err := s.CreateGuide(ctx, &g); err != nil {
				t.Fatal(err)
			}
		}
		for _, cw := range []store.ContactWay{{Channel: "wecom", StoreID: "sh-1", State: "s:sh-1", QRCode: "https://qr/s1"},
			{Channel: "wecom", GuideID: "g-1", State: "g:g-1", QRCode: "https://qr/g1"}, {Channel: "wecom", GuideID: "g-2", State: "g:g-2", QRCode: "https://qr/g2"}} {
			if err := s.SaveContactWay(ctx, &cw); err != nil {
				t.Fatal(err)
			}
		}
		cards, err := s.StoreCards(ctx, []string{"sh-1", "sh-2", "gone"}, 2)
		if err != nil {
			t.Fatal(err)
		}
		var g1 []string
		for _, g := range cards.Guides["sh-1"] {
			g1 = append(g1, g.ID)
		}
		if len(cards.Stores) != 2 || !slices.Equal(g1, []string{"g-1", "g-1b"}) || len(cards.Guides["sh-2"]) != 1 {
			t.Errorf("cards: %d stores, sh-1's guides %v, sh-2's %d", len(cards.Stores), g1, len(cards.Guides["sh-2"]))
		}
		if len(cards.StoreWays["sh-1"]) != 1 || len(cards.GuideWays["g-1"]) != 1 || len(cards.GuideWays["g-2"]) != 1 || len(cards.StoreWays["sh-2"]) != 0 {
			t.Errorf("contact ways: %+v %+v", cards.StoreWays, cards.GuideWays)
		}
	})
}

// TestLiveEditsAndLateAudience: an edit moves the revision on and starts
// the announcement over (an announcement of the old revision can no
// longer advance); members bound to the store after the announcement are
// found once and not again after they join the audience; a cancelled
// session is upcoming no more and lists its audience to tell.
func TestLiveEditsAndLateAudience(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		sh1, _ := retailFixture(t, s)
		start := time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)
		now := start.Add(-72 * time.Hour)
		l := &store.LiveSession{Key: "l-1", BrandID: "acme", StoreID: "sh-1", Title: "Spring", URL: "https://live.example.com/l-1",
			StartsAt: start, EndsAt: start.Add(time.Hour)}
		if _, err := s.CreateLiveSession(ctx, l); err != nil {
			t.Fatal(err)
		}
		batch, err := s.InviteLiveBatch(ctx, l, now, 500)
		if err != nil || len(batch) != len(sh1) {
			t.Fatalf("announcement = %d members, %v", len(batch), err)
		}
		if ok, err := s.AdvanceLiveInvite(ctx, l.ID, 0, batch[len(batch)-1].MemberID, true, now); err != nil || !ok {
			t.Fatalf("AdvanceLiveInvite = %v, %v", ok, err)
		}
		if up, err := s.UpcomingLiveSessions(ctx, now, 10); err != nil || len(up) != 1 {
			t.Fatalf("upcoming = %+v, %v", up, err)
		}
		// A member bound to sh-1 after the announcement.
		m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138009", BrandID: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: "acme", GuideID: "g-1", StoreID: "sh-1", Reason: "manual"}); err != nil {
			t.Fatal(err)
		}
		late, err := s.LateLiveAudience(ctx, l, now, 500)
		if err != nil || len(late) != 1 || late[0].MemberID != m.ID || late[0].GuideID != "g-1" {
			t.Fatalf("late audience = %+v, %v", late, err)
		}
		if _, err := s.EnsureLiveAudience(ctx, &late[0]); err != nil {
			t.Fatal(err)
		}
		if again, err := s.LateLiveAudience(ctx, l, now, 500); err != nil || len(again) != 0 {
			t.Errorf("late audience again = %+v, %v", again, err)
		}

		title := "Spring, live"
		got, err := s.UpdateLiveSession(ctx, "acme", "l-1", store.LiveEdit{Title: &title}, now)
		if err != nil || got.Revision != 1 || got.Change != store.LiveUpdated || got.InvitedAt != nil {
			t.Fatalf("edit = %+v, %v", got, err)
		}
		if ok, _ := s.AdvanceLiveInvite(ctx, l.ID, 0, 1, true, now); ok {
			t.Error("the old revision's announcement advanced")
		}
		if up, _ := s.UpcomingLiveSessions(ctx, now, 10); len(up) != 0 {
			t.Errorf("a session being announced again is upcoming: %+v", up)
		}
		c, fresh, err := s.CancelLiveSession(ctx, "acme", "l-1", now)
		if err != nil || !fresh || c.CancelledAt == nil || c.Revision != 2 || c.Change != store.LiveCancelled {
			t.Fatalf("cancel = %+v, %v, %v", c, fresh, err)
		}
		tell, err := s.CancelLiveBatch(ctx, c, 500)
		if err != nil || len(tell) != len(sh1)+1 {
			t.Errorf("to tell of the cancellation: %d, %v; want %d", len(tell), err, len(sh1)+1)
		}
		if _, err := s.AdvanceLiveInvite(ctx, l.ID, 2, tell[len(tell)-1].MemberID, true, now); err != nil {
			t.Fatal(err)
		}
		if up, _ := s.UpcomingLiveSessions(ctx, now, 10); len(up) != 0 {
			t.Errorf("a cancelled session is upcoming: %+v", up)
		}
		if _, err := s.UpdateLiveSession(ctx, "acme", "l-1", store.LiveEdit{Title: &title}, now); !errors.Is(err, store.ErrConflict) {
			t.Errorf("editing a cancelled session: %v", err)
		}
	})
}
