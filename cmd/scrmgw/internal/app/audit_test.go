package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/httpserve"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestAuditTrailWiring runs the real gateway with admin_token and
// admin_token_next: both work; writes through the API and the queue UI
// are in the trail with the client named by the trusted proxy's
// X-Forwarded-For; a read-only admin token may look at the queue UI but
// not act there; and what is buffered at shutdown is written before Serve
// returns.
func TestAuditTrailWiring(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			cfg := configs.Default()
			cfg.DataDir = t.TempDir()
			cfg.Database.URL = storetest.URL(t, dialect)
			if dialect == "postgres" {
				cfg.Redis.URL = storetest.RedisURL(t)
			}
			cfg.AdminToken = "audit-wiring-admin-token-old"
			cfg.AdminTokenNext = "audit-wiring-admin-token-new"
			cfg.Security.PhoneKey = strings.Repeat("5e", 32)
			s := startServe(t, cfg)
			call := func(method, path, token, body string) (int, string) {
				t.Helper()
				h := http.Header{"Authorization": {"Bearer " + token}, "X-Forwarded-For": {"198.51.100.7"}, "User-Agent": {"wiring-test"}}
				if body != "" {
					h.Set("Content-Type", "application/json")
				}
				resp, out := do(t, method, s.base+path, []byte(body), h)
				return resp.StatusCode, out
			}
			if code, out := call("POST", "/api/v1/brands", cfg.AdminToken, `{"id":"acme","name":"ACME"}`); code != 201 {
				t.Fatalf("old admin token: %d %s", code, out)
			}
			if code, out := call("POST", "/api/v1/brands", cfg.AdminTokenNext, `{"id":"zeta","name":"Zeta"}`); code != 201 {
				t.Fatalf("next admin token: %d %s", code, out)
			}
			code, out := call("POST", "/api/v1/tokens", cfg.AdminTokenNext, `{"name":"watcher","read_only":true,"resources":["queues"]}`)
			if code != 201 {
				t.Fatalf("creating a read-only admin token: %d %s", code, out)
			}
			var tok struct {
				Token string `json:"token"`
				ID    int64  `json:"id"`
			}
			json.Unmarshal([]byte(out), &tok)
			if code, out := call("GET", httpserve.QueueUIPath+"/api/queues", tok.Token, ""); code != 200 {
				t.Errorf("read-only token looking at the queues: %d %s", code, out)
			}
			if code, out := call("POST", httpserve.QueueUIPath+"/api/queues/default:pause", tok.Token, ""); code != 403 || !strings.Contains(out, "read-only") {
				t.Errorf("read-only token pausing a queue: %d %s, want 403", code, out)
			}
			if code, out := call("GET", "/api/v1/brands", tok.Token, ""); code != 403 || !strings.Contains(out, "belongs to catalog") {
				t.Errorf("queues-only token listing brands: %d %s, want 403", code, out)
			}
			// Stop the gateway right away: the entries still buffered are
			// written before Serve returns.
			s.shutdown(t)
			es, err := s.app.Store.AuditLog(context.Background(), store.AuditQuery{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range es {
				tokID := "-"
				if e.TokenID != nil {
					tokID = fmt.Sprint(*e.TokenID)
				}
				got = append(got, fmt.Sprintf("%s %s %s %s %d %s %s %s", e.Actor, tokID, e.Method, e.Route, e.Status, e.Resource, e.ClientIP, e.UserAgent))
			}
			want := []string{
				"admin - POST /api/v1/brands 201 catalog 198.51.100.7 wiring-test",
				"admin_next - POST /api/v1/brands 201 catalog 198.51.100.7 wiring-test",
				"admin_next - POST /api/v1/tokens 201 tokens 198.51.100.7 wiring-test",
				fmt.Sprintf("watcher %d POST %s/*path 403 queues 198.51.100.7 wiring-test", tok.ID, httpserve.QueueUIPath),
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
