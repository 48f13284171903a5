package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func TestGuidePointsLedgerAndLeaderboard(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "ACME"}))
		must(s.CreateBrand(ctx, &store.Brand{ID: "zeta", Name: "Zeta"}))
		for _, st := range []store.RetailStore{
			{ID: "sh-1", Name: "静安店", BrandIDs: []string{"acme", "zeta"}, Lat: 31, Lng: 121, Active: true},
			{ID: "sh-2", Name: "徐汇店", BrandIDs: []string{"acme"}, Lat: 31.1, Lng: 121.4, Active: true},
		} {
			must(s.CreateRetailStore(ctx, &st))
		}
		for _, g := range []store.Guide{
			{ID: "g-a", StoreID: "sh-1", Name: "A", Active: true},
			{ID: "g-b", StoreID: "sh-1", Name: "B", Active: true},
			{ID: "g-c", StoreID: "sh-2", Name: "C", Active: true},
			{ID: "g-d", StoreID: "sh-2", Name: "D", Active: true},
		} {
			must(s.CreateGuide(ctx, &g))
		}
		at := time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)
		e := func(key, guide, brand, storeID, month string, pts int64) store.GuidePointsEntry {
			return store.GuidePointsEntry{Key: key, Kind: store.GuidePointsBound, GuideID: guide, BrandID: brand, StoreID: storeID, Month: month, Points: pts, EarnedAt: at}
		}
		entries := []store.GuidePointsEntry{
			e("k1", "g-a", "acme", "sh-1", "2026-11", 30),
			e("k2", "g-b", "acme", "sh-1", "2026-11", 50),
			e("k3", "g-c", "acme", "sh-2", "2026-11", 30),
			e("k4", "g-d", "acme", "sh-2", "2026-11", 50),
			e("k5", "g-a", "zeta", "sh-1", "2026-11", 100),
			e("k6", "g-c", "acme", "sh-2", "2026-10", 500),
			e("k7", "g-d", "acme", "sh-2", "2026-11", -10), // a clawback
		}
		fresh, err := s.AwardGuidePoints(ctx, entries)
		if err != nil || len(fresh) != len(entries) {
			t.Fatalf("AwardGuidePoints = %d fresh, %v", len(fresh), err)
		}
		// The same keys again (a redelivery), with other figures: nothing.
		again := append([]store.GuidePointsEntry(nil), entries...)
		again[0].Points = 999
		if fresh, err := s.AwardGuidePoints(ctx, again); err != nil || len(fresh) != 0 {
			t.Fatalf("again = %d fresh, %v", len(fresh), err)
		}
		if _, err := s.AwardGuidePoints(ctx, []store.GuidePointsEntry{e("bad", "g-a", "acme", "sh-1", "2026-13", 1)}); err == nil {
			t.Error("month 2026-13 accepted")
		}
		if n, _ := s.GuidePointsTotal(ctx, "g-a", "", "2026-11"); n != 130 {
			t.Errorf("g-a total = %d, want 130 (30 acme + 100 zeta)", n)
		}
		if n, _ := s.GuidePointsTotal(ctx, "g-a", "acme", "2026-11"); n != 30 {
			t.Errorf("g-a acme total = %d, want 30", n)
		}

		board := func(q store.LeaderboardQuery) []store.LeaderboardRow {
			t.Helper()
			rows, err := s.Leaderboard(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			return rows
		}
		// acme, November: g-b 50, g-d 50-10=40, g-a 30, g-c 30 (ties share
		// a rank and are ordered by id).
		want := []store.LeaderboardRow{
			{Rank: 1, GuideID: "g-b", GuideName: "B", StoreID: "sh-1", Points: 50},
			{Rank: 2, GuideID: "g-d", GuideName: "D", StoreID: "sh-2", Points: 40},
			{Rank: 3, GuideID: "g-a", GuideName: "A", StoreID: "sh-1", Points: 30},
			{Rank: 3, GuideID: "g-c", GuideName: "C", StoreID: "sh-2", Points: 30},
		}
		if diff := cmp.Diff(want, board(store.LeaderboardQuery{Brand: "acme", Month: "2026-11"})); diff != "" {
			t.Errorf("acme board (-want +got):\n%s", diff)
		}
		// Store sh-1, every brand: g-a 130, g-b 50.
		want = []store.LeaderboardRow{{Rank: 1, GuideID: "g-a", GuideName: "A", StoreID: "sh-1", Points: 130}, {Rank: 2, GuideID: "g-b", GuideName: "B", StoreID: "sh-1", Points: 50}}
		if diff := cmp.Diff(want, board(store.LeaderboardQuery{StoreID: "sh-1", Month: "2026-11"})); diff != "" {
			t.Errorf("sh-1 board (-want +got):\n%s", diff)
		}
		if rows := board(store.LeaderboardQuery{Brand: "acme", Month: "2026-10"}); len(rows) != 1 || rows[0].GuideID != "g-c" || rows[0].Points != 500 {
			t.Errorf("October board = %+v", rows)
		}
		if rows := board(store.LeaderboardQuery{Brand: "acme", Month: "2026-11", Limit: 2}); len(rows) != 2 {
			t.Errorf("limited board = %+v", rows)
		}
		p, err := s.GuidePlace(ctx, store.LeaderboardQuery{Brand: "acme", Month: "2026-11"}, "g-c", 2)
		if err != nil || p.Rank != 3 || p.Of != 4 || p.Points != 30 || len(p.Top) != 2 {
			t.Errorf("g-c's place = %+v, %v", p, err)
		}
		if p, _ := s.GuidePlace(ctx, store.LeaderboardQuery{Brand: "zeta", Month: "2026-11"}, "g-b", 3); p.Rank != 0 || p.Of != 1 {
			t.Errorf("g-b on zeta (no points) = %+v", p)
		}
		if _, err := s.Leaderboard(ctx, store.LeaderboardQuery{Month: "2026-11"}); err == nil {
			t.Error("a board of neither brand nor store accepted")
		}
	})
}

