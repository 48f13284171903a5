package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestLiveSessionsInExportAndErasure: the two-brand person was announced
// a live session of acme and one of zeta, joined and bought in each.
// Each brand's export holds its own session only (with the order counted
// in it, by the brand's order number); acme's erasure unlinks acme's
// audience row from the person (random negative member id, times set to
// the session's start) so that acme's funnel counts the same, and leaves
// zeta's row alone; the admin's erasure unlinks zeta's too. The orders
// counted stay (a ledger, with the pseudonymous id). Another member's
// audience row is untouched throughout.
func TestLiveSessionsInExportAndErasure(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := seedTwoBrandPerson(t, s)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		wu, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13900139000", Name: "Wu", BrandID: "acme"})
		must(err)
		_, _, err = s.Bind(ctx, &store.Binding{MemberID: wu.ID, BrandID: "acme", GuideID: "ga", StoreID: "st1", Reason: "manual"})
		must(err)
		start := t0.Add(48 * time.Hour)
		sessions := map[string]*store.LiveSession{}
		for _, b := range []string{"acme", "zeta"} {
			l := &store.LiveSession{Key: b + "-live", BrandID: b, StoreID: "st1", Title: b + " spring live", URL: "https://live.example.com/" + b,
				StartsAt: start, EndsAt: start.Add(time.Hour)}
			_, err := s.CreateLiveSession(ctx, l)
			must(err)
			sessions[b] = l
			batch, err := s.InviteLiveBatch(ctx, l, t0, 100)
			must(err)
			if len(batch) != map[string]int{"acme": 2, "zeta": 1}[b] {
				t.Fatalf("%s's audience = %+v", b, batch)
			}
			must(s.MarkLiveAudience(ctx, l.ID, p.id, store.LiveJoined, start.Add(3*time.Minute)))
			must(s.MarkLiveAudience(ctx, l.ID, p.id, store.LiveLeft, start.Add(40*time.Minute)))
			must(s.MarkLiveAudience(ctx, l.ID, p.id, store.LiveOrdered, start.Add(20*time.Minute)))
			sid := "st1"
			o := &store.Order{BrandID: b, OrderNo: "LIVE-" + b, MemberID: p.id, StoreID: &sid, Channel: "live", Currency: "CNY", Attribution: "live",
				PlacedAt: start.Add(20 * time.Minute), SettleDate: "2025-03-05", Items: []store.OrderItem{{SKU: "A", Qty: 1, PriceCents: 4200}}}
			_, err = s.RecordOrder(ctx, o, nil)
			must(err)
			must(s.RecordLiveOrder(ctx, &store.LiveOrder{OrderID: o.ID, SessionID: l.ID, MemberID: p.id, StoreID: "st1",
				GuideID: map[string]string{"acme": "ga", "zeta": "gz"}[b], TotalCents: o.TotalCents}))
		}
		must(s.MarkLiveAudience(ctx, sessions["acme"].ID, wu.ID, store.LiveJoined, start.Add(time.Minute)))
		funnels := func() string {
			t.Helper()
			var out []string
			for _, b := range []string{"acme", "zeta"} {
				f, err := s.LiveFunnel(ctx, sessions[b].ID)
				must(err)
				out = append(out, fmt.Sprintf("%s:%+v", b, f))
			}
			return strings.Join(out, " ")
		}
		wantFunnels := "acme:[{StoreID:st1 Invited:2 Joined:2 Bought:1 Orders:1 SalesCents:4200}] " +
			"zeta:[{StoreID:st1 Invited:1 Joined:1 Bought:1 Orders:1 SalesCents:4200}]"
		if got := funnels(); got != wantFunnels {
			t.Fatalf("funnels before:\n got %s\nwant %s", got, wantFunnels)
		}

		live := func(x *store.MemberExport) string {
			var out []string
			for _, l := range x.Live {
				var os []string
				for _, o := range l.Orders {
					os = append(os, fmt.Sprintf("%s/%s/%s/%d", o.OrderID, o.StoreID, o.GuideID, o.TotalCents))
				}
				out = append(out, fmt.Sprintf("%s %s %q %s/%s invited=%v joined=%v left=%v ordered=%v orders=%v", l.Brand, l.Session, l.Title,
					l.StoreID, l.GuideID, l.InvitedAt.Equal(t0), l.JoinedAt.Equal(start.Add(3*time.Minute)), l.LeftAt.Equal(start.Add(40*time.Minute)),
					l.OrderedAt.Equal(start.Add(20*time.Minute)), os))
			}
			return strings.Join(out, "\n")
		}
		exported := func(brand string) string {
			t.Helper()
			x, err := s.ExportMember(ctx, p.id, brand)
			must(err)
			return live(x)
		}
		acmeLine := `acme acme-live "acme spring live" st1/ga invited=true joined=true left=true ordered=true orders=[LIVE-acme/st1/ga/4200]`
		zetaLine := `zeta zeta-live "zeta spring live" st1/gz invited=true joined=true left=true ordered=true orders=[LIVE-zeta/st1/gz/4200]`
		for _, c := range []struct{ brand, want string }{{"acme", acmeLine}, {"zeta", zetaLine}, {"", acmeLine + "\n" + zetaLine}} {
			if got := exported(c.brand); got != c.want {
				t.Errorf("export for %q, live:\n got %s\nwant %s", c.brand, got, c.want)
			}
		}
		if x, err := s.ExportMember(ctx, p.id, "zeta"); err != nil || len(x.Stats) != 1 || x.Stats[0].BrandID != "zeta" || x.Stats[0].Orders != 1 ||
			x.Stats[0].SpentCents != 4200 {
			t.Errorf("zeta's export, purchase figures: %+v, %v; want zeta's only", x.Stats, err)
		}
		if x, err := s.ExportMember(ctx, wu.ID, "acme"); err != nil || len(x.Live) != 1 || len(x.Live[0].Orders) != 0 || x.Live[0].JoinedAt == nil {
			t.Errorf("Wu's export: %+v, %v", x, err)
		}

		e, err := s.EraseMember(ctx, p.id, "acme", "acme-token")
		must(err)
		if e.Removed["live_audiences"] != 1 {
			t.Errorf("acme's erasure removed %v, want live_audiences 1", e.Removed)
		}
		if got := exported("zeta"); got != zetaLine {
			t.Errorf("zeta's export after acme's erasure:\n got %s\nwant %s", got, zetaLine)
		}
		if _, err := s.LiveAudienceMember(ctx, sessions["acme"].ID, p.id); err == nil {
			t.Error("acme's audience row still names the person")
		}
		if a, err := s.LiveAudienceMember(ctx, sessions["zeta"].ID, p.id); err != nil || a.JoinedAt == nil || !a.JoinedAt.Equal(start.Add(3*time.Minute)) {
			t.Errorf("zeta's audience row after acme's erasure: %+v, %v", a, err)
		}
		if a, err := s.LiveAudienceMember(ctx, sessions["acme"].ID, wu.ID); err != nil || a.JoinedAt == nil || !a.JoinedAt.Equal(start.Add(time.Minute)) {
			t.Errorf("Wu's audience row after Chen's erasure: %+v, %v", a, err)
		}
		anon := anonymousAudience(t, s, sessions["acme"].ID, wu.ID)
		if len(anon) != 1 || anon[0].MemberID >= 0 || anon[0].StoreID != "st1" || anon[0].GuideID != "ga" ||
			!anon[0].InvitedAt.Equal(start) || !anon[0].JoinedAt.Equal(start) || !anon[0].LeftAt.Equal(start) || !anon[0].OrderedAt.Equal(start) {
			t.Errorf("acme's session's other rows: %+v; want one, unlinked, every time at the session's start", anon)
		}
		if got := funnels(); got != wantFunnels {
			t.Errorf("funnels after acme's erasure:\n got %s\nwant %s", got, wantFunnels)
		}
		again, err := s.EraseMember(ctx, p.id, "acme", "acme-token")
		must(err)
		if again.Removed["live_audiences"] != 1 {
			t.Errorf("the second erasure answers %v", again.Removed)
		}
		if n := len(anonymousAudience(t, s, sessions["acme"].ID, wu.ID)); n != 1 {
			t.Errorf("%d unlinked rows after a second erasure, want 1", n)
		}

		all, err := s.EraseMember(ctx, p.id, "", "admin")
		must(err)
		if all.Removed["live_audiences"] != 1 {
			t.Errorf("the admin's erasure removed %v, want live_audiences 1 (zeta's)", all.Removed)
		}
		if n, err := store.Rows(s, "live_audiences", p.id); err != nil || n != 0 {
			t.Errorf("%d audience rows name the erased person (%v)", n, err)
		}
		if n, err := store.Rows(s, "live_orders", p.id); err != nil || n != 2 {
			t.Errorf("%d live orders of the erased person (%v), want both kept", n, err)
		}
		if got := funnels(); got != wantFunnels {
			t.Errorf("funnels after the admin's erasure:\n got %s\nwant %s", got, wantFunnels)
		}
	})
}

