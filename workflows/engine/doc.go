// Package engine executes workflows: it starts a run per member when a
// trigger fires, moves each run through its steps, and wakes timed steps
// through Asynq, so that every nudge reaches the right member at the right
// time, exactly once.
//
// # Execution model
//
// The run row in the database (store.WorkflowRun) is the source of truth:
// its state, current step and visit, when it wakes next (WakeAt) and a
// sequence number (WakeSeq) that every move of the run bumps. Asynq holds
// only the wakes due within Options.Horizon (an hour by default), each a
// task of type TypeWake whose TaskID derives from (run, step, sequence) and
// whose payload is the run id and sequence. A run waiting days is a row,
// not a task: the sweeper (TypeSweep, run by one replica at a time under a
// lease) hands the next horizon's wakes to Asynq in batches (FOR UPDATE
// SKIP LOCKED on PostgreSQL) and hands over again the wakes that are due
// but not done after a crash or a lost task.
//
// A wake handler acts only if the run is still active at the wake's
// sequence: a wake of a run that moved on, reached its goal or whose
// version was retired does nothing. Asynq keeps due times in whole seconds
// and forwards due tasks once a second, so a wake is handed over
// Options.Lead (1 s) ahead with its due time in the payload, and the
// handler waits for that time (holding a worker, not a database
// connection); a wake that arrives earlier than Options.MaxEarly schedules
// itself again. A wake never acts early, and acts within milliseconds of
// its time (docs/performance-workflows.md).
//
// Advancing a run executes its steps in a loop, each move committed in its
// own transaction guarded by the sequence. Steps that act (send,
// guide_task, tag, untag, award_points, webhook, assign_guide) claim their
// run_steps row (run, step, visit) before acting, and their effects are
// idempotent by the key "wf:<run>:<step>:<visit>": the outbox key of a
// send, the ref of a points line, the key of a guide task, the webhook-id
// of a webhook. A duplicated or redelivered wake therefore never acts
// twice. A step that fails transiently is retried with backoff through the
// same wake mechanism, and after Options.MaxStepAttempts, or at once for a
// permanent failure (a webhook answering 4xx, a missing secret), the run
// ends as failed with the error recorded on the step.
//
// # Events
//
// HandleEvent takes an event of the log (store.Event, already appended)
// and applies it in this order: goals (matching active runs of the member
// end as converted and their pending wakes are cancelled), wait_for steps
// waiting for it (they go on at once), then triggers (enabled workflows of
// the event's brand start a run, subject to entry rules, re-entry and one
// active run per member and workflow, enforced by the database). An event
// starts at most one run per workflow and member however often it is
// handled. Event payloads are JSON objects: "channel", "store_id", "tag"
// and "text" fill the event's fields in expressions; "order" (or, for
// purchase events, the payload itself) is the order, an events.Order:
// {"id" (or "order_id"), "total" (yuan), "items": [{"sku", "name",
// "category", "qty", "price", "cycle_days"}], "purchased_at", "store_id",
// "channel", "guide_id"}; every other scalar field is in event.attrs.
//
// # Send rules
//
// A send checks, when it is due: consent (member_consent), the channel (the
// member's WeCom identity, reached through their guide's WeCom account,
// else their DingTalk identity), quiet hours, send window and days in the
// zone of the send rules (the member's own zone, else their store's, else
// workflows.DefaultTimeZone, or as the rules' time_zone says), the
// frequency caps, counted across every workflow in the member's send log,
// and the channel's quota of messages to one member (Options.Quotas:
// WeCom's limit on group-send messages to a customer), counted per member
// in the database; a send over a cap or quota is delayed or skipped per
// when_capped, with the reason recorded on the run's step. A send held by quiet
// hours wakes at their end plus a spread within Options.SpreadWindow
// derived from the run id, so a morning's releases go out over minutes,
// never early. Webhook signing secrets are named in the YAML and read from
// the environment (SCRMGW_WEBHOOK_SECRET_<NAME>) unless
// Options.WebhookSecret says otherwise.
//
// # Send outcomes
//
// A send step puts its message in the outbox (Sender) and waits in step
// state sending until the outbox row settles: the outbound pipeline calls
// SendSettled when the channel took the message (the step is done and
// the run goes on) or refused it for good (the step fails with the
// outbox's reason, and the run fails). The news wakes the run at once;
// if it is lost (a worker stopped in between), the step looks at the
// outbox itself after Options.SendPoll, less often the longer it waits.
// Delivered closes the guide's task to confirm a message sent through
// them once WeCom reports it reached the member. Stats reads what became
// of each message from the outbox.
//
// DryRun runs a workflow for a fixture member with a virtual clock and
// returns the timeline without touching the database or sending anything.
package engine
