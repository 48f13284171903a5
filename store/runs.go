package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// This file holds the runs of the workflow engine: runs and their steps,
// moves between steps, wakes, run histories and stats. The rest of what
// the engine keeps has a file each: workflows.go (versions and the pointer
// to the current one), guide_tasks.go, sends.go (the per-member send log
// for frequency caps), points.go, tags.go, consent.go, profiles.go
// (member profiles and segments) and leases.go (leases and schedule
// markers).

// Run states. A run is active until it ends done (its last step or an end
// step), converted (a goal event), exited (its version retired) or failed
// (a step failed for good).
const (
	RunActive    = "active"
	RunDone      = "done"
	RunConverted = "converted"
	RunExited    = "exited"
	RunFailed    = "failed"
)

// Run step states. A step is entered pending (a step that acts, or decides)
// or waiting (wait, wait_for); a step that acts is claimed (running) by one
// worker before it acts, and ends done, skipped, failed or cancelled. A
// send step whose message is in the outbox waits for the channel's answer
// in state sending (its OutboxKey names the message).
const (
	StepPending   = "pending"
	StepWaiting   = "waiting"
	StepRunning   = "running"
	StepSending   = "sending"
	StepDone      = "done"
	StepSkipped   = "skipped"
	StepFailed    = "failed"
	StepCancelled = "cancelled"
)

// WorkflowRun is one member's journey through one workflow version. The
// row is the source of truth of the run: its current step, when it wakes
// next (WakeAt) and the sequence number that a queued wake must carry to
// act (WakeSeq, bumped on every move). A member has at most one active run
// of a workflow (a partial unique index), and a trigger starts at most one
// run per member (TriggerKey).
type WorkflowRun struct {
	ID       int64  `gorm:"primaryKey;autoIncrement" json:"id"`
	MemberID int64  `gorm:"not null" json:"member_id"`
	BrandID  string `gorm:"size:64;not null" json:"brand"`
	Workflow string `gorm:"size:100;not null" json:"workflow"`
	Version  string `gorm:"size:32;not null" json:"version"`
	// ViaBrandID is set on a run of a cross-brand offer: the brand whose
	// guide the run sends through (workflows.Entry.CrossBrandFrom).
	ViaBrandID string `gorm:"size:64;not null;default:''" json:"via_brand,omitempty"`
	// TriggerKey names what started the run: "e<event id>" or
	// "s<schedule fire time>"; "once" for a workflow a member may run
	// once, so the unique index allows one run ever.
	TriggerKey string `gorm:"size:64;not null" json:"trigger_key"`
	// EventID is the event that started the run, if one did.
	EventID *int64 `json:"event_id,omitempty"`
	State   string `gorm:"size:16;not null" json:"state"`
	// Step is the current step id and Visit how many times the run has
	// entered it.
	Step  string `gorm:"size:64;not null" json:"step"`
	Visit int    `gorm:"not null" json:"visit"`
	// WakeAt is when the current step is due to run (again); nil once
	// the run ended.
	WakeAt  *time.Time `json:"wake_at,omitempty"`
	WakeSeq int64      `gorm:"not null" json:"wake_seq"`
	// QueuedAt is when the current wake was handed to the queue; nil
	// while it waits beyond the queue's horizon.
	QueuedAt *time.Time `json:"queued_at,omitempty"`
	// WaitEvent is the event a wait_for step waits for.
	WaitEvent string     `gorm:"size:64;not null" json:"wait_event,omitempty"`
	Sent      int        `gorm:"not null" json:"sent"`
	StartedAt time.Time  `gorm:"not null" json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	EndReason string     `gorm:"size:200;not null" json:"end_reason,omitempty"`
}

// RunStep records a run entering a step (the visit-th time) and what the
// step did. Its key (run, step, visit) is also the claim that makes a step
// act once: a worker moves it from pending to running before acting.
type RunStep struct {
	RunID  int64  `gorm:"primaryKey;autoIncrement:false" json:"run_id"`
	StepID string `gorm:"primaryKey;size:64" json:"step"`
	Visit  int    `gorm:"primaryKey;autoIncrement:false" json:"visit"`
	// Seq is the run's WakeSeq when it entered the step: the order of
	// the run's steps.
	Seq     int64  `gorm:"not null" json:"seq"`
	State   string `gorm:"size:16;not null" json:"state"`
	Outcome string `gorm:"size:500;not null" json:"outcome,omitempty"`
	// Error is the last failure of the step; Failures counts them.
	Error    string `gorm:"size:1000;not null" json:"error,omitempty"`
	Failures int    `gorm:"not null" json:"failures"`
	// Attempts counts the claims of the step: its tries, including those
	// held back by send rules.
	Attempts int `gorm:"not null" json:"attempts"`
	// OutboxKey is the idempotency key of the message a send step put in
	// the outbox; what became of it is the outbox row's state.
	OutboxKey string `gorm:"size:200;not null;default:''" json:"outbox_key,omitempty"`
	// Reason says in a word why the step was skipped or failed: cap,
	// quota, consent, unreachable, no_guide, cross_brand; invalid_message,
	// invalid_recipient, refused, ... for a send the channel refused.
	Reason     string     `gorm:"size:32;not null;default:''" json:"reason,omitempty"`
	StartedAt  time.Time  `gorm:"not null" json:"started_at"`
	ClaimedAt  *time.Time `json:"claimed_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// BrandID, Workflow and RunStartedAt are the run's (none of them ever
	// changes), copied when the step is entered, so that a workflow's
	// funnel over a period counts its step visits from run_steps alone
	// on idx_run_steps_funnel (migration 0040_funnel_steps), without
	// joining every visit to its run.
	BrandID      string     `gorm:"size:64;not null;default:''" json:"-"`
	Workflow     string     `gorm:"size:100;not null;default:''" json:"-"`
	RunStartedAt *time.Time `json:"-"`
}

