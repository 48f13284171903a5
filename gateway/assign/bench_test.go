package assign

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/geo"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkAssignBulk assigns members to guides of 200,000 synthetic
// stores over China (5 brands with overlapping store sets, 3 guides each
// with capacity 50) on PostgreSQL, database writes included. Sizes:
// SCRMGW_BENCH_STORES (default 200000) and SCRMGW_BENCH_MEMBERS (default
// 100000; the figure is 1000000). Each iteration assigns the
// members afresh. Run:
//
//	scripts/test.sh -run '^$' -bench AssignBulk -benchtime 1x ./cmd/scrmgw/internal/assign/
func BenchmarkAssignBulk(b *testing.B) {
	nStores, nMembers := envInt("SCRMGW_BENCH_STORES", 200000), envInt("SCRMGW_BENCH_MEMBERS", 100000)
	url := storetest.URL(b, "postgres")
	s, err := store.Open(context.Background(), store.Options{URL: url, PhoneKey: storetest.PhoneKey, MaxOpenConns: 16})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	db, err := gorm.Open(postgres.Open(url), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		b.Fatal(err)
	}
	setup := time.Now()
	for _, br := range geo.SyntheticBrands {
		must(b, db.Exec("INSERT INTO brands (id, name, created_at, updated_at) VALUES (?, ?, now(), now())", br, br).Error)
	}
	sites := geo.Synthetic(nStores, 1)
	stores := make([]store.RetailStore, len(sites))
	var links []store.StoreBrand
	var guides []store.Guide
	for i, st := range sites {
		stores[i] = store.RetailStore{ID: st.ID, Name: st.ID, Lat: st.Lat, Lng: st.Lng, TimeZone: "Asia/Shanghai", Active: st.Active}
		for _, br := range st.Brands {
			links = append(links, store.StoreBrand{StoreID: st.ID, BrandID: br})
		}
		for g := 0; g < 3; g++ {
			guides = append(guides, store.Guide{ID: fmt.Sprintf("%s-g%d", st.ID, g), StoreID: st.ID, Name: "g", Capacity: 50, Active: true})
		}
	}
	must(b, db.Omit("BrandIDs").CreateInBatches(stores, 2000).Error)
	must(b, db.Omit("Store", "Brand").CreateInBatches(links, 5000).Error)
	must(b, db.Omit("Store").CreateInBatches(guides, 3000).Error)
	must(b, db.Exec("INSERT INTO members (name, phone_tail, created_at, updated_at) SELECT 'm', '', now(), now() FROM generate_series(1, ?)", nMembers).Error)
	a, err := New(ctx, s, Options{MaxDistanceKm: 200, MaxStores: 50})
	if err != nil {
		b.Fatal(err)
	}
	qs := geo.SyntheticQueries(nMembers, 2)
	members := make([]Located, nMembers)
	for i, q := range qs {
		members[i] = Located{MemberID: int64(i + 1), Lat: q.Lat, Lng: q.Lng}
	}
	b.Logf("setup: %d stores, %d guides, %d members in %s", nStores, len(guides), nMembers, time.Since(setup).Round(time.Second))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		must(b, db.Exec("DELETE FROM bindings").Error)
		must(b, db.Exec("UPDATE guides SET bound_count = 0").Error)
		b.StartTimer()
		start := time.Now()
		res, err := a.AssignBulk(ctx, geo.SyntheticBrands[0], members, 4)
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		b.ReportMetric(float64(res.Assigned)/took.Seconds(), "members/s")
		b.ReportMetric(took.Seconds(), "s/run")
		b.Logf("assigned %d, unassigned %d of %d in %s", res.Assigned, len(res.Unassigned), nMembers, took.Round(time.Millisecond))
	}
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
