package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/gateway/outbox"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/gateway/tags"
	"github.com/scrmgw/scrmgw/store"
)

// Contact-way states name a store or a guide: "s:<store id>" for a store's
// QR code, "g:<guide id>" for a guide's.
const (
	StatePrefixStore = "s:"
	StatePrefixGuide = "g:"
)

// WelcomeData is what a welcome message is rendered from.
type WelcomeData struct {
	Brand       string
	MemberName  string
	GuideName   string
	StoreName   string
	StoreAddr   string
	OpeningHour string
}

// Welcomer renders the welcome message for a channel.
type Welcomer interface {
	Welcome(ctx context.Context, channel string, d WelcomeData) (*adapters.Outbound, error)
}

// Contacts turns contact events into members, bindings, events and
// welcome messages. Every write is keyed by the delivery, so handling a
// delivery twice changes nothing the second time.
type Contacts struct {
	// OnLogged, when set, is handed every event logged (the workflow
	// engine); it must be idempotent, as a retried delivery hands it the
	// same event again.
	OnLogged func(ctx context.Context, e *store.Event) error
	// AssignInStore, when set, binds a member to a guide of a store
	// with room (the assigner): a contact whose state names a store but
	// who added none of its guides (a channel without guides, such as
	// an Official Account's store QR code) is bound by it. No binding
	// and no error: no guide has room, and they stay unbound.
	AssignInStore func(ctx context.Context, memberID int64, brand, storeID string) (*store.Binding, error)
	// AssignNearest, when set, binds a member to a guide of the nearest
	// store carrying the brand with room: a member without a guide whose
	// channel reports where they are (location.reported) is bound by it,
	// as sharing a location with the bot does. No binding and no error:
	// no guide near enough has room.
	AssignNearest func(ctx context.Context, memberID int64, brand string, lat, lng float64) (*store.Binding, error)
	// Tags, when set, keeps members' tags in step with the tags guides
	// put on contacts and the channels' tag libraries (tags.go).
	Tags *tags.Syncer

	store    *store.Store
	channels *adapters.Registry
	sender   *outbox.Sender
	welcomer Welcomer
	log      *slog.Logger
}

// NewContacts returns the contact-event handler.
func NewContacts(s *store.Store, channels *adapters.Registry, sender *outbox.Sender, w Welcomer, log *slog.Logger) *Contacts {
	return &Contacts{store: s, channels: channels, sender: sender, welcomer: w, log: log}
}

// Register routes contact events to c.
func (c *Contacts) Register(p *Processor) {
	// A new contact's member write records their touch (NewMember.InboundAt).
	p.On(OnEvent(EventContactAdded), Touching(HandlerFunc(c.added)))
	p.On(OnEvent(EventContactRemoved), HandlerFunc(c.removed))
	p.On(OnEvent(EventContactUpdated), HandlerFunc(c.updated))
	p.On(OnEvent(EventLocationReported), HandlerFunc(c.located))
	p.On(OnEvent(EventTagsChanged), HandlerFunc(c.tagsChanged))
}

// located: the channel reported where a member is (an Official
// Account's LOCATION report). A member of the delivery's brand without a
// guide for it is bound to one of the nearest store; anyone else is left
// as they are. Handled twice, the second finds them bound.
func (c *Contacts) located(ctx context.Context, in *adapters.Inbound) error {
	if c.AssignNearest == nil || in.Location == nil || in.Brand == "" {
		return nil
	}
	v, err := c.store.MemberByIdentity(ctx, in.Channel, in.SenderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not a member (yet): following makes them one
	}
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(v.Memberships, func(ms store.Membership) bool { return ms.BrandID == in.Brand }) ||
		slices.ContainsFunc(v.Bindings, func(b store.Binding) bool { return b.BrandID == in.Brand }) {
		return nil
	}
	b, err := c.AssignNearest(ctx, v.ID, in.Brand, in.Location.Lat, in.Location.Lng)
	if err != nil {
		return fmt.Errorf("binding member %d near their location: %w", v.ID, err)
	}
	if b == nil {
		c.log.Info("no guide near a member's reported location", slog.Int64("member_id", v.ID), slog.String("brand", in.Brand))
		return nil
	}
	c.log.Debug("member bound near their reported location", slog.Int64("member_id", v.ID), slog.String("guide_id", b.GuideID))
	return nil
}

