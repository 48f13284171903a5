package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/store"
)

var memberRowRE = regexp.MustCompile(`(?s)<tr data-member="(\d+)">(.*?)</tr>`)

// memberRows reads the members table: member ids in order, id → cells.
func memberRows(page string) (ids []string, cells map[string]string) {
	cells = map[string]string{}
	tags := regexp.MustCompile(`<[^>]+>`)
	for _, m := range memberRowRE.FindAllStringSubmatch(page, -1) {
		ids = append(ids, m[1])
		cells[m[1]] = strings.Join(strings.Fields(htmlUnescape(tags.ReplaceAllString(m[2], " "))), " ")
	}
	return ids, cells
}

var nextRE = regexp.MustCompile(`<a class="btn" href="([^"]+)" id="next-page"`)

// A brand's marketer finds members by phone (masked), CRM id, name, store
// and guide, a page at a time; another brand's members are not found.
func TestConsoleMemberSearch(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) { testMemberSearch(t, dialect) })
	}
}

func testMemberSearch(t *testing.T, dialect string) {
	r := newRig(t, dialect, console.Config{})
	r.seedStores()
	r.put("camellia", "win-back", "dormant-win-back.yaml", true)
	ctx := context.Background()
	liu := r.seedMember("camellia", "+86 138 0013 8000", "Liu Yang", "g-wang", "sh-jingan", "win-back")
	peonyOnly, _, err := r.store.EnsureMember(ctx, store.NewMember{Phone: "13900139000", Name: "Peony Customer", BrandID: "peony"})
	if err != nil {
		t.Fatal(err)
	}
	crm, _, err := r.store.EnsureMember(ctx, store.NewMember{Name: "Gao Lin", BrandID: "camellia",
		Identities: []store.Identity{{Channel: "crm:camellia", ExternalID: "C-0042"}}})
	if err != nil {
		t.Fatal(err)
	}
	// 55 members bound to Li Na: more than a page.
	var bulk []int64
	for i := range 55 {
		m, _, err := r.store.EnsureMember(ctx, store.NewMember{Name: fmt.Sprintf("Bulk %02d", i), BrandID: "camellia",
			Identities: []store.Identity{{Channel: "wecom", ExternalID: fmt.Sprintf("wm-bulk-%d", i)}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.store.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: "camellia", GuideID: "g-li", StoreID: "sh-jingan", Reason: "manual"}); err != nil {
			t.Fatal(err)
		}
		bulk = append(bulk, m.ID)
	}

	c := r.english()
	r.signIn(c, r.brandToken("camellia"))
	id := strconv.FormatInt(liu, 10)
	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"by phone, another form", "/console/members?by=phone&q=13800138000", []string{id}},
		{"by phone of another brand's member", "/console/members?by=phone&q=%2B8613900139000", nil},
		{"by name, any case", "/console/members?by=name&q=liu", []string{id}},
		{"by another brand's name", "/console/members?by=name&q=Peony", nil},
		{"by CRM id", "/console/members?by=crm&q=C-0042", []string{strconv.FormatInt(crm.ID, 10)}},
		{"by store", "/console/members?store=sh-xujiahui", nil},
		{"by guide", "/console/members?guide=g-wang", []string{id}},
	} {
		page := r.get(c, tc.query)
		ids, _ := memberRows(page)
		if !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("%s: members %v, want %v", tc.name, ids, tc.want)
		}
		if tc.want == nil && !strings.Contains(page, `id="no-members"`) {
			t.Errorf("%s: no “no member matches”", tc.name)
		}
	}
	_, cells := memberRows(r.get(c, "/console/members?by=phone&q=13800138000"))
	if want := id + " Liu Yang *******8000 120 Wang Fang Jing'an Flagship"; !strings.HasPrefix(cells[id], want) {
		t.Errorf("Liu Yang's row %q, want it to start %q", cells[id], want)
	}
	if page := r.get(c, "/console/members?by=phone&q=12345"); !strings.Contains(page, `id="search-error"`) {
		t.Error("a malformed phone is not reported")
	}

	// Li Na's members: 50, then the 5 after, by the next link.
	page := r.get(c, "/console/members?guide=g-li")
	ids, _ := memberRows(page)
	m := nextRE.FindStringSubmatch(page)
	if len(ids) != 50 || m == nil || ids[0] != strconv.FormatInt(bulk[0], 10) {
		t.Fatalf("first page: %d members (next link %v)", len(ids), m)
	}
	page = r.get(c, htmlUnescape(m[1]))
	ids, _ = memberRows(page)
	if len(ids) != 5 || ids[4] != strconv.FormatInt(bulk[54], 10) || nextRE.MatchString(page) || !strings.Contains(page, `id="first-page"`) {
		t.Errorf("second page: %v, want the last 5 and no next link", ids)
	}
	for _, p := range []string{"/console/members?store=bj-sanlitun", "/console/members?guide=g-peony", "/console/members?brand=peony",
		"/console/members/" + strconv.FormatInt(peonyOnly.ID, 10), "/console/members/nope"} {
		if code := mustGet(t, c, r.srv.URL+p).StatusCode; code != http.StatusNotFound {
			t.Errorf("camellia opening %s: %d, want 404", p, code)
		}
	}
	// The admin picks the brand.
	a := r.english()
	r.signIn(a, adminToken)
	if ids, _ := memberRows(r.get(a, "/console/members?brand=peony&by=name&q=peony")); len(ids) != 1 || ids[0] != strconv.FormatInt(peonyOnly.ID, 10) {
		t.Errorf("the admin's peony search: %v", ids)
	}
}

