// Package seed fills a migrated scrmgw PostgreSQL database with realistic
// data at scale, for the data-scale measurements (docs/perf/data-scale.md):
// members with phones (hashed and encrypted with the store's phone key, so
// the API finds them by phone), channel identities and memberships, brands,
// stores with coordinates, guides with their WeCom ids, current bindings,
// purchases (events and member stats), guide tasks, and workflow runs
// waiting in a step with their step rows.
//
// It writes through SQL, not the store's row-by-row paths: members by COPY
// (their phone columns are computed in Go), everything else by INSERT …
// SELECT over generate_series. The same code seeds the few thousand rows of
// a test and the 10 million members of the full measurement; only Size
// differs. Row i of a kind is always the same, so a measurement can name a
// seeded member by its number (Phone(i)).
package seed

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scrmgw/scrmgw/store"
)

// Size says how much to seed.
type Size struct {
	// Members is the number of members; each is a member of one brand
	// (member i of brand i mod Brands), and one in five of a second.
	Members int
	// Brands, Stores and GuidesPerStore shape the retail network: store
	// i carries brand i mod Brands (one in ten a second brand).
	Brands         int
	Stores         int
	GuidesPerStore int
	// Runs is the number of runs waiting (active, in a wait step) of the
	// workflow "recall" of each member's brand, for members 1..Runs;
	// EndedRuns more of them ended (done or converted) from an earlier
	// firing, for the funnel.
	Runs      int
	EndedRuns int
	// Events is the number of purchase.completed events, with the
	// members' stats (last purchase) they imply.
	Events int
	// Tasks is the number of guide tasks (open, some overdue).
	Tasks int
	// BulkMembers members (1..BulkMembers) are also members of the brand
	// BulkBrand, which has no stores: the audience of a schedule trigger
	// entering them all at once.
	BulkMembers int
}

// BulkBrand is the brand of the BulkMembers.
const BulkBrand = "bulk"

// Small is the size the tests seed.
func Small() Size {
	return Size{Members: 3000, Brands: 5, Stores: 200, GuidesPerStore: 3, Runs: 1500, EndedRuns: 300, Events: 2000, Tasks: 600, BulkMembers: 500}
}

// Console is the size of the console's target (issue 17): 1M members,
// 200,000 stores, 1M runs.
func Console() Size {
	return Size{Members: 1_000_000, Brands: 50, Stores: 200_000, GuidesPerStore: 3, Runs: 1_000_000, EndedRuns: 200_000,
		Events: 500_000, Tasks: 200_000}
}

// Full is the size of the data-scale target (issue 23): 10M members,
// 200,000 stores, 50 brands, 5M waiting runs.
func Full() Size {
	return Size{Members: 10_000_000, Brands: 50, Stores: 200_000, GuidesPerStore: 3, Runs: 5_000_000, EndedRuns: 500_000,
		Events: 2_000_000, Tasks: 600_000, BulkMembers: 1_000_000}
}

// Validate says what is wrong with a size.
func (z Size) Validate() error {
	switch {
	case z.Members < 1 || z.Brands < 1 || z.Stores < z.Brands || z.GuidesPerStore < 1:
		return fmt.Errorf("size: want members ≥ 1, brands ≥ 1, stores ≥ brands and guides per store ≥ 1, got %+v", z)
	case z.Members > 999_999_999:
		return fmt.Errorf("size: at most 999,999,999 members (their phones are +8613 and 9 digits)")
	case z.Runs > z.Members || z.EndedRuns > z.Members:
		return fmt.Errorf("size: runs and ended runs are at most one per member, got %d and %d of %d", z.Runs, z.EndedRuns, z.Members)
	case z.BulkMembers > z.Members:
		return fmt.Errorf("size: at most %d bulk members, got %d", z.Members, z.BulkMembers)
	case z.Runs < 0 || z.EndedRuns < 0 || z.Events < 0 || z.Tasks < 0 || z.BulkMembers < 0:
		return fmt.Errorf("size: negative count in %+v", z)
	}
	return nil
}

// Phone is member i's phone number (i from 1).
func Phone(i int) string { return fmt.Sprintf("+8613%09d", i) }

// BrandID is brand b's id (b from 1).
func BrandID(b int) string { return fmt.Sprintf("brand-%02d", b) }

// StoreID is store i's id (i from 1).
func StoreID(i int) string { return fmt.Sprintf("s%07d", i) }

// Workflow is the workflow the seeded runs are of.
const Workflow = "recall"

// Step is the step the waiting runs wait in.
const Step = "wait"

