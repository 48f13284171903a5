package app

import (
	"context"
	"fmt"
	"time"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/ledger"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// wireGuidePoints loads the guide points rules (ledger.guide_points, else
// the built-in file) and builds the awarder that the event hooks and task
// completions feed.
func (a *App) wireGuidePoints() error {
	_, loc, err := a.ledgerRules()
	if err != nil {
		return err
	}
	var rules *ledger.PointsRules
	if a.Config.Ledger.GuidePoints != "" {
		rules, err = ledger.LoadPointsRules(nil, a.Config.Ledger.GuidePoints)
	} else {
		fsys, name := configs.GuidePointsRules()
		rules, err = ledger.LoadPointsRules(fsys, name)
	}
	if err != nil {
		return fmt.Errorf("ledger.guide_points: %w", err)
	}
	a.guidePoints = ledger.NewGuidePoints(a.Store, rules, loc, a.Log)
	return nil
}

// completeTask completes a guide task through the engine and awards its
// points.
func (a *App) completeTask(ctx context.Context, id int64) (*store.GuideTask, bool, error) {
	if a.guidePoints == nil {
		return a.engine.CompleteGuideTask(ctx, id)
	}
	return a.guidePoints.Tasks(a.engine).CompleteGuideTask(ctx, id)
}

// pointsWorkflows is the engine for the API, with task completions that
// award guide points.
type pointsWorkflows struct {
	*engine.Engine
	a *App
}

func (w pointsWorkflows) CompleteGuideTask(ctx context.Context, id int64) (*store.GuideTask, bool, error) {
	return w.a.completeTask(ctx, id)
}

// apiWorkflows is what the API manages workflows and tasks through; nil
// when the engine is not running in this process.
func (a *App) apiWorkflows() api.Workflows {
	if a.engine == nil {
		return nil
	}
	return pointsWorkflows{a.engine, a}
}

// ledgerZone is ledger.time_zone (validated with the configuration), or
// UTC.
func (a *App) ledgerZone() *time.Location {
	if a.guidePoints != nil {
		return a.guidePoints.Location
	}
	loc, err := time.LoadLocation(a.Config.Ledger.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}
