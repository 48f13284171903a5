package console

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/store"
)

// pageBrand is the brand a brand-wide page (guides, stores) shows: a
// brand token's own (another brand in ?brand= is 404, as in the API), or
// for an admin ?brand= or the first brand. ok is false when it answered.
func (c *Console) pageBrand(ctx *gin.Context) (brand string, brands []string, ok bool) {
	return c.brandNamed(ctx, ctx.Query("brand"), false)
}

// brandNamed is the brand a request names (want): a brand token's own
// (another is 404, as in the API); for an admin, want when it exists
// (404 when not), or with want empty the first brand, unless required.
// It returns the brands the token may pick from too.
func (c *Console) brandNamed(ctx *gin.Context, want string, required bool) (brand string, brands []string, ok bool) {
	p := principalOf(ctx)
	if !p.Admin() {
		if want != "" && want != p.Brand {
			c.notFound(ctx)
			return "", nil, false
		}
		return p.Brand, []string{p.Brand}, true
	}
	brands, err := c.brandsOf(ctx)
	if err != nil {
		c.fail(ctx, err)
		return "", nil, false
	}
	if want != "" || required {
		if !slices.Contains(brands, want) {
			c.notFound(ctx)
			return "", nil, false
		}
		return want, brands, true
	}
	if len(brands) > 0 {
		brand = brands[0]
	}
	return brand, brands, true
}

// Sort orders of the guides page.
const (
	sortOverdue = "overdue"
	sortLoad    = "load"
	sortPoints  = "points"
	sortName    = "name"
)

type guideRow struct {
	ID, Name, StoreID, StoreName string
	Active                       bool
	Capacity, Bound              int
	Open, Overdue                int64
	Points                       int64
	Rank                         int
}

// LoadPercent is the guide's load, 0-100 (0 without a capacity).
func (g guideRow) LoadPercent() int {
	if g.Capacity <= 0 {
		return 0
	}
	return min(100, g.Bound*100/g.Capacity)
}

// MeterWidth is the load meter's filled width (of 90).
func (g guideRow) MeterWidth() int { return g.LoadPercent() * 90 / 100 }

// Full says the guide is at capacity.
func (g guideRow) Full() bool { return g.Capacity > 0 && g.Bound >= g.Capacity }

type overdueTask struct {
	store.GuideTask
	GuideName string
	Late      string
}

type guidesData struct {
	Brand  string
	Brands []string
	Admin  bool
	storeFilter
	Sort  string
	Month string
	Rows  []guideRow
	// Tasks shows the task columns and the overdue list (the token may
	// use the tasks route group).
	Tasks   bool
	Overdue []overdueTask
	// Members links guides and tasks to the members pages (the token
	// may use the members route group).
	Members bool
	// Totals over the rows.
	Bound, Capacity     int
	OpenTasks, Late     int64
	OverdueLimitReached bool
	SortLinks           []option
}

// overdueLimit bounds the overdue list.
const overdueLimit = 200