func endRunColumns(state, reason string, at time.Time) map[string]any {
	return map[string]any{
		"state": state, "ended_at": at, "end_reason": truncate(reason, 200),
		"wake_at": nil, "queued_at": nil, "wait_event": "", "wake_seq": gorm.Expr("wake_seq + 1"),
	}
}

// StartRuns inserts new active runs, with their first step entered (visit
// 1: waiting when the run wakes later than it starts, else pending), and
// returns those it started, with their ids. A run for a member who has an
// active run of the workflow, or one started by the same trigger, is not
// started (the unique indexes decide, so concurrent starts agree). The
// runs of one call must be for distinct members.
func (s *Store) StartRuns(ctx context.Context, runs []*WorkflowRun) ([]*WorkflowRun, error) {
	const batch = 1000 // 16 parameters a row: within SQLite's 32766
	var started []*WorkflowRun
	for len(runs) > 0 {
		n := min(batch, len(runs))
		part := runs[:n]
		runs = runs[n:]
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			got, err := startRuns(tx, part)
			started = append(started, got...)
			return err
		})
		if err != nil {
			return started, err
		}
	}
	return started, nil
}

func startRuns(tx *gorm.DB, runs []*WorkflowRun) ([]*WorkflowRun, error) {
	var sql strings.Builder
	sql.WriteString(`INSERT INTO workflow_runs (member_id, brand_id, workflow, version, via_brand_id, trigger_key, event_id, state, step, visit,
		wake_at, wake_seq, queued_at, wait_event, sent, started_at, end_reason) VALUES `)
	args := make([]any, 0, len(runs)*16)
	byMember := make(map[int64]*WorkflowRun, len(runs))
	for i, r := range runs {
		if _, dup := byMember[r.MemberID]; dup {
			return nil, fmt.Errorf("starting runs: member %d twice in one batch", r.MemberID)
		}
		byMember[r.MemberID] = r
		if i > 0 {
			sql.WriteString(",")
		}
		sql.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'')")
		r.State, r.Visit, r.StartedAt, r.WakeAt, r.QueuedAt = RunActive, 1, utc(r.StartedAt), utcPtr(r.WakeAt), utcPtr(r.QueuedAt)
		args = append(args, r.MemberID, r.BrandID, r.Workflow, r.Version, r.ViaBrandID, r.TriggerKey, r.EventID, r.State, r.Step, r.Visit,
			r.WakeAt, r.WakeSeq, r.QueuedAt, r.WaitEvent, r.Sent, r.StartedAt)
	}
	sql.WriteString(" ON CONFLICT DO NOTHING RETURNING id, member_id")
	// Rows, not Scan: gorm's Scan formats the statement with its values
	// for the logger, which costs more than the insert.
	rows, err := tx.Raw(sql.String(), args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("starting runs: %w", translate(err))
	}
	var started []*WorkflowRun
	for rows.Next() {
		var id, member int64
		if err := rows.Scan(&id, &member); err != nil {
			rows.Close()
			return nil, fmt.Errorf("starting runs: %w", translate(err))
		}
		r := byMember[member]
		r.ID = id
		started = append(started, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("starting runs: %w", translate(err))
	}
	if len(started) == 0 {
		return nil, nil
	}
	sql.Reset()
	sql.WriteString("INSERT INTO run_steps (run_id, step_id, visit, seq, state, outcome, error, failures, attempts, started_at, brand_id, workflow, run_started_at) VALUES ")
	args = args[:0]
	for i, r := range started {
		if i > 0 {
			sql.WriteString(",")
		}
		sql.WriteString("(?,?,1,?,?,'','',0,0,?,?,?,?)")
		state := StepPending
		if r.WakeAt != nil && r.WakeAt.After(r.StartedAt) {
			state = StepWaiting
		}
		args = append(args, r.ID, r.Step, r.WakeSeq, state, r.StartedAt, r.BrandID, r.Workflow, r.StartedAt)
	}
	if err := tx.Exec(sql.String(), args...).Error; err != nil {
		return nil, fmt.Errorf("entering first steps: %w", translate(err))
	}
	return started, nil
}