// anonymousAudience returns a session's audience rows other than
// member's, by the funnel's only reader of them (store ids and times).
func anonymousAudience(t *testing.T, s *store.Store, session, member int64) []store.LiveAudience {
	t.Helper()
	rows, err := store.LiveAudienceRows(s, session)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(rows, func(a store.LiveAudience) bool { return a.MemberID == member })
}

// TestMergeMovesLiveSessions: a member merged into another takes their
// live audience rows and counted orders along (the survivor's row wins in
// a session both were in), so the survivor's export shows them.
func TestMergeMovesLiveSessions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		seedBrands(t, s, "acme")
		must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "st1", Name: "S1", Lat: 31.2, Lng: 121.4, BrandIDs: []string{"acme"}, Active: true}))
		into, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: "acme"})
		must(err)
		from, _, err := s.EnsureMember(ctx, store.NewMember{Name: "Chen", BrandID: "acme", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmChen"}}})
		must(err)
		start := t0.Add(48 * time.Hour)
		var ls []*store.LiveSession
		for _, k := range []string{"both", "from-only"} {
			l := &store.LiveSession{Key: k, BrandID: "acme", Title: k, URL: "https://live.example.com/" + k, StartsAt: start, EndsAt: start.Add(time.Hour)}
			_, err := s.CreateLiveSession(ctx, l)
			must(err)
			ls = append(ls, l)
		}
		for _, a := range []store.LiveAudience{{SessionID: ls[0].ID, MemberID: into.ID, BrandID: "acme"}, {SessionID: ls[0].ID, MemberID: from.ID, BrandID: "acme"},
			{SessionID: ls[1].ID, MemberID: from.ID, BrandID: "acme"}} {
			_, err := s.EnsureLiveAudience(ctx, &a)
			must(err)
		}
		must(s.MarkLiveAudience(ctx, ls[1].ID, from.ID, store.LiveJoined, start))
		o := &store.Order{BrandID: "acme", OrderNo: "LIVE-1", MemberID: from.ID, Channel: "live", Currency: "CNY", Attribution: "live",
			PlacedAt: start, SettleDate: "2025-03-05", Items: []store.OrderItem{{SKU: "A", Qty: 1, PriceCents: 990}}}
		_, err = s.RecordOrder(ctx, o, nil)
		must(err)
		must(s.RecordLiveOrder(ctx, &store.LiveOrder{OrderID: o.ID, SessionID: ls[1].ID, MemberID: from.ID, TotalCents: 990}))
		_, err = s.MergeMembers(ctx, from.ID, into.ID, "admin")
		must(err)
		x, err := s.ExportMember(ctx, into.ID, "acme")
		must(err)
		var got []string
		for _, l := range x.Live {
			got = append(got, fmt.Sprintf("%s joined=%v orders=%d", l.Session, l.JoinedAt != nil, len(l.Orders)))
		}
		if want := "[both joined=false orders=0 from-only joined=true orders=1]"; fmt.Sprint(got) != want {
			t.Errorf("the survivor's live sessions: %v, want %s", got, want)
		}
		if n, err := store.Rows(s, "live_audiences", from.ID); err != nil || n != 0 {
			t.Errorf("%d audience rows left with the merged member (%v)", n, err)
		}
	})
}

