package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestAuditLogQueries: entries appended in batches read back in order,
// page by page, and every filter narrows them.
func TestAuditLogQueries(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
		tok := int64(7)
		var batch []store.AuditEntry
		for i := range 5 {
			batch = append(batch, store.AuditEntry{At: t0.Add(time.Duration(i) * time.Minute), TokenID: &tok, Actor: "acme ops", Brand: "acme",
				Action: store.AuditWrite, Method: "POST", Route: "/api/v1/members/:id/merge", Resource: "members",
				ResourceIDs: fmt.Sprintf("id=%d&into=crm:x%d", 40+i, i), Status: 200, ClientIP: "10.0.0.1", UserAgent: strings.Repeat("ua", 300)})
		}
		batch = append(batch, store.AuditEntry{At: t0.Add(10 * time.Minute), Actor: "admin", Action: store.AuditPhoneView, Method: "GET",
			Route: "/api/v1/members/:id", Resource: "members", ResourceIDs: "id=41", Status: 200})
		if err := s.AppendAudit(ctx, batch[:3]); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendAudit(ctx, batch[3:]); err != nil {
			t.Fatal(err)
		}
		all, err := s.AuditLog(ctx, store.AuditQuery{})
		if err != nil || len(all) != 6 {
			t.Fatalf("AuditLog() = %d entries, %v; want 6", len(all), err)
		}
		if got := len(all[0].UserAgent); got != store.AuditUserAgentMax {
			t.Errorf("user agent kept at %d characters, want %d", got, store.AuditUserAgentMax)
		}
		if !all[0].At.Equal(t0) || *all[0].TokenID != 7 || all[0].Route != "/api/v1/members/:id/merge" || all[0].ResourceIDs != "id=40&into=crm:x0" {
			t.Errorf("first entry = %+v", all[0])
		}
		ids := func(es []store.AuditEntry) string {
			var out []string
			for _, e := range es {
				out = append(out, e.ResourceIDs)
			}
			return strings.Join(out, " ")
		}
		tests := []struct {
			name string
			q    store.AuditQuery
			want string
		}{
			{"since and until", store.AuditQuery{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, "id=41&into=crm:x1 id=42&into=crm:x2"},
			{"token by id", store.AuditQuery{Token: "7", Limit: 1}, "id=40&into=crm:x0"},
			{"token by name", store.AuditQuery{Token: "admin"}, "id=41"},
			{"action", store.AuditQuery{Action: store.AuditPhoneView}, "id=41"},
			{"resource", store.AuditQuery{Resource: "workflows"}, ""},
			{"resource id", store.AuditQuery{ResourceID: "41"}, "id=41&into=crm:x1 id=41"},
			{"resource id with a colon", store.AuditQuery{ResourceID: "crm:x3"}, "id=43&into=crm:x3"},
			{"after", store.AuditQuery{After: all[3].ID}, "id=44&into=crm:x4 id=41"},
			{"page", store.AuditQuery{After: all[0].ID, Limit: 2}, "id=41&into=crm:x1 id=42&into=crm:x2"},
		}
		for _, tc := range tests {
			got, err := s.AuditLog(ctx, tc.q)
			if err != nil || ids(got) != tc.want {
				t.Errorf("%s: AuditLog(%+v) = %q, %v; want %q", tc.name, tc.q, ids(got), err, tc.want)
			}
		}
	})
}

// TestAuditLogAppendOnly: the database itself refuses to change or
// remove audit entries, whoever asks, on PostgreSQL (UPDATE, DELETE,
// TRUNCATE) and on SQLite (UPDATE, DELETE).
func TestAuditLogAppendOnly(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			url := storetest.URL(t, dialect)
			s, err := store.Open(ctx, store.Options{URL: url, PhoneKey: storetest.PhoneKey})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.AppendAudit(ctx, []store.AuditEntry{{Actor: "admin", Action: store.AuditWrite, Status: 201}}); err != nil {
				t.Fatal(err)
			}
			raw := rawDB(t, dialect, url)
			if db, _ := raw.DB(); db != nil {
				defer db.Close()
			}
			stmts := []string{
				`UPDATE audit_log SET actor = 'someone else'`,
				`DELETE FROM audit_log`,
				`DELETE FROM audit_log WHERE id = 1`,
			}
			if dialect == "postgres" {
				// A statement trigger: even one changing nothing.
				stmts = append(stmts, `UPDATE audit_log SET status = 200 WHERE id = -1`, `TRUNCATE audit_log`)
			}
			for _, q := range stmts {
				err := raw.Exec(q).Error
				if err == nil || !strings.Contains(err.Error(), "audit_log is append-only") {
					t.Errorf("%s: error %v, want the append-only refusal", q, err)
				}
			}
			got, err := s.AuditLog(ctx, store.AuditQuery{})
			if err != nil || len(got) != 1 || got[0].Actor != "admin" || got[0].Status != 201 {
				t.Errorf("after the attempts: %+v, %v; want the entry unchanged", got, err)
			}
			// Inserting still works.
			if err := raw.Exec(`INSERT INTO audit_log (at, actor, action) VALUES (?, 'x', 'y')`, time.Now()).Error; err != nil {
				t.Errorf("insert refused: %v", err)
			}
		})
	}
}

