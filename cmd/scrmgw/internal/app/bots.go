package app

import (
	"fmt"
	"log/slog"

	"github.com/scrmgw/scrmgw/bots"
	"github.com/scrmgw/scrmgw/configs"
)

// bots builds the member and guide bots with the shipped intents.
func (a *App) bots() (bots.Bot, error) {
	intents, err := bots.LoadIntents(configs.BotIntents())
	if err != nil {
		return nil, fmt.Errorf("loading bot intents: %w", err)
	}
	d := bots.Deps{Directory: a.Store, Stores: a.assigner, Templates: a.Templates, Intents: intents}
	router := &bots.Router{Member: bots.MemberBot(d), Guide: bots.GuideBot(d)}
	return bots.Chain(router, bots.Recover(a.Log.With(slog.String("component", "bots"))), bots.Normalize()), nil
}