// Run returns a run.
func (s *Store) Run(ctx context.Context, id int64) (*WorkflowRun, error) {
	return byID[WorkflowRun](ctx, s.db, id)
}

// RunWithStep returns a run and the state of its current step visit, in
// one query: what a wake needs first.
func (s *Store) RunWithStep(ctx context.Context, id int64) (*WorkflowRun, *RunStep, error) {
	var row struct {
		WorkflowRun   `gorm:"embedded"`
		StepState     *string
		StepFailures  *int
		StepAttempts  *int
		StepOutboxKey *string
		StepClaimedAt *time.Time
	}
	err := s.db.WithContext(ctx).Raw(`SELECT r.*, s.state AS step_state, s.failures AS step_failures, s.attempts AS step_attempts,
		s.outbox_key AS step_outbox_key, s.claimed_at AS step_claimed_at
		FROM workflow_runs r LEFT JOIN run_steps s ON s.run_id = r.id AND s.step_id = r.step AND s.visit = r.visit
		WHERE r.id = ?`, id).Scan(&row).Error
	if err != nil {
		return nil, nil, translate(err)
	}
	if row.ID == 0 {
		return nil, nil, ErrNotFound
	}
	run := row.WorkflowRun
	if row.StepState == nil {
		return &run, nil, nil
	}
	rs := &RunStep{RunID: run.ID, StepID: run.Step, Visit: run.Visit, State: *row.StepState,
		Failures: *row.StepFailures, Attempts: *row.StepAttempts, ClaimedAt: row.StepClaimedAt}
	if row.StepOutboxKey != nil {
		rs.OutboxKey = *row.StepOutboxKey
	}
	return &run, rs, nil
}

// RunFilter selects runs; empty fields select all.
type RunFilter struct {
	Brand    string
	Workflow string
	Version  string
	MemberID int64
	State    string
	// AfterID pages by id.
	AfterID int64
	Limit   int
}

