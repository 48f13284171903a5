package console_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/gateway/console"
)

// The stores page: the brand's stores on the map with their guides,
// capacity and load; the nearest-store probe in order with distances;
// the QR codes of a store and its guides; another brand's are 404.
func TestConsoleStores(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{})
	r.seedStores()
	r.put("camellia", "win-back", "dormant-win-back.yaml", true)
	r.throughWinBack("camellia", "win-back", "g-wang", "sh-jingan", "", false)
	r.throughWinBack("camellia", "win-back", "g-zhao", "sh-xujiahui", "", false)

	c := r.english()
	r.signIn(c, r.brandToken("camellia"))
	page := r.get(c, "/console/stores")
	if n := strings.Count(page, `<circle class="map-store"`); n != 3 {
		t.Errorf("the map has %d stores, want camellia's 3", n)
	}
	if strings.Contains(page, "bj-sanlitun") || strings.Contains(page, "Peony") {
		t.Error("camellia's stores page shows peony's store")
	}
	rows := regexp.MustCompile(`(?s)<tr data-store="sh-jingan">(.*?)</tr>`).FindStringSubmatch(page)
	if rows == nil {
		t.Fatal("no row of sh-jingan")
	}
	cells := strings.Join(strings.Fields(htmlUnescape(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(rows[1], " "))), " ")
	if want := "Jing'an Flagship sh-jingan 1601 Nanjing Rd W, Shanghai 2 1% 1 / 70 QR codes"; cells != want {
		t.Errorf("sh-jingan's row %q, want %q", cells, want)
	}
	// Points are placed by their coordinates: Hangzhou is south-west of
	// Shanghai, Xujiahui south of Jing'an.
	pos := map[string][2]float64{}
	for _, m := range regexp.MustCompile(`lat=([0-9.]+)&amp;lng=([0-9.]+)#probe" aria-label="[^"]*"><circle class="map-store" cx="([0-9.]+)" cy="([0-9.]+)"`).FindAllStringSubmatch(page, -1) {
		pos[m[1]] = [2]float64{atof(m[3]), atof(m[4])}
	}
	jingan, xujiahui, westlake := pos["31.2286"], pos["31.1951"], pos["30.2592"]
	if !(westlake[0] < jingan[0] && westlake[1] > jingan[1] && xujiahui[1] > jingan[1]) {
		t.Errorf("map positions: %v", pos)
	}

	// The probe: a point in Xujiahui finds Xujiahui, then Jing'an, then
	// Hangzhou, with their distances.
	page = r.get(c, "/console/stores?lat=31.19&lng=121.44")
	hits := regexp.MustCompile(`<li data-store="([^"]+)">.*?<span class="hit-dist">([^<]+)</span>`).FindAllStringSubmatch(page, -1)
	var got []string
	for _, h := range hits {
		got = append(got, h[1]+" "+h[2])
	}
	if strings.Join(got, ", ") != "sh-xujiahui 615 m, sh-jingan 4.3 km, hz-westlake 160 km" {
		t.Errorf("nearest stores: %v", got)
	}
	if !strings.Contains(page, `class="map-probe"`) || strings.Count(page, `class="map-ray"`) != 3 {
		t.Error("the map does not show the probed point and its rays")
	}
	// Each ray ends at a store's point.
	for _, m := range regexp.MustCompile(`class="map-ray" x1="[0-9.]+" y1="[0-9.]+" x2="([0-9.]+)" y2="([0-9.]+)"`).FindAllStringSubmatch(page, -1) {
		if !strings.Contains(page, `cx="`+m[1]+`" cy="`+m[2]+`"`) {
			t.Errorf("a ray ends at %s,%s, where no store is", m[1], m[2])
		}
	}
	resp, err := c.Get(r.srv.URL + "/console/stores?lat=north&lng=121")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Give a latitude") {
		t.Errorf("a bad point: %d", resp.StatusCode)
	}

	// The QR codes of sh-jingan: the store's and its two guides', with
	// images from the channel (this page's CSP allows https: images).
	resp, err = c.Get(r.srv.URL + "/console/stores/sh-jingan/qr")
	if err != nil {
		t.Fatal(err)
	}
	page = readAll(t, resp)
	if imgs := regexp.MustCompile(`<img src="([^"]+)"`).FindAllStringSubmatch(page, -1); len(imgs) != 3 || imgs[0][1] != "/test-qr/s-sh-jingan" {
		t.Errorf("QR images %v", imgs)
	}
	for _, want := range []string{"Li Na", "Wang Fang", "Guide at Jing&#39;an Flagship", `data-print`} {
		if !strings.Contains(page, want) {
			t.Errorf("the QR page lacks %s", want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https:;") || !strings.Contains(csp, "script-src 'self';") {
		t.Errorf("the QR page's CSP %q", csp)
	}
	if page := r.get(c, "/console/stores/sh-xujiahui/qr"); !strings.Contains(page, `id="qr-missing"`) || !strings.Contains(page, "Zhao Min") {
		t.Error("the QR page of a store without codes does not say which are missing")
	}
	for _, p := range []string{"/console/stores?brand=peony", "/console/stores/bj-sanlitun/qr"} {
		if code := mustGet(t, c, r.srv.URL+p).StatusCode; code != http.StatusNotFound {
			t.Errorf("camellia opening %s: %d, want 404", p, code)
		}
	}
}
