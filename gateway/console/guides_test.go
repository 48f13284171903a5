package console_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/gateway/console"
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
