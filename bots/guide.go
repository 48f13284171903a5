package bots

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
)

// maxLookup is how many members a lookup lists.
const maxLookup = 10

// lookup finds the guide's own members by phone tail (four digits) or
// name. Full phone numbers are never shown, and other guides' members are
// never searched. A query it cannot use gets the usage.
func (d Deps) lookup(ctx context.Context, m *Message, g *store.Guide, q string, data *templates.Data) ([]Reply, error) {
	q = cut(strings.TrimSpace(q), 50)
	data.Guide = templates.Guide{Name: g.Name}
	if q == "" || isDigits(q) && len([]rune(q)) != 4 {
		return d.render(TemplateMemberLookup, m, data, nil) // usage
	}
	found, err := d.Guides.FindGuideMembers(ctx, g.ID, q, maxLookup)
	if err != nil {
		return nil, fmt.Errorf("looking up members: %w", err)
	}
	data.Handoff.Text = q
	for _, f := range found {
		data.Members = append(data.Members, templates.Member{Name: f.Name, PhoneTail: f.PhoneTail, Level: f.Level, Points: f.Points})
	}
	return d.render(TemplateMemberLookup, m, data, nil)
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// stats answers "my stats": the guide's figures this month, in their
// store's time zone.
func (d Deps) stats(ctx context.Context, m *Message, g *store.Guide, data *templates.Data) ([]Reply, error) {
	loc := d.guideZone(ctx, g)
	now := d.now().In(loc)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc)
	st, err := d.Guides.GuideStatsSince(ctx, g.ID, month, endOfDay(now))
	if err != nil {
		return nil, fmt.Errorf("counting guide stats: %w", err)
	}
	data.Guide = templates.Guide{Name: g.Name}
	data.Stats = statsData(st, now)
	if data.Stats.Points, err = d.guidePoints(ctx, g, now); err != nil {
		return nil, err
	}
	return d.render(TemplateMyStats, m, data, nil)
}

// statsData maps the store's figures onto the template's; Points, the
// guide's own points, come from the guide points ledger (guidePoints).
func statsData(st *store.GuideStats, now time.Time) templates.Stats {
	return templates.Stats{Date: now.Format("2006-01-02"), MembersBound: st.MembersBound, NewMembers: st.NewMembers,
		OpenTasks: st.OpenTasks, DueTasks: st.DueBefore, TasksDone: st.TasksDone, NudgesConverted: st.RunsConverted,
		OpenHandoffs: st.OpenHandoffs}
}

func (d Deps) guideZone(ctx context.Context, g *store.Guide) *time.Location {
	rs, err := d.Directory.RetailStore(ctx, g.StoreID, "")
	if err != nil {
		return zoneOf("")
	}
	return zoneOf(rs.TimeZone)
}

func endOfDay(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location()).AddDate(0, 0, 1)
}

// digestWindow is how late a morning digest may still go out: a gateway
// that was down all morning does not push "good morning" at night.
const digestWindow = 3 * time.Hour

// maxDigestTasks is how many due tasks a digest lists.
const maxDigestTasks = 5

// SendDigests queues the daily digest of every guide whose store's local
// time is past at (a time of day) and within digestWindow of it, once
// per guide and local day: a guide's digest is keyed by guide and day in
// the outbox, and marked in the database, so several workers running it
// at once send it once. It returns how many digests it queued.
func (d Deps) SendDigests(ctx context.Context, at time.Duration, out Outbox) (int, error) {
	zones, err := d.Guides.StoreTimeZones(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, zone := range zones {
		loc, err := time.LoadLocation(zone)
		if err != nil || zone == "" {
			d.log().WarnContext(ctx, "digest: store time zone unknown; skipped", slog.String("zone", zone))
			continue
		}
		now := d.now().In(loc)
		start := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc).Add(at)
		if now.Before(start) || !now.Before(start.Add(digestWindow)) {
			continue
		}
		day := now.Format("2006-01-02")
		after := ""
		for {
			guides, err := d.Guides.GuidesWithoutDigest(ctx, zone, day, after, 200)
			if err != nil {
				return n, err
			}
			for i := range guides {
				g := &guides[i]
				sent, err := d.digest(ctx, g, now, day, out)
				if err != nil {
					return n, fmt.Errorf("digest of guide %s: %w", g.ID, err)
				}
				if sent {
					n++
				}
			}
			if len(guides) < 200 {
				break
			}
			after = guides[len(guides)-1].ID
		}
	}
	return n, nil
}

func (d Deps) digest(ctx context.Context, g *store.Guide, now time.Time, day string, out Outbox) (bool, error) {
	channel, addr := d.guideAddress(g, "")
	if channel == "" {
		// On no configured channel: nothing to send today.
		_, err := d.Guides.MarkDigest(ctx, g.ID, day, d.now())
		return false, err
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, now.Location())
	st, err := d.Guides.GuideStatsSince(ctx, g.ID, today.AddDate(0, 0, -1), endOfDay(now))
	if err != nil {
		return false, err
	}
	ms, err := d.Guides.GuideStatsSince(ctx, g.ID, month, endOfDay(now))
	if err != nil {
		return false, err
	}
	data := &templates.Data{Guide: templates.Guide{Name: g.Name}, Stats: statsData(st, now), TimeZone: now.Location().String()}
	data.Stats.NudgesConverted, data.Stats.TasksDone = ms.RunsConverted, ms.TasksDone
	if data.Stats.Points, err = d.guidePoints(ctx, g, now); err != nil {
		return false, err
	}
	// Overdue tasks first (marked), then those due today.
	tasks, err := d.Directory.GuideTasks(ctx, store.GuideTaskFilter{GuideID: g.ID, State: store.GuideTaskOpen, Limit: maxDigestTasks, ByDue: true})
	if err != nil {
		return false, err
	}
	for _, t := range tasks {
		if t.DueAt.Before(endOfDay(now)) {
			data.Tasks = append(data.Tasks, templates.Task{ID: t.ID, Title: t.Title, Due: t.DueAt, Overdue: t.DueAt.Before(now)})
		}
	}
	r, err := d.renderTo(TemplateGuideDigest, d.guideLocale(), &Recipient{Channel: channel, ID: addr, Party: adapters.PartyGuide, GuideID: g.ID}, data)
	if err != nil {
		return false, err
	}
	r.Key = "digest:" + g.ID + ":" + day
	if err := out.Queue(ctx, r); err != nil {
		return false, err
	}
	if _, err := d.Guides.MarkDigest(ctx, g.ID, day, d.now()); err != nil && !errors.Is(err, store.ErrConflict) {
		return false, err
	}
	return true, nil
}
