package ledger_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/gateway/ledger"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestGuidePointsKnownBinding: an event that carries the member's
// current binding (store.Event.Binding: the join that made it) credits
// that binding's guide, store, month and reason as reading it would; a
// binding that is not the member's current one with the event's brand
// (another member's, ended) is not trusted: the current one is read.
func TestGuidePointsKnownBinding(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "ACME"}))
		must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "sh-1", Name: "静安店", BrandIDs: []string{"acme"}, Lat: 31, Lng: 121, Active: true}))
		must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "sh-2", Name: "徐汇店", BrandIDs: []string{"acme"}, Lat: 31, Lng: 121, Active: true}))
		must(s.CreateGuide(ctx, &store.Guide{ID: "g-li", StoreID: "sh-1", Name: "李娜", Active: true}))
		must(s.CreateGuide(ctx, &store.Guide{ID: "g-wu", StoreID: "sh-2", Name: "吴敏", Active: true}))
		chen, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: "acme"})
		must(err)
		wang, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13900139000", BrandID: "acme"})
		must(err)
		bChen, _, err := s.Bind(ctx, &store.Binding{MemberID: chen.ID, BrandID: "acme", GuideID: "g-li", StoreID: "sh-1", Reason: "state"})
		must(err)
		bWang, _, err := s.Bind(ctx, &store.Binding{MemberID: wang.ID, BrandID: "acme", GuideID: "g-wu", StoreID: "sh-2", Reason: "contact"})
		must(err)

		rules, err := ledger.ParsePointsRules("points.yaml", []byte(testPointsRules))
		must(err)
		sh, _ := time.LoadLocation("Asia/Shanghai")
		gp := ledger.NewGuidePoints(s, rules, sh, nil)

		// Chen's join carries the binding it made.
		must(gp.HandleEvent(ctx, &store.Event{Type: events.TypeMemberJoined, BrandID: "acme", MemberID: &chen.ID, Binding: bChen}))
		// Wang's carries Chen's binding (not Wang's), then an ended one:
		// Wang's own is read, and credited once.
		ended := *bWang
		ended.EndedAt = &ended.CreatedAt
		ended.GuideID = "g-li"
		must(gp.HandleEvent(ctx, &store.Event{Type: events.TypeMemberJoined, BrandID: "acme", MemberID: &wang.ID, Binding: bChen}))
		must(gp.HandleEvent(ctx, &store.Event{Type: events.TypeMemberJoined, BrandID: "acme", MemberID: &wang.ID, Binding: &ended}))

		got, err := s.GuidePoints(ctx, store.GuidePointsFilter{BrandID: "acme"})
		must(err)
		type row struct {
			Key, Guide, Store, Month, Rule string
			Member, Points                 int64
		}
		var rows []row
		for _, e := range got {
			rows = append(rows, row{e.Key, e.GuideID, e.StoreID, e.Month, e.Rule, e.MemberID, e.Points})
		}
		month := func(b *store.Binding) string { return b.CreatedAt.In(sh).Format("2006-01") }
		want := []row{
			{"bound:acme:" + strconv.FormatInt(chen.ID, 10) + ":g-li", "g-li", "sh-1", month(bChen), "member_bound state", chen.ID, 10},
			{"bound:acme:" + strconv.FormatInt(wang.ID, 10) + ":g-wu", "g-wu", "sh-2", month(bWang), "member_bound contact", wang.ID, 10},
		}
		if diff := cmp.Diff(want, rows); diff != "" {
			t.Errorf("ledger (-want +got):\n%s", diff)
		}
	})
}
