package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestMigrateTaskReminders upgrades a database made before 0017: its
// guide_tasks lack the reminder marks and their index. The migration adds
// them, and running it again on a database that has them changes nothing.
func TestMigrateTaskReminders(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			url := storetest.URL(t, dialect)
			open := func() *store.Store { return openURL(t, url) }
			s := open()
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			s.Close()
			// Back to the schema before 0017, twice: once without the
			// columns, once with them (a database made by 0004 since).
			for i, drop := range []bool{true, false} {
				raw := rawDB(t, dialect, url)
				stmts := []string{`DROP INDEX idx_guide_tasks_remind`, `DELETE FROM schema_migrations WHERE id = '0017_task_reminders'`}
				if drop {
					stmts = append(stmts, `ALTER TABLE guide_tasks DROP COLUMN before_reminded_at`, `ALTER TABLE guide_tasks DROP COLUMN due_reminded_at`)
				}
				for _, q := range stmts {
					if err := raw.Exec(q).Error; err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
				if db, _ := raw.DB(); db != nil {
					db.Close()
				}
				s = open()
				applied, err := s.Migrate(ctx)
				if err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
				if !slices.Equal(applied, []string{"0017_task_reminders"}) {
					t.Fatalf("run %d applied %v", i, applied)
				}
				s.Close()
			}
			s = open()
			defer s.Close()
			if applied, err := s.Migrate(ctx); err != nil || len(applied) != 0 {
				t.Fatalf("again: %v %v", applied, err)
			}
			reminderSeed(t, s)
			tasks, err := s.TasksToRemind(ctx, store.ReminderQuery{Now: t0, AtDue: true})
			if err != nil || len(tasks) != 2 {
				t.Fatalf("tasks to remind after the upgrade: %v %v", tasks, err)
			}
			if ok, err := s.MarkTaskReminded(ctx, tasks[0].ID, store.ReminderDue, t0.Add(time.Minute)); err != nil || !ok {
				t.Fatalf("marking: %v %v", ok, err)
			}
		})
	}
}

// openURL opens the store at url without migrating it, for tests that
// take a database back to an earlier schema and migrate it again.
func openURL(t *testing.T, url string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Options{URL: url, PhoneKey: storetest.PhoneKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rawDB(t *testing.T, dialect, url string) *gorm.DB {
	t.Helper()
	var d gorm.Dialector
	if dialect == "sqlite" {
		d = sqlite.Open("file:" + strings.TrimPrefix(url, "sqlite:"))
	} else {
		d = postgres.Open(url)
	}
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return db
}
