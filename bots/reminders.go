package bots

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
)

// Template ids of guide task reminders.
const (
	TemplateTaskDueSoon = "bot_task_due_soon"
	TemplateTaskDue     = "bot_task_due"
)

// TaskReminderStore finds and settles guide task reminders; *store.Store
// is one.
type TaskReminderStore interface {
	TasksToRemind(ctx context.Context, q store.ReminderQuery) ([]store.GuideTask, error)
	MarkTaskReminded(ctx context.Context, id int64, kind string, at time.Time) (bool, error)
}

// Reminders says which reminders guides get of their tasks.
type Reminders struct {
	// Before reminds this long before a task is due; 0 does not.
	Before time.Duration
	// AtDue reminds when a task is due.
	AtDue bool
}

// reminderBatch is how many tasks one query of the sweep reads.
const reminderBatch = 200

// SendTaskReminders queues the reminders of open guide tasks that are
// due: Before ahead of a task's due time and at it (AtDue), each pushed to
// the next opening of the guide's store when it falls outside its opening
// hours (in the store's time zone). A task already due gets its at-due
// reminder only; a guide who left or is on no configured channel gets
// none (the reminder is settled unsent); a task done or cancelled gets
// none. Each reminder is queued once: keyed in the outbox by task and
// kind, and marked on the task, so sweeps that overlap or run again send
// nothing twice. A task it cannot remind of is logged and left for the
// next sweep while the others go on; the first such error is returned
// with how many reminders it queued.
func (d Deps) SendTaskReminders(ctx context.Context, r Reminders, out Outbox) (int, error) {
	if d.Reminders == nil || r.Before <= 0 && !r.AtDue {
		return 0, nil
	}
	now := d.now()
	places := map[string]place{}
	n := 0
	var after int64
	var first error
	for {
		tasks, err := d.Reminders.TasksToRemind(ctx, store.ReminderQuery{Now: now, Before: r.Before, AtDue: r.AtDue, AfterID: after, Limit: reminderBatch})
		if err != nil {
			return n, errors.Join(fmt.Errorf("listing tasks to remind: %w", err), first)
		}
		for i := range tasks {
			if err := ctx.Err(); err != nil {
				return n, errors.Join(err, first)
			}
			sent, err := d.remind(ctx, &tasks[i], r, now, places, out)
			if err != nil {
				// One task's trouble holds back no other's reminder;
				// it is tried again on the next sweep.
				d.log().WarnContext(ctx, "task reminder failed", slog.Int64("task_id", tasks[i].ID), slog.Any("error", err))
				if first == nil {
					first = fmt.Errorf("reminding of task %d: %w", tasks[i].ID, err)
				}
				continue
			}
			if sent {
				n++
			}
		}
		if len(tasks) < reminderBatch {
			return n, first
		}
		after = tasks[len(tasks)-1].ID
	}
}

// place is where a guide works: their store's zone and hours.
type place struct {
	loc   *time.Location
	hours Hours
}

func (d Deps) placeOf(ctx context.Context, storeID string, places map[string]place) place {
	if p, ok := places[storeID]; ok {
		return p
	}
	p := place{loc: zoneOf("")}
	if rs, err := d.Directory.RetailStore(ctx, storeID, ""); err == nil {
		p = place{loc: zoneOf(rs.TimeZone), hours: ParseHours(rs.OpeningHours)}
	}
	places[storeID] = p
	return p
}

// remind decides, sends and settles the reminder of one task that may be
// due.
func (d Deps) remind(ctx context.Context, t *store.GuideTask, r Reminders, now time.Time, places map[string]place, out Outbox) (bool, error) {
	g, err := d.Directory.Guide(ctx, t.GuideID, "")
	if errors.Is(err, store.ErrNotFound) {
		return false, d.settle(ctx, t, store.ReminderDue, now)
	}
	if err != nil {
		return false, err
	}
	p := d.placeOf(ctx, g.StoreID, places)
	kind := store.ReminderBefore
	if !now.Before(t.DueAt) {
		if !r.AtDue {
			return false, d.settle(ctx, t, store.ReminderDue, now)
		}
		if now.Before(p.hours.Next(t.DueAt.In(p.loc))) {
			return false, nil // the store is closed: at its opening
		}
		kind = store.ReminderDue
	} else if t.BeforeRemindedAt != nil || r.Before <= 0 || now.Before(p.hours.Next(t.DueAt.Add(-r.Before).In(p.loc))) {
		return false, nil
	}
	channel, addr := d.guideAddress(g, "")
	if channel == "" || !g.Active {
		return false, d.settle(ctx, t, kind, now) // no channel reaches the guide, or they left
	}
	// The guide may have completed it since it was listed.
	cur, err := d.Directory.GuideTask(ctx, t.ID)
	if errors.Is(err, store.ErrNotFound) || err == nil && cur.State != store.GuideTaskOpen {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	data := &templates.Data{Guide: templates.Guide{Name: g.Name}, TimeZone: p.loc.String()}
	task := templates.Task{ID: t.ID, Title: t.Title, Due: t.DueAt, Overdue: kind == store.ReminderDue && now.After(t.DueAt)}
	if v, err := d.Directory.Member(ctx, t.MemberID, ""); err == nil {
		task.Member = v.NameFor(t.BrandID)
	}
	data.Tasks = []templates.Task{task}
	id := TemplateTaskDueSoon
	if kind == store.ReminderDue {
		id = TemplateTaskDue
	}
	reply, err := d.renderTo(id, d.guideLocale(), &Recipient{Channel: channel, ID: addr, Party: adapters.PartyGuide, GuideID: g.ID, Brand: t.BrandID}, data)
	if err != nil {
		return false, err
	}
	reply.Key = ReminderKey(t.ID, kind)
	if err := out.Queue(ctx, reply); err != nil {
		return false, err
	}
	d.log().DebugContext(ctx, "task reminder queued", slog.Int64("task_id", t.ID), slog.String("guide_id", g.ID), slog.String("kind", kind))
	return true, d.settle(ctx, t, kind, now)
}

func (d Deps) settle(ctx context.Context, t *store.GuideTask, kind string, now time.Time) error {
	if _, err := d.Reminders.MarkTaskReminded(ctx, t.ID, kind, now); err != nil {
		return fmt.Errorf("marking the %s reminder: %w", kind, err)
	}
	return nil
}

// ReminderKey is the outbox key of a task's reminder of a kind
// (store.ReminderBefore or store.ReminderDue): one message per task and
// kind, however often it is queued.
func ReminderKey(taskID int64, kind string) string {
	return "task-reminder:" + strconv.FormatInt(taskID, 10) + ":" + kind
}
