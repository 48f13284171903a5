package api_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/api/openapitest"
	"github.com/scrmgw/scrmgw/gateway/sharelink"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// recordLive schedules sessions by recording them (the wiring also
// queues their announcement).
type recordLive struct{ s *store.Store }

func (r recordLive) ScheduleLive(ctx context.Context, l *store.LiveSession) (bool, error) {
	return r.s.CreateLiveSession(ctx, l)
}

func (r recordLive) EditLive(ctx context.Context, brand, id string, e store.LiveEdit) (*store.LiveSession, error) {
	return r.s.UpdateLiveSession(ctx, brand, id, e, time.Now())
}

func (r recordLive) CancelLive(ctx context.Context, brand, id string) (*store.LiveSession, bool, error) {
	return r.s.CancelLiveSession(ctx, brand, id, time.Now())
}

// detailField is the field the first detail of an error names.
func detailField(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	ds, _ := e["details"].([]any)
	if len(ds) == 0 {
		return ""
	}
	d, _ := ds[0].(map[string]any)
	f, _ := d["field"].(string)
	return f
}

// TestRetailAPIBrands: a brand's token schedules live sessions, sets
// assortments and makes share links for its own brand only: another
// brand's store, session or guide is a 400 naming the field or a 404
// saying nothing; a collection store's guide makes links for each brand
// the store carries, and its assortment is listed per brand.
func TestRetailAPIBrands(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		gin.SetMode(gin.TestMode)
		r := gin.New()
		signer := sharelink.New([]byte(strings.Repeat("k", 32)))
		api.New(api.Options{Store: s, AdminToken: adminToken, MaxBodyBytes: 64 << 10, MaxBulkBodyBytes: 1 << 20,
			Live: recordLive{s}, Shares: signer}).Mount(r)
		srv := httptest.NewServer(openapitest.Check(t, r))
		t.Cleanup(srv.Close)
		c := client{t: t, url: srv.URL}
		seed(c)
		c.must(201, "POST", "/api/v1/guides", adminToken, `{"id":"g-a","store_id":"sh-1","name":"A"}`)
		c.must(201, "POST", "/api/v1/guides", adminToken, `{"id":"g-mall","store_id":"gz-1","name":"M"}`)
		c.must(200, "POST", "/api/v1/products/bulk", adminToken, `{"items":[{"brand":"acme","sku":"A1","name":"A1","price":10},
		  {"brand":"zeta","sku":"Z1","name":"Z1","price":20}]}`)
		acme := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"acme","brand":"acme"}`)["token"].(string)
		zeta := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"zeta","brand":"zeta"}`)["token"].(string)

		live := `{"id":"l-1","store_id":"%s","title":"Spring","url":"https://live.example.com/l-1",
		  "starts_at":"2027-01-10T20:00:00+08:00","ends_at":"2027-01-10T21:00:00+08:00"}`
		c.must(201, "POST", "/api/v1/live-sessions", acme, fmt.Sprintf(live, "sh-1"))
		for _, tc := range []struct {
			name, method, path, token, body string
			status                          int
			field                           string
		}{
			{"a session at another brand's store", "POST", "/api/v1/live-sessions", zeta, fmt.Sprintf(live, "sh-1"), 400, "store_id"},
			{"another brand's session", "GET", "/api/v1/live-sessions/l-1", zeta, "", 404, ""},
			{"an admin token without a brand", "POST", "/api/v1/live-sessions", adminToken, fmt.Sprintf(live, "sh-1"), 400, "brand"},
			{"an assortment of a brand the store lacks", "PUT", "/api/v1/stores/sh-1/products", zeta, `{"items":[{"sku":"Z1"}]}`, 400, "brand"},
			{"another brand's product", "PUT", "/api/v1/stores/gz-1/products", zeta, `{"items":[{"sku":"A1"}]}`, 400, "items[0].sku"},
			{"another brand's guide's link", "POST", "/api/v1/guides/g-a/share-links", zeta, `{"url":"https://shop.example.com/x"}`, 404, ""},
			{"a link without a URL", "POST", "/api/v1/guides/g-a/share-links", acme, `{}`, 400, "url"},
			{"a link to a script", "POST", "/api/v1/guides/g-a/share-links", acme, `{"url":"javascript:alert(1)"}`, 400, "url"},
			{"a link for a year", "POST", "/api/v1/guides/g-a/share-links", acme, `{"url":"https://shop.example.com/x","valid_days":365}`, 400, "valid_days"},
			{"an unknown guide", "POST", "/api/v1/guides/g-none/share-links", acme, `{"url":"https://shop.example.com/x"}`, 404, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, out := c.do(tc.method, tc.path, tc.token, tc.body)
				if status != tc.status || detailField(out) != tc.field {
					t.Errorf("%d %v, want %d naming %q", status, out, tc.status, tc.field)
				}
			})
		}
		// Edits and the cancellation, within the brand.
		for _, tc := range []struct {
			name, method, path, token, body string
			status                          int
			field                           string
		}{
			{"another brand's edit", "PATCH", "/api/v1/live-sessions/l-1", zeta, `{"title":"x"}`, 404, ""},
			{"an end before the start", "PATCH", "/api/v1/live-sessions/l-1", acme, `{"ends_at":"2027-01-10T19:00:00+08:00"}`, 400, "ends_at"},
			{"a URL that is none", "PATCH", "/api/v1/live-sessions/l-1", acme, `{"url":"ftp://x"}`, 400, "url"},
			{"another brand's cancel", "POST", "/api/v1/live-sessions/l-1/cancel", zeta, "", 404, ""},
			{"an unknown session", "POST", "/api/v1/live-sessions/nope/cancel", acme, "", 404, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, out := c.do(tc.method, tc.path, tc.token, tc.body)
				if status != tc.status || detailField(out) != tc.field {
					t.Errorf("%d %v, want %d naming %q", status, out, tc.status, tc.field)
				}
			})
		}
		if out := c.must(200, "PATCH", "/api/v1/live-sessions/l-1", acme, `{"title":"Spring, live"}`); out["title"] != "Spring, live" ||
			out["revision"] != 1.0 || out["change"] != "updated" || out["invited_at"] != nil {
			t.Errorf("a new title: %v", out)
		}
		if out := c.must(200, "PATCH", "/api/v1/live-sessions/l-1", acme, `{"starts_at":"2027-01-11T20:00:00+08:00","ends_at":"2027-01-11T21:00:00+08:00"}`); out["revision"] != 2.0 ||
			out["change"] != "rescheduled" || out["starts_at"] != "2027-01-11T12:00:00Z" {
			t.Errorf("a new start: %v", out)
		}
		if out := c.must(200, "PATCH", "/api/v1/live-sessions/l-1", acme, `{"title":"Spring, live"}`); out["revision"] != 2.0 {
			t.Errorf("an edit changing nothing: %v", out)
		}
		if out := c.must(200, "POST", "/api/v1/live-sessions/l-1/cancel", acme, ""); out["cancelled_at"] == nil || out["change"] != "cancelled" || out["revision"] != 3.0 {
			t.Errorf("cancelled: %v", out)
		}
		if out := c.must(200, "POST", "/api/v1/live-sessions/l-1/cancel?brand=acme", adminToken, ""); out["revision"] != 3.0 {
			t.Errorf("cancelled again: %v", out)
		}
		c.must(409, "PATCH", "/api/v1/live-sessions/l-1", acme, `{"title":"back on"}`)
		c.must(200, "PUT", "/api/v1/stores/gz-1/products", zeta, `{"items":[{"sku":"Z1","price":"18.50"}]}`)
		c.must(200, "PUT", "/api/v1/stores/gz-1/products", acme, `{"items":[{"sku":"A1","in_stock":false}]}`)
		for tok, want := range map[string]string{zeta: `"sku":"Z1"`, acme: `"sku":"A1"`} {
			status, out := c.do("GET", "/api/v1/stores/gz-1/products", tok, "")
			items := fmt.Sprint(out["items"])
			if status != 200 || strings.Count(items, "sku:") != 1 || !strings.Contains(items, strings.Trim(strings.Split(want, ":")[1], `"`)) {
				t.Errorf("a brand token's view of gz-1: %d %v", status, out)
			}
		}
		if out := c.must(200, "GET", "/api/v1/stores/gz-1/products", adminToken, ""); strings.Count(fmt.Sprint(out["items"]), "sku:") != 2 {
			t.Errorf("the collection store's assortment: %v", out)
		}
		// The mall's guide: a link for each brand her store carries.
		for brand, tok := range map[string]string{"acme": acme, "zeta": zeta} {
			out := c.must(201, "POST", "/api/v1/guides/g-mall/share-links", tok, `{"url":"https://shop.example.com/c/spring","valid_days":7}`)
			l, err := signer.Verify(out["token"].(string), time.Now())
			if err != nil || l.Brand != brand || l.Guide != "g-mall" || l.Store != "gz-1" || l.Expires().Sub(time.Now()) > 7*24*time.Hour {
				t.Errorf("%s link = %+v, %v", brand, l, err)
			}
		}
		mine := c.must(200, "GET", "/api/v1/live-sessions?limit=1", acme, "")
		if items := mine["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != "l-1" || mine["next"] == nil {
			t.Errorf("acme's sessions, a page of 1: %v", mine)
		}
		if rest := c.must(200, "GET", "/api/v1/live-sessions?cursor="+mine["next"].(string), acme, ""); fmt.Sprint(rest["items"]) != "[]" || rest["next"] != nil {
			t.Errorf("acme's sessions after the last: %v", rest)
		}
		if theirs := c.must(200, "GET", "/api/v1/live-sessions", zeta, ""); fmt.Sprint(theirs["items"]) != "[]" {
			t.Errorf("zeta sees sessions: %v", theirs)
		}
		funnel := c.must(200, "GET", "/api/v1/live-sessions/l-1", acme, "")
		if fmt.Sprint(funnel["stores"]) != "[]" || funnel["session"].(map[string]any)["id"] != "l-1" {
			t.Errorf("a session nobody was announced yet: %v", funnel)
		}
	})
}
