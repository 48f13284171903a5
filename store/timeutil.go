package store

import (
	"time"
)

// utc normalises a time for storage and comparison: UTC, microseconds
// (what PostgreSQL keeps; SQLite compares the text).
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := utc(*t)
	return &u
}
