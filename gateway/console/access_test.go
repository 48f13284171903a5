package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/store"
)

// A read-only token sees the workflows but not the buttons that change
// them, and its writes are refused with a page that says why (and
// audited); a token limited to other route groups gets 403 on the
// workflow pages, which its top bar does not offer.
func TestConsoleTokenScopes(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{})
	src := r.put("camellia", "welcome", "new-member-welcome.yaml", false)
	brand := "camellia"
	ro := r.token(store.NewAPIToken{Name: "camellia analyst", BrandID: &brand, ReadOnly: true})
	guidesOnly := r.token(store.NewAPIToken{Name: "camellia stores", BrandID: &brand, Resources: []string{"guides"}})

	c := r.english()
	r.signIn(c, ro)
	list := r.get(c, "/console/workflows")
	if !strings.Contains(list, `data-workflow="camellia/welcome"`) || strings.Contains(list, "/console/workflows/new") {
		t.Errorf("a read-only token's list: the workflow %v, the New button %v", strings.Contains(list, "camellia/welcome"), strings.Contains(list, "/workflows/new"))
	}
	page := r.get(c, "/console/workflows/camellia/welcome")
	for _, button := range []string{`id="save"`, `id="enable"`, `/retire"`} {
		if strings.Contains(page, button) {
			t.Errorf("a read-only token's editor shows %s", button)
		}
	}
	if !strings.Contains(page, `id="run-dryrun"`) {
		t.Error("a read-only token's editor lacks the dry run (it writes nothing)")
	}
	token := formToken(t, page)
	for _, w := range []struct{ path, form string }{
		{"/console/workflows/camellia/welcome/save", "yaml"},
		{"/console/workflows/camellia/welcome/enable", ""},
		{"/console/workflows/camellia/welcome/versions/x/retire", ""},
		{"/console/workflows/new", "yaml"},
	} {
		code, body := postForm(t, c, r.srv.URL+w.path, url.Values{"csrf_token": {token}, "yaml": {src}})
		if code != http.StatusForbidden || !strings.Contains(htmlUnescape(body), "This token is read-only") {
			t.Errorf("POST %s with a read-only token: %d, want 403 saying it is read-only", w.path, code)
		}
	}
	if code := mustGet(t, c, r.srv.URL+"/console/workflows/new").StatusCode; code != http.StatusForbidden {
		t.Errorf("the new-workflow page with a read-only token: %d, want 403", code)
	}
	// Dry runs and validation write nothing: allowed.
	code, body := postForm(t, c, r.srv.URL+"/console/workflows/camellia/welcome/dry-run", url.Values{"csrf_token": {token}, "yaml": {src}, "start": {"2026-12-01T10:00:00+08:00"}})
	if code != http.StatusOK || !strings.Contains(body, `class="timeline"`) {
		t.Errorf("a read-only dry run: %d", code)
	}
	if h, _ := r.store.Workflow(context.Background(), "camellia", "welcome"); h.Enabled {
		t.Error("a read-only token enabled the workflow")
	}
	if vs, _ := r.store.WorkflowVersions(context.Background(), "camellia", "welcome"); len(vs) != 1 {
		t.Error("a read-only token stored a version")
	}
	var refused int
	for _, e := range r.auditLog() {
		if e.Actor == "camellia analyst" {
			if e.Status != http.StatusForbidden || e.Note != "read_only" || e.Action != store.AuditWrite || e.Brand != "camellia" || e.TokenID == nil {
				t.Errorf("a refused console write's entry: %+v", e)
			}
			refused++
		}
	}
	if refused != 4 {
		t.Errorf("%d refused writes audited, want 4", refused)
	}

	g := r.english()
	r.signIn(g, guidesOnly)
	resp, err := g.Get(r.srv.URL + "/console/workflows/camellia/welcome")
	if err != nil {
		t.Fatal(err)
	}
	body = readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(htmlUnescape(body), "This token may use only guides; this page belongs to workflows") {
		t.Errorf("a guides-only token on a workflow: %d\n%s", resp.StatusCode, body)
	}
	if nav := body[strings.Index(body, "<nav"):strings.Index(body, "</nav>")]; strings.Contains(nav, `/console/workflows"`) {
		t.Error("a guides-only token's top bar offers the workflows")
	}
}

// Every console write is in the audit trail with the API's fields: who,
// the console's route, the path's ids, the status.
func TestConsoleWritesAudited(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{})
	src := r.put("camellia", "welcome", "new-member-welcome.yaml", false)
	tok := r.brandToken("camellia")
	c := r.client()
	r.signIn(c, tok)
	token := formToken(t, r.get(c, "/console/workflows/camellia/welcome"))
	base := r.srv.URL + "/console/workflows/camellia/welcome"
	if code, _ := postForm(t, c, base+"/save", url.Values{"csrf_token": {token}, "yaml": {strings.Replace(src, "wait: 27d", "wait: 20d", 1)}}); code != http.StatusSeeOther {
		t.Fatalf("saving: %d", code)
	}
	if code, _ := postForm(t, c, base+"/enable", url.Values{"csrf_token": {token}}); code != http.StatusSeeOther {
		t.Fatalf("enabling: %d", code)
	}
	if code, _ := postForm(t, c, base+"/disable", url.Values{"csrf_token": {"forged"}}); code != http.StatusForbidden {
		t.Fatalf("disabling without the CSRF token: %d", code)
	}
	created := strings.Replace(strings.Replace(src, "name: welcome", "name: fresh", 1), "wait: 27d", "wait: 21d", 1)
	if code, _ := postForm(t, c, r.srv.URL+"/console/workflows/new", url.Values{"csrf_token": {token}, "yaml": {created}}); code != http.StatusSeeOther {
		t.Fatalf("creating: %d", code)
	}
	// Reads and dry runs are not audited.
	r.get(c, "/console/workflows")
	postForm(t, c, base+"/dry-run", url.Values{"csrf_token": {token}, "yaml": {src}})

	type seen struct {
		Route, IDs, Note string
		Status           int
	}
	var got []seen
	for _, e := range r.auditLog() {
		if e.Actor != "camellia marketer" || e.Brand != "camellia" || e.Action != store.AuditWrite || e.Method != http.MethodPost ||
			e.Resource != "workflows" || e.TokenID == nil || e.ClientIP == "" || e.UserAgent == "" {
			t.Errorf("entry %+v", e)
		}
		got = append(got, seen{e.Route, e.ResourceIDs, e.Note, e.Status})
	}
	want := []seen{
		{"/console/workflows/:brand/:name/save", "brand=camellia&name=welcome", "", http.StatusSeeOther},
		{"/console/workflows/:brand/:name/enable", "brand=camellia&name=welcome", "", http.StatusSeeOther},
		{"/console/workflows/:brand/:name/disable", "brand=camellia&name=welcome", "csrf", http.StatusForbidden},
		{"/console/workflows/new", "brand=camellia&name=fresh", "", http.StatusSeeOther},
	}
	if len(got) != len(want) {
		t.Fatalf("audit trail:\n%+v\nwant\n%+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
