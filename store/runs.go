package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// This file holds what the workflow engine keeps: workflow versions and
// the pointer to the current one, runs and their steps, guide tasks, the
// per-member send log for frequency caps, the points ledger, member tags
// and consent, leases and schedule markers.

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

// Guide task states.
const (
	GuideTaskOpen      = "open"
	GuideTaskDone      = "done"
	GuideTaskCancelled = "cancelled"
)

// ConsentAll, as a MemberConsent channel, stands for every channel; as a
// brand, for every brand.
const ConsentAll = "*"

// WorkflowVersion is one stored version of a workflow: the YAML it was
// loaded from, by the content hash runs are pinned to.
type WorkflowVersion struct {
	ID      int64  `gorm:"primaryKey;autoIncrement" json:"-"`
	BrandID string `gorm:"size:64;not null;uniqueIndex:idx_workflow_version" json:"brand"`
	Name    string `gorm:"size:100;not null;uniqueIndex:idx_workflow_version" json:"name"`
	Version string `gorm:"size:32;not null;uniqueIndex:idx_workflow_version" json:"version"`
	Source  string `gorm:"type:text;not null" json:"-"`
	// RetiredAt is set once the version is retired: its runs ended and
	// it starts none.
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// Workflow points a brand's workflow name at its current version: the one
// new runs start on.
type Workflow struct {
	BrandID string `gorm:"primaryKey;size:64" json:"brand"`
	Name    string `gorm:"primaryKey;size:100" json:"name"`
	Version string `gorm:"size:32;not null" json:"version"`
	// Trigger is the current version's trigger event, or "schedule": it
	// lets an event find the workflows it may start without loading them
	// all.
	Trigger   string    `gorm:"column:trigger_event;size:64;not null;index" json:"trigger"`
	Enabled   bool      `gorm:"not null" json:"enabled"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

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
}

// GuideTask is a task for a guide: call a member back, confirm a message.
type GuideTask struct {
	ID int64 `gorm:"primaryKey;autoIncrement" json:"id"`
	// Key makes creating a task idempotent (a run's step and visit);
	// nil for tasks made by hand.
	Key         *string    `gorm:"column:task_key;size:200;uniqueIndex" json:"-"`
	RunID       *int64     `gorm:"index" json:"run_id,omitempty"`
	MemberID    int64      `gorm:"not null;index" json:"member_id"`
	GuideID     string     `gorm:"size:64;not null;index:idx_guide_tasks_guide" json:"guide_id"`
	BrandID     string     `gorm:"size:64;not null" json:"brand"`
	Title       string     `gorm:"size:500;not null" json:"title"`
	Note        string     `gorm:"size:2000;not null" json:"note,omitempty"`
	DueAt       time.Time  `gorm:"not null" json:"due_at"`
	State       string     `gorm:"size:16;not null;index:idx_guide_tasks_guide" json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
}

// MemberSend is one line of a member's send log: a message of a workflow
// counted against the member's frequency caps.
type MemberSend struct {
	ID       int64     `gorm:"primaryKey;autoIncrement"`
	Key      string    `gorm:"column:send_key;size:200;not null;uniqueIndex"`
	MemberID int64     `gorm:"not null;index:idx_member_sends_member"`
	BrandID  string    `gorm:"size:64;not null"`
	RunID    *int64    `gorm:"index"`
	Channel  string    `gorm:"size:32;not null"`
	SentAt   time.Time `gorm:"not null;index:idx_member_sends_member"`
}

// PointsLine is one line of the append-only points ledger. Ref is unique,
// so a line is written once however often its writer retries.
type PointsLine struct {
	ID        int64     `gorm:"primaryKey;autoIncrement" json:"id"`
	MemberID  int64     `gorm:"not null;index:idx_points_member" json:"member_id"`
	BrandID   string    `gorm:"size:64;not null;index:idx_points_member" json:"brand"`
	Delta     int64     `gorm:"not null" json:"delta"`
	Reason    string    `gorm:"size:200;not null" json:"reason"`
	Ref       string    `gorm:"size:200;not null;uniqueIndex" json:"ref"`
	CreatedAt time.Time `json:"created_at"`
}

// TableName names the ledger.
func (PointsLine) TableName() string { return "points_ledger" }

// MemberTag is a tag a brand put on a member.
type MemberTag struct {
	MemberID  int64  `gorm:"primaryKey;autoIncrement:false"`
	BrandID   string `gorm:"primaryKey;size:64;index:idx_member_tags_tag"`
	Tag       string `gorm:"primaryKey;size:64;index:idx_member_tags_tag"`
	CreatedAt time.Time
}

// MemberConsent records a member unsubscribing from a channel (or
// ConsentAll) for a brand (or ConsentAll). A nil UnsubscribedAt means
// they subscribed again.
type MemberConsent struct {
	MemberID       int64      `gorm:"primaryKey;autoIncrement:false" json:"member_id"`
	BrandID        string     `gorm:"primaryKey;size:64" json:"brand"`
	Channel        string     `gorm:"primaryKey;size:32" json:"channel"`
	UnsubscribedAt *time.Time `json:"unsubscribed_at,omitempty"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// TableName keeps the table named for the domain word.
func (MemberConsent) TableName() string { return "member_consent" }

// Lease lets one replica at a time do a job (the workflow sweeper): the
// holder owns it until ExpiresAt.
type Lease struct {
	Name      string    `gorm:"primaryKey;size:100"`
	Holder    string    `gorm:"size:100;not null"`
	ExpiresAt time.Time `gorm:"not null"`
}

// ScheduleFire marks one firing of a workflow's schedule, so that of the
// replicas running the schedules one starts its runs.
type ScheduleFire struct {
	BrandID    string    `gorm:"primaryKey;size:64"`
	Workflow   string    `gorm:"primaryKey;size:100"`
	FireAt     time.Time `gorm:"primaryKey"`
	Holder     string    `gorm:"size:100;not null"`
	ClaimedAt  time.Time `gorm:"not null"`
	FinishedAt *time.Time
	Entered    int `gorm:"not null"`
}

// workflowModels are the tables of migration 0004_workflows.
var workflowModels = []any{
	&WorkflowVersion{}, &Workflow{}, &WorkflowRun{}, &RunStep{}, &GuideTask{}, &MemberSend{},
	&PointsLine{}, &MemberTag{}, &MemberConsent{}, &Lease{}, &ScheduleFire{},
}

// workflowIndexes are the indexes gorm's tags cannot say: partial ones,
// and composite ones whose column order matters.
var workflowIndexes = []string{
	// One active run per member and workflow; also finds a member's
	// active runs when an event arrives.
	`CREATE UNIQUE INDEX idx_runs_active ON workflow_runs (member_id, brand_id, workflow) WHERE state = 'active'`,
	// One run per trigger (event or schedule firing) and member; also
	// the member's history for re-entry.
	`CREATE UNIQUE INDEX idx_runs_trigger ON workflow_runs (member_id, brand_id, workflow, trigger_key)`,
	// Wakes by time, for the sweeper: only runs that wait have one.
	`CREATE INDEX idx_runs_wake ON workflow_runs (wake_at) WHERE wake_at IS NOT NULL`,
	// Stats and retiring a version.
	`CREATE INDEX idx_runs_workflow ON workflow_runs (brand_id, workflow, state, version)`,
}

func migrateWorkflows(tx *gorm.DB) error {
	if err := tx.AutoMigrate(workflowModels...); err != nil {
		return err
	}
	for _, stmt := range workflowIndexes {
		if err := tx.Exec(stmt).Error; err != nil {
			return err
		}
	}
	return nil
}

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

// ---- Workflow versions ----

// PutWorkflowVersion stores a workflow version (once per content hash) and
// makes it the workflow's current version, the one new runs start on.
// trigger is the version's trigger event or "schedule". A workflow stored
// for the first time is disabled; an existing one keeps its Enabled flag.
// Storing a retired version again brings it back. created reports whether
// the version is new.
func (s *Store) PutWorkflowVersion(ctx context.Context, v *WorkflowVersion, trigger string) (head *Workflow, created bool, err error) {
	if err := errors.Join(ValidateID("brand", v.BrandID), requireText("name", v.Name, 100),
		requireText("version", v.Version, 32), requireText("trigger", trigger, 64)); err != nil {
		return nil, false, err
	}
	v.CreatedAt = utc(v.CreatedAt)
	if v.CreatedAt.IsZero() {
		v.CreatedAt = utc(time.Now())
	}
	head = &Workflow{}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(v)
		if res.Error != nil {
			return translate(res.Error)
		}
		created = res.RowsAffected == 1
		if !created {
			var stored WorkflowVersion
			if err := tx.Where("brand_id = ? AND name = ? AND version = ?", v.BrandID, v.Name, v.Version).Take(&stored).Error; err != nil {
				return translate(err)
			}
			if stored.RetiredAt != nil {
				if err := tx.Model(&stored).Update("retired_at", nil).Error; err != nil {
					return translate(err)
				}
				stored.RetiredAt = nil
			}
			*v = stored
		}
		err := tx.Where("brand_id = ? AND name = ?", v.BrandID, v.Name).Take(head).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			*head = Workflow{BrandID: v.BrandID, Name: v.Name, Version: v.Version, Trigger: trigger}
			return translate(tx.Create(head).Error)
		case err != nil:
			return translate(err)
		}
		head.Version, head.Trigger = v.Version, trigger
		return translate(tx.Model(head).Updates(map[string]any{"version": v.Version, "trigger_event": trigger, "updated_at": utc(time.Now())}).Error)
	})
	if err != nil {
		return nil, false, err
	}
	return head, created, nil
}

// Workflow returns a brand's workflow by name.
func (s *Store) Workflow(ctx context.Context, brand, name string) (*Workflow, error) {
	var w Workflow
	if err := s.db.WithContext(ctx).Where("brand_id = ? AND name = ?", brand, name).Take(&w).Error; err != nil {
		return nil, translate(err)
	}
	return &w, nil
}

// WorkflowFilter selects workflows. Empty fields select all.
type WorkflowFilter struct {
	Brand string
	// Trigger is an event type or "schedule".
	Trigger string
	// EnabledOnly leaves disabled workflows out.
	EnabledOnly bool
}

// Workflows lists workflows by brand and name.
func (s *Store) Workflows(ctx context.Context, f WorkflowFilter) ([]Workflow, error) {
	q := s.db.WithContext(ctx).Order("brand_id, name")
	if f.Brand != "" {
		q = q.Where("brand_id = ?", f.Brand)
	}
	if f.Trigger != "" {
		q = q.Where("trigger_event = ?", f.Trigger)
	}
	if f.EnabledOnly {
		q = q.Where("enabled = ?", true)
	}
	var out []Workflow
	return out, translate(q.Find(&out).Error)
}

// SetWorkflowEnabled enables or disables a workflow: a disabled workflow
// starts no runs; its running ones go on.
func (s *Store) SetWorkflowEnabled(ctx context.Context, brand, name string, enabled bool) error {
	res := s.db.WithContext(ctx).Model(&Workflow{}).Where("brand_id = ? AND name = ?", brand, name).
		Updates(map[string]any{"enabled": enabled, "updated_at": utc(time.Now())})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// WorkflowVersion returns one stored version.
func (s *Store) WorkflowVersion(ctx context.Context, brand, name, version string) (*WorkflowVersion, error) {
	var v WorkflowVersion
	err := s.db.WithContext(ctx).Where("brand_id = ? AND name = ? AND version = ?", brand, name, version).Take(&v).Error
	if err != nil {
		return nil, translate(err)
	}
	return &v, nil
}

// WorkflowVersions lists a workflow's versions, oldest first.
func (s *Store) WorkflowVersions(ctx context.Context, brand, name string) ([]WorkflowVersion, error) {
	var out []WorkflowVersion
	err := s.db.WithContext(ctx).Where("brand_id = ? AND name = ?", brand, name).Order("id").Find(&out).Error
	return out, translate(err)
}

// RetireWorkflowVersion retires a version: it ends the version's active
// runs as exited (cancelling their wakes, pending steps and open guide
// tasks) and returns how many it ended. Retiring the current version
// also disables the workflow, which then starts nothing until a new
// version is put.
func (s *Store) RetireWorkflowVersion(ctx context.Context, brand, name, version, reason string, at time.Time) (ended int64, err error) {
	at = utc(at)
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&WorkflowVersion{}).Where("brand_id = ? AND name = ? AND version = ?", brand, name, version).
			Update("retired_at", at)
		if res.Error != nil {
			return translate(res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		runs := tx.Model(&WorkflowRun{}).Select("id").
			Where("brand_id = ? AND workflow = ? AND state = ? AND version = ?", brand, name, RunActive, version)
		if err := tx.Model(&RunStep{}).Where("run_id IN (?) AND state IN ?", runs, openStepStates).
			Updates(map[string]any{"state": StepCancelled, "finished_at": at}).Error; err != nil {
			return translate(err)
		}
		if err := tx.Model(&GuideTask{}).Where("run_id IN (?) AND state = ?", runs, GuideTaskOpen).
			Update("state", GuideTaskCancelled).Error; err != nil {
			return translate(err)
		}
		res = tx.Model(&WorkflowRun{}).Where("brand_id = ? AND workflow = ? AND state = ? AND version = ?", brand, name, RunActive, version).
			Updates(endRunColumns(RunExited, reason, at))
		if res.Error != nil {
			return translate(res.Error)
		}
		ended = res.RowsAffected
		return translate(tx.Model(&Workflow{}).Where("brand_id = ? AND name = ? AND version = ?", brand, name, version).
			Updates(map[string]any{"enabled": false, "updated_at": at}).Error)
	})
	return ended, err
}

func endRunColumns(state, reason string, at time.Time) map[string]any {
	return map[string]any{
		"state": state, "ended_at": at, "end_reason": truncate(reason, 200),
		"wake_at": nil, "queued_at": nil, "wait_event": "", "wake_seq": gorm.Expr("wake_seq + 1"),
	}
}

// ---- Runs ----

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
	sql.WriteString("INSERT INTO run_steps (run_id, step_id, visit, seq, state, outcome, error, failures, attempts, started_at) VALUES ")
	args = args[:0]
	for i, r := range started {
		if i > 0 {
			sql.WriteString(",")
		}
		sql.WriteString("(?,?,1,?,?,'','',0,0,?)")
		state := StepPending
		if r.WakeAt != nil && r.WakeAt.After(r.StartedAt) {
			state = StepWaiting
		}
		args = append(args, r.ID, r.Step, r.WakeSeq, state, r.StartedAt)
	}
	if err := tx.Exec(sql.String(), args...).Error; err != nil {
		return nil, fmt.Errorf("entering first steps: %w", translate(err))
	}
	return started, nil
}

// Run returns a run.
func (s *Store) Run(ctx context.Context, id int64) (*WorkflowRun, error) {
	var r WorkflowRun
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return nil, translate(err)
	}
	return &r, nil
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
			return translate(tx.Create(&RunStep{RunID: m.RunID, StepID: m.Next, Visit: visit, Seq: m.Seq + 1, State: state, StartedAt: at}).Error)
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
	b.WriteString(" WHERE id = ? AND state = 'active' AND wake_seq = ? RETURNING visit), s AS (UPDATE run_steps SET state = ?, outcome = ?")
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
		b.WriteString(`, i AS (INSERT INTO run_steps (run_id, step_id, visit, seq, state, outcome, error, failures, attempts, outbox_key, reason, started_at)
			SELECT CAST(? AS bigint), CAST(? AS text), r.visit, CAST(? AS bigint), CAST(? AS text), '', '', 0, 0, '', '', CAST(? AS timestamptz) FROM r)`)
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
	db := s.db.WithContext(ctx)
	st := &RunStats{States: map[string]int64{}}
	var states []struct {
		State string
		N     int64
		Sent  int64
	}
	if err := db.Model(&WorkflowRun{}).Select("state, COUNT(*) AS n, COALESCE(SUM(sent), 0) AS sent").
		Where("brand_id = ? AND workflow = ?", brand, workflow).Group("state").Scan(&states).Error; err != nil {
		return nil, translate(err)
	}
	for _, r := range states {
		st.States[r.State] = r.N
		st.Sent += r.Sent
	}
	err := db.Table("run_steps AS s").Joins("JOIN workflow_runs AS r ON r.id = s.run_id").
		Select(`s.step_id AS step, COUNT(DISTINCT s.run_id) AS reached,
			SUM(CASE WHEN s.state = 'done' THEN 1 ELSE 0 END) AS done,
			SUM(CASE WHEN s.state = 'skipped' THEN 1 ELSE 0 END) AS skipped,
			SUM(CASE WHEN s.state = 'failed' THEN 1 ELSE 0 END) AS failed,
			SUM(CASE WHEN s.state = 'waiting' THEN 1 ELSE 0 END) AS waiting,
			SUM(CASE WHEN s.state IN ('pending', 'running') THEN 1 ELSE 0 END) AS pending,
			SUM(CASE WHEN s.state = 'sending' THEN 1 ELSE 0 END) AS sending,
			SUM(CASE WHEN s.state = 'cancelled' THEN 1 ELSE 0 END) AS canceled,
			SUM(CASE WHEN s.failures > 0 THEN 1 ELSE 0 END) AS errors`).
		Where("r.brand_id = ? AND r.workflow = ?", brand, workflow).Group("s.step_id").Order("s.step_id").Scan(&st.Steps).Error
	if err != nil {
		return nil, translate(err)
	}
	return st, nil
}

// ---- Events ----

// Event returns one event of the log.
func (s *Store) Event(ctx context.Context, id int64) (*Event, error) {
	var e Event
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&e).Error; err != nil {
		return nil, translate(err)
	}
	return &e, nil
}

// ---- Guide tasks ----

// CreateGuideTask saves a guide task. A task whose Key is already saved is
// saved once: fresh is false and t is filled from the saved row.
func (s *Store) CreateGuideTask(ctx context.Context, t *GuideTask) (fresh bool, err error) {
	if err := errors.Join(ValidateID("guide_id", t.GuideID), ValidateID("brand", t.BrandID),
		requireText("title", t.Title, 500), limitText("note", t.Note, 2000)); err != nil {
		return false, err
	}
	if t.State == "" {
		t.State = GuideTaskOpen
	}
	t.DueAt, t.CreatedAt = utc(t.DueAt), utc(t.CreatedAt)
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(t)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	if res.RowsAffected == 1 || t.Key == nil {
		return res.RowsAffected == 1, nil
	}
	return false, translate(s.db.WithContext(ctx).Where("task_key = ?", *t.Key).Take(t).Error)
}

// GuideTask returns one guide task.
func (s *Store) GuideTask(ctx context.Context, id int64) (*GuideTask, error) {
	var t GuideTask
	if err := s.db.WithContext(ctx).Where("id = ?", id).Take(&t).Error; err != nil {
		return nil, translate(err)
	}
	return &t, nil
}

// GuideTaskFilter selects guide tasks; empty fields select all.
type GuideTaskFilter struct {
	GuideID  string
	MemberID int64
	RunID    int64
	State    string
	AfterID  int64
	Limit    int
}

// GuideTasks lists guide tasks in id order (at most 1000).
func (s *Store) GuideTasks(ctx context.Context, f GuideTaskFilter) ([]GuideTask, error) {
	q := s.db.WithContext(ctx).Order("id").Limit(Page{Limit: f.Limit}.limit())
	if f.GuideID != "" {
		q = q.Where("guide_id = ?", f.GuideID)
	}
	if f.MemberID != 0 {
		q = q.Where("member_id = ?", f.MemberID)
	}
	if f.RunID != 0 {
		q = q.Where("run_id = ?", f.RunID)
	}
	if f.State != "" {
		q = q.Where("state = ?", f.State)
	}
	if f.AfterID != 0 {
		q = q.Where("id > ?", f.AfterID)
	}
	var out []GuideTask
	return out, translate(q.Find(&out).Error)
}

// CompleteGuideTask marks an open task done. completed is false when it
// was not open (done already, or cancelled); the task is returned either
// way.
func (s *Store) CompleteGuideTask(ctx context.Context, id int64, at time.Time) (t *GuideTask, completed bool, err error) {
	res := s.db.WithContext(ctx).Model(&GuideTask{}).Where("id = ? AND state = ?", id, GuideTaskOpen).
		Updates(map[string]any{"state": GuideTaskDone, "completed_at": utc(at)})
	if res.Error != nil {
		return nil, false, translate(res.Error)
	}
	t, err = s.GuideTask(ctx, id)
	if err != nil {
		return nil, false, err
	}
	return t, res.RowsAffected == 1, nil
}

// ---- Send log and caps ----

// SendReservation asks to count one message against a member's caps.
type SendReservation struct {
	// Key identifies the message; reserving it again (a retry) is
	// granted without counting it twice.
	Key      string
	MemberID int64
	BrandID  string
	RunID    int64
	Channel  string
	At       time.Time
	// PerDay and PerWeek cap the member's messages since DayStart and
	// WeekStart; 0 is no cap.
	DayStart  time.Time
	PerDay    int
	WeekStart time.Time
	PerWeek   int
}

// ReserveSend records a message in the member's send log unless a cap is
// reached: reserved is false then. Caps count the member's messages of
// every workflow and brand. Reservations of one member are serialised
// (an advisory lock on PostgreSQL; SQLite has one writer), so concurrent
// sends of two workflows cannot both take the last slot.
func (s *Store) ReserveSend(ctx context.Context, r SendReservation) (reserved bool, err error) {
	if r.Key == "" || r.MemberID == 0 {
		return false, invalid("key", "key and member are required")
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == "postgres" {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", sendLockKey^r.MemberID).Error; err != nil {
				return translate(err)
			}
		}
		var n int64
		if err := tx.Model(&MemberSend{}).Where("send_key = ?", r.Key).Count(&n).Error; err != nil {
			return translate(err)
		}
		if n > 0 {
			reserved = true
			return nil
		}
		for _, c := range []struct {
			since time.Time
			max   int
		}{{r.DayStart, r.PerDay}, {r.WeekStart, r.PerWeek}} {
			if c.max <= 0 {
				continue
			}
			if err := tx.Model(&MemberSend{}).Where("member_id = ? AND sent_at >= ?", r.MemberID, utc(c.since)).Count(&n).Error; err != nil {
				return translate(err)
			}
			if n >= int64(c.max) {
				return nil
			}
		}
		var runID *int64
		if r.RunID != 0 {
			runID = &r.RunID
		}
		reserved = true
		return translate(tx.Create(&MemberSend{Key: r.Key, MemberID: r.MemberID, BrandID: r.BrandID, RunID: runID,
			Channel: r.Channel, SentAt: utc(r.At)}).Error)
	})
	return reserved, err
}

// sendLockKey is the PostgreSQL advisory lock space of send reservations.
const sendLockKey = 0x5c7a_0002 << 32

// ReleaseSend takes a reserved message back off the send log (it will not
// be sent).
func (s *Store) ReleaseSend(ctx context.Context, key string) error {
	return translate(s.db.WithContext(ctx).Where("send_key = ?", key).Delete(&MemberSend{}).Error)
}

// MemberSends lists a member's send log since a time, oldest first.
func (s *Store) MemberSends(ctx context.Context, memberID int64, since time.Time) ([]MemberSend, error) {
	var out []MemberSend
	err := s.db.WithContext(ctx).Where("member_id = ? AND sent_at >= ?", memberID, utc(since)).Order("sent_at, id").Find(&out).Error
	return out, translate(err)
}

// ---- Points ----

// AwardPoints appends a line to the points ledger and adds it to the
// member's balance with the brand, once per Ref: fresh is false when the
// line was already written (and nothing changes).
func (s *Store) AwardPoints(ctx context.Context, l *PointsLine) (fresh bool, err error) {
	if err := errors.Join(ValidateID("brand", l.BrandID), requireText("ref", l.Ref, 200), limitText("reason", l.Reason, 200)); err != nil {
		return false, err
	}
	if l.MemberID == 0 {
		return false, invalid("member_id", "is required")
	}
	l.CreatedAt = utc(l.CreatedAt)
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(l)
		if res.Error != nil {
			return translate(res.Error)
		}
		if fresh = res.RowsAffected == 1; !fresh {
			return translate(tx.Where("ref = ?", l.Ref).Take(l).Error)
		}
		ms := Membership{MemberID: l.MemberID, BrandID: l.BrandID, Points: l.Delta}
		return translate(tx.Omit("Member", "Brand").Clauses(clause.OnConflict{
			Columns:   []clause.Column{{Name: "member_id"}, {Name: "brand_id"}},
			DoUpdates: clause.Assignments(map[string]any{"points": gorm.Expr("memberships.points + ?", l.Delta)}),
		}).Create(&ms).Error)
	})
	return fresh, err
}

// PointsLines lists a member's ledger lines with a brand, oldest first.
func (s *Store) PointsLines(ctx context.Context, memberID int64, brand string) ([]PointsLine, error) {
	var out []PointsLine
	err := s.db.WithContext(ctx).Where("member_id = ? AND brand_id = ?", memberID, brand).Order("id").Find(&out).Error
	return out, translate(err)
}

// ---- Tags and consent ----

// AddMemberTags tags a member for a brand and returns the tags that were
// new.
func (s *Store) AddMemberTags(ctx context.Context, memberID int64, brand string, tags []string, at time.Time) ([]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	var sql strings.Builder
	sql.WriteString("INSERT INTO member_tags (member_id, brand_id, tag, created_at) VALUES ")
	args := make([]any, 0, 4*len(tags))
	for i, tag := range tags {
		if err := requireText("tag", tag, 64); err != nil {
			return nil, err
		}
		if i > 0 {
			sql.WriteString(",")
		}
		sql.WriteString("(?,?,?,?)")
		args = append(args, memberID, brand, tag, utc(at))
	}
	sql.WriteString(" ON CONFLICT DO NOTHING RETURNING tag")
	rows, err := s.db.WithContext(ctx).Raw(sql.String(), args...).Rows()
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var added []string
	for rows.Next() {
		var tag string
		if err := rows.Scan(&tag); err != nil {
			return nil, translate(err)
		}
		added = append(added, tag)
	}
	return added, translate(rows.Err())
}

// RemoveMemberTags removes tags and returns those the member had.
func (s *Store) RemoveMemberTags(ctx context.Context, memberID int64, brand string, tags []string) ([]string, error) {
	var removed []string
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, tag := range tags {
			res := tx.Where("member_id = ? AND brand_id = ? AND tag = ?", memberID, brand, tag).Delete(&MemberTag{})
			if res.Error != nil {
				return translate(res.Error)
			}
			if res.RowsAffected == 1 {
				removed = append(removed, tag)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// MemberTags returns a member's tags with a brand, sorted.
func (s *Store) MemberTags(ctx context.Context, memberID int64, brand string) ([]string, error) {
	var tags []string
	err := s.db.WithContext(ctx).Model(&MemberTag{}).Where("member_id = ? AND brand_id = ?", memberID, brand).
		Order("tag").Pluck("tag", &tags).Error
	return tags, translate(err)
}

// SetConsent records a member unsubscribing from (unsubscribed true) or
// subscribing again to a channel of a brand; ConsentAll stands for every
// channel or brand.
func (s *Store) SetConsent(ctx context.Context, memberID int64, brand, channel string, unsubscribed bool, at time.Time) error {
	if memberID == 0 || brand == "" || channel == "" {
		return invalid("channel", "member, brand and channel are required")
	}
	c := MemberConsent{MemberID: memberID, BrandID: brand, Channel: channel, UpdatedAt: utc(at)}
	if unsubscribed {
		c.UnsubscribedAt = &c.UpdatedAt
	}
	return translate(s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "member_id"}, {Name: "brand_id"}, {Name: "channel"}},
		DoUpdates: clause.AssignmentColumns([]string{"unsubscribed_at", "updated_at"}),
	}).Create(&c).Error)
}

// ---- Member profiles ----

// MemberProfile is everything the workflow engine reads of a member for
// one brand: expressions, message data, channel and guide, consent.
type MemberProfile struct {
	Member Member
	// Membership is nil when the member has none with the brand.
	Membership *Membership
	Identities []MemberIdentity
	// Binding is the current binding with the brand, with its Guide and
	// Store; nil when the member has no guide.
	Binding *Binding
	Guide   *Guide
	Store   *RetailStore
	Tags    []string
	// Unsubscribed lists the channels (or ConsentAll) the member
	// unsubscribed from, for this brand or all brands.
	Unsubscribed []string
	// Purchases are the member's purchase.completed and purchase.refunded
	// events with the brand, oldest first.
	Purchases []Event
}

// Identity returns the member's id on a channel, or "".
func (p *MemberProfile) Identity(channel string) string {
	for _, id := range p.Identities {
		if id.Channel == channel {
			return id.ExternalID
		}
	}
	return ""
}

// IsUnsubscribed reports whether the member unsubscribed from a channel.
func (p *MemberProfile) IsUnsubscribed(channel string) bool {
	return slices.Contains(p.Unsubscribed, channel) || slices.Contains(p.Unsubscribed, ConsentAll)
}

// Event types the profile reads purchases from.
const (
	eventPurchaseCompleted = "purchase.completed"
	eventPurchaseRefunded  = "purchase.refunded"
)

// MemberProfile returns one member's profile for a brand.
func (s *Store) MemberProfile(ctx context.Context, brand string, id int64) (*MemberProfile, error) {
	ps, err := s.MemberProfiles(ctx, brand, []int64{id})
	if err != nil {
		return nil, err
	}
	p, ok := ps[id]
	if !ok {
		return nil, ErrNotFound
	}
	return p, nil
}

// MemberProfiles returns the profiles of members for a brand, by id, in a
// few queries per thousand members; ids not found are left out.
func (s *Store) MemberProfiles(ctx context.Context, brand string, ids []int64) (map[int64]*MemberProfile, error) {
	out := make(map[int64]*MemberProfile, len(ids))
	for chunk := range slices.Chunk(ids, 1000) {
		if err := s.memberProfiles(ctx, brand, chunk, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) memberProfiles(ctx context.Context, brand string, ids []int64, out map[int64]*MemberProfile) error {
	db := s.db.WithContext(ctx)
	var members []Member
	if err := db.Where("id IN ?", ids).Find(&members).Error; err != nil {
		return translate(err)
	}
	for _, m := range members {
		out[m.ID] = &MemberProfile{Member: m}
	}
	var memberships []Membership
	if err := db.Where("member_id IN ? AND brand_id = ?", ids, brand).Find(&memberships).Error; err != nil {
		return translate(err)
	}
	for i := range memberships {
		if p := out[memberships[i].MemberID]; p != nil {
			p.Membership = &memberships[i]
		}
	}
	var identities []MemberIdentity
	if err := db.Where("member_id IN ?", ids).Order("channel, external_id").Find(&identities).Error; err != nil {
		return translate(err)
	}
	for _, mi := range identities {
		if p := out[mi.MemberID]; p != nil {
			p.Identities = append(p.Identities, mi)
		}
	}
	var bindings []Binding
	if err := db.Where("member_id IN ? AND brand_id = ? AND ended_at IS NULL", ids, brand).Find(&bindings).Error; err != nil {
		return translate(err)
	}
	var guideIDs, storeIDs []string
	for i := range bindings {
		if p := out[bindings[i].MemberID]; p != nil {
			p.Binding = &bindings[i]
			guideIDs = append(guideIDs, bindings[i].GuideID)
			storeIDs = append(storeIDs, bindings[i].StoreID)
		}
	}
	if len(guideIDs) > 0 {
		var guides []Guide
		if err := db.Where("id IN ?", uniq(guideIDs)).Find(&guides).Error; err != nil {
			return translate(err)
		}
		var stores []RetailStore
		if err := db.Where("id IN ?", uniq(storeIDs)).Find(&stores).Error; err != nil {
			return translate(err)
		}
		for _, p := range out {
			if p.Binding == nil {
				continue
			}
			for i := range guides {
				if guides[i].ID == p.Binding.GuideID {
					p.Guide = &guides[i]
				}
			}
			for i := range stores {
				if stores[i].ID == p.Binding.StoreID {
					p.Store = &stores[i]
				}
			}
		}
	}
	var tags []MemberTag
	if err := db.Where("member_id IN ? AND brand_id = ?", ids, brand).Order("tag").Find(&tags).Error; err != nil {
		return translate(err)
	}
	for _, t := range tags {
		if p := out[t.MemberID]; p != nil {
			p.Tags = append(p.Tags, t.Tag)
		}
	}
	var consents []MemberConsent
	if err := db.Where("member_id IN ? AND brand_id IN ? AND unsubscribed_at IS NOT NULL", ids, []string{brand, ConsentAll}).
		Find(&consents).Error; err != nil {
		return translate(err)
	}
	for _, c := range consents {
		if p := out[c.MemberID]; p != nil && !slices.Contains(p.Unsubscribed, c.Channel) {
			p.Unsubscribed = append(p.Unsubscribed, c.Channel)
		}
	}
	var purchases []Event
	if err := db.Where("member_id IN ? AND brand_id = ? AND type IN ?", ids, brand, []string{eventPurchaseCompleted, eventPurchaseRefunded}).
		Order("occurred_at, id").Find(&purchases).Error; err != nil {
		return translate(err)
	}
	for _, e := range purchases {
		if p := out[*e.MemberID]; p != nil {
			p.Purchases = append(p.Purchases, e)
		}
	}
	return nil
}

// joinIDs writes ids as a comma-separated list of literals.
func joinIDs(ids []int64) string {
	b := make([]byte, 0, len(ids)*8)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(b)
}

func uniq(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// SegmentQuery selects members of a brand for a schedule trigger.
type SegmentQuery struct {
	Brand string
	// LastPurchaseFrom and LastPurchaseTo, when set, keep members whose
	// last purchase.completed with the brand was between them
	// (inclusive).
	LastPurchaseFrom, LastPurchaseTo *time.Time
	// JoinedFrom and JoinedTo, when set, keep members whose membership
	// began between them.
	JoinedFrom, JoinedTo *time.Time
	// Levels keeps members of one of these levels; empty keeps all.
	Levels []string
	// Tags keeps members with all of these tags; WithoutTags drops
	// members with any of these.
	Tags        []string
	WithoutTags []string
	// AfterID pages by member id.
	AfterID int64
	// Limit defaults to 1000, at most 10000.
	Limit int
}

// SegmentMembers returns the ids of the brand's members in a segment, in
// id order, after q.AfterID.
func (s *Store) SegmentMembers(ctx context.Context, q SegmentQuery) ([]int64, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	limit = min(limit, 10000)
	db := s.db.WithContext(ctx).Table("memberships AS m").Select("m.member_id").
		Where("m.brand_id = ? AND m.member_id > ?", q.Brand, q.AfterID).Order("m.member_id").Limit(limit)
	if len(q.Levels) > 0 {
		db = db.Where("m.level IN ?", q.Levels)
	}
	if q.JoinedFrom != nil {
		db = db.Where("m.created_at >= ?", utc(*q.JoinedFrom))
	}
	if q.JoinedTo != nil {
		db = db.Where("m.created_at <= ?", utc(*q.JoinedTo))
	}
	for _, tag := range q.Tags {
		db = db.Where("EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.member_id AND t.brand_id = m.brand_id AND t.tag = ?)", tag)
	}
	if len(q.WithoutTags) > 0 {
		db = db.Where("NOT EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.member_id AND t.brand_id = m.brand_id AND t.tag IN ?)", q.WithoutTags)
	}
	if q.LastPurchaseFrom != nil || q.LastPurchaseTo != nil {
		from, to := time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
		if q.LastPurchaseFrom != nil {
			from = utc(*q.LastPurchaseFrom)
		}
		if q.LastPurchaseTo != nil {
			to = utc(*q.LastPurchaseTo)
		}
		// member_stats keeps each member's last purchase (indexed by
		// brand and time), so this is a range scan, not a scan of the
		// event log.
		db = db.Where("EXISTS (SELECT 1 FROM member_stats ms WHERE ms.member_id = m.member_id AND ms.brand_id = m.brand_id "+
			"AND ms.last_purchase_at >= ? AND ms.last_purchase_at <= ?)", from, to)
	}
	var ids []int64
	return ids, translate(db.Scan(&ids).Error)
}

// ---- Leases and schedule markers ----

// AcquireLease takes (or renews) the named lease for holder until
// now+ttl, unless another holder has it: acquired is false then.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (acquired bool, err error) {
	now = utc(now)
	l := Lease{Name: name, Holder: holder, ExpiresAt: now.Add(ttl)}
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&l)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	res = s.db.WithContext(ctx).Model(&Lease{}).Where("name = ? AND (holder = ? OR expires_at < ?)", name, holder, now).
		Updates(map[string]any{"holder": holder, "expires_at": l.ExpiresAt})
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// ReleaseLease gives up a lease the holder has.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	return translate(s.db.WithContext(ctx).Where("name = ? AND holder = ?", name, holder).Delete(&Lease{}).Error)
}

// ClaimScheduleFire claims one firing of a workflow's schedule for holder:
// the first claim wins, and a claim that was never finished can be taken
// over once it is older than staleBefore (its replica died).
func (s *Store) ClaimScheduleFire(ctx context.Context, brand, workflow string, fireAt time.Time, holder string, now, staleBefore time.Time) (claimed bool, err error) {
	f := ScheduleFire{BrandID: brand, Workflow: workflow, FireAt: utc(fireAt), Holder: holder, ClaimedAt: utc(now)}
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&f)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	res = s.db.WithContext(ctx).Model(&ScheduleFire{}).
		Where("brand_id = ? AND workflow = ? AND fire_at = ? AND finished_at IS NULL AND claimed_at < ?", brand, workflow, f.FireAt, utc(staleBefore)).
		Updates(map[string]any{"holder": holder, "claimed_at": f.ClaimedAt})
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// FinishScheduleFire records that a firing started its runs.
func (s *Store) FinishScheduleFire(ctx context.Context, brand, workflow string, fireAt time.Time, entered int, now time.Time) error {
	return translate(s.db.WithContext(ctx).Model(&ScheduleFire{}).
		Where("brand_id = ? AND workflow = ? AND fire_at = ?", brand, workflow, utc(fireAt)).
		Updates(map[string]any{"finished_at": utc(now), "entered": entered}).Error)
}

// ScheduleFires lists a workflow's schedule firings, latest first.
func (s *Store) ScheduleFires(ctx context.Context, brand, workflow string, limit int) ([]ScheduleFire, error) {
	var out []ScheduleFire
	err := s.db.WithContext(ctx).Where("brand_id = ? AND workflow = ?", brand, workflow).Order("fire_at DESC").
		Limit(Page{Limit: limit}.limit()).Find(&out).Error
	return out, translate(err)
}
