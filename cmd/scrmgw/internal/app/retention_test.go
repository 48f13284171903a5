package app

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestRetentionPrunesAuditLog: the hourly retention job deletes audit
// entries older than privacy.audit_retention (default 365 days), keeps
// younger ones, and says in the trail itself what it deleted, which the
// admin reads at GET /api/v1/audit.
func TestRetentionPrunesAuditLog(t *testing.T) {
	if d := configs.Default().Privacy.AuditRetention; d != 365*24*time.Hour {
		t.Errorf("default privacy.audit_retention %v, want 8760h", d)
	}
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			s := startSecure(t, dialect, func(c *configs.Config) { c.Privacy.AuditRetention = 90 * 24 * time.Hour })
			ctx := context.Background()
			now := time.Now()
			for _, e := range []struct {
				actor string
				age   time.Duration
			}{{"two years ago", 730 * 24 * time.Hour}, {"100 days ago", 100 * 24 * time.Hour}, {"80 days ago", 80 * 24 * time.Hour}, {"today", 0}} {
				if err := s.app.Store.AppendAudit(ctx, []store.AuditEntry{{At: now.Add(-e.age), Actor: e.actor, Action: store.AuditWrite}}); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 { // the second run finds nothing more to do
				if err := s.app.retention(ctx, asynq.NewTask(TypeRetention, nil)); err != nil {
					t.Fatal(err)
				}
			}
			code, body := request(t, "GET", s.base+"/api/v1/audit?limit=1000", s.cfg.AdminToken, "")
			var got struct {
				Items []store.AuditEntry `json:"items"`
			}
			if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
				t.Fatalf("GET /api/v1/audit: %d %s", code, body)
			}
			var actors, prunes []string
			for _, e := range got.Items {
				if e.Action == store.AuditPrune {
					prunes = append(prunes, e.Actor+" "+e.ResourceIDs)
				} else if e.Action == store.AuditWrite && e.Route == "" {
					actors = append(actors, e.Actor)
				}
			}
			if strings.Join(actors, ", ") != "80 days ago, today" {
				t.Errorf("entries left: %q, want the two younger than 90 days", actors)
			}
			before := now.Add(-90 * 24 * time.Hour).UTC()
			if len(prunes) != 1 || !strings.HasPrefix(prunes[0], "retention deleted=2&before="+before.Format("2006-01-02T15")) {
				t.Errorf("prune entries %q, want one saying 2 entries before %s were deleted", prunes, before.Format(time.RFC3339))
			}
		})
	}
}
