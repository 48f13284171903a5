package tags

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// maxTagRunes is the longest tag a member can have (store.MemberTag).
const maxTagRunes = 64

// Syncer keeps members' tags and the channels' own tags in step.
type Syncer struct {
	// OnLogged, when set, is handed every event logged (the workflow
	// engine); it must be idempotent.
	OnLogged func(ctx context.Context, e *store.Event) error

	store    *store.Store
	channels *adapters.Registry
	log      *slog.Logger
	now      func() time.Time
}

// New returns a Syncer over the channels of the registry that are
// adapters.Taggers.
func New(s *store.Store, channels *adapters.Registry, log *slog.Logger) *Syncer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Syncer{store: s, channels: channels, log: log, now: time.Now}
}

// branded is a channel instance that serves some brands only.
type branded interface{ Brands() []string }

// taggers lists the instances that keep tags and serve brand.
func (y *Syncer) taggers(brand string) map[string]adapters.Tagger {
	out := map[string]adapters.Tagger{}
	for _, key := range y.channels.Names() {
		if tg, ok := y.tagger(key); ok && y.serves(key, brand) {
			out[key] = tg
		}
	}
	return out
}

// Keeps reports whether the channel instance keeps tags of its own.
func (y *Syncer) Keeps(channel string) bool {
	_, ok := y.tagger(channel)
	return ok
}

func (y *Syncer) tagger(key string) (adapters.Tagger, bool) {
	ch, ok := y.channels.Channel(key)
	if !ok {
		return nil, false
	}
	tg, ok := ch.(adapters.Tagger)
	return tg, ok
}

func (y *Syncer) serves(key, brand string) bool {
	ch, ok := y.channels.Channel(key)
	if !ok {
		return false
	}
	if b, ok := ch.(branded); ok && brand != "" {
		return slices.Contains(b.Brands(), brand)
	}
	return true
}

// CheckTags reports why tags cannot be set for brand: a tag too long for
// scrmgw, or one a channel that keeps tags for the brand would refuse
// (an error wrapping adapters.ErrInvalidMessage).
func (y *Syncer) CheckTags(_ context.Context, brand string, tags []string) error {
	for _, t := range tags {
		if strings.TrimSpace(t) == "" || utf8.RuneCountInString(t) > maxTagRunes {
			return fmt.Errorf("tag %q: want 1 to %d characters: %w", t, maxTagRunes, adapters.ErrInvalidMessage)
		}
	}
	for key, tg := range y.taggers(brand) {
		for _, t := range tags {
			if err := tg.CheckTag(t); err != nil {
				return fmt.Errorf("tag %q on %s: %w", t, key, err)
			}
		}
	}
	return nil
}

// MarkTags adds and removes tags on the member's contacts on every
// channel that keeps tags for brand, as the guide the member is bound
// to with the brand (else one the channel picks). A member who is no
// longer a contact on a channel is skipped there.
func (y *Syncer) MarkTags(ctx context.Context, brand string, memberID int64, add, remove []string) error {
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	taggers := y.taggers(brand)
	if len(taggers) == 0 {
		return nil
	}
	v, err := y.store.Member(ctx, memberID, "")
	if err != nil {
		return fmt.Errorf("loading member %d: %w", memberID, err)
	}
	var guide *store.Guide
	if b, err := y.store.CurrentBinding(ctx, memberID, brand); err == nil {
		guide, _ = y.store.Guide(ctx, b.GuideID, "")
	}
	for _, id := range v.Identities {
		tg, ok := taggers[id.Channel]
		if !ok {
			continue
		}
		via := ""
		if guide != nil {
			via = guide.Identity(id.Channel)
		}
		err := tg.MarkTags(ctx, via, id.ExternalID, add, remove)
		if errors.Is(err, adapters.ErrInvalidRecipient) && via != "" {
			// The guide no longer has the contact: as whoever does.
			err = tg.MarkTags(ctx, "", id.ExternalID, add, remove)
		}
		if errors.Is(err, adapters.ErrInvalidRecipient) {
			y.log.Info("member is no longer a contact; tags not marked there", slog.Int64("member_id", memberID), slog.String("channel", id.Channel))
			continue
		}
		if err != nil {
			return fmt.Errorf("marking tags on %s: %w", id.Channel, err)
		}
	}
	return nil
}

