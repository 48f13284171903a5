package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/gateway/sharelink"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
)

// TypeLiveInvite announces a live session to its audience (the
// live.scheduled of each member bound to the session's store).
const TypeLiveInvite = "live:invite"

// shareSigner returns the signer of guides' share links, keyed from
// security.phone_key (a key derived for share links alone).
func (a *App) shareSigner() (*sharelink.Signer, error) {
	key, err := configs.DecodeKey(a.Config.Security.PhoneKey)
	if err != nil {
		return nil, fmt.Errorf("security.phone_key: %w", err)
	}
	return sharelink.New(key), nil
}

// checkShareToken is the event schema's check of data.share_token: a
// token that does not verify is refused at the door (400, the field
// named); an expired one passes (the order may have been placed before
// it expired: the ingester decides by the order's time).
func checkShareToken(s *sharelink.Signer) func(string) error {
	return func(tok string) error {
		_, err := s.Verify(tok, time.Now())
		if err == nil || errors.Is(err, sharelink.ErrExpired) {
			return nil
		}
		return errors.New("the share link token does not verify (altered, or not made by this gateway)")
	}
}

// liveScheduler records live sessions and queues their announcement.
type liveScheduler struct{ a *App }

// ScheduleLive implements api.LiveScheduler.
func (l liveScheduler) ScheduleLive(ctx context.Context, s *store.LiveSession) (bool, error) {
	fresh, err := l.a.Store.CreateLiveSession(ctx, s)
	if err != nil {
		return false, err
	}
	l.announce(ctx, s)
	return fresh, nil
}

// EditLive implements api.LiveScheduler.
func (l liveScheduler) EditLive(ctx context.Context, brand, id string, e store.LiveEdit) (*store.LiveSession, error) {
	s, err := l.a.Store.UpdateLiveSession(ctx, brand, id, e, time.Now())
	if err != nil {
		return nil, err
	}
	l.announce(ctx, s)
	return s, nil
}

// CancelLive implements api.LiveScheduler.
func (l liveScheduler) CancelLive(ctx context.Context, brand, id string) (*store.LiveSession, bool, error) {
	s, fresh, err := l.a.Store.CancelLiveSession(ctx, brand, id, time.Now())
	if err != nil {
		return nil, false, err
	}
	l.announce(ctx, s)
	return s, fresh, nil
}

// announce queues the announcement of a session not yet announced to
// everyone (a task running for it goes on with the new revision).
func (l liveScheduler) announce(ctx context.Context, s *store.LiveSession) {
	if s.InvitedAt != nil {
		return
	}
	if err := queue.EnqueueID(ctx, l.a.Queue, TypeLiveInvite, s.ID, queue.Default); err != nil {
		// The sweep queues it again.
		l.a.Log.WarnContext(ctx, "queueing a live session's announcement failed; the sweep will", "live", s.Key, "error", err)
	}
}

func (a *App) registerLive(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeLiveInvite, func(ctx context.Context, t *asynq.Task) error {
		var p queue.IDPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ID == 0 {
			return fmt.Errorf("bad %s payload: %w", TypeLiveInvite, asynq.SkipRetry)
		}
		return a.commerce.Invite(ctx, p.ID)
	})
}

// sweepLive queues again the announcements of sessions not finished
// (their task lost, or their worker gone), and announces upcoming
// sessions to the members bound to their store since.
func (a *App) sweepLive(ctx context.Context) error {
	if a.commerce != nil {
		if _, err := a.commerce.InviteLate(ctx); err != nil {
			a.Log.WarnContext(ctx, "announcing live sessions to members bound since failed; the next sweep goes on", "error", err)
		}
	}
	ls, err := a.Store.LiveSessionsToInvite(ctx, time.Now().Add(-sweepAge), 100)
	if err != nil {
		return fmt.Errorf("listing live sessions to announce: %w", err)
	}
	var errs []error
	for _, l := range ls {
		errs = append(errs, queue.EnqueueID(ctx, a.Queue, TypeLiveInvite, l.ID, queue.Default))
	}
	return errors.Join(errs...)
}

// shareLinker makes guides' share links for the guide bot.
type shareLinker struct{ a *App }

// ShareLink implements bots.ShareLinker.
func (l shareLinker) ShareLink(ctx context.Context, g *store.Guide, brand, sku string) (templates.Share, error) {
	sh, err := l.a.shares.Share(ctx, l.a.Store, sharelink.Request{Brand: brand, Guide: g.ID, Store: g.StoreID, SKU: sku}, time.Now().Truncate(time.Second))
	var fe *store.FieldError
	if errors.As(err, &fe) && fe.Field == "url" {
		// The store carries it, the shop has no page for it.
		it, ierr := l.a.Store.StoreItem(ctx, g.StoreID, brand, sku)
		if ierr == nil {
			return templates.Share{SKU: sku, Product: it.Name}, err
		}
	}
	if err != nil {
		return templates.Share{}, err
	}
	out := templates.Share{SKU: sku, URL: sh.URL, ExpiresAt: sh.Link.Expires()}
	if it := sh.Item; it != nil {
		out.Product, out.Price, out.InStock = it.Name, templates.Money(it.PriceCents), it.InStock
	}
	return out, nil
}
