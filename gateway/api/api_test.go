package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/api/openapitest"
	"github.com/scrmgw/scrmgw/gateway/assign"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

const adminToken = "test-admin-token-0123456789"

type client struct {
	t   *testing.T
	url string
}

// do sends a request and returns the status and decoded JSON body.
func (c client) do(method, path, token, body string) (int, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.t.Fatalf("%s %s: response is not JSON: %q", method, path, raw)
		}
	}
	return resp.StatusCode, out
}

// must sends a request and fails the test unless the status is want.
func (c client) must(want int, method, path, token, body string) map[string]any {
	c.t.Helper()
	got, out := c.do(method, path, token, body)
	if got != want {
		c.t.Fatalf("%s %s: status %d, want %d; body %v", method, path, got, want, out)
	}
	return out
}

func newServer(t *testing.T, s *store.Store) client {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	api.New(api.Options{Store: s, AdminToken: adminToken, MaxBodyBytes: 64 << 10, MaxBulkBodyBytes: 1 << 20}).Mount(r)
	srv := httptest.NewServer(openapitest.Check(t, r))
	t.Cleanup(srv.Close)
	return client{t: t, url: srv.URL}
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func errMessage(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

func seed(c client) {
	c.must(201, "POST", "/api/v1/brands", adminToken, `{"id":"acme","name":"ACME"}`)
	c.must(201, "POST", "/api/v1/brands", adminToken, `{"id":"zeta","name":"Zeta"}`)
	c.must(201, "POST", "/api/v1/stores", adminToken, `{"id":"sh-1","name":"Shanghai","brands":["acme"],"lat":31.23,"lng":121.47}`)
	c.must(201, "POST", "/api/v1/stores", adminToken, `{"id":"bj-1","name":"Beijing","brands":["zeta"],"lat":39.9,"lng":116.4}`)
	c.must(201, "POST", "/api/v1/stores", adminToken, `{"id":"gz-1","name":"Guangzhou mall","brands":["acme","zeta"],"lat":23.13,"lng":113.26}`)
}

func TestAuthentication(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServer(t, s)
		seed(c)
		for _, tok := range []string{"", "wrong", store.TokenPrefix + "unknown"} {
			got, out := c.do("GET", "/api/v1/stores/sh-1", tok, "")
			if got != 401 || errCode(out) != api.CodeUnauthorized {
				t.Errorf("token %q: status %d %v, want 401 unauthorized", tok, got, out)
			}
		}
		out := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"acme ops","brand":"acme"}`)
		tok := out["token"].(string)
		c.must(200, "GET", "/api/v1/stores/sh-1", tok, "")
		c.must(204, "DELETE", fmt.Sprintf("/api/v1/tokens/%.0f", out["id"].(float64)), adminToken, "")
		c.must(401, "GET", "/api/v1/stores/sh-1", tok, "")
	})
}

func TestStoreReadsBack(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServer(t, s)
		seed(c)
		out := c.must(200, "GET", "/api/v1/stores/gz-1", adminToken, "")
		if out["name"] != "Guangzhou mall" || out["lat"] != 23.13 || fmt.Sprint(out["brands"]) != "[acme zeta]" || out["active"] != true {
			t.Errorf("store read back as %v", out)
		}
		c.must(200, "PUT", "/api/v1/stores/gz-1", adminToken, `{"name":"Guangzhou","brands":["acme"],"lat":23.1,"lng":113.2,"active":false}`)
		out = c.must(200, "GET", "/api/v1/stores/gz-1", adminToken, "")
		if out["name"] != "Guangzhou" || out["active"] != false || fmt.Sprint(out["brands"]) != "[acme]" {
			t.Errorf("after PUT: %v", out)
		}
		list := c.must(200, "GET", "/api/v1/stores?limit=2", adminToken, "")
		if items := list["items"].([]any); len(items) != 2 || list["next_after"] != "gz-1" {
			t.Errorf("first page = %v", list)
		}
		list = c.must(200, "GET", "/api/v1/stores?limit=2&after=gz-1", adminToken, "")
		if items := list["items"].([]any); len(items) != 1 || list["next_after"] != nil {
			t.Errorf("second page = %v", list)
		}
	})
}

func TestBrandScope(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServer(t, s)
		seed(c)
		acme := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"acme","brand":"acme"}`)["token"].(string)

		list := c.must(200, "GET", "/api/v1/stores", acme, "")
		var ids []string
		for _, it := range list["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		if fmt.Sprint(ids) != "[gz-1 sh-1]" {
			t.Errorf("acme sees stores %v, want [gz-1 sh-1]", ids)
		}
		tests := []struct {
			name, method, path, body string
			status                   int
		}{
			{"other brand's store", "GET", "/api/v1/stores/bj-1", "", 404},
			{"other brand", "GET", "/api/v1/brands/zeta", "", 404},
			{"create brand", "POST", "/api/v1/brands", `{"id":"new","name":"New"}`, 403},
			{"store for another brand", "POST", "/api/v1/stores", `{"id":"x","name":"X","brands":["zeta"],"lat":30,"lng":120}`, 403},
			{"shared store", "PUT", "/api/v1/stores/gz-1", `{"name":"Mine","brands":["acme"],"lat":23,"lng":113}`, 403},
			{"overwrite other brand's store", "PUT", "/api/v1/stores/bj-1", `{"name":"Mine","brands":["acme"],"lat":23,"lng":113}`, 404},
			{"guide in other brand's store", "POST", "/api/v1/guides", `{"id":"g9","store_id":"bj-1","name":"Spy"}`, 400},
			{"tokens", "GET", "/api/v1/tokens", "", 403},
			{"own store", "POST", "/api/v1/stores", `{"id":"sh-2","name":"Pudong","brands":["acme"],"lat":31.2,"lng":121.5}`, 201},
			{"rename own brand", "PUT", "/api/v1/brands/acme", `{"name":"ACME China"}`, 200},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, out := c.do(tc.method, tc.path, acme, tc.body)
				if got != tc.status {
					t.Errorf("status %d, want %d (%v)", got, tc.status, out)
				}
			})
		}
		// Nothing of the refused writes happened.
		if out := c.must(200, "GET", "/api/v1/stores/gz-1", adminToken, ""); out["name"] != "Guangzhou mall" {
			t.Errorf("shared store changed: %v", out)
		}
		c.must(404, "GET", "/api/v1/stores/x", adminToken, "")
		c.must(404, "GET", "/api/v1/guides/g9", adminToken, "")
	})
}

func TestBadInputChangesNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServer(t, s)
		seed(c)
		big := `{"id":"big","name":"` + strings.Repeat("x", 70<<10) + `","brands":["acme"],"lat":1,"lng":1}`
		tests := []struct {
			name, path, body string
			status           int
			code, message    string
		}{
			{"malformed", "/api/v1/stores", `{"id":"x",`, 400, api.CodeInvalidJSON, "ends in the middle"},
			{"syntax", "/api/v1/stores", `{"id" "x"}`, 400, api.CodeInvalidJSON, "malformed JSON at byte"},
			{"empty", "/api/v1/stores", ``, 400, api.CodeInvalidJSON, "empty"},
			{"trailing", "/api/v1/stores", `{"id":"t","name":"T","brands":["acme"],"lat":1,"lng":1} {}`, 400, api.CodeInvalidJSON, "after the JSON value"},
			{"wrong type", "/api/v1/stores", `{"id":"x","name":"X","brands":["acme"],"lat":"31","lng":121}`, 400, api.CodeInvalidArgument, `field "lat": want a number, got string`},
			{"brands not a list", "/api/v1/stores", `{"id":"x","name":"X","brands":"acme","lat":31,"lng":121}`, 400, api.CodeInvalidArgument, `field "brands": want a list`},
			{"unknown field", "/api/v1/stores", `{"id":"x","name":"X","brands":["acme"],"lat":31,"lng":121,"latt":1}`, 400, api.CodeInvalidArgument, `unknown field "latt"`},
			{"lat out of range", "/api/v1/stores", `{"id":"x","name":"X","brands":["acme"],"lat":91,"lng":121}`, 400, api.CodeInvalidArgument, "lat: 91 is out of range"},
			{"lng out of range", "/api/v1/stores", `{"id":"x","name":"X","brands":["acme"],"lat":31,"lng":-181}`, 400, api.CodeInvalidArgument, "lng: -181 is out of range"},
			{"null island", "/api/v1/stores", `{"id":"x","name":"X","brands":["acme"],"lat":0,"lng":0}`, 400, api.CodeInvalidArgument, "(0, 0)"},
			{"missing coordinates", "/api/v1/stores", `{"id":"x","name":"X","brands":["acme"]}`, 400, api.CodeInvalidArgument, "lat: is required"},
			{"unknown brand", "/api/v1/stores", `{"id":"x","name":"X","brands":["ghost"],"lat":31,"lng":121}`, 400, api.CodeInvalidArgument, `unknown brand "ghost"`},
			{"bad time zone", "/api/v1/stores", `{"id":"x","name":"X","brands":["acme"],"lat":31,"lng":121,"time_zone":"Mars/Olympus"}`, 400, api.CodeInvalidArgument, "unknown time zone"},
			{"bad id", "/api/v1/stores", `{"id":"a b","name":"X","brands":["acme"],"lat":31,"lng":121}`, 400, api.CodeInvalidArgument, "not a valid id"},
			{"duplicate id", "/api/v1/stores", `{"id":"sh-1","name":"X","brands":["acme"],"lat":31,"lng":121}`, 409, api.CodeConflict, `store "sh-1" already exists`},
			{"duplicate brand", "/api/v1/brands", `{"id":"acme","name":"Again"}`, 409, api.CodeConflict, `brand "acme" already exists`},
			{"oversized", "/api/v1/stores", big, 413, api.CodeTooLarge, "exceeds 65536 bytes"},
			{"bulk duplicate ids", "/api/v1/stores/bulk", `{"items":[{"id":"n1","name":"N","brands":["acme"],"lat":1,"lng":1},{"id":"n1","name":"N","brands":["acme"],"lat":1,"lng":1}]}`, 400, api.CodeInvalidArgument, "nothing was written"},
			{"bulk bad row", "/api/v1/stores/bulk", `{"items":[{"id":"n2","name":"N","brands":["acme"],"lat":1,"lng":1},{"id":"n3","name":"N","brands":["acme"],"lat":100,"lng":1}]}`, 400, api.CodeInvalidArgument, "nothing was written"},
			{"bulk unknown brand", "/api/v1/stores/bulk", `{"items":[{"id":"n4","name":"N","brands":["acme"],"lat":1,"lng":1},{"id":"n5","name":"N","brands":["ghost"],"lat":1,"lng":1}]}`, 400, api.CodeInvalidArgument, `row 1: brands[0]: unknown brand "ghost"`},
			{"bulk empty", "/api/v1/stores/bulk", `{"items":[]}`, 400, api.CodeInvalidArgument, "at least one"},
			{"guide unknown store", "/api/v1/guides", `{"id":"g1","store_id":"nowhere","name":"Li"}`, 400, api.CodeInvalidArgument, `unknown store "nowhere"`},
			{"guide negative capacity", "/api/v1/guides", `{"id":"g1","store_id":"sh-1","name":"Li","capacity":-1}`, 400, api.CodeInvalidArgument, "capacity"},
			{"member bad phone", "/api/v1/members", `{"phone":"12345","brand":"acme"}`, 400, api.CodeInvalidArgument, "phone"},
		}
		before := c.must(200, "GET", "/api/v1/stores?limit=1000", adminToken, "")
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, out := c.do("POST", tc.path, adminToken, tc.body)
				if got != tc.status || errCode(out) != tc.code || !strings.Contains(errMessage(out), tc.message) {
					t.Errorf("got %d %s %q; want %d %s containing %q", got, errCode(out), errMessage(out), tc.status, tc.code, tc.message)
				}
			})
		}
		after := c.must(200, "GET", "/api/v1/stores?limit=1000", adminToken, "")
		if len(after["items"].([]any)) != len(before["items"].([]any)) {
			t.Errorf("refused requests wrote stores: %d before, %d after", len(before["items"].([]any)), len(after["items"].([]any)))
		}
		if out := c.must(200, "GET", "/api/v1/stores/sh-1", adminToken, ""); out["name"] != "Shanghai" {
			t.Errorf("sh-1 changed: %v", out)
		}
		c.must(404, "GET", "/api/v1/guides/g1", adminToken, "")
	})
}

