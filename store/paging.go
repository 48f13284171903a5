package store

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// This file holds the keyset-paged lists of the large tables (members of
// a brand, runs, guide tasks) and the opaque cursors that carry a page's
// position: each list answers its rows and the cursor of the next page
// (empty on the last), and reads the rows after the cursor's key through
// an index, however deep the page (no OFFSET). The console and the API
// share them.

// Cursor kinds: a cursor of one list is refused by another.
const (
	cursorID      = "id"
	cursorMembers = "members"
	cursorRuns    = "runs"
	cursorTasks   = "tasks"
)

// maxCursorLen bounds what DecodeCursor reads.
const maxCursorLen = 512

// encodeCursor makes an opaque cursor of a list's kind and key values: the
// key's text with a checksum, base64url encoded. It is not a secret (the
// list applies its own filters, brand included, to every page); the
// checksum only tells a damaged or hand-made cursor from one a list made.
func encodeCursor(kind string, key ...string) string {
	payload := kind + "\x00" + strings.Join(key, "\x00")
	b := binary.BigEndian.AppendUint32([]byte(payload), crc32.ChecksumIEEE([]byte(payload)))
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor made by encodeCursor for kind with n key
// values; anything else is ErrInvalid naming the cursor.
func decodeCursor(cursor, kind string, n int) ([]string, error) {
	bad := func() ([]string, error) {
		return nil, invalid("cursor", "not a cursor of this list: pass the \"next\" of the previous page unchanged")
	}
	if len(cursor) > maxCursorLen {
		return bad()
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) < 5 {
		return bad()
	}
	payload, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(payload) != sum {
		return bad()
	}
	parts := strings.Split(string(payload), "\x00")
	if len(parts) != n+1 || parts[0] != kind {
		return bad()
	}
	return parts[1:], nil
}

// IDCursor is the cursor of a list ordered by a text id (brands, stores,
// guides, ...) whose next page starts after id: the API's ?cursor= of
// those lists is this, decoded by AfterCursor into Page.After.
func IDCursor(id string) string { return encodeCursor(cursorID, id) }

// AfterCursor decodes a cursor made by IDCursor into the id to page after;
// ErrInvalid when it is not one.
func AfterCursor(cursor string) (string, error) {
	k, err := decodeCursor(cursor, cursorID, 1)
	if err != nil {
		return "", err
	}
	return k[0], nil
}

func cursorInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, invalid("cursor", "not a cursor of this list: pass the \"next\" of the previous page unchanged")
	}
	return n, nil
}

// MemberListQuery selects a page of members.
type MemberListQuery struct {
	// Brand lists the brand's members (its memberships) with what it
	// knows of them; "" lists every member (the admin).
	Brand string
	// Cursor is the Next of the previous page; "" starts at the first.
	Cursor string
	// Limit is 100 by default, at most 1000.
	Limit int
}

// MemberRow is one member in a list: what a brand may see of them. The
// phone is shown by its last four digits, and only to a brand that was
// given it (TailFor).
type MemberRow struct {
	ID        int64  `json:"id"`
	Name      string `json:"name,omitempty"`
	PhoneTail string `json:"phone_tail,omitempty"`
	// Brand, Level, Points and JoinedAt are the brand's membership (empty
	// in the admin's list of every member).
	Brand     string    `json:"brand,omitempty"`
	Level     string    `json:"level,omitempty"`
	Points    int64     `json:"points"`
	JoinedAt  time.Time `json:"joined_at"`
	CreatedAt time.Time `json:"created_at"`
	// GuideID and StoreID are the member's binding in the brand (only
	// SearchMembers fills them).
	GuideID string `json:"guide_id,omitempty"`
	StoreID string `json:"store_id,omitempty"`
}

