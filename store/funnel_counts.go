package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// The funnel counters: per brand, workflow, day (the run's start, in
// China Standard Time, UTC+8) and what the funnel groups by, how many
// runs and step visits there are, so that a brand-wide funnel over whole
// days sums a few rows per day and step instead of reading every run and
// visit (RunStatsOf, SendStatsOf, WorkflowActivities). Migration
// 0042_funnel_deltas makes them.
//
// Writers only append. Database triggers on workflow_runs, run_steps and
// outbox_messages insert delta rows (funnel_run_deltas,
// funnel_step_deltas) in the statement that changed the rows, so the
// counts follow every code path that writes them (the engine's moves, a
// schedule's multi-row inserts, the cancels of a retire or an erasure,
// the retention job's deletes, the outbox's sends and deliveries) and
// roll back with it. On PostgreSQL the triggers are statement-level with
// transition tables: one INSERT of 50,000 runs appends one delta row per
// (brand, workflow, day, state) it touched. No writer updates a shared
// row, so concurrent writers never wait on one another for the counts
// (the withdrawn counters of session 8 upserted counter rows from row
// triggers, and a schedule's concurrent multi-row inserts deadlocked on
// them). On SQLite (one writer at a time) row triggers append a delta
// per row.
//
// FoldFunnelDeltas, on one folder at a time, moves a batch of deltas into
// the per-day totals (funnel_run_totals, funnel_step_totals) in one
// statement: it deletes them and adds their sums to the totals. Only the
// folder writes the totals. A read sums the totals and the deltas not
// folded yet in one statement (one snapshot: a fold is seen whole or not
// at all), so the counts are exact whenever the fold last ran; the fold
// only keeps the deltas few.
//
// A visit is counted with what became of its message (its outbox row's
// state, delivery and failure). A visit and its message can change in
// two transactions at once (a goal cancels a step while its message is
// sent): the visits' trigger reads their messages FOR SHARE (a
// transaction changing one commits first, and the trigger counts its
// result; one that starts changing it later waits for this one and its
// trigger then reads the visit as this one left it). Only the visits'
// side locks, so the two cannot wait for each other. A visit's message is
// written before the visit names it (or in its transaction), as the
// engine does.

// funnelDayOffset is UTC+8 in seconds: the counters' days are those of
// China Standard Time, the console's.
const funnelDayOffset = 8 * 3600

// funnelFoldLockKey is the PostgreSQL advisory lock that lets one folder
// at a time fold the deltas.
const funnelFoldLockKey = 0x5c7a_0042

// funnelDay is the counters' day of t.
func funnelDay(t time.Time) int64 {
	return (t.Unix() + funnelDayOffset) / 86400
}

// days are the counters' days of f's period, [from, to); ok is false
// when f cannot be read from the counters (a store or guide, or a bound
// that is not a midnight in UTC+8).
func (f FunnelFilter) days() (from, to int64, ok bool) {
	if f.StoreID != "" || f.GuideID != "" {
		return 0, 0, false
	}
	from, to = -1, -1
	for _, b := range []struct {
		t   time.Time
		day *int64
	}{{f.From, &from}, {f.To, &to}} {
		if b.t.IsZero() {
			continue
		}
		if (b.t.Unix()+funnelDayOffset)%86400 != 0 || b.t.Nanosecond() != 0 {
			return 0, 0, false
		}
		*b.day = funnelDay(b.t)
	}
	return from, to, true
}

// dayWhere is the condition on the counters' rows of a brand's workflow
// over [from, to) (-1: open).
func dayWhere(brand, workflow string, from, to int64) (string, []any) {
	w := "brand_id = ? AND workflow = ?"
	args := []any{brand, workflow}
	if from >= 0 {
		w += " AND day >= ?"
		args = append(args, from)
	}
	if to >= 0 {
		w += " AND day < ?"
		args = append(args, to)
	}
	return w, args
}

