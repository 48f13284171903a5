// Package groups keeps the customer groups of channels whose contacts
// meet in groups (WeCom 客户群) and sends to them through their owners.
//
// A channel's "group changed" event (group.changed: created, members
// joined or left, owner, name or notice changed, dismissed) makes the
// Keeper read the group again from the channel (adapters.GroupLookup):
// an event about a group it never saw is no error, it is read like any
// other. A group belongs to its owner's store and brand; its contacts
// are matched to members by their identity on the channel. A message
// reaches groups as a task their owner confirms (adapters.GroupSender),
// one a day per group (WeCom's limit): a second message to a group on
// the same day, or one to a dismissed group, is refused before anything
// is written or sent. A send records when it calls the channel before
// the call: a retry of a send whose answer was lost (the process died,
// or the call failed in doubt) asks the channel whether the task exists
// (adapters.GroupReconciler) and sends only to the groups it does not
// find; when the channel cannot be asked, nothing is sent.
package groups

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/inbox"
	"github.com/scrmgw/scrmgw/store"
)

// EventGroupChanged is the inbound event of a changed group.
const EventGroupChanged = "group.changed"

// dayZone is the zone of a group's day of sends: WeCom counts in Beijing
// time.
var dayZone = time.FixedZone("CST", 8*3600)

// Keeper keeps customer groups and sends to them.
type Keeper struct {
	store    *store.Store
	channels *adapters.Registry
	log      *slog.Logger
	now      func() time.Time
}

// New returns a Keeper over the channels of the registry that are
// adapters.GroupLookups.
func New(s *store.Store, channels *adapters.Registry, log *slog.Logger) *Keeper {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keeper{store: s, channels: channels, log: log, now: time.Now}
}

// Register routes group events to k.
func (k *Keeper) Register(p *inbox.Processor) {
	p.On(inbox.OnEvent(EventGroupChanged), inbox.HandlerFunc(k.changed))
}

func (k *Keeper) changed(ctx context.Context, in *adapters.Inbound) error {
	chatID := in.Attrs["chat_id"]
	if chatID == "" {
		return fmt.Errorf("group event without chat_id: %w", store.ErrInvalid)
	}
	if in.Attrs["change_type"] == "dismiss" {
		err := k.store.DismissCustomerGroup(ctx, in.Channel, chatID, in.At)
		if errors.Is(err, store.ErrNotFound) {
			return nil // never saw it
		}
		return err
	}
	_, err := k.Sync(ctx, in.Channel, in.Brands(), chatID, in.At)
	return err
}

