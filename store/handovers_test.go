package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// A handover row is created once per (guide, member, brand), claimed by
// one worker at a time, and moved only from the state (and claim) its
// mover saw.
func TestHandoverClaims(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		chen, other := handoffSeed(t, s)
		rows := []store.Handover{
			{GuideID: "g1", MemberID: chen, BrandID: "b1", StoreID: "st1", Channel: "wecom", HandoverUserID: "u1", ExternalUserID: "wmChen"},
			{GuideID: "g1", MemberID: other, BrandID: "b1", StoreID: "st1", Channel: "wecom", HandoverUserID: "u1", ExternalUserID: "wmOther"},
		}
		if n, err := s.CreateHandovers(ctx, rows); err != nil || n != 2 {
			t.Fatalf("CreateHandovers = %d, %v", n, err)
		}
		if n, err := s.CreateHandovers(ctx, rows); err != nil || n != 0 {
			t.Fatalf("CreateHandovers again = %d, %v; want 0", n, err)
		}

		// Concurrent claimers share the rows: each is claimed once.
		var (
			mu      sync.Mutex
			claimed = map[int64]int{}
			wg      sync.WaitGroup
		)
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				hs, err := s.ClaimHandovers(ctx, "g1", time.Minute, 10)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, h := range hs {
					claimed[h.ID]++
				}
			}()
		}
		wg.Wait()
		if len(claimed) != 2 || claimed[1]+claimed[2] != 2 {
			t.Fatalf("claims = %v, want each row once", claimed)
		}
		hs, _ := s.Handovers(ctx, store.HandoverFilter{GuideID: "g1"})
		h := hs[0]
		if h.Attempts != 1 || h.State != store.HandoverPending {
			t.Fatalf("claimed row = %+v", h)
		}
		// A stale claim (an older attempt) moves nothing.
		stale := h
		stale.Attempts = 0
		if ok, err := s.SetHandoverTarget(ctx, &stale, "g2", "u2"); ok || err != nil {
			t.Errorf("stale claim set a target: %v, %v", ok, err)
		}
		if ok, err := s.SetHandoverTarget(ctx, &h, "g2", "u2"); !ok || err != nil {
			t.Fatalf("SetHandoverTarget = %v, %v", ok, err)
		}
		at := time.Now().Add(time.Hour)
		if ok, err := s.MarkHandoverRequested(ctx, &h, at); !ok || err != nil {
			t.Fatalf("MarkHandoverRequested = %v, %v", ok, err)
		}
		if ok, _ := s.MarkHandoverRequested(ctx, &h, at); ok {
			t.Error("requested twice")
		}
		got, err := s.RequestedHandover(ctx, "wecom", "u2", h.ExternalUserID)
		if err != nil || got.ID != h.ID {
			t.Fatalf("RequestedHandover = %+v, %v", got, err)
		}
		// The takeover's own "contact added" is the handover's, also when
		// its delivery is handled again; a later add of the pair (the
		// member deleted the guide and added them again) is a join.
		for i, tc := range []struct {
			key   string
			found bool
		}{{"evt:add-1", true}, {"evt:add-1", true}, {"evt:add-2", false}} {
			ta, err := s.TakeoverAdd(ctx, "wecom", "u2", h.ExternalUserID, tc.key)
			if tc.found && (err != nil || ta.ID != h.ID) || !tc.found && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("TakeoverAdd #%d (%s) = %+v, %v; want found %v", i+1, tc.key, ta, err, tc.found)
			}
		}
		// Refused: back to pending, the guide remembered.
		if ok, err := s.RetargetHandover(ctx, got, store.HandoverRequested, "refused", 0); !ok || err != nil {
			t.Fatalf("RetargetHandover = %v, %v", ok, err)
		}
		got, _ = s.Handover(ctx, h.ID)
		if got.State != store.HandoverPending || got.ToGuideID != "" || got.Tried != "g2" || got.Reason != "refused" {
			t.Errorf("retargeted row = %+v", got)
		}
		pending, requested, err := s.DueHandovers(ctx, time.Now(), time.Now().Add(time.Second), 10)
		if err != nil || len(pending) != 1 || pending[0] != "g1" || len(requested) != 0 {
			t.Errorf("DueHandovers = %v, %v, %v", pending, requested, err)
		}
		// Settled rows are never claimed again.
		again, _ := s.ClaimHandovers(ctx, "g1", time.Minute, 10)
		for _, c := range again {
			if ok, err := s.SettleHandover(ctx, &c, store.HandoverPending, store.HandoverFailed, "no guide", 0); !ok || err != nil {
				t.Fatalf("SettleHandover = %v, %v", ok, err)
			}
		}
		if left, _ := s.ClaimHandovers(ctx, "g1", 0, 10); len(left) != 0 {
			t.Errorf("claimed settled rows: %+v", left)
		}
	})
}

// A merged member's handovers move to the survivor, unless the survivor
// has their own (then the merged one's fails, saying why).
func TestHandoverMerge(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		chen, other := handoffSeed(t, s)
		rows := []store.Handover{
			{GuideID: "g1", MemberID: chen, BrandID: "b1", StoreID: "st1", Channel: "wecom", HandoverUserID: "u1", ExternalUserID: "wmChen"},
			{GuideID: "g1", MemberID: other, BrandID: "b1", StoreID: "st1", Channel: "wecom", HandoverUserID: "u1", ExternalUserID: "wmOther"},
			{GuideID: "g2", MemberID: other, BrandID: "b1", StoreID: "st1", Channel: "wecom", HandoverUserID: "u2", ExternalUserID: "wmOther"},
		}
		if _, err := s.CreateHandovers(ctx, rows); err != nil {
			t.Fatal(err)
		}
		if _, err := s.MergeMembers(ctx, other, chen, "test"); err != nil {
			t.Fatal(err)
		}
		hs, _ := s.Handovers(ctx, store.HandoverFilter{})
		got := map[string]string{}
		for _, h := range hs {
			got[h.GuideID+":"+h.ExternalUserID] = fmt.Sprintf("%d %s", h.MemberID, h.State)
		}
		want := map[string]string{
			"g1:wmChen":  fmt.Sprintf("%d pending", chen),
			"g1:wmOther": fmt.Sprintf("%d failed", other),
			"g2:wmOther": fmt.Sprintf("%d pending", chen),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("handovers after the merge (-want +got):\n%s", diff)
		}
	})
}
