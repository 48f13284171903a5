package console_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/store"
)

// TestConsoleBrowserMembers drives the members, commerce and operations
// pages in Chromium: a store manager goes from the nav to their guides'
// overdue tasks and on to a member's page; a marketer finds a member by
// phone, exports them with the page's form and erases them after
// confirming; the commerce page shows the unreconciled store; the admin
// reads the operations page; a token limited to members is sent back to
// the members page from a page it may not open.
func TestConsoleBrowserMembers(t *testing.T) {
	r := newRig(t, "postgres", console.Config{})
	r.seedStores()
	r.put("camellia", "win-back", "dormant-win-back.yaml", true)
	liu := r.seedMember("camellia", "+8613800138000", "Liu Yang", "g-wang", "sh-jingan", "win-back")
	r.seedMember("camellia", "+8613700137000", "Chen Jing", "g-li", "sh-jingan", "win-back")
	r.throughWinBack("camellia", "win-back", "g-li", "sh-jingan", "refused", false)
	r.seedGuideWork()
	r.seedCommerce()
	id := strconv.FormatInt(liu, 10)
	brand := "camellia"
	manager := r.token(store.NewAPIToken{Name: "Jing'an store manager", BrandID: &brand})
	desk := r.token(store.NewAPIToken{Name: "camellia service desk", BrandID: &brand, Resources: []string{api.ResourceMembers}})
	b := newBrowser(t, r.srv.URL)

	b.do("signing in as the store manager", chromedp.Navigate(r.srv.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), manager), chromedp.Submit(chromedp.CSS("#token")), chromedp.WaitVisible(chromedp.CSS("#workflows")))
	// The nav says where the tasks are.
	if got := b.text(`nav a[href="/console/guides"]`); got != "Guides & tasks" {
		t.Errorf("the guides' nav entry reads %q", got)
	}
	b.do("the guides and their tasks", chromedp.Click(chromedp.CSS(`nav a[href="/console/guides"]`)), chromedp.WaitVisible(chromedp.CSS("#overdue-tasks")))
	b.navigateBy("Jing'an's guides", `location.search.includes("store=sh-jingan") && document.querySelector("#overdue-tasks") !== null`,
		chromedp.SetValue(chromedp.CSS("#store"), "sh-jingan"), chromedp.Click(chromedp.CSS("#apply")))
	task := b.text("#overdue-tasks tbody tr:first-child")
	if !strings.Contains(task, "Ma Jun") || !strings.Contains(task, "Li Na") {
		t.Errorf("Jing'an's first overdue task: %q", task)
	}
	b.navigateBy("the task's member", `document.querySelector("#member-actions") !== null`,
		chromedp.Click(chromedp.CSS("#overdue-tasks tbody tr:first-child td:nth-child(3) a")))
	if got := b.text("h1"); !strings.Contains(got, "Thank Ma Jun for the first purchase") {
		t.Errorf("the task's member page: %q", got)
	}

	// Find Liu Yang by phone.
	b.do("the members", chromedp.Click(chromedp.CSS(`nav a[href="/console/members"]`)), chromedp.WaitVisible(chromedp.CSS("#member-search")))
	b.navigateBy("searching by phone", `document.querySelector("#members") !== null`,
		chromedp.SetValue(chromedp.CSS("#by"), "phone"), chromedp.SendKeys(chromedp.CSS("#q"), "138 0013 8000"), chromedp.Click(chromedp.CSS("#find")))
	if got := b.text("#members tbody"); !strings.Contains(got, "Liu Yang") || !strings.Contains(got, "*******8000") || strings.Contains(got, "Chen Jing") {
		t.Errorf("found by phone: %q", got)
	}
	b.screenshot("members")
	b.navigateBy("opening Liu Yang", `document.querySelector("#member-actions") !== null`,
		chromedp.Click(chromedp.CSS(`#members tr[data-member="`+id+`"] td:nth-child(2) a`)))
	for sel, want := range map[string]string{"#member-phone": "+86138****8000", "#identities": "wecom:north", "#bindings": "Wang Fang",
		"#tags": "vip", "#runs": "wait_reply", "#sent": "We miss you, Liu Yang", "#received": "cashmere coat"} {
		if got := b.text(sel); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", sel, got, want)
		}
	}
	b.screenshot("member")
	// The export form, posted as the button does (a download).
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(async () => { const f = document.querySelector('form[action$="/export"]');
		const r = await fetch(f.action, {method: "POST", body: new FormData(f)});
		const x = await r.json(); return r.status + " " + x.member_id + " " + x.phone + " " + x.tags.map(t => t.tag).join(","); })()`, chromedp.EvalAwaitPromise))
	if err != nil || got != "200 "+id+" +86138****8000 vip" {
		t.Errorf("the export: %q (%v)", got, err)
	}

	// Erase, after typing the id.
	b.navigateBy("the erase form", `document.querySelector("#erase-confirm") !== null`, chromedp.Click(chromedp.CSS("#erase")))
	b.screenshot("erase")
	b.navigateBy("erasing", `document.querySelector("#erased") !== null`,
		chromedp.SendKeys(chromedp.CSS("#confirm"), id), chromedp.Click(chromedp.CSS("#erase-do")))
	if got := b.text("#removed"); !strings.Contains(got, "member_identities") {
		t.Errorf("the erasure's counts: %q", got)
	}
	b.screenshot("erased")
	b.do("Liu Yang is gone", chromedp.Navigate(r.srv.URL+"/console/members/"+id), chromedp.WaitVisible(chromedp.CSS("h1")))
	if got := b.text("h1"); got != "Not found" {
		t.Errorf("the erased member's page: %q", got)
	}

	// The commerce page of the settled day.
	b.do("commerce", chromedp.Click(chromedp.CSS(`nav a[href="/console/commerce"]`)), chromedp.WaitVisible(chromedp.CSS("#settlements-panel")))
	b.navigateBy("the settled day", `document.querySelector("#settlements") !== null`,
		chromedp.SetValue(chromedp.CSS("#date"), "2026-12-01"), chromedp.Click(chromedp.CSS("#apply")))
	if got := b.text(`#settlements tr[data-store="sh-xujiahui"]`); !strings.Contains(got, "unreconciled") {
		t.Errorf("Xujiahui's settlement: %q", got)
	}
	if got := b.text("#source-activity"); !strings.Contains(got, "pos-shanghai") || strings.Contains(got, "pos-beijing") {
		t.Errorf("event sources: %q", got)
	}
	b.screenshot("commerce")
	b.do("switching to Chinese", chromedp.Click(chromedp.CSS("a.lang")), chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"] #settlements`)))
	b.screenshot("commerce-zh")
	b.do("the members in Chinese", chromedp.Navigate(r.srv.URL+"/console/members?guide=g-li"), chromedp.WaitVisible(chromedp.CSS("#members")))
	if got := b.text("h1"); got != "会员" {
		t.Errorf("Chinese members heading %q", got)
	}
	b.screenshot("members-zh")
	b.do("back to English", chromedp.Click(chromedp.CSS("a.lang")), chromedp.WaitVisible(chromedp.CSS(`html[lang="en"] #members`)))
	if n := b.eval(`String(document.querySelectorAll('nav a[href="/console/operations"]').length)`); n != "0" {
		t.Error("a brand token sees Operations")
	}

	// The admin's operations page, with tasks in the queues.
	q := asynq.NewClient(r.redis)
	defer q.Close()
	for i, queue := range []string{"runs", "runs", "outbox", "inbox"} {
		if _, err := q.Enqueue(asynq.NewTask("console:test", []byte(strconv.Itoa(i))), asynq.Queue(queue), asynq.ProcessIn(time.Duration(i+1)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	b.do("signing out", chromedp.Click(chromedp.CSS(`form[action$="/sign-out"] button`)), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("signing in as the admin", chromedp.SendKeys(chromedp.CSS("#token"), adminToken), chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#workflows")))
	b.do("operations", chromedp.Click(chromedp.CSS(`nav a[href="/console/operations"]`)), chromedp.WaitVisible(chromedp.CSS("#audit")))
	if got := b.text("#failure-table"); !strings.Contains(got, "refused") {
		t.Errorf("failed sends: %q", got)
	}
	b.navigateBy("the refused sends", `document.querySelector("#failed-table") !== null && location.search.includes("failure=refused")`,
		chromedp.Click(chromedp.CSS(`#failure-table tr[data-failure="wecom/refused"] a`)))
	b.navigateBy("the erasures in the audit trail", `location.search.includes("action=member.erase") && document.querySelector("#audit-table") !== null`,
		chromedp.SetValue(chromedp.CSS("#action"), "member.erase"), chromedp.Click(chromedp.CSS("#audit-apply")))
	if got := b.text("#audit-table tbody"); !strings.Contains(got, "Jing'an store manager") || !strings.Contains(got, "id="+id) {
		t.Errorf("the erasure in the audit trail: %q", got)
	}
	b.do("the whole operations page", chromedp.Navigate(r.srv.URL+"/console/operations"), chromedp.WaitVisible(chromedp.CSS("#audit-table")))
	b.screenshot("operations")

	// A token limited to members meets a page it may not open.
	b.do("signing out", chromedp.Click(chromedp.CSS(`form[action$="/sign-out"] button`)), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("signing in as the service desk", chromedp.SendKeys(chromedp.CSS("#token"), desk), chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#member-search")))
	b.do("opening the funnel", chromedp.Navigate(r.srv.URL+"/console/funnel"), chromedp.WaitVisible(chromedp.CSS("#back")))
	if got := b.text("#back"); got != "Back to Members" {
		t.Errorf("the 403 page links %q", got)
	}
	b.screenshot("forbidden-members-only")
	b.navigateBy("going back", `document.querySelector("#member-search") !== null`, chromedp.Click(chromedp.CSS("#back")))
}