func TestBulkUpsert(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServer(t, s)
		seed(c)
		var items []string
		for i := 0; i < 300; i++ {
			items = append(items, fmt.Sprintf(`{"id":"b-%03d","name":"Store %d","brands":["acme","zeta"],"lat":%f,"lng":%f}`, i, i, 20+float64(i)/100, 110+float64(i)/100))
		}
		out := c.must(200, "POST", "/api/v1/stores/bulk", adminToken, `{"items":[`+strings.Join(items, ",")+`]}`)
		if out["upserted"] != 300.0 {
			t.Errorf("upserted = %v", out["upserted"])
		}
		got := c.must(200, "GET", "/api/v1/stores/b-123", adminToken, "")
		if got["name"] != "Store 123" || fmt.Sprint(got["brands"]) != "[acme zeta]" {
			t.Errorf("b-123 = %v", got)
		}
		c.must(200, "POST", "/api/v1/guides/bulk", adminToken, `{"items":[{"id":"g1","store_id":"b-001","name":"Li","wecom_userid":"li"},{"id":"g2","store_id":"b-002","name":"Wu","capacity":50}]}`)
		g := c.must(200, "GET", "/api/v1/guides/g1", adminToken, "")
		if g["wecom_userid"] != "li" || g["active"] != true {
			t.Errorf("g1 = %v", g)
		}
		c.must(409, "DELETE", "/api/v1/stores/b-001", adminToken, "")
		c.must(204, "DELETE", "/api/v1/guides/g1", adminToken, "")
		c.must(204, "DELETE", "/api/v1/stores/b-001", adminToken, "")
		c.must(404, "GET", "/api/v1/stores/b-001", adminToken, "")
	})
}