// counted is the counters' rows (cols) of a table's totals and deltas
// where cond holds: one statement, so one snapshot (a fold moving rows
// from the deltas to the totals is seen whole or not at all).
func counted(table, cols, cond string, args []any) (string, []any) {
	return "(SELECT " + cols + " FROM " + table + "_totals WHERE " + cond +
		" UNION ALL SELECT " + cols + " FROM " + table + "_deltas WHERE " + cond + ") AS c", append(append([]any{}, args...), args...)
}

// runStatsCounted is RunStatsOf from the counters.
func (s *Store) runStatsCounted(ctx context.Context, brand, workflow string, from, to int64) (*RunStats, error) {
	db := s.db.WithContext(ctx)
	st := &RunStats{States: map[string]int64{}}
	var states []struct {
		State string
		N     int64
		Sent  int64
	}
	where, args := dayWhere(brand, workflow, from, to)
	runs, rargs := counted("funnel_run", "state, n, sent", where, args)
	if err := db.Raw("SELECT state, SUM(n) AS n, SUM(sent) AS sent FROM "+runs+" GROUP BY state HAVING SUM(n) <> 0", rargs...).
		Scan(&states).Error; err != nil {
		return nil, translate(err)
	}
	for _, r := range states {
		st.States[r.State] = r.N
		st.Sent += r.Sent
	}
	steps, sargs := counted("funnel_step", "step_id, state, first_visit, errored, n", where, args)
	err := db.Raw(`SELECT step_id AS step, SUM(CASE WHEN first_visit = 1 THEN n ELSE 0 END) AS reached,
			SUM(CASE WHEN state = 'done' THEN n ELSE 0 END) AS done,
			SUM(CASE WHEN state = 'skipped' THEN n ELSE 0 END) AS skipped,
			SUM(CASE WHEN state = 'failed' THEN n ELSE 0 END) AS failed,
			SUM(CASE WHEN state = 'waiting' THEN n ELSE 0 END) AS waiting,
			SUM(CASE WHEN state IN ('pending', 'running') THEN n ELSE 0 END) AS pending,
			SUM(CASE WHEN state = 'sending' THEN n ELSE 0 END) AS sending,
			SUM(CASE WHEN state = 'cancelled' THEN n ELSE 0 END) AS canceled,
			SUM(CASE WHEN errored = 1 THEN n ELSE 0 END) AS errors
		FROM `+steps+` GROUP BY step_id HAVING SUM(n) <> 0 ORDER BY step_id`, sargs...).Scan(&st.Steps).Error
	if err != nil {
		return nil, translate(err)
	}
	return st, nil
}

// sendStatsCounted is SendStatsOf from the counters.
func (s *Store) sendStatsCounted(ctx context.Context, brand, workflow string, from, to int64) ([]SendStat, error) {
	var out []SendStat
	where, args := dayWhere(brand, workflow, from, to)
	steps, sargs := counted("funnel_step", "step_id, state, reason, outbox_state, delivery, failure, n",
		where+" AND (has_outbox = 1 OR state IN (?, ?))", append(args, StepSkipped, StepFailed))
	err := s.db.WithContext(ctx).Raw(`SELECT step_id AS step, state, reason, outbox_state, delivery, failure, SUM(n) AS n
		FROM `+steps+` GROUP BY step_id, state, reason, outbox_state, delivery, failure HAVING SUM(n) <> 0
		ORDER BY step_id`, sargs...).Scan(&out).Error
	return out, translate(err)
}

// workflowRunCounts returns, per brand and workflow, the runs started on
// day since or later and how many of them converted (every brand's when
// brand is empty).
func (s *Store) workflowRunCounts(ctx context.Context, brand string, since int64) ([]workflowRunCount, error) {
	where, args := "day >= ?", []any{since}
	if brand != "" {
		where, args = "brand_id = ? AND day >= ?", []any{brand, since}
	}
	runs, rargs := counted("funnel_run", "brand_id, workflow, state, n", where, args)
	var out []workflowRunCount
	err := s.db.WithContext(ctx).Raw(`SELECT brand_id, workflow, SUM(n) AS entered, SUM(CASE WHEN state = ? THEN n ELSE 0 END) AS converted
		FROM `+runs+` GROUP BY brand_id, workflow HAVING SUM(n) <> 0`, append([]any{RunConverted}, rargs...)...).Scan(&out).Error
	return out, translate(err)
}

