package assign

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func f(v float64) *float64 { return &v }

// world: store a (Jing'an, acme) with guides a1 (capacity 1) and a2
// (capacity 2); store b 3 km away (acme) with b1; store z nearer (zeta
// only); store x nearest of all but inactive; an online pool store.
func world(t *testing.T, s *store.Store) *Assigner {
	t.Helper()
	ctx := context.Background()
	for _, b := range []string{"acme", "zeta"} {
		if err := s.CreateBrand(ctx, &store.Brand{ID: b, Name: b}); err != nil {
			t.Fatal(err)
		}
	}
	stores := []store.RetailStore{
		{ID: "a", Name: "A", Lat: 31.2300, Lng: 121.4700, BrandIDs: []string{"acme"}, Active: true},
		{ID: "b", Name: "B", Lat: 31.2500, Lng: 121.4900, BrandIDs: []string{"acme"}, Active: true},
		{ID: "z", Name: "Z", Lat: 31.2301, Lng: 121.4701, BrandIDs: []string{"zeta"}, Active: true},
		{ID: "x", Name: "X", Lat: 31.2300, Lng: 121.4702, BrandIDs: []string{"acme"}, Active: false},
		{ID: "online", Name: "Online", Lat: 30.0, Lng: 120.0, BrandIDs: []string{"acme"}, Active: true},
	}
	for i := range stores {
		if err := s.CreateRetailStore(ctx, &stores[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []store.Guide{
		{ID: "a1", StoreID: "a", Name: "A1", Capacity: 1, Active: true},
		{ID: "a2", StoreID: "a", Name: "A2", Capacity: 2, Active: true},
		{ID: "b1", StoreID: "b", Name: "B1", Active: true},
		{ID: "x1", StoreID: "x", Name: "X1", Active: true},
		{ID: "z1", StoreID: "z", Name: "Z1", Active: true},
		{ID: "p1", StoreID: "online", Name: "P1", Active: true},
	} {
		if err := s.CreateGuide(ctx, &g); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(ctx, s, Options{MaxDistanceKm: 10, OnlinePools: map[string]string{"acme": "online"}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func member(t *testing.T, s *store.Store, i int) int64 {
	t.Helper()
	m, _, err := s.EnsureMember(context.Background(), store.NewMember{Identities: []store.Identity{{Channel: "test", ExternalID: fmt.Sprint(i)}}, BrandID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func TestNearestWithCapacityAndFallbacks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := world(t, s)
		near := Request{Brand: "acme", Lat: f(31.2305), Lng: f(121.4705)}
		var got []string
		for i := 1; i <= 5; i++ {
			req := near
			req.MemberID = member(t, s, i)
			b, err := a.Assign(ctx, req)
			if err != nil {
				t.Fatalf("member %d: %v", i, err)
			}
			got = append(got, b.GuideID+"@"+b.StoreID+"/"+b.Reason)
			if b.Reason == ReasonNearest && b.DistanceM <= 0 {
				t.Errorf("member %d: nearest binding without a distance", i)
			}
		}
		// a1 (tie with a2, lower id), a2, a2 (a1 full), b1 (a full); the
		// inactive x and zeta's z are never used.
		want := "[a1@a/nearest a2@a/nearest a2@a/nearest b1@b/nearest b1@b/nearest]"
		if fmt.Sprint(got) != want {
			t.Errorf("assignments = %v, want %s", got, want)
		}
		far := Request{MemberID: member(t, s, 6), Brand: "acme", Lat: f(45.75), Lng: f(126.65)} // Harbin
		b, err := a.Assign(ctx, far)
		if err != nil || b.GuideID != "p1" || b.Reason != ReasonPool {
			t.Errorf("far member = %+v, %v; want the online pool", b, err)
		}
		a.opts.OnlinePools = nil
		if _, err := a.Assign(ctx, Request{MemberID: member(t, s, 7), Brand: "acme", Lat: f(45.75), Lng: f(126.65)}); !errors.Is(err, ErrUnassigned) {
			t.Errorf("no pool: err = %v, want ErrUnassigned", err)
		}
		if hits := a.Nearest(31.2305, 121.4705, "acme", 0, 3); len(hits) != 2 || hits[0].ID != "a" || hits[1].ID != "b" {
			t.Errorf("nearest acme stores = %+v", hits)
		}
	})
}

func TestQRCodeStateAndRebind(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := world(t, s)
		m := member(t, s, 1)
		b, err := a.Assign(ctx, Request{MemberID: m, Brand: "acme", StoreID: "b", Lat: f(31.2305), Lng: f(121.4705)})
		if err != nil || b.GuideID != "b1" || b.Reason != ReasonState {
			t.Fatalf("QR store wins over location: %+v, %v", b, err)
		}
		again, err := a.Assign(ctx, Request{MemberID: m, Brand: "acme", GuideID: "a1"})
		if err != nil || again.ID != b.ID {
			t.Fatalf("a bound member kept their guide? %+v, %v", again, err)
		}
		moved, err := a.Assign(ctx, Request{MemberID: m, Brand: "acme", GuideID: "a1", Rebind: true, Reason: ReasonManual})
		if err != nil || moved.GuideID != "a1" || moved.Reason != ReasonManual {
			t.Fatalf("rebind = %+v, %v", moved, err)
		}
		g, _ := s.Guide(ctx, "b1", "")
		if g.BoundCount != 0 {
			t.Errorf("b1 still counts %d members after the rebind", g.BoundCount)
		}
	})
}

func TestAssignBadInput(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := world(t, s)
		m := member(t, s, 1)
		for _, tc := range []struct {
			name string
			req  Request
		}{
			{"null island", Request{MemberID: m, Brand: "acme", Lat: f(0), Lng: f(0)}},
			{"out of range", Request{MemberID: m, Brand: "acme", Lat: f(91), Lng: f(0)}},
			{"lat only", Request{MemberID: m, Brand: "acme", Lat: f(31)}},
			{"unknown brand", Request{MemberID: m, Brand: "ghost", Lat: f(31), Lng: f(121)}},
			{"other brand's store", Request{MemberID: m, Brand: "acme", StoreID: "z"}},
			{"other brand's guide", Request{MemberID: m, Brand: "acme", GuideID: "z1"}},
		} {
			if _, err := a.Assign(ctx, tc.req); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
			}
		}
		if v, _ := s.Member(ctx, m, ""); len(v.Bindings) != 0 {
			t.Errorf("refused requests bound the member: %+v", v.Bindings)
		}
		if _, err := a.Assign(ctx, Request{MemberID: 999999, Brand: "acme"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown member: %v", err)
		}
	})
}

func TestConcurrentAssignmentsRespectCapacity(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := world(t, s)
		const n = 10
		members := make([]int64, n)
		for i := range members {
			members[i] = member(t, s, i)
		}
		var wg sync.WaitGroup
		results := make([]string, n)
		for i := range members {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				b, err := a.Assign(ctx, Request{MemberID: members[i], Brand: "acme", StoreID: "a"})
				if err != nil {
					results[i] = err.Error()
					return
				}
				results[i] = b.StoreID
			}(i)
		}
		wg.Wait()
		inA := 0
		for _, r := range results {
			if r == "a" {
				inA++
			}
		}
		if inA != 3 {
			t.Errorf("%d members bound in store a (capacity 1+2), want 3: %v", inA, results)
		}
		for _, id := range []string{"a1", "a2"} {
			g, _ := s.Guide(ctx, id, "")
			if g.BoundCount > g.Capacity {
				t.Errorf("%s holds %d members, capacity %d", id, g.BoundCount, g.Capacity)
			}
		}
	})
}

