package console_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/store"
)

var guideRowRE = regexp.MustCompile(`(?s)<tr data-guide="([^"]+)">(.*?)</tr>`)

// guideRows reads the guides table: guide id → its cells' text.
func guideRows(page string) (order []string, cells map[string]string) {
	cells = map[string]string{}
	tags := regexp.MustCompile(`<[^>]+>`)
	for _, m := range guideRowRE.FindAllStringSubmatch(page, -1) {
		order = append(order, m[1])
		cells[m[1]] = strings.Join(strings.Fields(htmlUnescape(tags.ReplaceAllString(m[2], " "))), " ")
	}
	return order, cells
}

// A store manager with a brand token finds the guides' overdue tasks:
// the guides sorted by overdue tasks, filtered by store, with their load,
// members bound and points this month; another brand's are not there.
func TestConsoleGuides(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{})
	r.seedStores()
	r.put("camellia", "win-back", "dormant-win-back.yaml", true)
	r.throughWinBack("camellia", "win-back", "g-wang", "sh-jingan", "", true)
	r.throughWinBack("camellia", "win-back", "g-wang", "sh-jingan", "", false)
	r.throughWinBack("camellia", "win-back", "g-zhao", "sh-xujiahui", "", false)
	r.seedGuideWork()

	c := r.english()
	r.signIn(c, r.brandToken("camellia"))
	page := r.get(c, "/console/guides")
	order, cells := guideRows(page)
	if strings.Join(order, ",") != "g-zhao,g-li,g-wang,g-chen" {
		t.Errorf("guides by overdue tasks: %v, want g-zhao (2 overdue), g-li (1), g-wang (1 open), g-chen", order)
	}
	for id, want := range map[string]string{
		"g-zhao": "Zhao Min g-zhao Xujiahui Mall 4% 1 / 25 2 2 240 #2 Members",
		"g-wang": "Wang Fang g-wang Jing'an Flagship 5% 2 / 40 1 0 320 #1 Members",
		"g-li":   "Li Na g-li Jing'an Flagship 0% 0 / 30 2 1 180 #3 Members",
	} {
		if cells[id] != want {
			t.Errorf("guide %s: %q, want %q", id, cells[id], want)
		}
	}
	if strings.Contains(page, "g-peony") || strings.Contains(page, "Peony secret task") {
		t.Error("camellia's guides page shows peony's guide or task")
	}
	// The overdue tasks, the longest overdue first.
	overdue := regexp.MustCompile(`(?s)<table class="table" id="overdue-tasks">.*?</table>`).FindString(page)
	i1, i2, i3 := strings.Index(overdue, "Liu Yang"), strings.Index(overdue, "Ma Jun"), strings.Index(overdue, "Gao Lin")
	if i1 < 0 || i2 < i1 || i3 < i2 || strings.Contains(overdue, "He Ping") || strings.Contains(overdue, "Xu Mei") || !strings.Contains(overdue, "2 d") {
		t.Errorf("overdue tasks:\n%s", overdue)
	}

	// One store's guides, sorted by points.
	order, _ = guideRows(r.get(c, "/console/guides?store=sh-jingan&sort=points"))
	if strings.Join(order, ",") != "g-wang,g-li" {
		t.Errorf("sh-jingan's guides by points: %v", order)
	}
	if page := r.get(c, "/console/guides?store=sh-jingan"); strings.Contains(page, "Liu Yang") || !strings.Contains(page, "Ma Jun") {
		t.Error("sh-jingan's overdue tasks include another store's or lack its own")
	}
	for _, p := range []string{"/console/guides?brand=peony", "/console/guides?store=bj-sanlitun"} {
		if code := mustGet(t, c, r.srv.URL+p).StatusCode; code != http.StatusNotFound {
			t.Errorf("camellia opening %s: %d, want 404", p, code)
		}
	}

	// The admin picks the brand.
	a := r.english()
	r.signIn(a, adminToken)
	if order, _ := guideRows(r.get(a, "/console/guides?brand=peony")); strings.Join(order, ",") != "g-peony" {
		t.Errorf("the admin's peony guides: %v", order)
	}
}

// A brand of more guides than a page (250 more in Xujiahui, whose ids sort
// last): the guides page sorts all of them in the database, 100 a page, so
// the most overdue guide leads though its id is the brand's highest; the
// totals are those of all the guides; the next and previous links keep
// the sort and the store, and paging visits every guide once.
func TestConsoleManyGuides(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) { testManyGuides(t, dialect) })
	}
}

