package api_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func TestGuideTaskCountsAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServer(t, s)
		seed(c)
		for _, g := range []string{`{"id":"g-wang","store_id":"gz-1","name":"Wang"}`, `{"id":"g-zhou","store_id":"gz-1","name":"Zhou"}`,
			`{"id":"g-li","store_id":"sh-1","name":"Li"}`} {
			c.must(201, "POST", "/api/v1/guides", adminToken, g)
		}
		member := c.must(201, "POST", "/api/v1/members", adminToken, `{"phone":"13800138000","name":"Chen","brand":"acme"}`)["id"].(float64)
		c.must(200, "POST", "/api/v1/members", adminToken, `{"phone":"13800138000","brand":"zeta"}`)
		acme := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"acme","brand":"acme"}`)["token"].(string)
		zeta := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"zeta","brand":"zeta"}`)["token"].(string)

		past, future := time.Now().Add(-time.Hour).Format(time.RFC3339), time.Now().Add(time.Hour).Format(time.RFC3339)
		task := func(token, brand, guide, due, key string) map[string]any {
			return c.must(201, "POST", "/api/v1/guide-tasks", token,
				fmt.Sprintf(`{"guide_id":%q,"member_id":%.0f,"brand":%q,"title":"call back","due_at":%q,"key":%q}`, guide, member, brand, due, key))
		}
		// Wang: an overdue and an open acme task, a done zeta one; Zhou
		// an overdue zeta task.
		task(acme, "", "g-wang", past, "a1")
		task(adminToken, "acme", "g-wang", future, "a2")
		done := task(zeta, "zeta", "g-wang", future, "z1")
		task(zeta, "", "g-zhou", past, "z2")
		if _, completed, err := s.CompleteGuideTask(context.Background(), int64(done["id"].(float64)), time.Now()); err != nil || !completed {
			t.Fatalf("completing: %v %v", completed, err)
		}
		// The same key again is the same task.
		again := c.must(200, "POST", "/api/v1/guide-tasks", zeta,
			fmt.Sprintf(`{"guide_id":"g-wang","member_id":%.0f,"title":"call back","due_at":%q,"key":"z1"}`, member, future))
		if again["id"] != done["id"] {
			t.Errorf("repeated key made task %v, want %v", again["id"], done["id"])
		}

		type row struct {
			Guide               string
			Open, Overdue, Done float64
		}
		counts := func(token, query string) []row {
			t.Helper()
			out := c.must(200, "GET", "/api/v1/guide-tasks?"+query, token, "")
			var got []row
			for _, it := range out["items"].([]any) {
				m := it.(map[string]any)
				got = append(got, row{m["guide_id"].(string), m["open"].(float64), m["overdue"].(float64), m["done"].(float64)})
			}
			return got
		}
		for _, tc := range []struct {
			name, token, query string
			want               []row
		}{
			{"admin", adminToken, "store_id=gz-1", []row{{"g-wang", 1, 1, 1}, {"g-zhou", 0, 1, 0}}},
			{"admin, one brand", adminToken, "store_id=gz-1&brand=acme", []row{{"g-wang", 1, 1, 0}, {"g-zhou", 0, 0, 0}}},
			{"acme token", acme, "store_id=gz-1", []row{{"g-wang", 1, 1, 0}, {"g-zhou", 0, 0, 0}}},
			{"zeta token", zeta, "store_id=gz-1", []row{{"g-wang", 0, 0, 1}, {"g-zhou", 0, 1, 0}}},
			{"overdue", adminToken, "store_id=gz-1&status=overdue", []row{{"g-wang", 1, 1, 1}, {"g-zhou", 0, 1, 0}}},
			{"overdue of acme", acme, "store_id=gz-1&status=overdue", []row{{"g-wang", 1, 1, 0}}},
			{"open", adminToken, "store_id=gz-1&status=open", []row{{"g-wang", 1, 1, 1}}},
			{"done", zeta, "store_id=gz-1&status=done", []row{{"g-wang", 0, 0, 1}}},
			{"no tasks", adminToken, "store_id=sh-1", []row{{"g-li", 0, 0, 0}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if diff := cmp.Diff(tc.want, counts(tc.token, tc.query)); diff != "" {
					t.Errorf("counts (-want +got):\n%s", diff)
				}
			})
		}

		for _, tc := range []struct {
			name, token, query string
			status             int
			code, message      string
		}{
			{"no store", adminToken, "status=open", 400, api.CodeInvalidArgument, "store_id: required"},
			{"bad status", adminToken, "store_id=gz-1&status=late", 400, api.CodeInvalidArgument, `status: want open, overdue or done, got "late"`},
			{"unknown store", adminToken, "store_id=nowhere", 404, api.CodeNotFound, "not found"},
			{"other brand's store", acme, "store_id=bj-1", 404, api.CodeNotFound, "not found"},
			{"other brand", acme, "store_id=gz-1&brand=zeta", 404, api.CodeNotFound, "not found"},
			{"no token", "", "store_id=gz-1", 401, api.CodeUnauthorized, "missing bearer token"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, out := c.do("GET", "/api/v1/guide-tasks?"+tc.query, tc.token, "")
				if got != tc.status || errCode(out) != tc.code || !strings.Contains(errMessage(out), tc.message) {
					t.Errorf("status %d %v, want %d %s %q", got, out, tc.status, tc.code, tc.message)
				}
			})
		}
	})
}