func TestMembers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServer(t, s)
		seed(c)
		out := c.must(201, "POST", "/api/v1/members", adminToken, `{"phone":"138 0013 8000","name":"Chen","brand":"acme","identities":[{"channel":"wecom","external_id":"wmX"}]}`)
		id := out["id"].(float64)
		if out["phone"] != "+8613800138000" {
			t.Errorf("admin sees phone %v, want the full number", out["phone"])
		}
		again := c.must(200, "POST", "/api/v1/members", adminToken, `{"phone":"+8613800138000","brand":"zeta"}`)
		if again["id"] != id {
			t.Errorf("same phone made member %v, want %v", again["id"], id)
		}
		acme := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"acme","brand":"acme"}`)["token"].(string)
		got := c.must(200, "GET", "/api/v1/members?phone=13800138000", acme, "")
		if got["phone"] != "+86138****8000" || got["phone_masked"] != true {
			t.Errorf("brand token sees phone %v", got["phone"])
		}
		if ms := got["memberships"].([]any); len(ms) != 1 {
			t.Errorf("brand token sees memberships %v, want only acme's", ms)
		}
		c.must(200, "GET", fmt.Sprintf("/api/v1/members/%.0f", id), acme, "")
		c.must(404, "GET", "/api/v1/members/999999", adminToken, "")
		c.must(400, "GET", "/api/v1/members/abc", adminToken, "")
		c.must(200, "GET", "/api/v1/members", adminToken, "") // a list without ?phone=
		pii := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"acme crm","brand":"acme","can_view_phone":true}`)["token"].(string)
		if got := c.must(200, "GET", "/api/v1/members?phone=13800138000", pii, ""); got["phone"] != "+8613800138000" {
			t.Errorf("token allowed to view phones sees %v", got["phone"])
		}
		// A member of zeta only is invisible to acme.
		z := c.must(201, "POST", "/api/v1/members", adminToken, `{"phone":"13900139000","brand":"zeta"}`)
		c.must(404, "GET", fmt.Sprintf("/api/v1/members/%.0f", z["id"].(float64)), acme, "")
		c.must(403, "POST", "/api/v1/members", acme, `{"phone":"13700137000","brand":"zeta"}`)

		// The member's own time zone: on create, and by PATCH.
		tz := c.must(201, "POST", "/api/v1/members", adminToken, `{"phone":"13600136000","brand":"acme","time_zone":"Europe/Paris"}`)
		if tz["time_zone"] != "Europe/Paris" {
			t.Errorf("created with time zone %v", tz["time_zone"])
		}
		c.must(400, "POST", "/api/v1/members", adminToken, `{"phone":"13500135000","brand":"acme","time_zone":"Europe/Pariss"}`)
		path := fmt.Sprintf("/api/v1/members/%.0f", tz["id"].(float64))
		if got := c.must(200, "PATCH", path, acme, `{"time_zone":"America/New_York"}`); got["time_zone"] != "America/New_York" {
			t.Errorf("after PATCH: time zone %v", got["time_zone"])
		}
		c.must(400, "PATCH", path, acme, `{"time_zone":"Mars/Olympus"}`)
		c.must(404, "PATCH", fmt.Sprintf("/api/v1/members/%.0f", z["id"].(float64)), acme, `{"time_zone":"UTC"}`)
		if got := c.must(200, "GET", path, acme, ""); got["time_zone"] != "America/New_York" {
			t.Errorf("read back: time zone %v", got["time_zone"])
		}
	})
}