func TestCrossBrandAllowed(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, b := range []string{"acme", "zeta", "omega"} {
			must(s.CreateBrand(ctx, &store.Brand{ID: b, Name: b}))
		}
		must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "col", Name: "集合店", BrandIDs: []string{"acme", "zeta"}, Lat: 31, Lng: 121, Active: true}))
		must(s.CreateGuide(ctx, &store.Guide{ID: "g-1", StoreID: "col", Name: "G", Active: true}))
		m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: "acme"})
		must(err)
		now := time.Now()
		check := func(what, from, to, channel string, want bool, reason string) {
			t.Helper()
			ok, why, err := s.CrossBrandAllowed(ctx, m.ID, from, to, channel)
			if err != nil || ok != want || why != reason {
				t.Errorf("%s: CrossBrandAllowed(%s→%s) = %v %q %v, want %v %q", what, from, to, ok, why, err, want, reason)
			}
		}
		check("same brand", "acme", "acme", "", true, "")
		check("not bound", "acme", "zeta", "", false, store.CrossBrandNoBinding)
		_, _, err = s.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: "acme", GuideID: "g-1", StoreID: "col", Reason: "state"})
		must(err)
		check("no opt-in", "acme", "zeta", "", false, store.CrossBrandNoOptIn)
		offers, err := s.CrossBrandOffers(ctx, m.ID, "acme")
		if err != nil || len(offers) != 1 || offers[0].ID != "zeta" {
			t.Fatalf("offers = %+v, %v", offers, err)
		}
		must(s.SetCrossBrandOptIn(ctx, m.ID, []string{"zeta"}, true, now))
		check("opted in", "acme", "zeta", "", true, "")
		check("opted in, on wecom", "acme", "zeta", "wecom", true, "")
		check("a brand the store does not carry", "acme", "omega", "", false, store.CrossBrandNotCarried)
		// Consent: an unsubscribe from the offering brand on the channel,
		// or from the guide's brand everywhere, refuses.
		must(s.SetConsent(ctx, m.ID, "zeta", "wecom", true, now))
		check("unsubscribed from zeta on wecom", "acme", "zeta", "wecom", false, store.CrossBrandUnsubscribed)
		check("zeta on dingtalk", "acme", "zeta", "dingtalk", true, "")
		must(s.SetConsent(ctx, m.ID, "zeta", "wecom", false, now))
		must(s.SetConsent(ctx, m.ID, "acme", store.ConsentAll, true, now))
		check("unsubscribed from acme", "acme", "zeta", "", false, store.CrossBrandUnsubscribed)
		must(s.SetConsent(ctx, m.ID, "acme", store.ConsentAll, false, now))
		check("resubscribed", "acme", "zeta", "", true, "")
		// Declining takes it back; the opt-ins list follows.
		if got, _ := s.CrossBrandOptIns(ctx, m.ID); !cmp.Equal(got, []string{"zeta"}) {
			t.Errorf("opt-ins = %v", got)
		}
		must(s.SetCrossBrandOptIn(ctx, m.ID, []string{"zeta"}, false, now))
		check("declined", "acme", "zeta", "", false, store.CrossBrandNoOptIn)
		if got, _ := s.CrossBrandOptIns(ctx, m.ID); len(got) != 0 {
			t.Errorf("opt-ins after declining = %v", got)
		}
		// A guide who left cannot carry offers.
		must(s.SetCrossBrandOptIn(ctx, m.ID, []string{"zeta"}, true, now))
		if _, err := s.MarkGuideLeft(ctx, "g-1"); err != nil {
			t.Fatal(err)
		}
		check("guide left", "acme", "zeta", "", false, store.CrossBrandGuideLeft)
	})
}
