package console

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// Funnels computes a workflow's funnel over the runs a filter selects:
// the engine's Stats (GET /api/v1/workflows/{name}/stats) narrowed to a
// period, a store or a guide. *engine.Engine implements it.
type Funnels interface {
	Funnel(ctx context.Context, brand, name string, f store.FunnelFilter) (*engine.Stats, error)
}

// funnelDays is the default period: the last 30 days, today included.
const funnelDays = 30

// dateLayout is the period's form fields' (type=date).
const dateLayout = "2006-01-02"

// reasonCount is a count of failures for one reason.
type reasonCount struct {
	Reason string
	N      int64
}

// funnelStep is one step's row of the funnel: runs that entered it, and
// for a send step what became of its messages.
type funnelStep struct {
	ID   string
	Kind string
	// Send marks a send step (Sent and Delivered mean something).
	Send                     bool
	Entered, Sent, Delivered int64
	Failed, Skipped          int64
	FailedBy                 []reasonCount
}

// funnelTotals is the whole workflow's line.
type funnelTotals struct {
	Entered, Sent, Delivered, Converted, Failed int64
	FailedBy                                    []reasonCount
}

// Rate is the share of entered runs that converted, as a percentage.
func (t funnelTotals) Rate() string {
	if t.Entered == 0 {
		return "–"
	}
	return strconv.FormatFloat(float64(t.Converted)*100/float64(t.Entered), 'f', 1, 64) + "%"
}

// funnelOf turns the engine's stats into the funnel's rows. Delivered
// counts the sent messages the member received: those confirmed delivered
// and those complete when the channel accepted them (not those a guide has
// yet to send, nor those that never arrived). Failed counts a send step's
// messages that failed and another step's failed visits.
func funnelOf(st *engine.Stats) (funnelTotals, []funnelStep) {
	t := funnelTotals{Entered: st.Entered, Converted: st.Converted}
	by := map[string]int64{}
	steps := make([]funnelStep, 0, len(st.Steps))
	for _, s := range st.Steps {
		fs := funnelStep{ID: s.ID, Kind: string(s.Kind), Entered: s.Reached, Failed: s.Failed, Skipped: s.Skipped}
		failedBy := s.FailedBy
		if s.Sends != nil {
			fs.Send = true
			fs.Sent = s.Sends.Sent
			fs.Delivered = s.Sends.Sent - s.Sends.NotConfirmed - s.Sends.Undelivered
			fs.Failed, fs.Skipped, failedBy = s.Sends.Failed, s.Sends.Skipped, s.Sends.FailedBy
		}
		fs.FailedBy = sortedReasons(failedBy)
		for k, n := range failedBy {
			by[k] += n
		}
		t.Sent += fs.Sent
		t.Delivered += fs.Delivered
		t.Failed += fs.Failed
		steps = append(steps, fs)
	}
	t.FailedBy = sortedReasons(by)
	return t, steps
}

