package console_test

import (
	"encoding/csv"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/gateway/console"
)

var tileRE = regexp.MustCompile(`id="t-([a-z]+)">(\d+)<`)

// tiles reads the funnel page's totals.
func tiles(t *testing.T, page string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range tileRE.FindAllStringSubmatch(page, -1) {
		out[m[1]] = m[2]
	}
	if len(out) != 5 {
		t.Fatalf("the funnel page has %d totals, want 5:\n%s", len(out), page)
	}
	return out
}

func TestConsoleFunnel(t *testing.T) {
	r := newRig(t, "postgres", console.Config{})
	r.seedStores()
	r.put("camellia", "win-back", "dormant-win-back.yaml", true)
	r.put("peony", "peony-back", "dormant-win-back.yaml", true)
	r.throughWinBack("camellia", "win-back", "g-wang", "sh-jingan", "", true)
	r.throughWinBack("camellia", "win-back", "g-wang", "sh-jingan", "", true)
	r.throughWinBack("camellia", "win-back", "g-li", "sh-jingan", "invalid_recipient", false)
	r.throughWinBack("camellia", "win-back", "g-zhao", "sh-xujiahui", "", false)
	r.throughWinBack("peony", "peony-back", "g-peony", "bj-sanlitun", "", true)

	c := r.english()
	r.signIn(c, r.brandToken("camellia"))
	page := r.get(c, "/console/funnel")
	want := map[string]string{"entered": "4", "sent": "3", "delivered": "3", "converted": "2", "failed": "1"}
	if got := tiles(t, page); !equalMaps(got, want) {
		t.Errorf("camellia's funnel %v, want %v", got, want)
	}
	for _, s := range []string{`<option value="camellia/win-back" selected>win-back</option>`, `invalid_recipient <strong>1</strong>`,
		`<svg xmlns="http://www.w3.org/2000/svg" class="chart"`, `data-step="win_back"`, `<option value="sh-jingan">Jing&#39;an Flagship</option>`} {
		if !strings.Contains(page, s) {
			t.Errorf("the funnel page lacks %s", s)
		}
	}
	if strings.Contains(page, "peony") {
		t.Error("camellia's funnel page names peony")
	}
	for _, f := range []struct {
		query string
		want  map[string]string
	}{
		{"?store=sh-xujiahui", map[string]string{"entered": "1", "sent": "1", "delivered": "1", "converted": "0", "failed": "0"}},
		{"?guide=g-wang", map[string]string{"entered": "2", "sent": "2", "delivered": "2", "converted": "2", "failed": "0"}},
		{"?store=sh-jingan&guide=g-li", map[string]string{"entered": "1", "sent": "0", "delivered": "0", "converted": "0", "failed": "1"}},
		// Days in China, the console's (in UTC the runs of an hour ago
		// may be on the day before).
		{"?from=" + r.clock().In(time.FixedZone("CST", 8*3600)).AddDate(0, 0, 1).Format("2006-01-02") +
			"&to=" + r.clock().In(time.FixedZone("CST", 8*3600)).AddDate(0, 0, 3).Format("2006-01-02"),
			map[string]string{"entered": "0", "sent": "0", "delivered": "0", "converted": "0", "failed": "0"}},
	} {
		if got := tiles(t, r.get(c, "/console/funnel"+strings.Replace(f.query, "?", "?workflow=camellia/win-back&", 1))); !equalMaps(got, f.want) {
			t.Errorf("funnel %s: %v, want %v", f.query, got, f.want)
		}
	}

	// The CSV: the same numbers.
	resp, err := c.Get(r.srv.URL + "/console/funnel.csv?workflow=camellia/win-back")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/csv; charset=utf-8" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), `attachment; filename="funnel-camellia-win-back-`) {
		t.Fatalf("CSV: %d %s %s", resp.StatusCode, ct, resp.Header.Get("Content-Disposition"))
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	today := r.clock().In(shanghai).Format("2006-01-02")
	from := r.clock().In(shanghai).AddDate(0, 0, -29).Format("2006-01-02")
	wantRows := map[string][]string{
		"workflow": {"camellia", "win-back", from, today, "", "", "", "workflow", "4", "3", "3", "2", "1", "invalid_recipient=1"},
		"win_back": {"camellia", "win-back", from, today, "", "", "win_back", "send", "4", "3", "3", "", "1", "invalid_recipient=1"},
	}
	if strings.Join(rows[0], ",") != "brand,workflow,from,to,store,guide,step,kind,entered,sent,delivered,converted,failed,failed_by_reason" {
		t.Errorf("CSV header %v", rows[0])
	}
	for _, row := range rows[1:] {
		key := row[6]
		if key == "" {
			key = row[7]
		}
		if w, ok := wantRows[key]; ok {
			if strings.Join(row, ",") != strings.Join(w, ",") {
				t.Errorf("CSV row %v, want %v", row, w)
			}
			delete(wantRows, key)
		}
	}
	if len(wantRows) > 0 {
		t.Errorf("CSV lacks rows %v:\n%s", wantRows, body)
	}

	// A bad filter says so; another brand's workflow is not found.
	resp, err = c.Get(r.srv.URL + "/console/funnel?workflow=camellia/win-back&from=yesterday&store=bj-sanlitun")
	if err != nil {
		t.Fatal(err)
	}
	body = htmlUnescape(readAll(t, resp))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `From: want a date such as 2026-12-01, got "yesterday".`) ||
		!strings.Contains(body, `There is no store "bj-sanlitun" of this brand.`) {
		t.Errorf("a bad filter: %d", resp.StatusCode)
	}
	for _, p := range []string{"/console/funnel?workflow=peony/peony-back", "/console/funnel.csv?workflow=peony/peony-back"} {
		if code := mustGet(t, c, r.srv.URL+p).StatusCode; code != http.StatusNotFound {
			t.Errorf("camellia opening %s: %d, want 404", p, code)
		}
	}
}

var shanghai = func() *time.Location {
	l, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return l
}()

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
