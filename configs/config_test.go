package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load("scrmgw.yaml", nil)
	if err != nil {
		t.Fatalf("loading the example: %v", err)
	}
	// The example documents the defaults: it must not drift from them.
	if diff := cmp.Diff(Default(), cfg); diff != "" {
		t.Errorf("example differs from Default() (-want +got):\n%s", diff)
	}
}

func TestEnvOverrides(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "token")
	if err := os.WriteFile(secret, []byte("file-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"SCRMGW_HTTP_ADDR=127.0.0.1:9999",
		"SCRMGW_DATABASE_URL=sqlite:/tmp/x.db",
		"SCRMGW_REDIS_URL=redis://127.0.0.1:6379/2",
		"SCRMGW_ADMIN_TOKEN_FILE=" + secret,
		"SCRMGW_HTTP_SHUTDOWN_TIMEOUT=5s",
		"SCRMGW_REDIS_CLUSTER_ADDRS=a:1, b:2",
		"SCRMGW_TASKS_REMIND_BEFORE=30m",
		"SCRMGW_TASKS_REMIND_AT_DUE=false",
		"SCRMGW_TEST_DATABASE_URL=ignored",
		"PATH=/usr/bin",
	}
	cfg, err := Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.HTTP.Addr = "127.0.0.1:9999"
	want.Database.URL = "sqlite:/tmp/x.db"
	want.Redis.URL = "redis://127.0.0.1:6379/2"
	want.Redis.ClusterAddrs = []string{"a:1", "b:2"}
	want.AdminToken = "file-token-0123456789"
	want.HTTP.ShutdownTimeout = 5 * time.Second
	want.Tasks.RemindBefore, want.Tasks.RemindAtDue = 30*time.Minute, false
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   []string
		wants []string
	}{
		{"unknown key with suggestion", "http:\n  adr: \":80\"\n", nil, []string{"scrmgw.yaml:2:3: http.adr: unknown key (did you mean \"addr\"?)"}},
		{"wrong type", "http:\n  max_body_bytes: lots\n", nil, []string{"scrmgw.yaml:2:19: http.max_body_bytes: want an integer, got \"lots\""}},
		{"bad duration", "http:\n  read_timeout: 5 minutes\n", nil, []string{"http.read_timeout: want a duration"}},
		{"mapping expected", "http: 8080\n", nil, []string{"http: want a mapping of keys"}},
		{"invalid value", "http:\n  addr: nowhere\n", nil, []string{"http.addr: want host:port"}},
		{"public url without scheme", "", []string{"SCRMGW_HTTP_PUBLIC_URL=scrm.example.com"}, []string{"http.public_url: want an absolute http(s) URL"}},
		{"bad redis scheme", "redis:\n  url: http://x\n", nil, []string{"redis.url: want redis://"}},
		{"postgres needs secrets", "database:\n  url: postgres://u@h/db\n", nil, []string{"admin_token: required with PostgreSQL", "security.phone_key: required"}},
		{"bad phone key", "security:\n  phone_key: short\n", nil, []string{"security.phone_key: want 32 bytes"}},
		{"unknown env", "", []string{"SCRMGW_HTTP_ADR=:1"}, []string{"SCRMGW_HTTP_ADR: unknown environment variable (did you mean SCRMGW_HTTP_ADDR?)"}},
		{"bad env value", "", []string{"SCRMGW_QUEUE_CONCURRENCY=many"}, []string{"SCRMGW_QUEUE_CONCURRENCY (queue.concurrency): want an integer"}},
		{"send lease too short", "send:\n  lease: 30s\n", nil, []string{"send.lease: must be at least 40s (a send may take 30s"}},
		{"send lease from env", "", []string{"SCRMGW_SEND_LEASE=10s"}, []string{"send.lease: must be at least 40s"}},
		{"several at once", "log:\n  level: loud\n  format: xml\n", nil, []string{"log.level", "log.format"}},
		{"malformed yaml", "http: [\n", nil, []string{"scrmgw.yaml: yaml:"}},
		{"too many inbox committers", "database:\n  max_open_conns: 5\n  inbox_committers: 4\n", nil,
			[]string{"database.inbox_committers: must be from 1 to max_open_conns - 2 (3), or 0 for the default, got 4"}},
		{"negative linger", "database:\n  inbox_linger: -1ms\n", nil, []string{"database.inbox_linger: must be from 0s to 100ms"}},
		{"negative reminder lead", "tasks:\n  remind_before: -2h\n", nil, []string{"tasks.remind_before: must not be negative, got -2h0m0s"}},
		{"short next admin token", "", []string{"SCRMGW_ADMIN_TOKEN_NEXT=short"}, []string{"admin_token_next: must be at least 16 characters"}},
		{"next admin token same as current", "admin_token: same-token-0123456789\nadmin_token_next: same-token-0123456789\n", nil,
			[]string{"admin_token_next: is the same as admin_token"}},
		{"audit retention under the floor", "privacy:\n  audit_retention: 240h\n", nil,
			[]string{"privacy.audit_retention: want 0s (keep every entry) or at least 720h0m0s (the database refuses to delete younger entries), got 240h0m0s"}},
		{"reminder sweep too often", "", []string{"SCRMGW_TASKS_REMIND_EVERY=10ms"}, []string{"tasks.remind_every: must be at least 1s, got 10ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "scrmgw.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, tc.env)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSecretsDoNotLeakIntoErrors(t *testing.T) {
	_, err := Load("", []string{"SCRMGW_DATABASE_URL=mysql://root:hunter2@db/x"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("want an error without the password, got %v", err)
	}
}

func TestEnvVarsListsEveryKey(t *testing.T) {
	got := strings.Join(EnvVars(), "\n")
	for _, w := range []string{"http.addr ↔ SCRMGW_HTTP_ADDR", "database.url ↔ SCRMGW_DATABASE_URL", "redis.url ↔ SCRMGW_REDIS_URL", "admin_token ↔ SCRMGW_ADMIN_TOKEN"} {
		if !strings.Contains(got, w) {
			t.Errorf("EnvVars() lacks %q", w)
		}
	}
}

func TestDecodeKey(t *testing.T) {
	hexKey := strings.Repeat("ab", 32)
	if k, err := DecodeKey(hexKey); err != nil || len(k) != 32 {
		t.Fatalf("hex key: %v", err)
	}
	if _, err := DecodeKey("c2hvcnQ="); err == nil {
		t.Fatal("short base64 key accepted")
	}
}

func TestInboxCommitterCount(t *testing.T) {
	for _, tc := range []struct{ conns, set, want int }{
		{20, 0, 6}, {9, 0, 3}, {2, 0, 1}, {1, 0, 1}, {100, 0, 6}, {20, 2, 2}, {50, 12, 12},
	} {
		d := DatabaseConfig{MaxOpenConns: tc.conns, InboxCommitters: tc.set}
		if got := d.InboxCommitterCount(); got != tc.want {
			t.Errorf("max_open_conns %d, inbox_committers %d: %d committers, want %d", tc.conns, tc.set, got, tc.want)
		}
	}
}
