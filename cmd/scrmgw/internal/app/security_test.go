package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/httpserve"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// The security suite runs on the real wiring (App.Handler behind Serve),
// on SQLite with the in-process Redis and on PostgreSQL with Redis.

const secWebhookSecret = "whsec_c2VjdXJpdHktc3VpdGUtd2ViaG9vay1zZWNyZXQ="

// logBuffer is an io.Writer the app's logger writes to from many
// goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type secEnv struct {
	*started
	cfg  configs.Config
	fake *wecomfake.Server
	logs *logBuffer
}

// startSecure runs the gateway on dialect with WeCom (a fake), the
// webhook channel and the refusal limiter off (the suite makes hundreds
// of refused requests on purpose; TestSecurityRefusalLimit turns it on),
// logging at debug level into a buffer.
func startSecure(t *testing.T, dialect string, edit func(*configs.Config)) *secEnv {
	t.Helper()
	fake := wecomfake.New(t)
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, dialect)
	if dialect == "postgres" {
		cfg.Redis.URL = storetest.RedisURL(t)
	}
	cfg.AdminToken = "security-suite-admin-token-" + dialect
	cfg.Security.PhoneKey = strings.Repeat("5e", 32)
	cfg.WeCom = fake.Config()
	cfg.WeCom.Brand = "acme"
	cfg.WeCom.MaxClockSkew = configs.Default().WeCom.MaxClockSkew // the fake's config turns it off
	cfg.Webhook.Secret = secWebhookSecret
	cfg.HTTP.RefusedRate = 0
	if edit != nil {
		edit(&cfg)
	}
	logs := &logBuffer{}
	s := startServeLogged(t, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log (last 8000 bytes):\n%s", tail(logs.String(), 8000))
		}
	})
	return &secEnv{started: s, cfg: cfg, fake: fake, logs: logs}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// startServeLogged is startServe with the app logging to log.
func startServeLogged(t *testing.T, cfg configs.Config, log *slog.Logger) *started {
	t.Helper()
	return startServeWith(t, cfg, log, nil)
}

// do sends a request with extra headers and returns the response with
// its body read.
func do(t *testing.T, method, url string, body []byte, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// guardedRoutes lists the routes of the gateway's engine that need a
// token: everything under /api/ and the queue UI. It reads them from
// the engine, so a route added later is covered without editing a list.
func guardedRoutes(t *testing.T, a *App) []gin.RouteInfo {
	t.Helper()
	eng, ok := a.Handler().(*gin.Engine)
	if !ok {
		t.Fatalf("App.Handler() is a %T, not a *gin.Engine", a.Handler())
	}
	var out []gin.RouteInfo
	for _, r := range eng.Routes() {
		if strings.HasPrefix(r.Path, "/api/") || strings.HasPrefix(r.Path, httpserve.QueueUIPath) {
			out = append(out, r)
		}
	}
	return out
}

var routeParamRE = regexp.MustCompile(`[:*][A-Za-z_]+`)

// concretePath fills a route's parameters with plausible values.
func concretePath(p string) string {
	return routeParamRE.ReplaceAllStringFunc(p, func(m string) string {
		if m[0] == '*' {
			return "/api/queues"
		}
		return "1"
	})
}

// TestSecurityEveryRouteNeedsAToken sends every guarded route of the
// engine a request without a token and with wrong tokens of every shape:
// each must answer 401, without running the handler.
func TestSecurityEveryRouteNeedsAToken(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			s := startSecure(t, dialect, nil)
			routes := guardedRoutes(t, s.app)
			// The enumeration itself works: the API's known routes are there.
			var api int
			for _, r := range routes {
				if strings.HasPrefix(r.Path, "/api/v1/") {
					api++
				}
			}
			if api < 35 || !slices.ContainsFunc(routes, func(r gin.RouteInfo) bool { return r.Path == "/api/v1/tokens" && r.Method == "POST" }) {
				t.Fatalf("only %d /api/v1 routes enumerated: %v", api, routes)
			}
			basic := func(pw string) string {
				req, _ := http.NewRequest("GET", "/", nil)
				req.SetBasicAuth("admin", pw)
				return req.Header.Get("Authorization")
			}
			wrong := map[string]string{
				"no token":                  "",
				"wrong token":               "Bearer not-the-admin-token",
				"admin token with a suffix": "Bearer " + s.cfg.AdminToken + "x",
				"admin token prefix":        "Bearer " + s.cfg.AdminToken[:len(s.cfg.AdminToken)-1],
				"unknown api token":         "Bearer " + store.TokenPrefix + "0123456789abcdefghijklmnopqrstuv",
				"token in another scheme":   "Token " + s.cfg.AdminToken,
				"empty bearer":              "Bearer ",
				"basic with a wrong pass":   basic("wrong"),
			}
			before, _ := s.app.Store.RetailStores(context.Background(), "", store.Page{Limit: 10})
			n := 0
			for _, r := range routes {
				for name, auth := range wrong {
					h := http.Header{"Content-Type": {"application/json"}}
					if auth != "" {
						h.Set("Authorization", auth)
					}
					body := []byte(`{"id":"x","name":"x","brands":["x"],"lat":1,"lng":1}`)
					resp, out := do(t, r.Method, s.base+concretePath(r.Path), body, h)
					n++
					if resp.StatusCode != http.StatusUnauthorized {
						t.Errorf("%s %s with %s: status %d, want 401: %.200s", r.Method, r.Path, name, resp.StatusCode, out)
					}
					if resp.Header.Get("WWW-Authenticate") == "" {
						t.Errorf("%s %s with %s: 401 without WWW-Authenticate", r.Method, r.Path, name)
					}
				}
			}
			t.Logf("%d guarded routes, %d refused requests", len(routes), n)
			after, _ := s.app.Store.RetailStores(context.Background(), "", store.Page{Limit: 10})
			if len(after) != len(before) {
				t.Errorf("unauthenticated requests wrote stores: %d before, %d after", len(before), len(after))
			}
			// And the right token does get through (the 401s are not
			// from a route that refuses everyone).
			if code, body := request(t, "GET", s.base+"/api/v1/brands", s.cfg.AdminToken, ""); code != 200 {
				t.Errorf("admin token: %d %s", code, body)
			}
		})
	}
}

