package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/audit"
	"github.com/scrmgw/scrmgw/store"
)

// discard takes batches and drops them: the benchmark measures what the
// request path pays, not the database.
type discard struct{}

func (discard) AppendAudit(context.Context, []store.AuditEntry) error     { return nil }
func (discard) TouchAPITokens(context.Context, map[int64]time.Time) error { return nil }

// BenchmarkAuditTrail measures what recording costs a write: the same
// POST through gin with and without the AuditTrail middleware, the
// Recorder running with its real buffer and batching.
//
//	go test -run '^$' -bench AuditTrail -benchtime 200000x ./gateway/api/
func BenchmarkAuditTrail(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	rec := audit.New(discard{}, audit.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rec.Run(ctx)
	const token = "bench-admin-token-0123456789"
	srv := api.New(api.Options{AdminToken: token, Audit: rec})
	handler := func(c *gin.Context) { c.JSON(http.StatusCreated, gin.H{"id": c.Param("id")}) }
	for _, tc := range []struct {
		name    string
		audited bool
	}{{"without", false}, {"with", true}} {
		b.Run(tc.name, func(b *testing.B) {
			r := gin.New()
			if tc.audited {
				r.POST("/api/v1/members/:id/assign", srv.AuditTrail(), api.RequireResource(api.ResourceMembers), srv.Authenticate(), handler)
			} else {
				r.POST("/api/v1/members/:id/assign", api.RequireResource(api.ResourceMembers), srv.Authenticate(), handler)
			}
			req := httptest.NewRequest("POST", "/api/v1/members/42/assign", strings.NewReader(`{}`))
			req.Header.Set("User-Agent", "bench/1.0")
			req.Header.Set("Authorization", "Bearer "+token)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				r.ServeHTTP(w, req)
			}
		})
	}
}
