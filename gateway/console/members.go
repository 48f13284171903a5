package console

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/store"
)

// Ways to find members on the members page.
const (
	byName  = "name"
	byPhone = "phone"
	byCRM   = "crm"
)

// pickLimit bounds the stores and guides a filter offers to choose
// from; beyond it the filter takes a typed id.
const pickLimit = 1000

// storeFilter is a page's choice of one of the brand's stores: Store
// chosen ("" every store) from Stores; ManyStores says they were cut at
// pickLimit, so the page asks for an id instead of offering a choice.
type storeFilter struct {
	Store      string
	Stores     []option
	ManyStores bool
}

// loadStores offers the brand's stores in f and checks that the chosen
// one, when set, is the brand's (another brand's store answers 404). It
// returns the stores' names by id; ok is false when it answered.
func (c *Console) loadStores(ctx *gin.Context, brand string, f *storeFilter) (names map[string]string, ok bool) {
	rctx := ctx.Request.Context()
	stores, err := c.o.Store.RetailStores(rctx, brand, store.Page{Limit: pickLimit})
	if err != nil {
		c.fail(ctx, err)
		return nil, false
	}
	f.ManyStores = len(stores) == pickLimit
	names = map[string]string{}
	for _, s := range stores {
		f.Stores = append(f.Stores, option{s.ID, s.Name})
		names[s.ID] = s.Name
	}
	if f.Store != "" {
		if _, err := c.o.Store.RetailStore(rctx, f.Store, brand); err != nil {
			c.fail(ctx, err) // another brand's store: 404
			return nil, false
		}
	}
	return names, true
}

// membersPageSize is how many members a page of the list shows.
const membersPageSize = 50

type memberListRow struct {
	store.MemberRow
	Phone                string
	GuideName, StoreName string
}

type membersData struct {
	Brand  string
	Brands []string
	Admin  bool
	By     string
	Query  string
	storeFilter
	Guide  string
	Guides []option
	// ManyGuides: the guides were cut at pickLimit, so the page asks
	// for an id instead of offering a choice.
	ManyGuides bool
	Error      string
	// Searched says a search ran (an empty Rows is "none matches").
	Searched bool
	Rows     []memberListRow
	// Next is the link to the next page; First to the first when this
	// is not it.
	Next, First string
}

