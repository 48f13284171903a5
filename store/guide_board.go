package store

import (
	"context"
	"time"
)

// Sort keys of GuideBoard.
const (
	GuideBoardOverdue = "overdue" // overdue tasks, then open tasks, most first
	GuideBoardLoad    = "load"    // load percent, highest first
	GuideBoardPoints  = "points"  // points in the month, most first
	GuideBoardName    = "name"    // name A-Z
)

// GuideBoardQuery selects a page of the console's guides board: a brand's
// guides (of StoreID only when it is set) with their open tasks at Now and
// their points in Month (YYYY-MM), sorted over all of them by Sort (ties
// by guide id), Limit rows (default 100, at most 1000) after Offset.
type GuideBoardQuery struct {
	Brand, StoreID string
	Month          string
	Now            time.Time
	Sort           string
	Offset, Limit  int
}

// GuideBoardRow is one guide on the board: Open counts all its open tasks
// (Overdue included); Rank is its place on the brand's leaderboard of the
// month (0 when it has no points entries in it).
type GuideBoardRow struct {
	ID, Name, StoreID string
	Active            bool
	LeftAt            *time.Time
	Capacity, Bound   int
	Open, Overdue     int64
	Points            int64
	Rank              int
}

// GuideBoardTotals sums a brand's (or store's) guides: Open counts all
// their open tasks, Overdue those due before now.
type GuideBoardTotals struct {
	Guides          int64
	Bound, Capacity int64
	Open, Overdue   int64
}

// guideBoardWith is the board's common table expressions: bg the brand's
// (or store's) guides, t their open tasks, p the brand's points.
func (s *Store) guideBoardWith(storeID string) string {
	guides := `SELECT g.id, g.name, g.store_id, g.active, g.left_at, g.capacity, g.bound_count FROM guides AS g
		WHERE g.store_id IN (SELECT sb.store_id FROM store_brands AS sb WHERE sb.brand_id = @brand)`
	if s.dialect == "postgres" {
		// As in Guides: the brand's store ids as one array, their guides
		// from the store_id index.
		guides = `SELECT g.id, g.name, g.store_id, g.active, g.left_at, g.capacity, g.bound_count FROM guides AS g
			WHERE g.store_id = ANY(ARRAY(SELECT sb.store_id FROM store_brands AS sb WHERE sb.brand_id = @brand))`
	}
	if storeID != "" {
		guides += ` AND g.store_id = @store`
	}
	return `WITH bg AS (` + guides + `),
		t AS (SELECT guide_id, SUM(CASE WHEN due_at >= @now THEN 1 ELSE 0 END) AS open_soon,
			SUM(CASE WHEN due_at < @now THEN 1 ELSE 0 END) AS overdue
			FROM guide_tasks WHERE brand_id = @brand AND state = @open GROUP BY guide_id)`
}

