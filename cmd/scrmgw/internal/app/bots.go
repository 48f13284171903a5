package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/scrmgw/scrmgw/bots"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
)

// bots builds the member and guide bots with the shipped intents.
func (a *App) bots() (bots.Bot, error) {
	intents, err := bots.LoadIntents(configs.BotIntents())
	if err != nil {
		return nil, fmt.Errorf("loading bot intents: %w", err)
	}
	d := bots.Deps{Directory: a.Store, Stores: a.assigner, Templates: a.Templates, Intents: intents, Tasks: engineTasks{a}}
	router := &bots.Router{Member: bots.MemberBot(d), Guide: bots.GuideBot(d)}
	return bots.Chain(router, bots.Recover(a.Log.With(slog.String("component", "bots"))), bots.Normalize()), nil
}

// engineTasks completes guide tasks through the engine, which a bot is
// built before.
type engineTasks struct{ a *App }

func (t engineTasks) CompleteGuideTask(ctx context.Context, id int64) (*store.GuideTask, bool, error) {
	return t.a.engine.CompleteGuideTask(ctx, id)
}
