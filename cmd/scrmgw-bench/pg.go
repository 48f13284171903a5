package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scrmgw/scrmgw/store/geo"
)

// pgVariant is one way of asking PostGIS for the nearest eligible store.
// Both use geography, so that <-> orders by distance on the sphere (PostGIS
// geography KNN is computed on the sphere, with an index recheck), the same
// great-circle ordering as geo.Index; no geometry re-rank is needed.
//
// The round-trip variant is no lookup at all: the same statement protocol
// with a query that reads nothing, the floor of any database lookup.
type pgVariant struct {
	name  string
	table string // empty for the round trip
}

var pgVariants = []pgVariant{
	{"PostgreSQL round trip, no lookup", ""},
	{"PostGIS KNN, GiST + brand filter", "scrmgw_bench.stores_gist"},
	{"PostGIS KNN, partial GiST per brand", "scrmgw_bench.stores_partial"},
}

// nearestSQL is the query for a variant and brand. The brand is a literal
// (from geo.SyntheticBrands, never user input) so that the planner can match
// the partial index predicate; each text is prepared once and cached by pgx.
func nearestSQL(table, brand string) string {
	if table == "" {
		return `SELECT '', $1::float8 + $2::float8`
	}
	const point = `ST_SetSRID(ST_MakePoint($1::float8, $2::float8), 4326)::geography`
	return fmt.Sprintf(`SELECT id, ST_Distance(geog, %[1]s, false) FROM %[2]s
WHERE active AND brands @> ARRAY['%[3]s']::text[]
ORDER BY geog <-> %[1]s LIMIT 1`, point, table, brand)
}

type postGIS struct {
	conn *pgx.Conn
	logf func(string, ...any)
	sql  map[string]string // by table + brand
}

func openPostGIS(ctx context.Context, url string, logf func(string, ...any)) (*postGIS, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	var version string
	if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS postgis`); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("creating the postgis extension: %w", err)
	}
	if err := conn.QueryRow(ctx, `SELECT version() || ', PostGIS ' || postgis_lib_version()`).Scan(&version); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("reading versions: %w", err)
	}
	logf("connected: %s", version)
	p := &postGIS{conn: conn, logf: logf, sql: map[string]string{}}
	for _, v := range pgVariants {
		for _, b := range geo.SyntheticBrands {
			p.sql[v.table+"/"+b] = nearestSQL(v.table, b)
		}
	}
	return p, nil
}

// load creates the scrmgw_bench schema with the stores twice over: one
// table with a single GiST index, one with a partial GiST index per brand.
func (p *postGIS) load(ctx context.Context, sites []geo.Site) error {
	t0 := time.Now()
	for _, q := range []string{
		`DROP SCHEMA IF EXISTS scrmgw_bench CASCADE`,
		`CREATE SCHEMA scrmgw_bench`,
		`CREATE UNLOGGED TABLE scrmgw_bench.raw (id text, lat float8, lng float8, brands text[], active bool)`,
	} {
		if _, err := p.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("creating the benchmark schema: %w", err)
		}
	}
	n, err := p.conn.CopyFrom(ctx, pgx.Identifier{"scrmgw_bench", "raw"},
		[]string{"id", "lat", "lng", "brands", "active"},
		pgx.CopyFromSlice(len(sites), func(i int) ([]any, error) {
			s := &sites[i]
			return []any{s.ID, s.Lat, s.Lng, s.Brands, s.Active}, nil
		}))
	if err != nil {
		return fmt.Errorf("copying stores: %w", err)
	}
	p.logf("copied %d stores in %v", n, time.Since(t0).Round(time.Millisecond))

	stmts := []string{}
	for _, v := range pgVariants {
		if v.table == "" {
			continue
		}
		stmts = append(stmts, fmt.Sprintf(`CREATE TABLE %s AS
SELECT id, brands, active, ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography AS geog
FROM scrmgw_bench.raw ORDER BY id`, v.table),
			fmt.Sprintf(`ALTER TABLE %s ADD PRIMARY KEY (id)`, v.table))
	}
	stmts = append(stmts, `CREATE INDEX stores_gist_geog ON scrmgw_bench.stores_gist USING gist (geog)`)
	for _, b := range geo.SyntheticBrands {
		stmts = append(stmts, fmt.Sprintf(`CREATE INDEX ON scrmgw_bench.stores_partial USING gist (geog)
WHERE active AND brands @> ARRAY['%s']::text[]`, b))
	}
	stmts = append(stmts, `DROP TABLE scrmgw_bench.raw`,
		`ANALYZE scrmgw_bench.stores_gist`, `ANALYZE scrmgw_bench.stores_partial`)
	for _, q := range stmts {
		t := time.Now()
		if _, err := p.conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("loading stores (%s): %w", firstLine(q), err)
		}
		p.logf("%v  %s", time.Since(t).Round(time.Millisecond), firstLine(q))
	}
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// nearest returns the nearest eligible store and its distance on the sphere.
func (p *postGIS) nearest(ctx context.Context, v pgVariant, q geo.Query) (string, float64, error) {
	var id string
	var m float64
	err := p.conn.QueryRow(ctx, p.sql[v.table+"/"+q.Brand], q.Lng, q.Lat).Scan(&id, &m)
	if err != nil && err != pgx.ErrNoRows {
		return "", 0, fmt.Errorf("querying %s: %w", v.table, err)
	}
	return id, m, nil
}

func (p *postGIS) explain(ctx context.Context, v pgVariant, q geo.Query) (string, error) {
	rows, err := p.conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+p.sql[v.table+"/"+q.Brand], q.Lng, q.Lat)
	if err != nil {
		return "", fmt.Errorf("explaining %s: %w", v.table, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("explaining %s: %w", v.table, err)
	}
	return "  " + strings.Join(lines, "\n  "), nil
}

func (p *postGIS) close(ctx context.Context, keep bool) {
	if !keep {
		if _, err := p.conn.Exec(ctx, `DROP SCHEMA IF EXISTS scrmgw_bench CASCADE`); err != nil {
			p.logf("dropping the benchmark schema: %v", err)
		}
	}
	p.conn.Close(ctx)
}