func testManyGuides(t *testing.T, dialect string) {
	r := newRig(t, dialect, console.Config{})
	r.seedStores()
	ctx := context.Background()
	for i := 1; i <= 250; i++ {
		g := store.Guide{ID: fmt.Sprintf("zz-%03d", i), StoreID: "sh-xujiahui", Name: fmt.Sprintf("Guide %03d", i), Capacity: 10, Active: true}
		if err := r.store.CreateGuide(ctx, &g); err != nil {
			t.Fatal(err)
		}
	}
	r.seedGuideWork()
	now := r.clock()
	for i := range 3 {
		m, _, err := r.store.EnsureMember(ctx, store.NewMember{BrandID: "camellia", Name: fmt.Sprintf("Late %d", i),
			Identities: []store.Identity{{Channel: "wecom", ExternalID: fmt.Sprintf("wm-late-%d", i)}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.store.CreateGuideTask(ctx, &store.GuideTask{MemberID: m.ID, GuideID: "zz-250", BrandID: "camellia",
			Title: fmt.Sprintf("Late task %d", i), DueAt: now.Add(-3 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := r.store.Guides(ctx, "camellia", "", store.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}

	c := r.english()
	r.signIn(c, r.brandToken("camellia"))
	nextRE := regexp.MustCompile(`href="([^"]+)" id="next-guides"`)
	prevRE := regexp.MustCompile(`href="([^"]+)" id="prev-guides"`)
	page := r.get(c, "/console/guides")
	order, cells := guideRows(page)
	if len(order) != 100 || strings.Join(order[:3], ",") != "zz-250,g-zhao,g-li" {
		t.Fatalf("first page: %d guides from %v, want 100 from zz-250 (3 overdue), g-zhao (2), g-li (1)", len(order), order[:min(3, len(order))])
	}
	if cells["zz-250"] != "Guide 250 zz-250 Xujiahui Mall 0% 0 / 10 3 3 0 Members" {
		t.Errorf("zz-250: %q", cells["zz-250"])
	}
	for _, want := range []string{
		fmt.Sprintf(`id="t-guides">%d<`, len(all)), `id="t-open">8<`, `id="t-overdue">6<`,
		fmt.Sprintf("Guides 1–100 of %d", len(all)), "Late task 2",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the first page lacks %q", want)
		}
	}
	if prevRE.MatchString(page) {
		t.Error("the first page links a previous page")
	}

	// Xujiahui's guides by name, page by page.
	first := r.get(c, "/console/guides?store=sh-xujiahui&sort=name")
	seen := map[string]int{}
	pages, cur := 0, first
	var second string
	for {
		pages++
		order, _ := guideRows(cur)
		for _, id := range order {
			seen[id]++
		}
		if pages == 1 && (len(order) != 100 || order[0] != "zz-001") {
			t.Errorf("Xujiahui by name: %d from %v, want 100 from zz-001 (Guide 001)", len(order), order[:min(1, len(order))])
		}
		next := nextRE.FindStringSubmatch(cur)
		if next == nil {
			break
		}
		u := htmlUnescape(next[1])
		if !strings.Contains(u, "sort=name") || !strings.Contains(u, "store=sh-xujiahui") || !strings.Contains(u, fmt.Sprintf("page=%d", pages+1)) {
			t.Fatalf("next link %q does not keep the sort and store", u)
		}
		cur = r.get(c, u)
		if pages == 1 {
			second = cur
		}
		if pages > 5 {
			t.Fatal("more than 5 pages")
		}
	}
	// 250 guides and g-zhao (Zhao Min) in Xujiahui: 3 pages.
	if pages != 3 || len(seen) != 251 || seen["g-zhao"] != 1 || seen["zz-250"] != 1 {
		t.Errorf("%d pages of %d guides, want 3 of 251", pages, len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s on %d pages", id, n)
		}
	}
	if !strings.Contains(cur, "Guides 201–251 of 251") {
		t.Error("the last page does not say it shows guides 201-251 of 251")
	}
	prev := prevRE.FindStringSubmatch(second)
	if prev == nil {
		t.Fatal("the second page has no previous link")
	}
	back, _ := guideRows(r.get(c, htmlUnescape(prev[1])))
	firstOrder, _ := guideRows(first)
	if strings.Join(back, ",") != strings.Join(firstOrder, ",") {
		t.Error("the previous page of the second is not the first")
	}
	// The admin's links keep the brand.
	a := r.english()
	r.signIn(a, adminToken)
	if next := nextRE.FindStringSubmatch(r.get(a, "/console/guides?brand=camellia&sort=load")); next == nil ||
		!strings.Contains(htmlUnescape(next[1]), "brand=camellia") || !strings.Contains(htmlUnescape(next[1]), "sort=load") {
		t.Errorf("the admin's next link %v does not keep the brand and sort", next)
	}
}
