package storepage_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/assign"
	"github.com/scrmgw/scrmgw/gateway/membercode"
	"github.com/scrmgw/scrmgw/gateway/storepage"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// shanghai2pm is a Monday 14:00 in Shanghai: 10:00-22:00 is open,
// 07:00-09:30 closed.
var shanghai2pm = time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)

// qrBase is where the seeded contact ways' QR images are; the browser
// test serves them itself.
type seedOpts struct{ qrBase string }

// seed makes brand camellia (山茶花) with five Shanghai stores around
// Jing'an and one in Beijing, guides with and without QR codes, an
// inactive store, and a store of another brand next door.
func seed(t *testing.T, s *store.Store, o seedOpts) {
	t.Helper()
	ctx := context.Background()
	if o.qrBase == "" {
		o.qrBase = "https://wework.qpic.cn/wwpic"
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateBrand(ctx, &store.Brand{ID: "camellia", Name: "山茶花"}))
	must(s.CreateBrand(ctx, &store.Brand{ID: "zeta", Name: "Zeta"}))
	for _, rs := range []store.RetailStore{
		{ID: "ja", Name: "静安嘉里中心店", Address: "上海市静安区南京西路1515号B1-12", OpeningHours: "10:00-22:00", Lat: 31.2243, Lng: 121.4462},
		{ID: "xtd", Name: "新天地店", Address: "上海市黄浦区马当路245号", OpeningHours: "10:00-22:00", Lat: 31.2190, Lng: 121.4750},
		{ID: "ljz", Name: "陆家嘴正大广场店", Address: "上海市浦东新区陆家嘴西路168号L3", OpeningHours: "10:00 - 22:00", Lat: 31.2366, Lng: 121.5010},
		{ID: "xjh", Name: "徐家汇港汇店", Address: "上海市徐汇区虹桥路1号", OpeningHours: "07:00-09:30", Lat: 31.1956, Lng: 121.4370},
		{ID: "wjc", Name: "五角场万达店", Address: "上海市杨浦区邯郸路600号", Lat: 31.3010, Lng: 121.5140},
		{ID: "bj", Name: "北京三里屯店", Address: "北京市朝阳区三里屯路19号", OpeningHours: "10:00-22:00", Lat: 39.9334, Lng: 116.4551},
	} {
		rs.BrandIDs, rs.Active, rs.TimeZone = []string{"camellia"}, true, "Asia/Shanghai"
		must(s.CreateRetailStore(ctx, &rs))
	}
	closed := store.RetailStore{ID: "old", Name: "已关闭的老店", Lat: 31.2245, Lng: 121.4465, BrandIDs: []string{"camellia"}, TimeZone: "Asia/Shanghai"}
	must(s.CreateRetailStore(ctx, &closed))
	must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "z1", Name: "Zeta 静安店", Lat: 31.2244, Lng: 121.4463, BrandIDs: []string{"zeta"}, Active: true, TimeZone: "Asia/Shanghai"}))
	wecom := func(id string) []store.GuideIdentity {
		return []store.GuideIdentity{{Channel: "wecom", ExternalID: id}}
	}
	for _, g := range []store.Guide{
		{ID: "g-li", StoreID: "ja", Name: "李娜", Identities: wecom("li"), Active: true},
		{ID: "g-wang", StoreID: "ja", Name: "王芳", Identities: wecom("wang"), Active: true},
		{ID: "g-gone", StoreID: "ja", Name: "离职导购", Active: false},
		{ID: "g-zhao", StoreID: "xtd", Name: "赵敏", Identities: wecom("zhao"), Active: true},
		{ID: "g-z", StoreID: "z1", Name: "Zeta导购", Active: true},
	} {
		must(s.CreateGuide(ctx, &g))
	}
	for _, cw := range []store.ContactWay{
		{Channel: "wecom", StoreID: "ja", State: "s:ja", ConfigID: "c1", QRCode: o.qrBase + "/store-ja.png"},
		{Channel: "wecom", GuideID: "g-li", State: "g:g-li", ConfigID: "c2", QRCode: o.qrBase + "/guide-li.png"},
		{Channel: "wecom", GuideID: "g-zhao", State: "g:g-zhao", ConfigID: "c3", QRCode: o.qrBase + "/guide-zhao.png"},
	} {
		must(s.SaveContactWay(ctx, &cw))
	}
}

