package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// sessionCookie returns the session cookie a response set.
func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == "scrmgw_console" {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", resp.Header.Values("Set-Cookie"))
	return nil
}

func TestConsoleSessionCookie(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			r := newRig(t, d, console.Config{IdleTimeout: time.Hour, MaxAge: 3 * time.Hour})
			c := r.client()
			resp := r.signIn(c, adminToken)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/workflows" {
				t.Fatalf("sign-in: %d to %q, want 303 to /console/workflows", resp.StatusCode, resp.Header.Get("Location"))
			}
			ck := sessionCookie(t, resp)
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console/" || ck.MaxAge != 3*3600 || ck.Secure {
				t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/console/, Max-Age=10800, not Secure on plain http", ck)
			}
			if len(ck.Value) < 40 || strings.Contains(resp.Header.Get("Location"), adminToken) {
				t.Errorf("cookie value %q is not a long random id, or the token leaked into the redirect", ck.Value)
			}
			// The cookie is not the session's key in the store: its hash is.
			if _, err := r.store.ConsoleSession(context.Background(), ck.Value, time.Now(), time.Now().Add(-time.Hour)); err == nil {
				t.Error("the cookie value is stored as the session id; want its hash")
			}
			if body := r.get(c, "/console/workflows"); !strings.Contains(body, `id="main"`) {
				t.Fatalf("signed in, the list is not shown:\n%s", body)
			}

			// Idle: 59 minutes later still in (the visit renews it), then
			// an hour without a request ends it.
			r.advance(59 * time.Minute)
			if resp := mustGet(t, c, r.srv.URL+"/console/workflows"); resp.StatusCode != http.StatusOK {
				t.Fatalf("after 59m idle: %d", resp.StatusCode)
			}
			r.advance(61 * time.Minute)
			if resp := mustGet(t, c, r.srv.URL+"/console/workflows"); resp.StatusCode != http.StatusSeeOther ||
				!strings.HasPrefix(resp.Header.Get("Location"), "/console/sign-in") {
				t.Fatalf("after 61m idle: %d to %q, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
			}

			// Absolute: busy all along, out after MaxAge.
			c = r.client()
			r.signIn(c, adminToken)
			for i := 0; i < 4; i++ {
				r.advance(40 * time.Minute)
				if resp := mustGet(t, c, r.srv.URL+"/console/workflows"); resp.StatusCode != http.StatusOK {
					t.Fatalf("busy session after %dm: %d", (i+1)*40, resp.StatusCode)
				}
			}
			r.advance(time.Hour)
			if resp := mustGet(t, c, r.srv.URL+"/console/workflows"); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("after max_age: %d, want 303 to sign in", resp.StatusCode)
			}

			// A revoked brand token ends its sessions at once.
			tok, row, err := r.store.CreateAPIToken(context.Background(), store.NewAPIToken{Name: "camellia marketer", BrandID: ptr("camellia")})
			if err != nil {
				t.Fatal(err)
			}
			c = r.client()
			r.signIn(c, tok)
			if resp := mustGet(t, c, r.srv.URL+"/console/workflows"); resp.StatusCode != http.StatusOK {
				t.Fatalf("brand token: %d", resp.StatusCode)
			}
			if err := r.store.RevokeAPIToken(context.Background(), row.ID); err != nil {
				t.Fatal(err)
			}
			if resp := mustGet(t, c, r.srv.URL+"/console/workflows"); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("revoked token: %d, want 303 to sign in", resp.StatusCode)
			}

			// A bad token: 401 and no session.
			c = r.client()
			resp = r.signIn(c, "scrmgw_not-a-token")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("bad token: %d, want 401", resp.StatusCode)
			}
			for _, ck := range resp.Cookies() {
				if ck.Name == "scrmgw_console" && ck.Value != "" {
					t.Error("a bad token got a session")
				}
			}

			// Signing out ends the session in the store, not only the cookie.
			c = r.client()
			resp = r.signIn(c, adminToken)
			old := sessionCookie(t, resp)
			page := r.get(c, "/console/workflows")
			out, err := c.PostForm(r.srv.URL+"/console/sign-out", url.Values{"csrf_token": {csrfRE.FindStringSubmatch(page)[1]}})
			if err != nil {
				t.Fatal(err)
			}
			out.Body.Close()
			if out.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-out: %d", out.StatusCode)
			}
			replay := r.client()
			req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/console/workflows", nil)
			req.AddCookie(&http.Cookie{Name: old.Name, Value: old.Value})
			resp, err = replay.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("the signed-out cookie replayed: %d, want 303 to sign in", resp.StatusCode)
			}
		})
	}
}

