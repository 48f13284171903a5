package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/api/openapitest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestOpenAPICoversEveryRoute walks the routes Mount registers under
// /api/v1 and fails for each that gateway/api/openapi.yaml does not
// describe (and for each operation there that no route serves).
func TestOpenAPICoversEveryRoute(t *testing.T) {
	spec, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	described := map[openapitest.Route]bool{}
	for _, r := range spec.Routes() {
		described[r] = true
	}
	gin.SetMode(gin.TestMode)
	r := gin.New()
	api.New(api.Options{}).Mount(r)
	served := map[openapitest.Route]bool{}
	var missing []string
	for _, ri := range r.Routes() {
		if !strings.HasPrefix(ri.Path, openapitest.Prefix+"/") {
			continue
		}
		rt := openapitest.GinRoute(ri.Method, ri.Path)
		served[rt] = true
		if !described[rt] {
			missing = append(missing, fmt.Sprintf("%s %s (handler %s): add paths.%q.%s to gateway/api/openapi.yaml",
				ri.Method, ri.Path, ri.Handler, rt.Path, strings.ToLower(ri.Method)))
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("route not in the OpenAPI description: %s", m)
	}
	for _, rt := range spec.Routes() {
		if !served[rt] {
			t.Errorf("gateway/api/openapi.yaml describes %s, which Mount does not register", rt)
		}
	}
	if len(served) < 60 {
		t.Errorf("only %d routes found under /api/v1; the walk is broken", len(served))
	}
}

// TestOpenAPIServed: GET /api/v1/openapi.json answers the description
// as JSON to any valid token, whatever its route groups, and 401
// without one.
func TestOpenAPIServed(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServer(t, s)
		seed(c)
		scoped := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"till","brand":"acme","resources":["members"],"read_only":true}`)["token"].(string)
		want, err := api.OpenAPI()
		if err != nil {
			t.Fatal(err)
		}
		var wantDoc map[string]any
		if err := json.Unmarshal(want, &wantDoc); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{adminToken, scoped} {
			doc := c.must(http.StatusOK, "GET", "/api/v1/openapi.json", tok, "")
			if doc["openapi"] != "3.1.0" || len(doc["paths"].(map[string]any)) != len(wantDoc["paths"].(map[string]any)) {
				t.Errorf("served description: openapi %v, %d paths", doc["openapi"], len(doc["paths"].(map[string]any)))
			}
		}
		if got, out := c.do("GET", "/api/v1/openapi.json", "", ""); got != http.StatusUnauthorized {
			t.Errorf("without a token: %d %v", got, out)
		}
	})
}