// workflowRunCount is one workflow's part of workflowRunCounts.
type workflowRunCount struct {
	BrandID   string
	Workflow  string
	Entered   int64
	Converted int64
}

// FunnelFold is what one FoldFunnelDeltas did.
type FunnelFold struct {
	// Runs and Steps count the delta rows folded into the totals.
	Runs, Steps int64
	// Busy is true when another folder held the fold (PostgreSQL).
	Busy bool
}

// The columns of the counters' keys.
const (
	funnelRunKey  = "brand_id, workflow, day, state"
	funnelStepKey = "brand_id, workflow, day, step_id, state, reason, first_visit, errored, has_outbox, outbox_state, delivery, failure"
)

// FoldFunnelDeltas moves up to batch of the oldest delta rows of each
// counter into the per-day totals, in one transaction, on one folder at a
// time (a PostgreSQL advisory lock; SQLite has one writer): the periodic
// job calls it until it folds fewer than batch. Reads are exact before,
// during and after a fold.
func (s *Store) FoldFunnelDeltas(ctx context.Context, batch int) (FunnelFold, error) {
	var f FunnelFold
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == "postgres" {
			var got bool
			if err := tx.Raw("SELECT pg_try_advisory_xact_lock(?)", funnelFoldLockKey).Scan(&got).Error; err != nil {
				return err
			}
			if !got {
				f.Busy = true
				return nil
			}
		}
		for _, c := range []struct {
			table, key, sums string
			n                *int64
		}{
			{"funnel_run", funnelRunKey, "n, sent", &f.Runs},
			{"funnel_step", funnelStepKey, "n", &f.Steps},
		} {
			n, err := foldDeltas(tx, s.dialect == "postgres", c.table, c.key, c.sums, batch)
			if err != nil {
				return fmt.Errorf("folding %s_deltas: %w", c.table, err)
			}
			*c.n = n
		}
		return nil
	})
	return f, translate(err)
}

// foldDeltas moves up to batch of the oldest rows of table's deltas into
// its totals (key: the key's columns; sums: the counted columns).
func foldDeltas(tx *gorm.DB, pg bool, table, key, sums string, batch int) (int64, error) {
	var sel, set []string
	for _, c := range strings.Split(sums, ", ") {
		sel = append(sel, "SUM("+c+")")
		set = append(set, c+" = "+table+"_totals."+c+" + excluded."+c)
	}
	upsert := " ON CONFLICT (" + key + ") DO UPDATE SET " + strings.Join(set, ", ")
	var n int64
	if pg {
		// One statement: what it deletes is what it adds (a delta
		// committed meanwhile stays for the next fold).
		err := tx.Raw(`WITH d AS (DELETE FROM `+table+`_deltas WHERE id <= (SELECT MAX(id) FROM (SELECT id FROM `+table+`_deltas ORDER BY id LIMIT ?) b)
				RETURNING `+key+`, `+sums+`),
			t AS (INSERT INTO `+table+`_totals (`+key+`, `+sums+`) SELECT `+key+`, `+strings.Join(sel, ", ")+` FROM d GROUP BY `+key+upsert+`)
			SELECT COUNT(*) FROM d`, batch).Scan(&n).Error
		return n, err
	}
	// SQLite: one writer, so the three statements see the same rows.
	var last *int64
	if err := tx.Raw(`SELECT MAX(id) FROM (SELECT id FROM `+table+`_deltas ORDER BY id LIMIT ?)`, batch).Scan(&last).Error; err != nil || last == nil {
		return 0, err
	}
	if err := tx.Exec(`INSERT INTO `+table+`_totals (`+key+`, `+sums+`) SELECT `+key+`, `+strings.Join(sel, ", ")+` FROM `+table+`_deltas
		WHERE id <= ? GROUP BY `+key+upsert, *last).Error; err != nil {
		return 0, err
	}
	res := tx.Exec(`DELETE FROM `+table+`_deltas WHERE id <= ?`, *last)
	return res.RowsAffected, res.Error
}