// Change is what setting a member's tags changed.
type Change struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

// SetMemberTags adds and removes a member's tags with brand, as the API
// does: checked, marked on the channels, written, and member.tagged and
// member.untagged logged (source, sourceID+":"+tag) and handed on.
func (y *Syncer) SetMemberTags(ctx context.Context, brand string, memberID int64, add, remove []string, source, sourceID string) (*Change, error) {
	if err := y.CheckTags(ctx, brand, add); err != nil {
		return nil, err
	}
	if err := y.MarkTags(ctx, brand, memberID, add, remove); err != nil {
		return nil, err
	}
	return y.apply(ctx, brand, memberID, add, remove, source, sourceID, y.now())
}

// apply writes tags and logs their events.
func (y *Syncer) apply(ctx context.Context, brand string, memberID int64, add, remove []string, source, sourceID string, at time.Time) (*Change, error) {
	ch := &Change{Added: []string{}, Removed: []string{}}
	added, err := y.store.AddMemberTags(ctx, memberID, brand, add, at)
	if err != nil {
		return nil, fmt.Errorf("tagging member: %w", err)
	}
	removed, err := y.store.RemoveMemberTags(ctx, memberID, brand, remove)
	if err != nil {
		return nil, fmt.Errorf("untagging member: %w", err)
	}
	ch.Added, ch.Removed = append(ch.Added, added...), append(ch.Removed, removed...)
	var evs []*store.Event
	for _, t := range added {
		evs = append(evs, tagEvent(events.TypeMemberTagged, brand, memberID, t, source, sourceID+":tag:"+t, at))
	}
	for _, t := range removed {
		evs = append(evs, tagEvent(events.TypeMemberUntagged, brand, memberID, t, source, sourceID+":untag:"+t, at))
	}
	for _, ev := range evs {
		if _, err := y.store.AppendEvent(ctx, ev); err != nil {
			return nil, fmt.Errorf("logging %s: %w", ev.Type, err)
		}
	}
	for _, ev := range evs {
		if err := y.logged(ctx, ev); err != nil {
			return nil, err
		}
	}
	return ch, nil
}

func tagEvent(typ, brand string, memberID int64, tag, source, sourceID string, at time.Time) *store.Event {
	id := memberID
	payload, _ := json.Marshal(map[string]string{"tag": tag})
	return &store.Event{Type: typ, BrandID: brand, MemberID: &id, Source: source, SourceID: sourceID,
		Payload: string(payload), OccurredAt: at}
}

func (y *Syncer) logged(ctx context.Context, e *store.Event) error {
	if y.OnLogged == nil {
		return nil
	}
	return y.OnLogged(ctx, e)
}

// ---- the channel's tags ----

// Catalog returns the names of a channel instance's own tags, read from
// the channel when none were stored yet.
func (y *Syncer) Catalog(ctx context.Context, channel string) (map[string]bool, error) {
	tags, err := y.store.ChannelTags(ctx, channel)
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		if _, err := y.Refresh(ctx, channel, nil, "", time.Time{}); err != nil {
			return nil, err
		}
		if tags, err = y.store.ChannelTags(ctx, channel); err != nil {
			return nil, err
		}
	}
	names := make(map[string]bool, len(tags))
	for _, t := range tags {
		names[t.Name] = true
	}
	return names, nil
}

// CatalogChange is what changed in a channel's tag library since it was
// last read.
type CatalogChange struct {
	Created []string          `json:"created"`
	Renamed map[string]string `json:"renamed"`
	Deleted []string          `json:"deleted"`
	// Members counts the members whose tags changed.
	Members int `json:"members"`
}

