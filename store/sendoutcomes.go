package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// A send step of a workflow puts its message in the outbox and waits (step
// state sending, the message's key in RunStep.OutboxKey) until the outbox
// row settles: sent when the channel accepted it, failed when it will not
// be sent. What became of the message is the outbox row's, so the stats
// of a workflow read it from there (SendStats).

// FailureOutcomeUnknown is the Failure of a message whose worker stopped
// mid-send and whose channel cannot tell whether it went out.
const FailureOutcomeUnknown = "outcome_unknown"

// OutboxByKey returns the outbox row of an idempotency key.
func (s *Store) OutboxByKey(ctx context.Context, key string) (*OutboxMessage, error) {
	var m OutboxMessage
	if err := s.db.WithContext(ctx).Where("idempotency_key = ?", key).Take(&m).Error; err != nil {
		return nil, translate(err)
	}
	return &m, nil
}

// WakeRunNow makes an active run's wake at seq due at at and records it
// as handed to the queue at at (the caller queues it; if that fails it
// calls UnqueueRun and the sweeper hands it over). woken is false when the
// run moved on or ended.
func (s *Store) WakeRunNow(ctx context.Context, id, seq int64, at time.Time) (woken bool, err error) {
	at = utc(at)
	res := s.db.WithContext(ctx).Model(&WorkflowRun{}).Where("id = ? AND state = ? AND wake_seq = ?", id, RunActive, seq).
		Updates(map[string]any{"wake_at": at, "queued_at": at})
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// CompleteGuideTaskByKey marks the open task of a key done. completed is
// false when there is no such task or it was not open.
func (s *Store) CompleteGuideTaskByKey(ctx context.Context, key string, at time.Time) (completed bool, err error) {
	res := s.db.WithContext(ctx).Model(&GuideTask{}).Where("task_key = ? AND state = ?", key, GuideTaskOpen).
		Updates(map[string]any{"state": GuideTaskDone, "completed_at": utc(at)})
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// CancelGuideTaskByKey cancels the open guide task of key; cancelled is
// false when there is none open (done, cancelled, or never made).
func (s *Store) CancelGuideTaskByKey(ctx context.Context, key string) (cancelled bool, err error) {
	res := s.db.WithContext(ctx).Model(&GuideTask{}).Where("task_key = ? AND state = ?", key, GuideTaskOpen).
		Update("state", GuideTaskCancelled)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// SendStat counts the step visits of a workflow that ended alike: one
// step, its state and reason, and the state of its outbox message (empty
// for a visit that put none in the outbox).
type SendStat struct {
	Step   string
	State  string
	Reason string
	// OutboxState is the message's state; Delivery and Failure its
	// delivery and failure.
	OutboxState string
	Delivery    string
	Failure     string
	N           int64
}

// SendStats returns, for a workflow's runs (all versions), the visits
// that sent (or tried to send) a message, by the state of the message,
// and the visits that were skipped or failed, by reason.
func (s *Store) SendStats(ctx context.Context, brand, workflow string) ([]SendStat, error) {
	return s.SendStatsOf(ctx, brand, workflow, FunnelFilter{})
}

// SendStatsOf is SendStats of the runs f selects.
func (s *Store) SendStatsOf(ctx context.Context, brand, workflow string, f FunnelFilter) ([]SendStat, error) {
	if from, to, ok := f.days(); ok {
		return s.sendStatsCounted(ctx, brand, workflow, from, to)
	}
	return s.sendStatsRecount(ctx, brand, workflow, f)
}

// sendStatsRecount is SendStatsOf counted from the visits and their
// messages.
func (s *Store) sendStatsRecount(ctx context.Context, brand, workflow string, f FunnelFilter) ([]SendStat, error) {
	var out []SendStat
	where, args := f.stepWhere(brand, workflow)
	err := s.db.WithContext(ctx).Raw(`SELECT s.step_id AS step, s.state AS state, s.reason AS reason,
			COALESCE(o.state, '') AS outbox_state, COALESCE(o.delivery, '') AS delivery, COALESCE(o.failure, '') AS failure,
			COUNT(*) AS n
		FROM run_steps s
		LEFT JOIN outbox_messages o ON s.outbox_key <> '' AND o.idempotency_key = s.outbox_key
		WHERE `+where+` AND (s.outbox_key <> '' OR s.state IN (?, ?))
		GROUP BY s.step_id, s.state, s.reason, o.state, o.delivery, o.failure
		ORDER BY s.step_id`, append(args, StepSkipped, StepFailed)...).Scan(&out).Error
	return out, translate(err)
}

// migrateSendOutcomes adds what migration 0015_send_outcomes adds: the
// outbox key and reason of a step visit, and the failure of an outbox
// message. Earlier migrations create the tables from today's models, so
// a column may be there already.
func migrateSendOutcomes(tx *gorm.DB) error {
	for _, c := range []struct {
		model any
		field string
	}{
		{&RunStep{}, "OutboxKey"},
		{&RunStep{}, "Reason"},
		{&OutboxMessage{}, "Failure"},
	} {
		if tx.Migrator().HasColumn(c.model, c.field) {
			continue
		}
		if err := tx.Migrator().AddColumn(c.model, c.field); err != nil {
			return err
		}
	}
	return nil
}
