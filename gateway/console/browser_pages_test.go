package console_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/scrmgw/scrmgw/adapters/webhook"

	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/store"
)

// TestConsoleBrowserPages drives the funnel, guides and stores pages in
// Chromium as a store manager signed in with a brand token: the funnel
// moves after members go through the workflow, the overdue tasks lead
// the guides, a click on the map probes the nearest stores, the QR codes
// print; then a read-only token meets no write buttons, and another
// brand's token sees none of it.
func TestConsoleBrowserPages(t *testing.T) {
	r := newRig(t, "postgres", console.Config{})
	r.seedStores()
	r.put("camellia", "win-back", "dormant-win-back.yaml", true)
	r.put("camellia", "welcome", "new-member-welcome.yaml", true)
	r.put("peony", "peony-back", "dormant-win-back.yaml", true)
	type member struct {
		guide, store, failure string
		converted             bool
		then                  []string
	}
	for _, m := range []member{
		{"g-wang", "sh-jingan", "", true, []string{"wait_reply", "call"}},
		{"g-wang", "sh-jingan", "", true, []string{"wait_reply", "call"}},
		{"g-wang", "sh-jingan", "", true, []string{"wait_reply"}},
		{"g-wang", "sh-jingan", "", false, []string{"wait_reply", "by_level", "tag_dormant"}},
		{"g-wang", "sh-jingan", "", false, []string{"wait_reply", "by_level", "call"}},
		{"g-li", "sh-jingan", "", true, []string{"wait_reply", "call"}},
		{"g-li", "sh-jingan", "invalid_recipient", false, nil},
		{"g-li", "sh-jingan", "", false, []string{"wait_reply", "by_level", "tag_dormant"}},
		{"g-zhao", "sh-xujiahui", "", true, []string{"wait_reply", "call"}},
		{"g-zhao", "sh-xujiahui", "", false, []string{"wait_reply"}},
		{"g-zhao", "sh-xujiahui", "refused", false, nil},
		{"g-chen", "hz-westlake", "", false, []string{"wait_reply", "by_level", "tag_dormant"}},
		{"g-chen", "hz-westlake", "", true, []string{"wait_reply", "by_level", "call"}},
	} {
		r.throughWinBack("camellia", "win-back", m.guide, m.store, m.failure, m.converted, m.then...)
	}
	r.throughWinBack("peony", "peony-back", "g-peony", "bj-sanlitun", "", true)
	r.seedGuideWork()
	brand := "camellia"
	manager := r.token(store.NewAPIToken{Name: "Jing'an store manager", BrandID: &brand})
	analyst := r.token(store.NewAPIToken{Name: "camellia analyst", BrandID: &brand, ReadOnly: true})
	peony := r.brandToken("peony")
	b := newBrowser(t, r.srv.URL)

	b.do("signing in as camellia's store manager", chromedp.Navigate(r.srv.URL+"/console/funnel"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), manager), chromedp.Submit(chromedp.CSS("#token")), chromedp.WaitVisible(chromedp.CSS("#totals")))

	// The funnel of win-back: the totals, the bars per step.
	b.navigateBy("picking win-back", `location.search.includes("workflow=camellia%2Fwin-back") && document.querySelector("#totals") !== null`,
		chromedp.SetValue(chromedp.CSS("#workflow"), "camellia/win-back"), chromedp.Click(chromedp.CSS("#apply")))
	entered := b.text("#t-entered")
	if entered != "13" || b.text("#t-converted") != "6" || b.text("#t-failed") != "2" {
		t.Errorf("funnel totals: entered %s, converted %s, failed %s; want 13, 6, 2", entered, b.text("#t-converted"), b.text("#t-failed"))
	}
	if got := b.eval(`String(document.querySelectorAll("#chart svg rect.bar-entered").length)`); got != strconv.Itoa(6+1) { // 6 steps + the legend
		t.Errorf("%s entered bars, want one per step and the legend's", got)
	}
	b.screenshot("funnel")

	// Three more members go through it: reload, and the funnel moved.
	r.throughWinBack("camellia", "win-back", "g-zhao", "sh-xujiahui", "", true, "wait_reply", "call")
	r.throughWinBack("camellia", "win-back", "g-zhao", "sh-xujiahui", "", false, "wait_reply")
	r.throughWinBack("camellia", "win-back", "g-wang", "sh-jingan", "", true, "wait_reply")
	b.do("reloading the funnel", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#totals")))
	if got := b.text("#t-entered"); got != "16" || b.text("#t-converted") != "8" {
		t.Errorf("after three more members: entered %s, converted %s; want 16, 8", got, b.text("#t-converted"))
	}
	// One store's funnel.
	b.navigateBy("the funnel of Xujiahui", `location.search.includes("store=sh-xujiahui") && document.querySelector("#totals") !== null`,
		chromedp.SetValue(chromedp.CSS("#store"), "sh-xujiahui"), chromedp.Click(chromedp.CSS("#apply")))
	if got := b.text("#t-entered"); got != "5" {
		t.Errorf("Xujiahui's funnel: entered %s, want 5", got)
	}
	if href := b.eval(`document.getElementById("csv").getAttribute("href")`); !strings.Contains(href, "store=sh-xujiahui") || !strings.HasPrefix(href, "/console/funnel.csv?") {
		t.Errorf("the CSV link %q does not keep the filter", href)
	}

	// The guides: the overdue tasks lead.
	b.do("the guides", chromedp.Click(chromedp.CSS(`nav a[href="/console/guides"]`)), chromedp.WaitVisible(chromedp.CSS("#guides")))
	if got := b.eval(`document.querySelector("#guides tbody tr").dataset.guide`); got != "g-zhao" {
		t.Errorf("the first guide is %s, want g-zhao (2 overdue)", got)
	}
	if got := b.text("#overdue-tasks tbody tr:first-child"); !strings.Contains(got, "Liu Yang") || !strings.Contains(got, "Zhao Min") {
		t.Errorf("the longest overdue task: %q", got)
	}
	b.screenshot("guides")
	b.navigateBy("Jing'an's guides", `location.search.includes("store=sh-jingan") && document.querySelector("#guides") !== null`,
		chromedp.SetValue(chromedp.CSS("#store"), "sh-jingan"), chromedp.Click(chromedp.CSS("#apply")))
	if got := b.eval(`Array.from(document.querySelectorAll("#guides tbody tr")).map(r => r.dataset.guide).join(",")`); got != "g-li,g-wang" {
		t.Errorf("Jing'an's guides by overdue: %s", got)
	}

	// The stores: click a store on the map, then a point on the map.
	b.do("the stores", chromedp.Click(chromedp.CSS(`nav a[href="/console/stores"]`)), chromedp.WaitVisible(chromedp.CSS("#map-svg")))
	b.do("clicking Xujiahui on the map", chromedp.Click(chromedp.CSS(`#map-svg a[aria-label*="Xujiahui"] circle`)), chromedp.WaitVisible(chromedp.CSS("#hits")))
	if got := b.eval(`Array.from(document.querySelectorAll("#hits li")).map(l => l.dataset.store).join(",")`); got != "sh-xujiahui,sh-jingan,hz-westlake" {
		t.Errorf("nearest to Xujiahui: %s", got)
	}
	// A click on the map near Hangzhou (its point, moved 30 px right).
	js := `(() => { const c = document.querySelector('#map-svg a[aria-label*="West Lake"] circle').getBoundingClientRect();
		const ev = new MouseEvent("click", {bubbles: true, clientX: c.x + c.width / 2 + 30, clientY: c.y + c.height / 2});
		document.getElementById("map-svg").dispatchEvent(ev); return "ok"; })()`
	b.navigateBy("clicking the map", `document.querySelector("#hits li") !== null && document.querySelector("#hits li").dataset.store === "hz-westlake" && document.querySelector(".map-probe") !== null`,
		func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Evaluate[string](js)(ctx, tg)
			return chromedp.Void{}, err
		})
	if lat := b.eval(`document.getElementById("lat").value`); !strings.HasPrefix(lat, "30.2") {
		t.Errorf("the click probed latitude %s, want about 30.26", lat)
	}
	b.screenshot("stores")

	// The QR codes of Jing'an, ready to print.
	b.do("Jing'an's QR codes", chromedp.Navigate(r.srv.URL+"/console/stores/sh-jingan/qr"), chromedp.WaitVisible(chromedp.CSS("#qr-cards")))
	b.until("the QR images loaded", `Array.from(document.querySelectorAll("#qr-cards img")).every(i => i.complete && i.naturalWidth > 0)`)
	if got := b.eval(`String(document.querySelectorAll("#qr-cards img").length)`); got != "3" {
		t.Errorf("%s QR codes, want the store's and two guides'", got)
	}
	b.screenshot("qr")

	// In Chinese.
	b.do("switching to Chinese", chromedp.Navigate(r.srv.URL+"/console/funnel?workflow=camellia/win-back"), chromedp.WaitVisible(chromedp.CSS("#totals")),
		chromedp.Click(chromedp.CSS("a.lang")), chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"] #totals`)))
	if got := b.text("h1"); got != "转化漏斗" {
		t.Errorf("Chinese funnel heading %q", got)
	}
	b.screenshot("funnel-zh")
	b.do("the guides in Chinese", chromedp.Navigate(r.srv.URL+"/console/guides"), chromedp.WaitVisible(chromedp.CSS("#guides")))
	b.screenshot("guides-zh")
	b.do("the stores in Chinese", chromedp.Navigate(r.srv.URL+"/console/stores?lat=31.2304&lng=121.4737"), chromedp.WaitVisible(chromedp.CSS("#hits")))
	b.screenshot("stores-zh")
	b.do("back to English", chromedp.Click(chromedp.CSS("a.lang")), chromedp.WaitVisible(chromedp.CSS(`html[lang="en"] #hits`)))
	// The live sessions page (门店直播): the sessions and the schedule form.
	b.do("the live sessions", chromedp.Navigate(r.srv.URL+"/console/live"), chromedp.WaitVisible(chromedp.CSS("h1")))
	if got := b.text("h1"); got == "" || strings.Contains(got, "live.") {
		t.Errorf("live page heading %q, want its title", got)
	}
	b.screenshot("live")

	// Event sources on the commerce page: make one, its secret shown
	// once; events signed with it are accepted, with another secret
	// refused; rotate it with a day's overlap, then disable it.
	b.do("the commerce page", chromedp.Navigate(r.srv.URL+"/console/commerce#sources"), chromedp.WaitVisible(chromedp.CSS("#new-source")))
	b.navigateBy("making an event source", `document.querySelector("#secret") !== null || document.querySelector("#source-error") !== null`,
		chromedp.SendKeys(chromedp.CSS("#source-id"), "shop-online"), chromedp.SendKeys(chromedp.CSS("#source-description"), "Online shop (mini program)"),
		chromedp.Click(chromedp.CSS("#create-source")))
	secret := b.eval(`document.getElementById("secret") ? document.getElementById("secret").value : document.querySelector("main").innerText`)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("making a source answered %q, want its secret", secret)
	}
	b.screenshot("event-source-secret")
	if got := r.postEvent("shop-online", secret); got != http.StatusAccepted && got != http.StatusOK {
		t.Errorf("an event signed with the shown secret: %d, want accepted", got)
	}
	if got := r.postEvent("shop-online", webhook.NewSecret()); got != http.StatusUnauthorized {
		t.Errorf("an event signed with another secret: %d, want 401", got)
	}
	b.navigateBy("back to the sources", `document.querySelector('#signing-sources tr[data-signing="shop-online"]') !== null`,
		chromedp.Click(chromedp.CSS("#back")))
	b.do("reloading the commerce page", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#signing-sources tr[data-signing="shop-online"]`)))
	if html := b.eval(`document.documentElement.outerHTML`); strings.Contains(html, secret) || strings.Contains(html, "whsec_") {
		t.Error("the commerce page shows the secret again")
	}
	b.navigateBy("rotating with a day's overlap", `document.querySelector("#secret") !== null`,
		chromedp.SetValue(chromedp.CSS("#overlap-shop-online"), "24h"), chromedp.Click(chromedp.CSS("#rotate-shop-online button")))
	rotated := b.eval(`document.getElementById("secret").value`)
	if !strings.HasPrefix(rotated, "whsec_") || rotated == secret || !strings.Contains(b.text("#overlap"), "2") {
		t.Errorf("rotating showed %q and overlap %q", rotated, b.text("#overlap"))
	}
	b.screenshot("event-source-rotated")
	for what, s := range map[string]string{"the new secret": rotated, "the old one, within the overlap": secret} {
		if got := r.postEvent("shop-online", s); got != http.StatusAccepted && got != http.StatusOK {
			t.Errorf("after the rotation, an event signed with %s: %d, want accepted", what, got)
		}
	}
	b.navigateBy("back to the sources", `document.querySelector("#disable-shop-online") !== null`, chromedp.Click(chromedp.CSS("#back")))
	b.navigateBy("disabling it", `document.querySelector("#enable-shop-online") !== null`, chromedp.Click(chromedp.CSS("#disable-shop-online")))
	if got := r.postEvent("shop-online", rotated); got != http.StatusUnauthorized {
		t.Errorf("an event of a disabled source: %d, want 401", got)
	}
	b.do("the sources", chromedp.ScrollIntoView(chromedp.CSS("#sources")))
	b.screenshot("event-sources")
	b.do("the sources in Chinese", chromedp.Click(chromedp.CSS("a.lang")), chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"] #enable-shop-online`)))
	b.screenshot("event-sources-zh")
	b.navigateBy("enabling it", `document.querySelector("#disable-shop-online") !== null`, chromedp.Click(chromedp.CSS("#enable-shop-online")))
	if got := r.postEvent("shop-online", rotated); got != http.StatusAccepted && got != http.StatusOK {
		t.Errorf("an event of the source enabled again: %d, want accepted", got)
	}
	b.do("back to English", chromedp.Click(chromedp.CSS("a.lang")), chromedp.WaitVisible(chromedp.CSS(`html[lang="en"] #disable-shop-online`)))

	// A read-only token: no write buttons, and a write is refused with a
	// page that says why.
	b.do("signing out", chromedp.Click(chromedp.CSS(`form[action$="/sign-out"] button`)), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("signing in read-only", chromedp.SendKeys(chromedp.CSS("#token"), analyst), chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#workflows")))
	if n := b.eval(`String(document.querySelectorAll('a[href="/console/workflows/new"]').length)`); n != "0" {
		t.Error("a read-only token sees New workflow")
	}
	b.do("opening win-back read-only", chromedp.Navigate(r.srv.URL+"/console/workflows/camellia/win-back"), chromedp.WaitVisible(chromedp.CSS("#yaml")))
	if n := b.eval(`String(document.querySelectorAll("#save, #enable, #disable, form[action$='/retire']").length)`); n != "0" {
		t.Errorf("a read-only token sees %s write buttons", n)
	}
	b.do("the new-workflow page read-only", chromedp.Navigate(r.srv.URL+"/console/workflows/new"), chromedp.WaitVisible(chromedp.CSS("h1")))
	if got := b.text("main p"); !strings.Contains(got, "This token is read-only") {
		t.Errorf("read-only new workflow: %q", got)
	}
	b.screenshot("forbidden")

	// Another brand sees none of camellia's.
	b.do("signing out", chromedp.Click(chromedp.CSS(`form[action$="/sign-out"] button`)), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("signing in as peony", chromedp.SendKeys(chromedp.CSS("#token"), peony), chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#workflows")))
	for _, p := range []string{"/console/funnel?workflow=camellia/win-back", "/console/stores/sh-jingan/qr", "/console/guides?brand=camellia"} {
		b.do("opening "+p, chromedp.Navigate(r.srv.URL+p), chromedp.WaitVisible(chromedp.CSS("h1")))
		if got := b.text("h1"); got != "Not found" {
			t.Errorf("peony opening %s sees %q", p, got)
		}
	}
	b.do("peony's stores", chromedp.Navigate(r.srv.URL+"/console/stores"), chromedp.WaitVisible(chromedp.CSS("#stores")))
	if got := b.text("#stores"); strings.Contains(got, "Jing'an") || !strings.Contains(got, "Peony Sanlitun") {
		t.Errorf("peony's stores: %q", got)
	}
}

// navigateBy runs steps that load another page (a form's submit, a
// click) and waits for the new page to satisfy cond: the old page is
// marked first, so its elements do not count.
func (b *browser) navigateBy(what, cond string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.eval(`document.documentElement.dataset.stale = "1"`)
	b.do(what, steps...)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		got, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`!document.documentElement.dataset.stale && document.readyState !== "loading" && (`+cond+`)`))
		if err == nil && got {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("%s: the new page never satisfied %s", what, cond)
}

// postEvent posts a CloudEvent of source to the gateway's
// /callbacks/events signed with secret as Standard Webhooks signs
// (webhook-id, webhook-timestamp, webhook-signature), and returns the
// status; an accepted event must be in the inbox.
func (r *rig) postEvent(source, secret string) int {
	r.t.Helper()
	key, err := webhook.DecodeSecret(secret)
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.seq++
	id := fmt.Sprintf("evt-%d-%d", time.Now().UnixNano(), r.seq)
	r.mu.Unlock()
	body := fmt.Appendf(nil, `{"specversion": "1.0", "id": %q, "source": %q, "type": "member.tagged",
		"time": %q, "datacontenttype": "application/json", "data": {"member": {"phone": "13800000042"}, "tag": "online"}}`,
		id, source, time.Now().UTC().Format(time.RFC3339))
	req, err := http.NewRequest(http.MethodPost, r.srv.URL+webhook.EventsPath, bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("webhook-id", "msg_"+id)
	req.Header.Set("webhook-timestamp", fmt.Sprint(ts))
	req.Header.Set("webhook-signature", webhook.Sign(key, "msg_"+id, ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	readAll(r.t, resp)
	if resp.StatusCode < 300 {
		if _, err := r.store.InboxByKey(context.Background(), webhook.ChannelName, webhook.DedupKey("camellia", source, id)); err != nil {
			r.t.Errorf("event %s accepted (%d) but not in the inbox: %v", id, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}
