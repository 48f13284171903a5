package tags

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
)

// DefaultResyncRate is how many contacts a resync reads from a channel
// per second: well below WeCom's limits on externalcontact/get, so that
// sends and callbacks keep their share.
const DefaultResyncRate = 10

// maxReportDiffs bounds the differences a report lists one by one.
const maxReportDiffs = 100

// ResyncOptions say which page of which channel's members to resync.
type ResyncOptions struct {
	Channel string
	Brand   string
	// Restart starts from the first member instead of after the last
	// page resynced.
	Restart bool
	// Limit is the members of the page; default 100, at most 1000.
	Limit int
	// Rate is contacts read per second; default DefaultResyncRate.
	Rate int
}

// Diff is one difference a resync found and settled.
type Diff struct {
	MemberID int64  `json:"member_id"`
	Tag      string `json:"tag"`
	// Action: "tagged" (the channel had it, the member not), "untagged"
	// (a tag of the channel the member had that no guide has on the
	// contact), "marked" (a tag of scrmgw the channel did not have,
	// marked there).
	Action string `json:"action"`
}

// Report is what one page of a resync found.
type Report struct {
	Channel string `json:"channel"`
	Brand   string `json:"brand"`
	// Catalog is what changed in the channel's tag library.
	Catalog *CatalogChange `json:"catalog"`
	// Members were looked at; Gone of them are no longer contacts.
	Members  int `json:"members"`
	Gone     int `json:"gone"`
	Tagged   int `json:"tagged"`
	Untagged int `json:"untagged"`
	Marked   int `json:"marked"`
	// Diffs lists the first differences (up to 100).
	Diffs []Diff `json:"diffs"`
	// After is the last member resynced; Done says the channel's
	// members are all resynced (the next call starts again).
	After int64 `json:"after"`
	Done  bool  `json:"done"`
}

func resyncCursor(channel, brand string) string { return "tags_resync:" + channel + ":" + brand }

// Resync reconciles one page of a channel's members with the channel:
// its tag library first, then for each member, tags of scrmgw the
// channel does not know are marked there, and the guides' tags on the
// contact become the member's (ApplyFollows). It resumes after the last
// page (kept in the store), reads contacts at opts.Rate per second, and
// reports what differed.
func (y *Syncer) Resync(ctx context.Context, o ResyncOptions) (*Report, error) {
	tg, ok := y.tagger(o.Channel)
	if !ok {
		return nil, fmt.Errorf("channel %q keeps no tags: %w", o.Channel, store.ErrNotFound)
	}
	ch, _ := y.channels.Channel(o.Channel)
	lk, ok := ch.(adapters.ContactLookup)
	if !ok {
		return nil, fmt.Errorf("channel %q cannot look contacts up: %w", o.Channel, store.ErrNotFound)
	}
	if o.Brand == "" || !y.serves(o.Channel, o.Brand) {
		return nil, fmt.Errorf("channel %q does not serve brand %q: %w", o.Channel, o.Brand, store.ErrInvalid)
	}
	if o.Limit <= 0 {
		o.Limit = 100
	}
	o.Limit = min(o.Limit, 1000)
	if o.Rate <= 0 {
		o.Rate = DefaultResyncRate
	}
	key := resyncCursor(o.Channel, o.Brand)
	var after int64
	if !o.Restart {
		v, err := y.store.Cursor(ctx, key)
		if err != nil {
			return nil, err
		}
		after, _ = strconv.ParseInt(v, 10, 64)
	}
	at := y.now()
	run := "resync:" + o.Channel + ":" + strconv.FormatInt(at.UnixNano(), 10)
	r := &Report{Channel: o.Channel, Brand: o.Brand, Diffs: []Diff{}, After: after}
	var err error
	if r.Catalog, err = y.Refresh(ctx, o.Channel, []string{o.Brand}, run+":catalog", at); err != nil {
		return nil, err
	}
	known, err := y.Catalog(ctx, o.Channel)
	if err != nil {
		return nil, err
	}
	ids, err := y.store.MembersWithIdentity(ctx, o.Channel, after, o.Limit)
	if err != nil {
		return nil, err
	}
	tick := time.NewTicker(time.Second / time.Duration(o.Rate))
	defer tick.Stop()
	for i, id := range ids {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-tick.C:
			}
		}
		if err := y.resyncMember(ctx, tg, lk, o, id, known, run, at, r); err != nil {
			return nil, fmt.Errorf("resyncing member %d: %w", id.MemberID, err)
		}
		r.Members++
		r.After = id.MemberID
		// Saved after each member: a resync cut short resumes here.
		if err := y.store.SetCursor(ctx, key, strconv.FormatInt(r.After, 10)); err != nil {
			return nil, err
		}
	}
	if len(ids) < o.Limit {
		r.Done = true
		if err := y.store.SetCursor(ctx, key, "0"); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (y *Syncer) resyncMember(ctx context.Context, tg adapters.Tagger, lk adapters.ContactLookup, o ResyncOptions,
	id store.MemberIdentity, known map[string]bool, run string, at time.Time, r *Report) error {
	info, err := lk.LookupContact(ctx, id.ExternalID)
	if errors.Is(err, adapters.ErrInvalidRecipient) {
		r.Gone++
		return nil
	}
	if err != nil {
		return err
	}
	current, err := y.store.MemberTags(ctx, id.MemberID, o.Brand)
	if err != nil {
		return err
	}
	onContact := map[string]bool{}
	for _, f := range info.Follows {
		for _, t := range f.Tags {
			onContact[t] = true
		}
	}
	// scrmgw's own tags (not the channel's) that the contact lacks are
	// marked on the channel: set by an import, say, before it kept tags.
	var mark []string
	for _, t := range current {
		if !known[t] && !onContact[t] && tg.CheckTag(t) == nil {
			mark = append(mark, t)
		}
	}
	follows := info.Follows
	if len(mark) > 0 {
		if err := y.MarkTags(ctx, o.Brand, id.MemberID, mark, nil); err != nil {
			return err
		}
		r.Marked += len(mark)
		for _, t := range mark {
			r.diff(Diff{MemberID: id.MemberID, Tag: t, Action: "marked"})
		}
		follows = append(slices.Clone(follows), adapters.ContactFollow{Tags: mark})
	}
	ch, err := y.ApplyFollows(ctx, o.Channel, o.Brand, id.MemberID, follows, run+":"+strconv.FormatInt(id.MemberID, 10), at)
	if err != nil {
		return err
	}
	r.Tagged += len(ch.Added)
	r.Untagged += len(ch.Removed)
	for _, t := range ch.Added {
		r.diff(Diff{MemberID: id.MemberID, Tag: t, Action: "tagged"})
	}
	for _, t := range ch.Removed {
		r.diff(Diff{MemberID: id.MemberID, Tag: t, Action: "untagged"})
	}
	return nil
}

func (r *Report) diff(d Diff) {
	if len(r.Diffs) < maxReportDiffs {
		r.Diffs = append(r.Diffs, d)
	}
}