// A member's page shows what the brand holds about them; the export is
// the API's, the erasure the API's, both in the audit trail, and a phone
// shown in full is too.
func TestConsoleMemberPage(t *testing.T) {
	r := newRig(t, "postgres", console.Config{})
	r.seedStores()
	r.put("camellia", "win-back", "dormant-win-back.yaml", true)
	r.put("peony", "peony-back", "dormant-win-back.yaml", true)
	liu := r.seedMember("camellia", "+8613800138000", "Liu Yang", "g-wang", "sh-jingan", "win-back")
	// The same person is a member of peony too, under another name.
	r.seedMember("peony", "+8613800138000", "Liu Y. at Peony", "g-peony", "bj-sanlitun", "peony-back")
	id := strconv.FormatInt(liu, 10)
	camellia := r.brandToken("camellia")

	c := r.english()
	r.signIn(c, camellia)
	page := htmlUnescape(r.get(c, "/console/members/"+id))
	for _, want := range []string{"Liu Yang", "+86138****8000", "may not see phone numbers", "wecom:north", "wm-north-Liu Yang", "Wang Fang",
		"Jing'an Flagship", "vip", "dingtalk", "Unsubscribed", "CPN-LIU", "50.00", "purchase", "win-back", "wait_reply",
		"We miss you, Liu Yang: 20% off this week", "Is the cashmere coat in stock?", `action="/console/members/` + id + `/export"`,
		`href="/console/members/` + id + `/erase"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the member page lacks %q", want)
		}
	}
	steps := regexp.MustCompile(`(?s)<ol class="steps">(.*?)</ol>`).FindStringSubmatch(page)
	if steps == nil || !strings.Contains(steps[1], "win_back</code> done") || !strings.Contains(steps[1], "wait_reply</code> waiting") {
		t.Errorf("the run's steps: %v", steps)
	}
	for _, leak := range []string{"Peony", "bj-sanlitun", "Sun Li", "+8613800138000"} {
		if strings.Contains(page, leak) {
			t.Errorf("camellia's member page shows %q", leak)
		}
	}
	if n := len(r.auditOf(store.AuditPhoneView)); n != 0 {
		t.Errorf("%d phone views recorded for a masked phone", n)
	}

	// A token that may see phones sees it, and that is in the audit trail.
	brand := "camellia"
	phones := r.english()
	r.signIn(phones, r.token(store.NewAPIToken{Name: "camellia CRM", BrandID: &brand, CanViewPhone: true}))
	if page := r.get(phones, "/console/members/"+id); !strings.Contains(htmlUnescape(page), "+8613800138000") {
		t.Error("a token that may see phones gets a masked phone")
	}
	if es := r.auditOf(store.AuditPhoneView); len(es) != 1 || es[0].ResourceIDs != "member="+id || es[0].Actor != "camellia CRM" || es[0].Route != "/console/members/:id" {
		t.Errorf("phone views: %+v", es)
	}

	// The export: refused without the form token, else the API's JSON.
	if resp := r.post(c, "/console/members/"+id+"/export", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an export without the form token: %d", resp.StatusCode)
	}
	resp := r.post(c, "/console/members/"+id+"/export", url.Values{"csrf_token": {r.csrfOf(c)}})
	got := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Disposition") != `attachment; filename="member-`+id+`.json"` {
		t.Fatalf("export: %d %q", resp.StatusCode, resp.Header.Get("Content-Disposition"))
	}
	code, want := r.apiGet(camellia, "/api/v1/members/"+id+"/export")
	var gotJSON, wantJSON map[string]any
	if err := json.Unmarshal([]byte(got), &gotJSON); err != nil || code != http.StatusOK || json.Unmarshal(want, &wantJSON) != nil {
		t.Fatalf("export %v; API %d", err, code)
	}
	if !reflect.DeepEqual(gotJSON, wantJSON) {
		t.Errorf("the console's export differs from the API's:\n%s\n%s", got, want)
	}
	if gotJSON["phone"] != "+86138****8000" || strings.Contains(got, "Peony") {
		t.Errorf("the export shows %v or peony's part", gotJSON["phone"])
	}
	var exports []store.AuditEntry
	for _, e := range r.auditOf(store.AuditMemberExport) {
		if strings.HasPrefix(e.Route, "/console/") {
			exports = append(exports, e)
		}
	}
	if len(exports) != 2 || exports[0].Route != "/console/members/:id/export" || exports[0].Status != http.StatusForbidden ||
		exports[1].Status != http.StatusOK || exports[1].ResourceIDs != "id="+id || exports[1].Actor != "camellia marketer" {
		t.Errorf("exports in the audit trail: %+v", exports)
	}

	// A read-only token may export but not erase.
	ro := r.english()
	r.signIn(ro, r.token(store.NewAPIToken{Name: "camellia analyst", BrandID: &brand, ReadOnly: true}))
	if page := r.get(ro, "/console/members/"+id); strings.Contains(page, `/erase"`) {
		t.Error("a read-only token sees the erase button")
	}
	if code := mustGet(t, ro, r.srv.URL+"/console/members/"+id+"/erase").StatusCode; code != http.StatusForbidden {
		t.Errorf("a read-only token's erase form: %d", code)
	}
	if resp := r.post(ro, "/console/members/"+id+"/erase", url.Values{"csrf_token": {r.csrfOf(ro)}, "confirm": {id}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a read-only token's erasure: %d", resp.StatusCode)
	}

	// The erasure: the form asks for the id; a wrong one erases nothing.
	if page := r.get(c, "/console/members/"+id+"/erase"); !strings.Contains(page, `name="confirm"`) || !strings.Contains(page, "Erased for: camellia") {
		t.Errorf("the erase form:\n%s", page)
	}
	token := r.csrfOf(c)
	resp = r.post(c, "/console/members/"+id+"/erase", url.Values{"csrf_token": {token}, "confirm": {id + "0"}})
	if body := readAll(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "does not match") {
		t.Errorf("a wrong confirmation: %d", resp.StatusCode)
	}
	if _, err := r.store.Member(context.Background(), liu, "camellia"); err != nil {
		t.Fatalf("a wrong confirmation erased the member: %v", err)
	}
	resp = r.post(c, "/console/members/"+id+"/erase", url.Values{"csrf_token": {token}, "confirm": {id}})
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Member "+id+" erased") || !strings.Contains(body, "memberships") {
		t.Errorf("erasing: %d\n%s", resp.StatusCode, body)
	}
	if _, err := r.store.Member(context.Background(), liu, "camellia"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after the erasure camellia still finds the member: %v", err)
	}
	if v, err := r.store.Member(context.Background(), liu, "peony"); err != nil || v.Name != "Liu Y. at Peony" {
		t.Errorf("peony's part after camellia's erasure: %v %v", v, err)
	}
	if code, _ := r.apiGet(camellia, "/api/v1/members/"+id+"/export"); code != http.StatusNotFound {
		t.Errorf("the API's export after the erasure: %d", code)
	}
	erasures := r.auditOf(store.AuditMemberErase)
	var ok int
	for _, e := range erasures {
		if e.Route == "/console/members/:id/erase" && e.Status == http.StatusOK && e.ResourceIDs == "id="+id && e.Actor == "camellia marketer" {
			ok++
		}
	}
	if ok != 1 || len(erasures) != 3 { // the read-only refusal, the wrong id, the erasure
		t.Errorf("erasures in the audit trail: %+v", erasures)
	}
}

