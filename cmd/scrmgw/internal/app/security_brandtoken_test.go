package app

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/httpserve"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// adminOnlyRoutes are the routes only an admin token may use (besides
// every route of the queue UI).
var adminOnlyRoutes = []string{
	"POST /api/v1/brands",
	"POST /api/v1/brands/bulk",
	"DELETE /api/v1/brands/:id",
	"POST /api/v1/settlements",
	"GET /api/v1/tokens",
	"POST /api/v1/tokens",
	"DELETE /api/v1/tokens/:id",
	"GET /api/v1/audit",
}

// TestSecurityBrandTokenNeverUnauthorized sends a valid brand token to
// every guarded route of the engine (read from Engine.Routes(), so a
// route added later is covered): the admin-only routes and the queue UI
// answer 403 with an error that says an admin token is needed; no route
// answers 401 (which would tell a client its right token is wrong, make a
// browser ask for it again, and count towards the refusal limit, which is
// on here: no request is answered 429).
func TestSecurityBrandTokenNeverUnauthorized(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			s := startSecure(t, dialect, func(c *configs.Config) { c.HTTP.RefusedRate, c.HTTP.RefusedBurst = 1, 3 })
			admin := s.cfg.AdminToken
			if code, body := request(t, "POST", s.base+"/api/v1/brands", admin, `{"id":"acme","name":"ACME"}`); code != 201 {
				t.Fatalf("brand: %d %s", code, body)
			}
			_, out := request(t, "POST", s.base+"/api/v1/tokens", admin, `{"name":"acme ops","brand":"acme"}`)
			var tok struct{ Token string }
			if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" {
				t.Fatalf("brand token: %s", out)
			}
			routes := guardedRoutes(t, s.app)
			var seen []string
			for _, r := range routes {
				route := r.Method + " " + r.Path
				seen = append(seen, route)
				adminOnly := slices.Contains(adminOnlyRoutes, route) || strings.HasPrefix(r.Path, httpserve.QueueUIPath)
				t.Run(route, func(t *testing.T) {
					h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + tok.Token}}
					resp, body := do(t, r.Method, s.base+concretePath(r.Path), []byte(`{}`), h)
					switch {
					case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusTooManyRequests:
						t.Errorf("status %d for a valid brand token: %.300s", resp.StatusCode, body)
					case adminOnly:
						var e struct {
							Error struct{ Code, Message string }
						}
						_ = json.Unmarshal([]byte(body), &e)
						// HEAD answers have no body.
						clear := r.Method == http.MethodHead || e.Error.Code == "forbidden" &&
							strings.Contains(e.Error.Message, "needs an admin token") && strings.Contains(e.Error.Message, `brand "acme"`)
						if resp.StatusCode != http.StatusForbidden || !clear {
							t.Errorf("admin-only route: %d %.300s; want 403 forbidden saying an admin token is needed", resp.StatusCode, body)
						}
						if resp.Header.Get("WWW-Authenticate") != "" {
							t.Errorf("403 with WWW-Authenticate %q: a browser would ask for the password again", resp.Header.Get("WWW-Authenticate"))
						}
					}
				})
			}
			// The list is not stale: every admin-only route exists.
			for _, r := range adminOnlyRoutes {
				if !slices.Contains(seen, r) {
					t.Errorf("admin-only route %s is not mounted", r)
				}
			}
			// And the handovers, once the admin's, are the brand's own.
			if code, body := request(t, "GET", s.base+"/api/v1/handovers", tok.Token, ""); code != 200 || !strings.Contains(body, `"handovers":[]`) {
				t.Errorf("brand token's handovers: %d %s", code, body)
			}
		})
	}
}