func TestNotFoundAndMethodShapes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServer(t, s)
		got, out := c.do("GET", "/api/v1/nothing", adminToken, "")
		if got != 404 || errCode(out) != api.CodeNotFound {
			t.Errorf("unknown path: %d %v", got, out)
		}
		got, out = c.do("PATCH", "/api/v1/stores", adminToken, "")
		if got != 405 || errCode(out) == "" {
			t.Errorf("wrong method: %d %v", got, out)
		}
		req, _ := http.NewRequest("POST", c.url+"/api/v1/brands", bytes.NewBufferString(`id=x`))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 415 {
			t.Errorf("form body: status %d, want 415", resp.StatusCode)
		}
	})
}

func TestContactWaysNeedWeCom(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	c := newServer(t, s)
	seed(c)
	got, out := c.do("POST", "/api/v1/stores/sh-1/contact-way", adminToken, "")
	if got != 501 || !strings.Contains(errMessage(out), "wecom") {
		t.Errorf("without WeCom: %d %v, want 501 naming wecom", got, out)
	}
	if got := api.ContactWayState("s", "sh-1"); got != "s:sh-1" {
		t.Errorf("short state = %q", got)
	}
	long := api.ContactWayState("g", strings.Repeat("x", 64))
	if len(long) != 30 || !strings.HasPrefix(long, "g#") || long != api.ContactWayState("g", strings.Repeat("x", 64)) {
		t.Errorf("long state = %q, want a stable 30-character hash state", long)
	}
}

func newServerWithAssigner(t *testing.T, s *store.Store) client {
	gin.SetMode(gin.TestMode)
	a, err := assign.New(context.Background(), s, assign.Options{MaxDistanceKm: 50})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	api.New(api.Options{Store: s, AdminToken: adminToken, MaxBodyBytes: 64 << 10, MaxBulkBodyBytes: 1 << 20, Assigner: a}).Mount(r)
	srv := httptest.NewServer(openapitest.Check(t, r))
	t.Cleanup(srv.Close)
	return client{t: t, url: srv.URL}
}

func TestNearestAndAssign(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServerWithAssigner(t, s)
		seed(c) // written through the API: the index follows
		c.must(201, "POST", "/api/v1/stores", adminToken, `{"id":"sh-2","name":"Pudong","brands":["acme"],"lat":31.22,"lng":121.54,"opening_hours":"10:00-22:00"}`)
		c.must(201, "POST", "/api/v1/guides", adminToken, `{"id":"g1","store_id":"sh-2","name":"Li"}`)
		out := c.must(200, "GET", "/api/v1/stores/nearest?lat=31.21&lng=121.55&brand=acme&limit=3", adminToken, "")
		items := out["items"].([]any)
		if len(items) != 2 {
			t.Fatalf("nearest = %v", items)
		}
		first := items[0].(map[string]any)
		if first["id"] != "sh-2" || first["opening_hours"] != "10:00-22:00" || first["distance_m"].(float64) < 1000 || first["distance_m"].(float64) > 2000 {
			t.Errorf("nearest store = %v", first)
		}
		for _, tc := range []struct{ q, want string }{
			{"lat=31.2&brand=acme", "lng: is required"},
			{"lat=north&lng=121&brand=acme", `lat: want a number, got "north"`},
			{"lat=0&lng=0&brand=acme", "(0, 0)"},
			{"lat=95&lng=121&brand=acme", "lat: 95 is out of range"},
			{"lat=31&lng=121&brand=ghost", `unknown brand "ghost"`},
			{"lat=31&lng=121", "brand: is required"},
			{"lat=31&lng=121&brand=acme&limit=0", "limit"},
		} {
			got, out := c.do("GET", "/api/v1/stores/nearest?"+tc.q, adminToken, "")
			if got != 400 || !strings.Contains(fmt.Sprint(out), tc.want) {
				t.Errorf("%s: %d %v, want 400 with %q", tc.q, got, out, tc.want)
			}
		}

		m := c.must(201, "POST", "/api/v1/members", adminToken, `{"phone":"13800138000","brand":"acme"}`)
		id := fmt.Sprintf("%.0f", m["id"].(float64))
		b := c.must(200, "POST", "/api/v1/members/"+id+"/assign", adminToken, `{"brand":"acme","lat":31.21,"lng":121.55}`)
		if b["guide_id"] != "g1" || b["reason"] != "nearest" || b["distance_m"].(float64) <= 0 {
			t.Errorf("binding = %v", b)
		}
		detail := c.must(200, "GET", "/api/v1/members/"+id, adminToken, "")
		bs := detail["bindings"].([]any)
		if len(bs) != 1 || bs[0].(map[string]any)["reason"] != "nearest" {
			t.Errorf("member detail bindings = %v", bs)
		}
		c.must(400, "POST", "/api/v1/members/"+id+"/assign", adminToken, `{"brand":"acme","lat":0,"lng":0}`)
		c.must(400, "POST", "/api/v1/members/"+id+"/assign", adminToken, `{"brand":"acme","guide_id":"nobody","rebind":true}`)
		got, out := c.do("POST", "/api/v1/members/"+id+"/assign", adminToken, `{"brand":"zeta","lat":31.21,"lng":121.55}`)
		if got != 409 || errCode(out) != "unassigned" {
			// gz-1 carries zeta but has no guides: the member stays unassigned.
			t.Errorf("no guide for zeta: %d %v, want 409 unassigned", got, out)
		}
		c.must(404, "POST", "/api/v1/members/99999/assign", adminToken, `{"brand":"acme"}`)
	})
}

