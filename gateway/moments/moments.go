// Package moments publishes content for guides to post where their
// contacts see it (WeCom Moments, 朋友圈) on channels that have it
// (adapters.MomentPoster), as a campaign of a brand: the guides of a
// store, or those named, are asked; the channel creates the task in the
// background (a job). Poll, run periodically, reads each campaign from
// its channel: the job until it is done, then who has posted and which
// contacts can see the posts (adapters.MomentAudience), every PollEvery
// for FollowFor after the campaign was created, storing what it read.
package moments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
)

// Campaigns publishes moment tasks and follows them.
type Campaigns struct {
	store    *store.Store
	channels *adapters.Registry
	log      *slog.Logger
	now      func() time.Time

	// FollowFor is how long after it was created a campaign is read;
	// default store.MomentFollowFor (7 days).
	FollowFor time.Duration
	// PollEvery is how often a created campaign is read; default 1h.
	// A job not done yet is read at every Poll.
	PollEvery time.Duration
	// JobTimeout is how long a job may take before the campaign fails;
	// default 1h.
	JobTimeout time.Duration
}

// New returns Campaigns over the registry's channels that are
// MomentPosters.
func New(s *store.Store, channels *adapters.Registry, log *slog.Logger) *Campaigns {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Campaigns{store: s, channels: channels, log: log, now: time.Now,
		FollowFor: store.MomentFollowFor, PollEvery: time.Hour, JobTimeout: time.Hour}
}

// SetClock makes the campaigns read the time from now (tests).
func (c *Campaigns) SetClock(now func() time.Time) { c.now = now }

// Request is a campaign to publish.
type Request struct {
	// Channel is the instance; "" is the first with Moments.
	Channel string
	Brand   string
	// StoreID asks the store's active guides; GuideIDs those guides.
	StoreID  string
	GuideIDs []string
	Message  *adapters.Outbound
	// Key makes a retried request the same campaign.
	Key string
}

func (c *Campaigns) poster(channel string) (string, adapters.MomentPoster, error) {
	keys := []string{channel}
	if channel == "" {
		keys = c.channels.Names()
	}
	for _, k := range keys {
		if ch, ok := c.channels.Channel(k); ok {
			if mp, ok := ch.(adapters.MomentPoster); ok {
				return k, mp, nil
			}
		}
	}
	return "", nil, fmt.Errorf("no channel %q with moments: %w", channel, store.ErrNotFound)
}