// newPage serves the store page over s on a test server, seeded with
// the QR codes of the contact ways at qrBase (empty: WeCom's host); extra
// adds routes.
func newPage(t *testing.T, s *store.Store, qrBase func(base string) string, extra func(r *gin.Engine)) *httptest.Server {
	t.Helper()
	gin.SetMode(gin.TestMode)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	o := seedOpts{}
	if qrBase != nil {
		o.qrBase = qrBase(base)
	}
	seed(t, s, o)
	a, err := assign.New(context.Background(), s, assign.Options{MaxDistanceKm: 50})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	storepage.New(storepage.Options{Store: s, Stores: a, Codes: membercode.New(s, nil), Now: func() time.Time { return shanghai2pm }}).Mount(r)
	if extra != nil {
		extra(r)
	}
	srv.Config.Handler = r
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, url, acceptLanguage string) answer {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// inOrder reports whether each of want appears in body after the one
// before it.
func inOrder(body string, want ...string) bool {
	at := 0
	for _, w := range want {
		i := strings.Index(body[at:], w)
		if i < 0 {
			return false
		}
		at += i + len(w)
	}
	return true
}

func TestStorePageNearest(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		srv := newPage(t, s, nil, nil)
		// From Jing'an Temple: 静安 (140 m), 新天地, 徐家汇, 陆家嘴,
		// 五角场; Beijing is beyond 50 km, the closed store and Zeta's are
		// never listed.
		a := get(t, srv.URL+"/m/stores?brand=camellia&lat=31.2235&lng=121.4450", "")
		if a.status != 200 {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
		if got := a.header.Get("Content-Security-Policy"); got != storepage.CSP {
			t.Errorf("CSP = %q", got)
		}
		for h, want := range map[string]string{"Content-Type": "text/html; charset=utf-8", "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "Cache-Control": "private, no-store", "Content-Language": "zh-CN"} {
			if got := a.header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
		if !inOrder(a.body, "离您最近的门店", "静安嘉里中心店", "140 米", "营业中", "营业时间 10:00-22:00", "添加门店企业微信",
			"https://wework.qpic.cn/wwpic/store-ja.png", "李娜", "加企业微信", "https://wework.qpic.cn/wwpic/guide-li.png", "王芳",
			"新天地店", "2.9 公里", "赵敏", "guide-zhao.png",
			"徐家汇港汇店", "休息中", "07:00-09:30", "陆家嘴正大广场店", "五角场万达店", "营业时间 以门店为准") {
			t.Errorf("page does not list the stores nearest first with their guides:\n%s", a.body)
		}
		for _, never := range []string{"北京三里屯店", "已关闭的老店", "Zeta", "离职导购", "<style", "style=", "onclick", "javascript:"} {
			if strings.Contains(a.body, never) {
				t.Errorf("page shows %q", never)
			}
		}
		if strings.Count(a.body, "<script") != 1 || !strings.Contains(a.body, `<script src="/m/static/locate.js?v=`) {
			t.Errorf("page has inline scripts or no locate.js")
		}
		if !strings.Contains(a.body, `data-auto="0"`) {
			t.Errorf("page with a location asks for it again")
		}
		// 王芳 has no QR code: no add button of her own.
		if strings.Count(a.body, "加企业微信") != 2 {
			t.Errorf("want 2 guides' add buttons (李娜, 赵敏), got %d", strings.Count(a.body, "加企业微信"))
		}
	})
}

func TestStorePageQueries(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		srv := newPage(t, s, nil, nil)
		for _, tc := range []struct {
			name, query, lang string
			status            int
			want              []string
		}{
			{"no location yet: ask", "brand=camellia", "", 200, []string{`data-auto="1"`, "使用我的位置", `<input type="hidden" name="brand" value="camellia">`}},
			{"city", "brand=camellia&city=上海市", "", 200, []string{"上海的门店", "新天地店", "静安嘉里中心店"}},
			{"city in English", "brand=camellia&city=beijing", "en-US,en;q=0.9", 200, []string{"Stores in Beijing", "北京三里屯店", "Open now", "Directions"}},
			{"nothing within 50 km: the nearest anyway", "brand=camellia&lat=23.1291&lng=113.2644", "", 200, []string{"附近暂时没有门店，离您最近的是：", "新天地店"}},
			{"English by Accept-Language", "brand=camellia&lat=31.2235&lng=121.4450", "en-GB,en;q=0.9,zh-CN;q=0.8", 200, []string{`<html lang="en">`, "Stores nearest to you", "140 m", "Add on WeCom"}},
			{"Chinese preferred", "brand=camellia&lat=31.2235&lng=121.4450", "zh-CN,zh;q=0.9,en;q=0.8", 200, []string{`<html lang="zh-CN">`, "离您最近的门店"}},
			{"lang overrides", "brand=camellia&lang=en", "zh-CN", 200, []string{"Use my location", `<input type="hidden" name="lang" value="en">`}},
			{"unknown brand", "brand=nope&lat=31.2&lng=121.4", "", 404, []string{"没有找到这个品牌。"}},
			{"no brand", "lat=31.2&lng=121.4", "", 400, []string{"没有找到这个品牌。"}},
			{"latitude not a number", "brand=camellia&lat=abc&lng=121.4", "", 400, []string{"位置或城市有误：lat=abc, lng=121.4"}},
			{"latitude out of range", "brand=camellia&lat=91&lng=121.4", "", 400, []string{"位置或城市有误"}},
			{"longitude missing", "brand=camellia&lat=31.2", "", 400, []string{"位置或城市有误"}},
			{"NaN", "brand=camellia&lat=NaN&lng=121.4", "", 400, []string{"位置或城市有误"}},
			{"null island", "brand=camellia&lat=0&lng=0", "", 400, []string{"位置或城市有误"}},
			{"unknown city", "brand=camellia&city=Atlantis", "en", 400, []string{"Check the location or city: Atlantis"}},
			{"markup in the city is text", "brand=camellia&city=%3Cscript%3Ex", "", 400, []string{"&lt;script&gt;x"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := get(t, srv.URL+"/m/stores?"+tc.query, tc.lang)
				if a.status != tc.status {
					t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
				}
				if a.header.Get("Content-Security-Policy") != storepage.CSP {
					t.Errorf("no CSP on a %d", a.status)
				}
				for _, w := range tc.want {
					if !strings.Contains(a.body, w) {
						t.Errorf("page lacks %q:\n%s", w, a.body)
					}
				}
				if tc.status != 200 && strings.Contains(a.body, `class="store"`) {
					t.Errorf("an error page lists stores")
				}
			})
		}
	})
}

func TestStorePageAssets(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		srv := newPage(t, s, nil, nil)
		for path, ctype := range map[string]string{"/m/static/locate.js": "text/javascript; charset=utf-8", "/m/static/store.css": "text/css; charset=utf-8"} {
			a := get(t, srv.URL+path, "")
			if a.status != 200 || a.header.Get("Content-Type") != ctype || a.header.Get("Cache-Control") != "public, max-age=86400" || len(a.body) < 100 {
				t.Errorf("%s: %d %s %q", path, a.status, a.header.Get("Content-Type"), a.header.Get("Cache-Control"))
			}
		}
		for _, path := range []string{"/m/static/page.html", "/m/static/nope.js", "/m/static/..%2fpage.go"} {
			if a := get(t, srv.URL+path, ""); a.status != 404 {
				t.Errorf("%s: %d, want 404", path, a.status)
			}
		}
	})
}