func TestMergeThroughAPI(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServer(t, s)
		seed(c)
		a := c.must(201, "POST", "/api/v1/members", adminToken, `{"name":"Chen","brand":"acme","identities":[{"channel":"wecom","external_id":"wmChen"}]}`)
		b := c.must(201, "POST", "/api/v1/members", adminToken, `{"phone":"13800138000","brand":"acme"}`)
		aid, bid := fmt.Sprintf("%.0f", a["id"].(float64)), fmt.Sprintf("%.0f", b["id"].(float64))
		out := c.must(200, "POST", "/api/v1/members/"+aid+"/merge", adminToken, `{"into":`+bid+`}`)
		if m := out["member"].(map[string]any); m["name"] != "Chen" || len(m["identities"].([]any)) != 1 {
			t.Errorf("merged member = %v", m)
		}
		if got := c.must(200, "GET", "/api/v1/members/"+aid, adminToken, ""); got["id"] != b["id"] {
			t.Errorf("old id resolves to %v, want %v", got["id"], b["id"])
		}
		c.must(409, "POST", "/api/v1/members/"+aid+"/merge", adminToken, `{"into":`+bid+`}`)
		c.must(400, "POST", "/api/v1/members/"+bid+"/merge", adminToken, `{}`)
		c.must(404, "POST", "/api/v1/members/"+bid+"/merge", adminToken, `{"into":999999}`)
	})
}

func TestBulkMembers(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServer(t, s)
		seed(c)
		bad := `{"items":[{"phone":"13800138000","brand":"acme"},{"phone":"123","brand":"acme"},{"brand":"acme"},{"phone":"+86 138 0013 8000","brand":"acme"}]}`
		out := c.must(400, "POST", "/api/v1/members/bulk", adminToken, bad)
		if d := out["error"].(map[string]any)["details"].([]any); len(d) != 3 {
			t.Errorf("details = %v, want rows 1, 2 and 3 (a duplicate phone)", d)
		}
		c.must(404, "GET", "/api/v1/members?phone=13800138000", adminToken, "")
		c.must(400, "POST", "/api/v1/members/bulk", adminToken, `{"items":[{"phone":"13800138000","brand":"ghost"}]}`)
		good := `{"items":[{"phone":"13800138000","name":"Chen","brand":"acme","level":"gold","points":120},{"crm_id":"C9","name":"Wu","brand":"zeta"}]}`
		out = c.must(200, "POST", "/api/v1/members/bulk", adminToken, good)
		if out["created"] != 2.0 {
			t.Errorf("created = %v", out["created"])
		}
		if out = c.must(200, "POST", "/api/v1/members/bulk", adminToken, good); out["created"] != 0.0 {
			t.Errorf("re-run created %v, want 0 (upsert)", out["created"])
		}
		m := c.must(200, "GET", "/api/v1/members?phone=13800138000", adminToken, "")
		if ms := m["memberships"].([]any); len(ms) != 1 || ms[0].(map[string]any)["points"] != 120.0 {
			t.Errorf("memberships = %v", ms)
		}
		acme := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"acme","brand":"acme"}`)["token"].(string)
		c.must(400, "POST", "/api/v1/members/bulk", acme, `{"items":[{"phone":"13900139000","brand":"zeta"}]}`)
		c.must(200, "POST", "/api/v1/members/bulk", acme, `{"items":[{"phone":"13900139000"}]}`)
		c.must(200, "GET", "/api/v1/members?phone=13900139000", acme, "")
	})
}