// guidesPage shows a brand's guides: load and capacity, members bound,
// open and overdue tasks, points this month (the leaderboard), with the
// overdue tasks listed: GET /console/guides?brand=&store=&sort=.
func (c *Console) guidesPage(ctx *gin.Context) {
	brand, brands, ok := c.pageBrand(ctx)
	if !ok {
		return
	}
	p := principalOf(ctx)
	rctx := ctx.Request.Context()
	now := c.o.Now()
	d := &guidesData{Brand: brand, Brands: brands, Admin: p.Admin(), Sort: ctx.Query("sort"), Tasks: p.Allows(api.ResourceTasks), Members: p.Allows(api.ResourceMembers)}
	if !slices.Contains([]string{sortOverdue, sortLoad, sortPoints, sortName}, d.Sort) {
		d.Sort = sortOverdue
		if !d.Tasks {
			d.Sort = sortLoad
		}
	}
	if brand == "" {
		c.render(ctx, http.StatusOK, "guides", "guides.title", "/guides", d)
		return
	}
	d.Store = ctx.Query("store")
	names, ok := c.loadStores(ctx, brand, &d.storeFilter)
	if !ok {
		return
	}
	guides, err := c.o.Store.Guides(rctx, brand, d.Store, store.Page{Limit: 1000})
	if err != nil {
		c.fail(ctx, err)
		return
	}
	loc := c.o.LedgerZone
	if loc == nil {
		loc = shownZone
	}
	d.Month, _ = api.Period(api.PeriodThisMonth, now, loc)
	board, err := c.o.Store.Leaderboard(rctx, store.LeaderboardQuery{Brand: brand, Month: d.Month, Limit: 1000})
	if err != nil {
		c.fail(ctx, err)
		return
	}
	places := map[string]store.LeaderboardRow{}
	for _, b := range board {
		places[b.GuideID] = b
	}
	var counts map[string]store.GuideTaskCount
	if d.Tasks {
		if counts, err = c.o.Store.BrandGuideTaskCounts(rctx, brand, now); err != nil {
			c.fail(ctx, err)
			return
		}
	}
	for _, g := range guides {
		r := guideRow{ID: g.ID, Name: g.Name, StoreID: g.StoreID, StoreName: names[g.StoreID], Active: g.Active && g.LeftAt == nil,
			Capacity: g.Capacity, Bound: g.BoundCount}
		if n, ok := counts[g.ID]; ok {
			r.Open, r.Overdue = n.Open+n.Overdue, n.Overdue
		}
		if b, ok := places[g.ID]; ok {
			r.Points, r.Rank = b.Points, b.Rank
		}
		d.Rows = append(d.Rows, r)
		d.Bound += r.Bound
		d.Capacity += r.Capacity
		d.OpenTasks += r.Open
		d.Late += r.Overdue
	}
	slices.SortStableFunc(d.Rows, func(a, b guideRow) int {
		switch d.Sort {
		case sortOverdue:
			if c := cmp.Compare(b.Overdue, a.Overdue); c != 0 {
				return c
			}
			return cmp.Compare(b.Open, a.Open)
		case sortLoad:
			return cmp.Compare(b.LoadPercent(), a.LoadPercent())
		case sortPoints:
			return cmp.Compare(b.Points, a.Points)
		}
		return strings.Compare(a.Name, b.Name)
	})
	if d.Tasks {
		tasks, err := c.o.Store.OverdueGuideTasks(rctx, brand, d.Store, now, overdueLimit)
		if err != nil {
			c.fail(ctx, err)
			return
		}
		d.OverdueLimitReached = len(tasks) == overdueLimit
		gname := map[string]string{}
		for _, g := range guides {
			gname[g.ID] = g.Name
		}
		lang := language(ctx.Request)
		for _, t := range tasks {
			name := gname[t.GuideID]
			if name == "" {
				name = t.GuideID
			}
			d.Overdue = append(d.Overdue, overdueTask{GuideTask: t, GuideName: name, Late: lateness(now.Sub(t.DueAt), lang)})
		}
	}
	for _, s := range []string{sortOverdue, sortLoad, sortPoints, sortName} {
		if s == sortOverdue && !d.Tasks {
			continue
		}
		q := url.Values{"sort": {s}}
		if d.Admin {
			q.Set("brand", brand)
		}
		if d.Store != "" {
			q.Set("store", d.Store)
		}
		d.SortLinks = append(d.SortLinks, option{s, Path + "/guides?" + q.Encode()})
	}
	c.render(ctx, http.StatusOK, "guides", "guides.title", "/guides", d)
}

// lateness says how long ago a task was due, in days or hours.
func lateness(d time.Duration, lang string) string {
	if d >= 24*time.Hour {
		return translate(lang, "guides.late_days", int(d/(24*time.Hour)))
	}
	return translate(lang, "guides.late_hours", max(1, int(d/time.Hour)))
}
