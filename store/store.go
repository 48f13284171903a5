// Package store is scrmgw's storage: gorm models for brands, stores,
// guides, members and their identities, bindings, the event log, the inbox
// and outbox, and API tokens; migrations; and *Store methods named for what
// they return. It runs on SQLite (the zero-setup default, pure Go) and on
// PostgreSQL (production and CI); the same tests pass on both.
//
// store is the ground floor: it imports no other package of the project and
// takes plain values. gorm types do not leave it; gorm's not-found becomes
// ErrNotFound and unique-key violations ErrConflict.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Errors callers test with errors.Is.
var (
	// ErrNotFound means the row does not exist (or is not visible).
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique key or a reference prevents the write.
	ErrConflict = errors.New("conflict")
)

// Options configure Open.
type Options struct {
	// URL is postgres://... or sqlite:PATH.
	URL string
	// MaxOpenConns caps PostgreSQL connections (SQLite uses one writer).
	MaxOpenConns int
	// PhoneKey is the 32-byte key for phone numbers at rest.
	PhoneKey []byte
	// Logger receives slow-query and error logs; nil discards them.
	Logger *slog.Logger
}

// Store is the database handle every component shares.
type Store struct {
	db      *gorm.DB
	dialect string
	phones  *PhoneCipher
	secrets *secretBox
}

// Open connects to the database. It does not migrate: call Migrate.
func Open(ctx context.Context, opts Options) (*Store, error) {
	phones, err := NewPhoneCipher(opts.PhoneKey)
	if err != nil {
		return nil, err
	}
	gcfg := &gorm.Config{
		TranslateError: true,
		Logger:         newGormLogger(opts.Logger),
		NowFunc:        func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	var (
		dialector gorm.Dialector
		dialect   string
	)
	switch {
	case strings.HasPrefix(opts.URL, "postgres://"), strings.HasPrefix(opts.URL, "postgresql://"):
		dialector, dialect = postgres.Open(opts.URL), "postgres"
	case strings.HasPrefix(opts.URL, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(opts.URL, "sqlite:"), "//")
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("creating database directory: %w", err)
			}
		}
		dsn := "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		dialector, dialect = sqlite.Open(dsn), "sqlite"
	default:
		return nil, fmt.Errorf("opening database: unsupported URL scheme (want postgres:// or sqlite:)")
	}
	db, err := gorm.Open(dialector, gcfg)
	if err != nil {
		return nil, fmt.Errorf("opening %s database: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("opening %s database: %w", dialect, err)
	}
	if dialect == "sqlite" {
		// One connection: SQLite has one writer, and this keeps
		// transactions from failing with SQLITE_BUSY.
		sqlDB.SetMaxOpenConns(1)
	} else {
		n := opts.MaxOpenConns
		if n <= 0 {
			n = 20
		}
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	secrets, err := newSecretBox(opts.PhoneKey)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, dialect: dialect, phones: phones, secrets: secrets}
	if err := s.Ping(ctx); err != nil {
		sqlDB.Close()
		return nil, err
	}
	return s, nil
}

// with returns a copy of s working in tx.
func (s *Store) with(tx *gorm.DB) *Store {
	c := *s
	c.db = tx
	return &c
}

// single is the database for one statement that needs no transaction
// around it (one statement is atomic by itself): gorm otherwise wraps
// each write in BEGIN and COMMIT, two more round trips. Not for writes
// that save associations.
func (s *Store) single(ctx context.Context) *gorm.DB {
	return s.db.WithContext(ctx).Session(&gorm.Session{SkipDefaultTransaction: true})
}

// Dialect is "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.dialect }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("pinging %s database: %w", s.dialect, err)
	}
	return nil
}

// Close closes the database connections.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// Phones returns the cipher used for phone numbers.
func (s *Store) Phones() *PhoneCipher { return s.phones }

// likeEscaper escapes a LIKE pattern's wildcards (with ESCAPE '\').
var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

// translate maps gorm errors onto the package's sentinels.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNotFound
	case errors.Is(err, gorm.ErrDuplicatedKey), errors.Is(err, gorm.ErrForeignKeyViolated):
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	// SQLite reports constraint failures with text only.
	msg := err.Error()
	if strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "FOREIGN KEY constraint failed") ||
		strings.Contains(msg, "SQLSTATE 23505") || strings.Contains(msg, "SQLSTATE 23503") {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}

// byID returns the row of T with the primary key id, ErrNotFound when
// there is none.
func byID[T any, K int64 | string](ctx context.Context, db *gorm.DB, id K) (*T, error) {
	var v T
	if err := db.WithContext(ctx).Where("id = ?", id).Take(&v).Error; err != nil {
		return nil, translate(err)
	}
	return &v, nil
}

// gormLogger forwards gorm's errors and slow queries to slog.
type gormLogger struct {
	log *slog.Logger
}

func newGormLogger(l *slog.Logger) logger.Interface {
	if l == nil {
		return logger.Discard
	}
	return gormLogger{log: l}
}

func (g gormLogger) LogMode(logger.LogLevel) logger.Interface { return g }
func (g gormLogger) Info(ctx context.Context, msg string, args ...any) {
	g.log.DebugContext(ctx, fmt.Sprintf(msg, args...))
}
func (g gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	g.log.WarnContext(ctx, fmt.Sprintf(msg, args...))
}
func (g gormLogger) Error(ctx context.Context, msg string, args ...any) {
	g.log.ErrorContext(ctx, fmt.Sprintf(msg, args...))
}

// Trace logs slow statements without their values (they may hold personal
// data); expected errors (not found, conflicts) are the caller's to report.
func (g gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	if elapsed < 500*time.Millisecond {
		return
	}
	sql, rows := fc()
	if i := strings.IndexAny(sql, "'$"); i > 0 {
		sql = sql[:i] + "…"
	}
	g.log.WarnContext(ctx, "slow query", slog.Duration("elapsed", elapsed), slog.Int64("rows", rows), slog.String("sql", sql))
}