func TestConsoleSecureCookie(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{SecureCookies: true})
	resp := r.signIn(r.client(), adminToken)
	if ck := sessionCookie(t, resp); !ck.Secure {
		t.Errorf("with SecureCookies (console.public_url https): cookie %+v is not Secure", ck)
	}
	// Over TLS it is Secure without configuration.
	tr := newRig(t, "sqlite", console.Config{})
	tls := httptestTLS(t, tr)
	c := tls.Client()
	jarClient(c)
	page := getBody(t, c, tls.URL+"/console/sign-in")
	resp, err := c.PostForm(tls.URL+"/console/sign-in", url.Values{"token": {adminToken}, "csrf_token": {csrfRE.FindStringSubmatch(page)[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ck := sessionCookie(t, resp); !ck.Secure {
		t.Errorf("over TLS: cookie %+v is not Secure", ck)
	}
}

func TestConsoleCSRF(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{})
	r.put("camellia", "welcome", "new-member-welcome.yaml", false)
	c := r.client()
	r.signIn(c, adminToken)
	page := r.get(c, "/console/workflows/camellia/welcome")
	token := csrfRE.FindStringSubmatch(page)[1]

	post := func(path string, form url.Values) int {
		resp, err := c.PostForm(r.srv.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/console/workflows/camellia/welcome/enable", "/console/workflows/camellia/welcome/save",
		"/console/workflows/camellia/welcome/versions/x/retire", "/console/sign-out", "/console/workflows/new"} {
		if got := post(path, url.Values{}); got != http.StatusForbidden {
			t.Errorf("POST %s without the CSRF token: %d, want 403", path, got)
		}
		if got := post(path, url.Values{"csrf_token": {"forged"}}); got != http.StatusForbidden {
			t.Errorf("POST %s with a wrong CSRF token: %d, want 403", path, got)
		}
	}
	if h, err := r.store.Workflow(context.Background(), "camellia", "welcome"); err != nil || h.Enabled {
		t.Fatalf("a refused enable enabled the workflow (%v)", err)
	}
	// The script's endpoint takes the token in the header only.
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/console/validate", strings.NewReader(`{"yaml": "name: x"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("validate without X-CSRF-Token: %d, want 403", resp.StatusCode)
	}
	// With the token, the same requests work.
	if got := post("/console/workflows/camellia/welcome/enable", url.Values{"csrf_token": {token}}); got != http.StatusSeeOther {
		t.Fatalf("enable with the token: %d, want 303", got)
	}
	if h, _ := r.store.Workflow(context.Background(), "camellia", "welcome"); !h.Enabled {
		t.Error("enable with the token did not enable")
	}
	// Signing in needs the sign-in form's token too (no login CSRF).
	resp, err = r.client().PostForm(r.srv.URL+"/console/sign-in", url.Values{"token": {adminToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without the form token: %d, want 403", resp.StatusCode)
	}
}

func TestConsoleHeaders(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{})
	c := r.client()
	for _, path := range []string{"/console/sign-in", "/console/static/console.css", "/console/workflows/camellia/nope", "/console/no/such/page"} {
		resp := mustGet(t, c, r.srv.URL+path)
		if strings.Contains(path, "no/such") && (resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html")) {
			t.Errorf("%s: %d %s, want the console's 404 page", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: CSP %q, X-Frame-Options %q", path, csp, resp.Header.Get("X-Frame-Options"))
		}
	}
	// No page has an inline script or style.
	r.put("camellia", "welcome", "new-member-welcome.yaml", false)
	r.put("camellia", "win-back", "dormant-win-back.yaml", true)
	r.seedStores()
	member := "/console/members/" + itoa(int(r.seedMember("camellia", "+8613800138000", "Liu Yang", "g-wang", "sh-jingan", "win-back")))
	r.signIn(c, adminToken)
	inline := regexp.MustCompile(`<script>|<script [^>]*>[^<]|<style|style="|\son[a-z]+="`)
	for _, path := range []string{member, member + "/erase", "/console/members?brand=camellia&by=name&q=liu", "/console/commerce?brand=camellia",
		"/console/operations", "/console/sign-in", "/console/workflows", "/console/workflows/camellia/welcome", "/console/workflows/new",
		"/console/workflows/camellia/welcome/diff", "/console/funnel", "/console/guides?brand=camellia", "/console/stores?brand=camellia&lat=31.2&lng=121.4",
		"/console/stores/sh-jingan/qr"} {
		if m := inline.FindString(r.get(c, path)); m != "" {
			t.Errorf("%s has inline script or style: %q", path, m)
		}
	}
}

func TestConsoleLanguage(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{})
	for _, tc := range []struct{ accept, want string }{
		{"en-US,en;q=0.9", "Sign in to the console"},
		{"zh-CN,zh;q=0.9,en;q=0.8", "登录控制台"},
		{"fr-FR, en;q=0.5, zh;q=0.7", "登录控制台"},
		{"", "登录控制台"},
	} {
		req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/console/sign-in", nil)
		req.Header.Set("Accept-Language", tc.accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if !strings.Contains(body, tc.want) {
			t.Errorf("Accept-Language %q: page lacks %q", tc.accept, tc.want)
		}
	}
	// The switch wins over the header, and stays.
	c := r.client()
	resp := mustGet(t, c, r.srv.URL+"/console/language?lang=en&next=/console/sign-in")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/sign-in" {
		t.Fatalf("switch: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, _ := http.NewRequest(http.MethodGet, r.srv.URL+"/console/sign-in", nil)
	req.Header.Set("Accept-Language", "zh-CN")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); !strings.Contains(body, "Sign in to the console") {
		t.Error("after switching to English, a zh browser still gets Chinese")
	}
	// next= stays in the console.
	resp = mustGet(t, c, r.srv.URL+"/console/language?lang=zh&next=https://evil.example/")
	if loc := resp.Header.Get("Location"); loc != "/console/workflows" {
		t.Errorf("next to another site: redirected to %q", loc)
	}
}

func TestConsoleBrandScope(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{})
	r.put("camellia", "welcome", "new-member-welcome.yaml", true)
	r.put("peony", "peony-welcome", "new-member-welcome.yaml", false)
	c := r.client()
	r.signIn(c, r.brandToken("camellia"))
	list := r.get(c, "/console/workflows")
	if !strings.Contains(list, `data-workflow="camellia/welcome"`) || strings.Contains(list, "peony") {
		t.Errorf("camellia's list: want camellia/welcome only:\n%s", list)
	}
	for _, path := range []string{"/console/workflows/peony/peony-welcome", "/console/workflows/peony/peony-welcome/diff"} {
		if resp := mustGet(t, c, r.srv.URL+path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s with camellia's token: %d, want 404", path, resp.StatusCode)
		}
	}
	page := r.get(c, "/console/workflows/camellia/welcome")
	token := csrfRE.FindStringSubmatch(page)[1]
	resp, err := c.PostForm(r.srv.URL+"/console/workflows/peony/peony-welcome/enable", url.Values{"csrf_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("enabling peony's workflow with camellia's token: %d, want 404", resp.StatusCode)
	}
	if h, _ := r.store.Workflow(context.Background(), "peony", "peony-welcome"); h.Enabled {
		t.Error("camellia's token enabled peony's workflow")
	}
	// Creating a workflow for another brand is refused too.
	resp, err = c.PostForm(r.srv.URL+"/console/workflows/new", url.Values{"csrf_token": {token},
		"yaml": {strings.Replace(starterFor(t, r, c), "brand: camellia", "brand: peony", 1)}})
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "camellia") {
		t.Errorf("creating for peony with camellia's token: %d", resp.StatusCode)
	}
	if _, err := r.store.Workflow(context.Background(), "peony", "new-workflow"); err == nil {
		t.Error("camellia's token created a workflow for peony")
	}
}

// starterFor returns the YAML the new-workflow page starts from.
func starterFor(t *testing.T, r *rig, c *http.Client) string {
	t.Helper()
	page := r.get(c, "/console/workflows/new")
	m := regexp.MustCompile(`(?s)<textarea id="yaml"[^>]*>(.*?)</textarea>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no editor on the new page")
	}
	return htmlUnescape(m[1])
}

func TestConsoleValidate(t *testing.T) {
	r := newRig(t, "postgres", console.Config{})
	src := r.put("camellia", "welcome", "new-member-welcome.yaml", false)
	c := r.client()
	r.signIn(c, adminToken)
	page := r.get(c, "/console/workflows/camellia/welcome")
	token := regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`).FindStringSubmatch(page)[1]
	validate := func(yaml string) (status int, res struct {
		OK       bool   `json:"ok"`
		Summary  string `json:"summary"`
		Diagram  string `json:"diagram"`
		Problems []struct {
			Line, Column int
			Text         string
		} `json:"problems"`
	}) {
		body, _ := json.Marshal(map[string]string{"name": "welcome", "yaml": yaml})
		req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/console/validate", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(console.CSRFHeader, token)
		req.Header.Set("Accept-Language", "en")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, res
	}
	status, res := validate(src)
	if status != http.StatusOK || !res.OK || len(res.Problems) != 0 || !strings.Contains(res.Diagram, "<svg") {
		t.Fatalf("valid workflow: %d %+v", status, res)
	}
	// A typo: the error at its line and column, in the CLI's words.
	bad := strings.Replace(src, "    due_in: 1d", "    due_inn: 1d", 1)
	line := 1 + strings.Count(bad[:strings.Index(bad, "due_inn")], "\n")
	_, res = validate(bad)
	if res.OK || len(res.Problems) != 1 {
		t.Fatalf("typo: %+v, want one problem", res)
	}
	p := res.Problems[0]
	want := regexp.MustCompile(`^welcome\.yaml:` + itoa(line) + `:5: steps\[1\]\.due_inn: unknown field "due_inn" .*did you mean "due_in"`)
	if p.Line != line || p.Column != 5 || !want.MatchString(p.Text) {
		t.Errorf("typo problem %+v, want line %d column 5 matching %s", p, line, want)
	}
}

func TestLineDiffThroughPage(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{})
	src := r.put("camellia", "welcome", "new-member-welcome.yaml", false)
	v2 := strings.Replace(src, "wait: 27d", "wait: 20d", 1) + "\n# recall sooner\n"
	if _, err := r.engine.Put(context.Background(), "camellia", "welcome", []byte(v2)); err != nil {
		t.Fatal(err)
	}
	c := r.client()
	r.signIn(c, adminToken)
	body := r.get(c, "/console/workflows/camellia/welcome/diff")
	rows := regexp.MustCompile(`<tr class="d-(add|del)"><td class="ln">(\d*)</td><td class="ln">(\d*)</td><td class="op">[^<]*</td><td class="tx">([^<]*)</td>`).FindAllStringSubmatch(body, -1)
	var got []string
	for _, m := range rows {
		got = append(got, m[1]+" "+m[2]+" "+m[3]+" "+m[4])
	}
	want := []string{"del 56  " + "    wait: 27d", "add  56 " + "    wait: 20d", "add  64 ", "add  65 # recall sooner"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diff rows (-want +got):\n%s", diff)
	}
	if !strings.Contains(body, `id="added">3<`) || !strings.Contains(body, `id="deleted">1<`) {
		t.Error("the diff page does not count 3 added and 1 deleted lines")
	}
}

func ptr[T any](v T) *T { return &v }

// formToken returns the CSRF token of a console page.
func formToken(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", page)
	}
	return m[1]
}

func postForm(t *testing.T, c *http.Client, u string, form url.Values) (int, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readAll(t, resp)
}

func TestConsoleSaveAndRetire(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{})
	src := r.put("camellia", "welcome", "new-member-welcome.yaml", true)
	c := r.client()
	r.signIn(c, adminToken)
	token := formToken(t, r.get(c, "/console/workflows/camellia/welcome"))
	save := func(yaml string) (int, string) {
		return postForm(t, c, r.srv.URL+"/console/workflows/camellia/welcome/save", url.Values{"csrf_token": {token}, "yaml": {yaml}})
	}
	versions := func() int {
		vs, err := r.store.WorkflowVersions(context.Background(), "camellia", "welcome")
		if err != nil {
			t.Fatal(err)
		}
		return len(vs)
	}

	// Invalid YAML: the problems, in the CLI's words, and nothing stored.
	code, body := save(strings.Replace(src, "send: recall", "send: recal", 1))
	if code != http.StatusUnprocessableEntity || !strings.Contains(htmlUnescape(body), `welcome.yaml:`) ||
		!strings.Contains(htmlUnescape(body), `did you mean "recall"`) || versions() != 1 {
		t.Errorf("saving a typo: %d, %d versions", code, versions())
	}
	// The engine's own checks come back too: a file named otherwise.
	code, body = save(strings.Replace(src, "name: welcome", "name: other", 1))
	if code != http.StatusUnprocessableEntity || !strings.Contains(htmlUnescape(body), `the file is named "other", not "welcome"`) || versions() != 1 {
		t.Errorf("saving another name: %d, %d versions", code, versions())
	}
	// A good edit is a new version, the current one; running members
	// stay on theirs.
	edited := strings.Replace(src, "wait: 27d", "wait: 20d", 1)
	code, _ = save(edited)
	if code != http.StatusSeeOther || versions() != 2 {
		t.Fatalf("saving an edit: %d, %d versions", code, versions())
	}
	head, _ := r.store.Workflow(context.Background(), "camellia", "welcome")
	if !head.Enabled {
		t.Error("a saved version disabled the workflow")
	}
	page := r.get(c, "/console/workflows/camellia/welcome?saved="+head.Version)
	if !strings.Contains(page, head.Version) || !strings.Contains(page, "wait: 20d") {
		t.Error("the editor does not show the saved version")
	}
	// The old version, read-only in the editor by ?version=.
	vs, _ := r.store.WorkflowVersions(context.Background(), "camellia", "welcome")
	if old := r.get(c, "/console/workflows/camellia/welcome?version="+vs[0].Version); !strings.Contains(old, "wait: 27d") {
		t.Error("?version= does not show the old version")
	}

	// Retire the current version: the workflow is retired in the list.
	code, _ = postForm(t, c, r.srv.URL+"/console/workflows/camellia/welcome/versions/"+head.Version+"/retire", url.Values{"csrf_token": {token}})
	if code != http.StatusSeeOther {
		t.Fatalf("retire: %d", code)
	}
	if list := r.get(c, "/console/workflows"); !strings.Contains(list, `state-retired`) {
		t.Error("the list does not show the retired workflow as retired")
	}
	// Disable and enable.
	if code, _ := postForm(t, c, r.srv.URL+"/console/workflows/camellia/welcome/enable", url.Values{"csrf_token": {token}}); code != http.StatusSeeOther {
		t.Errorf("enable: %d", code)
	}
	if code, _ := postForm(t, c, r.srv.URL+"/console/workflows/camellia/welcome/disable", url.Values{"csrf_token": {token}}); code != http.StatusSeeOther {
		t.Errorf("disable: %d", code)
	}
	if h, _ := r.store.Workflow(context.Background(), "camellia", "welcome"); h.Enabled {
		t.Error("disable did not disable")
	}
	// A new workflow from the new page's starter.
	code, _ = postForm(t, c, r.srv.URL+"/console/workflows/new", url.Values{"csrf_token": {token}, "yaml": {starterFor(t, r, c)}})
	if code != http.StatusSeeOther {
		t.Fatalf("creating from the starter: %d", code)
	}
	if h, err := r.store.Workflow(context.Background(), "camellia", "new-workflow"); err != nil || h.Enabled {
		t.Errorf("the new workflow: %+v %v, want stored and disabled", h, err)
	}
}

