package importer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/gateway/commerce"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func seedBrands(t *testing.T, s *store.Store) {
	t.Helper()
	for _, b := range []string{"acme", "zeta"} {
		if err := s.CreateBrand(context.Background(), &store.Brand{ID: b, Name: b}); err != nil {
			t.Fatal(err)
		}
	}
}

const storesCSV = `id,name,brands,lat,lng,address,time_zone,active
sh-1,Shanghai,acme;zeta,31.23,121.47,Nanjing Rd,Asia/Shanghai,true
bj-1,Beijing,acme,39.9,116.4,,,yes
`

func TestImportStoresAndGuides(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s)
		var progress []string
		res, err := Import(ctx, s, KindStores, strings.NewReader(storesCSV), Options{Progress: func(d, n int) { progress = append(progress, fmt.Sprint(d, "/", n)) }})
		if err != nil || res.Written != 2 || len(res.Invalid) != 0 {
			t.Fatalf("import = %+v, %v", res, err)
		}
		if fmt.Sprint(progress) != "[2/2]" {
			t.Errorf("progress = %v", progress)
		}
		sh, err := s.RetailStore(ctx, "sh-1", "zeta")
		if err != nil || sh.Address != "Nanjing Rd" || !sh.Active {
			t.Errorf("sh-1 = %+v, %v", sh, err)
		}
		// Running it again with a change updates in place.
		again := strings.Replace(storesCSV, "Beijing", "Beijing Sanlitun", 1)
		if res, err := Import(ctx, s, KindStores, strings.NewReader(again), Options{}); err != nil || res.Written != 2 {
			t.Fatalf("re-import = %+v, %v", res, err)
		}
		if bj, _ := s.RetailStore(ctx, "bj-1", ""); bj.Name != "Beijing Sanlitun" {
			t.Errorf("bj-1 not updated: %q", bj.Name)
		}
		guides := "id,store_id,name,wecom_userid,capacity\ng1,sh-1,Li,li,300\ng2,bj-1,Wu,,\n"
		if res, err := Import(ctx, s, KindGuides, strings.NewReader(guides), Options{}); err != nil || res.Written != 2 {
			t.Fatalf("guides = %+v, %v", res, err)
		}
		if g, _ := s.GuideByChannelID(ctx, "wecom", "li"); g == nil || g.Capacity != 300 {
			t.Errorf("g1 = %+v", g)
		}
		// id:<channel> columns give ids on any channel instance; the
		// legacy columns are the default instances'; a row's ids replace
		// the guide's.
		guides = "id,store_id,name,dingtalk_userid,id:wecom:north,id:chirp\ng1,sh-1,Li,staff-li,north-li,c-li\ng2,bj-1,Wu,,,\n"
		if res, err := Import(ctx, s, KindGuides, strings.NewReader(guides), Options{}); err != nil || res.Written != 2 || len(res.Invalid) != 0 {
			t.Fatalf("guides with id: columns = %+v, %v", res, err)
		}
		g, err := s.Guide(ctx, "g1", "")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, id := range g.Identities {
			got = append(got, id.Channel+"="+id.ExternalID)
		}
		if strings.Join(got, ",") != "chirp=c-li,dingtalk=staff-li,wecom:north=north-li" {
			t.Errorf("g1 identities = %v", got)
		}
		// An id another guide has is refused with the row.
		res, err = Import(ctx, s, KindGuides, strings.NewReader("id,store_id,name,id:chirp\ng4,bj-1,Zhou,c-zhou\ng2,bj-1,Wu,c-li\n"), Options{SkipInvalid: true})
		if err != nil || res.Written != 1 || len(res.Invalid) != 1 || res.Invalid[0].Line != 3 || !strings.Contains(res.Invalid[0].Reason, `chirp id "c-li" is guide "g1"'s`) {
			t.Errorf("a taken id = %+v, %v", res, err)
		}
		// Two ids on one channel in a row.
		res, err = Import(ctx, s, KindGuides, strings.NewReader("id,store_id,name,wecom_userid,id:wecom\ng3,bj-1,Qian,q1,q2\n"), Options{})
		if err != nil || res.Written != 0 || len(res.Invalid) != 1 || !strings.Contains(res.Invalid[0].Reason, "one per channel") {
			t.Errorf("two ids on one channel = %+v, %v", res, err)
		}
	})
}

func TestImportReportsEveryBadRowAndWritesNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s)
		csv := `id,name,brands,lat,lng
ok-1,Good,acme,31,121
bad-1,Bad lat,acme,north,121
bad-2,Out of range,acme,95,121
,No id,acme,31,121
ok-1,Duplicate,acme,31,121
bad-3,Short row,acme
ghost-1,Unknown brand,ghost,31,121
ok-2,Good too,zeta,30,120
`
		res, err := Import(ctx, s, KindStores, strings.NewReader(csv), Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range res.Invalid {
			got = append(got, e.Error())
		}
		want := []string{
			`line 3: lat: want a number, got "north"`,
			"line 4: lat: 95 is out of range [-90, 90]",
			"line 5: id: is required",
			"line 6: duplicate of line 2",
			"line 7: has 3 fields, the header has 5",
			`line 8: unknown brand "ghost"`,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("invalid rows (-want +got):\n%s", diff)
		}
		if res.Written != 0 {
			t.Errorf("wrote %d rows despite bad ones", res.Written)
		}
		if _, err := s.RetailStore(ctx, "ok-1", ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ok-1 written without --skip-invalid: %v", err)
		}

		res, err = Import(ctx, s, KindStores, strings.NewReader(csv), Options{SkipInvalid: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Written != 2 || len(res.Invalid) != 6 || res.Invalid[5].Line != 8 || !strings.Contains(res.Invalid[5].Reason, `unknown brand "ghost"`) {
			t.Errorf("skip-invalid = written %d, invalid %v", res.Written, res.Invalid)
		}
		if _, err := s.RetailStore(ctx, "ok-2", ""); err != nil {
			t.Errorf("ok-2 not written: %v", err)
		}
	})
}

func TestImportMembers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s)
		csv := "phone,name,crm_id,level,points\n13800138000,Chen,C001,gold,1200\n+86 139 0013 9000,Wang,C002,,\n,Zhao,C003,silver,10\n138-0013-8000,Chen again,C004,,\n12345,Bad,C005,,\n"
		res, err := Import(ctx, s, KindMembers, strings.NewReader(csv), Options{Brand: "acme", SkipInvalid: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Written != 3 || len(res.Invalid) != 2 || res.Invalid[0].Line != 5 || res.Invalid[1].Line != 6 {
			t.Fatalf("members = written %d, invalid %v", res.Written, res.Invalid)
		}
		v, err := s.MemberByPhone(ctx, "13800138000", "acme")
		if err != nil || len(v.Memberships) != 1 || v.Memberships[0].Level != "gold" || v.Memberships[0].Points != 1200 {
			t.Fatalf("Chen = %+v, %v", v, err)
		}
		z, err := s.MemberByIdentity(ctx, "crm:acme", "C003")
		if err != nil || z.Name != "Zhao" {
			t.Errorf("member by CRM id = %+v, %v", z, err)
		}
	})
}

func TestImportHeaderErrors(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	for _, tc := range []struct{ kind, csv, want string }{
		{KindStores, "", "the file is empty"},
		{KindStores, "id,name,brands,lat,lng,colour\n", `unknown column "colour"`},
		{KindStores, "id,name,lat,lng\n", `required column "brands" is missing`},
		{KindGuides, "id,id,store_id,name\n", `column "id" appears twice`},
		{KindGuides, "id,store_id,name,id:\n", `column "id:" names no channel`},
		{KindStores, "id,name,brands,lat,lng,id:wecom\n", `unknown column "id:wecom"`},
		{KindMembers, "name\n", "needs a phone or a crm_id column"},
		{KindMembers, "phone\n", "give the brand with --brand"},
		{"refunds", "id\n", `unknown import kind "refunds"`},
		{KindOrders, "order_id,sku,qty,price\n", "needs a phone or a crm_id column"},
		{KindProducts, "sku,name,price\n", "give the brand with --brand"},
	} {
		_, err := Import(context.Background(), s, tc.kind, strings.NewReader(tc.csv), Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: err = %v, want %q", tc.kind, tc.csv, err, tc.want)
		}
	}
}

