package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/store"
)

// Commerce turns the brand's signed CloudEvents (purchases, sign-ups,
// visits) into the event log, resolving each event's member by phone, CRM
// id or member id; a member first seen in a sign-up or purchase is
// created. Events are keyed by their source and id, so a redelivered
// event is logged once.
type Commerce struct {
	store *store.Store
	// OnLogged, when set, is handed each logged event (the workflow
	// engine); it must be idempotent.
	OnLogged func(ctx context.Context, e *store.Event) error
}

// NewCommerce returns the commerce-event handler.
func NewCommerce(s *store.Store) *Commerce { return &Commerce{store: s} }

// Register routes the webhook channel's events to c.
func (c *Commerce) Register(p *Processor) {
	p.On(func(in *adapters.Inbound) bool {
		return in.Channel == webhook.ChannelName && in.Kind == "event" && slices.Contains(webhook.EventTypes, in.Event)
	}, HandlerFunc(c.handle))
}

func (c *Commerce) handle(ctx context.Context, in *adapters.Inbound) error {
	var data struct {
		Member webhook.MemberRef `json:"member"`
	}
	if err := json.Unmarshal([]byte(in.Attrs["data"]), &data); err != nil {
		return fmt.Errorf("event data: %v: %w", err, store.ErrInvalid)
	}
	memberID, err := c.member(ctx, in.Brand, data.Member)
	if err != nil {
		return err
	}
	e := &store.Event{Type: in.Event, BrandID: in.Brand, MemberID: &memberID, Source: in.Attrs["source"], SourceID: in.Attrs["id"],
		Payload: in.Attrs["data"], OccurredAt: in.At}
	if _, err := c.store.AppendEvent(ctx, e); err != nil {
		return fmt.Errorf("logging %s: %w", in.Event, err)
	}
	if c.OnLogged != nil {
		// Also for an event logged before: a retry after a crash
		// between the two must still reach the engine (it is
		// idempotent).
		return c.OnLogged(ctx, e)
	}
	return nil
}

func (c *Commerce) member(ctx context.Context, brand string, ref webhook.MemberRef) (int64, error) {
	if ref.MemberID != 0 {
		v, err := c.store.Member(ctx, ref.MemberID, "")
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return 0, fmt.Errorf("member %s: %w", strconv.FormatInt(ref.MemberID, 10), store.ErrInvalid)
			}
			return 0, err
		}
		return v.ID, nil
	}
	nm := store.NewMember{Phone: ref.Phone, BrandID: brand}
	if ref.CRMID != "" {
		nm.Identities = []store.Identity{{Channel: "crm:" + brand, ExternalID: ref.CRMID}}
	}
	m, _, err := c.store.EnsureMember(ctx, nm)
	if err != nil {
		return 0, fmt.Errorf("resolving member: %w", err)
	}
	return m.ID, nil
}
