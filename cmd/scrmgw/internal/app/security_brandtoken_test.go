package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/httpserve"
	"github.com/scrmgw/scrmgw/store"
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

// TestSecurityEventsNameOnlyTheBrandsMembers: a brand's events that name
// another brand's member by scrmgw's member_id (a purchase, a profile
// update, its own event type) are refused as naming an unknown member:
// nothing is logged or recorded for the person under the brand, and the
// person does not become its member; the brand's event about its own
// member goes through.
func TestSecurityEventsNameOnlyTheBrandsMembers(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			s := startSecure(t, dialect, nil)
			ctx := context.Background()
			admin := s.cfg.AdminToken
			for _, b := range []string{`{"id":"acme","name":"ACME"}`, `{"id":"zeta","name":"Zeta"}`} {
				if code, body := request(t, "POST", s.base+"/api/v1/brands", admin, b); code != 201 {
					t.Fatalf("brand: %d %s", code, body)
				}
			}
			_, out := request(t, "POST", s.base+"/api/v1/members", admin, `{"phone":"13700137000","name":"Zeta member","brand":"zeta"}`)
			var z struct{ ID int64 }
			if err := json.Unmarshal([]byte(out), &z); err != nil || z.ID == 0 {
				t.Fatalf("zeta member: %s", out)
			}
			_, out = request(t, "POST", s.base+"/api/v1/tokens", admin, `{"name":"acme pos","brand":"acme"}`)
			var tok struct{ Token string }
			if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.Token == "" {
				t.Fatalf("brand token: %s", out)
			}
			batch := fmt.Sprintf(`[
 {"specversion":"1.0","id":"p-1","source":"/pos/x","type":"purchase.completed","brand":"acme","data":{"member":{"member_id":%[1]d},"order_id":"SO-1","items":[{"sku":"A","qty":1,"price":10}]}},
 {"specversion":"1.0","id":"u-1","source":"/pos/x","type":"member.updated","brand":"acme","data":{"member":{"member_id":%[1]d},"level":"gold","name":"spy"}},
 {"specversion":"1.0","id":"n-1","source":"/pos/x","type":"x.note","brand":"acme","data":{"member":{"member_id":%[1]d},"note":"probe"}},
 {"specversion":"1.0","id":"n-2","source":"/pos/x","type":"x.note","brand":"acme","data":{"member":{"phone":"13800138000"},"note":"own"}}]`, z.ID)
			h := http.Header{"Content-Type": {"application/cloudevents-batch+json"}, "Authorization": {"Bearer " + tok.Token}}
			if resp, body := do(t, "POST", s.base+"/api/v1/events", []byte(batch), h); resp.StatusCode != 200 {
				t.Fatalf("events: %d %s", resp.StatusCode, body)
			}
			waitFor(t, "the events processed", func() bool {
				ids, err := s.app.Store.PendingInbox(ctx, time.Now().Add(time.Hour), 10)
				return err == nil && len(ids) == 0
			})
			own, err := s.app.Store.MemberByPhone(ctx, "13800138000", "acme")
			if err != nil {
				t.Fatalf("acme's own member: %v", err)
			}
			if evs, _ := s.app.Store.Events(ctx, store.EventFilter{MemberID: own.ID}); len(evs) != 1 || evs[0].Type != "x.note" {
				t.Errorf("acme's own member's events: %+v", evs)
			}
			evs, err := s.app.Store.Events(ctx, store.EventFilter{MemberID: z.ID})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				if e.BrandID != "zeta" {
					t.Errorf("zeta's member has an event of %q: %s %s", e.BrandID, e.Type, e.Payload)
				}
			}
			if _, err := s.app.Store.Member(ctx, z.ID, "acme"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("zeta's member is acme's after acme's events: %v", err)
			}
			if os, err := s.app.Store.MemberOrders(ctx, z.ID, "", 10); err != nil || len(os) != 0 {
				t.Errorf("orders of zeta's member: %+v %v", os, err)
			}
			if v, _ := s.app.Store.Member(ctx, z.ID, "zeta"); v == nil || v.Name != "Zeta member" || len(v.Memberships) != 1 || v.Memberships[0].Level != "" {
				t.Errorf("zeta's member after acme's events: %+v", v)
			}
		})
	}
}