// TestCustomerGroupsInExportAndErasure: the two-brand person is in a
// customer group of acme and one of zeta (the same WeCom contact), with
// the name each group shows. Each brand's export lists its own group
// only; acme's erasure unlinks her row of acme's group (random id, no
// name, no member, left) and leaves zeta's and another member's alone;
// the admin's erasure unlinks zeta's too.
func TestCustomerGroupsInExportAndErasure(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := seedTwoBrandPerson(t, s)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		wu, _, err := s.EnsureMember(ctx, store.NewMember{Name: "Wu", BrandID: "acme", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-wu-0001"}}})
		must(err)
		for _, g := range []struct{ brand, chat, guide, name string }{{"acme", "wr-acme", "ga", "Chen Acme group"}, {"zeta", "wr-zeta", "gz", "Chen Zeta group"}} {
			members := []store.CustomerGroupMember{{UserID: g.guide + "-user", Guide: true, Name: "guide " + g.guide, JoinedAt: t0},
				{UserID: "wm-acme-chen", MemberID: &p.id, Name: g.name, JoinedAt: t0.Add(time.Minute)}}
			if g.brand == "acme" {
				members = append(members, store.CustomerGroupMember{UserID: "wm-wu-0001", MemberID: &wu.ID, Name: "Wu in group", JoinedAt: t0})
			}
			_, err := s.SaveCustomerGroup(ctx, &store.CustomerGroup{Channel: "wecom", ChatID: g.chat, BrandID: g.brand, Name: g.brand + " VIP",
				OwnerID: g.guide + "-user", GuideID: g.guide, StoreID: "st1", CreatedAt: t0}, members, t0)
			must(err)
		}
		groups := func(brand string) string {
			t.Helper()
			x, err := s.ExportMember(ctx, p.id, brand)
			must(err)
			var out []string
			for _, g := range x.Groups {
				out = append(out, fmt.Sprintf("%s/%s %s %q %s %q left=%v", g.Channel, g.ChatID, g.Brand, g.Group, g.UserID, g.Name, g.LeftAt != nil))
			}
			return strings.Join(out, "; ")
		}
		acmeRow := `wecom/wr-acme acme "acme VIP" wm-acme-chen "Chen Acme group" left=false`
		zetaRow := `wecom/wr-zeta zeta "zeta VIP" wm-acme-chen "Chen Zeta group" left=false`
		for _, c := range []struct{ brand, want string }{{"acme", acmeRow}, {"zeta", zetaRow}, {"", acmeRow + "; " + zetaRow}} {
			if got := groups(c.brand); got != c.want {
				t.Errorf("export for %q, groups:\n got %s\nwant %s", c.brand, got, c.want)
			}
		}
		present := func(chat string) string {
			t.Helper()
			ms, err := s.CustomerGroupMembers(ctx, "wecom", chat)
			must(err)
			var out []string
			for _, m := range ms {
				out = append(out, m.UserID+":"+m.Name)
			}
			return strings.Join(out, ",")
		}

		e, err := s.EraseMember(ctx, p.id, "acme", "acme-token")
		must(err)
		if e.Removed["customer_group_members"] != 1 {
			t.Errorf("acme's erasure removed %v, want customer_group_members 1", e.Removed)
		}
		if got := present("wr-acme"); got != "ga-user:guide ga,wm-wu-0001:Wu in group" {
			t.Errorf("acme's group after acme's erasure: %s", got)
		}
		if got := present("wr-zeta"); got != "gz-user:guide gz,wm-acme-chen:Chen Zeta group" {
			t.Errorf("zeta's group after acme's erasure: %s", got)
		}
		if got := groups("zeta"); got != zetaRow {
			t.Errorf("zeta's export after acme's erasure: %s", got)
		}
		if left := traces(t, s, []string{"Chen Acme group"}, nil); len(left) > 0 {
			t.Errorf("acme's group name of her left: %v", left)
		}
		stats, err := s.CustomerGroupStats(ctx, "wecom", "wr-acme", t0)
		must(err)
		if stats.Members != 2 || stats.Joins != 3 || stats.Leaves != 1 {
			t.Errorf("acme's group stats after the erasure: %+v; want 2 present, 3 joins, 1 leave", stats)
		}

		_, err = s.EraseMember(ctx, p.id, "", "admin")
		must(err)
		if got := present("wr-zeta"); got != "gz-user:guide gz" {
			t.Errorf("zeta's group after the admin's erasure: %s", got)
		}
		if left := traces(t, s, []string{"Chen Zeta group", "wm-acme-chen"}, nil); len(left) > 0 {
			t.Errorf("her group rows left: %v", left)
		}
	})
}

