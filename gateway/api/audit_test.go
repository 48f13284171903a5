package api_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/api/openapitest"
	"github.com/scrmgw/scrmgw/gateway/audit"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

const nextAdminToken = "test-admin-token-next-9876543210"

// audited is an API server with the real audit writer, trusting the
// loopback proxy's X-Forwarded-For as the gateway does.
type audited struct {
	client
	rec *audit.Recorder
}

func newAudited(t *testing.T, s *store.Store) audited {
	t.Helper()
	gin.SetMode(gin.TestMode)
	rec := audit.New(s, audit.Options{Interval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rec.Run(ctx)
	}()
	r := gin.New()
	if err := r.SetTrustedProxies([]string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	api.New(api.Options{Store: s, AdminToken: adminToken, AdminTokenNext: nextAdminToken, Audit: rec,
		MaxBodyBytes: 64 << 10, MaxBulkBodyBytes: 1 << 20}).Mount(r)
	srv := httptest.NewServer(openapitest.Check(t, r))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
	})
	return audited{client: client{t: t, url: srv.URL}, rec: rec}
}

// entries flushes the writer and reads the trail through the API.
func (a audited) entries(query string) []map[string]any {
	a.t.Helper()
	if err := a.rec.Flush(context.Background()); err != nil {
		a.t.Fatal(err)
	}
	out := a.must(200, "GET", "/api/v1/audit?limit=1000&"+query, adminToken, "")
	var es []map[string]any
	for _, it := range out["items"].([]any) {
		es = append(es, it.(map[string]any))
	}
	return es
}

// raw sends a request with extra headers and returns status and body.
func (a audited) raw(method, path, token, body string, h http.Header) (int, string) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.url+path, strings.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (a audited) token(body string) (string, int64) {
	a.t.Helper()
	out := a.must(201, "POST", "/api/v1/tokens", adminToken, body)
	return out["token"].(string), int64(out["id"].(float64))
}