// added: a member added a guide on a channel. The channel adding a
// handed-over contact to the guide who took them over (once per
// handover) is not a join: nothing is logged or sent. The member's touch
// (their identity's last inbound time) is recorded by their write, or,
// when the delivery writes no member, here.
func (c *Contacts) added(ctx context.Context, in *adapters.Inbound) error {
	touched := false
	err := c.add(ctx, in, &touched)
	if !touched && in.From == adapters.PartyMember {
		if _, terr := c.store.TouchIdentityMoved(ctx, in.Channel, in.SenderID, in.At); terr != nil && err == nil {
			err = fmt.Errorf("recording the member's last message: %w", terr)
		}
	}
	return err
}

func (c *Contacts) add(ctx context.Context, in *adapters.Inbound, touched *bool) error {
	if in.Brand == "" {
		return fmt.Errorf("contact added on %s without a brand: %w", in.Channel, store.ErrInvalid)
	}
	if h, err := c.store.TakeoverAdd(ctx, in.Channel, in.Attrs["user_id"], in.SenderID, in.DedupKey); err == nil {
		c.log.Debug("contact taken over in a handover", slog.Int64("member_id", h.MemberID), slog.String("guide_id", h.ToGuideID))
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	guide, reason, brand, card := c.guideFor(ctx, in)
	// An instance serving several brands: the contact joins the guide's
	// (or store's).
	in = withBrand(in, brand)
	nm := store.NewMember{BrandID: in.Brand, Identities: []store.Identity{{Channel: in.Channel, ExternalID: in.SenderID}}}
	if in.From == adapters.PartyMember {
		nm.InboundAt = in.At // the touch, in the member's write
	}
	if ch, ok := c.channels.Channel(in.Channel); ok {
		if lk, ok := ch.(adapters.ContactLookup); ok {
			info, err := lk.LookupContact(ctx, in.SenderID)
			if err != nil && !errors.Is(err, adapters.ErrInvalidRecipient) {
				return fmt.Errorf("looking up contact: %w", err)
			}
			if info != nil {
				nm.Name = info.Name
				if info.UnionID != "" {
					// One namespace for every channel and instance:
					// the same person followed elsewhere is this member.
					nm.Identities = append(nm.Identities, store.Identity{Channel: adapters.UnionIDChannel, ExternalID: info.UnionID})
				}
				for _, p := range info.Phones {
					if _, err := store.NormalizePhone(p); err == nil {
						nm.Phone = p
						break
					}
				}
			}
		}
	}
	joinedEvent := func(m *store.Member, created bool, b *store.Binding) *store.Event {
		// The binding goes with the event: the guide points ledger
		// credits it without reading it again.
		return &store.Event{Type: events.TypeMemberJoined, BrandID: in.Brand, MemberID: &m.ID,
			Source: in.Channel, SourceID: in.DedupKey, OccurredAt: in.At, Binding: b,
			Payload: eventPayload(map[string]string{"state": in.Attrs["state"], "guide_id": guideID(b), "new_member": fmt.Sprint(created)})}
	}
	var storeID string
	if guide == nil && in.Attrs["user_id"] == "" && c.AssignInStore != nil {
		storeID, _ = c.stateTarget(ctx, in.Attrs["state"])
	}
	var (
		binding *store.Binding
		joined  *store.Event
		stepErr error // the binding's or the event's failure
	)
	// The member, their binding to the guide and member.joined in one
	// transaction, unless a store's guide is to be assigned.
	together := func(tx *store.Store, m *store.Member, created bool) error {
		binding, stepErr = nil, nil
		if guide != nil {
			nb := &store.Binding{MemberID: m.ID, BrandID: in.Brand, GuideID: guide.ID, StoreID: guide.StoreID, Reason: reason}
			var b *store.Binding
			var err error
			if created {
				b, err = tx.BindNew(ctx, nb) // no binding to look for
			} else {
				b, _, err = tx.Bind(ctx, nb)
			}
			if err != nil {
				stepErr = fmt.Errorf("binding member: %w", err)
				return stepErr
			}
			binding = b
		}
		joined = joinedEvent(m, created, binding)
		if _, err := tx.AppendEvent(ctx, joined); err != nil {
			stepErr = fmt.Errorf("logging member.joined: %w", err)
			return stepErr
		}
		return nil
	}
	if storeID != "" {
		together = nil
	}
	m, created, err := c.store.EnsureMemberThen(ctx, nm, together)
	if errors.Is(err, store.ErrConflict) && stepErr == nil && nm.Phone != "" {
		// The phone belongs to another member than the channel ids:
		// keep the channel identity, leave the merge to an operator.
		c.log.Warn("contact's phone belongs to another member; not attached", slog.String("channel", in.Channel))
		nm.Phone = ""
		m, created, err = c.store.EnsureMemberThen(ctx, nm, together)
	}
	if err != nil {
		if stepErr != nil {
			return stepErr
		}
		return fmt.Errorf("ensuring member: %w", err)
	}
	*touched = true
	if storeID != "" {
		// A store's code on a channel without guides: a guide of the
		// store with room takes them.
		if binding, err = c.AssignInStore(ctx, m.ID, in.Brand, storeID); err != nil {
			return fmt.Errorf("binding member to a guide of store %s: %w", storeID, err)
		}
		if binding == nil {
			c.log.Info("no guide of the store in the contact's state can take them", slog.Int64("member_id", m.ID), slog.String("store_id", storeID))
		}
		joined = joinedEvent(m, created, binding)
		if _, err := c.store.AppendEvent(ctx, joined); err != nil {
			return fmt.Errorf("logging member.joined: %w", err)
		}
	}
	// The welcome first: its code expires in 20 seconds.
	if code := in.Attrs["welcome_code"]; code != "" && c.welcomer != nil {
		if err := c.welcome(ctx, in, m, binding, code, card); err != nil {
			return err
		}
	}
	return c.logged(ctx, joined)
}

func guideID(b *store.Binding) string {
	if b == nil {
		return ""
	}
	return b.GuideID
}

// guideFor picks the guide a new contact is bound to: the guide or store a
// contact-way state names (the store's guide the member added, when they
// belong to it), else the employee the member added, if they are a guide.
// It also picks the brand the contact joins: in.Brand, or, when the
// channel instance serves several brands (adapters.AttrBrands), the first
// of them the guide's store carries. card is what the welcome says of
// the employee the member added (nil: not a guide), read in the same
// statement as them.
func (c *Contacts) guideFor(ctx context.Context, in *adapters.Inbound) (guide *store.Guide, reason, brand string, card *store.GuideCard) {
	brands := in.Brands()
	var added *store.Guide
	if uid := in.Attrs["user_id"]; uid != "" {
		if gc, err := c.store.GuideCardByChannelID(ctx, in.Channel, uid, in.Brand); err == nil {
			card, added = gc, &gc.Guide
		}
	}
	storeID, guideID := c.stateTarget(ctx, in.Attrs["state"])
	if guideID != "" {
		for _, b := range brands {
			if g, err := c.store.Guide(ctx, guideID, b); err == nil && g.Active {
				return g, "state", b, card
			}
		}
	}
	if storeID != "" && added != nil && added.StoreID == storeID {
		return added, "state", c.storeBrand(ctx, in, added.StoreID), card
	}
	if added != nil {
		return added, "contact", c.storeBrand(ctx, in, added.StoreID), card
	}
	return nil, "", in.Brand, card
}

// storeBrand is the first of the delivery's brands the store carries, or
// in.Brand.
func (c *Contacts) storeBrand(ctx context.Context, in *adapters.Inbound, storeID string) string {
	brands := in.Brands()
	if len(brands) < 2 {
		return in.Brand
	}
	for _, b := range brands {
		if _, err := c.store.RetailStore(ctx, storeID, b); err == nil {
			return b
		}
	}
	return in.Brand
}

// bindingBrand is, for a delivery of an instance serving several brands,
// the brand of the member's binding to the guide the delivery names (a
// contact removed or edited), else in.Brand.
func (c *Contacts) bindingBrand(ctx context.Context, in *adapters.Inbound, v *store.MemberView) string {
	brands := in.Brands()
	if len(brands) < 2 {
		return in.Brand
	}
	g, err := c.store.GuideByChannelID(ctx, in.Channel, in.Attrs["user_id"])
	if err != nil {
		return in.Brand
	}
	for _, b := range v.Bindings {
		if b.GuideID == g.ID && slices.Contains(brands, b.BrandID) {
			return b.BrandID
		}
	}
	return in.Brand
}

// withBrand is in with Brand set to brand.
func withBrand(in *adapters.Inbound, brand string) *adapters.Inbound {
	if brand == in.Brand {
		return in
	}
	cp := *in
	cp.Brand = brand
	return &cp
}

// stateTarget resolves a contact-way state to the store or guide it names:
// through the contact_ways table (which also knows hashed states), else by
// its "s:" or "g:" prefix.
func (c *Contacts) stateTarget(ctx context.Context, state string) (storeID, guideID string) {
	if state == "" {
		return "", ""
	}
	if cw, err := c.store.ContactWayByState(ctx, state); err == nil {
		return cw.StoreID, cw.GuideID
	}
	switch {
	case strings.HasPrefix(state, StatePrefixGuide):
		return "", strings.TrimPrefix(state, StatePrefixGuide)
	case strings.HasPrefix(state, StatePrefixStore):
		return strings.TrimPrefix(state, StatePrefixStore), ""
	}
	return "", ""
}

// welcome queues the welcome of a new contact bound by b (nil: not
// bound). The guide, store and brand it names are card's, read as the
// contact's handling began, when card is of b's guide and store and of
// the contact's brand; else they are read now.
func (c *Contacts) welcome(ctx context.Context, in *adapters.Inbound, m *store.Member, b *store.Binding, code string, card *store.GuideCard) error {
	d := WelcomeData{Brand: in.Brand, MemberName: m.Name}
	if b != nil {
		if card != nil && card.ID == b.GuideID && card.StoreID == b.StoreID {
			d.GuideName = card.Name
			d.StoreName, d.StoreAddr, d.OpeningHour = card.StoreName, card.StoreAddress, card.StoreOpeningHours
		} else {
			if g, err := c.store.Guide(ctx, b.GuideID, ""); err == nil {
				d.GuideName = g.Name
			}
			if s, err := c.store.RetailStore(ctx, b.StoreID, ""); err == nil {
				d.StoreName, d.StoreAddr, d.OpeningHour = s.Name, s.Address, s.OpeningHours
			}
		}
	}
	if card != nil && card.BrandID == in.Brand {
		if card.BrandFound {
			d.Brand = card.BrandName
		}
	} else if br, err := c.store.Brand(ctx, in.Brand); err == nil {
		d.Brand = br.Name
	}
	out, err := c.welcomer.Welcome(ctx, in.Channel, d)
	if err != nil {
		return fmt.Errorf("rendering welcome: %w", err)
	}
	out.IdempotencyKey = outbox.WelcomeKeyPrefix + in.DedupKey
	out.To, out.ToParty = in.SenderID, adapters.PartyMember
	if out.Fields == nil {
		out.Fields = map[string]string{}
	}
	out.Fields["welcome_code"] = code
	// The code's 20 seconds run from when the contact was added (the
	// event's time, in whole seconds: it errs early), not from now.
	meta := outbox.Meta{MemberID: &m.ID, BrandID: in.Brand, Queue: queue.Critical, Since: in.At}
	if b != nil {
		meta.GuideID = b.GuideID
	}
	// Sent by this handler at once, not queued behind the other contact
	// events (SendNow): the code's 20 seconds are running.
	if _, err := c.sender.SendNow(ctx, in.Channel, out, meta); err != nil {
		return fmt.Errorf("sending welcome: %w", err)
	}
	return nil
}

// removed: a member deleted the guide (by=member), or the guide deleted
// the member (by=guide). The binding to that guide ends and member.left
// says who left whom; adding the guide again binds anew. A deletion that
// is the channel moving the contact to another guide in a handover
// (source DELETE_BY_TRANSFER) is not a departure.
func (c *Contacts) removed(ctx context.Context, in *adapters.Inbound) error {
	if in.Attrs["source"] == "DELETE_BY_TRANSFER" {
		return nil
	}
	v, err := c.store.MemberByIdentity(ctx, in.Channel, in.SenderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // never knew them
	}
	if err != nil {
		return err
	}
	in = withBrand(in, c.bindingBrand(ctx, in, v))
	gid := ""
	if g, err := c.store.GuideByChannelID(ctx, in.Channel, in.Attrs["user_id"]); err == nil {
		gid = g.ID
		for _, b := range v.Bindings {
			if b.GuideID != g.ID || (in.Brand != "" && b.BrandID != in.Brand) {
				continue
			}
			if err := c.store.EndBinding(ctx, b.ID); err != nil {
				return fmt.Errorf("ending binding: %w", err)
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	left := &store.Event{Type: events.TypeMemberLeft, BrandID: in.Brand, MemberID: &v.ID,
		Source: in.Channel, SourceID: in.DedupKey, OccurredAt: in.At,
		Payload: eventPayload(map[string]string{"by": in.Attrs["by"], "guide_id": gid, "user_id": in.Attrs["user_id"]})}
	if _, err := c.store.AppendEvent(ctx, left); err != nil {
		return err
	}
	return c.logged(ctx, left)
}

// updated: a guide edited a contact (remark, phone numbers, tags). The
// member takes the contact's name, the binding the guide's remark, the
// brand's tags the guide's tags; a phone number the guide recorded
// unifies the member with the member who has it (merged into them), or
// becomes the member's phone when no one has it.
func (c *Contacts) updated(ctx context.Context, in *adapters.Inbound) error {
	ch, ok := c.channels.Channel(in.Channel)
	if !ok {
		return nil
	}
	lk, ok := ch.(adapters.ContactLookup)
	if !ok {
		return nil
	}
	v, err := c.store.MemberByIdentity(ctx, in.Channel, in.SenderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not a member: adding them is contact.added's work
	}
	if err != nil {
		return err
	}
	in = withBrand(in, c.bindingBrand(ctx, in, v))
	info, err := lk.LookupContact(ctx, in.SenderID)
	if errors.Is(err, adapters.ErrInvalidRecipient) {
		return nil // no longer a contact
	}
	if err != nil {
		return fmt.Errorf("looking up contact: %w", err)
	}
	var follow adapters.ContactFollow
	for _, f := range info.Follows {
		if f.GuideID == in.Attrs["user_id"] {
			follow = f
			break
		}
	}
	changed := map[string]string{}
	id := v.ID
	if phone := firstPhone(follow.Phones); phone != "" {
		into, err := c.unifyByPhone(ctx, v, phone)
		if err != nil {
			return err
		}
		switch {
		case into != 0 && into != id:
			changed["merged_into"] = fmt.Sprint(into)
			id = into
		case into != 0 && v.Phone == "":
			changed["phone"] = "set"
		}
		if into != 0 && in.Brand != "" {
			// The brand's guide recorded it: the brand was given it.
			if err := c.store.MarkPhoneKnown(ctx, into, in.Brand); err != nil {
				return fmt.Errorf("recording the brand's phone: %w", err)
			}
		}
	}
	if info.Name != "" && info.Name != v.NameFor(in.Brand) && id == v.ID {
		if err := c.store.SetMemberName(ctx, id, in.Brand, info.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("renaming member: %w", err)
		}
		changed["name"] = "set"
	}
	if g, err := c.store.GuideByChannelID(ctx, in.Channel, in.Attrs["user_id"]); err == nil && in.Brand != "" {
		if b, err := c.store.CurrentBinding(ctx, id, in.Brand); err == nil && b.GuideID == g.ID && b.Remark != follow.Remark {
			if err := c.store.SetBindingRemark(ctx, b.ID, follow.Remark); err != nil {
				return fmt.Errorf("setting remark: %w", err)
			}
			changed["remark"] = "set"
		}
	}
	if in.Brand != "" {
		if err := c.contactTags(ctx, in, id, info, follow, changed); err != nil {
			return err
		}
	}
	ev := &store.Event{Type: events.TypeMemberUpdated, BrandID: in.Brand, MemberID: &id,
		Source: in.Channel, SourceID: in.DedupKey, OccurredAt: in.At, Payload: eventPayload(changed)}
	if _, err := c.store.AppendEvent(ctx, ev); err != nil {
		return err
	}
	return c.logged(ctx, ev)
}

// firstPhone is the first of phones that is a valid number.
func firstPhone(phones []string) string {
	for _, p := range phones {
		if _, err := store.NormalizePhone(p); err == nil {
			return p
		}
	}
	return ""
}

// unifyByPhone makes phone the member v's: it merges v into the member who
// has that phone, or gives it to v when no one has it. It returns the
// member who has the phone now, or 0 when v already has another phone
// (a guide's note is not enough to replace it; an operator merges).
func (c *Contacts) unifyByPhone(ctx context.Context, v *store.MemberView, phone string) (int64, error) {
	owner, err := c.store.MemberByPhone(ctx, phone, "")
	switch {
	case err == nil && owner.ID == v.ID:
		return v.ID, nil
	case err == nil && v.Phone == "" && sharesChannel(v, owner):
		// The phone's owner is someone else on this channel already: a
		// mistyped remark must not make two people one. An operator
		// merges them if they are one.
		c.log.Warn("guide recorded a phone whose member is another contact on the channel; not merged",
			slog.Int64("member_id", v.ID), slog.Int64("other_member_id", owner.ID))
		return 0, nil
	case err == nil && v.Phone == "":
		if _, err := c.store.MergeMembers(ctx, v.ID, owner.ID, "contact.updated"); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return 0, nil // merged meanwhile
			}
			return 0, fmt.Errorf("merging member by phone: %w", err)
		}
		c.log.Info("member unified by the phone their guide recorded", slog.Int64("member_id", v.ID), slog.Int64("into", owner.ID))
		return owner.ID, nil
	case err == nil:
		c.log.Warn("guide recorded a phone of another member for a member with a phone; not merged",
			slog.Int64("member_id", v.ID), slog.Int64("other_member_id", owner.ID))
		return 0, nil
	case !errors.Is(err, store.ErrNotFound):
		return 0, err
	case v.Phone != "":
		c.log.Warn("guide recorded another phone for a member with a phone; kept the member's", slog.Int64("member_id", v.ID))
		return 0, nil
	}
	var ids []store.Identity
	for _, mi := range v.Identities {
		ids = append(ids, store.Identity{Channel: mi.Channel, ExternalID: mi.ExternalID})
	}
	m, _, err := c.store.EnsureMember(ctx, store.NewMember{Phone: phone, Identities: ids})
	if errors.Is(err, store.ErrConflict) {
		// The phone was taken meanwhile: handled again, the delivery
		// finds its owner and merges.
		return 0, errors.New("recording the member's phone: another member took it meanwhile; retrying")
	}
	if err != nil {
		return 0, fmt.Errorf("recording the member's phone: %w", err)
	}
	return m.ID, nil
}

// sharesChannel reports whether a and b both have an identity on one
// channel (two contacts of WeCom, say): then they are two people.
func sharesChannel(a, b *store.MemberView) bool {
	for _, x := range a.Identities {
		for _, y := range b.Identities {
			if x.Channel == y.Channel && x.ExternalID != y.ExternalID {
				return true
			}
		}
	}
	return false
}

func (c *Contacts) logged(ctx context.Context, e *store.Event) error {
	if c.OnLogged == nil {
		return nil
	}
	return c.OnLogged(ctx, e)
}

// eventPayload encodes an event's attributes as JSON, leaving out empty
// ones.
func eventPayload(m map[string]string) string {
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	b, _ := json.Marshal(m) // map keys are sorted; strings always encode
	return string(b)
}