func TestConsoleDryRunStoredMember(t *testing.T) {
	r := newRig(t, "postgres", console.Config{})
	src := r.put("camellia", "welcome", "new-member-welcome.yaml", false)
	ctx := context.Background()
	m, _, err := r.store.EnsureMember(ctx, store.NewMember{BrandID: "camellia", Name: "韩梅梅",
		Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-han"}}})
	if err != nil {
		t.Fatal(err)
	}
	c := r.client()
	r.signIn(c, r.brandToken("camellia"))
	token := formToken(t, r.get(c, "/console/workflows/camellia/welcome"))
	dry := func(form url.Values) (int, string) {
		form.Set("csrf_token", token)
		form.Set("yaml", src)
		code, body := postForm(t, c, r.srv.URL+"/console/workflows/camellia/welcome/dry-run", form)
		return code, htmlUnescape(body)
	}
	code, body := dry(url.Values{"member_id": {itoa(int(m.ID))}, "start": {"2026-12-01T10:00:00+08:00"}})
	if code != http.StatusOK || !strings.Contains(body, `<ol class="timeline">`) || !strings.Contains(body, "2026-12-01 10:00:00") {
		t.Fatalf("dry run of member %d: %d\n%s", m.ID, code, body)
	}
	// The stored member has no guide: the engine says so, as a run would.
	if !strings.Contains(body, "no guide") {
		t.Errorf("the timeline does not say the member has no guide")
	}
	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"unknown member", url.Values{"member_id": {"999999"}}, "999999"},
		{"bad id", url.Values{"member_id": {"abc"}}, `"abc"`},
		{"bad start", url.Values{"start": {"tomorrow"}}, `"tomorrow"`},
		{"bad member JSON", url.Values{"member_json": {`{"nmae": "x"}`}}, `unknown field "nmae"`},
		{"bad events", url.Values{"events_json": {`{}`}}, "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("csrf_token", token)
			code, body := dry(tc.form)
			if code != http.StatusUnprocessableEntity || !strings.Contains(body, tc.want) {
				t.Errorf("%d, want 422 saying %q", code, tc.want)
			}
		})
	}
	// Another brand's member is not found for this token's brand.
	other, _, err := r.store.EnsureMember(ctx, store.NewMember{BrandID: "peony", Name: "P",
		Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-p"}}})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := dry(url.Values{"member_id": {itoa(int(other.ID))}}); code != http.StatusUnprocessableEntity || !strings.Contains(body, itoa(int(other.ID))) {
		t.Errorf("a peony member through camellia: %d", code)
	}
}