// isoCase is one request a brand token makes against another brand's
// data.
type isoCase struct {
	name, method, path, body string
	want                     []int
}

// TestSecurityMetricsToken: with http.metrics_token set, /metrics answers
// 401 without it, with another token or the admin token, and 200 with it;
// the refusals count for the refusal limit like the API's.
func TestSecurityMetricsToken(t *testing.T) {
	const token = "metrics-scrape-token-0123456789"
	env := startSecure(t, "sqlite", func(c *configs.Config) {
		c.HTTP.MetricsToken = token
		c.HTTP.RefusedRate, c.HTTP.RefusedBurst = 1, 3
	})
	if code, body := request(t, "GET", env.base+"/metrics", token, ""); code != 200 || !strings.Contains(body, "scrmgw_http_requests_total") {
		t.Errorf("/metrics with the metrics token: %d %.200s", code, body)
	}
	for name, tok := range map[string]string{"no token": "", "wrong token": token + "x", "admin token": env.cfg.AdminToken} {
		if code, body := request(t, "GET", env.base+"/metrics", tok, ""); code != 401 || strings.Contains(body, "scrmgw_http_requests_total") {
			t.Errorf("/metrics with %s: %d %.200s, want 401 and no metrics", name, code, body)
		}
	}
	// Guessing the token is throttled: the fourth refusal in a burst of 3.
	if code, _ := request(t, "GET", env.base+"/metrics", "guess", ""); code != 429 {
		t.Errorf("a fourth wrong token at once: %d, want 429", code)
	}
}