// FunnelDeltas counts the delta rows not folded yet (runs, steps).
func (s *Store) FunnelDeltas(ctx context.Context) (runs, steps int64, err error) {
	db := s.db.WithContext(ctx)
	if err := db.Table("funnel_run_deltas").Count(&runs).Error; err != nil {
		return 0, 0, translate(err)
	}
	return runs, steps, translate(db.Table("funnel_step_deltas").Count(&steps).Error)
}

// migrateFunnelDeltas makes the funnel counters (totals and deltas), the
// triggers that append the deltas, and fills the totals from the rows
// there are: migration 0042_funnel_deltas.
func migrateFunnelDeltas(tx *gorm.DB) error {
	pg := tx.Dialector.Name() == "postgres"
	day := func(col string) string {
		if pg {
			return "CAST(floor((extract(epoch FROM " + col + ") + 28800) / 86400) AS integer)"
		}
		return "((CAST(strftime('%s', " + col + ") AS INTEGER) + 28800) / 86400)"
	}
	flag := func(cond string) string { return "(CASE WHEN " + cond + " THEN 1 ELSE 0 END)" }
	id := "id bigserial PRIMARY KEY"
	if !pg {
		id = "id INTEGER PRIMARY KEY AUTOINCREMENT"
	}
	const runCols = `brand_id varchar(64) NOT NULL, workflow varchar(100) NOT NULL, day integer NOT NULL,
			state varchar(16) NOT NULL, n bigint NOT NULL, sent bigint NOT NULL`
	const stepCols = `brand_id varchar(64) NOT NULL, workflow varchar(100) NOT NULL, day integer NOT NULL,
			step_id varchar(64) NOT NULL, state varchar(16) NOT NULL, reason varchar(32) NOT NULL,
			first_visit integer NOT NULL, errored integer NOT NULL, has_outbox integer NOT NULL,
			outbox_state varchar(16) NOT NULL, delivery varchar(16) NOT NULL, failure varchar(32) NOT NULL, n bigint NOT NULL`
	stmts := []string{
		`CREATE TABLE funnel_run_totals (` + runCols + `, PRIMARY KEY (` + funnelRunKey + `))`,
		`CREATE TABLE funnel_run_deltas (` + id + `, ` + runCols + `)`,
		`CREATE INDEX idx_funnel_run_deltas_key ON funnel_run_deltas (brand_id, workflow, day)`,
		`CREATE TABLE funnel_step_totals (` + stepCols + `, PRIMARY KEY (` + funnelStepKey + `))`,
		`CREATE TABLE funnel_step_deltas (` + id + `, ` + stepCols + `)`,
		`CREATE INDEX idx_funnel_step_deltas_key ON funnel_step_deltas (brand_id, workflow, day)`,
		// The outbox's trigger finds the visits of a message.
		`CREATE INDEX IF NOT EXISTS idx_run_steps_outbox_key ON run_steps (outbox_key) WHERE outbox_key <> ''`,
	}
	// The triggers first: on PostgreSQL creating them locks the tables
	// against writes until the migration commits, so the backfill below
	// reads every row there will be without its deltas.
	if pg {
		stmts = append(stmts, funnelTriggersPostgres(day, flag)...)
	} else {
		stmts = append(stmts, funnelTriggersSQLite(day, flag)...)
	}
	stmts = append(stmts,
		`INSERT INTO funnel_run_totals (`+funnelRunKey+`, n, sent)
			SELECT r.brand_id, r.workflow, `+day("r.started_at")+`, r.state, COUNT(*), COALESCE(SUM(r.sent), 0)
			FROM workflow_runs r GROUP BY 1, 2, 3, 4`,
		`INSERT INTO funnel_step_totals (`+funnelStepKey+`, n)
			SELECT s.brand_id, s.workflow, `+day("s.run_started_at")+`, s.step_id, s.state, s.reason,
				`+flag("s.visit = 1")+`, `+flag("s.failures > 0")+`, `+flag("s.outbox_key <> ''")+`,
				COALESCE(o.state, ''), COALESCE(o.delivery, ''), COALESCE(o.failure, ''), COUNT(*)
			FROM run_steps s LEFT JOIN outbox_messages o ON s.outbox_key <> '' AND o.idempotency_key = s.outbox_key
			WHERE s.brand_id <> '' AND s.run_started_at IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12`,
	)
	for _, stmt := range stmts {
		if err := tx.Exec(stmt).Error; err != nil {
			return err
		}
	}
	return nil
}