// TestAuditTrailRecordsWrites: every write through the API, accepted or
// refused, is one entry with its route pattern, ids, status, token, client
// IP (through the trusted proxy) and user agent; reads are not recorded,
// and neither bodies nor phone numbers are.
func TestAuditTrailRecordsWrites(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		a := newAudited(t, s)
		seed(a.client)
		acme, acmeID := a.token(`{"name":"acme ops","brand":"acme","can_view_phone":true}`)
		before := len(a.entries(""))
		m := a.must(201, "POST", "/api/v1/members", acme, `{"phone":"+8613800138000","name":"Wang","brand":"acme"}`)
		memberID := fmt.Sprint(m["id"])
		h := http.Header{"X-Forwarded-For": {"203.0.113.9"}, "User-Agent": {"ops-script/1.0 " + strings.Repeat("x", 300)}}
		tests := []struct {
			method, path, token, body string
			status                    int
			actor, route, resource    string
			ids, note                 string
		}{
			{"PATCH", "/api/v1/members/" + memberID, acme, `{"time_zone":"Asia/Shanghai"}`, 200, "acme ops", "/api/v1/members/:id", "members", "id=" + memberID, ""},
			{"PUT", "/api/v1/stores/sh-1", adminToken, `{"name":"Shanghai 1","brands":["acme"],"lat":31.2,"lng":121.4}`, 200, "admin", "/api/v1/stores/:id", "catalog", "id=sh-1", ""},
			{"POST", "/api/v1/guides", acme, `{"id":"g1","store_id":"sh-1","name":"Li"}`, 201, "acme ops", "/api/v1/guides", "guides", "", ""},
			{"DELETE", "/api/v1/stores/bj-1", acme, "", 404, "acme ops", "/api/v1/stores/:id", "catalog", "id=bj-1", "not_found"},
			{"POST", "/api/v1/brands", acme, `{"id":"new","name":"New"}`, 403, "acme ops", "/api/v1/brands", "catalog", "", "forbidden"},
			{"POST", "/api/v1/stores", nextAdminToken, `{"id":"x"`, 400, "admin_next", "/api/v1/stores", "catalog", "", "invalid_json"},
			{"POST", "/api/v1/members/" + memberID + "/merge", acme, `{"into":` + memberID + `}`, 400, "acme ops", "/api/v1/members/:id/merge", "members", "id=" + memberID + "&into=" + memberID, "invalid_argument"},
			{"DELETE", "/api/v1/tokens/999", adminToken, "", 404, "admin", "/api/v1/tokens/:id", "tokens", "id=999", "not_found"},
		}
		for _, tc := range tests {
			if got, body := a.raw(tc.method, tc.path, tc.token, tc.body, h); got != tc.status {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, got, body, tc.status)
			}
		}
		// Reads record nothing (a brand token without phones, and lists).
		a.must(200, "GET", "/api/v1/stores", acme, "")
		a.must(200, "GET", "/api/v1/brands/acme", adminToken, "")

		es := a.entries("")[before:]
		// The first is the member's creation: its new id is in the entry.
		if len(es) != len(tests)+3 {
			t.Fatalf("%d entries after the requests, want %d: %v", len(es), len(tests)+3, es)
		}
		if es[0]["action"] != store.AuditWrite || es[0]["route"] != "/api/v1/members" || es[0]["resource_ids"] != "member="+memberID ||
			es[0]["status"] != 201.0 || es[0]["token_id"] != float64(acmeID) || es[0]["client_ip"] != "127.0.0.1" {
			t.Errorf("creation entry = %v", es[0])
		}
		// It showed the full phone: a phone.view entry names the member.
		if es[1]["action"] != store.AuditPhoneView || es[1]["resource_ids"] != "member="+memberID || es[1]["route"] != "/api/v1/members" {
			t.Errorf("phone view entry = %v", es[1])
		}
		writes := []map[string]any{}
		for _, e := range es[2:] {
			if e["action"] == store.AuditWrite {
				writes = append(writes, e)
			}
		}
		for i, tc := range tests {
			e := writes[i]
			want := map[string]any{"actor": tc.actor, "method": tc.method, "route": tc.route, "resource": tc.resource,
				"status": float64(tc.status), "client_ip": "203.0.113.9", "user_agent": ("ops-script/1.0 " + strings.Repeat("x", 300))[:200]}
			if tc.ids != "" {
				want["resource_ids"] = tc.ids
			}
			if tc.note != "" {
				want["note"] = tc.note
			}
			for k, v := range want {
				if e[k] != v {
					t.Errorf("%s %s: entry %s = %v, want %v", tc.method, tc.path, k, e[k], v)
				}
			}
			if tc.token == adminToken || tc.token == nextAdminToken {
				if _, ok := e["token_id"]; ok {
					t.Errorf("%s %s: admin entry has a token id: %v", tc.method, tc.path, e)
				}
			} else if e["token_id"] != float64(acmeID) {
				t.Errorf("%s %s: token_id %v, want %d", tc.method, tc.path, e["token_id"], acmeID)
			}
		}
		// The PATCH answered the member with the full phone too.
		if n := len(a.entries("action=phone.view&resource_id=" + memberID)); n != 2 {
			t.Errorf("%d phone views of the member, want 2 (create, patch)", n)
		}
		// Nothing of a body or a phone is stored.
		_, csvText := a.raw("GET", "/api/v1/audit?format=csv", adminToken, "", nil)
		for _, secret := range []string{"13800138000", "Wang", "Shanghai 1", "Asia/Shanghai", "Li"} {
			if strings.Contains(csvText, secret) {
				t.Errorf("the audit trail holds %q", secret)
			}
		}
	})
}