// A brand with more stores than a filter lists: the store filter takes a
// typed id (with the listed ones as suggestions), and a store beyond the
// list is found by it.
func TestConsolePickBeyondTheLimit(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{})
	var many []store.RetailStore
	for i := range 1000 {
		many = append(many, store.RetailStore{ID: fmt.Sprintf("a-%04d", i), Name: fmt.Sprintf("Store %d", i), Lat: 31, Lng: 121,
			TimeZone: "Asia/Shanghai", Active: true, BrandIDs: []string{"camellia"}})
	}
	if err := r.store.UpsertRetailStores(context.Background(), many); err != nil {
		t.Fatal(err)
	}
	r.seedStores() // their ids sort after the thousand
	r.put("camellia", "win-back", "dormant-win-back.yaml", true)
	zhao := r.seedMember("camellia", "+8613800138000", "Zhao Lei", "g-zhao", "sh-xujiahui", "win-back")
	c := r.english()
	r.signIn(c, r.brandToken("camellia"))
	for _, p := range []string{"/console/members", "/console/guides"} {
		if page := r.get(c, p); !strings.Contains(page, `<input id="store" name="store" value="" list="store-list"`) || strings.Contains(page, `<select id="store"`) {
			t.Errorf("%s: the store filter is not a typed id", p)
		}
	}
	if ids, _ := memberRows(r.get(c, "/console/members?store=sh-xujiahui")); len(ids) != 1 || ids[0] != strconv.FormatInt(zhao, 10) {
		t.Errorf("members of a store beyond the list: %v", ids)
	}
	if page := r.get(c, "/console/guides?store=sh-xujiahui"); !strings.Contains(page, `data-guide="g-zhao"`) {
		t.Error("the guides of a store beyond the list are not shown")
	}
}

