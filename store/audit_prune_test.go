package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestPruneAudit: entries older than the cutoff are deleted in batches,
// the oldest first; a cutoff under 30 days is refused, and the database
// itself still refuses to delete (or change) an entry younger than 30
// days, whoever asks.
func TestPruneAudit(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			url := storetest.URL(t, dialect)
			s := openURL(t, url)
			defer s.Close()
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			ages := map[string]time.Duration{"400d": 400 * 24 * time.Hour, "366d": 366 * 24 * time.Hour, "40d": 40 * 24 * time.Hour,
				"30d+30m": 30*24*time.Hour + 30*time.Minute, "29d": 29 * 24 * time.Hour, "now": 0}
			for _, actor := range []string{"400d", "366d", "40d", "30d+30m", "29d", "now"} {
				if err := s.AppendAudit(ctx, []store.AuditEntry{{At: now.Add(-ages[actor]), Actor: actor, Action: store.AuditWrite}}); err != nil {
					t.Fatal(err)
				}
			}
			left := func() string {
				es, err := s.AuditLog(ctx, store.AuditQuery{})
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, e := range es {
					out = append(out, e.Actor)
				}
				return strings.Join(out, " ")
			}
			year := now.Add(-365 * 24 * time.Hour)
			for i, want := range []struct {
				n    int64
				left string
			}{{1, "366d 40d 30d+30m 29d now"}, {1, "40d 30d+30m 29d now"}, {0, "40d 30d+30m 29d now"}} {
				n, err := s.PruneAudit(ctx, year, 1)
				if err != nil || n != want.n || left() != want.left {
					t.Errorf("prune %d before a year: %d, %v, left %q; want %d, left %q", i, n, err, left(), want.n, want.left)
				}
			}
			if n, err := s.PruneAudit(ctx, now.Add(-35*24*time.Hour), 100); err != nil || n != 1 || left() != "30d+30m 29d now" {
				t.Errorf("prune before 35 days: %d, %v, left %q", n, err, left())
			}
			// At the very floor, an hour's margin for the clocks.
			if n, err := s.PruneAudit(ctx, time.Now().Add(-30*24*time.Hour-time.Second), 100); err != nil || n != 0 || left() != "30d+30m 29d now" {
				t.Errorf("prune before 30 days: %d, %v, left %q; want the entry within the margin kept", n, err, left())
			}
			if n, err := s.PruneAudit(ctx, now.Add(-10*24*time.Hour), 100); !errors.Is(err, store.ErrInvalid) || n != 0 {
				t.Errorf("prune before 10 days: %d, %v; want ErrInvalid", n, err)
			}
			raw := rawDB(t, dialect, url)
			if db, _ := raw.DB(); db != nil {
				defer db.Close()
			}
			stmts := []string{`DELETE FROM audit_log`, `DELETE FROM audit_log WHERE actor = '29d'`, `UPDATE audit_log SET at = '2000-01-01' WHERE actor = '29d'`}
			if dialect == "postgres" {
				stmts = append(stmts, `TRUNCATE audit_log`)
			}
			for _, q := range stmts {
				if err := raw.Exec(q).Error; err == nil || !strings.Contains(err.Error(), "audit_log is append-only") {
					t.Errorf("%s: %v, want the append-only refusal", q, err)
				}
			}
			if left() != "30d+30m 29d now" {
				t.Errorf("after the refused statements: %q", left())
			}
		})
	}
}