// TestScopedTokens: a read-only token is refused writes (403, audited as
// refused), a token limited to route groups is refused outside them, an
// expired token gets 401 saying so (its write attempt audited), last use
// is recorded, and a token cannot issue a broader one.
func TestScopedTokens(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		a := newAudited(t, s)
		seed(a.client)
		reader, readerID := a.token(`{"name":"reader","brand":"acme","read_only":true}`)
		crm, _ := a.token(`{"name":"crm","brand":"acme","resources":["members","commerce"]}`)
		brief, _ := a.token(`{"name":"brief","brand":"acme","expires_in":"1s"}`)
		ops, _ := a.token(`{"name":"ops","resources":["tokens","members"],"expires_in":"24h"}`)
		time.Sleep(1100 * time.Millisecond) // brief expires

		tests := []struct {
			name, method, path, token, body string
			status                          int
			message                         string
		}{
			{"read-only reads", "GET", "/api/v1/stores/sh-1", reader, "", 200, ""},
			{"read-only writes", "POST", "/api/v1/members", reader, `{"phone":"+8613800138001"}`, 403, "this token is read-only: it may GET and HEAD, not POST"},
			{"read-only deletes", "DELETE", "/api/v1/stores/sh-1", reader, "", 403, "read-only"},
			{"limited inside", "POST", "/api/v1/members", crm, `{"phone":"+8613800138002"}`, 201, ""},
			{"limited inside commerce", "GET", "/api/v1/products", crm, "", 200, ""},
			{"limited outside", "GET", "/api/v1/stores", crm, "", 403, "this token may use only members, commerce; this endpoint belongs to catalog"},
			{"limited outside write", "PUT", "/api/v1/workflows/x", crm, "name: x", 403, "belongs to workflows"},
			{"expired", "GET", "/api/v1/stores", brief, "", 401, `token "brief" expired at `},
			{"expired write", "POST", "/api/v1/members", brief, `{"phone":"+8613800138003"}`, 401, "ask an admin for a new one"},
			{"broader token: every resource", "POST", "/api/v1/tokens", ops, `{"name":"x","expires_in":"1h"}`, 403, "a token cannot issue a broader one: this one has no access to every resource"},
			{"broader token: later expiry", "POST", "/api/v1/tokens", ops, `{"name":"x","resources":["members"],"expires_in":"48h"}`, 403, "past this token's expiry"},
			{"narrower token", "POST", "/api/v1/tokens", ops, `{"name":"x","resources":["members"],"expires_in":"1h"}`, 201, ""},
			{"unknown resource", "POST", "/api/v1/tokens", adminToken, `{"name":"x","resources":["stores"]}`, 400, `unknown resource "stores"`},
			{"bad expiry", "POST", "/api/v1/tokens", adminToken, `{"name":"x","expires_in":"soon"}`, 400, "expires_in"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, out := a.do(tc.method, tc.path, tc.token, tc.body)
				if got != tc.status || !strings.Contains(errMessage(out), tc.message) {
					t.Errorf("status %d %q, want %d %q", got, errMessage(out), tc.status, tc.message)
				}
			})
		}
		refused := a.entries("token=" + fmt.Sprint(readerID))
		if len(refused) != 2 || refused[0]["status"] != 403.0 || refused[0]["note"] != "read_only" || refused[0]["route"] != "/api/v1/members" ||
			refused[0]["resource"] != "members" || refused[1]["method"] != "DELETE" {
			t.Errorf("read-only token's entries = %v, want its two refused writes", refused)
		}
		outside := a.entries("token=crm")
		if len(outside) != 2 || outside[1]["status"] != 403.0 || outside[1]["note"] != "resource" || outside[1]["resource"] != "workflows" {
			t.Errorf("limited token's entries = %v, want its write and its refused one", outside)
		}
		expired := a.entries("token=brief")
		if len(expired) != 1 || expired[0]["status"] != 401.0 || expired[0]["note"] != "expired" {
			t.Errorf("expired token's entries = %v, want its refused write", expired)
		}
		// Last use, off the request path: the tokens used show it, the
		// expired one does not.
		toks := map[string]map[string]any{}
		for _, it := range a.must(200, "GET", "/api/v1/tokens", adminToken, "")["items"].([]any) {
			tok := it.(map[string]any)
			toks[tok["name"].(string)] = tok
		}
		for name, used := range map[string]bool{"reader": true, "crm": true, "brief": false} {
			_, has := toks[name]["last_used_at"]
			if has != used {
				t.Errorf("token %s: last_used_at %v, want set=%v", name, toks[name]["last_used_at"], used)
			}
		}
		if toks["brief"]["expired"] != true || toks["reader"]["read_only"] != true || fmt.Sprint(toks["crm"]["resources"]) != "[members commerce]" {
			t.Errorf("tokens listed as %v", toks)
		}
	})
}

// TestAdminTokenRotation: during the overlap both admin tokens work, and
// the trail says which one a write used.
func TestAdminTokenRotation(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		a := newAudited(t, s)
		a.must(201, "POST", "/api/v1/brands", adminToken, `{"id":"acme","name":"ACME"}`)
		a.must(201, "POST", "/api/v1/brands", nextAdminToken, `{"id":"zeta","name":"Zeta"}`)
		a.must(200, "GET", "/api/v1/tokens", nextAdminToken, "")
		es := a.entries("resource=catalog")
		if len(es) != 2 || es[0]["actor"] != "admin" || es[1]["actor"] != "admin_next" {
			t.Errorf("entries = %v, want one write by admin, one by admin_next", es)
		}
		// After the rotation the old token is gone.
		gin.SetMode(gin.TestMode)
		r := gin.New()
		api.New(api.Options{Store: s, AdminToken: nextAdminToken}).Mount(r)
		srv := httptest.NewServer(openapitest.Check(t, r))
		defer srv.Close()
		after := client{t: t, url: srv.URL}
		after.must(200, "GET", "/api/v1/brands", nextAdminToken, "")
		after.must(401, "GET", "/api/v1/brands", adminToken, "")
	})
}