// Sync reads a group from the channel and saves it with its members; a
// group the channel no longer has is recorded dismissed. brands are the
// brands the channel serves: the group takes the first its owner's
// store carries (the first, when none does or the owner is no guide).
func (k *Keeper) Sync(ctx context.Context, channel string, brands []string, chatID string, at time.Time) (*store.GroupChange, error) {
	lk, ok := k.lookup(channel)
	if !ok {
		return nil, fmt.Errorf("channel %q has no groups: %w", channel, store.ErrNotFound)
	}
	g, err := lk.LookupGroup(ctx, chatID)
	if errors.Is(err, adapters.ErrInvalidRecipient) {
		if err := k.store.DismissCustomerGroup(ctx, channel, chatID, at); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return &store.GroupChange{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading group %s: %w", chatID, err)
	}
	row := &store.CustomerGroup{Channel: channel, ChatID: g.ID, Name: g.Name, Notice: truncate(g.Notice, 2000), OwnerID: g.Owner, CreatedAt: g.Created}
	if len(brands) > 0 {
		row.BrandID = brands[0]
	}
	if guide, err := k.store.GuideByChannelID(ctx, channel, g.Owner); err == nil {
		row.GuideID, row.StoreID = guide.ID, guide.StoreID
		for _, b := range brands {
			if _, err := k.store.RetailStore(ctx, guide.StoreID, b); err == nil {
				row.BrandID = b
				break
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if row.CreatedAt.IsZero() {
		row.CreatedAt = at
	}
	members := make([]store.CustomerGroupMember, 0, len(g.Members))
	for _, m := range g.Members {
		gm := store.CustomerGroupMember{UserID: m.ID, Guide: m.Guide, Name: truncate(m.Name, 200), JoinScene: m.JoinScene, JoinedAt: m.JoinedAt}
		if gm.JoinedAt.IsZero() {
			gm.JoinedAt = at
		}
		if !m.Guide {
			if v, err := k.store.MemberByIdentity(ctx, channel, m.ID); err == nil {
				id := v.ID
				gm.MemberID = &id
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
		members = append(members, gm)
	}
	ch, err := k.store.SaveCustomerGroup(ctx, row, members, at)
	if err != nil {
		return nil, fmt.Errorf("saving group %s: %w", chatID, err)
	}
	k.log.Debug("customer group saved", slog.String("channel", channel), slog.String("chat_id", chatID),
		slog.Int("joined", len(ch.Joined)), slog.Int("left", len(ch.Left)))
	return ch, nil
}

// Resync reads every group of owners (all the channel's, with none)
// from the channel, at most rate a second, and saves them; it returns
// how many it read. brands default to those the channel serves.
func (k *Keeper) Resync(ctx context.Context, channel string, brands, owners []string, rate int) (int, error) {
	lk, ok := k.lookup(channel)
	if !ok {
		return 0, fmt.Errorf("channel %q has no groups: %w", channel, store.ErrNotFound)
	}
	if rate <= 0 {
		rate = 10
	}
	if b, ok := lk.(interface{ Brands() []string }); ok && len(brands) == 0 {
		brands = b.Brands()
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	n, cursor := 0, ""
	for {
		ids, next, err := lk.GroupIDs(ctx, owners, cursor)
		if err != nil {
			return n, fmt.Errorf("listing groups: %w", err)
		}
		for _, id := range ids {
			select {
			case <-ctx.Done():
				return n, ctx.Err()
			case <-tick.C:
			}
			if _, err := k.Sync(ctx, channel, brands, id, k.now()); err != nil {
				return n, err
			}
			n++
		}
		if next == "" || next == cursor {
			return n, nil
		}
		cursor = next
	}
}

func (k *Keeper) lookup(channel string) (adapters.GroupLookup, bool) {
	ch, ok := k.channels.Channel(channel)
	if !ok {
		return nil, false
	}
	lk, ok := ch.(adapters.GroupLookup)
	return lk, ok
}

// SendRequest is a message to customer groups.
type SendRequest struct {
	Channel string
	Brand   string
	ChatIDs []string
	Message *adapters.Outbound
	// Key identifies the request: a retry with the same key is not a
	// second message of the day.
	Key string
	// SkipTaken leaves out the groups that had their message of the
	// day from another key, instead of refusing the request.
	SkipTaken bool
}

// SendResult is what a send did: the tasks it created (or a retry
// found), and the groups it left out (SkipTaken).
type SendResult struct {
	Tasks []Task
	Taken []string
}

// Task is one message task a send created.
type Task struct {
	Owner   string   `json:"owner"`
	ChatIDs []string `json:"chat_ids"`
	MsgID   string   `json:"msg_id"`
	// Delivered are the groups the owner sent the task to, Failed those
	// the channel did not send it to, as last checked (CheckDeliveries);
	// the others are pending.
	Delivered []string `json:"delivered,omitempty"`
	Failed    []string `json:"failed,omitempty"`
}

// Send sends a message to groups through their owners: one task per
// owner (split at the channel's MaxGroups). Every group must be the
// brand's, active, and without a message today; otherwise nothing is
// sent and the error says which group.
func (k *Keeper) Send(ctx context.Context, r SendRequest) ([]Task, error) {
	res, err := k.send(ctx, r)
	return res.Tasks, err
}

func (k *Keeper) send(ctx context.Context, r SendRequest) (*SendResult, error) {
	res := &SendResult{}
	ch, ok := k.channels.Channel(r.Channel)
	if !ok {
		return res, fmt.Errorf("channel %q: %w", r.Channel, store.ErrNotFound)
	}
	gs, ok := ch.(adapters.GroupSender)
	if !ok {
		return res, fmt.Errorf("channel %q cannot send to groups: %w", r.Channel, store.ErrInvalid)
	}
	if len(r.ChatIDs) == 0 {
		return res, fmt.Errorf("chat_ids: name at least one group: %w", store.ErrInvalid)
	}
	byOwner := map[string][]string{}
	var owners []string
	for _, id := range slices.Compact(slices.Sorted(slices.Values(r.ChatIDs))) {
		g, err := k.store.CustomerGroup(ctx, r.Channel, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && r.Brand != "" && g.BrandID != r.Brand {
			return res, fmt.Errorf("group %s: %w", id, store.ErrNotFound)
		}
		if err != nil {
			return res, err
		}
		if g.State != store.GroupActive {
			return res, fmt.Errorf("group %s (%s) is dismissed: %w", id, g.Name, store.ErrInvalid)
		}
		if _, ok := byOwner[g.OwnerID]; !ok {
			owners = append(owners, g.OwnerID)
		}
		byOwner[g.OwnerID] = append(byOwner[g.OwnerID], id)
	}
	day := k.now().In(dayZone).Format(time.DateOnly)
	// reserved are the reservations this call may give back when it
	// fails: none of them has called the channel.
	var reserved []string
	release := func(ids []string) {
		for _, id := range ids {
			if err := k.store.ReleaseGroupSend(ctx, r.Channel, id, day, r.Key); err != nil {
				k.log.Warn("releasing a group's send", slog.String("chat_id", id), slog.Any("error", err))
			}
		}
	}
	done := map[string]Task{} // a retry: sent already, by msg id
	addDone := func(o, msgID, id, delivery string) {
		t := done[msgID]
		t.Owner, t.MsgID, t.ChatIDs = o, msgID, append(t.ChatIDs, id)
		switch delivery {
		case store.GroupDeliveryDelivered:
			t.Delivered = append(t.Delivered, id)
		case store.GroupDeliveryFailed:
			t.Failed = append(t.Failed, id)
		}
		done[msgID] = t
	}
	// unconfirmed are the groups, by owner, an earlier attempt of the key
	// called the channel for without recording its answer; since the
	// first such attempt, by owner.
	unconfirmed := map[string][]string{}
	since := map[string]time.Time{}
	for _, o := range owners {
		var left []string
		for _, id := range byOwner[o] {
			rs, err := k.store.ReserveGroupSend(ctx, r.Channel, id, day, r.Key)
			if r.SkipTaken && errors.Is(err, store.ErrConflict) {
				res.Taken = append(res.Taken, id)
				continue
			}
			if err != nil {
				release(reserved)
				return res, err
			}
			switch {
			case rs.MsgID != "":
				addDone(o, rs.MsgID, id, rs.Delivery)
				continue
			case rs.Unconfirmed():
				unconfirmed[o] = append(unconfirmed[o], id)
				if at, ok := since[o]; !ok || rs.AttemptedAt.Before(at) {
					since[o] = rs.AttemptedAt
				}
			default:
				reserved = append(reserved, id)
			}
			left = append(left, id)
		}
		byOwner[o] = left
	}
	tasksDone := func() []Task {
		out := make([]Task, 0, len(done))
		for _, t := range done {
			out = append(out, t)
		}
		return out
	}
	m := *r.Message
	m.Brand = r.Brand
	// An earlier attempt may have created its task: ask the channel
	// before sending again, and send nothing when it cannot tell.
	for _, o := range owners {
		ids := unconfirmed[o]
		if len(ids) == 0 {
			continue
		}
		gr, ok := ch.(adapters.GroupReconciler)
		if !ok {
			release(reserved)
			res.Tasks = tasksDone()
			return res, fmt.Errorf("an earlier send to %d groups of %s may have gone out and channel %q cannot tell: not sent again: %w",
				len(ids), o, r.Channel, adapters.ErrOutcomeUnknown)
		}
		found, err := gr.ReconcileGroups(ctx, o, ids, &m, since[o])
		if err != nil {
			release(reserved)
			res.Tasks = tasksDone()
			return res, fmt.Errorf("asking whether an earlier send to the groups of %s went out: %w", o, err)
		}
		for _, id := range ids {
			msgID := found[id]
			if msgID == "" {
				continue // not sent: it is sent below
			}
			if err := k.store.SetGroupSendMsgID(ctx, r.Channel, id, day, o, msgID); err != nil {
				release(reserved)
				res.Tasks = tasksDone()
				return res, err
			}
			addDone(o, msgID, id, "")
			byOwner[o] = slices.DeleteFunc(byOwner[o], func(g string) bool { return g == id })
		}
		k.log.Info("an earlier send to groups asked at the channel", slog.String("channel", r.Channel), slog.String("owner", o),
			slog.Int("found", len(ids)-len(byOwner[o])), slog.Int("sent_again", len(byOwner[o])))
	}
	tasks := tasksDone()
	for _, o := range owners {
		for chunk := range slices.Chunk(byOwner[o], max(gs.MaxGroups(), 1)) {
			if len(chunk) == 0 {
				continue
			}
			// Recorded before the call: should the answer be lost, a
			// retry asks the channel for a task from then on.
			if err := k.store.AttemptGroupSends(ctx, r.Channel, chunk, day, r.Key, k.now()); err != nil {
				release(unsent(reserved, tasks, nil))
				res.Tasks = tasks
				return res, err
			}
			rc, err := gs.SendToGroups(ctx, o, chunk, &m)
			if err != nil {
				// The groups not sent to may have a message today after
				// all; those of a call that may have gone out keep
				// theirs, for a retry to ask the channel.
				var maybe []string
				if errors.Is(err, adapters.ErrOutcomeUnknown) {
					maybe = chunk
				}
				release(unsent(reserved, tasks, maybe))
				res.Tasks = tasks
				return res, fmt.Errorf("sending to the groups of %s: %w", o, err)
			}
			for _, id := range chunk {
				if err := k.store.SetGroupSendMsgID(ctx, r.Channel, id, day, o, rc.ExternalID); err != nil {
					res.Tasks = tasks
					return res, err
				}
			}
			tasks = append(tasks, Task{Owner: o, ChatIDs: chunk, MsgID: rc.ExternalID})
		}
	}
	res.Tasks = tasks
	return res, nil
}

// unsent are the reserved groups that none of tasks went to, nor maybe.
func unsent(reserved []string, tasks []Task, maybe []string) []string {
	sent := map[string]bool{}
	for _, t := range tasks {
		for _, id := range t.ChatIDs {
			sent[id] = true
		}
	}
	for _, id := range maybe {
		sent[id] = true
	}
	return slices.DeleteFunc(slices.Clone(reserved), func(id string) bool { return sent[id] })
}

// deliveryFollow is how long after a send its owners' confirmation is
// followed.
const deliveryFollow = 7 * 24 * time.Hour

// CheckDeliveries asks the channels (adapters.GroupDeliveryChecker)
// whether the owners sent the tasks of the last week's group sends still
// pending, those not checked for every, and records it on the sends:
// delivered, failed or still pending. It returns how many tasks it
// checked; a channel that fails to answer is asked again next time.
func (k *Keeper) CheckDeliveries(ctx context.Context, every time.Duration) (int, error) {
	now := k.now()
	rows, err := k.store.GroupSendsToCheck(ctx, now.Add(-deliveryFollow), now.Add(-every), 500)
	if err != nil {
		return 0, fmt.Errorf("listing group sends to check: %w", err)
	}
	type task struct{ channel, owner, msgID string }
	seen := map[task]bool{}
	var errs []error
	n := 0
	for _, r := range rows {
		t := task{r.Channel, r.Owner, r.MsgID}
		if seen[t] || t.owner == "" {
			continue
		}
		seen[t] = true
		// Checked whatever the answer, so that a task that cannot be
		// asked about waits its turn like the others.
		states, err := k.checkDelivery(ctx, t.channel, t.owner, t.msgID)
		if err != nil {
			errs = append(errs, err)
		} else {
			n++
		}
		if err := k.store.SetGroupSendDeliveries(ctx, t.channel, t.msgID, states, k.now()); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// checkDelivery asks the channel what became of owner's task msgID, by
// group: nothing for a channel that does not tell.
func (k *Keeper) checkDelivery(ctx context.Context, channel, owner, msgID string) (map[string]string, error) {
	ch, ok := k.channels.Channel(channel)
	if !ok {
		return nil, nil
	}
	dc, ok := ch.(adapters.GroupDeliveryChecker)
	if !ok {
		return nil, nil
	}
	got, err := dc.CheckGroupDelivery(ctx, owner, msgID)
	if err != nil {
		return nil, err
	}
	states := make(map[string]string, len(got))
	for id, d := range got {
		switch d {
		case adapters.DeliveryDelivered:
			states[id] = store.GroupDeliveryDelivered
		case adapters.DeliveryFailed:
			states[id] = store.GroupDeliveryFailed
		}
	}
	return states, nil
}

// Selection picks a brand's active groups: those its guide owns
// (GuideID), or those of its store (StoreID).
type Selection struct {
	Brand   string
	GuideID string
	StoreID string
}

// SendSelected sends to the groups sel picks, on every channel they are
// on, through their owners: render gives the message for a channel.
// Groups that had their message of the day from another key are left
// out (Taken); a retry with the same key sends nothing twice. No group:
// an empty result.
func (k *Keeper) SendSelected(ctx context.Context, sel Selection, render func(channel string) (*adapters.Outbound, error), key string) (*SendResult, error) {
	if sel.Brand == "" || (sel.GuideID == "") == (sel.StoreID == "") || key == "" {
		return nil, fmt.Errorf("sending to groups: a brand, a key and a guide or a store: %w", store.ErrInvalid)
	}
	byChannel := map[string][]string{}
	var channels []string
	f := store.GroupFilter{Brand: sel.Brand, GuideID: sel.GuideID, StoreID: sel.StoreID, State: store.GroupActive, Limit: 1000}
	for {
		gs, err := k.store.CustomerGroups(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("listing groups: %w", err)
		}
		for _, g := range gs {
			if _, ok := byChannel[g.Channel]; !ok {
				channels = append(channels, g.Channel)
			}
			byChannel[g.Channel] = append(byChannel[g.Channel], g.ChatID)
		}
		if len(gs) < f.Limit {
			break
		}
		f.After = gs[len(gs)-1].ChatID
	}
	out := &SendResult{}
	for _, ch := range channels {
		m, err := render(ch)
		if err != nil {
			return out, err
		}
		res, err := k.send(ctx, SendRequest{Channel: ch, Brand: sel.Brand, ChatIDs: byChannel[ch], Message: m, Key: key, SkipTaken: true})
		out.Tasks = append(out.Tasks, res.Tasks...)
		out.Taken = append(out.Taken, res.Taken...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// Welcome adds a group welcome on the channel and returns its id.
func (k *Keeper) Welcome(ctx context.Context, channel string, m *adapters.Outbound) (string, error) {
	ch, ok := k.channels.Channel(channel)
	if !ok {
		return "", fmt.Errorf("channel %q: %w", channel, store.ErrNotFound)
	}
	w, ok := ch.(adapters.GroupWelcomer)
	if !ok {
		return "", fmt.Errorf("channel %q has no group welcomes: %w", channel, store.ErrInvalid)
	}
	return w.AddGroupWelcome(ctx, m)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