func TestCreateGuideTaskRefusals(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServer(t, s)
		seed(c)
		c.must(201, "POST", "/api/v1/guides", adminToken, `{"id":"g-zeta","store_id":"bj-1","name":"Z"}`)
		c.must(201, "POST", "/api/v1/guides", adminToken, `{"id":"g-li","store_id":"sh-1","name":"Li"}`)
		member := c.must(201, "POST", "/api/v1/members", adminToken, `{"phone":"13800138000","name":"Chen","brand":"acme"}`)["id"].(float64)
		acme := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"acme","brand":"acme"}`)["token"].(string)
		due := time.Now().Add(time.Hour).Format(time.RFC3339)
		for _, tc := range []struct {
			name, token, body string
			status            int
			message           string
		}{
			{"nothing", adminToken, `{}`, 400, "brand: required"},
			{"no due time", acme, fmt.Sprintf(`{"guide_id":"g-li","member_id":%.0f,"title":"x"}`, member), 400, `due_at: want an RFC 3339 time such as 2026-05-02T18:00:00+08:00, got ""`},
			{"bad due time", acme, fmt.Sprintf(`{"guide_id":"g-li","member_id":%.0f,"title":"x","due_at":"tomorrow"}`, member), 400, `due_at: want an RFC 3339 time such as 2026-05-02T18:00:00+08:00, got "tomorrow"`},
			{"other brand", acme, fmt.Sprintf(`{"guide_id":"g-li","member_id":%.0f,"brand":"zeta","title":"x","due_at":%q}`, member, due), 403, "cannot give tasks of brand"},
			{"guide of another brand", acme, fmt.Sprintf(`{"guide_id":"g-zeta","member_id":%.0f,"title":"x","due_at":%q}`, member, due), 404, `guide "g-zeta" not found`},
			{"member of another brand", adminToken, fmt.Sprintf(`{"guide_id":"g-zeta","member_id":%.0f,"brand":"zeta","title":"x","due_at":%q}`, member, due), 404, "member"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, out := c.do("POST", "/api/v1/guide-tasks", tc.token, tc.body)
				if got != tc.status || !strings.Contains(errMessage(out), tc.message) {
					t.Errorf("status %d %v, want %d %q", got, out, tc.status, tc.message)
				}
			})
		}
		tasks, err := s.GuideTasks(context.Background(), store.GuideTaskFilter{})
		if err != nil || len(tasks) != 0 {
			t.Errorf("refused requests saved tasks %v (%v)", tasks, err)
		}
	})
}