// TestAuditCSVAndFilters: the trail as CSV (format=csv or Accept:
// text/csv), with formula-looking cells defused; keyset pages; bad
// filters answer 400; brand tokens cannot read it.
func TestAuditCSVAndFilters(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		a := newAudited(t, s)
		seed(a.client)
		acme, _ := a.token(`{"name":"=HYPERLINK(\"x\")","brand":"acme"}`)
		a.must(200, "PUT", "/api/v1/brands/acme", acme, `{"name":"ACME 2"}`)
		all := a.entries("")
		if len(all) != 7 { // 2 brands, 3 stores, the token, the PUT
			t.Fatalf("%d entries, want 7", len(all))
		}
		page := a.must(200, "GET", "/api/v1/audit?limit=4", adminToken, "")
		next := page["next_after"].(string)
		rest := a.must(200, "GET", "/api/v1/audit?limit=4&after="+next, adminToken, "")
		if len(page["items"].([]any)) != 4 || len(rest["items"].([]any)) != 3 || rest["next_after"] != nil {
			t.Errorf("pages: %v then %v", page, rest)
		}
		since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
		if n := len(a.entries("since=" + since + "&until=" + time.Now().Add(time.Minute).UTC().Format(time.RFC3339) + "&action=api.write&resource=catalog")); n != 6 {
			t.Errorf("catalog writes in the last minute: %d, want 6", n)
		}
		for _, h := range []http.Header{nil, {"Accept": {"text/csv"}}} {
			path := "/api/v1/audit?format=csv"
			if h != nil {
				path = "/api/v1/audit"
			}
			status, body := a.raw("GET", path, adminToken, "", h)
			rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
			if status != 200 || err != nil || len(rows) != 8 {
				t.Fatalf("CSV: %d, %d rows, %v:\n%s", status, len(rows), err, body)
			}
			if strings.Join(rows[0], ",") != "id,at,token_id,actor,brand,action,method,route,resource,resource_ids,status,note,client_ip,user_agent" {
				t.Errorf("CSV header = %v", rows[0])
			}
			last := rows[7]
			if last[3] != `'=HYPERLINK("x")` || last[4] != "acme" || last[7] != "/api/v1/brands/:id" || last[9] != "id=acme" || last[10] != "200" {
				t.Errorf("CSV row = %v", last)
			}
		}
		for _, q := range []string{"since=yesterday", "after=x", "limit=0"} {
			if got, out := a.do("GET", "/api/v1/audit?"+q, adminToken, ""); got != 400 || errCode(out) != api.CodeInvalidArgument {
				t.Errorf("%s: %d %v, want 400", q, got, out)
			}
		}
		a.must(403, "GET", "/api/v1/audit", acme, "")
	})
}

// TestResolveHashAdminTokens: the console's sessions keep a token's
// hash; the hash of either configured admin token (admin_token and,
// while rotating, admin_token_next) resolves to that admin, any other
// unknown hash is a bad token.
func TestResolveHashAdminTokens(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		srv := api.New(api.Options{Store: s, AdminToken: adminToken, AdminTokenNext: nextAdminToken})
		ctx := context.Background()
		for tok, want := range map[string]string{adminToken: "admin", nextAdminToken: "admin_next"} {
			p, err := srv.ResolveHash(ctx, store.HashToken(tok))
			if err != nil || p.Name != want || !p.Admin() || !p.CanViewPhone {
				t.Errorf("ResolveHash(hash of %s) = %+v, %v; want the admin %s", want, p, err, want)
			}
		}
		if p, err := srv.ResolveHash(ctx, store.HashToken("scrmgw_not-a-token")); err != api.ErrBadToken {
			t.Errorf("ResolveHash(unknown) = %+v, %v; want ErrBadToken", p, err)
		}
		// After the rotation only the new token is configured.
		rotated := api.New(api.Options{Store: s, AdminToken: nextAdminToken})
		if _, err := rotated.ResolveHash(ctx, store.HashToken(adminToken)); err != api.ErrBadToken {
			t.Errorf("the old admin token after rotation: %v, want ErrBadToken", err)
		}
		if p, err := rotated.ResolveHash(ctx, store.HashToken(nextAdminToken)); err != nil || p.Name != "admin" {
			t.Errorf("the new admin token after rotation = %+v, %v", p, err)
		}
	})
}
