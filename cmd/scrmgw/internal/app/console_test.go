package app

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/configs"
)

// TestConsoleMounted: the zero-setup gateway serves the console at
// /console/, signs in with the admin token, lists a workflow put through
// the API, and dry-runs it with the channels' specs (the request WeCom
// would get), as `scrmgw workflow dry-run` does.
func TestConsoleMounted(t *testing.T) {
	cfg := configs.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	s := startServe(t, cfg)
	raw, err := os.ReadFile(filepath.Join(cfg.DataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(raw))
	if code, body := request(t, "POST", s.base+"/api/v1/brands", token, `{"id": "camellia", "name": "Camellia"}`); code != http.StatusCreated {
		t.Fatalf("creating the brand: %d %s", code, body)
	}
	yaml, err := os.ReadFile("../../../../configs/workflows/new-member-welcome.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if code, body := putWorkflow(t, s, token, "camellia", "new-member-welcome", string(yaml)); code != http.StatusCreated {
		t.Fatalf("putting the workflow: %d %s", code, body)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, page := get("/console/")
	if resp.Request.URL.Path != "/console/sign-in" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("/console/ ends at %s with CSP %q", resp.Request.URL.Path, resp.Header.Get("Content-Security-Policy"))
	}
	csrf := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	resp, err = c.PostForm(s.base+"/console/sign-in", url.Values{"token": {token}, "csrf_token": {csrf.FindStringSubmatch(page)[1]}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Path != "/console/workflows" || !strings.Contains(string(b), `data-workflow="camellia/new-member-welcome"`) {
		t.Fatalf("after sign-in: %s without the workflow:\n%s", resp.Request.URL.Path, b)
	}

	_, page = get("/console/workflows/camellia/new-member-welcome")
	form := url.Values{"csrf_token": {csrf.FindStringSubmatch(page)[1]}, "yaml": {string(yaml)},
		"member_json": {`{"name": "Li Lei", "guide_id": "g1", "guide_name": "Wang Fang", "channel_id": "wm-li"}`},
		"start":       {"2026-12-01T10:00:00+08:00"}}
	resp, err = c.PostForm(s.base+"/console/workflows/camellia/new-member-welcome/dry-run", form)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	body := html.UnescapeString(string(b))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<ol class="timeline">`) ||
		!strings.Contains(body, "externalcontact/add_msg_template") || !strings.Contains(body, `"wm-li"`) {
		t.Fatalf("dry run: %d, want a timeline with the WeCom request to wm-li:\n%s", resp.StatusCode, body)
	}

	// The stores page probes the assigner's index, which the API keeps.
	if code, body := request(t, "POST", s.base+"/api/v1/stores", token,
		`{"id": "sh-jingan", "name": "Jing'an Flagship", "lat": 31.2286, "lng": 121.4452, "time_zone": "Asia/Shanghai", "active": true, "brands": ["camellia"]}`); code != http.StatusCreated {
		t.Fatalf("creating a store: %d %s", code, body)
	}
	if _, page := get("/console/stores?brand=camellia&lat=31.23&lng=121.47"); !strings.Contains(page, `<li data-store="sh-jingan">`) {
		t.Fatalf("the nearest-store probe does not find the store:\n%s", page)
	}
	// The operations page reads the gateway's queues.
	if _, page := get("/console/operations"); !strings.Contains(page, `id="queue-table"`) && !strings.Contains(page, `id="queues-empty"`) ||
		strings.Contains(page, `id="queue-error"`) || !strings.Contains(page, `<li data-check="database"><span class="state state-enabled">`) {
		t.Fatalf("the operations page lacks the queues:\n%s", page)
	}
	// A console write is in the audit trail (written in batches).
	resp, err = c.PostForm(s.base+"/console/workflows/camellia/new-member-welcome/enable", url.Values{"csrf_token": {csrf.FindStringSubmatch(page)[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := request(t, "GET", s.base+"/api/v1/audit?action=api.write", token, "")
		if strings.Contains(body, `"route":"/console/workflows/:brand/:name/enable"`) && strings.Contains(body, `"resource_ids":"brand=camellia\u0026name=new-member-welcome"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console's enable is not in the audit trail:\n%s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestConsoleURL(t *testing.T) {
	for _, tc := range []struct{ public, addr, want string }{
		{"", "[::]:8080", "http://localhost:8080/console/"},
		{"", "0.0.0.0:8080", "http://localhost:8080/console/"},
		{"", "127.0.0.1:9000", "http://127.0.0.1:9000/console/"},
		{"https://scrm.example.com/", "[::]:8080", "https://scrm.example.com/console/"},
	} {
		if got := consoleURL(tc.public, tc.addr); got != tc.want {
			t.Errorf("consoleURL(%q, %q) = %q, want %q", tc.public, tc.addr, got, tc.want)
		}
	}
}