// Runs lists runs in id order (at most 1000).
func (s *Store) Runs(ctx context.Context, f RunFilter) ([]WorkflowRun, error) {
	q := s.db.WithContext(ctx).Order("id").Limit(Page{Limit: f.Limit}.limit())
	if f.Brand != "" {
		q = q.Where("brand_id = ?", f.Brand)
	}
	if f.Workflow != "" {
		q = q.Where("workflow = ?", f.Workflow)
	}
	if f.Version != "" {
		q = q.Where("version = ?", f.Version)
	}
	if f.MemberID != 0 {
		q = q.Where("member_id = ?", f.MemberID)
	}
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if f.AfterID != 0 {
		q = q.Where("id > ?", f.AfterID)
	}
	var out []WorkflowRun
	return out, translate(q.Find(&out).Error)
}

// ActiveRuns returns a member's active runs, of every brand when brand is
// empty.
func (s *Store) ActiveRuns(ctx context.Context, memberID int64, brand string) ([]WorkflowRun, error) {
	q := s.db.WithContext(ctx).Where("member_id = ? AND state = ?", memberID, RunActive).Order("id")
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	var out []WorkflowRun
	return out, translate(q.Find(&out).Error)
}

// RunHistory is what re-entry rules need to know of a member's runs of a
// workflow.
type RunHistory struct {
	Runs   int
	Active bool
	// LastEnded is when the member's last ended run ended; zero if none.
	LastEnded time.Time
}

// RunHistories returns, for each of the members that ever ran the
// workflow (all versions), their RunHistory.
func (s *Store) RunHistories(ctx context.Context, brand, workflow string, memberIDs []int64) (map[int64]RunHistory, error) {
	out := make(map[int64]RunHistory)
	for chunk := range slices.Chunk(memberIDs, 1000) {
		var rows []struct {
			MemberID int64
			State    string
			EndedAt  *time.Time
		}
		// The ids are inlined: a statement with a thousand parameters
		// gets a generic plan after a few runs, which PostgreSQL may make
		// a sequential scan of a table that grew since it was analysed.
		err := s.db.WithContext(ctx).Model(&WorkflowRun{}).Select("member_id, state, ended_at").
			Where("member_id IN ("+joinIDs(chunk)+") AND brand_id = ? AND workflow = ?", brand, workflow).Find(&rows).Error
		if err != nil {
			return nil, translate(err)
		}
		for _, r := range rows {
			h := out[r.MemberID]
			h.Runs++
			h.Active = h.Active || r.State == RunActive
			if r.EndedAt != nil && r.EndedAt.After(h.LastEnded) {
				h.LastEnded = *r.EndedAt
			}
			out[r.MemberID] = h
		}
	}
	return out, nil
}

// RunMove moves an active run from its current step: to the next step, or
// on the same step to a later wake, or to its end. It applies only if the
// run is still active at WakeSeq Seq, so of two workers holding the same
// wake one moves the run and the other finds it moved.
type RunMove struct {
	RunID int64
	Seq   int64
	// Step and Visit are the run's current step; StepState, Outcome and
	// Error are recorded on it (an Error counts as one of its failures).
	Step      string
	Visit     int
	StepState string
	Outcome   string
	Error     string
	// Next is the step to enter, "" to stay on Step. NextState is its
	// state on entry: pending or waiting.
	Next      string
	NextState string
	// WakeAt, QueuedAt and WaitEvent are the run's new values.
	WakeAt    *time.Time
	QueuedAt  *time.Time
	WaitEvent string
	// Sent is added to the run's count of messages sent.
	Sent int
	// OutboxKey and Reason, when set, are recorded on the step.
	OutboxKey string
	Reason    string
	// End, when set, ends the run in this state with EndReason.
	End       string
	EndReason string
	At        time.Time
}