// TestConsoleEveryRouteNeedsASession sends every console route (read from
// the engine, so a page added later is covered) a request without a
// session and with a forged one: pages send the browser to sign in,
// script requests get 401, and nothing runs.
func TestConsoleEveryRouteNeedsASession(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{})
	r.put("camellia", "welcome", "new-member-welcome.yaml", false)
	open := map[string]bool{"/console": true, "/console/": true, "/console/sign-in": true, "/console/language": true, "/console/static/*file": true}
	routes := r.routes()
	n := 0
	for _, rt := range routes {
		if !strings.HasPrefix(rt.Path, "/console") || open[rt.Path] {
			continue
		}
		n++
		path := regexp.MustCompile(`:[a-z]+`).ReplaceAllStringFunc(rt.Path, func(p string) string {
			return map[string]string{":brand": "camellia", ":name": "welcome", ":version": "x", ":store": "sh-jingan", ":id": "1"}[p]
		})
		for _, cookie := range []string{"", "forged-session-id"} {
			c := r.client()
			if cookie != "" {
				u, _ := url.Parse(r.srv.URL + "/console/")
				c.Jar.SetCookies(u, []*http.Cookie{{Name: "scrmgw_console", Value: cookie}})
			}
			req, _ := http.NewRequest(rt.Method, r.srv.URL+path, strings.NewReader("csrf_token=x&yaml=name%3A+x"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/sign-in") {
				t.Errorf("%s %s (cookie %q): %d to %q, want 303 to sign in", rt.Method, path, cookie, resp.StatusCode, resp.Header.Get("Location"))
			}
			// The script's form of the request: 401.
			req, _ = http.NewRequest(rt.Method, r.srv.URL+path, strings.NewReader(`{}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(console.CSRFHeader, "x")
			resp, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := http.StatusUnauthorized; resp.StatusCode != want && !(rt.Method == http.MethodGet && resp.StatusCode == http.StatusSeeOther) {
				t.Errorf("%s %s as a script (cookie %q): %d, want %d", rt.Method, path, cookie, resp.StatusCode, want)
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d guarded console routes enumerated", n)
	}
	if h, _ := r.store.Workflow(context.Background(), "camellia", "welcome"); h.Enabled {
		t.Error("an unauthenticated request enabled the workflow")
	}
	if vs, _ := r.store.WorkflowVersions(context.Background(), "camellia", "welcome"); len(vs) != 1 {
		t.Error("an unauthenticated request stored a version")
	}
}
