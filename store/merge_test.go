package store_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func TestMergeMembers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme", "zeta")
		if err := s.CreateRetailStore(ctx, &store.RetailStore{ID: "sh", Name: "SH", Lat: 31, Lng: 121, BrandIDs: []string{"acme", "zeta"}}); err != nil {
			t.Fatal(err)
		}
		for _, g := range []string{"g1", "g2"} {
			if err := s.CreateGuide(ctx, &store.Guide{ID: g, StoreID: "sh", Name: g, Active: true}); err != nil {
				t.Fatal(err)
			}
		}
		// The same person joined once through WeCom (no phone) and once
		// through the CRM (with phone).
		wx, _, _ := s.EnsureMember(ctx, store.NewMember{Name: "Chen", BrandID: "acme", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmChen"}}})
		crm, _, _ := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: "acme", Identities: []store.Identity{{Channel: "crm:acme", ExternalID: "C1"}}})
		s.SetMembership(ctx, wx.ID, "acme", "", ptr(int64(100)))
		s.SetMembership(ctx, crm.ID, "acme", "gold", ptr(int64(900)))
		s.SetMembership(ctx, wx.ID, "zeta", "silver", ptr(int64(5)))
		s.Bind(ctx, &store.Binding{MemberID: wx.ID, BrandID: "acme", GuideID: "g1", StoreID: "sh", Reason: "contact"})
		s.Bind(ctx, &store.Binding{MemberID: crm.ID, BrandID: "acme", GuideID: "g2", StoreID: "sh", Reason: "nearest"})
		s.Bind(ctx, &store.Binding{MemberID: wx.ID, BrandID: "zeta", GuideID: "g1", StoreID: "sh", Reason: "contact"})
		s.AppendEvent(ctx, &store.Event{Type: "member.joined", MemberID: &wx.ID, Source: "wecom", SourceID: "e1"})
		s.AddMemberTags(ctx, wx.ID, "acme", []string{"vip", "new"}, time.Now())
		s.AddMemberTags(ctx, crm.ID, "acme", []string{"vip"}, time.Now())
		s.SetConsent(ctx, wx.ID, "acme", store.ConsentAll, true, time.Now())
		s.CreateGuideTask(ctx, &store.GuideTask{MemberID: wx.ID, GuideID: "g1", BrandID: "acme", Title: "call", DueAt: time.Now()})

		day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		for i, id := range []int64{wx.ID, crm.ID} {
			o := &store.Order{BrandID: "acme", OrderNo: "SO-" + itoa(int64(i)), MemberID: id, Channel: "pos", Currency: "CNY", Attribution: "none",
				PlacedAt: day.AddDate(0, i, 0), Items: []store.OrderItem{{SKU: "A", Qty: 1, PriceCents: 1000 * int64(i+1)}}}
			if _, err := s.RecordOrder(ctx, o, nil); err != nil {
				t.Fatal(err)
			}
		}
		s.SetCrossBrandOptIn(ctx, wx.ID, []string{"zeta"}, true, time.Now())

		rec, err := s.MergeMembers(ctx, wx.ID, crm.ID, "admin")
		if err != nil {
			t.Fatal(err)
		}
		if rec.Moved != "identities=1 memberships=2 bindings=2 events=1 tags=1 points_lines=0 runs=0 guide_tasks=1" {
			t.Errorf("recorded move = %q", rec.Moved)
		}
		if st, _ := s.Stats(ctx, crm.ID, "acme"); st.Orders != 2 || st.SpentCents != 3000 || !st.FirstPurchaseAt.Equal(day) ||
			!st.LastPurchaseAt.Equal(day.AddDate(0, 1, 0)) {
			t.Errorf("merged purchase figures = %+v", st)
		}
		if os, _ := s.MemberOrders(ctx, crm.ID, "acme", 10); len(os) != 2 {
			t.Errorf("survivor has %d orders, want 2", len(os))
		}
		if ins, _ := s.CrossBrandOptIns(ctx, crm.ID); len(ins) != 1 || ins[0] != "zeta" {
			t.Errorf("survivor's cross-brand opt-ins = %v", ins)
		}
		v, err := s.Member(ctx, wx.ID, "") // the old id resolves to the survivor
		if err != nil || v.ID != crm.ID {
			t.Fatalf("old id resolves to %v, %v", v, err)
		}
		if v.Name != "Chen" || v.Phone != "+8613800138000" || len(v.Identities) != 2 {
			t.Errorf("merged member = %q %q %d identities", v.Name, v.Phone, len(v.Identities))
		}
		got := map[string]string{}
		for _, ms := range v.Memberships {
			got[ms.BrandID] = ms.Level + "/" + itoa(ms.Points)
		}
		if got["acme"] != "gold/1000" || got["zeta"] != "silver/5" {
			t.Errorf("memberships = %v, want acme gold/1000 and zeta silver/5", got)
		}
		guides := map[string]string{}
		for _, b := range v.Bindings {
			guides[b.BrandID] = b.GuideID
		}
		if guides["acme"] != "g2" || guides["zeta"] != "g1" || len(v.Bindings) != 2 {
			t.Errorf("current bindings = %v, want acme→g2 (the survivor's) and zeta→g1", guides)
		}
		g1, _ := s.Guide(ctx, "g1", "")
		if g1.BoundCount != 1 {
			t.Errorf("g1 counts %d members, want 1 (the acme binding ended)", g1.BoundCount)
		}
		if tags, _ := s.MemberTags(ctx, crm.ID, "acme"); len(tags) != 2 {
			t.Errorf("survivor's tags = %v, want new and vip", tags)
		}
		if p, _ := s.MemberProfile(ctx, "acme", crm.ID); p == nil || !p.IsUnsubscribed("wecom") {
			t.Error("the merged member's unsubscribe was lost")
		}
		evs, _ := s.Events(ctx, store.EventFilter{MemberID: crm.ID})
		if len(evs) != 1 {
			t.Errorf("survivor has %d events, want 1", len(evs))
		}
		if _, err := s.MergeMembers(ctx, wx.ID, crm.ID, "admin"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("merging twice: %v", err)
		}
		if _, err := s.MergeMembers(ctx, crm.ID, crm.ID, "admin"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("merging into itself: %v", err)
		}
		if _, err := s.MergeMembers(ctx, crm.ID, 999999, "admin"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("merging into nobody: %v", err)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