// MoveRun applies a move; moved is false when the run is no longer active
// at m.Seq (another worker moved it, a goal ended it). On success the
// run's WakeSeq is m.Seq+1 and its visit of the step it is on is returned.
func (s *Store) MoveRun(ctx context.Context, m RunMove) (moved bool, visit int, err error) {
	at := utc(m.At)
	if s.dialect == "postgres" {
		return s.moveRunPostgres(ctx, m, at)
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		visit = m.Visit
		set := map[string]any{"wake_seq": m.Seq + 1, "sent": gorm.Expr("sent + ?", m.Sent)}
		if m.Next != "" && m.End == "" {
			var n int64
			if err := tx.Model(&RunStep{}).Where("run_id = ? AND step_id = ?", m.RunID, m.Next).Count(&n).Error; err != nil {
				return translate(err)
			}
			visit = int(n) + 1
			set["step"], set["visit"] = m.Next, visit
		}
		if m.End != "" {
			set["state"], set["ended_at"], set["end_reason"] = m.End, at, truncate(m.EndReason, 200)
			set["wake_at"], set["queued_at"], set["wait_event"] = nil, nil, ""
		} else {
			set["wake_at"], set["queued_at"], set["wait_event"] = utcPtr(m.WakeAt), utcPtr(m.QueuedAt), m.WaitEvent
		}
		res := tx.Model(&WorkflowRun{}).Where("id = ? AND state = ? AND wake_seq = ?", m.RunID, RunActive, m.Seq).Updates(set)
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return errNotMoved
		}
		stepSet := map[string]any{"state": m.StepState, "outcome": truncate(m.Outcome, 500)}
		if m.Error != "" {
			stepSet["error"], stepSet["failures"] = truncate(m.Error, 1000), gorm.Expr("failures + 1")
		}
		if m.OutboxKey != "" {
			stepSet["outbox_key"] = m.OutboxKey
		}
		if m.Reason != "" {
			stepSet["reason"] = truncate(m.Reason, 32)
		}
		if finalStep(m.StepState) {
			stepSet["finished_at"] = at
		}
		if err := tx.Model(&RunStep{}).Where("run_id = ? AND step_id = ? AND visit = ?", m.RunID, m.Step, m.Visit).
			Updates(stepSet).Error; err != nil {
			return translate(err)
		}
		if m.Next != "" && m.End == "" {
			state := m.NextState
			if state == "" {
				state = StepPending
			}
			var run WorkflowRun
			if err := tx.Select("brand_id, workflow, started_at").Where("id = ?", m.RunID).Take(&run).Error; err != nil {
				return translate(err)
			}
			return translate(tx.Create(&RunStep{RunID: m.RunID, StepID: m.Next, Visit: visit, Seq: m.Seq + 1, State: state, StartedAt: at,
				BrandID: run.BrandID, Workflow: run.Workflow, RunStartedAt: &run.StartedAt}).Error)
		}
		return nil
	})
	if errors.Is(err, errNotMoved) {
		return false, 0, nil
	}
	return err == nil, visit, err
}

var errNotMoved = errors.New("run not moved")

// openStepStates are the states of a step visit that has not ended.
var openStepStates = []string{StepPending, StepWaiting, StepRunning, StepSending}

// finalStep reports whether a step state ends the step visit.
func finalStep(state string) bool {
	return !slices.Contains(openStepStates, state)
}

