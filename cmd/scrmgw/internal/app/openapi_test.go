package app

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/api/openapitest"
)

// TestOpenAPICoversGatewayRoutes walks the whole gateway's router (the
// admin API and whatever else is mounted under /api/v1 by the wiring)
// and fails for each route gateway/api/openapi.yaml does not describe.
func TestOpenAPICoversGatewayRoutes(t *testing.T) {
	spec, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	described := map[openapitest.Route]bool{}
	for _, r := range spec.Routes() {
		described[r] = true
	}
	cfg := configs.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	s := startServe(t, cfg)
	n := 0
	for _, ri := range s.app.Handler().(*gin.Engine).Routes() {
		if !strings.HasPrefix(ri.Path, openapitest.Prefix+"/") {
			continue
		}
		n++
		if rt := openapitest.GinRoute(ri.Method, ri.Path); !described[rt] {
			t.Errorf("route not in the OpenAPI description: %s %s (handler %s): add paths.%q.%s to gateway/api/openapi.yaml",
				ri.Method, ri.Path, ri.Handler, rt.Path, strings.ToLower(ri.Method))
		}
	}
	if n < 60 {
		t.Errorf("only %d routes under /api/v1: the walk is broken", n)
	}
	t.Logf("%d routes under /api/v1, all described", n)
}