func TestIndexFollowsChanges(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	ctx := context.Background()
	a := world(t, s)
	if err := s.UpsertRetailStores(ctx, []store.RetailStore{{ID: "c", Name: "C", Lat: 31.2304, Lng: 121.4704, BrandIDs: []string{"acme"}, Active: true, TimeZone: "Asia/Shanghai"}}); err != nil {
		t.Fatal(err)
	}
	if hits := a.Nearest(31.2304, 121.4704, "acme", 0, 1); len(hits) == 1 && hits[0].ID == "c" {
		t.Fatal("index saw a store before any refresh: the test proves nothing")
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if hits := a.Nearest(31.2304, 121.4704, "acme", 0, 1); len(hits) != 1 || hits[0].ID != "c" {
		t.Errorf("after sync nearest = %+v, want c", hits)
	}
	if err := s.DeleteRetailStore(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	a.Refresh(ctx, "c")
	if hits := a.Nearest(31.2304, 121.4704, "acme", 0, 1); len(hits) != 1 || hits[0].ID != "a" {
		t.Errorf("after delete nearest = %+v, want a", hits)
	}
}

type fakeTransferer struct {
	name  string
	calls []string
}

func (f *fakeTransferer) Name() string { return f.name }

func (f *fakeTransferer) TransferContacts(_ context.Context, from, to string, ids []string) error {
	f.calls = append(f.calls, fmt.Sprintf("%s→%s %v", from, to, ids))
	return nil
}

func TestGuideLeftHandsMembersToColleagues(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := world(t, s)
		// Two corps: b1 is of the default one only.
		tr, acme := &fakeTransferer{name: "wecom"}, &fakeTransferer{name: "wecom:acme"}
		a.opts.Transferers = []Transferer{acme, tr}
		// b1 has a WeCom account and three members, two with WeCom ids.
		if err := s.UpsertGuides(ctx, []store.Guide{{ID: "b1", StoreID: "b", Name: "B1", Active: true, Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: "wx-b1"}}},
			{ID: "a2", StoreID: "a", Name: "A2", Capacity: 2, Active: true, Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: "wx-a2"}}}}); err != nil {
			t.Fatal(err)
		}
		var members []int64
		for i := 0; i < 3; i++ {
			m := member(t, s, i)
			members = append(members, m)
			if i < 2 {
				if _, _, err := s.EnsureMember(ctx, store.NewMember{Identities: []store.Identity{{Channel: "test", ExternalID: fmt.Sprint(i)}, {Channel: "wecom", ExternalID: fmt.Sprintf("wm%d", i)}}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := a.Assign(ctx, Request{MemberID: m, Brand: "acme", GuideID: "b1"}); err != nil {
				t.Fatal(err)
			}
		}
		moves, err := a.GuideLeft(ctx, "b1")
		if err != nil {
			t.Fatal(err)
		}
		// b has no other guide: the nearest store a takes them, a1 (1) and
		// a2 (2) by load; all three fit.
		var to []string
		for _, m := range moves {
			to = append(to, m.To)
		}
		if fmt.Sprint(to) != "[a1 a2 a2]" {
			t.Errorf("members went to %v, want [a1 a2 a2]", to)
		}
		if fmt.Sprint(tr.calls) != "[wx-b1→wx-a2 [wm1]]" {
			// a1 has no WeCom account; wm0 went to a1 and is not transferred.
			t.Errorf("transfers = %v", tr.calls)
		}
		if len(acme.calls) != 0 {
			t.Errorf("transfers on wecom:acme = %v, want none (b1 is not of acme)", acme.calls)
		}
		g, _ := s.Guide(ctx, "b1", "")
		if g.Active || g.LeftAt == nil || g.BoundCount != 0 {
			t.Errorf("b1 after leaving = active %v left %v bound %d", g.Active, g.LeftAt, g.BoundCount)
		}
		for _, m := range members {
			v, _ := s.Member(ctx, m, "")
			if len(v.Bindings) != 1 || v.Bindings[0].Reason != ReasonInherit {
				t.Errorf("member %d bindings = %+v", m, v.Bindings)
			}
		}
		again, err := a.GuideLeft(ctx, "b1")
		if err != nil || len(again) != 0 {
			t.Errorf("second GuideLeft moved %v (err %v), want nothing", again, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestAssignBulkMatchesOneByOne(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := world(t, s)
		var ms []Located
		for i := 1; i <= 6; i++ {
			ms = append(ms, Located{MemberID: member(t, s, i), Lat: 31.2305, Lng: 121.4705})
		}
		far := member(t, s, 99)
		ms = append(ms, Located{MemberID: far, Lat: 45.75, Lng: 126.65})
		// Member 6 is already bound: they keep their guide.
		if _, _, err := s.Bind(ctx, &store.Binding{MemberID: ms[5].MemberID, BrandID: "acme", GuideID: "p1", StoreID: "online", Reason: "manual"}); err != nil {
			t.Fatal(err)
		}
		res, err := a.AssignBulk(ctx, "acme", ms, 2)
		if err != nil {
			t.Fatal(err)
		}
		if res.Assigned != 5 || res.AlreadyBound != 1 || len(res.Unassigned) != 1 || res.Unassigned[0] != far {
			t.Fatalf("result = %+v", res)
		}
		var got []string
		for _, m := range ms[:5] {
			v, _ := s.Member(ctx, m.MemberID, "")
			got = append(got, v.Bindings[0].GuideID)
		}
		if fmt.Sprint(got) != "[a1 a2 a2 b1 b1]" {
			t.Errorf("bulk assignments = %v, want the same as one by one", got)
		}
		for id, want := range map[string]int{"a1": 1, "a2": 2, "b1": 2, "p1": 1} {
			if g, _ := s.Guide(ctx, id, ""); g.BoundCount != want {
				t.Errorf("%s counts %d members, want %d", id, g.BoundCount, want)
			}
		}
	})
}
