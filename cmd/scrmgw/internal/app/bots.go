package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/bots"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/assign"
	"github.com/scrmgw/scrmgw/gateway/membercode"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
)

// Task types of the bots.
const (
	// TypeHandoffSweep ends conversations handed to guides that have been
	// idle for bots.handoff_idle and tells both sides.
	TypeHandoffSweep = "bots:handoff_sweep"
	// TypeGuideDigest pushes the guides' daily digests that are due.
	TypeGuideDigest = "bots:guide_digest"
	// TypeTaskReminders queues the guide task reminders that are due.
	TypeTaskReminders = "bots:task_reminders"
)

// reminderLease names the lease of the task reminder sweep: one replica
// at a time runs it.
const reminderLease = "bots:task_reminders"

// bots builds the member and guide bots with the shipped intents, and
// returns their dependencies for the bots' periodic tasks.
func (a *App) bots() (bots.Bot, bots.Deps, error) {
	intents, err := bots.LoadIntents(configs.BotIntents())
	if err != nil {
		return nil, bots.Deps{}, fmt.Errorf("loading bot intents: %w", err)
	}
	log := a.Log.With(slog.String("component", "bots"))
	d := bots.Deps{Directory: a.Store, Stores: a.assigner, Templates: a.Templates, Intents: intents, Tasks: engineTasks{a},
		Enroll:   botEnroller{a},
		Handoffs: a.Store, Guides: a.Store, Incentives: a.Store, Reminders: a.Store, PointsZone: a.ledgerZone(), HandoffIdle: a.Config.Bots.HandoffIdle, Channels: a.Channels, Locale: a.Config.Locale, Log: log}
	codes := membercode.New(a.Store, nil)
	codes.PublicURL = a.Config.HTTP.PublicURL
	d.MemberCodes = codes
	if a.shares != nil {
		d.Shares = shareLinker{a}
	}
	router := &bots.Router{Member: bots.MemberBot(d), Guide: bots.GuideBot(d)}
	return bots.Chain(router, bots.Recover(log), bots.Normalize()), d, nil
}

// registerBotTasks registers the handlers of the bots' periodic tasks;
// replies go out through the outbox, keyed, so a task run twice (two
// replicas' schedulers, a retry) sends nothing twice.
func (a *App) registerBotTasks(mux *asynq.ServeMux, d bots.Deps) {
	mux.HandleFunc(TypeHandoffSweep, func(ctx context.Context, _ *asynq.Task) error {
		n, err := d.EndIdleHandoffs(ctx, a.messages)
		if err != nil {
			return fmt.Errorf("ending idle handoffs: %w", err)
		}
		if n > 0 {
			a.Log.Debug("idle handoffs ended", slog.Int("handoffs", n))
		}
		return nil
	})
	mux.HandleFunc(TypeGuideDigest, func(ctx context.Context, _ *asynq.Task) error {
		at, err := a.Config.Bots.DigestAt()
		if err != nil {
			return fmt.Errorf("bots.digest_time: %v: %w", err, asynq.SkipRetry)
		}
		n, err := d.SendDigests(ctx, at, a.messages)
		if err != nil {
			return fmt.Errorf("sending guide digests: %w", err)
		}
		if n > 0 {
			a.Log.Info("guide digests queued", slog.Int("guides", n))
		}
		return nil
	})
	holder := instanceName()
	mux.HandleFunc(TypeTaskReminders, func(ctx context.Context, _ *asynq.Task) error {
		return a.sendTaskReminders(ctx, d, holder)
	})
}

// sendTaskReminders queues the task reminders that are due, under the
// reminder lease: a replica that finds it held does nothing this time.
// Reminders are keyed and marked in any case, so overlapping sweeps (a
// lease that ran out) send nothing twice.
func (a *App) sendTaskReminders(ctx context.Context, d bots.Deps, holder string) error {
	ttl := max(2*a.Config.Tasks.RemindEvery, 2*time.Minute)
	ok, err := a.Store.AcquireLease(ctx, reminderLease, holder, time.Now(), ttl)
	if err != nil {
		return fmt.Errorf("taking the task reminder lease: %w", err)
	}
	if !ok {
		return nil
	}
	defer func() {
		if err := a.Store.ReleaseLease(context.WithoutCancel(ctx), reminderLease, holder); err != nil {
			a.Log.WarnContext(ctx, "releasing the task reminder lease", slog.Any("error", err))
		}
	}()
	cfg := a.Config.Tasks
	n, err := d.SendTaskReminders(ctx, bots.Reminders{Before: cfg.RemindBefore, AtDue: cfg.RemindAtDue}, a.messages)
	if n > 0 {
		a.Log.Info("task reminders queued", slog.Int("reminders", n))
	}
	if err != nil {
		return fmt.Errorf("sending task reminders: %w", err)
	}
	return nil
}

// instanceName names this process in leases: host, pid and a random part.
func instanceName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomB64(6))
}

// registerBotPeriodic schedules the bots' tasks every minute (the task
// reminders every tasks.remind_every), unique per period across replicas
// (and idempotent in any case).
func (a *App) registerBotPeriodic(s *asynq.Scheduler) error {
	for _, typ := range []string{TypeHandoffSweep, TypeGuideDigest} {
		if _, err := s.Register("@every 1m", asynq.NewTask(typ, nil),
			asynq.Queue(queue.Low), asynq.Unique(50*time.Second), asynq.MaxRetry(2)); err != nil {
			return fmt.Errorf("registering %s: %w", typ, err)
		}
	}
	every := a.Config.Tasks.RemindEvery
	if _, err := s.Register("@every "+every.String(), asynq.NewTask(TypeTaskReminders, nil),
		asynq.Queue(queue.Low), asynq.Unique(max(every*5/6, time.Second)), asynq.MaxRetry(0)); err != nil {
		return fmt.Errorf("registering %s: %w", TypeTaskReminders, err)
	}
	return nil
}

// botEnroller makes members of senders the member bot does not know yet,
// and binds those who share their location with the assigner;
// member.joined goes where
// a contact's does (guide points, then the workflow engine), which is
// wired after the bots are built.
type botEnroller struct{ a *App }

func (e botEnroller) EnsureMember(ctx context.Context, nm store.NewMember) (*store.Member, bool, error) {
	return e.a.Store.EnsureMember(ctx, nm)
}

func (e botEnroller) AssignNearest(ctx context.Context, memberID int64, brand string, lat, lng float64) (*store.Binding, error) {
	b, err := e.a.assigner.Assign(ctx, assign.Request{MemberID: memberID, Brand: brand, Lat: &lat, Lng: &lng})
	if errors.Is(err, assign.ErrUnassigned) {
		return nil, bots.ErrNoGuide
	}
	return b, err
}

func (e botEnroller) JoinedEvent(ctx context.Context, source, sourceID string) (*store.Event, error) {
	return e.a.Store.EventBySource(ctx, source, sourceID)
}

func (e botEnroller) Joined(ctx context.Context, ev *store.Event) error {
	if _, err := e.a.Store.AppendEvent(ctx, ev); err != nil {
		return err
	}
	if f := e.a.contacts.OnLogged; f != nil {
		return f(ctx, ev)
	}
	return nil
}

// engineTasks completes guide tasks through the engine, which a bot is
// built before.
type engineTasks struct{ a *App }

func (t engineTasks) CompleteGuideTask(ctx context.Context, id int64) (*store.GuideTask, bool, error) {
	return t.a.completeTask(ctx, id)
}
