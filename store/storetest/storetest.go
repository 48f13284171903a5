// Package storetest gives tests real databases and a real Redis: SQLite in
// a temporary directory, and PostgreSQL and Redis servers named by
// SCRMGW_TEST_DATABASE_URL and SCRMGW_TEST_REDIS_URL (scripts/test.sh starts
// both on loopback). Each test gets its own PostgreSQL schema and its own
// Redis database. When CI=true, a missing or unreachable server fails the
// test instead of skipping it.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/scrmgw/scrmgw/store"
)

// Environment variables naming the test servers.
const (
	EnvDatabaseURL = "SCRMGW_TEST_DATABASE_URL"
	EnvRedisURL    = "SCRMGW_TEST_REDIS_URL"
)

// PhoneKey is the fixed phone key tests use.
var PhoneKey = []byte("0123456789abcdef0123456789abcdef")

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

func missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required in CI (CI=true) and is not available", what)
	}
	t.Skipf("%s not available; run scripts/test.sh to start it", what)
}

// Dialects lists the databases a store test runs on.
var Dialects = []string{"sqlite", "postgres"}

// Open returns a migrated store on a fresh database of the dialect.
func Open(t testing.TB, dialect string) *store.Store {
	t.Helper()
	url := URL(t, dialect)
	s, err := store.Open(context.Background(), store.Options{URL: url, PhoneKey: PhoneKey, MaxOpenConns: 10})
	if err != nil {
		t.Fatalf("opening %s: %v", dialect, err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrating %s: %v", dialect, err)
	}
	return s
}

// URL returns the URL of a fresh, empty database of the dialect.
func URL(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case "sqlite":
		return "sqlite:" + filepath.Join(t.TempDir(), "scrmgw.db")
	case "postgres":
		return postgresSchema(t)
	}
	t.Fatalf("unknown dialect %q", dialect)
	return ""
}

// ForEach runs f as a subtest on every dialect, each on a fresh store.
func ForEach(t *testing.T, f func(t *testing.T, s *store.Store)) {
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) { f(t, Open(t, d)) })
	}
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// postgresSchema creates a schema for this test and returns a URL whose
// search_path selects it; the schema is dropped when the test ends.
func postgresSchema(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDatabaseURL)
	if base == "" {
		missing(t, "PostgreSQL ("+EnvDatabaseURL+")")
	}
	admin, err := gorm.Open(postgres.Open(base), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		missing(t, fmt.Sprintf("PostgreSQL (%v)", err))
	}
	sqlDB, _ := admin.DB()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		missing(t, fmt.Sprintf("PostgreSQL (%v)", err))
	}
	schema := randomName("t_")
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		sqlDB.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parsing %s: %v", EnvDatabaseURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// RedisURL returns the URL of a Redis database of its own for this test,
// flushed before use. Databases are handed out round-robin from 1 to 63
// (scripts/test.sh starts Redis with 64 databases).
func RedisURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvRedisURL)
	if base == "" {
		missing(t, "Redis ("+EnvRedisURL+")")
	}
	opt, err := redis.ParseURL(base)
	if err != nil {
		t.Fatalf("parsing %s: %v", EnvRedisURL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewClient(opt)
	defer c.Close()
	n, err := c.Incr(ctx, "scrmgw:test:next_db").Result()
	if err != nil {
		missing(t, fmt.Sprintf("Redis (%v)", err))
	}
	db := int(n%63) + 1
	opt.DB = db
	dc := redis.NewClient(opt)
	defer dc.Close()
	if err := dc.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("flushing redis db %d: %v", db, err)
	}
	u, _ := url.Parse(base)
	u.Path = "/" + strconv.Itoa(db)
	return strings.TrimSuffix(u.String(), "?")
}