// ListMembers lists members in id order, a page at a time: a brand's
// members through the memberships' (brand_id, member_id) index, or every
// member through the primary key. Merged and erased members are left out.
func (s *Store) ListMembers(ctx context.Context, q MemberListQuery) (rows []MemberRow, next string, err error) {
	var after int64
	if q.Cursor != "" {
		k, err := decodeCursor(q.Cursor, cursorMembers, 1)
		if err != nil {
			return nil, "", err
		}
		if after, err = cursorInt(k[0]); err != nil {
			return nil, "", err
		}
	}
	limit := Page{Limit: q.Limit}.limit()
	db := s.db.WithContext(ctx)
	var scan []struct {
		ID         int64
		Name       string
		ShipName   string
		PhoneTail  string
		PhoneKnown bool
		Level      string
		Points     int64
		JoinedAt   time.Time
		CreatedAt  time.Time
	}
	if q.Brand != "" {
		err = db.Table("memberships AS ms").Joins("JOIN members AS m ON m.id = ms.member_id").
			Select("m.id, m.name, ms.name AS ship_name, m.phone_tail, ms.phone_known, ms.level, ms.points, ms.created_at AS joined_at, m.created_at").
			Where("ms.brand_id = ? AND ms.member_id > ? AND m.merged_into IS NULL AND m.erased_at IS NULL", q.Brand, after).
			Order("ms.member_id").Limit(limit).Scan(&scan).Error
	} else {
		err = db.Table("members AS m").
			Select("m.id, m.name, m.phone_tail, m.created_at").
			Where("m.id > ? AND m.merged_into IS NULL AND m.erased_at IS NULL", after).
			Order("m.id").Limit(limit).Scan(&scan).Error
	}
	if err != nil {
		return nil, "", translate(err)
	}
	rows = make([]MemberRow, len(scan))
	for i, r := range scan {
		row := MemberRow{ID: r.ID, Name: r.Name, PhoneTail: r.PhoneTail, CreatedAt: r.CreatedAt}
		if q.Brand != "" {
			row.Brand, row.Level, row.Points, row.JoinedAt = q.Brand, r.Level, r.Points, r.JoinedAt
			if r.ShipName != "" {
				row.Name = r.ShipName
			}
			if !r.PhoneKnown {
				row.PhoneTail = ""
			}
		}
		rows[i] = row
	}
	if len(rows) == limit {
		next = encodeCursor(cursorMembers, strconv.FormatInt(rows[len(rows)-1].ID, 10))
	}
	return rows, next, nil
}

// RunListQuery selects a page of runs; empty fields select all.
type RunListQuery struct {
	Brand    string
	Workflow string
	State    string
	MemberID int64
	// Cursor is the Next of the previous page; "" starts at the newest.
	Cursor string
	// Limit is 100 by default, at most 1000.
	Limit int
}

// ListRuns lists runs newest first (by id, descending), a page at a time:
// a workflow's runs through the (brand_id, workflow, id) index, a member's
// through (member_id, ...).
func (s *Store) ListRuns(ctx context.Context, q RunListQuery) (runs []WorkflowRun, next string, err error) {
	limit := Page{Limit: q.Limit}.limit()
	db := s.db.WithContext(ctx).Order("id DESC").Limit(limit)
	if q.Cursor != "" {
		k, err := decodeCursor(q.Cursor, cursorRuns, 1)
		if err != nil {
			return nil, "", err
		}
		before, err := cursorInt(k[0])
		if err != nil {
			return nil, "", err
		}
		db = db.Where("id < ?", before)
	}
	if q.Brand != "" {
		db = db.Where("brand_id = ?", q.Brand)
	}
	if q.Workflow != "" {
		db = db.Where("workflow = ?", q.Workflow)
	}
	if q.State != "" {
		db = db.Where("state = ?", q.State)
	}
	if q.MemberID != 0 {
		db = db.Where("member_id = ?", q.MemberID)
	}
	if err := db.Find(&runs).Error; err != nil {
		return nil, "", translate(err)
	}
	if len(runs) == limit {
		next = encodeCursor(cursorRuns, strconv.FormatInt(runs[len(runs)-1].ID, 10))
	}
	return runs, next, nil
}

