package console

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
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

// Sort orders of the guides page (sorted in the database: store.GuideBoard).
const (
	sortOverdue = store.GuideBoardOverdue
	sortLoad    = store.GuideBoardLoad
	sortPoints  = store.GuideBoardPoints
	sortName    = store.GuideBoardName
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
	// Totals over all the brand's (or store's) guides, not only the
	// page's: Count guides.
	Count, Bound, Capacity int64
	OpenTasks, Late        int64
	OverdueLimitReached    bool
	SortLinks              []option
	// Page is the page shown (1 the first), From and To its rows' places
	// (1-based, 0 when it has none); Prev and Next link the pages around
	// it with the same sort, store and brand.
	Page, From, To int
	Prev, Next     string
}

// guidesPageSize is how many guides a page of the guides page shows;
// maxGuidesPage bounds ?page= (a million guides).
const (
	guidesPageSize = 100
	maxGuidesPage  = 10000
)

// overdueLimit bounds the overdue list.
const overdueLimit = 200

// guidesPage shows a brand's guides: load and capacity, members bound,
// open and overdue tasks, points this month (the leaderboard), 100 a page
// sorted in the database over all of them, with the overdue tasks
// listed: GET /console/guides?brand=&store=&sort=&page=.
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
	d.Page = 1
	if n, err := strconv.Atoi(ctx.Query("page")); err == nil && n > 1 {
		d.Page = min(n, maxGuidesPage)
	}
	loc := c.o.LedgerZone
	if loc == nil {
		loc = shownZone
	}
	d.Month, _ = api.Period(api.PeriodThisMonth, now, loc)
	// The page's rows sorted over all the brand's (or store's) guides,
	// with the totals of them all, in one query: a brand may have 12,000
	// guides.
	offset := (d.Page - 1) * guidesPageSize
	board, totals, err := c.o.Store.GuideBoard(rctx, store.GuideBoardQuery{Brand: brand, StoreID: d.Store, Month: d.Month, Now: now,
		Sort: d.Sort, Offset: offset, Limit: guidesPageSize})
	if err != nil {
		c.fail(ctx, err)
		return
	}
	d.Count, d.Bound, d.Capacity, d.OpenTasks, d.Late = totals.Guides, totals.Bound, totals.Capacity, totals.Open, totals.Overdue
	for _, g := range board {
		d.Rows = append(d.Rows, guideRow{ID: g.ID, Name: g.Name, StoreID: g.StoreID, StoreName: names[g.StoreID], Active: g.Active && g.LeftAt == nil,
			Capacity: g.Capacity, Bound: g.Bound, Open: g.Open, Overdue: g.Overdue, Points: g.Points, Rank: g.Rank})
	}
	if len(d.Rows) > 0 {
		d.From, d.To = offset+1, offset+len(d.Rows)
	}
	if d.Tasks {
		tasks, err := c.o.Store.OverdueGuideTasks(rctx, brand, d.Store, now, overdueLimit)
		if err != nil {
			c.fail(ctx, err)
			return
		}
		d.OverdueLimitReached = len(tasks) == overdueLimit
		var ids []string
		for _, t := range tasks {
			if !slices.Contains(ids, t.GuideID) {
				ids = append(ids, t.GuideID)
			}
		}
		gname, err := c.o.Store.GuideNames(rctx, ids)
		if err != nil {
			c.fail(ctx, err)
			return
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
	link := func(sort string, page int) string {
		q := url.Values{"sort": {sort}}
		if d.Admin {
			q.Set("brand", brand)
		}
		if d.Store != "" {
			q.Set("store", d.Store)
		}
		if page > 1 {
			q.Set("page", strconv.Itoa(page))
		}
		return Path + "/guides?" + q.Encode()
	}
	for _, s := range []string{sortOverdue, sortLoad, sortPoints, sortName} {
		if s == sortOverdue && !d.Tasks {
			continue
		}
		d.SortLinks = append(d.SortLinks, option{s, link(s, 1)})
	}
	if d.Page > 1 {
		d.Prev = link(d.Sort, min(d.Page-1, int((d.Count+guidesPageSize-1)/guidesPageSize)))
	}
	if int64(offset+len(d.Rows)) < d.Count && len(d.Rows) == guidesPageSize {
		d.Next = link(d.Sort, d.Page+1)
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
