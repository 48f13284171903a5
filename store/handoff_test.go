package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// handoffSeed: brand b1, store st1 (Shanghai), guides g1 and g2; member
// 13800138000 "陈女士" bound to g1, member 13900008000 "陈小姐" to g2.
func handoffSeed(t *testing.T, s *store.Store) (chen, other int64) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateBrand(ctx, &store.Brand{ID: "b1", Name: "B1"}))
	must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "st1", Name: "S1", Lat: 31.2, Lng: 121.4, BrandIDs: []string{"b1"}, Active: true}))
	one, two := "u1", "u2"
	must(s.CreateGuide(ctx, &store.Guide{ID: "g1", StoreID: "st1", Name: "G1", Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: one}}, Active: true}))
	must(s.CreateGuide(ctx, &store.Guide{ID: "g2", StoreID: "st1", Name: "G2", Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: two}}, Active: true}))
	for i, p := range []struct{ phone, name, guide string }{{"13800138000", "陈女士", "g1"}, {"13900008000", "陈小姐_%", "g2"}} {
		m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: p.phone, Name: p.name, BrandID: "b1"})
		must(err)
		_, _, err = s.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: "b1", GuideID: p.guide, StoreID: "st1", Reason: "manual"})
		must(err)
		if i == 0 {
			chen = m.ID
		} else {
			other = m.ID
		}
	}
	return chen, other
}

func TestHandoffsOneOpenPerMember(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		chen, _ := handoffSeed(t, s)
		open := func(key string) (*store.Handoff, bool) {
			h := &store.Handoff{BrandID: "b1", MemberID: chen, GuideID: "g1", MemberChannel: "wecom", MemberAddress: "wm1",
				GuideChannel: "wecom", GuideAddress: "u1", OpenKey: key, OpenedAt: t0}
			fresh, err := s.OpenHandoff(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			return h, fresh
		}
		var wg sync.WaitGroup
		ids := make([]int64, 4)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h, _ := open("k" + string(rune('a'+i)))
				ids[i] = h.ID
			}()
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] || id == 0 {
				t.Fatalf("concurrent opens gave handoffs %v, want one", ids)
			}
		}
		h, _ := s.OpenHandoffOf(ctx, chen, "b1")
		if err := s.TouchHandoff(ctx, h.ID, true, nil, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if idle, _ := s.IdleHandoffs(ctx, t0.Add(time.Minute), 10); len(idle) != 0 {
			t.Errorf("touched handoff listed idle: %+v", idle)
		}
		if idle, _ := s.IdleHandoffs(ctx, t0.Add(2*time.Minute), 10); len(idle) != 1 {
			t.Errorf("idle handoffs = %+v, want 1", idle)
		}
		_, ended, err := s.EndHandoff(ctx, h.ID, store.HandoffEndedIdle, "sweep", t0.Add(time.Hour))
		if err != nil || !ended {
			t.Fatalf("end: %v %v", ended, err)
		}
		if _, again, _ := s.EndHandoff(ctx, h.ID, store.HandoffEndedIdle, "sweep", t0.Add(time.Hour)); !again {
			t.Error("a retry with the same key does not see its end")
		}
		if _, other, _ := s.EndHandoff(ctx, h.ID, store.HandoffEndedByGuide, "guide-msg", t0.Add(time.Hour)); other {
			t.Error("a second ender was told it ended the handoff")
		}
		// Ended idle and not notified yet: still listed, for the notices.
		if idle, _ := s.IdleHandoffs(ctx, t0, 10); len(idle) != 1 || idle[0].State != store.HandoffEnded {
			t.Errorf("unnotified idle end not listed: %+v", idle)
		}
		s.MarkHandoffNotified(ctx, h.ID, t0.Add(time.Hour))
		if idle, _ := s.IdleHandoffs(ctx, t0.Add(2*time.Hour), 10); len(idle) != 0 {
			t.Errorf("notified handoff listed: %+v", idle)
		}
		if h2, fresh := open("knew"); !fresh || h2.ID == h.ID {
			t.Errorf("a new handoff after the end: fresh %v id %d", fresh, h2.ID)
		}
		if _, fresh := open("knew"); fresh {
			t.Error("the same key opened twice")
		}
	})
}