// moveRunPostgres is MoveRun in one statement: the guarded update of the
// run, the update of its step and the entry of the next step as
// data-modifying CTEs, which all see the run's update or none. It saves
// the round trips of a transaction on the hot path of every wake.
func (s *Store) moveRunPostgres(ctx context.Context, m RunMove, at time.Time) (bool, int, error) {
	var b strings.Builder
	var args []any
	advance := m.Next != "" && m.End == ""
	b.WriteString("WITH ")
	if advance {
		b.WriteString("n AS (SELECT COUNT(*) + 1 AS visit FROM run_steps WHERE run_id = ? AND step_id = ?), ")
		args = append(args, m.RunID, m.Next)
	}
	b.WriteString("r AS (UPDATE workflow_runs SET wake_seq = ?, sent = sent + ?")
	args = append(args, m.Seq+1, m.Sent)
	if advance {
		b.WriteString(", step = ?, visit = (SELECT visit FROM n)")
		args = append(args, m.Next)
	}
	if m.End != "" {
		b.WriteString(", state = ?, ended_at = ?, end_reason = ?, wake_at = NULL, queued_at = NULL, wait_event = ''")
		args = append(args, m.End, at, truncate(m.EndReason, 200))
	} else {
		b.WriteString(", wake_at = ?, queued_at = ?, wait_event = ?")
		args = append(args, utcPtr(m.WakeAt), utcPtr(m.QueuedAt), m.WaitEvent)
	}
	b.WriteString(" WHERE id = ? AND state = 'active' AND wake_seq = ? RETURNING visit, brand_id, workflow, started_at), s AS (UPDATE run_steps SET state = ?, outcome = ?")
	args = append(args, m.RunID, m.Seq, m.StepState, truncate(m.Outcome, 500))
	if m.Error != "" {
		b.WriteString(", error = ?, failures = failures + 1")
		args = append(args, truncate(m.Error, 1000))
	}
	if m.OutboxKey != "" {
		b.WriteString(", outbox_key = ?")
		args = append(args, m.OutboxKey)
	}
	if m.Reason != "" {
		b.WriteString(", reason = ?")
		args = append(args, truncate(m.Reason, 32))
	}
	if finalStep(m.StepState) {
		b.WriteString(", finished_at = ?")
		args = append(args, at)
	}
	b.WriteString(" WHERE run_id = ? AND step_id = ? AND visit = ? AND EXISTS (SELECT 1 FROM r))")
	args = append(args, m.RunID, m.Step, m.Visit)
	if advance {
		state := m.NextState
		if state == "" {
			state = StepPending
		}
		b.WriteString(`, i AS (INSERT INTO run_steps (run_id, step_id, visit, seq, state, outcome, error, failures, attempts, outbox_key, reason, started_at,
				brand_id, workflow, run_started_at)
			SELECT CAST(? AS bigint), CAST(? AS text), r.visit, CAST(? AS bigint), CAST(? AS text), '', '', 0, 0, '', '', CAST(? AS timestamptz),
				r.brand_id, r.workflow, r.started_at FROM r)`)
		args = append(args, m.RunID, m.Next, m.Seq+1, state, at)
	}
	b.WriteString(" SELECT visit FROM r")
	rows, err := s.db.WithContext(ctx).Raw(b.String(), args...).Rows()
	if err != nil {
		return false, 0, translate(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return false, 0, translate(rows.Err())
	}
	var visit int
	if err := rows.Scan(&visit); err != nil {
		return false, 0, translate(err)
	}
	return true, visit, translate(rows.Close())
}

// EndRun ends an active run (a goal reached, an exit), cancelling its
// pending wake (WakeSeq is bumped, so a queued wake finds nothing to do)
// and its step. ended is false when the run was not active.
func (s *Store) EndRun(ctx context.Context, id int64, state, reason string, at time.Time) (ended bool, err error) {
	at = utc(at)
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&WorkflowRun{}).Where("id = ? AND state = ?", id, RunActive).Updates(endRunColumns(state, reason, at))
		if res.Error != nil {
			return translate(res.Error)
		}
		if ended = res.RowsAffected == 1; !ended {
			return nil
		}
		return translate(tx.Model(&RunStep{}).Where("run_id = ? AND state IN ?", id, openStepStates).
			Updates(map[string]any{"state": StepCancelled, "finished_at": at, "outcome": truncate(reason, 500)}).Error)
	})
	return ended, err
}

// UnqueueRun records that a run's wake at seq is not in the queue after
// all (handing it over failed), so the sweeper hands it over again.
func (s *Store) UnqueueRun(ctx context.Context, id, seq int64) error {
	return translate(s.db.WithContext(ctx).Model(&WorkflowRun{}).Where("id = ? AND wake_seq = ?", id, seq).
		Update("queued_at", nil).Error)
}