// Options say where and how to seed.
type Options struct {
	// URL is the PostgreSQL URL of a migrated database (its search_path
	// may select a schema).
	URL string
	// Phones hashes and encrypts the members' phones: the store's own
	// cipher, so its MemberByPhone finds them.
	Phones *store.PhoneCipher
	// Now anchors the seeded times (default time.Now).
	Now time.Time
	// Log, when set, is told what each stage took.
	Log func(stage string, rows int64, took time.Duration)
}

// Report is what Seed did.
type Report struct {
	Stages []Stage
	Took   time.Duration
}

// Stage is one table's rows and time.
type Stage struct {
	Name string
	Rows int64
	Took time.Duration
}

// Seed fills an empty, migrated database. It refuses a database that has
// members already.
func Seed(ctx context.Context, o Options, z Size) (*Report, error) {
	if err := z.Validate(); err != nil {
		return nil, err
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	now := o.Now.UTC().Truncate(time.Second)
	conn, err := pgx.Connect(ctx, o.URL)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	var have int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM members LIMIT 1) AS x`).Scan(&have); err != nil {
		return nil, fmt.Errorf("reading members (is the database migrated?): %w", err)
	}
	if have > 0 {
		return nil, fmt.Errorf("the database has members already: seed an empty one")
	}
	// The seed is one bulk load: a crash means starting again, so commits
	// need not wait for the disk; the indexes are maintained as rows go in.
	if _, err := conn.Exec(ctx, `SET synchronous_commit = off`); err != nil {
		return nil, fmt.Errorf("setting synchronous_commit: %w", err)
	}
	// The rows are consistent by construction: a superuser skips the
	// foreign keys' per-row checks (triggers), as pg_restore does.
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		// Not a superuser: the checks run, the seed is slower.
		if o.Log != nil {
			o.Log("foreign key checks stay on ("+err.Error()+")", 0, 0)
		}
	}
	if _, err := conn.Exec(ctx, `SELECT setseed(0.23)`); err != nil {
		return nil, fmt.Errorf("seeding random(): %w", err)
	}
	r := &Report{}
	start := time.Now()
	stage := func(name string, f func() (int64, error)) error {
		t := time.Now()
		n, err := f()
		if err != nil {
			return fmt.Errorf("seeding %s: %w", name, err)
		}
		st := Stage{Name: name, Rows: n, Took: time.Since(t)}
		r.Stages = append(r.Stages, st)
		if o.Log != nil {
			o.Log(name, n, st.Took)
		}
		return nil
	}
	exec := func(sql string, args ...any) func() (int64, error) {
		return func() (int64, error) {
			tag, err := conn.Exec(ctx, sql, args...)
			return tag.RowsAffected(), err
		}
	}
	B, S, G, M := z.Brands, z.Stores, z.GuidesPerStore, z.Members
	stages := []struct {
		name string
		f    func() (int64, error)
	}{
		{"brands", exec(`INSERT INTO brands (id, name, created_at, updated_at)
			SELECT 'brand-' || lpad(b::text, 2, '0'), 'Brand ' || b, $1::timestamptz, $1::timestamptz FROM generate_series(1, $2::int) AS b`, now, B)},
		// Stores spread over eastern China, in the brand's zone.
		{"stores", exec(`INSERT INTO stores (id, name, lat, lng, address, time_zone, opening_hours, active, distributor, created_at, updated_at)
			SELECT 's' || lpad(i::text, 7, '0'), 'Store ' || i, 22 + random() * 18, 104 + random() * 18, 'Road ' || i,
				'Asia/Shanghai', '10:00-22:00', true, '', $1::timestamptz, $1::timestamptz
			FROM generate_series(1, $2::int) AS i`, now, S)},
		{"store_brands", exec(`INSERT INTO store_brands (store_id, brand_id)
			SELECT 's' || lpad(i::text, 7, '0'), 'brand-' || lpad((1 + i % $2::int)::text, 2, '0') FROM generate_series(1, $1::int) AS i
			UNION ALL
			SELECT 's' || lpad(i::text, 7, '0'), 'brand-' || lpad((1 + (i + 1) % $2::int)::text, 2, '0') FROM generate_series(1, $1::int) AS i
			WHERE i % 10 = 0 AND $2::int > 1`, S, B)},
		{"guides", exec(`INSERT INTO guides (id, store_id, name, capacity, bound_count, active, created_at, updated_at)
			SELECT 'g' || lpad(i::text, 7, '0') || '-' || k, 's' || lpad(i::text, 7, '0'), 'Guide ' || i || '-' || k, 5000, 0, true,
				$1::timestamptz, $1::timestamptz
			FROM generate_series(1, $2::int) AS i, generate_series(1, $3::int) AS k`, now, S, G)},
		{"guide_identities", exec(`INSERT INTO guide_identities (guide_id, channel, external_id, created_at)
			SELECT id, 'wecom', 'w' || id, $1::timestamptz FROM guides`, now)},
		{"members", func() (int64, error) { return copyMembers(ctx, conn, o.Phones, M, now) }},
		// Every member joins brand i mod B, one in five also the next
		// brand; joined over the last two years.
		{"memberships", exec(`INSERT INTO memberships (member_id, brand_id, level, points, name, phone_known, created_at)
			SELECT i, 'brand-' || lpad((1 + i % $2::int)::text, 2, '0'), (ARRAY['', 'silver', 'gold'])[1 + i % 3], (i * 7) % 5000, '', true,
				$3::timestamptz - (i % 730) * interval '1 day'
			FROM generate_series(1, $1::int) AS i
			UNION ALL
			SELECT i, 'brand-' || lpad((1 + (i + 1) % $2::int)::text, 2, '0'), '', 0, '', false, $3::timestamptz - (i % 365) * interval '1 day'
			FROM generate_series(1, $1::int) AS i WHERE i % 5 = 0 AND $2::int > 1`, M, B, now)},
		{"bulk_brand", exec(`INSERT INTO brands (id, name, created_at, updated_at) SELECT $2::text, 'Bulk', $3::timestamptz, $3::timestamptz WHERE $1::int > 0`,
			z.BulkMembers, BulkBrand, now)},
		{"bulk_memberships", exec(`INSERT INTO memberships (member_id, brand_id, level, points, name, phone_known, created_at)
			SELECT i, $2::text, '', 0, '', true, $3::timestamptz FROM generate_series(1, $1::int) AS i`, z.BulkMembers, BulkBrand, now)},
		{"member_identities", exec(`INSERT INTO member_identities (member_id, channel, external_id, brand_id, created_at)
			SELECT i, 'wecom', 'wm' || i, 'brand-' || lpad((1 + i % $2::int)::text, 2, '0'), $3::timestamptz
			FROM generate_series(1, $1::int) AS i`, M, B, now)},
		// Member i is bound, for its first brand, to a guide of a store
		// carrying that brand: store b + B·j carries brand b+1.
		{"bindings", exec(`INSERT INTO bindings (member_id, brand_id, guide_id, store_id, reason, distance_m, remark, created_at)
			SELECT i, 'brand-' || lpad((1 + i % $2::int)::text, 2, '0'),
				'g' || lpad(st::text, 7, '0') || '-' || (1 + i % $5::int), 's' || lpad(st::text, 7, '0'), 'nearest', (i % 9000)::float8, '', $3::timestamptz
			FROM (SELECT i, CASE WHEN i % $2::int = 0 THEN $2::int * (1 + (i / $2::int) % ($4::int / $2::int))
				ELSE i % $2::int + $2::int * ((i / $2::int) % (($4::int - i % $2::int) / $2::int + 1)) END AS st
				FROM generate_series(1, $1::int) AS i) AS x`, M, B, now, S, G)},
		{"guide_load", exec(`UPDATE guides AS g SET bound_count = c.n FROM
			(SELECT guide_id, count(*) AS n FROM bindings WHERE ended_at IS NULL GROUP BY guide_id) AS c WHERE g.id = c.guide_id`)},
		{"events", exec(`INSERT INTO events (type, brand_id, member_id, source, source_id, payload, occurred_at, created_at)
			SELECT 'purchase.completed', 'brand-' || lpad((1 + m % $3::int)::text, 2, '0'), m, 'seed', 'o' || i,
				'{"order_id":"o' || i || '","amount_cents":' || (1000 + i % 50000) || '}', $4::timestamptz - (i % 400) * interval '1 day', $4::timestamptz
			FROM (SELECT i, 1 + (i::bigint * 7919) % $2::int AS m FROM generate_series(1, $1::int) AS i) AS x`, z.Events, M, B, now)},
		{"member_stats", exec(`INSERT INTO member_stats (member_id, brand_id, orders, spent_cents, first_purchase_at, last_purchase_at)
			SELECT member_id, brand_id, count(*), 0, min(occurred_at), max(occurred_at) FROM events
			WHERE type = 'purchase.completed' AND source = 'seed' GROUP BY member_id, brand_id`)},
		// Runs of recall waiting in its wait step, waking over the next
		// week; earlier ones ended, from the firing a month ago.
		{"workflow_runs", exec(`INSERT INTO workflow_runs (member_id, brand_id, workflow, version, via_brand_id, trigger_key, state, step, visit,
				wake_at, wake_seq, wait_event, sent, started_at, end_reason)
			SELECT i, 'brand-' || lpad((1 + i % $2::int)::text, 2, '0'), $4::text, 'v1', '', 's' || to_char($3::timestamptz - interval '1 day', 'YYYYMMDD'),
				'active', $5::text, 1, $3::timestamptz + (i % 10080) * interval '1 minute', 1, '', 1, $3::timestamptz - (i % 1440) * interval '1 minute', ''
			FROM generate_series(1, $1::int) AS i`, z.Runs, B, now, Workflow, Step)},
		{"ended_runs", exec(`INSERT INTO workflow_runs (member_id, brand_id, workflow, version, via_brand_id, trigger_key, state, step, visit,
				wake_at, wake_seq, wait_event, sent, started_at, ended_at, end_reason)
			SELECT i, 'brand-' || lpad((1 + i % $2::int)::text, 2, '0'), $4::text, 'v1', '', 's' || to_char($3::timestamptz - interval '30 days', 'YYYYMMDD'),
				CASE WHEN i % 4 = 0 THEN 'converted' ELSE 'done' END, 'send', 1, NULL, 2, '', 1,
				$3::timestamptz - interval '30 days', $3::timestamptz - interval '20 days', CASE WHEN i % 4 = 0 THEN 'goal' ELSE 'end' END
			FROM generate_series(1, $1::int) AS i`, z.EndedRuns, B, now, Workflow)},
		{"run_steps", exec(`INSERT INTO run_steps (run_id, step_id, visit, seq, state, outcome, error, failures, attempts, outbox_key, reason, started_at, claimed_at, finished_at,
				brand_id, workflow, run_started_at)
			SELECT id, step, 1, wake_seq, CASE WHEN state = 'active' THEN 'waiting' ELSE 'done' END, '', '', 0,
				CASE WHEN state = 'active' THEN 0 ELSE 1 END, '', '', started_at,
				CASE WHEN state = 'active' THEN NULL ELSE started_at END, ended_at, brand_id, workflow, started_at
			FROM workflow_runs`)},
		{"guide_tasks", exec(`INSERT INTO guide_tasks (member_id, guide_id, brand_id, title, note, due_at, state, created_at)
			SELECT b.member_id, b.guide_id, b.brand_id, 'Call back', '', $3::timestamptz + ((i % 96) - 24) * interval '1 hour', 'open', $3::timestamptz
			FROM (SELECT i, 1 + (i::bigint * 104729) % $2::int AS m FROM generate_series(1, $1::int) AS i) AS x
			JOIN bindings AS b ON b.member_id = x.m AND b.ended_at IS NULL`, z.Tasks, M, now)},
		{"sequences", func() (int64, error) {
			for _, t := range []string{"members", "member_identities", "bindings", "events", "workflow_runs", "guide_tasks"} {
				if _, err := conn.Exec(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM %s), false)`, t, t)); err != nil {
					return 0, err
				}
			}
			return 0, nil
		}},
		{"analyze", exec(`ANALYZE`)},
	}
	for _, s := range stages {
		if err := stage(s.name, s.f); err != nil {
			return r, err
		}
	}
	r.Took = time.Since(start)
	return r, nil
}