func sortedReasons(m map[string]int64) []reasonCount {
	out := make([]reasonCount, 0, len(m))
	for k, n := range m {
		if n > 0 {
			out = append(out, reasonCount{k, n})
		}
	}
	slices.SortFunc(out, func(a, b reasonCount) int {
		if a.N != b.N {
			return int(b.N - a.N)
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	return out
}

// option is an entry of a filter's select.
type option struct{ Value, Label string }

type funnelData struct {
	Workflows []option
	// Workflow is brand/name; Brand and Name its parts.
	Workflow, Brand, Name string
	From, To              string
	Store, Guide          string
	Stores, Guides        []option
	// StoreTyped and GuideTyped: the brand has more stores (guides)
	// than a list shows (funnelOptions), so the filter is a field to
	// type an id in; StoreMatches are the stores whose id or name
	// contains what was typed when it is not a store's id.
	StoreTyped, GuideTyped bool
	StoreMatches           []storeMatch
	Error                  string
	Totals                 funnelTotals
	Steps                  []funnelStep
	Chart                  template.HTML
	// CSV is the download's URL (the same query).
	CSV string
}

// funnelOptions is the most stores (guides) a filter lists; past it the
// filter is a field to type an id in.
const funnelOptions = 1000

// funnelMatches is how many stores the typed store filter suggests.
const funnelMatches = 10

// storeMatch is a store suggested for what was typed, with the funnel's
// URL filtered to it.
type storeMatch struct {
	ID, Name, URL string
}

// funnelQuery is a funnel request's workflow and filter, checked against
// what the principal may see.
type funnelQuery struct {
	brand, name string
	filter      store.FunnelFilter
	from, to    string
}

// funnelPage shows a workflow's funnel: GET /console/funnel?workflow=
// brand/name&from=&to=&store=&guide=.
func (c *Console) funnelPage(ctx *gin.Context) {
	d, q, ok := c.funnelRequest(ctx)
	if !ok {
		return
	}
	if q != nil && d.Error == "" {
		st, err := c.funnels().Funnel(ctx.Request.Context(), q.brand, q.name, q.filter)
		if err != nil {
			c.fail(ctx, err)
			return
		}
		d.Totals, d.Steps = funnelOf(st)
		d.Chart = funnelChart(d.Name, d.Steps, language(ctx.Request))
	}
	status := http.StatusOK
	if d.Error != "" {
		status = http.StatusBadRequest
	}
	c.render(ctx, status, "funnel", "funnel.title", "/funnel", d)
}

// funnelCSV answers the funnel as CSV: GET /console/funnel.csv with the
// page's query; the same numbers as the page.
func (c *Console) funnelCSV(ctx *gin.Context) {
	d, q, ok := c.funnelRequest(ctx)
	if !ok {
		return
	}
	if q == nil || d.Error != "" {
		c.notFound(ctx)
		return
	}
	st, err := c.funnels().Funnel(ctx.Request.Context(), q.brand, q.name, q.filter)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	totals, steps := funnelOf(st)
	ctx.Header("Content-Type", "text/csv; charset=utf-8")
	ctx.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="funnel-%s-%s-%s-%s.csv"`, q.brand, q.name, q.from, q.to))
	ctx.Status(http.StatusOK)
	w := csv.NewWriter(ctx.Writer)
	w.Write([]string{"brand", "workflow", "from", "to", "store", "guide", "step", "kind", "entered", "sent", "delivered", "converted", "failed", "failed_by_reason"})
	head := []string{q.brand, q.name, q.from, q.to, q.filter.StoreID, q.filter.GuideID}
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	w.Write(append(slices.Clone(head), "", "workflow", n(totals.Entered), n(totals.Sent), n(totals.Delivered), n(totals.Converted), n(totals.Failed), reasons(totals.FailedBy)))
	for _, s := range steps {
		sent, delivered := "", ""
		if s.Send {
			sent, delivered = n(s.Sent), n(s.Delivered)
		}
		w.Write(append(slices.Clone(head), s.ID, s.Kind, n(s.Entered), sent, delivered, "", n(s.Failed), reasons(s.FailedBy)))
	}
	w.Flush()
}

// reasons writes failures by reason as reason=n;reason=n.
func reasons(rs []reasonCount) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.Reason + "=" + strconv.FormatInt(r.N, 10)
	}
	return strings.Join(parts, ";")
}

// funnels is the funnel's source: Options.Funnels, or the workflows'
// engine when it computes funnels.
func (c *Console) funnels() Funnels {
	if c.o.Funnels != nil {
		return c.o.Funnels
	}
	if f, ok := c.o.Workflows.(Funnels); ok {
		return f
	}
	return nil
}

// funnelRequest reads and checks the funnel's query. q is nil when the
// principal sees no workflow; a bad filter is d.Error. ok is false when it
// answered already (another brand's workflow: 404).
func (c *Console) funnelRequest(ctx *gin.Context) (d *funnelData, q *funnelQuery, ok bool) {
	p := principalOf(ctx)
	rctx := ctx.Request.Context()
	lang := language(ctx.Request)
	if c.funnels() == nil {
		c.notFound(ctx)
		return nil, nil, false
	}
	ws, err := c.o.Store.Workflows(rctx, store.WorkflowFilter{Brand: p.Brand})
	if err != nil {
		c.fail(ctx, err)
		return nil, nil, false
	}
	d = &funnelData{}
	for _, w := range ws {
		label := w.Name
		if p.Admin() {
			label = w.BrandID + " / " + w.Name
		}
		d.Workflows = append(d.Workflows, option{w.BrandID + "/" + w.Name, label})
	}
	d.Workflow = ctx.Query("workflow")
	if d.Workflow == "" {
		if len(ws) == 0 {
			return d, nil, true
		}
		d.Workflow = d.Workflows[0].Value
	}
	brand, name, _ := strings.Cut(d.Workflow, "/")
	if !p.Admin() && brand != p.Brand || !slices.ContainsFunc(ws, func(w store.Workflow) bool { return w.BrandID == brand && w.Name == name }) {
		c.notFound(ctx)
		return nil, nil, false
	}
	d.Brand, d.Name = brand, name
	q = &funnelQuery{brand: brand, name: name}

	// The period, in whole days of the console's zone, to inclusive.
	today := c.o.Now().In(shownZone)
	to := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, shownZone)
	from := to.AddDate(0, 0, -(funnelDays - 1))
	var bad []string
	if v := ctx.Query("from"); v != "" {
		if t, err := time.ParseInLocation(dateLayout, v, shownZone); err == nil {
			from = t
		} else {
			bad = append(bad, translate(lang, "funnel.bad_date", translate(lang, "funnel.from"), v))
		}
	}
	if v := ctx.Query("to"); v != "" {
		if t, err := time.ParseInLocation(dateLayout, v, shownZone); err == nil {
			to = t
		} else {
			bad = append(bad, translate(lang, "funnel.bad_date", translate(lang, "funnel.to"), v))
		}
	}
	if to.Before(from) {
		bad = append(bad, translate(lang, "funnel.bad_period"))
	}
	q.from, q.to = from.Format(dateLayout), to.Format(dateLayout)
	d.From, d.To = q.from, q.to
	q.filter = store.FunnelFilter{From: from, To: to.AddDate(0, 0, 1)}

	// The filters list the brand's stores and guides, up to
	// funnelOptions of each; past that they are fields to type an id in
	// (a brand may have 200,000 stores).
	opts, err := c.o.Store.StoreOptions(rctx, brand, "", funnelOptions+1)
	if err != nil {
		c.fail(ctx, err)
		return nil, nil, false
	}
	if len(opts) > funnelOptions {
		d.StoreTyped = true
	} else {
		for _, o := range opts {
			d.Stores = append(d.Stores, option{o.ID, o.Name})
		}
	}
	storeID, guideID := strings.TrimSpace(ctx.Query("store")), strings.TrimSpace(ctx.Query("guide"))
	storeOK := false
	if storeID != "" {
		if _, err := c.o.Store.RetailStore(rctx, storeID, brand); errors.Is(err, store.ErrNotFound) {
			bad = append(bad, translate(lang, "funnel.bad_store", storeID))
			if d.StoreTyped {
				// What was typed may be part of a name or id: suggest
				// the stores it names.
				ms, err := c.o.Store.SearchStores(rctx, brand, storeID, funnelMatches)
				if err != nil {
					c.fail(ctx, err)
					return nil, nil, false
				}
				for _, m := range ms {
					u := url.Values{"workflow": {d.Workflow}, "from": {q.from}, "to": {q.to}, "store": {m.ID}}
					d.StoreMatches = append(d.StoreMatches, storeMatch{ID: m.ID, Name: m.Name, URL: Path + "/funnel?" + u.Encode()})
				}
			}
		} else if err != nil {
			c.fail(ctx, err)
			return nil, nil, false
		} else {
			storeOK = true
		}
		d.Store, q.filter.StoreID = storeID, storeID
	}
	// The guide filter lists the chosen store's guides, or those of the
	// brand's stores when they are listed.
	var guides []store.Option
	var ids []string
	switch {
	case storeOK:
		ids = []string{storeID}
	case storeID == "" && !d.StoreTyped:
		for _, o := range opts {
			ids = append(ids, o.ID)
		}
	}
	if guides, err = c.o.Store.GuideOptions(rctx, ids, funnelOptions+1); err != nil {
		c.fail(ctx, err)
		return nil, nil, false
	}
	if d.StoreTyped && storeID == "" || len(guides) > funnelOptions {
		d.GuideTyped = true
	} else {
		for _, g := range guides {
			d.Guides = append(d.Guides, option{g.ID, g.Name})
		}
	}
	if guideID != "" {
		// A guide of the brand, and of the store when one is chosen.
		g, err := c.o.Store.Guide(rctx, guideID, brand)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			c.fail(ctx, err)
			return nil, nil, false
		}
		if err != nil || storeID != "" && g.StoreID != storeID {
			bad = append(bad, translate(lang, "funnel.bad_guide", guideID))
		}
		d.Guide, q.filter.GuideID = guideID, guideID
	}
	d.Error = strings.Join(bad, " ")
	u := url.Values{"workflow": {d.Workflow}, "from": {q.from}, "to": {q.to}}
	if d.Store != "" {
		u.Set("store", d.Store)
	}
	if d.Guide != "" {
		u.Set("guide", d.Guide)
	}
	d.CSV = Path + "/funnel.csv?" + u.Encode()
	return d, q, true
}

// Chart geometry, in SVG user units.
const (
	chartW      = 760
	chartLabelW = 190
	chartBarH   = 12
	chartGap    = 3
	chartRowGap = 18
)

// funnelChart draws the steps as bars: per step, the runs that entered it
// and, for a send step, the messages sent, delivered and failed, scaled to
// the most entered. Classes of console.css colour them; no inline style.
func funnelChart(name string, steps []funnelStep, lang string) template.HTML {
	var most int64 = 1
	for _, s := range steps {
		most = max(most, s.Entered, s.Sent, s.Failed)
	}
	type bar struct {
		class, key string
		n          int64
	}
	var b strings.Builder
	y := 34.0
	var body strings.Builder
	var desc []string
	barW := float64(chartW - chartLabelW - 70)
	for _, s := range steps {
		bars := []bar{{"bar-entered", "funnel.entered", s.Entered}}
		if s.Send {
			bars = append(bars, bar{"bar-sent", "funnel.sent", s.Sent}, bar{"bar-delivered", "funnel.delivered", s.Delivered})
		}
		bars = append(bars, bar{"bar-failed", "funnel.failed", s.Failed})
		h := float64(len(bars))*(chartBarH+chartGap) - chartGap
		fmt.Fprintf(&body, `<g class="chart-step"><text class="chart-step-id" x="0" y="%.1f">%s</text><text class="chart-step-kind" x="0" y="%.1f">%s</text>`,
			y+h/2-2, esc(truncateText(s.ID, 24)), y+h/2+13, esc(s.Kind))
		var said []string
		for i, br := range bars {
			by := y + float64(i)*(chartBarH+chartGap)
			w := barW * float64(br.n) / float64(most)
			if br.n > 0 {
				w = max(w, 2)
			}
			fmt.Fprintf(&body, `<rect class="%s" x="%d" y="%.1f" width="%.1f" height="%d" rx="2"><title>%s: %d</title></rect>`,
				br.class, chartLabelW, by, w, chartBarH, esc(translate(lang, br.key)), br.n)
			fmt.Fprintf(&body, `<text class="chart-num" x="%.1f" y="%.1f">%d</text>`, float64(chartLabelW)+w+6, by+chartBarH-2, br.n)
			said = append(said, fmt.Sprintf("%s %d", translate(lang, br.key), br.n))
		}
		desc = append(desc, s.ID+": "+strings.Join(said, ", "))
		body.WriteString(`</g>`)
		y += h + chartRowGap
	}
	height := y + 4
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %.0f" width="100%%" role="img" aria-labelledby="chart-title chart-desc">`, chartW, height)
	fmt.Fprintf(&b, `<title id="chart-title">%s</title><desc id="chart-desc">%s</desc>`, esc(translate(lang, "funnel.chart_title", name)), esc(strings.Join(desc, "; ")))
	// The legend.
	x := float64(chartLabelW)
	for _, l := range []struct{ class, key string }{{"bar-entered", "funnel.entered"}, {"bar-sent", "funnel.sent"}, {"bar-delivered", "funnel.delivered"}, {"bar-failed", "funnel.failed"}} {
		label := translate(lang, l.key)
		fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="6" width="12" height="12" rx="2"/><text class="chart-legend" x="%.1f" y="16">%s</text>`, l.class, x, x+17, esc(label))
		x += 17 + float64(textWidth(label)) + 22
	}
	b.WriteString(body.String())
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// textWidth estimates a label's width at the chart's font size: wide
// characters (CJK) count double.
func textWidth(s string) int {
	w := 0
	for _, r := range s {
		if r > 0x2E80 {
			w += 13
		} else {
			w += 7
		}
	}
	return w
}