// TestSecurityBrandIsolation: a brand token cannot read or change another
// brand's stores, guides, members, workflows, contact ways or guide
// tasks: the other brand's records answer 404 (403 where the API admits
// the record exists: a store shared with other brands), and nothing
// changes.
func TestSecurityBrandIsolation(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			s := startSecure(t, dialect, nil)
			ctx := context.Background()
			admin := s.cfg.AdminToken
			s.fake.AddEmployees("li", "zhao", "mall")
			for _, req := range []struct{ method, path, body string }{
				{"POST", "/api/v1/brands", `{"id":"acme","name":"ACME"}`},
				{"POST", "/api/v1/brands", `{"id":"zeta","name":"Zeta"}`},
				{"POST", "/api/v1/stores", `{"id":"sh-1","name":"Shanghai","brands":["acme"],"lat":31.23,"lng":121.47}`},
				{"POST", "/api/v1/stores", `{"id":"bj-1","name":"Beijing","brands":["zeta"],"lat":39.9,"lng":116.4}`},
				{"POST", "/api/v1/stores", `{"id":"gz-1","name":"Guangzhou mall","brands":["acme","zeta"],"lat":23.13,"lng":113.26}`},
				{"POST", "/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"Li","wecom_userid":"li"}`},
				{"POST", "/api/v1/guides", `{"id":"g-zhao","store_id":"bj-1","name":"Zhao","wecom_userid":"zhao"}`},
				{"POST", "/api/v1/guides", `{"id":"g-mall","store_id":"gz-1","name":"Mall","wecom_userid":"mall"}`},
				{"POST", "/api/v1/members", `{"phone":"13800138000","name":"Acme member","brand":"acme"}`},
				{"POST", "/api/v1/members", `{"phone":"13700137000","name":"Zeta member","brand":"zeta"}`},
				{"POST", "/api/v1/stores/bj-1/contact-way", ""},
				{"POST", "/api/v1/guides/g-zhao/contact-way", ""},
				{"PUT", "/api/v1/workflows/zeta-thanks?brand=zeta", "name: zeta-thanks\ntrigger:\n  event: purchase.completed\nentry:\n  brand: zeta\nsteps:\n  - tag: vip\n"},
				{"POST", "/api/v1/workflows/zeta-thanks/enable?brand=zeta", ""},
			} {
				if code, body := request(t, req.method, s.base+req.path, admin, req.body); code/100 != 2 {
					t.Fatalf("seeding %s %s: %d %s", req.method, req.path, code, body)
				}
			}
			acmeM, err := s.app.Store.MemberByPhone(ctx, "13800138000", "")
			if err != nil {
				t.Fatal(err)
			}
			zetaM, err := s.app.Store.MemberByPhone(ctx, "13700137000", "")
			if err != nil {
				t.Fatal(err)
			}
			task := &store.GuideTask{MemberID: zetaM.ID, GuideID: "g-zhao", BrandID: "zeta", Title: "call back", DueAt: time.Now().Add(24 * time.Hour)}
			if _, err := s.app.Store.CreateGuideTask(ctx, task); err != nil {
				t.Fatal(err)
			}
			_, out := request(t, "POST", s.base+"/api/v1/tokens", admin, `{"name":"acme ops","brand":"acme"}`)
			var tok struct {
				Token string
				ID    int64
			}
			if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" {
				t.Fatalf("brand token: %s", out)
			}
			acme := tok.Token
			a, z := strconv.FormatInt(acmeM.ID, 10), strconv.FormatInt(zetaM.ID, 10)
			tid := strconv.FormatInt(task.ID, 10)
			wf := "name: zeta-thanks\ntrigger:\n  event: purchase.completed\nentry:\n  brand: zeta\nsteps:\n  - tag: spam\n"
			notFound, forbidden := []int{404}, []int{403}
			cases := []isoCase{
				// Stores.
				{"read zeta store", "GET", "/api/v1/stores/bj-1", "", notFound},
				{"overwrite zeta store", "PUT", "/api/v1/stores/bj-1", `{"name":"Mine","brands":["acme"],"lat":23,"lng":113}`, notFound},
				{"delete zeta store", "DELETE", "/api/v1/stores/bj-1", "", notFound},
				{"bulk overwrite zeta store", "POST", "/api/v1/stores/bulk", `{"items":[{"id":"bj-1","name":"Mine","brands":["acme"],"lat":23,"lng":113}]}`, forbidden},
				{"create store for zeta", "POST", "/api/v1/stores", `{"id":"x-1","name":"X","brands":["zeta"],"lat":30,"lng":120}`, forbidden},
				{"change shared store", "PUT", "/api/v1/stores/gz-1", `{"name":"Mine","brands":["acme"],"lat":23,"lng":113}`, forbidden},
				{"delete shared store", "DELETE", "/api/v1/stores/gz-1", "", forbidden},
				{"nearest zeta stores", "GET", "/api/v1/stores/nearest?lat=39.9&lng=116.4&brand=zeta", "", notFound},
				// Guides.
				{"read zeta guide", "GET", "/api/v1/guides/g-zhao", "", notFound},
				{"take over zeta guide id", "PUT", "/api/v1/guides/g-zhao", `{"store_id":"sh-1","name":"Mine"}`, []int{404, 409}},
				{"bulk take over zeta guide", "POST", "/api/v1/guides/bulk", `{"items":[{"id":"g-zhao","store_id":"sh-1","name":"Mine"}]}`, []int{404, 409}},
				{"guide into zeta store", "POST", "/api/v1/guides", `{"id":"g-spy","store_id":"bj-1","name":"Spy"}`, []int{400, 404}},
				{"delete zeta guide", "DELETE", "/api/v1/guides/g-zhao", "", notFound},
				{"zeta guide leaves", "POST", "/api/v1/guides/g-zhao/leave", "", notFound},
				{"change shared store's guide", "PUT", "/api/v1/guides/g-mall", `{"store_id":"gz-1","name":"Mine","active":false}`, forbidden},
				{"delete shared store's guide", "DELETE", "/api/v1/guides/g-mall", "", forbidden},
				{"shared store's guide leaves", "POST", "/api/v1/guides/g-mall/leave", "", forbidden},
				{"move guide into shared store", "PUT", "/api/v1/guides/g-li", `{"store_id":"gz-1","name":"Li"}`, forbidden},
				// Contact ways.
				{"zeta store QR code", "POST", "/api/v1/stores/bj-1/contact-way", "", notFound},
				{"zeta guide QR code", "POST", "/api/v1/guides/g-zhao/contact-way", "", notFound},
				{"list zeta store QR codes", "GET", "/api/v1/contact-ways?store_id=bj-1", "", notFound},
				{"list zeta guide QR codes", "GET", "/api/v1/contact-ways?guide_id=g-zhao", "", notFound},
				// Members.
				{"read zeta member", "GET", "/api/v1/members/" + z, "", notFound},
				{"find zeta member by phone", "GET", "/api/v1/members?phone=13700137000", "", notFound},
				{"add member to zeta", "POST", "/api/v1/members", `{"phone":"13600136000","brand":"zeta"}`, forbidden},
				{"bulk add member to zeta", "POST", "/api/v1/members/bulk", `{"items":[{"phone":"13600136000","brand":"zeta"}]}`, []int{400, 403}},
				{"assign zeta member", "POST", "/api/v1/members/" + z + "/assign", `{"store_id":"sh-1"}`, notFound},
				{"assign for zeta", "POST", "/api/v1/members/" + a + "/assign", `{"brand":"zeta","store_id":"bj-1"}`, notFound},
				{"assign to zeta store", "POST", "/api/v1/members/" + a + "/assign", `{"store_id":"bj-1"}`, []int{400, 404}},
				{"assign to zeta guide", "POST", "/api/v1/members/" + a + "/assign", `{"guide_id":"g-zhao"}`, []int{400, 404}},
				{"merge zeta member into ours", "POST", "/api/v1/members/" + z + "/merge", `{"into":` + a + `}`, notFound},
				{"merge ours into zeta member", "POST", "/api/v1/members/" + a + "/merge", `{"into":` + z + `}`, notFound},
				// Workflows.
				{"list zeta workflows", "GET", "/api/v1/workflows?brand=zeta", "", notFound},
				{"put zeta workflow", "PUT", "/api/v1/workflows/zeta-thanks?brand=zeta", wf, notFound},
				{"put a workflow for zeta", "PUT", "/api/v1/workflows/zeta-thanks", wf, []int{400}},
				{"disable zeta workflow", "POST", "/api/v1/workflows/zeta-thanks/disable?brand=zeta", "", notFound},
				{"disable by name", "POST", "/api/v1/workflows/zeta-thanks/disable", "", notFound},
				{"zeta workflow stats", "GET", "/api/v1/workflows/zeta-thanks/stats?brand=zeta", "", notFound},
				{"retire zeta version", "POST", "/api/v1/workflows/zeta-thanks/versions/x/retire?brand=zeta", "", notFound},
				// Guide tasks.
				{"complete zeta guide task", "POST", "/api/v1/guide-tasks/" + tid + "/complete", "", notFound},
				{"count zeta store's tasks", "GET", "/api/v1/guide-tasks?store_id=bj-1", "", notFound},
				{"count zeta's tasks", "GET", "/api/v1/guide-tasks?store_id=gz-1&brand=zeta", "", notFound},
				{"give zeta's guide a task", "POST", "/api/v1/guide-tasks", `{"guide_id":"g-zhao","member_id":` + a + `,"title":"x","due_at":"2030-01-01T00:00:00Z"}`, notFound},
				{"give a task of zeta", "POST", "/api/v1/guide-tasks", `{"guide_id":"g-mall","member_id":` + z + `,"brand":"zeta","title":"x","due_at":"2030-01-01T00:00:00Z"}`, forbidden},
				{"give a task about zeta's member", "POST", "/api/v1/guide-tasks", `{"guide_id":"g-mall","member_id":` + z + `,"title":"x","due_at":"2030-01-01T00:00:00Z"}`, notFound},
				// Brands and tokens.
				{"read zeta brand", "GET", "/api/v1/brands/zeta", "", notFound},
				{"rename zeta brand", "PUT", "/api/v1/brands/zeta", `{"name":"Mine"}`, []int{403, 404}},
				{"delete zeta brand", "DELETE", "/api/v1/brands/zeta", "", []int{403, 404}},
				{"list tokens", "GET", "/api/v1/tokens", "", forbidden},
				{"mint an admin token", "POST", "/api/v1/tokens", `{"name":"escalate"}`, forbidden},
				{"revoke a token", "DELETE", "/api/v1/tokens/1", "", forbidden},
				{"queue UI", "GET", httpserve.QueueUIPath + "/api/queues", "", forbidden},
				{"zeta's handovers", "GET", "/api/v1/handovers?brand=zeta", "", notFound},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					code, body := request(t, tc.method, s.base+tc.path, acme, tc.body)
					if !slices.Contains(tc.want, code) {
						t.Errorf("%s %s: status %d, want one of %v: %.300s", tc.method, tc.path, code, tc.want, body)
					}
					if strings.Contains(body, "Zeta member") || strings.Contains(body, "13700137000") {
						t.Errorf("%s %s: the answer shows zeta's member: %.300s", tc.method, tc.path, body)
					}
				})
			}
			// Lists show only acme's records.
			for _, l := range []struct{ path, not string }{
				{"/api/v1/stores", `"bj-1"`},
				{"/api/v1/stores?brand=zeta", `"bj-1"`},
				{"/api/v1/guides", `"g-zhao"`},
				{"/api/v1/guides?store_id=bj-1", `"g-zhao"`},
				{"/api/v1/workflows", "zeta-thanks"},
				{"/api/v1/brands", `"zeta"`},
			} {
				if code, body := request(t, "GET", s.base+l.path, acme, ""); code != 200 || strings.Contains(body, l.not) {
					t.Errorf("GET %s: %d, shows %s: %.300s", l.path, code, l.not, body)
				}
			}

			// Nothing of zeta's changed.
			check := func(path, want string) {
				t.Helper()
				if code, body := request(t, "GET", s.base+path, admin, ""); code != 200 || !strings.Contains(body, want) {
					t.Errorf("after the attempts, GET %s = %d %.300s; want %s", path, code, body, want)
				}
			}
			check("/api/v1/stores/bj-1", `"name":"Beijing"`)
			check("/api/v1/stores/gz-1", `"name":"Guangzhou mall"`)
			check("/api/v1/guides/g-zhao", `"store_id":"bj-1"`)
			check("/api/v1/guides/g-zhao", `"name":"Zhao"`)
			check("/api/v1/guides/g-mall", `"active":true`)
			check("/api/v1/guides/g-mall", `"name":"Mall"`)
			check("/api/v1/guides/g-li", `"store_id":"sh-1"`)
			check("/api/v1/brands/zeta", `"name":"Zeta"`)
			check("/api/v1/members/"+z, `"name":"Zeta member"`)
			check("/api/v1/members/"+a, `"name":"Acme member"`)
			check("/api/v1/workflows?brand=zeta", `"enabled":true`)
			if code, body := request(t, "GET", s.base+"/api/v1/stores/x-1", admin, ""); code != 404 {
				t.Errorf("a refused store write happened: %d %s", code, body)
			}
			if code, body := request(t, "GET", s.base+"/api/v1/guides/g-spy", admin, ""); code != 404 {
				t.Errorf("a refused guide write happened: %d %s", code, body)
			}
			if v, err := s.app.Store.Member(ctx, zetaM.ID, ""); err != nil || len(v.Bindings) != 0 || slices.ContainsFunc(v.Memberships, func(m store.Membership) bool { return m.BrandID == "acme" }) {
				t.Errorf("zeta's member after the attempts: %+v, %v", v, err)
			}
			if v, err := s.app.Store.Member(ctx, acmeM.ID, ""); err != nil || len(v.Bindings) != 0 {
				t.Errorf("acme's member bound to another brand's store or guide: %+v, %v", v, err)
			}
			if got, err := s.app.Store.GuideTask(ctx, task.ID); err != nil || got.State != store.GuideTaskOpen {
				t.Errorf("zeta's guide task after the attempts: %+v, %v", got, err)
			}
			if ways, _ := s.app.Store.ContactWays(ctx, "bj-1", ""); len(ways) != 1 {
				t.Errorf("zeta's store has %d contact ways, want the 1 its admin made", len(ways))
			}
			if n := len(s.fake.ContactWays()); n != 2 {
				t.Errorf("WeCom was asked for %d contact ways, want the 2 the admin made", n)
			}
			if toks, _ := s.app.Store.APITokens(ctx); len(toks) != 1 {
				t.Errorf("%d API tokens after the attempts, want 1", len(toks))
			}
			// A revoked token is refused at once.
			if code, _ := request(t, "GET", s.base+"/api/v1/stores", acme, ""); code != 200 {
				t.Fatalf("brand token before revoking: %d", code)
			}
			if code, body := request(t, "DELETE", s.base+"/api/v1/tokens/"+strconv.FormatInt(tok.ID, 10), admin, ""); code != 204 {
				t.Fatalf("revoking: %d %s", code, body)
			}
			if code, _ := request(t, "GET", s.base+"/api/v1/stores", acme, ""); code != 401 {
				t.Errorf("revoked brand token: %d, want 401", code)
			}
		})
	}
}

