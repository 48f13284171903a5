package app

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// pgTool finds a PostgreSQL client program: the server's own version
// first (/usr/lib/postgresql/N/bin, as scripts/test.sh), then PATH.
func pgTool(t *testing.T, name string) string {
	t.Helper()
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name); len(m) > 0 {
		return m[len(m)-1]
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (the postgresql package has it; scripts/test.sh installs it): %v", name, err)
	}
	return p
}

// freshDatabase creates an empty PostgreSQL database on the test server
// and returns its URL; it is dropped when the test ends.
func freshDatabase(t *testing.T, prefix string) string {
	t.Helper()
	base := os.Getenv(storetest.EnvDatabaseURL)
	if base == "" {
		t.Fatalf("PostgreSQL is required (%s; scripts/test.sh starts one)", storetest.EnvDatabaseURL)
	}
	admin, err := gorm.Open(postgres.Open(base), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		if db, err := admin.DB(); err == nil {
			db.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// TestBackupRestoreDrill is the restore drill of docs/operations.md, as
// an operator runs it: a gateway on PostgreSQL gets data through the API
// (brand, store, guide, a member with a phone number, an API token);
// pg_dump -Fc takes a backup while it runs; pg_restore puts it into a new,
// empty database; a gateway started on that database, with an empty
// Redis and the same secrets, migrates (nothing to do), is ready, and
// answers the old token with the same data, the member found by phone.
// Started with another phone key, it cannot find the member by phone:
// the key is part of the backup.
func TestBackupRestoreDrill(t *testing.T) {
	pgDump, pgRestore := pgTool(t, "pg_dump"), pgTool(t, "pg_restore")
	phoneKey := strings.Repeat("5a", 32)
	cfgFor := func(dbURL, key string) configs.Config {
		cfg := configs.Default()
		cfg.DataDir = t.TempDir()
		cfg.Database.URL = dbURL
		cfg.Redis.URL = storetest.RedisURL(t) // a new, empty Redis database each time
		cfg.AdminToken = "drill-admin-token-0123456789"
		cfg.Security.PhoneKey = key
		return cfg
	}

	src := freshDatabase(t, "drill_src")
	before := startServe(t, cfgFor(src, phoneKey))
	admin := before.app.Config.AdminToken
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"POST", "/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"POST", "/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"Li","capacity":50}`},
		{"POST", "/api/v1/members", `{"brand":"acme","phone":"13800138000","name":"陈女士"}`},
	} {
		if code, body := request(t, c.method, before.base+c.path, admin, c.body); code != 201 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, code, body)
		}
	}
	code, body := request(t, "POST", before.base+"/api/v1/tokens", admin, `{"name":"crm","brand":"acme","can_view_phone":true}`)
	if code != 201 {
		t.Fatalf("creating a token: %d %s", code, body)
	}
	token := jsonField(t, body, "token")

	// The backup, taken while the gateway runs (pg_dump reads one
	// consistent snapshot).
	dump := filepath.Join(t.TempDir(), "scrmgw.dump")
	if out, err := exec.Command(pgDump, "--format=custom", "--no-owner", "--file", dump, "--dbname", src).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	before.shutdown(t)

	dst := freshDatabase(t, "drill_dst")
	if out, err := exec.Command(pgRestore, "--no-owner", "--exit-on-error", "--dbname", dst, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	after := startServe(t, cfgFor(dst, phoneKey)) // migrates first: nothing to do
	if code, body := request(t, "GET", after.base+"/readyz", "", ""); code != 200 {
		t.Fatalf("restored gateway not ready: %d %s", code, body)
	}
	for path, want := range map[string]string{
		"/api/v1/stores/sh-1":                    `"name":"静安店"`,
		"/api/v1/guides/g-li":                    `"capacity":50`,
		"/api/v1/members?phone=%2B8613800138000": `"phone":"+8613800138000"`,
	} {
		if code, body := request(t, "GET", after.base+path, token, ""); code != 200 || !strings.Contains(body, want) {
			t.Errorf("restored GET %s with the old token: %d %s, want %s", path, code, body, want)
		}
	}
	if code, body := request(t, "POST", after.base+"/api/v1/stores", token, `{"id":"sh-2","name":"Pudong","brands":["acme"],"lat":31.22,"lng":121.54}`); code != 201 {
		t.Errorf("writing after the restore: %d %s", code, body)
	}
	after.shutdown(t)

	// Without the phone key of the backup, the numbers are unreadable.
	other := startServe(t, cfgFor(dst, strings.Repeat("77", 32)))
	if code, body := request(t, "GET", other.base+"/api/v1/members?phone=%2B8613800138000", token, ""); code != 404 {
		t.Errorf("restored with another phone key, the member is found by phone: %d %s", code, body)
	}
}

// jsonField is a string field of a JSON object.
func jsonField(t *testing.T, body, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not JSON: %s", body)
	}
	s, _ := m[key].(string)
	if s == "" {
		t.Fatalf("no %q in %s", key, body)
	}
	return s
}
