package console_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/store"
)

// A brand of more stores than a page lists (1,205 towns beside the three
// seeded stores): the stores page shows 200 a page with the load of
// their guides and a link to the rest, its probe finds a nearest store
// off the page; the funnel's store filter becomes a field to type an id
// in, suggesting the stores whose name contains what was typed, and its
// guide filter lists the chosen store's guides.
func TestConsoleManyStores(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) { testManyStores(t, dialect) })
	}
}

func testManyStores(t *testing.T, dialect string) {
	r := newRig(t, dialect, console.Config{})
	r.seedStores()
	ctx := context.Background()
	var towns []store.RetailStore
	var ids []string
	for i := 1; i <= 1205; i++ {
		id := fmt.Sprintf("t%04d", i)
		towns = append(towns, store.RetailStore{ID: id, Name: fmt.Sprintf("Town %d", i), Lat: 30 + float64(i)/1000, Lng: 110 + float64(i)/1000,
			TimeZone: "Asia/Shanghai", Active: true, BrandIDs: []string{"camellia"}})
		ids = append(ids, id)
	}
	if err := r.store.UpsertRetailStores(ctx, towns); err != nil {
		t.Fatal(err)
	}
	for _, g := range []store.Guide{
		{ID: "g-t1205-a", StoreID: "t1205", Name: "Far Away", Capacity: 10, Active: true},
		{ID: "g-t0012-a", StoreID: "t0012", Name: "Twelve A", Capacity: 7, Active: true},
		{ID: "g-t0012-b", StoreID: "t0012", Name: "Twelve B", Capacity: 8, Active: true},
		{ID: "g-t0012-c", StoreID: "t0012", Name: "Twelve gone", Capacity: 100, Active: false},
	} {
		if err := r.store.CreateGuide(ctx, &g); err != nil {
			t.Fatal(err)
		}
	}
	r.assigner.Refresh(ctx, ids...)
	r.put("camellia", "win-back", "dormant-win-back.yaml", true)
	r.throughWinBack("camellia", "win-back", "g-t0012-a", "t0012", "", true)
	r.throughWinBack("camellia", "win-back", "g-wang", "sh-jingan", "", false)

	c := r.english()
	r.signIn(c, r.brandToken("camellia"))
	rowRE := regexp.MustCompile(`<tr data-store="([^"]+)"`)
	nextRE := regexp.MustCompile(`href="([^"]+)" id="more-stores"`)

	// The stores, 200 a page.
	page := r.get(c, "/console/stores")
	rows := rowRE.FindAllStringSubmatch(page, -1)
	next := nextRE.FindStringSubmatch(page)
	if len(rows) != 200 || rows[0][1] != "hz-westlake" || rows[199][1] != "t0197" || next == nil {
		t.Fatalf("first page: %d rows, next %v", len(rows), next)
	}
	if !strings.Contains(page, "The map draws this page&#39;s stores.") {
		t.Error("the map's help does not say it draws the page's stores")
	}
	if row := rowsOf(settlementRE, page)["t0012"]; !strings.Contains(row, "/ 15") {
		t.Errorf("t0012's row %q: want its active guides' capacity 15", row)
	}
	// Following the next links visits every store once, to the last page
	// of 8 (1,208 stores), which links back to the first.
	seen := map[string]bool{}
	for _, row := range rows {
		seen[row[1]] = true
	}
	pages, last := 1, page
	for next != nil {
		last = r.get(c, htmlUnescape(next[1]))
		pages++
		rows = rowRE.FindAllStringSubmatch(last, -1)
		for _, row := range rows {
			if seen[row[1]] {
				t.Errorf("store %s on two pages", row[1])
			}
			seen[row[1]] = true
		}
		next = nextRE.FindStringSubmatch(last)
		if pages > 10 {
			t.Fatal("more than 10 pages")
		}
	}
	if pages != 7 || len(seen) != 1208 || len(rows) != 8 || rows[0][1] != "t1198" || rows[7][1] != "t1205" || !strings.Contains(last, "First page") {
		t.Errorf("%d pages of %d stores, the last of %d rows from %v", pages, len(seen), len(rows), rows[0])
	}
	if row := rowsOf(settlementRE, last)["t1205"]; !strings.Contains(row, "/ 10") {
		t.Errorf("t1205's row %q", row)
	}
	// A probe at t1205 on the first page finds it, though it is on the
	// second.
	probe := r.get(c, "/console/stores?lat=31.205&lng=111.205")
	hits := regexp.MustCompile(`<li data-store="([^"]+)">`).FindAllStringSubmatch(probe, -1)
	if len(hits) == 0 || hits[0][1] != "t1205" {
		t.Errorf("the probe at t1205 found %v", hits)
	}

	// The funnel: the store filter is a field past 1,000 stores.
	page = r.get(c, "/console/funnel?workflow=camellia/win-back")
	if !strings.Contains(page, `<input type="search" id="store" name="store" value=""`) || strings.Contains(page, `<select id="store"`) ||
		!strings.Contains(page, `<input type="search" id="guide" name="guide"`) {
		t.Fatal("the funnel's filters are not fields to type in")
	}
	if got := tiles(t, page); got["entered"] != "2" {
		t.Errorf("the funnel %v, want 2 entered", got)
	}
	// A name is not an id: the stores it names are suggested, 10 of them.
	page = r.get(c, "/console/funnel?workflow=camellia/win-back&store=town+12")
	matches := regexp.MustCompile(`<li><a href="([^"]+)">([^<]+)</a> <code>([^<]+)</code></li>`).FindAllStringSubmatch(page, -1)
	if !strings.Contains(page, `There is no store &#34;town 12&#34; of this brand.`) || len(matches) != 10 || matches[0][3] != "t0012" || matches[1][3] != "t0120" {
		t.Fatalf("suggestions for town 12: %v", matches)
	}
	page = r.get(c, htmlUnescape(matches[0][1]))
	if got := tiles(t, page); got["entered"] != "1" || got["converted"] != "1" || strings.Contains(page, `id="funnel-error"`) {
		t.Errorf("the funnel of t0012: %v", got)
	}
	if !strings.Contains(page, `<option value="g-t0012-a">Twelve A</option>`) || !strings.Contains(page, `<option value="g-t0012-c">Twelve gone</option>`) ||
		strings.Contains(page, "g-wang") {
		t.Error("the guide filter does not list t0012's guides (only)")
	}
	// Another brand's store is not suggested, nor its guides listed.
	page = r.get(c, "/console/funnel?workflow=camellia/win-back&store=bj-sanlitun")
	if !strings.Contains(page, `id="funnel-error"`) || strings.Contains(page, "g-peony") || strings.Contains(page, "Sanlitun") {
		t.Error("camellia's funnel accepts or shows peony's store")
	}
	page = r.get(c, "/console/funnel?workflow=camellia/win-back&guide=g-t0012-b")
	if got := tiles(t, page); got["entered"] != "0" || strings.Contains(page, `id="funnel-error"`) {
		t.Errorf("a typed guide: %v", got)
	}
	page = r.get(c, "/console/funnel?workflow=camellia/win-back&guide=g-peony")
	if !strings.Contains(page, `There is no guide &#34;g-peony&#34;`) {
		t.Error("camellia's funnel accepts peony's guide")
	}
}