// ClaimRunStep claims a step visit for acting: it moves the step from
// pending to running, or takes over a claim older than staleBefore (its
// worker died). claimed is false when another worker holds it or it is
// finished.
func (s *Store) ClaimRunStep(ctx context.Context, runID int64, step string, visit int, now, staleBefore time.Time) (claimed bool, err error) {
	res := s.db.WithContext(ctx).Model(&RunStep{}).
		Where("run_id = ? AND step_id = ? AND visit = ? AND (state = ? OR (state = ? AND claimed_at < ?))",
			runID, step, visit, StepPending, StepRunning, utc(staleBefore)).
		Updates(map[string]any{"state": StepRunning, "claimed_at": utc(now), "attempts": gorm.Expr("attempts + 1")})
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// RunStep returns one step visit of a run.
func (s *Store) RunStep(ctx context.Context, runID int64, step string, visit int) (*RunStep, error) {
	var rs RunStep
	err := s.db.WithContext(ctx).Where("run_id = ? AND step_id = ? AND visit = ?", runID, step, visit).Take(&rs).Error
	if err != nil {
		return nil, translate(err)
	}
	return &rs, nil
}

// RunSteps returns a run's steps in the order it entered them.
func (s *Store) RunSteps(ctx context.Context, runID int64) ([]RunStep, error) {
	var out []RunStep
	err := s.db.WithContext(ctx).Where("run_id = ?", runID).Order("seq").Find(&out).Error
	return out, translate(err)
}

// Wake is a run's pending wake, as the sweeper hands it to the queue.
type Wake struct {
	RunID  int64
	Step   string
	Seq    int64
	WakeAt time.Time
}

// WakeQuery selects wakes for the sweeper.
type WakeQuery struct {
	// DueBefore selects wakes due before it.
	DueBefore time.Time
	// Unqueued selects wakes not yet handed to the queue; otherwise
	// those handed over before QueuedBefore (lost with their task).
	Unqueued     bool
	QueuedBefore time.Time
	Limit        int
	// Now is recorded as the time the wakes were handed over.
	Now time.Time
}

// HandWakes selects up to q.Limit wakes, earliest first, and passes them
// to hand, which queues them and returns the run ids it could not queue;
// the others are recorded as queued at q.Now. It returns how many it
// recorded. The rows stay locked while hand runs, and on PostgreSQL rows
// locked by someone else are skipped (FOR UPDATE SKIP LOCKED), so a run
// moving meanwhile is not held up. hand must not use the Store.
func (s *Store) HandWakes(ctx context.Context, q WakeQuery, hand func([]Wake) (failed []int64, err error)) (int, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	n := 0
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		sel := tx.Model(&WorkflowRun{}).Select("id, step, wake_seq, wake_at").
			Where("wake_at IS NOT NULL AND wake_at < ? AND state = ?", utc(q.DueBefore), RunActive).
			Order("wake_at").Limit(limit)
		if q.Unqueued {
			sel = sel.Where("queued_at IS NULL")
		} else {
			sel = sel.Where("queued_at < ?", utc(q.QueuedBefore))
		}
		if s.dialect == "postgres" {
			sel = sel.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate, Options: clause.LockingOptionsSkipLocked})
		}
		var rows []struct {
			ID      int64
			Step    string
			WakeSeq int64
			WakeAt  time.Time
		}
		if err := sel.Scan(&rows).Error; err != nil {
			return translate(err)
		}
		if len(rows) == 0 {
			return nil
		}
		wakes := make([]Wake, len(rows))
		for i, r := range rows {
			wakes[i] = Wake{RunID: r.ID, Step: r.Step, Seq: r.WakeSeq, WakeAt: r.WakeAt}
		}
		failed, err := hand(wakes)
		if err != nil && len(failed) == len(wakes) {
			return err
		}
		ids := make([]int64, 0, len(wakes))
		for _, w := range wakes {
			if !slices.Contains(failed, w.RunID) {
				ids = append(ids, w.RunID)
			}
		}
		if len(ids) > 0 {
			if err := tx.Model(&WorkflowRun{}).Where("id IN ?", ids).Update("queued_at", utc(q.Now)).Error; err != nil {
				return translate(err)
			}
		}
		n = len(ids)
		return nil
	})
	return n, err
}