// Publish asks the guides to post the message. A campaign whose key was
// published before is returned as it is. A channel refusing the task
// fails it (state failed, with the error): publish again with another
// key.
func (c *Campaigns) Publish(ctx context.Context, r Request) (*store.MomentTask, error) {
	if r.Key == "" || r.Brand == "" || r.Message == nil {
		return nil, fmt.Errorf("key, brand and a message are required: %w", store.ErrInvalid)
	}
	if t, err := c.store.MomentTaskByKey(ctx, r.Key); err == nil {
		return t, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	key, mp, err := c.poster(r.Channel)
	if err != nil {
		return nil, err
	}
	var guides []store.Guide
	switch {
	case r.StoreID != "" && len(r.GuideIDs) == 0:
		if _, err := c.store.RetailStore(ctx, r.StoreID, r.Brand); err != nil {
			return nil, err
		}
		if guides, err = c.store.Guides(ctx, "", r.StoreID, store.Page{Limit: 1000}); err != nil {
			return nil, err
		}
	case r.StoreID == "" && len(r.GuideIDs) > 0:
		for _, id := range r.GuideIDs {
			g, err := c.store.Guide(ctx, id, r.Brand)
			if err != nil {
				return nil, fmt.Errorf("guide %s: %w", id, err)
			}
			guides = append(guides, *g)
		}
	default:
		return nil, fmt.Errorf("name a store_id or guide_ids: %w", store.ErrInvalid)
	}
	var senders []string
	for _, g := range guides {
		if id := g.Identity(key); g.Active && id != "" {
			senders = append(senders, id)
		}
	}
	if len(senders) == 0 {
		return nil, fmt.Errorf("no active guide with an id on %s: %w", key, store.ErrConflict)
	}
	fields, _ := json.Marshal(r.Message.Fields)
	sj, _ := json.Marshal(senders)
	now := c.now().UTC()
	until := now.Add(c.FollowFor)
	t := &store.MomentTask{Key: r.Key, Channel: key, BrandID: r.Brand, StoreID: r.StoreID, Kind: r.Message.Kind, Text: r.Message.Text,
		Fields: string(fields), Senders: string(sj), State: store.MomentCreating, Asked: len(senders), Invalid: "[]", Posts: "[]",
		NextPollAt: &now, FollowUntil: &until}
	if created, err := c.store.CreateMomentTask(ctx, t); err != nil || !created {
		return t, err
	}
	job, err := mp.CreateMoment(ctx, senders, r.Message)
	if errors.Is(err, adapters.ErrInvalidMessage) {
		// Refused before WeCom was asked: nothing of it is kept.
		if derr := c.store.DeleteMomentTask(ctx, t.ID); derr != nil {
			c.log.Warn("deleting a refused moment task", slog.Int64("moment_task_id", t.ID), slog.Any("error", derr))
		}
		return nil, err
	}
	if err != nil {
		t.State, t.Error = store.MomentFailed, truncate(err.Error(), 500)
		if serr := c.store.SaveMomentTask(ctx, t); serr != nil {
			c.log.Warn("saving a failed moment task", slog.Int64("moment_task_id", t.ID), slog.Any("error", serr))
		}
		return nil, fmt.Errorf("creating the moment task on %s: %w", key, err)
	}
	t.JobID = job
	if err := c.store.SaveMomentTask(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// Campaign returns a campaign as last read from its channel.
func (c *Campaigns) Campaign(ctx context.Context, id int64, brand string) (*store.MomentTask, error) {
	return c.store.MomentTask(ctx, id, brand)
}

// Customers lists the contacts who can see a campaign's posts, at most
// limit.
func (c *Campaigns) Customers(ctx context.Context, t *store.MomentTask, limit int) ([]store.MomentTaskCustomer, error) {
	return c.store.MomentCustomers(ctx, t, limit)
}

// pollBatch is how many campaigns one Poll reads at most.
const pollBatch = 100

// Poll reads the campaigns due from their channels (store.MomentTasksDue)
// and returns how many it read. A campaign that fails to read is
// logged and read again at the next Poll; the others go on.
func (c *Campaigns) Poll(ctx context.Context) (int, error) {
	now := c.now().UTC()
	ts, err := c.store.MomentTasksDue(ctx, now, pollBatch)
	if err != nil {
		return 0, fmt.Errorf("listing moment campaigns due: %w", err)
	}
	n := 0
	for i := range ts {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if err := c.poll(ctx, &ts[i], now); err != nil {
			c.log.WarnContext(ctx, "reading a moment campaign", slog.Int64("moment_task_id", ts[i].ID), slog.Any("error", err))
			continue
		}
		n++
	}
	return n, nil
}

// poll reads one campaign: its job until done (failed when it takes
// longer than JobTimeout), then who posted and which contacts can see
// each post, and saves it with its next reading.
func (c *Campaigns) poll(ctx context.Context, t *store.MomentTask, now time.Time) error {
	_, mp, err := c.poster(t.Channel)
	if err != nil {
		return err
	}
	if t.State == store.MomentCreating {
		j, err := mp.MomentJob(ctx, t.JobID)
		if err != nil {
			return fmt.Errorf("reading the moment job: %w", err)
		}
		t.PolledAt = &now
		if !j.Done {
			if now.Sub(t.CreatedAt) > c.JobTimeout {
				t.State, t.Error, t.NextPollAt = store.MomentFailed, truncate("the channel's job did not finish within "+c.JobTimeout.String(), 500), nil
			}
			return c.store.SaveMomentTask(ctx, t)
		}
		inv, _ := json.Marshal(orEmpty(j.Invalid))
		t.Invalid = string(inv)
		if j.ErrorMsg != "" || j.ID == "" {
			t.State, t.Error, t.NextPollAt = store.MomentFailed, truncate("the channel could not create the task: "+j.ErrorMsg, 500), nil
			return c.store.SaveMomentTask(ctx, t)
		}
		t.State, t.MomentID = store.MomentCreated, j.ID
	}
	posts, err := mp.MomentPosts(ctx, t.MomentID)
	if err != nil {
		return fmt.Errorf("reading who posted: %w", err)
	}
	t.Posted = 0
	for _, p := range posts {
		if !p.Posted {
			continue
		}
		t.Posted++
		if au, ok := mp.(adapters.MomentAudience); ok {
			ids, err := au.MomentCustomers(ctx, t.MomentID, p.Guide)
			if err != nil {
				return fmt.Errorf("reading who can see %s's post: %w", p.Guide, err)
			}
			if err := c.store.SaveMomentCustomers(ctx, t.ID, p.Guide, ids); err != nil {
				return err
			}
		}
	}
	byGuide, err := c.store.CountMomentCustomers(ctx, t.ID)
	if err != nil {
		return err
	}
	t.Reached = 0
	for i := range posts {
		posts[i].Customers = byGuide[posts[i].Guide]
		t.Reached += posts[i].Customers
	}
	pj, _ := json.Marshal(orEmpty(posts))
	t.Posts = string(pj)
	t.PolledAt = &now
	// Read again after PollEvery while the follow period lasts
	// (MomentTasksDue).
	next := now.Add(c.PollEvery)
	t.NextPollAt = &next
	return c.store.SaveMomentTask(ctx, t)
}

// List lists a brand's campaigns, newest first.
func (c *Campaigns) List(ctx context.Context, brand string, p store.Page) ([]store.MomentTask, error) {
	return c.store.MomentTasks(ctx, brand, p)
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
