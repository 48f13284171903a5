package store

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"
)

// The funnel counters: per brand, workflow, day (the run's start, in
// China Standard Time, UTC+8) and what the funnel groups by, how many
// runs (funnel_run_counts) and step visits (funnel_step_counts) there
// are. Database triggers keep them (migration 0042_funnel_counts):
// every insert, update and delete of a workflow_runs, run_steps or
// outbox_messages row moves its count from the old key to the new one in
// the statement that changed the row, so the counters are exactly the
// recount of the rows whichever code path wrote them (the engine's moves,
// the cancels of a retire or an erasure, the retention job's deletes, the
// outbox's sends and deliveries), and roll back with it. A brand-wide
// funnel over whole days then sums a few rows per day and step instead of
// reading every visit (RunStatsOf, SendStatsOf, WorkflowActivities).
//
// Not a hot row: each key has funnelBuckets rows, the run's id picks one,
// so workers moving different runs of one step at once update different
// rows (each transaction's counter rows are its run's bucket only), and
// one run's moves are serialised by the engine anyway. A run_steps row
// and its outbox row can change in two transactions at once (a goal
// cancels a step while its message is being sent): each trigger reads
// the other row FOR SHARE, so the later transaction waits for the
// earlier one and counts with what it wrote (PostgreSQL; SQLite has one
// writer).

// funnelBuckets is how many rows share a counter key.
const funnelBuckets = 16

// funnelDayOffset is UTC+8 in seconds: the counters' days are those of
// China Standard Time, the console's.
const funnelDayOffset = 8 * 3600

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
	if err := db.Table("funnel_run_counts").Select("state, SUM(n) AS n, SUM(sent) AS sent").Where(where, args...).
		Group("state").Having("SUM(n) <> 0").Scan(&states).Error; err != nil {
		return nil, translate(err)
	}
	for _, r := range states {
		st.States[r.State] = r.N
		st.Sent += r.Sent
	}
	err := db.Table("funnel_step_counts").
		Select(`step_id AS step, SUM(CASE WHEN first_visit = 1 THEN n ELSE 0 END) AS reached,
			SUM(CASE WHEN state = 'done' THEN n ELSE 0 END) AS done,
			SUM(CASE WHEN state = 'skipped' THEN n ELSE 0 END) AS skipped,
			SUM(CASE WHEN state = 'failed' THEN n ELSE 0 END) AS failed,
			SUM(CASE WHEN state = 'waiting' THEN n ELSE 0 END) AS waiting,
			SUM(CASE WHEN state IN ('pending', 'running') THEN n ELSE 0 END) AS pending,
			SUM(CASE WHEN state = 'sending' THEN n ELSE 0 END) AS sending,
			SUM(CASE WHEN state = 'cancelled' THEN n ELSE 0 END) AS canceled,
			SUM(CASE WHEN errored = 1 THEN n ELSE 0 END) AS errors`).
		Where(where, args...).Group("step_id").Having("SUM(n) <> 0").Order("step_id").Scan(&st.Steps).Error
	if err != nil {
		return nil, translate(err)
	}
	return st, nil
}

// sendStatsCounted is SendStatsOf from the counters.
func (s *Store) sendStatsCounted(ctx context.Context, brand, workflow string, from, to int64) ([]SendStat, error) {
	var out []SendStat
	where, args := dayWhere(brand, workflow, from, to)
	err := s.db.WithContext(ctx).Table("funnel_step_counts").
		Select(`step_id AS step, state, reason, outbox_state, delivery, failure, SUM(n) AS n`).
		Where(where+" AND (has_outbox = 1 OR state IN (?, ?))", append(args, StepSkipped, StepFailed)...).
		Group("step_id, state, reason, outbox_state, delivery, failure").Having("SUM(n) <> 0").
		Order("step_id").Scan(&out).Error
	return out, translate(err)
}

