package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/bots"
	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/assign"
	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/pipeline"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
)

// Task types of the bots.
const (
	// TypeHandoffSweep ends conversations handed to guides that have been
	// idle for bots.handoff_idle and tells both sides.
	TypeHandoffSweep = "bots:handoff_sweep"
	// TypeGuideDigest pushes the guides' daily digests that are due.
	TypeGuideDigest = "bots:guide_digest"
)

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
		Handoffs: a.Store, Guides: a.Store, Incentives: a.Store, PointsZone: a.ledgerZone(), HandoffIdle: a.Config.Bots.HandoffIdle, Channels: a.Channels.Names(), Locale: a.Config.Locale, Log: log}
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
}

// registerBotPeriodic schedules the bots' tasks every minute, unique per
// period across replicas (and idempotent in any case).
func (a *App) registerBotPeriodic(s *asynq.Scheduler) error {
	for _, typ := range []string{TypeHandoffSweep, TypeGuideDigest} {
		if _, err := s.Register("@every 1m", asynq.NewTask(typ, nil),
			asynq.Queue(pipeline.QueueLow), asynq.Unique(50*time.Second), asynq.MaxRetry(2)); err != nil {
			return fmt.Errorf("registering %s: %w", typ, err)
		}
	}
	return nil
}

// botEnroller makes members of senders who share their location with the
// member bot, and binds them with the assigner; member.joined goes where
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