// GuideBoard returns one page of the guides board, sorted in the database
// over all of the brand's (or store's) guides, and the totals of them all
// (read with the page's rows in one statement; by GuideBoardTotals when
// the page is past the end).
func (s *Store) GuideBoard(ctx context.Context, q GuideBoardQuery) ([]GuideBoardRow, GuideBoardTotals, error) {
	var totals GuideBoardTotals
	if q.Brand == "" {
		return nil, totals, invalid("brand", "a brand is required")
	}
	if !ValidMonth(q.Month) {
		return nil, totals, invalid("period", "want a month YYYY-MM, got %q", q.Month)
	}
	order := map[string]string{
		GuideBoardOverdue: "overdue DESC, open DESC",
		GuideBoardLoad:    "load DESC",
		GuideBoardPoints:  "points DESC",
		GuideBoardName:    "name",
	}[q.Sort]
	if order == "" {
		return nil, totals, invalid("sort", "want overdue, load, points or name, got %q", q.Sort)
	}
	sql := s.guideBoardWith(q.StoreID) + `,
		p AS (SELECT guide_id, points, RANK() OVER (ORDER BY points DESC) AS place
			FROM (SELECT guide_id, SUM(points) AS points FROM guide_points_ledger WHERE brand_id = @brand AND month = @month GROUP BY guide_id) AS sums),
		b AS (SELECT bg.id, bg.name, bg.store_id, bg.active, bg.left_at, bg.capacity, bg.bound_count AS bound,
			COALESCE(t.open_soon, 0) + COALESCE(t.overdue, 0) AS open, COALESCE(t.overdue, 0) AS overdue,
			COALESCE(p.points, 0) AS points,
			CASE WHEN bg.capacity <= 0 THEN 0 WHEN bg.bound_count >= bg.capacity THEN 100 ELSE bg.bound_count * 100 / bg.capacity END AS load,
			COALESCE(p.place, 0) AS rank
			FROM bg LEFT JOIN t ON t.guide_id = bg.id LEFT JOIN p ON p.guide_id = bg.id)
		SELECT id, name, store_id, active, left_at, capacity, bound, open, overdue, points, rank,
			COUNT(*) OVER () AS total_guides, SUM(bound) OVER () AS total_bound, SUM(capacity) OVER () AS total_capacity,
			SUM(open) OVER () AS total_open, SUM(overdue) OVER () AS total_overdue
		FROM b ORDER BY ` + order + `, id LIMIT @limit OFFSET @offset`
	var rows []struct {
		ID, Name, StoreID                                               string
		Active                                                          bool
		LeftAt                                                          *time.Time
		Capacity, Bound                                                 int
		Open, Overdue, Points                                           int64
		Rank                                                            int
		TotalGuides, TotalBound, TotalCapacity, TotalOpen, TotalOverdue int64
	}
	err := s.db.WithContext(ctx).Raw(sql, map[string]any{
		"brand": q.Brand, "store": q.StoreID, "month": q.Month, "now": utc(q.Now), "open": GuideTaskOpen,
		"limit": Page{Limit: q.Limit}.limit(), "offset": max(0, q.Offset),
	}).Scan(&rows).Error
	if err != nil {
		return nil, totals, translate(err)
	}
	if len(rows) == 0 {
		totals, err = s.GuideBoardTotals(ctx, q.Brand, q.StoreID, q.Now)
		return nil, totals, err
	}
	out := make([]GuideBoardRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, GuideBoardRow{ID: r.ID, Name: r.Name, StoreID: r.StoreID, Active: r.Active, LeftAt: r.LeftAt,
			Capacity: r.Capacity, Bound: r.Bound, Open: r.Open, Overdue: r.Overdue, Points: r.Points, Rank: r.Rank})
	}
	r := rows[0]
	totals = GuideBoardTotals{Guides: r.TotalGuides, Bound: r.TotalBound, Capacity: r.TotalCapacity, Open: r.TotalOpen, Overdue: r.TotalOverdue}
	return out, totals, nil
}

// GuideBoardTotals sums the guides board over all of the brand's (or
// store's) guides in one query.
func (s *Store) GuideBoardTotals(ctx context.Context, brand, storeID string, now time.Time) (GuideBoardTotals, error) {
	var out GuideBoardTotals
	if brand == "" {
		return out, invalid("brand", "a brand is required")
	}
	sql := s.guideBoardWith(storeID) + `
		SELECT COUNT(*) AS guides, COALESCE(SUM(bg.bound_count), 0) AS bound, COALESCE(SUM(bg.capacity), 0) AS capacity,
			COALESCE(SUM(COALESCE(t.open_soon, 0) + COALESCE(t.overdue, 0)), 0) AS open, COALESCE(SUM(t.overdue), 0) AS overdue
		FROM bg LEFT JOIN t ON t.guide_id = bg.id`
	err := s.db.WithContext(ctx).Raw(sql, map[string]any{
		"brand": brand, "store": storeID, "now": utc(now), "open": GuideTaskOpen,
	}).Scan(&out).Error
	return out, translate(err)
}

// GuideNames returns the names of the guides of ids (those that exist),
// by id.
func (s *Store) GuideNames(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct{ ID, Name string }
	if err := s.db.WithContext(ctx).Model(&Guide{}).Select("id, name").Where("id IN ?", ids).Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
	for _, r := range rows {
		out[r.ID] = r.Name
	}
	return out, nil
}
