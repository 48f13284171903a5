package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestTokenCommand creates, lists and revokes tokens on the command line,
// on both databases: create prints only the token on stdout (once), the
// stored token has the scopes asked for, list shows them and never a
// secret, revoke makes it unusable, and both changes are in the audit
// trail as the command line's.
func TestTokenCommand(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			url := storetest.URL(t, dialect)
			t.Setenv("SCRMGW_DATA_DIR", t.TempDir())
			t.Setenv("SCRMGW_DATABASE_URL", url)
			t.Setenv("SCRMGW_ADMIN_TOKEN", "token-command-admin-token")
			t.Setenv("SCRMGW_SECURITY_PHONE_KEY", hex.EncodeToString(storetest.PhoneKey))
			run1 := func(args ...string) (int, string, string) {
				var out, errb bytes.Buffer
				code := run(args, &out, &errb)
				return code, out.String(), errb.String()
			}
			code, out, errs := run1("token", "create", "--name", "crm sync", "--read-only", "--resources", "members,commerce", "--expires", "720h", "--phones")
			plain := strings.TrimSpace(out)
			if code != 0 || !strings.HasPrefix(plain, store.TokenPrefix) || strings.Count(out, "\n") != 1 || !strings.Contains(errs, `token 1 "crm sync" created; it is shown once`) {
				t.Fatalf("create: exit %d\nstdout %q\nstderr %s", code, out, errs)
			}
			s, err := store.Open(context.Background(), store.Options{URL: url, PhoneKey: storetest.PhoneKey})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tok, err := s.APITokenByPlain(context.Background(), plain)
			if err != nil || tok.Name != "crm sync" || !tok.ReadOnly || !tok.CanViewPhone || tok.Resources != "members,commerce" || tok.BrandID != nil ||
				tok.ExpiresAt == nil || tok.ExpiresAt.Sub(time.Now()) < 719*time.Hour {
				t.Fatalf("stored token = %+v, %v", tok, err)
			}

			code, out, errs = run1("token", "list")
			if code != 0 || !strings.Contains(out, "ID  NAME") || !strings.Contains(out, "crm sync  (admin)  read-only members,commerce phones") ||
				!strings.Contains(out, "active") || strings.Contains(out, plain) {
				t.Errorf("list: exit %d\n%s%s", code, out, errs)
			}
			if code, out, errs = run1("token", "revoke", "1"); code != 0 || out != "token 1 revoked\n" {
				t.Errorf("revoke: exit %d %q %s", code, out, errs)
			}
			if _, err := s.APITokenByPlain(context.Background(), plain); err != store.ErrNotFound {
				t.Errorf("revoked token still found: %v", err)
			}
			if _, out, _ = run1("token", "list"); !strings.Contains(out, "revoked") {
				t.Errorf("list after revoke:\n%s", out)
			}
			es, err := s.AuditLog(context.Background(), store.AuditQuery{Token: "cli"})
			if err != nil || len(es) != 2 || es[0].Action != store.AuditTokenCreate || es[1].Action != store.AuditTokenRevoke || es[1].ResourceIDs != "token=1" {
				t.Errorf("audit trail = %+v, %v; want the creation and the revocation", es, err)
			}

			bad := []struct {
				args []string
				code int
				want string
			}{
				{[]string{"token"}, 2, "usage: scrmgw token create"},
				{[]string{"token", "create"}, 2, "create needs --name"},
				{[]string{"token", "create", "--name", "x", "--resources", "stores"}, 2, `--resources: unknown resource "stores"`},
				{[]string{"token", "create", "--name", "x", "--brand", "ghost"}, 2, `brand: unknown brand "ghost"`},
				{[]string{"token", "create", "--name", "x", "--expires", "soon"}, 2, "invalid value"},
				{[]string{"token", "revoke", "99"}, 1, "no token 99"},
				{[]string{"token", "revoke", "x"}, 2, "want a token id"},
				{[]string{"token", "rotate"}, 2, `unknown subcommand "rotate"`},
			}
			for _, tc := range bad {
				if code, _, errs := run1(tc.args...); code != tc.code || !strings.Contains(errs, tc.want) {
					t.Errorf("%v: exit %d, stderr %s; want %d and %q", tc.args, code, errs, tc.code, tc.want)
				}
			}
		})
	}
}
