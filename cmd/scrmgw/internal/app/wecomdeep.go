package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/groups"
	"github.com/scrmgw/scrmgw/gateway/links"
	"github.com/scrmgw/scrmgw/gateway/moments"
	"github.com/scrmgw/scrmgw/gateway/tags"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// wireTags keeps members' tags in step with the channels that keep tags
// of their own (WeCom corp tags): the contact handler applies guides'
// tags and tag-library changes through it, the engine's tag steps and
// the API mark tags through it.
func (a *App) wireTags() {
	a.tags = tags.New(a.Store, a.Channels, a.Log)
	a.contacts.Tags = a.tags
}

// wireGroups keeps the channels' customer groups (WeCom 客户群) from
// their change events, for the API to list and send to.
func (a *App) wireGroups() {
	a.groups = groups.New(a.Store, a.Channels, a.Log)
	a.groups.Register(a.processor)
}

// TypeGroupDeliveries asks the channels whether owners sent their group
// message tasks (groups.Keeper.CheckDeliveries), every 5 minutes.
const TypeGroupDeliveries = "groups:deliveries"

// groupCheckEvery is how long a pending group send waits between two
// checks of its task.
const groupCheckEvery = 10 * time.Minute

// checkGroupDeliveries records whether owners sent their group tasks.
func (a *App) checkGroupDeliveries(ctx context.Context, _ *asynq.Task) error {
	if a.groups == nil {
		return nil
	}
	n, err := a.groups.CheckDeliveries(ctx, groupCheckEvery)
	if n > 0 {
		a.Log.Debug("group message tasks checked", slog.Int("tasks", n))
	}
	return err
}

// engineGroups sends the messages of workflows' send_groups steps
// through the group keeper (engine.GroupMessenger).
type engineGroups struct{ k *groups.Keeper }

// SendGroups implements engine.GroupMessenger.
func (g engineGroups) SendGroups(ctx context.Context, req engine.GroupSend) (*engine.GroupSent, error) {
	res, err := g.k.SendSelected(ctx, groups.Selection{Brand: req.Brand, GuideID: req.GuideID, StoreID: req.StoreID},
		func(channel string) (*adapters.Outbound, error) { return req.Render(channel) }, req.Key)
	if res == nil {
		return nil, err
	}
	sent := &engine.GroupSent{Owners: len(res.Tasks), Taken: len(res.Taken)}
	for _, t := range res.Tasks {
		sent.Groups += len(t.ChatIDs)
	}
	return sent, err
}

// wireLinks makes contact links (WeCom acquisition links) and warns of
// their quota, and publishes moment campaigns.
func (a *App) wireLinks() {
	a.links = links.New(a.Store, a.Channels, a.Log)
	a.links.Register(a.processor)
	a.moments = moments.New(a.Store, a.Channels, a.Log)
	if a.clock != nil {
		a.moments.SetClock(a.clock)
	}
}

// TypeMomentsPoll reads the moment campaigns due from their channels
// (moments.Campaigns.Poll), every minute.
const TypeMomentsPoll = "moments:poll"

// momentsLease names the lease of the moment poll: one replica reads at
// a time (a second reading would only write the same again).
const momentsLease = "moments:poll"

// pollMoments reads the moment campaigns due under the moments lease: a
// replica that finds it held does nothing this time.
func (a *App) pollMoments(ctx context.Context, holder string) error {
	ok, err := a.Store.AcquireLease(ctx, momentsLease, holder, time.Now(), 5*time.Minute)
	if err != nil {
		return fmt.Errorf("taking the moments lease: %w", err)
	}
	if !ok {
		return nil
	}
	defer func() {
		if err := a.Store.ReleaseLease(context.WithoutCancel(ctx), momentsLease, holder); err != nil {
			a.Log.WarnContext(ctx, "releasing the moments lease", slog.Any("error", err))
		}
	}()
	n, err := a.moments.Poll(ctx)
	if n > 0 {
		a.Log.Debug("moment campaigns read", slog.Int("campaigns", n))
	}
	return err
}
