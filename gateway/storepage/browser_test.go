package storepage_test

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"
	"github.com/gin-gonic/gin"
	"github.com/skip2/go-qrcode"

	"github.com/scrmgw/scrmgw/gateway/membercode"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

var screenshots = flag.String("screenshots", "", "write TestStorePageInChromium's phone screenshots (store-page.png, store-shop.png, member-code.png) to this directory (../../docs/retail)")

// chromium finds the headless browser; the test fails without one
// (Debian: apt-get install chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("headless Chromium is required for the store page's browser test: apt-get install chromium")
	return ""
}

// TestStorePageInChromium opens the store page as a member would on an
// iPhone 12 Pro (390×844 CSS pixels, touch, mobile Safari's user agent):
// the page asks for the location at once (the browser answers Jing'an
// Temple), reloads with it and lists the nearest stores; the member opens
// the first guide's QR code to add her. The strict CSP blocks nothing the
// page needs (the script ran, the stylesheet applied, no violation), and
// nothing is wider than the phone. A second visit with the location
// refused points the member to the city search.
func TestStorePageInChromium(t *testing.T) {
	exe := chromium(t)
	s := storetest.Open(t, "postgres")
	srv := newPage(t, s, func(base string) string { return base + "/qr" }, func(r *gin.Engine) {
		// The channel's QR images: real QR codes of contact-way links.
		r.GET("/qr/:file", func(c *gin.Context) {
			png, err := qrcode.Encode("https://work.weixin.qq.com/ca/cawcde"+strings.TrimSuffix(c.Param("file"), ".png"), qrcode.Medium, 360)
			if err != nil {
				c.Status(500)
				return
			}
			c.Data(200, "image/png", png)
		})
	})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	// Record CSP violations from the first byte of every page (a script
	// the DevTools protocol adds is not subject to the page's CSP).
	watch := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`})
		return err
	})
	grant := func(setting browser.PermissionSetting) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
				Permission: &browser.PermissionDescriptor{Name: "geolocation"}, Setting: setting, Origin: srv.URL})
			return err
		})
	}
	lat, lng, acc := 31.2235, 121.4450, 30.0
	// A phone in China: its browser asks for Chinese first.
	zhCN := chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{
			UserAgent: device.IPhone12Pro.Device().UserAgent, AcceptLanguage: "zh-CN,zh;q=0.9,en;q=0.8"})
		return err
	})
	if err := chromedp.Do(bctx,
		chromedp.Emulate(device.IPhone12Pro),
		zhCN,
		watch,
		grant(browser.PermissionSettingGranted),
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetGeolocationOverride, emulation.SetGeolocationOverrideParams{Latitude: &lat, Longitude: &lng, Accuracy: &acc})
			return err
		}),
		chromedp.Navigate(srv.URL+"/m/stores?brand=camellia"),
		// locate.js asks, and reloads with the position.
		chromedp.WaitVisible(chromedp.CSS("li.store")),
	); err != nil {
		t.Fatalf("opening the store page: %v", err)
	}
	href, err := chromedp.Run(bctx, chromedp.Evaluate[string](`location.href`))
	if err != nil || !strings.Contains(href, "lat=31.22350") || !strings.Contains(href, "lng=121.44500") || !strings.Contains(href, "brand=camellia") {
		t.Fatalf("page location %q (%v), want it reloaded with the position", href, err)
	}
	names, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('li.store h3')].map(e => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"静安嘉里中心店", "新天地店", "徐家汇港汇店", "陆家嘴正大广场店", "五角场万达店"}; !slices.Equal(names, want) {
		t.Errorf("stores listed %v, want %v", names, want)
	}
	dists, _ := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('li.store .dist')].map(e => e.textContent)`))
	if len(dists) != 5 || dists[0] != "140 米" || dists[1] != "2.9 公里" {
		t.Errorf("distances %v", dists)
	}

	// The member opens 李娜's QR code: it shows, loaded, on the phone.
	if err := chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS("li.store .guide details summary")),
		chromedp.WaitVisible(chromedp.CSS("li.store .guide details[open] img")),
		chromedp.Poll[chromedp.Void](`(() => { const i = document.querySelector('.guide details[open] img'); return i && i.complete && i.naturalWidth > 0; })()`),
	); err != nil {
		t.Fatalf("opening the guide's QR code: %v", err)
	}
	type layout struct {
		ScrollWidth int      `json:"scrollWidth"`
		Inner       int      `json:"inner"`
		Locate      string   `json:"locate"`
		LocateShown bool     `json:"locateShown"`
		QR          string   `json:"qr"`
		CSP         []string `json:"csp"`
	}
	got, err := chromedp.Run(bctx, chromedp.Evaluate[layout](`({
		scrollWidth: document.documentElement.scrollWidth,
		inner: window.innerWidth,
		locate: getComputedStyle(document.getElementById('locate')).backgroundColor,
		locateShown: !document.getElementById('locate').hidden,
		qr: document.querySelector('.guide details[open] img').getAttribute('src'),
		csp: window.__csp,
	})`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Inner != 390 || got.ScrollWidth > got.Inner {
		t.Errorf("page is %d px wide in a %d px viewport", got.ScrollWidth, got.Inner)
	}
	if got.Locate != "rgb(15, 118, 110)" || !got.LocateShown {
		t.Errorf("stylesheet or script did not apply: locate button %q, shown %v", got.Locate, got.LocateShown)
	}
	if got.QR != srv.URL+"/qr/guide-li.png" {
		t.Errorf("first guide's QR = %q", got.QR)
	}
	if len(got.CSP) != 0 {
		t.Errorf("CSP violations: %v", got.CSP)
	}
	shoot(t, bctx, "store-page.png")

	// The nearest store's cloud store (逛云店): what it carries, at its
	// price, on the phone.
	ctx2 := context.Background()
	if err := s.UpsertProducts(ctx2, []store.Product{
		{BrandID: "camellia", SKU: "CM-1", Name: "山茶花精华液", Category: "护肤", PriceCents: 39900, URL: "https://shop.camellia.example/p/cm-1"},
		{BrandID: "camellia", SKU: "CM-2", Name: "山茶花面霜", Category: "护肤", PriceCents: 29900},
	}); err != nil {
		t.Fatal(err)
	}
	own := int64(35900)
	if err := s.SetAssortment(ctx2, "ja", "camellia", []store.StoreProduct{{SKU: "CM-1", PriceCents: &own, InStock: true}, {SKU: "CM-2"}}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS("li.store a.shop")),
		chromedp.WaitVisible(chromedp.CSS("ul.products li.product")),
	); err != nil {
		t.Fatalf("opening the store's cloud store: %v", err)
	}
	type shopLayout struct {
		Path        string   `json:"path"`
		Products    []string `json:"products"`
		Prices      []string `json:"prices"`
		Buy         []string `json:"buy"`
		ScrollWidth int      `json:"scrollWidth"`
		CSP         []string `json:"csp"`
	}
	shop, err := chromedp.Run(bctx, chromedp.Evaluate[shopLayout](`({
		path: location.pathname,
		products: [...document.querySelectorAll('li.product')].map(e => e.textContent.replace(/\s+/g, ' ').trim()),
		prices: [...document.querySelectorAll('li.product .price')].map(e => e.textContent.trim()),
		buy: [...document.querySelectorAll('li.product a.buy')].map(e => e.href),
		scrollWidth: document.documentElement.scrollWidth,
		csp: window.__csp,
	})`))
	if err != nil {
		t.Fatal(err)
	}
	if shop.Path != "/m/stores/ja/products" || len(shop.Products) != 2 || !strings.Contains(shop.Products[0]+shop.Products[1], "山茶花精华液") ||
		!strings.Contains(shop.Products[0]+shop.Products[1], "山茶花面霜") {
		t.Errorf("cloud store at %s lists %q, want the two products 静安嘉里中心店 carries", shop.Path, shop.Products)
	}
	if !slices.ContainsFunc(shop.Prices, func(p string) bool { return strings.Contains(p, "359") && strings.Contains(p, "399") }) {
		t.Errorf("prices %q, want the store's 359 with the brand's 399 struck through", shop.Prices)
	}
	if !slices.Equal(shop.Buy, []string{"https://shop.camellia.example/p/cm-1"}) {
		t.Errorf("buy links %q, want the product page of the one with a page", shop.Buy)
	}
	if shop.ScrollWidth > 390 || len(shop.CSP) != 0 {
		t.Errorf("cloud store is %d px wide in 390, CSP violations %v", shop.ScrollWidth, shop.CSP)
	}
	shoot(t, bctx, "store-shop.png")

	// Refused: the script says so and the city search takes over.
	if err := chromedp.Do(bctx,
		grant(browser.PermissionSettingDenied),
		chromedp.Navigate(srv.URL+"/m/stores?brand=camellia"),
		chromedp.Poll[chromedp.Void](`document.getElementById('status').textContent.includes('无法获取您的位置')`),
		chromedp.SendKeys(chromedp.ID("city"), "北京\n"),
		chromedp.WaitVisible(chromedp.CSS("li.store")),
	); err != nil {
		t.Fatalf("searching by city after refusing the location: %v", err)
	}
	head, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("h2.head")))
	if err != nil || head != "北京的门店" {
		t.Errorf("city search heading %q (%v)", head, err)
	}
	first, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("li.store h3")))
	if first != "北京三里屯店" {
		t.Errorf("nearest to Beijing: %q", first)
	}

	// The member code page a bot's link opens: barcode and QR code load
	// under the CSP, and the digits are a code the till accepts.
	m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Name: "陈女士", BrandID: "camellia"})
	if err != nil {
		t.Fatal(err)
	}
	codes := membercode.New(s, nil)
	tok, err := codes.Link(ctx, m.ID, "camellia")
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+membercode.LinkPath+tok),
		chromedp.Poll[chromedp.Void](`[...document.images].every(i => i.complete && i.naturalWidth > 0)`),
	); err != nil {
		t.Fatalf("opening the member code page: %v", err)
	}
	shown, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("code")))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := codes.Identify(ctx, "camellia", strings.ReplaceAll(shown, " ", "")); err != nil || id != m.ID {
		t.Errorf("member code page shows %q: identifies %d, %v", shown, id, err)
	}
	csp, _ := chromedp.Run(bctx, chromedp.Evaluate[[]string](`window.__csp`))
	if len(csp) != 0 {
		t.Errorf("CSP violations on the member code page: %v", csp)
	}
	shoot(t, bctx, "member-code.png")
}

// shoot saves a full-page screenshot when -screenshots names a directory.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if *screenshots == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*screenshots, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