// migrateFunnelCounts makes the funnel counters, their triggers, and
// fills them from the rows there are: migration 0042_funnel_counts.
func migrateFunnelCounts(tx *gorm.DB) error {
	pg := tx.Dialector.Name() == "postgres"
	day := func(col string) string {
		if pg {
			return "CAST(floor((extract(epoch FROM " + col + ") + 28800) / 86400) AS integer)"
		}
		return "((CAST(strftime('%s', " + col + ") AS INTEGER) + 28800) / 86400)"
	}
	flag := func(cond string) string { return "(CASE WHEN " + cond + " THEN 1 ELSE 0 END)" }
	stmts := []string{
		`CREATE TABLE funnel_run_counts (
			brand_id varchar(64) NOT NULL, workflow varchar(100) NOT NULL, day integer NOT NULL,
			state varchar(16) NOT NULL, bucket integer NOT NULL, n bigint NOT NULL, sent bigint NOT NULL,
			PRIMARY KEY (brand_id, workflow, day, state, bucket))`,
		`CREATE TABLE funnel_step_counts (
			brand_id varchar(64) NOT NULL, workflow varchar(100) NOT NULL, day integer NOT NULL,
			step_id varchar(64) NOT NULL, state varchar(16) NOT NULL, reason varchar(32) NOT NULL,
			first_visit integer NOT NULL, errored integer NOT NULL, has_outbox integer NOT NULL,
			outbox_state varchar(16) NOT NULL, delivery varchar(16) NOT NULL, failure varchar(32) NOT NULL,
			bucket integer NOT NULL, n bigint NOT NULL,
			PRIMARY KEY (brand_id, workflow, day, step_id, state, reason, first_visit, errored, has_outbox, outbox_state, delivery, failure, bucket))`,
		// The outbox's trigger finds the visits of a message.
		`CREATE INDEX IF NOT EXISTS idx_run_steps_outbox_key ON run_steps (outbox_key) WHERE outbox_key <> ''`,
	}
	const stepCols = `brand_id, workflow, day, step_id, state, reason, first_visit, errored, has_outbox, outbox_state, delivery, failure, bucket`
	// stepKey is the counters' key of a run_steps row s (columns in
	// stepCols' order, without the outbox's three).
	stepKey := func(s string) []string {
		return []string{s + ".brand_id", s + ".workflow", day(s + ".run_started_at"), s + ".step_id", s + ".state", s + ".reason",
			flag(s + ".visit = 1"), flag(s + ".failures > 0"), flag(s + ".outbox_key <> ''")}
	}
	counted := func(s string) string { return s + ".brand_id <> '' AND " + s + ".run_started_at IS NOT NULL" }
	// Backfill, before the triggers (the migration holds its lock).
	stmts = append(stmts,
		`INSERT INTO funnel_run_counts (brand_id, workflow, day, state, bucket, n, sent)
			SELECT r.brand_id, r.workflow, `+day("r.started_at")+`, r.state, r.id % 16, COUNT(*), COALESCE(SUM(r.sent), 0)
			FROM workflow_runs r GROUP BY 1, 2, 3, 4, 5`,
		`INSERT INTO funnel_step_counts (`+stepCols+`, n)
			SELECT `+strings.Join(stepKey("s"), ", ")+`, COALESCE(o.state, ''), COALESCE(o.delivery, ''), COALESCE(o.failure, ''), s.run_id % 16, COUNT(*)
			FROM run_steps s LEFT JOIN outbox_messages o ON s.outbox_key <> '' AND o.idempotency_key = s.outbox_key
			WHERE `+counted("s")+` GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13`,
	)
	if pg {
		stmts = append(stmts, funnelTriggersPostgres(day, flag)...)
	} else {
		stmts = append(stmts, funnelTriggersSQLite(day, stepKey, counted)...)
	}
	for _, stmt := range stmts {
		if err := tx.Exec(stmt).Error; err != nil {
			return err
		}
	}
	return nil
}