// Refresh reads a channel instance's tag library and, for each of
// brands, renames the tags renamed there and removes those deleted there
// from every member who has them (member.untagged and member.tagged,
// sourced sourceID), then stores the library. A name still held by
// another of the channel's tags is kept.
func (y *Syncer) Refresh(ctx context.Context, channel string, brands []string, sourceID string, at time.Time) (*CatalogChange, error) {
	tg, ok := y.tagger(channel)
	if !ok {
		return nil, fmt.Errorf("channel %q keeps no tags: %w", channel, store.ErrNotFound)
	}
	now, err := tg.Tags(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the tags of %s: %w", channel, err)
	}
	before, err := y.store.ChannelTags(ctx, channel)
	if err != nil {
		return nil, err
	}
	byID := map[string]adapters.ChannelTag{}
	names := map[string]bool{}
	var rows []store.ChannelTag
	for _, t := range now {
		if utf8.RuneCountInString(t.Name) > maxTagRunes || strings.TrimSpace(t.Name) == "" {
			continue
		}
		byID[t.ID] = t
		names[t.Name] = true
		rows = append(rows, store.ChannelTag{TagID: t.ID, Name: t.Name, GroupID: t.GroupID, GroupName: truncate(t.GroupName, 64)})
	}
	ch := &CatalogChange{Created: []string{}, Renamed: map[string]string{}, Deleted: []string{}}
	old := map[string]bool{}
	for _, b := range before {
		old[b.TagID] = true
		t, ok := byID[b.TagID]
		switch {
		case !ok && !names[b.Name]:
			ch.Deleted = append(ch.Deleted, b.Name)
		case ok && t.Name != b.Name && !names[b.Name]:
			ch.Renamed[b.Name] = t.Name
		}
	}
	for _, t := range now {
		if !old[t.ID] && len(before) > 0 {
			ch.Created = append(ch.Created, t.Name)
		}
	}
	if sourceID == "" {
		sourceID = "tags:" + channel + ":" + strconv.FormatInt(y.now().UnixNano(), 10)
	}
	if at.IsZero() {
		at = y.now()
	}
	members := map[int64]bool{}
	for _, brand := range brands {
		for from, to := range ch.Renamed {
			ids, err := y.store.MembersTagged(ctx, brand, from)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				if _, err := y.apply(ctx, brand, id, []string{to}, []string{from}, channel, sourceID+":"+strconv.FormatInt(id, 10), at); err != nil {
					return nil, err
				}
				members[id] = true
			}
		}
		for _, name := range ch.Deleted {
			ids, err := y.store.MembersTagged(ctx, brand, name)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				if _, err := y.apply(ctx, brand, id, nil, []string{name}, channel, sourceID+":"+strconv.FormatInt(id, 10), at); err != nil {
					return nil, err
				}
				members[id] = true
			}
		}
	}
	ch.Members = len(members)
	if err := y.store.ReplaceChannelTags(ctx, channel, rows); err != nil {
		return nil, fmt.Errorf("storing the tags of %s: %w", channel, err)
	}
	return ch, nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// ---- a contact's tags ----

// ApplyFollows makes the member's tags with brand what the channel's
// guides put on the contact (follows): tags they set are added, the
// member's tags that are the channel's own and that no guide has on the
// contact are removed. A tag the stored library does not know reads the
// library again first. Events are sourced channel, sourceID.
func (y *Syncer) ApplyFollows(ctx context.Context, channel, brand string, memberID int64, follows []adapters.ContactFollow, sourceID string, at time.Time) (*Change, error) {
	desired := map[string]bool{}
	for _, f := range follows {
		for _, t := range f.Tags {
			if t = strings.TrimSpace(t); t != "" && utf8.RuneCountInString(t) <= maxTagRunes {
				desired[t] = true
			}
		}
	}
	known, err := y.Catalog(ctx, channel)
	if err != nil {
		return nil, err
	}
	for t := range desired {
		if !known[t] {
			// A tag created since the library was read: read it again
			// (its renames and deletions apply to the brand too).
			if _, err := y.Refresh(ctx, channel, []string{brand}, sourceID+":refresh", at); err != nil {
				return nil, err
			}
			if known, err = y.Catalog(ctx, channel); err != nil {
				return nil, err
			}
			break
		}
	}
	current, err := y.store.MemberTags(ctx, memberID, brand)
	if err != nil {
		return nil, err
	}
	var add, remove []string
	for t := range desired {
		if !slices.Contains(current, t) {
			add = append(add, t)
		}
	}
	for _, t := range current {
		if known[t] && !desired[t] {
			remove = append(remove, t)
		}
	}
	slices.Sort(add)
	return y.apply(ctx, brand, memberID, add, remove, channel, sourceID, at)
}