// membersPage lists a brand's members: found by phone or CRM id (one
// member), by name, or bound to a store or a guide, a page at a time:
// GET /console/members?brand=&by=&q=&store=&guide=&after=.
func (c *Console) membersPage(ctx *gin.Context) {
	brand, brands, ok := c.pageBrand(ctx)
	if !ok {
		return
	}
	p := principalOf(ctx)
	rctx := ctx.Request.Context()
	lang := language(ctx.Request)
	d := &membersData{Brand: brand, Brands: brands, Admin: p.Admin(), By: ctx.Query("by"), Query: strings.TrimSpace(ctx.Query("q")),
		storeFilter: storeFilter{Store: ctx.Query("store")}, Guide: ctx.Query("guide")}
	if !slices.Contains([]string{byName, byPhone, byCRM}, d.By) {
		d.By = byName
	}
	if brand == "" {
		c.render(ctx, http.StatusOK, "members", "members.title", "/members", d)
		return
	}
	storeNames, ok := c.loadStores(ctx, brand, &d.storeFilter)
	if !ok {
		return
	}
	// The guide filter lists the store's guides, or the brand's when
	// they are fewer than pickLimit; past that it is a field to type an
	// id in, suggesting the guides of the listed stores (a brand may
	// have 12,000 guides: reading them all to list the first 1,000 took
	// most of the page's time).
	var guides []store.Option
	var err error
	if d.Store != "" {
		guides, err = c.o.Store.GuideOptions(rctx, []string{d.Store}, pickLimit)
		d.ManyGuides = len(guides) == pickLimit
	} else if guides, d.ManyGuides, err = c.o.Store.BrandGuideOptions(rctx, brand, pickLimit-1); err == nil && d.ManyGuides {
		ids := make([]string, 0, len(d.Stores))
		for _, s := range d.Stores {
			ids = append(ids, s.Value)
		}
		guides, err = c.o.Store.GuideOptions(rctx, ids, pickLimit)
		guides = guides[:min(len(guides), pickLimit)]
	}
	if err != nil {
		c.fail(ctx, err)
		return
	}
	for _, g := range guides {
		d.Guides = append(d.Guides, option{g.ID, g.Name})
	}
	if d.Guide != "" {
		if _, err := c.o.Store.Guide(rctx, d.Guide, brand); err != nil {
			c.fail(ctx, err)
			return
		}
	}
	guideNames := map[string]string{}
	for _, g := range guides {
		guideNames[g.ID] = g.Name
	}
	row := func(r store.MemberRow) memberListRow {
		out := memberListRow{MemberRow: r, GuideName: guideNames[r.GuideID], StoreName: storeNames[r.StoreID]}
		if r.PhoneTail != "" {
			out.Phone = "*******" + r.PhoneTail
		}
		if out.GuideName == "" {
			out.GuideName = r.GuideID
		}
		if out.StoreName == "" {
			out.StoreName = r.StoreID
		}
		return out
	}
	switch {
	case d.Query != "" && (d.By == byPhone || d.By == byCRM):
		d.Searched = true
		var v *store.MemberView
		if d.By == byPhone {
			v, err = c.o.Store.MemberByPhone(rctx, d.Query, brand)
		} else {
			v, err = c.memberByCRM(ctx, brand, d.Query)
		}
		switch {
		case errors.Is(err, store.ErrInvalid):
			d.Error = translate(lang, "members.bad_phone", d.Query)
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			c.fail(ctx, err)
			return
		default:
			r := store.MemberRow{ID: v.ID, Name: v.Name, PhoneTail: v.TailFor(brand)}
			for _, ms := range v.Memberships {
				if ms.BrandID == brand {
					r.Level, r.Points, r.JoinedAt = ms.Level, ms.Points, ms.CreatedAt
				}
			}
			for _, b := range v.Bindings {
				if b.BrandID == brand {
					r.GuideID, r.StoreID = b.GuideID, b.StoreID
				}
			}
			d.Rows = append(d.Rows, row(r))
		}
	case d.Query != "" || d.Store != "" || d.Guide != "":
		d.Searched = true
		after, _ := strconv.ParseInt(ctx.Query("after"), 10, 64)
		rows, err := c.o.Store.SearchMembers(rctx, store.MemberSearch{Brand: brand, Name: d.Query, StoreID: d.Store, GuideID: d.Guide,
			After: after, Limit: membersPageSize + 1})
		if err != nil {
			c.fail(ctx, err)
			return
		}
		more := len(rows) > membersPageSize
		if more {
			rows = rows[:membersPageSize]
		}
		for _, r := range rows {
			d.Rows = append(d.Rows, row(r))
		}
		q := url.Values{}
		for k, v := range map[string]string{"q": d.Query, "store": d.Store, "guide": d.Guide} {
			if v != "" {
				q.Set(k, v)
			}
		}
		q.Set("by", d.By)
		if d.Admin {
			q.Set("brand", brand)
		}
		if after > 0 {
			d.First = Path + "/members?" + q.Encode()
		}
		if more {
			q.Set("after", strconv.FormatInt(rows[len(rows)-1].ID, 10))
			d.Next = Path + "/members?" + q.Encode()
		}
	}
	// The names of the rows' guides the filter does not list.
	var missing []string
	for _, r := range d.Rows {
		if r.GuideID != "" && guideNames[r.GuideID] == "" && !slices.Contains(missing, r.GuideID) {
			missing = append(missing, r.GuideID)
		}
	}
	if len(missing) > 0 {
		names, err := c.o.Store.GuideNames(rctx, missing)
		if err != nil {
			c.fail(ctx, err)
			return
		}
		for i := range d.Rows {
			if n := names[d.Rows[i].GuideID]; n != "" && guideNames[d.Rows[i].GuideID] == "" {
				d.Rows[i].GuideName = n
			}
		}
	}
	c.render(ctx, http.StatusOK, "members", "members.title", "/members", d)
}

// memberByCRM finds the member a brand's CRM knows by id (the identity
// crm:<brand>), as the brand may see them.
func (c *Console) memberByCRM(ctx *gin.Context, brand, id string) (*store.MemberView, error) {
	v, err := c.o.Store.MemberByIdentity(ctx.Request.Context(), "crm:"+brand, id)
	if err != nil {
		return nil, err
	}
	return c.o.Store.Member(ctx.Request.Context(), v.ID, brand)
}

// memberParam reads the path's member id: a malformed one is 404.
func (c *Console) memberParam(ctx *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(ctx.Param("id"), 10, 64)
	if err != nil || id < 1 {
		c.notFound(ctx)
		return 0, false
	}
	return id, true
}

// shownLimit is how many of a member's runs and messages the page shows
// (the export has them all).
const shownLimit = 20