// funnelTriggersPostgres are the counters' trigger functions and
// triggers on PostgreSQL.
func funnelTriggersPostgres(day func(string) string, flag func(string) string) []string {
	return []string{
		`CREATE OR REPLACE FUNCTION funnel_run_put(r workflow_runs, d integer) RETURNS void LANGUAGE plpgsql AS $$
		BEGIN
			INSERT INTO funnel_run_counts (brand_id, workflow, day, state, bucket, n, sent)
			VALUES (r.brand_id, r.workflow, ` + day("r.started_at") + `, r.state, r.id % 16, d, d * r.sent)
			ON CONFLICT (brand_id, workflow, day, state, bucket)
			DO UPDATE SET n = funnel_run_counts.n + EXCLUDED.n, sent = funnel_run_counts.sent + EXCLUDED.sent;
		END $$`,
		`CREATE OR REPLACE FUNCTION funnel_run_count() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF TG_OP <> 'INSERT' THEN PERFORM funnel_run_put(OLD, -1); END IF;
			IF TG_OP <> 'DELETE' THEN PERFORM funnel_run_put(NEW, 1); END IF;
			RETURN NULL;
		END $$`,
		`CREATE TRIGGER funnel_runs_ins AFTER INSERT OR DELETE ON workflow_runs FOR EACH ROW EXECUTE FUNCTION funnel_run_count()`,
		`CREATE TRIGGER funnel_runs_upd AFTER UPDATE ON workflow_runs FOR EACH ROW
			WHEN ((OLD.brand_id, OLD.workflow, OLD.started_at, OLD.state, OLD.sent, OLD.id) IS DISTINCT FROM
				(NEW.brand_id, NEW.workflow, NEW.started_at, NEW.state, NEW.sent, NEW.id))
			EXECUTE FUNCTION funnel_run_count()`,
		// One visit's count with its message's state, delivery and
		// failure (os, od, of).
		`CREATE OR REPLACE FUNCTION funnel_step_put(s run_steps, os text, od text, ofl text, d integer) RETURNS void LANGUAGE plpgsql AS $$
		BEGIN
			IF s.brand_id = '' OR s.run_started_at IS NULL THEN RETURN; END IF;
			INSERT INTO funnel_step_counts (brand_id, workflow, day, step_id, state, reason, first_visit, errored, has_outbox,
				outbox_state, delivery, failure, bucket, n)
			VALUES (s.brand_id, s.workflow, ` + day("s.run_started_at") + `, s.step_id, s.state, s.reason,
				` + flag("s.visit = 1") + `, ` + flag("s.failures > 0") + `, ` + flag("s.outbox_key <> ''") + `,
				COALESCE(os, ''), COALESCE(od, ''), COALESCE(ofl, ''), s.run_id % 16, d)
			ON CONFLICT (brand_id, workflow, day, step_id, state, reason, first_visit, errored, has_outbox, outbox_state, delivery, failure, bucket)
			DO UPDATE SET n = funnel_step_counts.n + EXCLUDED.n;
		END $$`,
		// A visit's count with its message as it is now (read FOR SHARE:
		// a transaction changing the message commits first).
		`CREATE OR REPLACE FUNCTION funnel_step_add(s run_steps, d integer) RETURNS void LANGUAGE plpgsql AS $$
		DECLARE os text; od text; ofl text;
		BEGIN
			IF s.outbox_key <> '' THEN
				SELECT o.state, o.delivery, o.failure INTO os, od, ofl FROM outbox_messages o
				WHERE o.idempotency_key = s.outbox_key FOR SHARE;
			END IF;
			PERFORM funnel_step_put(s, os, od, ofl, d);
		END $$`,
		`CREATE OR REPLACE FUNCTION funnel_step_count() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF TG_OP <> 'INSERT' THEN PERFORM funnel_step_add(OLD, -1); END IF;
			IF TG_OP <> 'DELETE' THEN PERFORM funnel_step_add(NEW, 1); END IF;
			RETURN NULL;
		END $$`,
		`CREATE TRIGGER funnel_steps_ins AFTER INSERT OR DELETE ON run_steps FOR EACH ROW EXECUTE FUNCTION funnel_step_count()`,
		`CREATE TRIGGER funnel_steps_upd AFTER UPDATE ON run_steps FOR EACH ROW
			WHEN ((OLD.brand_id, OLD.workflow, OLD.run_started_at, OLD.step_id, OLD.state, OLD.reason, OLD.visit, OLD.failures > 0, OLD.outbox_key, OLD.run_id)
				IS DISTINCT FROM (NEW.brand_id, NEW.workflow, NEW.run_started_at, NEW.step_id, NEW.state, NEW.reason, NEW.visit, NEW.failures > 0, NEW.outbox_key, NEW.run_id))
			EXECUTE FUNCTION funnel_step_count()`,
		// A message changing moves its visits' counts (read FOR SHARE: a
		// transaction changing a visit commits first).
		`CREATE OR REPLACE FUNCTION funnel_outbox_count() RETURNS trigger LANGUAGE plpgsql AS $$
		DECLARE s run_steps;
		BEGIN
			IF TG_OP <> 'INSERT' AND OLD.idempotency_key <> '' THEN
				FOR s IN SELECT * FROM run_steps WHERE outbox_key = OLD.idempotency_key FOR SHARE LOOP
					PERFORM funnel_step_put(s, OLD.state, OLD.delivery, OLD.failure, -1);
					PERFORM funnel_step_put(s, '', '', '', 1);
				END LOOP;
			END IF;
			IF TG_OP <> 'DELETE' AND NEW.idempotency_key <> '' THEN
				FOR s IN SELECT * FROM run_steps WHERE outbox_key = NEW.idempotency_key FOR SHARE LOOP
					PERFORM funnel_step_put(s, '', '', '', -1);
					PERFORM funnel_step_put(s, NEW.state, NEW.delivery, NEW.failure, 1);
				END LOOP;
			END IF;
			RETURN NULL;
		END $$`,
		`CREATE TRIGGER funnel_outbox_ins AFTER INSERT OR DELETE ON outbox_messages FOR EACH ROW EXECUTE FUNCTION funnel_outbox_count()`,
		`CREATE TRIGGER funnel_outbox_upd AFTER UPDATE ON outbox_messages FOR EACH ROW
			WHEN ((OLD.idempotency_key, OLD.state, OLD.delivery, OLD.failure) IS DISTINCT FROM (NEW.idempotency_key, NEW.state, NEW.delivery, NEW.failure))
			EXECUTE FUNCTION funnel_outbox_count()`,
	}
}