func TestGuideMemberLookupAndStats(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		chen, other := handoffSeed(t, s)
		for _, tc := range []struct {
			guide, q string
			want     []int64
		}{
			{"g1", "8000", []int64{chen}},
			{"g2", "8000", []int64{other}}, // same tail, other guide's member
			{"g1", "陈", []int64{chen}},     // never g2's 陈小姐
			{"g1", "%", nil},               // LIKE wildcards are literal
			{"g2", "_%", []int64{other}},
			{"g1", "0000", nil},
		} {
			got, err := s.FindGuideMembers(ctx, tc.guide, tc.q, 10)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, m := range got {
				ids = append(ids, m.MemberID)
				if len(m.PhoneTail) != 4 {
					t.Errorf("phone tail %q", m.PhoneTail)
				}
			}
			if len(ids) != len(tc.want) || len(ids) > 0 && ids[0] != tc.want[0] {
				t.Errorf("%s finds %q: %v, want %v", tc.guide, tc.q, ids, tc.want)
			}
		}
		now := time.Now()
		month := now.AddDate(0, 0, -1)
		s.AwardPoints(ctx, &store.PointsLine{MemberID: chen, BrandID: "b1", Delta: 300, Reason: "buy", Ref: "r1", CreatedAt: now})
		s.AwardPoints(ctx, &store.PointsLine{MemberID: chen, BrandID: "b1", Delta: -100, Reason: "refund", Ref: "r2", CreatedAt: now})
		s.AwardPoints(ctx, &store.PointsLine{MemberID: other, BrandID: "b1", Delta: 999, Reason: "buy", Ref: "r3", CreatedAt: now})
		task := &store.GuideTask{MemberID: chen, GuideID: "g1", BrandID: "b1", Title: "call", DueAt: now}
		s.CreateGuideTask(ctx, task)
		s.CreateGuideTask(ctx, &store.GuideTask{MemberID: chen, GuideID: "g1", BrandID: "b1", Title: "later", DueAt: now.Add(72 * time.Hour)})
		s.CompleteGuideTask(ctx, task.ID, now)
		st, err := s.GuideStatsSince(ctx, "g1", month, now.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want := store.GuideStats{MembersBound: 1, NewMembers: 1, OpenTasks: 1, DueBefore: 0, TasksDone: 1, MemberPoints: 300}
		if *st != want {
			t.Errorf("stats = %+v, want %+v", *st, want)
		}
		zones, _ := s.StoreTimeZones(ctx)
		if len(zones) != 1 || zones[0] != store.DefaultTimeZone {
			t.Errorf("zones = %v", zones)
		}
		gs, _ := s.GuidesWithoutDigest(ctx, store.DefaultTimeZone, "2026-11-25", "", 10)
		if len(gs) != 2 {
			t.Fatalf("guides without digest = %d, want 2", len(gs))
		}
		if fresh, _ := s.MarkDigest(ctx, "g1", "2026-11-25", now); !fresh {
			t.Error("first mark not fresh")
		}
		if fresh, _ := s.MarkDigest(ctx, "g1", "2026-11-25", now); fresh {
			t.Error("second mark fresh")
		}
		if gs, _ := s.GuidesWithoutDigest(ctx, store.DefaultTimeZone, "2026-11-25", "", 10); len(gs) != 1 || gs[0].ID != "g2" {
			t.Errorf("after marking g1: %+v", gs)
		}
	})
}

func TestMergeMovesHandoffs(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		chen, other := handoffSeed(t, s)
		for i, m := range []int64{chen, other} {
			h := &store.Handoff{BrandID: "b1", MemberID: m, GuideID: "g1", OpenKey: "k" + string(rune('0'+i)), OpenedAt: t0}
			if _, err := s.OpenHandoff(ctx, h); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.MergeMembers(ctx, other, chen, "test"); err != nil {
			t.Fatal(err)
		}
		h, err := s.OpenHandoffOf(ctx, chen, "b1")
		if err != nil || h.OpenKey != "k0" {
			t.Fatalf("survivor's open handoff = %+v, %v", h, err)
		}
		last, _ := s.LastHandoffOf(ctx, chen, "b1")
		if last.OpenKey != "k1" || last.State != store.HandoffEnded || last.EndReason != store.HandoffEndedMerged {
			t.Errorf("merged member's handoff = %+v", last)
		}
	})
}