func TestImportProducts(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s)
		csv := "sku,name,category,price,replenish_days\nCL-100,洁面乳,skincare,129.00,30\nTN-200,爽肤水,toner,99.5,\nBAD,Bad price,x,12.345,1\nCL-100,dup,x,1,1\nNEG,Negative,x,1,-3\n"
		res, err := Import(ctx, s, KindProducts, strings.NewReader(csv), Options{Brand: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Written != 0 || len(res.Invalid) != 3 || res.Invalid[0].Line != 4 || res.Invalid[1].Line != 5 || res.Invalid[2].Line != 6 ||
			!strings.Contains(res.Invalid[0].Reason, "price") || !strings.Contains(res.Invalid[1].Reason, "duplicate of line 2") {
			t.Fatalf("bad rows = written %d, invalid %+v", res.Written, res.Invalid)
		}
		if ps, _ := s.Products(ctx, "acme", nil); len(ps) != 0 {
			t.Fatalf("a refused import wrote %d products", len(ps))
		}
		res, err = Import(ctx, s, KindProducts, strings.NewReader(csv), Options{Brand: "acme", SkipInvalid: true})
		if err != nil || res.Written != 2 {
			t.Fatalf("skip-invalid = %+v, %v", res, err)
		}
		ps, _ := s.Products(ctx, "acme", nil)
		if p := ps["CL-100"]; p.PriceCents != 12900 || p.ReplenishDays != 30 || p.Category != "skincare" || ps["TN-200"].PriceCents != 9950 {
			t.Errorf("products = %+v", ps)
		}
		res, err = Import(ctx, s, KindProducts, strings.NewReader("brand,sku,name,price\nnope,X,x,1\n"), Options{})
		if err != nil || len(res.Invalid) != 1 || !strings.Contains(res.Invalid[0].Reason, `unknown brand "nope"`) {
			t.Errorf("unknown brand = %+v, %v", res, err)
		}
	})
}

func TestImportOrders(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s)
		commerce := commerce.New(s, nil)
		opts := Options{Brand: "acme", Orders: commerce.ImportPurchase}
		csv := "order_id,phone,placed_at,sku,qty,price\n" +
			"SO-1,13800138000,2025-06-01T10:00:00+08:00,CL-100,2,129.00\n" +
			"SO-1,13800138000,2025-06-01T10:00:00+08:00,TN-200,1,99.5\n" +
			"SO-2,13900139000,2025-07-01T10:00:00+08:00,CL-100,0,129\n" +
			"SO-3,13700137000,2025-08-01T10:00:00+08:00,CL-100,1,129\n" +
			"SO-3,13600136000,2025-08-01T10:00:00+08:00,TN-200,1,99\n"
		res, err := Import(ctx, s, KindOrders, strings.NewReader(csv), opts)
		if err != nil {
			t.Fatal(err)
		}
		if res.Written != 0 || len(res.Invalid) != 2 || res.Invalid[0].Line != 4 || !strings.Contains(res.Invalid[0].Reason, "qty") ||
			res.Invalid[1].Line != 6 || !strings.Contains(res.Invalid[1].Reason, "differ from line 5") {
			t.Fatalf("bad rows = written %d, invalid %+v", res.Written, res.Invalid)
		}
		if _, err := s.OrderByNo(ctx, "acme", "SO-1"); err == nil {
			t.Fatal("a refused import wrote an order")
		}
		opts.SkipInvalid = true
		for i := 0; i < 2; i++ { // a second run writes nothing new
			res, err = Import(ctx, s, KindOrders, strings.NewReader(csv), opts)
			if err != nil || res.Written != 1-i {
				t.Fatalf("run %d: %+v, %v", i, res, err)
			}
		}
		o, err := s.OrderByNo(ctx, "acme", "SO-1")
		if err != nil || o.TotalCents != 35750 || len(o.Items) != 2 || o.SettleDate != "" || !o.PlacedAt.Equal(time.Date(2025, 6, 1, 2, 0, 0, 0, time.UTC)) {
			t.Fatalf("SO-1 = %+v, %v", o, err)
		}
		if ls, _ := s.CommissionLines(ctx, o.ID); len(ls) != 0 {
			t.Errorf("imported history earned commission: %+v", ls)
		}
		m, _ := s.MemberByPhone(ctx, "13800138000", "acme")
		if st, _ := s.Stats(ctx, m.ID, "acme"); st.Orders != 1 || st.SpentCents != 35750 {
			t.Errorf("member stats = %+v", st)
		}
		if evs, _ := s.Events(ctx, store.EventFilter{MemberID: m.ID, Type: "purchase.completed"}); len(evs) != 1 {
			t.Errorf("purchase events = %d, want 1", len(evs))
		}
	})
}
