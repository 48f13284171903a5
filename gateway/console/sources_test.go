package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/store"
)

var secretRE = regexp.MustCompile(`id="secret" value="(whsec_[^"]+)"`)

// secretsOf returns a source's secrets as the signature checks get them
// (current first), nil when it is not active.
func (r *rig) secretsOf(id string) []string {
	r.t.Helper()
	all, err := r.store.ActiveSourceSecrets(context.Background(), r.clock())
	if err != nil {
		r.t.Fatal(err)
	}
	for _, s := range all {
		if s.ID == id {
			return s.Secrets
		}
	}
	return nil
}

// Event sources on the commerce page: a brand makes one and sees its
// secret once, on the answer to the form, which the signature checks then
// accept; rotates one with or without overlap; disables and enables it;
// cannot touch another brand's; a read-only token sees no forms and may
// not post; every write is audited and tells the signature checks.
func TestConsoleEventSources(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) { testEventSources(t, dialect) })
	}
}

func testEventSources(t *testing.T, dialect string) {
	r := newRig(t, dialect, console.Config{})
	r.seedStores()
	r.seedCommerce()
	c := r.english()
	r.signIn(c, r.brandToken("camellia"))
	page := r.get(c, "/console/commerce")
	if !strings.Contains(page, `id="new-source"`) || !strings.Contains(page, `action="/console/commerce/sources/pos-shanghai/rotate"`) {
		t.Fatal("the commerce page has no forms for the event sources")
	}
	csrf := csrfRE.FindStringSubmatch(page)[1]
	post := func(path string, form url.Values) (*http.Response, string) {
		t.Helper()
		if form == nil {
			form = url.Values{}
		}
		form.Set("csrf_token", csrf)
		resp := r.post(c, path, form)
		return resp, readAll(t, resp)
	}

	// Make one: the secret is on the answer, once, and signs.
	resp, body := post("/console/commerce/sources", url.Values{"id": {"shop-online"}, "description": {"Online shop"}})
	m := secretRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusCreated || m == nil || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("making a source: %d, Cache-Control %q:\n%s", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
	}
	secret := htmlUnescape(m[1])
	if got := r.secretsOf("shop-online"); !slices.Equal(got, []string{secret}) {
		t.Errorf("the signature checks have %q, the page showed %q", got, secret)
	}
	src, err := r.store.EventSource(context.Background(), "shop-online", "camellia")
	if err != nil || src.Description != "Online shop" || !src.Active {
		t.Errorf("stored source: %+v, %v", src, err)
	}
	page = r.get(c, "/console/commerce")
	if strings.Contains(page, secret) || strings.Contains(page, "whsec_") || !strings.Contains(page, `data-signing="shop-online"`) {
		t.Error("the commerce page shows a secret, or not the new source")
	}
	if n := r.sourcesChanged.Load(); n != 1 {
		t.Errorf("the signature checks were told %d times, want 1", n)
	}

	// Refused: the configured source's id, an id taken, a malformed id.
	for _, tc := range []struct {
		id     string
		status int
		says   string
	}{
		{"default", http.StatusBadRequest, "webhook.secret"},
		{"pos-shanghai", http.StatusConflict, `There is already an event source &#34;pos-shanghai&#34;`},
		{"pos-beijing", http.StatusConflict, "already"}, // peony's: ids are global
		{"no spaces please", http.StatusBadRequest, "Not saved"},
		{"", http.StatusBadRequest, "Not saved"},
	} {
		resp, body := post("/console/commerce/sources", url.Values{"id": {tc.id}})
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.says) || strings.Contains(body, "whsec_") {
			t.Errorf("making %q: %d, want %d saying %q:\n%s", tc.id, resp.StatusCode, tc.status, tc.says, body)
		}
	}

	// Rotate with the old secret stopping now, then with a day's overlap.
	old := r.secretsOf("pos-shanghai")
	resp, body = post("/console/commerce/sources/pos-shanghai/rotate", url.Values{"overlap": {"0s"}})
	m = secretRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil || strings.Contains(body, `id="overlap"`) {
		t.Fatalf("rotating: %d:\n%s", resp.StatusCode, body)
	}
	if got := r.secretsOf("pos-shanghai"); !slices.Equal(got, []string{htmlUnescape(m[1])}) || slices.Contains(got, old[0]) {
		t.Errorf("after a rotation without overlap the checks have %q, want only %q", got, m[1])
	}
	first := htmlUnescape(m[1])
	resp, body = post("/console/commerce/sources/pos-shanghai/rotate", url.Values{"overlap": {"24h"}})
	m = secretRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(body, `id="overlap"`) {
		t.Fatalf("rotating with overlap: %d:\n%s", resp.StatusCode, body)
	}
	if got := r.secretsOf("pos-shanghai"); !slices.Equal(got, []string{htmlUnescape(m[1]), first}) {
		t.Errorf("after a rotation with overlap the checks have %q, want %q", got, []string{m[1], first})
	}
	if resp, _ := post("/console/commerce/sources/pos-shanghai/rotate", url.Values{"overlap": {"9999h"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an overlap past 720h: %d", resp.StatusCode)
	}

	// Disable, then enable.
	resp, _ = post("/console/commerce/sources/shop-online/disable", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/commerce#sources" || r.secretsOf("shop-online") != nil {
		t.Errorf("disabling: %d to %q; checks have %q", resp.StatusCode, resp.Header.Get("Location"), r.secretsOf("shop-online"))
	}
	if page := r.get(c, "/console/commerce"); !strings.Contains(page, `id="enable-shop-online"`) {
		t.Error("a disabled source has no enable button")
	}
	if resp, _ = post("/console/commerce/sources/shop-online/enable", nil); resp.StatusCode != http.StatusSeeOther || r.secretsOf("shop-online") == nil {
		t.Errorf("enabling: %d", resp.StatusCode)
	}

	// Another brand's source does not exist for camellia.
	peony := r.secretsOf("pos-beijing")
	for _, p := range []string{"/console/commerce/sources/pos-beijing/rotate", "/console/commerce/sources/pos-beijing/disable",
		"/console/commerce/sources?brand=peony"} {
		if resp, _ := post(p, url.Values{"id": {"peony-new"}}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("camellia posting %s: %d, want 404", p, resp.StatusCode)
		}
	}
	if got := r.secretsOf("pos-beijing"); !slices.Equal(got, peony) {
		t.Error("camellia changed peony's source")
	}
	if _, err := r.store.EventSource(context.Background(), "peony-new", ""); err == nil {
		t.Error("camellia made a source for peony")
	}

	// Without the form's token nothing changes.
	resp = r.post(c, "/console/commerce/sources/shop-online/disable", url.Values{})
	readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden || r.secretsOf("shop-online") == nil {
		t.Errorf("a post without the CSRF token: %d", resp.StatusCode)
	}

	// The admin works on peony's with ?brand=.
	a := r.english()
	r.signIn(a, adminToken)
	page = r.get(a, "/console/commerce?brand=peony")
	if !strings.Contains(page, `action="/console/commerce/sources/pos-beijing/rotate?brand=peony"`) {
		t.Fatal("the admin's page has no rotate form for peony's source")
	}
	resp = r.post(a, "/console/commerce/sources/pos-beijing/disable?brand=peony", url.Values{"csrf_token": {csrfRE.FindStringSubmatch(page)[1]}})
	readAll(t, resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/commerce?brand=peony#sources" || r.secretsOf("pos-beijing") != nil {
		t.Errorf("the admin disabling peony's source: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A read-only token sees the sources, no forms, and may not post.
	ro := r.english()
	brand := "camellia"
	r.signIn(ro, r.token(store.NewAPIToken{Name: "auditor", BrandID: &brand, ReadOnly: true}))
	page = r.get(ro, "/console/commerce")
	if strings.Contains(page, `id="new-source"`) || strings.Contains(page, "/rotate") || !strings.Contains(page, `data-signing="shop-online"`) {
		t.Error("a read-only token's page has the forms, or lacks the sources")
	}
	resp = r.post(ro, "/console/commerce/sources/shop-online/disable", url.Values{"csrf_token": {csrfRE.FindStringSubmatch(page)[1]}})
	readAll(t, resp)
	if resp.StatusCode != http.StatusForbidden || r.secretsOf("shop-online") == nil {
		t.Errorf("a read-only token disabling: %d", resp.StatusCode)
	}

	// Audited, without the secret.
	var routes []string
	for _, e := range r.auditLog() {
		if strings.HasPrefix(e.Route, "/console/commerce/sources") {
			routes = append(routes, e.Method+" "+e.Route+" "+e.ResourceIDs)
		}
		if strings.Contains(e.Note+e.ResourceIDs+e.Route, "whsec_") {
			t.Errorf("an audit entry holds a secret: %+v", e)
		}
	}
	for _, want := range []string{"POST /console/commerce/sources ", "POST /console/commerce/sources/:id/rotate id=pos-shanghai",
		"POST /console/commerce/sources/:id/disable id=shop-online", "POST /console/commerce/sources/:id/enable id=shop-online"} {
		if !slices.ContainsFunc(routes, func(r string) bool { return strings.HasPrefix(r, want) }) {
			t.Errorf("no audit entry %q in %q", want, routes)
		}
	}
	if n := r.sourcesChanged.Load(); n != 6 {
		t.Errorf("the signature checks were told %d times, want 6 (made, rotated twice, disabled, enabled, the admin's disable)", n)
	}
}