// The moment tasks whose posts a member could see are in the brand's
// export; the brand's erasure unlinks the member's id from them and
// keeps the task's reach.
func TestMomentTasksInExportAndErasure(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := seedTwoBrandPerson(t, s)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		tasks := map[string]*store.MomentTask{}
		for _, b := range []string{"acme", "zeta"} {
			mt := &store.MomentTask{Key: "moment-" + b, Channel: "wecom", BrandID: b, Kind: "text", Text: "new season at " + b, State: store.MomentCreated}
			_, err := s.CreateMomentTask(ctx, mt)
			must(err)
			tasks[b] = mt
		}
		must(s.SaveMomentCustomers(ctx, tasks["acme"].ID, "ga-user", []string{"wm-acme-chen", "wm-someone-else"}))
		must(s.SaveMomentCustomers(ctx, tasks["zeta"].ID, "gz-user", []string{"wm-zeta-friend"}))
		moments := func(brand string) string {
			t.Helper()
			x, err := s.ExportMember(ctx, p.id, brand)
			must(err)
			var out []string
			for _, m := range x.Moments {
				out = append(out, fmt.Sprintf("%s %s %q %s %s", m.Channel, m.Brand, m.Text, m.Guide, m.ExternalID))
			}
			return strings.Join(out, "; ")
		}
		acmeRow := `wecom acme "new season at acme" ga-user wm-acme-chen`
		for _, c := range []struct{ brand, want string }{{"acme", acmeRow}, {"zeta", ""}, {"", acmeRow}} {
			if got := moments(c.brand); got != c.want {
				t.Errorf("export for %q, moments:\n got %s\nwant %s", c.brand, got, c.want)
			}
		}

		e, err := s.EraseMember(ctx, p.id, "acme", "acme-token")
		must(err)
		if e.Removed["moment_task_customers"] != 1 {
			t.Errorf("acme's erasure removed %v, want moment_task_customers 1", e.Removed)
		}
		if n, err := s.CountMomentCustomers(ctx, tasks["acme"].ID); err != nil || n["ga-user"] != 2 {
			t.Errorf("acme's task reach after the erasure: %v, %v; want ga-user 2", n, err)
		}
		if left := traces(t, s, []string{"wm-acme-chen"}, nil); len(left) > 0 {
			t.Errorf("her WeCom id left: %v", left)
		}
		cs, err := s.MomentCustomers(ctx, tasks["zeta"], 10)
		if err != nil || len(cs) != 1 || cs[0].ExternalID != "wm-zeta-friend" {
			t.Errorf("zeta's task after acme's erasure: %+v, %v", cs, err)
		}
	})
}
