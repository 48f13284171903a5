package assign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/scrmgw/scrmgw/store"
)

// Transferer moves a guide's contacts to another guide on a channel
// instance (WeCom transfer_customer), so members keep talking to a
// person. Name is the instance's key, whose ids of guides and members
// the transfer uses.
type Transferer interface {
	Name() string
	TransferContacts(ctx context.Context, fromUserID, toUserID string, externalIDs []string) error
}

// Move is one member handed from a guide who left to a colleague.
type Move struct {
	MemberID int64  `json:"member_id"`
	Brand    string `json:"brand"`
	From     string `json:"from_guide_id"`
	To       string `json:"to_guide_id"`
	StoreID  string `json:"store_id"`
}

// GuideLeft deactivates a guide and hands each of their members to a
// colleague in the same store (least loaded with room), else a guide of
// the nearest store carrying the brand, else the online pool; members no
// one can take stay unassigned. On each channel instance of
// Options.Transferers the guide has an id on (their WeCom corp), the
// contacts are transferred to the new guide there. It returns the moves made; calling it again moves
// nothing twice.
func (a *Assigner) GuideLeft(ctx context.Context, guideID string) ([]Move, error) {
	g, err := a.store.Guide(ctx, guideID, "")
	if err != nil {
		return nil, err
	}
	if _, err := a.store.MarkGuideLeft(ctx, guideID); err != nil {
		return nil, fmt.Errorf("marking guide left: %w", err)
	}
	home, err := a.store.RetailStore(ctx, g.StoreID, "")
	if err != nil {
		return nil, fmt.Errorf("loading the guide's store: %w", err)
	}
	bindings, err := a.store.CurrentBindings(ctx, guideID)
	if err != nil {
		return nil, err
	}
	var moves []Move
	for _, b := range bindings {
		if err := a.store.EndBinding(ctx, b.ID); err != nil {
			return moves, fmt.Errorf("ending binding: %w", err)
		}
		nb, err := a.inherit(ctx, b, home)
		if errors.Is(err, ErrUnassigned) {
			a.log.Warn("member left unassigned after their guide left", slog.Int64("member_id", b.MemberID), slog.String("brand", b.BrandID))
			continue
		}
		if err != nil {
			return moves, err
		}
		moves = append(moves, Move{MemberID: b.MemberID, Brand: b.BrandID, From: guideID, To: nb.GuideID, StoreID: nb.StoreID})
	}
	for _, x := range a.opts.Transferers {
		if from := g.Identity(x.Name()); from != "" {
			if err := a.transfer(ctx, x, from, moves); err != nil {
				return moves, err
			}
		}
	}
	return moves, nil
}

func (a *Assigner) inherit(ctx context.Context, b store.Binding, home *store.RetailStore) (*store.Binding, error) {
	return a.inheritExcept(ctx, b.MemberID, b.BrandID, home, nil)
}

// inheritExcept binds a member whose guide left to a colleague, skipping
// the guides in exclude: the least loaded guide with room of the home
// store, else of the nearest store carrying the brand, else of the
// brand's online pool. home may be nil (the store is gone): then only
// the pool is tried.
func (a *Assigner) inheritExcept(ctx context.Context, memberID int64, brand string, home *store.RetailStore, exclude map[string]bool) (*store.Binding, error) {
	if home != nil {
		nb, err := a.bindInStoreExcept(ctx, memberID, brand, home.ID, exclude)
		if !errors.Is(err, ErrUnassigned) {
			return nb, err
		}
		for _, h := range a.index.NearestN(home.Lat, home.Lng, brand, a.opts.MaxDistanceKm, a.opts.MaxStores) {
			if h.ID == home.ID {
				continue
			}
			nb, err := a.bindInStoreExcept(ctx, memberID, brand, h.ID, exclude)
			if !errors.Is(err, ErrUnassigned) {
				return nb, err
			}
		}
	}
	if pool := a.opts.OnlinePools[brand]; pool != "" {
		return a.bindInStoreExcept(ctx, memberID, brand, pool, exclude)
	}
	return nil, ErrUnassigned
}

// bindInStoreExcept is bindInStore for an inherited member, skipping the
// guides in exclude.
func (a *Assigner) bindInStoreExcept(ctx context.Context, memberID int64, brand, storeID string, exclude map[string]bool) (*store.Binding, error) {
	guides, err := a.store.AssignableGuides(ctx, storeID)
	if err != nil {
		return nil, err
	}
	for _, g := range guides {
		if exclude[g.ID] {
			continue
		}
		b, _, err := a.store.BindWithin(ctx, &store.Binding{MemberID: memberID, BrandID: brand, GuideID: g.ID,
			StoreID: storeID, Reason: ReasonInherit})
		if errors.Is(err, store.ErrGuideFull) {
			continue
		}
		return b, err
	}
	return nil, ErrUnassigned
}

// transfer hands the contacts on x's channel instance over, grouped by
// the new guide (at most 100 per call, as WeCom takes).
func (a *Assigner) transfer(ctx context.Context, x Transferer, from string, moves []Move) error {
	channel := x.Name()
	byGuide := map[string][]string{}
	var order []string
	for _, m := range moves {
		ext, err := a.store.MemberChannelID(ctx, m.MemberID, channel)
		if err != nil {
			return err
		}
		if ext == "" {
			continue
		}
		to, err := a.store.Guide(ctx, m.To, "")
		if err != nil || to.Identity(channel) == "" {
			continue
		}
		toID := to.Identity(channel)
		if _, seen := byGuide[toID]; !seen {
			order = append(order, toID)
		}
		byGuide[toID] = append(byGuide[toID], ext)
	}
	for _, to := range order {
		ids := byGuide[to]
		for start := 0; start < len(ids); start += 100 {
			if err := x.TransferContacts(ctx, from, to, ids[start:min(start+100, len(ids))]); err != nil {
				return fmt.Errorf("transferring contacts to %s on %s: %w", to, channel, err)
			}
		}
	}
	return nil
}