type runView struct {
	store.WorkflowRun
	Steps []store.RunStep
	Where string
}

type memberMessage struct {
	At      time.Time
	Channel string
	Kind    string
	State   string
	Text    string
}

type consentView struct {
	Brand, Channel string
	Unsubscribed   bool
	At             time.Time
}

type bindingView struct {
	store.Binding
	GuideName, StoreName string
}

type memberData struct {
	X *store.MemberExport
	// Phone is shown masked unless the token may see phones.
	Phone       string
	PhoneMasked bool
	Admin       bool
	// CanErase: the token may write members.
	CanErase  bool
	Bindings  []bindingView
	Consent   []consentView
	Runs      []runView
	RunsTotal int
	Sent      []memberMessage
	SentTotal int
	Received  []memberMessage
	RecvTotal int
	Points    []store.PointsLine
	PtsTotal  int
	Orders    []store.Order
	Shown     int
}

// memberPage shows one member as the token's brand knows them (the admin:
// every brand): identities per channel instance, bindings, tags, consent,
// points, coupons, orders, runs with their steps, recent messages; with
// the export and erase actions: GET /console/members/:id.
func (c *Console) memberPage(ctx *gin.Context) {
	id, ok := c.memberParam(ctx)
	if !ok {
		return
	}
	p := principalOf(ctx)
	rctx := ctx.Request.Context()
	x, err := c.o.Store.ExportMember(rctx, id, p.Brand)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	d := &memberData{X: x, Admin: p.Admin(), CanErase: mayWrite(p, api.ResourceMembers), Shown: shownLimit}
	if x.Phone != "" {
		if p.CanViewPhone {
			d.Phone = x.Phone
			c.phoneShown(ctx, x.MemberID)
		} else {
			d.Phone, d.PhoneMasked = store.MaskPhone(x.Phone), true
		}
	}
	lang := language(ctx.Request)
	for _, b := range x.Bindings {
		if b.EndedAt != nil {
			continue
		}
		bv := bindingView{Binding: b, GuideName: b.GuideID, StoreName: b.StoreID}
		if g, err := c.o.Store.Guide(rctx, b.GuideID, b.BrandID); err == nil {
			bv.GuideName = g.Name
		}
		if s, err := c.o.Store.RetailStore(rctx, b.StoreID, b.BrandID); err == nil {
			bv.StoreName = s.Name
		}
		d.Bindings = append(d.Bindings, bv)
	}
	for _, cs := range x.Consent {
		d.Consent = append(d.Consent, consentView{Brand: cs.BrandID, Channel: cs.Channel, Unsubscribed: cs.UnsubscribedAt != nil, At: cs.UpdatedAt})
	}
	// Runs, newest first, with their steps.
	runs := slices.Clone(x.Runs)
	slices.SortFunc(runs, func(a, b store.WorkflowRun) int { return cmp.Compare(b.ID, a.ID) })
	d.RunsTotal = len(runs)
	for _, r := range runs[:min(len(runs), shownLimit)] {
		steps, err := c.o.Store.RunSteps(rctx, r.ID)
		if err != nil {
			c.fail(ctx, err)
			return
		}
		rv := runView{WorkflowRun: r, Steps: steps}
		if r.State == store.RunActive {
			rv.Where = r.Step
			switch {
			case r.WaitEvent != "":
				rv.Where += " · " + translate(lang, "members.waiting_for", r.WaitEvent)
			case r.WakeAt != nil:
				rv.Where += " · " + translate(lang, "members.wakes", r.WakeAt.In(shownZone).Format("2006-01-02 15:04"))
			}
		} else if r.EndReason != "" {
			rv.Where = r.EndReason
		}
		d.Runs = append(d.Runs, rv)
	}
	// Messages sent, newest first.
	d.SentTotal = len(x.Messages)
	for i := len(x.Messages) - 1; i >= 0 && len(d.Sent) < shownLimit; i-- {
		m := x.Messages[i]
		d.Sent = append(d.Sent, memberMessage{At: m.CreatedAt, Channel: m.Channel, Kind: m.Kind, State: m.State, Text: payloadText(m.Payload)})
	}
	for i := len(x.Events) - 1; i >= 0; i-- {
		e := x.Events[i]
		if e.Type != events.TypeMessageReceived {
			continue
		}
		d.RecvTotal++
		if len(d.Received) < shownLimit {
			var a struct{ Kind, Text string }
			_ = json.Unmarshal(e.Attributes, &a)
			d.Received = append(d.Received, memberMessage{At: e.OccurredAt, Channel: e.Source, Kind: a.Kind, Text: truncateText(a.Text, 200)})
		}
	}
	d.PtsTotal = len(x.Points)
	for i := len(x.Points) - 1; i >= 0 && len(d.Points) < shownLimit; i-- {
		d.Points = append(d.Points, x.Points[i])
	}
	d.Orders = x.Orders[:min(len(x.Orders), shownLimit)]
	c.render(ctx, http.StatusOK, "member", "members.title", "/members", d)
}