// TestSecurityCallbacksReplayedAndForged: a signed callback delivered
// twice (a replay of the very same request) is recorded once; forged,
// tampered and stale ones are refused and recorded nowhere. The same for
// Standard-Webhooks events on /events.
func TestSecurityCallbacksReplayedAndForged(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			s := startSecure(t, dialect, nil)
			ctx := context.Background()
			url := s.base + wecom.CallbackPath

			t.Run("wecom", func(t *testing.T) {
				msg := wecomfake.EmployeeText(s.fake.AgentID(), "li", "我的任务")
				msg.MsgID = "replayed-1"
				body, q, err := wecomfake.Callback{}.Seal(msg.XML())
				if err != nil {
					t.Fatal(err)
				}
				signed := url + "?" + q.Encode()
				for i := 0; i < 3; i++ {
					if resp, out := do(t, "POST", signed, body, nil); resp.StatusCode != 200 || out != "success" {
						t.Fatalf("delivery %d of the same request: %d %q", i+1, resp.StatusCode, out)
					}
				}
				rows, err := s.app.Store.InboxRows(ctx, wecom.ChannelName, "", 100)
				if err != nil {
					t.Fatal(err)
				}
				if len(rows) != 1 {
					t.Fatalf("%d inbox rows after three deliveries of one callback, want 1", len(rows))
				}

				now := time.Now()
				sealWith := func(cb wecomfake.Callback, id string) ([]byte, map[string][]string) {
					m := wecomfake.EmployeeText(s.fake.AgentID(), "li", "forged")
					m.MsgID = id
					b, q, err := cb.Seal(m.XML())
					if err != nil {
						t.Fatal(err)
					}
					return b, q
				}
				type forged struct {
					name   string
					body   []byte
					query  map[string][]string
					status []int
				}
				var cases []forged
				add := func(name string, cb wecomfake.Callback, status ...int) {
					b, q := sealWith(cb, "forged-"+strconv.Itoa(len(cases)))
					cases = append(cases, forged{name, b, q, status})
				}
				add("wrong callback token", wecomfake.Callback{Token: "not-the-token"}, 403)
				add("wrong AES key", wecomfake.Callback{EncodingAESKey: strings.Repeat("A", 43)}, 400, 403)
				add("other corp", wecomfake.Callback{CorpID: "wwOtherCorp"}, 403)
				add("stale timestamp", wecomfake.Callback{Now: func() time.Time { return now.Add(-time.Hour) }}, 403)
				add("timestamp from the future", wecomfake.Callback{Now: func() time.Time { return now.Add(time.Hour) }}, 403)
				b, q := sealWith(wecomfake.Callback{}, "tampered")
				tampered := bytes.Replace(b, []byte("<Encrypt><![CDATA["), []byte("<Encrypt><![CDATA[AAAA"), 1)
				cases = append(cases, forged{"tampered body", tampered, q, []int{403}})
				b, q = sealWith(wecomfake.Callback{}, "resigned")
				q2 := map[string][]string{"msg_signature": {strings.Repeat("0", 40)}, "timestamp": q["timestamp"], "nonce": q["nonce"]}
				cases = append(cases, forged{"made-up signature", b, q2, []int{403}})
				q3 := map[string][]string{"msg_signature": q["msg_signature"], "timestamp": q["timestamp"], "nonce": {"1"}}
				cases = append(cases, forged{"other nonce", b, q3, []int{403}})
				cases = append(cases, forged{"no query", b, nil, []int{400, 403}})
				for _, tc := range cases {
					u := url
					if tc.query != nil {
						vals := make([]string, 0, 3)
						for k, v := range tc.query {
							vals = append(vals, k+"="+v[0])
						}
						u += "?" + strings.Join(vals, "&")
					}
					resp, out := do(t, "POST", u, tc.body, nil)
					if !slices.Contains(tc.status, resp.StatusCode) {
						t.Errorf("%s: status %d %q, want %v", tc.name, resp.StatusCode, out, tc.status)
					}
				}
				// URL verification with a forged signature does not echo.
				req, echo, err := wecomfake.Callback{Token: "not-the-token"}.VerifyURLRequest(url)
				if err != nil {
					t.Fatal(err)
				}
				if resp, out := do(t, "GET", req.URL.String(), nil, nil); resp.StatusCode != 403 || strings.Contains(out, echo) {
					t.Errorf("forged URL verification: %d %q", resp.StatusCode, out)
				}
				if rows, _ := s.app.Store.InboxRows(ctx, wecom.ChannelName, "", 100); len(rows) != 1 {
					t.Errorf("%d inbox rows after the forgeries, want still 1", len(rows))
				}
			})

			t.Run("events", func(t *testing.T) {
				if err := s.app.Store.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "ACME"}); err != nil {
					t.Fatal(err)
				}
				key := mustKey(t, secWebhookSecret)
				ev := []byte(`{"specversion":"1.0","id":"sec-1","source":"/pos/sh-1","type":"store.visited","brand":"acme","data":{"member":{"phone":"13500135000"},"store":"sh-1"}}`)
				ts := time.Now().Unix()
				signed := http.Header{"Content-Type": {"application/cloudevents+json"}, "Webhook-Id": {"msg-sec-1"},
					"Webhook-Timestamp": {strconv.FormatInt(ts, 10)}, "Webhook-Signature": {webhook.Sign(key, "msg-sec-1", ts, ev)}}
				for i := 0; i < 3; i++ {
					if resp, out := do(t, "POST", s.base+webhook.EventsPath, ev, signed); resp.StatusCode != 200 {
						t.Fatalf("delivery %d of the same event: %d %s", i+1, resp.StatusCode, out)
					}
				}
				if rows, _ := s.app.Store.InboxRows(ctx, webhook.ChannelName, "", 100); len(rows) != 1 {
					t.Fatalf("%d inbox rows after three deliveries of one event, want 1", len(rows))
				}
				other := []byte("another-secret-of-32-bytes-long!")
				sign := func(k []byte, id string, ts int64, body []byte) http.Header {
					return http.Header{"Content-Type": {"application/cloudevents+json"}, "Webhook-Id": {id},
						"Webhook-Timestamp": {strconv.FormatInt(ts, 10)}, "Webhook-Signature": {webhook.Sign(k, id, ts, body)}}
				}
				ev2 := bytes.Replace(ev, []byte(`"sec-1"`), []byte(`"sec-2"`), 1)
				now := time.Now().Unix()
				tamperedHdr := sign(key, "msg-sec-2", now, ev2)
				noSig := sign(key, "msg-sec-2", now, ev2)
				noSig.Del("Webhook-Signature")
				wrongID := sign(key, "msg-sec-2", now, ev2)
				wrongID.Set("Webhook-Id", "msg-other")
				for _, tc := range []struct {
					name string
					body []byte
					h    http.Header
				}{
					{"other secret", ev2, sign(other, "msg-sec-2", now, ev2)},
					{"stale timestamp", ev2, sign(key, "msg-sec-2", now-3600, ev2)},
					{"timestamp from the future", ev2, sign(key, "msg-sec-2", now+3600, ev2)},
					{"tampered body", bytes.Replace(ev2, []byte("store.visited"), []byte("purchase.completed"), 1), tamperedHdr},
					{"no signature", ev2, noSig},
					{"signature of another id", ev2, wrongID},
					{"no headers", ev2, http.Header{"Content-Type": {"application/cloudevents+json"}}},
				} {
					if resp, out := do(t, "POST", s.base+webhook.EventsPath, tc.body, tc.h); resp.StatusCode != 401 {
						t.Errorf("%s: status %d %s, want 401", tc.name, resp.StatusCode, out)
					}
				}
				if rows, _ := s.app.Store.InboxRows(ctx, webhook.ChannelName, "", 100); len(rows) != 1 {
					t.Errorf("%d inbox rows after the forgeries, want still 1", len(rows))
				}
			})
		})
	}
}