// copyMembers writes members 1..n by COPY, their phones hashed and
// encrypted in Go while the rows stream.
func copyMembers(ctx context.Context, conn *pgx.Conn, phones *store.PhoneCipher, n int, now time.Time) (int64, error) {
	const batch = 4096
	rows := make(chan [][]any, 4)
	errc := make(chan error, 1)
	go func() {
		defer close(rows)
		for lo := 1; lo <= n; lo += batch {
			hi := min(lo+batch-1, n)
			b := make([][]any, 0, hi-lo+1)
			for i := lo; i <= hi; i++ {
				p := Phone(i)
				enc, err := phones.Encrypt(p)
				if err != nil {
					errc <- err
					return
				}
				b = append(b, []any{int64(i), phones.Hash(p), enc, p[len(p)-4:], fmt.Sprintf("Member %d", i), "", now, now})
			}
			select {
			case rows <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	src := &chanSource{rows: rows}
	cols := []string{"id", "phone_hash", "phone_enc", "phone_tail", "name", "time_zone", "created_at", "updated_at"}
	got, err := conn.CopyFrom(ctx, pgx.Identifier{"members"}, cols, src)
	if err != nil {
		return got, err
	}
	select {
	case err := <-errc:
		return got, err
	default:
	}
	return got, nil
}

// chanSource is a pgx.CopyFromSource reading batches of rows from a
// channel.
type chanSource struct {
	rows <-chan [][]any
	cur  [][]any
	row  []any
}

func (s *chanSource) Next() bool {
	for len(s.cur) == 0 {
		b, ok := <-s.rows
		if !ok {
			return false
		}
		s.cur = b
	}
	s.row, s.cur = s.cur[0], s.cur[1:]
	return true
}

func (s *chanSource) Values() ([]any, error) { return s.row, nil }
func (s *chanSource) Err() error             { return nil }