// funnelTriggersPostgres are the counters' statement-level trigger
// functions and triggers on PostgreSQL: each reads the statement's
// transition tables (n: the rows as written, o: as they were), nets them
// per key and appends one delta row per key that changed.
func funnelTriggersPostgres(day func(string) string, flag func(string) string) []string {
	var stmts []string
	trigger := func(name, table, op, refs, body string) {
		stmts = append(stmts,
			`CREATE OR REPLACE FUNCTION `+name+`() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				`+body+`;
				RETURN NULL;
			END $$`,
			`CREATE TRIGGER `+name+` AFTER `+op+` ON `+table+` REFERENCING `+refs+` FOR EACH STATEMENT EXECUTE FUNCTION `+name+`()`)
	}
	const (
		ins = "NEW TABLE AS n"
		upd = "OLD TABLE AS o NEW TABLE AS n"
		del = "OLD TABLE AS o"
	)

	// Runs: by brand, workflow, day and state, with their sends.
	run := func(src string) string {
		return `INSERT INTO funnel_run_deltas (` + funnelRunKey + `, n, sent)
			SELECT brand_id, workflow, ` + day("started_at") + `, state, SUM(d), SUM(d * sent)
			FROM (` + src + `) x GROUP BY 1, 2, 3, 4 HAVING SUM(d) <> 0 OR SUM(d * sent) <> 0`
	}
	runRows := func(t, d string) string {
		return `SELECT brand_id, workflow, started_at, state, COALESCE(sent, 0) AS sent, ` + d + ` AS d FROM ` + t
	}
	trigger("funnel_runs_ins", "workflow_runs", "INSERT", ins, run(runRows("n", "1")))
	trigger("funnel_runs_upd", "workflow_runs", "UPDATE", upd, run(runRows("o", "-1")+" UNION ALL "+runRows("n", "1")))
	trigger("funnel_runs_del", "workflow_runs", "DELETE", del, run(runRows("o", "-1")))

	// Visits: netted per visit key and message first (most statements
	// change no key: nothing is left), then counted with their messages
	// as they are now, read FOR SHARE (in id order).
	step := func(src string) string {
		return `WITH v AS (
				SELECT brand_id, workflow, day, step_id, state, reason, first_visit, errored, outbox_key, SUM(d) AS d
				FROM (` + src + `) x GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 HAVING SUM(d) <> 0),
			m AS (
				SELECT o.idempotency_key, o.state, o.delivery, o.failure FROM outbox_messages o
				WHERE o.idempotency_key IN (SELECT outbox_key FROM v WHERE outbox_key <> '') ORDER BY o.id FOR SHARE)
			INSERT INTO funnel_step_deltas (` + funnelStepKey + `, n)
			SELECT v.brand_id, v.workflow, v.day, v.step_id, v.state, v.reason, v.first_visit, v.errored, ` + flag("v.outbox_key <> ''") + `,
				COALESCE(m.state, ''), COALESCE(m.delivery, ''), COALESCE(m.failure, ''), SUM(v.d)
			FROM v LEFT JOIN m ON v.outbox_key <> '' AND m.idempotency_key = v.outbox_key
			GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 HAVING SUM(v.d) <> 0`
	}
	stepRows := func(t, d string) string {
		return `SELECT brand_id, workflow, ` + day("run_started_at") + ` AS day, step_id, state, reason, ` + flag("visit = 1") + ` AS first_visit, ` +
			flag("failures > 0") + ` AS errored, outbox_key, ` + d + ` AS d FROM ` + t + ` WHERE brand_id <> '' AND run_started_at IS NOT NULL`
	}
	trigger("funnel_steps_ins", "run_steps", "INSERT", ins, step(stepRows("n", "1")))
	trigger("funnel_steps_upd", "run_steps", "UPDATE", upd, step(stepRows("o", "-1")+" UNION ALL "+stepRows("n", "1")))
	trigger("funnel_steps_del", "run_steps", "DELETE", del, step(stepRows("o", "-1")))

	// Messages: a message written, changed or deleted moves the counts of
	// its visits (read as they are now) from what it was to what it is.
	msg := func(src string) string {
		return `WITH v AS (
				SELECT k, os, od, ofl, SUM(d) AS d FROM (` + src + `) x WHERE k <> ''
				GROUP BY 1, 2, 3, 4 HAVING SUM(d) <> 0)
			INSERT INTO funnel_step_deltas (` + funnelStepKey + `, n)
			SELECT s.brand_id, s.workflow, ` + day("s.run_started_at") + `, s.step_id, s.state, s.reason,
				` + flag("s.visit = 1") + `, ` + flag("s.failures > 0") + `, 1, v.os, v.od, v.ofl, SUM(v.d)
			FROM v JOIN run_steps s ON s.outbox_key = v.k AND s.outbox_key <> ''
			WHERE s.brand_id <> '' AND s.run_started_at IS NOT NULL
			GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 HAVING SUM(v.d) <> 0`
	}
	// as is a message's rows (t) counted as they are (d) and as no
	// message (-d).
	as := func(t, d string) string {
		return `SELECT idempotency_key AS k, state AS os, COALESCE(delivery, '') AS od, COALESCE(failure, '') AS ofl, ` + d + ` AS d FROM ` + t +
			` UNION ALL SELECT idempotency_key, '', '', '', -(` + d + `) FROM ` + t
	}
	trigger("funnel_outbox_ins", "outbox_messages", "INSERT", ins, msg(as("n", "1")))
	trigger("funnel_outbox_upd", "outbox_messages", "UPDATE", upd, msg(as("o", "-1")+" UNION ALL "+as("n", "1")))
	trigger("funnel_outbox_del", "outbox_messages", "DELETE", del, msg(as("o", "-1")))
	return stmts
}