// TestSecurityPublicBodyLimits: every public callback route that takes a
// body refuses one over its limit with 413, before reading it all, and
// records nothing.
func TestSecurityPublicBodyLimits(t *testing.T) {
	s := startSecure(t, "sqlite", nil)
	eng := s.app.Handler().(*gin.Engine)
	var posts []gin.RouteInfo
	for _, r := range eng.Routes() {
		if r.Method == "POST" && !strings.HasPrefix(r.Path, "/api/") && !strings.HasPrefix(r.Path, httpserve.QueueUIPath) {
			posts = append(posts, r)
		}
	}
	if len(posts) < 2 {
		t.Fatalf("public POST routes: %v; want the WeCom callback and /events", posts)
	}
	// The largest limit of any public route: webhook's 16 MiB.
	const over = 16<<20 + 1
	for _, r := range posts {
		t.Run(r.Path, func(t *testing.T) {
			q := "?timestamp=" + strconv.FormatInt(time.Now().Unix(), 10) + "&nonce=1&msg_signature=x"
			h := http.Header{"Content-Type": {"application/cloudevents+json"}}
			body := bytes.Repeat([]byte(" "), over)
			resp, out := do(t, "POST", s.base+r.Path+q, body, h)
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("POST %s with %d bytes: %d %.200s, want 413", r.Path, over, resp.StatusCode, out)
			}
		})
	}
	ctx := context.Background()
	for _, ch := range []string{wecom.ChannelName, webhook.ChannelName} {
		if rows, _ := s.app.Store.InboxRows(ctx, ch, "", 10); len(rows) != 0 {
			t.Errorf("an oversized request was recorded on %s", ch)
		}
	}
}