// payloadText is the text a message's payload shows (its text, title or
// content), shortened.
func payloadText(raw json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	for _, k := range []string{"text", "Text", "title", "Title", "content", "Content", "description", "Description"} {
		if s, ok := m[k].(string); ok && s != "" {
			return truncateText(s, 200)
		}
	}
	return ""
}

// phoneShown records in the audit trail that the page showed a member's
// full phone number, as the API does.
func (c *Console) phoneShown(ctx *gin.Context, memberID int64) {
	e := api.EntryFor(ctx, principalOf(ctx), store.AuditPhoneView)
	e.ResourceIDs = "member=" + strconv.FormatInt(memberID, 10)
	c.o.Audit.Record(e)
}

// exportMember downloads the member's export: the JSON of GET
// /api/v1/members/{id}/export (the same store.ExportMember, the phone
// masked unless the token may see phones), audited as an export:
// POST /console/members/:id/export.
func (c *Console) exportMember(ctx *gin.Context) {
	id, ok := c.memberParam(ctx)
	if !ok {
		return
	}
	p := principalOf(ctx)
	x, err := c.o.Store.ExportMember(ctx.Request.Context(), id, p.Brand)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	if x.Phone != "" {
		if p.CanViewPhone {
			c.phoneShown(ctx, x.MemberID)
		} else {
			x.Phone = store.MaskPhone(x.Phone)
		}
	}
	ctx.Header("Content-Disposition", `attachment; filename="member-`+strconv.FormatInt(x.MemberID, 10)+`.json"`)
	ctx.JSON(http.StatusOK, x)
}

type eraseData struct {
	ID      int64
	Name    string
	Brand   string
	Error   string
	Erasure *store.Erasure
	Removed []option
}

// eraseForm asks to confirm an erasure: GET /console/members/:id/erase.
func (c *Console) eraseForm(ctx *gin.Context) {
	id, ok := c.memberParam(ctx)
	if !ok {
		return
	}
	p := principalOf(ctx)
	v, err := c.o.Store.Member(ctx.Request.Context(), id, p.Brand)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	c.render(ctx, http.StatusOK, "erase", "members.erase", "/members", &eraseData{ID: v.ID, Name: v.Name, Brand: p.Brand})
}

// eraseMember erases the member's part with the token's brand (the
// admin: the whole person) through store.EraseMember, as POST
// /api/v1/members/{id}/erase does, once the id was typed to confirm:
// POST /console/members/:id/erase.
func (c *Console) eraseMember(ctx *gin.Context) {
	id, ok := c.memberParam(ctx)
	if !ok {
		return
	}
	p := principalOf(ctx)
	rctx := ctx.Request.Context()
	if strings.TrimSpace(ctx.PostForm("confirm")) != strconv.FormatInt(id, 10) {
		ctx.Set(auditNoteKey, "not_confirmed")
		v, err := c.o.Store.Member(rctx, id, p.Brand)
		if err != nil {
			c.fail(ctx, err)
			return
		}
		c.render(ctx, http.StatusBadRequest, "erase", "members.erase", "/members",
			&eraseData{ID: v.ID, Name: v.Name, Brand: p.Brand, Error: translate(language(ctx.Request), "members.erase_wrong")})
		return
	}
	e, err := c.o.Store.EraseMember(rctx, id, p.Brand, p.Name)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	api.WithdrawErased(rctx, c.o.Withdrawals, e, c.o.Logger)
	if e.MemberID != id {
		auditID(ctx, "member", strconv.FormatInt(e.MemberID, 10))
	}
	d := &eraseData{ID: e.MemberID, Brand: p.Brand, Erasure: e}
	for k, n := range e.Removed {
		d.Removed = append(d.Removed, option{k, strconv.FormatInt(n, 10)})
	}
	slices.SortFunc(d.Removed, func(a, b option) int { return strings.Compare(a.Value, b.Value) })
	c.render(ctx, http.StatusOK, "erase", "members.erase", "/members", d)
}
