package assign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
)

// Departures hands the members of a guide who left the organisation (a
// DingTalk user_leave_org, a WeCom delete_user) to colleagues.
type Departures struct {
	Store    *store.Store
	Assigner *Assigner
	// Handovers, when set, takes the guides of the channel instances it
	// handles (each WeCom corp): their customers go through durable
	// handovers on the instance that reported the departure (WeCom's
	// 离职继承: the guide is gone, so the transfer for serving employees
	// cannot be used).
	Handovers *Handovers
	Log       *slog.Logger
}

// GuideLeft handles a guide.left delivery.
func (d *Departures) GuideLeft(ctx context.Context, in *adapters.Inbound) error {
	g, err := d.Store.GuideByChannelID(ctx, in.Channel, in.Attrs["user_id"])
	if errors.Is(err, store.ErrNotFound) {
		return nil // not one of our guides
	}
	if err != nil {
		return err
	}
	if d.Handovers != nil && d.Handovers.Handles(in.Channel) {
		if _, err := d.Handovers.Start(ctx, in.Channel, g.ID, in.DedupKey); err != nil {
			return fmt.Errorf("handing over the members of guide %s: %w", g.ID, err)
		}
		return nil
	}
	moves, err := d.Assigner.GuideLeft(ctx, g.ID)
	if err != nil {
		return fmt.Errorf("reassigning members of guide %s: %w", g.ID, err)
	}
	d.Log.Info("guide left; members reassigned", slog.String("guide_id", g.ID), slog.Int("members", len(moves)))
	return nil
}