// TestSecurityNoSecretsInLogs runs a representative flow with the app
// logging at debug level: the admin token used, a brand token minted and
// used, members added with phone numbers through the API, a WeCom contact
// (access tokens fetched from the fake, a welcome sent) and a POS event,
// guide messages, forged callbacks and wrong tokens. The log must name
// none of the secrets, tokens or full phone numbers.
func TestSecurityNoSecretsInLogs(t *testing.T) {
	openapi := dingtalkfake.NewOpenAPI(t)
	gw := dingtalkfake.New(t, dingtalkfake.WithOpenAPI(openapi))
	s := startSecure(t, "postgres", func(cfg *configs.Config) {
		cfg.DingTalk = dingtalk.Config{ClientID: gw.ClientID(), ClientSecret: gw.ClientSecret(), Brand: "acme",
			StreamHost: gw.URL(), APIBase: openapi.URL()}
	})
	ctx := context.Background()
	admin := s.cfg.AdminToken
	phones := []string{"13800138000", "13700137000", "13500135000", "13400134000"}
	s.fake.AddEmployees("li")
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li"}`},
		{"/api/v1/members", `{"phone":"` + phones[0] + `","name":"陈女士","brand":"acme"}`},
		{"/api/v1/members/bulk", `{"items":[{"phone":"+86 ` + phones[1] + `","brand":"acme"},{"phone":"bad-` + phones[3] + `","brand":"acme"}]}`},
		{"/api/v1/members/bulk", `{"items":[{"phone":"+86 ` + phones[1] + `","brand":"acme"}]}`},
	} {
		request(t, "POST", s.base+req.path, admin, req.body)
	}
	_, out := request(t, "POST", s.base+"/api/v1/tokens", admin, `{"name":"acme ops","brand":"acme"}`)
	var tok struct{ Token string }
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" {
		t.Fatalf("brand token: %s", out)
	}
	request(t, "GET", s.base+"/api/v1/members?phone="+phones[0], tok.Token, "")
	request(t, "GET", s.base+"/api/v1/members?phone="+phones[2], tok.Token, "") // not found
	request(t, "GET", s.base+"/api/v1/stores", tok.Token+"x", "")               // a wrong token
	request(t, "GET", s.base+"/api/v1/stores", admin[:len(admin)-2], "")

	// A member adds the guide on WeCom; the gateway fetches the contact
	// (with its remark phone) and sends the welcome, with access tokens
	// fetched from the fake, after failures that get logged: the first
	// token fetch and the first contact fetch fail.
	s.fake.FailHTTPNext(wecomfake.PathGetToken, 1, http.StatusBadGateway)
	s.fake.FailNext(wecomfake.PathExternalContactGet, 1, 42001, "")
	s.fake.AddContact(wecomfake.Contact{ExternalUserID: "wmChen", Name: "陈女士", FollowUsers: []wecom.FollowUser{
		{UserID: "li", State: "s:sh-1", RemarkMobiles: []string{phones[3]}}}})
	ev := wecomfake.AddExternalContact("li", "wmChen", "s:sh-1", s.fake.IssueWelcomeCode("wmChen"))
	if status, _ := deliver(t, s.base+wecom.CallbackPath, ev.XML(), wecomfake.Callback{}); status != 200 {
		t.Fatalf("contact callback: %d", status)
	}
	msg := wecomfake.EmployeeText(s.fake.AgentID(), "li", "我的会员 "+phones[0])
	deliver(t, s.base+wecom.CallbackPath, msg.XML(), wecomfake.Callback{})
	deliver(t, s.base+wecom.CallbackPath, msg.XML(), wecomfake.Callback{Token: "forged"})
	// A POS event naming a member by phone, and a forged one.
	key := mustKey(t, secWebhookSecret)
	body := []byte(`{"specversion":"1.0","id":"o-1","source":"/pos/sh-1","type":"purchase.completed","brand":"acme","data":{"member":{"phone":"` + phones[2] + `"},"order_id":"SO-1","items":[{"sku":"A","qty":1,"price":100}]}}`)
	ts := time.Now().Unix()
	do(t, "POST", s.base+webhook.EventsPath, body, http.Header{"Content-Type": {"application/cloudevents+json"}, "Webhook-Id": {"m-1"},
		"Webhook-Timestamp": {strconv.FormatInt(ts, 10)}, "Webhook-Signature": {webhook.Sign(key, "m-1", ts, body)}})
	do(t, "POST", s.base+webhook.EventsPath, body, http.Header{"Content-Type": {"application/cloudevents+json"}, "Webhook-Id": {"m-2"},
		"Webhook-Timestamp": {strconv.FormatInt(ts, 10)}, "Webhook-Signature": {"v1,Zm9yZ2VkCg=="}})

	// A member writes to the DingTalk robot, with their phone.
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := gw.WaitConnected(waitCtx); err != nil {
		t.Fatalf("dingtalk stream never connected: %v", err)
	}
	id := gw.PushBotMessage(dingtalkfake.BotMessage{ConversationID: "cid-1", SenderID: "$:LWCP_v1:$m", SenderNick: "周先生",
		Text: &dingtalkfake.Text{Content: "我的手机 " + phones[1]}})
	if _, err := gw.WaitAck(waitCtx, id); err != nil {
		t.Fatalf("dingtalk ack: %v", err)
	}

	waitFor(t, "the welcome", func() bool { return len(s.fake.Welcomes()) > 0 })
	waitFor(t, "the POS member", func() bool {
		_, err := s.app.Store.MemberByPhone(ctx, phones[2], "acme")
		return err == nil
	})
	waitFor(t, "the WeCom member's phone", func() bool {
		_, err := s.app.Store.MemberByPhone(ctx, phones[3], "")
		return err == nil
	})
	time.Sleep(500 * time.Millisecond) // let the queue handlers log

	logs := s.logs.String()
	if strings.Count(logs, "\n") < 10 {
		t.Fatalf("the flow logged only %d lines: the scan would prove nothing:\n%s", strings.Count(logs, "\n"), logs)
	}
	if len(s.fake.IssuedTokens()) == 0 {
		t.Fatal("no WeCom access token was fetched: the flow did not exercise the token path")
	}
	secrets := map[string]string{
		"admin token":            admin,
		"brand token":            tok.Token,
		"brand token secret":     strings.TrimPrefix(tok.Token, store.TokenPrefix),
		"WeCom app secret":       s.cfg.WeCom.Secret,
		"WeCom callback token":   s.cfg.WeCom.Token,
		"WeCom EncodingAESKey":   s.cfg.WeCom.EncodingAESKey,
		"DingTalk client secret": gw.ClientSecret(),
		"webhook secret":         secWebhookSecret,
		"webhook secret key":     strings.TrimPrefix(secWebhookSecret, "whsec_"),
		"phone key":              s.cfg.Security.PhoneKey,
		"welcome code":           s.fake.Welcomes()[0].WelcomeCode,
	}
	if cs := s.cfg.WeCom.ContactSecret; cs != "" {
		secrets["WeCom contact secret"] = cs
	}
	for i, at := range s.fake.IssuedTokens() {
		secrets[fmt.Sprintf("WeCom access token %d", i)] = at
	}
	for _, p := range phones {
		secrets["phone "+p] = p
		secrets["phone "+p+" in E.164"] = "+86" + p
		secrets["phone "+p+" spaced"] = p[:3] + " " + p[3:7] + " " + p[7:]
	}
	for name, secret := range secrets {
		if secret == "" {
			continue
		}
		if i := strings.Index(logs, secret); i >= 0 {
			start := strings.LastIndex(logs[:i], "\n") + 1
			end := i + strings.IndexByte(logs[i:]+"\n", '\n')
			t.Errorf("the log holds the %s: %s", name, logs[start:end])
		}
	}
	if testing.Verbose() {
		t.Log(logs)
	}
	t.Logf("scanned %d log lines (%d bytes) for %d secrets", strings.Count(logs, "\n"), len(logs), len(secrets))
}