// TestAPITokenScopes: scopes and expiry are stored and read back, an
// expired token is still found (the API says it expired), and last use
// only moves forward.
func TestAPITokenScopes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		exp := time.Now().Add(time.Hour)
		plain, tok, err := s.CreateAPIToken(ctx, store.NewAPIToken{Name: "reader", BrandID: ptr("acme"), ReadOnly: true,
			Resources: []string{"members", "workflows", "members"}, ExpiresAt: &exp})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.APITokenByPlain(ctx, plain)
		if err != nil || !got.ReadOnly || strings.Join(got.ResourceList(), ",") != "members,workflows" || got.ExpiresAt == nil ||
			!got.ExpiresAt.Equal(exp.UTC().Truncate(time.Microsecond)) || got.LastUsedAt != nil || got.Expired(time.Now()) || !got.Expired(exp) {
			t.Fatalf("token read back as %+v, %v", got, err)
		}
		t1 := time.Now().UTC().Truncate(time.Second)
		for _, at := range []time.Time{t1, t1.Add(-time.Hour)} {
			if err := s.TouchAPITokens(ctx, map[int64]time.Time{tok.ID: at}); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ = s.APIToken(ctx, tok.ID); got.LastUsedAt == nil || !got.LastUsedAt.Equal(t1) {
			t.Errorf("last used = %v, want %v (never moved back)", got.LastUsedAt, t1)
		}
		past := time.Now().Add(-time.Second)
		bad := []store.NewAPIToken{
			{Name: "", Resources: nil},
			{Name: "x", Resources: []string{"bad name"}},
			{Name: "x", ExpiresAt: &past},
		}
		for _, in := range bad {
			if _, _, err := s.CreateAPIToken(ctx, in); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("CreateAPIToken(%+v) = %v, want ErrInvalid", in, err)
			}
		}
	})
}

// TestMigrateAuditTokenScopes upgrades a database made before 0018: its
// api_tokens lack the scope columns (a token issued then keeps working,
// unscoped) and it has no audit_log. Running the migrations again on a
// database that has them all changes nothing.
func TestMigrateAuditTokenScopes(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			url := storetest.URL(t, dialect)
			open := func() *store.Store { return openURL(t, url) }
			s := open()
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			plain, _, err := s.CreateAPIToken(ctx, store.NewAPIToken{Name: "old"})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			raw := rawDB(t, dialect, url)
			for _, q := range []string{
				`DELETE FROM schema_migrations WHERE id IN ('0018_audit_token_scopes', '0019_audit_log')`,
				`DROP TABLE audit_log`,
				`ALTER TABLE api_tokens DROP COLUMN read_only`,
				`ALTER TABLE api_tokens DROP COLUMN resources`,
				`ALTER TABLE api_tokens DROP COLUMN expires_at`,
				`ALTER TABLE api_tokens DROP COLUMN last_used_at`,
			} {
				if err := raw.Exec(q).Error; err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if db, _ := raw.DB(); db != nil {
				db.Close()
			}
			for i, want := range []string{"0018_audit_token_scopes 0019_audit_log", ""} {
				s = open()
				applied, err := s.Migrate(ctx)
				if err != nil || strings.Join(applied, " ") != want {
					t.Fatalf("run %d: applied %v, %v; want %q", i, applied, err, want)
				}
				tok, err := s.APITokenByPlain(ctx, plain)
				if err != nil || tok.ReadOnly || tok.ResourceList() != nil || tok.ExpiresAt != nil {
					t.Errorf("run %d: the old token = %+v, %v; want it unscoped", i, tok, err)
				}
				if err := s.AppendAudit(ctx, []store.AuditEntry{{Actor: "admin", Action: store.AuditWrite}}); err != nil {
					t.Errorf("run %d: %v", i, err)
				}
				s.Close()
			}
			raw = rawDB(t, dialect, url)
			defer func() {
				if db, _ := raw.DB(); db != nil {
					db.Close()
				}
			}()
			if err := raw.Exec(`DELETE FROM audit_log`).Error; err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("DELETE after the upgrade: %v, want refused", err)
			}
		})
	}
}