// funnelTriggersSQLite are the counters' triggers on SQLite (one
// writer at a time: nothing to lock).
func funnelTriggersSQLite(day func(string) string, stepKey func(string) []string, counted func(string) string) []string {
	const stepCols = `brand_id, workflow, day, step_id, state, reason, first_visit, errored, has_outbox, outbox_state, delivery, failure, bucket, n`
	const stepConflict = ` ON CONFLICT (brand_id, workflow, day, step_id, state, reason, first_visit, errored, has_outbox, outbox_state, delivery, failure, bucket)
		DO UPDATE SET n = n + excluded.n;`
	run := func(r, d string) string {
		return `INSERT INTO funnel_run_counts (brand_id, workflow, day, state, bucket, n, sent)
			SELECT ` + r + `.brand_id, ` + r + `.workflow, ` + day(r+".started_at") + `, ` + r + `.state, ` + r + `.id % 16, ` + d + `, ` + d + ` * ` + r + `.sent WHERE true
			ON CONFLICT (brand_id, workflow, day, state, bucket) DO UPDATE SET n = n + excluded.n, sent = sent + excluded.sent;`
	}
	// step counts row s with its message as it is now.
	step := func(s, d string) string {
		return `INSERT INTO funnel_step_counts (` + stepCols + `)
			SELECT ` + strings.Join(stepKey(s), ", ") + `, COALESCE(o.state, ''), COALESCE(o.delivery, ''), COALESCE(o.failure, ''), ` + s + `.run_id % 16, ` + d + `
			FROM (SELECT 1) LEFT JOIN outbox_messages o ON ` + s + `.outbox_key <> '' AND o.idempotency_key = ` + s + `.outbox_key
			WHERE ` + counted(s) + stepConflict
	}
	// msg moves the counts of message o's visits from (from) to (to),
	// each the message's state, delivery and failure.
	msg := func(key, from, to string) string {
		return `INSERT INTO funnel_step_counts (` + stepCols + `)
			SELECT ` + strings.Join(stepKey("s"), ", ") + `, v.os, v.od, v.ofl, s.run_id % 16, SUM(v.d)
			FROM run_steps s, (SELECT ` + from + `, -1 AS d UNION ALL SELECT ` + to + `, 1) AS v
			WHERE s.outbox_key = ` + key + ` AND ` + key + ` <> '' AND ` + counted("s") + `
			GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13` + stepConflict
	}
	newMsg := "NEW.state AS os, COALESCE(NEW.delivery, '') AS od, COALESCE(NEW.failure, '') AS ofl"
	oldMsg := "OLD.state AS os, COALESCE(OLD.delivery, '') AS od, COALESCE(OLD.failure, '') AS ofl"
	none := "'' AS os, '' AS od, '' AS ofl"
	return []string{
		`CREATE TRIGGER funnel_runs_ins AFTER INSERT ON workflow_runs BEGIN ` + run("NEW", "1") + ` END`,
		`CREATE TRIGGER funnel_runs_del AFTER DELETE ON workflow_runs BEGIN ` + run("OLD", "-1") + ` END`,
		`CREATE TRIGGER funnel_runs_upd AFTER UPDATE ON workflow_runs
			WHEN OLD.brand_id IS NOT NEW.brand_id OR OLD.workflow IS NOT NEW.workflow OR OLD.started_at IS NOT NEW.started_at
				OR OLD.state IS NOT NEW.state OR OLD.sent IS NOT NEW.sent OR OLD.id IS NOT NEW.id
			BEGIN ` + run("OLD", "-1") + ` ` + run("NEW", "1") + ` END`,
		`CREATE TRIGGER funnel_steps_ins AFTER INSERT ON run_steps BEGIN ` + step("NEW", "1") + ` END`,
		`CREATE TRIGGER funnel_steps_del AFTER DELETE ON run_steps BEGIN ` + step("OLD", "-1") + ` END`,
		`CREATE TRIGGER funnel_steps_upd AFTER UPDATE ON run_steps
			WHEN OLD.brand_id IS NOT NEW.brand_id OR OLD.workflow IS NOT NEW.workflow OR OLD.run_started_at IS NOT NEW.run_started_at
				OR OLD.step_id IS NOT NEW.step_id OR OLD.state IS NOT NEW.state OR OLD.reason IS NOT NEW.reason OR OLD.visit IS NOT NEW.visit
				OR (OLD.failures > 0) IS NOT (NEW.failures > 0) OR OLD.outbox_key IS NOT NEW.outbox_key OR OLD.run_id IS NOT NEW.run_id
			BEGIN ` + step("OLD", "-1") + ` ` + step("NEW", "1") + ` END`,
		`CREATE TRIGGER funnel_outbox_ins AFTER INSERT ON outbox_messages BEGIN ` + msg("NEW.idempotency_key", none, newMsg) + ` END`,
		`CREATE TRIGGER funnel_outbox_del AFTER DELETE ON outbox_messages BEGIN ` + msg("OLD.idempotency_key", oldMsg, none) + ` END`,
		`CREATE TRIGGER funnel_outbox_upd AFTER UPDATE ON outbox_messages
			WHEN OLD.idempotency_key IS NOT NEW.idempotency_key OR OLD.state IS NOT NEW.state OR OLD.delivery IS NOT NEW.delivery OR OLD.failure IS NOT NEW.failure
			BEGIN ` + msg("OLD.idempotency_key", oldMsg, none) + ` ` + msg("NEW.idempotency_key", none, newMsg) + ` END`,
	}
}