// TestSecurityRefusalLimit: on the real wiring with the default trusted
// proxies (the test client is a proxy on loopback, naming clients in
// X-Forwarded-For), a client sending forged events and wrong tokens is
// answered 429 with Retry-After once its burst is spent, while a platform
// sending valid signed events as fast as it can is never throttled.
func TestSecurityRefusalLimit(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			s := startSecure(t, dialect, func(cfg *configs.Config) {
				cfg.HTTP.RefusedRate = 1
				cfg.HTTP.RefusedBurst = 5
			})
			if err := s.app.Store.CreateBrand(context.Background(), &store.Brand{ID: "acme", Name: "ACME"}); err != nil {
				t.Fatal(err)
			}
			key := mustKey(t, secWebhookSecret)
			const attacker, platform = "203.0.113.7", "198.51.100.1"
			event := func(i int, from string, sign bool) (*http.Response, string) {
				body := []byte(`{"specversion":"1.0","id":"rl-` + strconv.Itoa(i) + `","source":"/pos/sh-1","type":"store.visited","brand":"acme","data":{"member":{"crm_id":"c-1"},"store":"sh-1"}}`)
				ts := time.Now().Unix()
				id := "rl-" + strconv.Itoa(i)
				sig := "v1,Zm9yZ2VkIHNpZ25hdHVyZQ=="
				if sign {
					sig = webhook.Sign(key, id, ts, body)
				}
				return do(t, "POST", s.base+webhook.EventsPath, body, http.Header{"Content-Type": {"application/cloudevents+json"},
					"Webhook-Id": {id}, "Webhook-Timestamp": {strconv.FormatInt(ts, 10)}, "Webhook-Signature": {sig},
					"X-Forwarded-For": {from}})
			}
			for i := 0; i < 5; i++ {
				if resp, out := event(i, attacker, false); resp.StatusCode != 401 {
					t.Fatalf("forgery %d within the burst: %d %s, want 401", i, resp.StatusCode, out)
				}
			}
			resp, out := event(5, attacker, false)
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("forgery past the burst: %d %s, Retry-After %q; want 429 with Retry-After", resp.StatusCode, out, resp.Header.Get("Retry-After"))
			}
			// The throttled client is throttled on the API and callbacks too.
			h := http.Header{"Authorization": {"Bearer " + s.cfg.AdminToken}, "X-Forwarded-For": {attacker}}
			if resp, _ := do(t, "GET", s.base+"/api/v1/brands", nil, h); resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("throttled client's API call: %d, want 429", resp.StatusCode)
			}
			if resp, _ := do(t, "POST", s.base+wecom.CallbackPath+"?timestamp=1", nil, http.Header{"X-Forwarded-For": {attacker}}); resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("throttled client's WeCom callback: %d, want 429", resp.StatusCode)
			}
			// A platform sending valid events flat out is never throttled.
			start := time.Now()
			for i := 100; i < 400; i++ {
				if resp, out := event(i, platform, true); resp.StatusCode != 200 {
					t.Fatalf("valid event %d: %d %s, want 200", i, resp.StatusCode, out)
				}
			}
			t.Logf("300 valid events in %v, none throttled", time.Since(start).Round(time.Millisecond))
			// Wrong tokens count on the API: a token guesser is cut off.
			guesser := http.Header{"Authorization": {"Bearer " + store.TokenPrefix + "guess"}, "X-Forwarded-For": {"192.0.2.44"}}
			var codes []int
			gstart := time.Now()
			for i := 0; i < 20; i++ {
				resp, _ := do(t, "GET", s.base+"/api/v1/brands", nil, guesser)
				codes = append(codes, resp.StatusCode)
			}
			refills := int(time.Since(gstart).Seconds()) + 1 // at 1/s, a slow run may earn a few more tries
			n401 := 0
			for _, c := range codes {
				if c == 401 {
					n401++
				} else if c != http.StatusTooManyRequests {
					t.Errorf("wrong token: status %d", c)
				}
			}
			if slices.Index(codes, http.StatusTooManyRequests) != 5 || n401 > 5+refills {
				t.Errorf("20 wrong tokens answered %v; want 5 401s then 429s", codes)
			}
			_, body := request(t, "GET", s.base+"/metrics", "", "")
			m := regexp.MustCompile(`(?m)^scrmgw_http_throttled_total (\d+)$`).FindStringSubmatch(body)
			if want := strconv.Itoa(1 + 2 + 20 - n401); m == nil || m[1] != want {
				t.Errorf("/metrics scrmgw_http_throttled_total = %v, want %s", m, want)
			}
		})
	}
}