// GuideTaskListQuery selects a page of guide tasks; empty fields select
// all.
type GuideTaskListQuery struct {
	// Brand keeps the brand's tasks.
	Brand string
	// GuideID keeps one guide's tasks; StoreID the tasks of a store's
	// guides.
	GuideID string
	StoreID string
	// State is open, done or cancelled.
	State string
	// Cursor is the Next of the previous page; "" starts at the earliest
	// due.
	Cursor string
	// Limit is 100 by default, at most 1000.
	Limit int
}

// ListGuideTasks lists guide tasks earliest due first (overdue ones
// lead), then by id, a page at a time: keyset on (due_at, id), through
// the (guide_id, due_at, id) index for a guide's tasks.
func (s *Store) ListGuideTasks(ctx context.Context, q GuideTaskListQuery) (tasks []GuideTask, next string, err error) {
	limit := Page{Limit: q.Limit}.limit()
	db := s.db.WithContext(ctx).Order("due_at").Order("id").Limit(limit)
	if q.Cursor != "" {
		k, err := decodeCursor(q.Cursor, cursorTasks, 2)
		if err != nil {
			return nil, "", err
		}
		due, derr := time.Parse(time.RFC3339Nano, k[0])
		id, ierr := cursorInt(k[1])
		if derr != nil || ierr != nil {
			return nil, "", invalid("cursor", "not a cursor of this list: pass the \"next\" of the previous page unchanged")
		}
		db = db.Where("(due_at > ? OR (due_at = ? AND id > ?))", due.UTC(), due.UTC(), id)
	}
	if q.Brand != "" {
		db = db.Where("brand_id = ?", q.Brand)
	}
	if q.GuideID != "" {
		db = db.Where("guide_id = ?", q.GuideID)
	}
	if q.StoreID != "" {
		db = db.Where("guide_id IN (?)", s.db.Model(&Guide{}).Select("id").Where("store_id = ?", q.StoreID))
	}
	if q.State != "" {
		db = db.Where("state = ?", q.State)
	}
	if err := db.Find(&tasks).Error; err != nil {
		return nil, "", translate(err)
	}
	if len(tasks) == limit {
		last := tasks[len(tasks)-1]
		next = encodeCursor(cursorTasks, last.DueAt.UTC().Format(time.RFC3339Nano), strconv.FormatInt(last.ID, 10))
	}
	return tasks, next, nil
}

// migrateScaleIndexes adds the indexes the large lists and segments read
// through at 10M members (migration 0029_scale_indexes):
//   - memberships (brand_id, member_id, level, created_at): a brand's
//     members in id order, for the schedule triggers' segments and
//     ListMembers (the primary key leads with member_id, so without it
//     PostgreSQL reads all the brand's rows and sorts them); level and
//     created_at let a segment on them filter in the index, without
//     reading the rows;
//   - workflow_runs (brand_id, workflow, id): a workflow's runs newest
//     first (ListRuns);
//   - guide_tasks (guide_id, due_at, id): a guide's tasks earliest due
//     first (ListGuideTasks);
//   - store_brands (brand_id, store_id): a brand's stores in id order
//     (RetailStores) and its guides (Guides).
func migrateScaleIndexes(tx *gorm.DB) error {
	for _, stmt := range []string{
		`CREATE INDEX IF NOT EXISTS idx_memberships_brand_member ON memberships (brand_id, member_id, level, created_at)`,
		`CREATE INDEX IF NOT EXISTS idx_runs_brand_workflow_id ON workflow_runs (brand_id, workflow, id)`,
		`CREATE INDEX IF NOT EXISTS idx_guide_tasks_guide_due ON guide_tasks (guide_id, due_at, id)`,
		`CREATE INDEX IF NOT EXISTS idx_store_brands_brand_store ON store_brands (brand_id, store_id)`,
	} {
		if err := tx.Exec(stmt).Error; err != nil {
			return err
		}
	}
	return nil
}