// funnelTriggerNames are the counters' triggers (and on PostgreSQL their
// functions).
var funnelTriggerNames = []string{"funnel_runs_ins", "funnel_runs_upd", "funnel_runs_del", "funnel_steps_ins", "funnel_steps_upd",
	"funnel_steps_del", "funnel_outbox_ins", "funnel_outbox_upd", "funnel_outbox_del"}

// funnelTriggersSQLite are the counters' row triggers on SQLite (one
// writer at a time): each appends a row's delta.
func funnelTriggersSQLite(day func(string) string, flag func(string) string) []string {
	run := func(r, d string) string {
		return `INSERT INTO funnel_run_deltas (` + funnelRunKey + `, n, sent)
			SELECT ` + r + `.brand_id, ` + r + `.workflow, ` + day(r+".started_at") + `, ` + r + `.state, ` + d + `, ` + d + ` * COALESCE(` + r + `.sent, 0);`
	}
	stepKey := func(s string) string {
		return s + ".brand_id, " + s + ".workflow, " + day(s+".run_started_at") + ", " + s + ".step_id, " + s + ".state, " + s + ".reason, " +
			flag(s+".visit = 1") + ", " + flag(s+".failures > 0") + ", " + flag(s+".outbox_key <> ''")
	}
	countedStep := func(s string) string { return s + ".brand_id <> '' AND " + s + ".run_started_at IS NOT NULL" }
	// step counts row s with its message as it is now.
	step := func(s, d string) string {
		return `INSERT INTO funnel_step_deltas (` + funnelStepKey + `, n)
			SELECT ` + stepKey(s) + `, COALESCE(o.state, ''), COALESCE(o.delivery, ''), COALESCE(o.failure, ''), ` + d + `
			FROM (SELECT 1) LEFT JOIN outbox_messages o ON ` + s + `.outbox_key <> '' AND o.idempotency_key = ` + s + `.outbox_key
			WHERE ` + countedStep(s) + `;`
	}
	// msg moves the counts of the visits of message key from (from) to
	// (to), each the message's state, delivery and failure.
	msg := func(key, from, to string) string {
		return `INSERT INTO funnel_step_deltas (` + funnelStepKey + `, n)
			SELECT ` + stepKey("s") + `, v.os, v.od, v.ofl, v.d
			FROM run_steps s, (SELECT ` + from + `, -1 AS d UNION ALL SELECT ` + to + `, 1) AS v
			WHERE s.outbox_key = ` + key + ` AND ` + key + ` <> '' AND ` + countedStep("s") + `;`
	}
	newMsg := "NEW.state AS os, COALESCE(NEW.delivery, '') AS od, COALESCE(NEW.failure, '') AS ofl"
	oldMsg := "OLD.state AS os, COALESCE(OLD.delivery, '') AS od, COALESCE(OLD.failure, '') AS ofl"
	none := "'' AS os, '' AS od, '' AS ofl"
	return []string{
		`CREATE TRIGGER funnel_runs_ins AFTER INSERT ON workflow_runs BEGIN ` + run("NEW", "1") + ` END`,
		`CREATE TRIGGER funnel_runs_del AFTER DELETE ON workflow_runs BEGIN ` + run("OLD", "-1") + ` END`,
		`CREATE TRIGGER funnel_runs_upd AFTER UPDATE ON workflow_runs
			WHEN OLD.brand_id IS NOT NEW.brand_id OR OLD.workflow IS NOT NEW.workflow OR OLD.started_at IS NOT NEW.started_at
				OR OLD.state IS NOT NEW.state OR OLD.sent IS NOT NEW.sent
			BEGIN ` + run("OLD", "-1") + ` ` + run("NEW", "1") + ` END`,
		`CREATE TRIGGER funnel_steps_ins AFTER INSERT ON run_steps BEGIN ` + step("NEW", "1") + ` END`,
		`CREATE TRIGGER funnel_steps_del AFTER DELETE ON run_steps BEGIN ` + step("OLD", "-1") + ` END`,
		`CREATE TRIGGER funnel_steps_upd AFTER UPDATE ON run_steps
			WHEN OLD.brand_id IS NOT NEW.brand_id OR OLD.workflow IS NOT NEW.workflow OR OLD.run_started_at IS NOT NEW.run_started_at
				OR OLD.step_id IS NOT NEW.step_id OR OLD.state IS NOT NEW.state OR OLD.reason IS NOT NEW.reason OR OLD.visit IS NOT NEW.visit
				OR (OLD.failures > 0) IS NOT (NEW.failures > 0) OR OLD.outbox_key IS NOT NEW.outbox_key
			BEGIN ` + step("OLD", "-1") + ` ` + step("NEW", "1") + ` END`,
		`CREATE TRIGGER funnel_outbox_ins AFTER INSERT ON outbox_messages BEGIN ` + msg("NEW.idempotency_key", none, newMsg) + ` END`,
		`CREATE TRIGGER funnel_outbox_del AFTER DELETE ON outbox_messages BEGIN ` + msg("OLD.idempotency_key", oldMsg, none) + ` END`,
		`CREATE TRIGGER funnel_outbox_upd AFTER UPDATE ON outbox_messages
			WHEN OLD.idempotency_key IS NOT NEW.idempotency_key OR OLD.state IS NOT NEW.state OR OLD.delivery IS NOT NEW.delivery OR OLD.failure IS NOT NEW.failure
			BEGIN ` + msg("OLD.idempotency_key", oldMsg, none) + ` ` + msg("NEW.idempotency_key", none, newMsg) + ` END`,
	}
}
