// Package moments publishes content for guides to post where their
// contacts see it (WeCom Moments, 朋友圈) on channels that have it
// (adapters.MomentPoster), as a campaign of a brand: the guides of a
// store, or those named, are asked; the channel creates the task in the
// background (a job), and reading a campaign asks the channel how its
// job went and who has posted, counting the posts.
package moments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
)

// Campaigns publishes moment tasks.
type Campaigns struct {
	store    *store.Store
	channels *adapters.Registry
	log      *slog.Logger
}

// New returns Campaigns over the registry's channels that are
// MomentPosters.
func New(s *store.Store, channels *adapters.Registry, log *slog.Logger) *Campaigns {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Campaigns{store: s, channels: channels, log: log}
}

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
	t := &store.MomentTask{Key: r.Key, Channel: key, BrandID: r.Brand, StoreID: r.StoreID, Kind: r.Message.Kind, Text: r.Message.Text,
		Fields: string(fields), Senders: string(sj), State: store.MomentCreating, Asked: len(senders), Invalid: "[]", Posts: "[]"}
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

// Refresh asks the channel how a campaign's job went and, once the task
// exists, who posted; it saves and returns the campaign.
func (c *Campaigns) Refresh(ctx context.Context, id int64, brand string) (*store.MomentTask, error) {
	t, err := c.store.MomentTask(ctx, id, brand)
	if err != nil {
		return nil, err
	}
	if t.State == store.MomentFailed || t.JobID == "" {
		return t, nil
	}
	_, mp, err := c.poster(t.Channel)
	if err != nil {
		return nil, err
	}
	if t.State == store.MomentCreating {
		j, err := mp.MomentJob(ctx, t.JobID)
		if err != nil {
			return nil, fmt.Errorf("reading the moment job: %w", err)
		}
		if !j.Done {
			return t, nil
		}
		inv, _ := json.Marshal(orEmpty(j.Invalid))
		t.Invalid = string(inv)
		if j.ErrorMsg != "" || j.ID == "" {
			t.State, t.Error = store.MomentFailed, truncate("the channel could not create the task: "+j.ErrorMsg, 500)
			return t, c.store.SaveMomentTask(ctx, t)
		}
		t.State, t.MomentID = store.MomentCreated, j.ID
	}
	posts, err := mp.MomentPosts(ctx, t.MomentID)
	if err != nil {
		return nil, fmt.Errorf("reading who posted: %w", err)
	}
	t.Posted = 0
	for _, p := range posts {
		if p.Posted {
			t.Posted++
		}
	}
	pj, _ := json.Marshal(orEmpty(posts))
	t.Posts = string(pj)
	return t, c.store.SaveMomentTask(ctx, t)
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