// The members page's guide filter: a brand's guides to choose from while
// it has fewer than 1,000; past that a field to type an id in, suggesting
// the listed stores' guides, and the rows still name their guides.
func TestConsoleMembersGuideFilter(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) { testMembersGuideFilter(t, dialect) })
	}
}

func testMembersGuideFilter(t *testing.T, dialect string) {
	r := newRig(t, dialect, console.Config{})
	r.seedStores()
	r.put("camellia", "win-back", "dormant-win-back.yaml", true)
	ctx := context.Background()
	liu := strconv.FormatInt(r.seedMember("camellia", "+8613800138000", "Liu Yang", "g-wang", "sh-jingan", "win-back"), 10)
	c := r.english()
	r.signIn(c, r.brandToken("camellia"))
	optionRE := regexp.MustCompile(`<option value="([^"]+)"`)
	guideOptions := func(page string) (kind string, ids []string) {
		m := regexp.MustCompile(`(?s)<label for="guide">.*?</div>`).FindString(page)
		switch {
		case strings.Contains(m, `<select id="guide"`):
			kind = "select"
		case strings.Contains(m, `<input id="guide" name="guide" value="" list="guide-list"`):
			kind = "field"
		}
		for _, o := range optionRE.FindAllStringSubmatch(m, -1) {
			ids = append(ids, o[1])
		}
		return kind, ids
	}
	all, err := r.store.Guides(ctx, "camellia", "", store.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, g := range all {
		want = append(want, g.ID)
	}
	if kind, ids := guideOptions(r.get(c, "/console/members")); kind != "select" || !reflect.DeepEqual(ids, want) {
		t.Errorf("a few guides: a %s of %v, want a select of %v", kind, ids, want)
	}
	if opts, many, err := r.store.BrandGuideOptions(ctx, "camellia", 999); err != nil || many || len(opts) != len(all) {
		t.Errorf("BrandGuideOptions: %d, many %v, %v; want %d", len(opts), many, err, len(all))
	}

	// 1,000 more guides in West Lake, whose ids come before g-wang's.
	for i := 1; i <= 1000; i++ {
		g := store.Guide{ID: fmt.Sprintf("aa-%04d", i), StoreID: "hz-westlake", Name: fmt.Sprintf("West %04d", i), Capacity: 10, Active: true}
		if err := r.store.CreateGuide(ctx, &g); err != nil {
			t.Fatal(err)
		}
	}
	if opts, many, err := r.store.BrandGuideOptions(ctx, "camellia", 999); err != nil || !many || opts != nil {
		t.Errorf("BrandGuideOptions past 999: %d, many %v, %v", len(opts), many, err)
	}
	page := r.get(c, "/console/members?by=phone&q=13800138000")
	kind, ids := guideOptions(page)
	if kind != "field" || len(ids) != 1000 || ids[0] != "aa-0001" || ids[999] != "aa-1000" {
		t.Errorf("many guides: a %s of %d (%v…)", kind, len(ids), ids[:min(1, len(ids))])
	}
	// Liu Yang's guide is not among the suggestions; the row names her.
	if _, cells := memberRows(page); !strings.Contains(cells[liu], "Wang Fang Jing'an Flagship") {
		t.Errorf("Liu Yang's row %q does not name her guide", cells[liu])
	}
	// One store's guides are listed.
	if kind, ids := guideOptions(r.get(c, "/console/members?store=sh-jingan")); kind != "select" || len(ids) == 0 || slices.Contains(ids, "aa-0001") {
		t.Errorf("Jing'an's guides: a %s of %v", kind, ids)
	}
}