// RunStats counts a workflow's runs (all versions) and what their steps
// did.
type RunStats struct {
	// States counts runs by state.
	States map[string]int64
	// Sent counts messages sent.
	Sent int64
	// Steps counts, per step id, the runs that reached it and how their
	// visits ended.
	Steps []StepStats
}

// StepStats counts one step's visits.
type StepStats struct {
	Step    string
	Reached int64
	Done    int64
	Skipped int64
	Failed  int64
	Waiting int64
	// Pending counts visits due, held by send rules or being retried.
	Pending int64
	// Sending counts send visits whose message waits for the channel.
	Sending int64
	// Errors counts visits that failed at least once.
	Errors   int64
	Canceled int64
}

// RunStats returns the counts of a workflow's runs.
func (s *Store) RunStats(ctx context.Context, brand, workflow string) (*RunStats, error) {
	return s.RunStatsOf(ctx, brand, workflow, FunnelFilter{})
}

// RunStatsOf returns the counts of a workflow's runs that f selects.
func (s *Store) RunStatsOf(ctx context.Context, brand, workflow string, f FunnelFilter) (*RunStats, error) {
	if from, to, ok := f.days(); ok {
		return s.runStatsCounted(ctx, brand, workflow, from, to)
	}
	return s.runStatsRecount(ctx, brand, workflow, f)
}

// runStatsRecount is RunStatsOf counted from the runs and their visits.
func (s *Store) runStatsRecount(ctx context.Context, brand, workflow string, f FunnelFilter) (*RunStats, error) {
	db := s.db.WithContext(ctx)
	st := &RunStats{States: map[string]int64{}}
	var states []struct {
		State string
		N     int64
		Sent  int64
	}
	where, args := f.where("r", brand, workflow)
	if err := db.Table("workflow_runs AS r").Select("r.state AS state, COUNT(*) AS n, COALESCE(SUM(r.sent), 0) AS sent").
		Where(where, args...).Group("r.state").Scan(&states).Error; err != nil {
		return nil, translate(err)
	}
	for _, r := range states {
		st.States[r.State] = r.N
		st.Sent += r.Sent
	}
	swhere, sargs := f.stepWhere(brand, workflow)
	err := db.Table("run_steps AS s").
		// A run's visits of a step are numbered from 1 and never deleted,
		// so its first visit counts the run once: COUNT(DISTINCT run_id)
		// without sorting every visit (at 100,000 visits the sort spilled
		// to disk).
		Select(`s.step_id AS step, SUM(CASE WHEN s.visit = 1 THEN 1 ELSE 0 END) AS reached,
			SUM(CASE WHEN s.state = 'done' THEN 1 ELSE 0 END) AS done,
			SUM(CASE WHEN s.state = 'skipped' THEN 1 ELSE 0 END) AS skipped,
			SUM(CASE WHEN s.state = 'failed' THEN 1 ELSE 0 END) AS failed,
			SUM(CASE WHEN s.state = 'waiting' THEN 1 ELSE 0 END) AS waiting,
			SUM(CASE WHEN s.state IN ('pending', 'running') THEN 1 ELSE 0 END) AS pending,
			SUM(CASE WHEN s.state = 'sending' THEN 1 ELSE 0 END) AS sending,
			SUM(CASE WHEN s.state = 'cancelled' THEN 1 ELSE 0 END) AS canceled,
			SUM(CASE WHEN s.failures > 0 THEN 1 ELSE 0 END) AS errors`).
		Where(swhere, sargs...).Group("s.step_id").Order("s.step_id").Scan(&st.Steps).Error
	if err != nil {
		return nil, translate(err)
	}
	return st, nil
}
