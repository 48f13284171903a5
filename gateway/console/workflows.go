package console

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// Workflow states the list shows.
const (
	stateEnabled  = "enabled"
	stateDisabled = "disabled"
	stateRetired  = "retired"
)

// activityDays is the period of the list's entered and converted:
// whole days in shownZone, today included.
const activityDays = 7

type workflowRow struct {
	Brand, Name, Version, Trigger, State string
	Entered, Converted                   int64
	LastError, LastErrorStep             string
	LastErrorAt                          *time.Time
	UpdatedAt                            time.Time
}

type listData struct {
	Rows []workflowRow
	// Admin lists every brand's workflows, with a brand column.
	Admin   bool
	CanEdit bool
}

// workflowList shows the workflows the principal may see, with what their
// runs did in the last seven days.
func (c *Console) workflowList(ctx *gin.Context) {
	p := principalOf(ctx)
	ws, err := c.o.Store.Workflows(ctx.Request.Context(), store.WorkflowFilter{Brand: p.Brand})
	if err != nil {
		c.fail(ctx, err)
		return
	}
	today := c.o.Now().In(shownZone)
	since := time.Date(today.Year(), today.Month(), today.Day()-(activityDays-1), 0, 0, 0, 0, shownZone)
	act, err := c.o.Store.WorkflowActivities(ctx.Request.Context(), p.Brand, since)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	rows := make([]workflowRow, 0, len(ws))
	for _, w := range ws {
		state, err := c.state(ctx, &w)
		if err != nil {
			c.fail(ctx, err)
			return
		}
		r := workflowRow{Brand: w.BrandID, Name: w.Name, Version: w.Version, Trigger: w.Trigger, State: state, UpdatedAt: w.UpdatedAt}
		if a := act[store.WorkflowActivityKey{Brand: w.BrandID, Workflow: w.Name}]; a != nil {
			r.Entered, r.Converted = a.Entered, a.Converted
			r.LastError, r.LastErrorStep, r.LastErrorAt = a.LastError, a.LastErrorStep, a.LastErrorAt
		}
		rows = append(rows, r)
	}
	c.render(ctx, http.StatusOK, "workflows", "workflows.title", "/workflows",
		listData{Rows: rows, Admin: p.Admin(), CanEdit: c.canEdit(ctx)})
}

// state is enabled, disabled, or retired when the current version is.
func (c *Console) state(ctx *gin.Context, w *store.Workflow) (string, error) {
	if w.Enabled {
		return stateEnabled, nil
	}
	v, err := c.o.Store.WorkflowVersion(ctx.Request.Context(), w.BrandID, w.Name, w.Version)
	if err != nil {
		return "", err
	}
	if v.RetiredAt != nil {
		return stateRetired, nil
	}
	return stateDisabled, nil
}

// problem is one error of a workflow, at its line and column (0 when it
// has none), in the words of `scrmgw workflow validate` (Text).
type problem struct {
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	Text    string `json:"text"`
	// At says where, in the reader's language (script answers only).
	At string `json:"at,omitempty"`
}

// check loads a workflow as `scrmgw workflow validate` does.
func (c *Console) check(name string, src []byte) (*workflows.Workflow, []problem) {
	wf, err := workflows.Load(fileName(name), src, c.o.LoadOptions)
	if err != nil {
		return nil, problems(err)
	}
	return wf, nil
}

// fileName is the name errors give the file: the engine's (name.yaml).
func fileName(name string) string {
	if name == "" {
		return "workflow.yaml"
	}
	return name + ".yaml"
}

func problems(err error) []problem {
	var list workflows.ErrorList
	if errors.As(err, &list) {
		out := make([]problem, len(list))
		for i, e := range list {
			out[i] = problem{Line: e.Line, Column: e.Column, Path: e.Path, Message: e.Msg, Text: e.Error()}
		}
		return out
	}
	msg := strings.TrimPrefix(err.Error(), engine.ErrInvalid.Error()+": ")
	return []problem{{Message: msg, Text: msg}}
}

type versionRow struct {
	Version   string
	CreatedAt time.Time
	RetiredAt *time.Time
	Current   bool
}

type editorData struct {
	Brand, Name string
	// New is the page of a workflow not stored yet.
	New   bool
	State string
	// Version is the version shown; Current whether it is the current
	// one.
	Version  string
	Current  bool
	Source   string
	Lines    int
	Problems []problem
	// ErrorLines marks the lines with a problem.
	ErrorLines map[int]string
	Diagram    template.HTML
	Versions   []versionRow
	// Saved names the version just saved; Notice says what an action did.
	Saved, Notice string
	DryRun        dryRunForm
	Timeline      []timelineRow
	CanEdit       bool
}

// LineNumbers lists 1..Lines for the gutter.
func (d *editorData) LineNumbers() []int {
	n := make([]int, max(d.Lines, 1))
	for i := range n {
		n[i] = i + 1
	}
	return n
}

// editor shows a workflow: the YAML (the current version, or ?version=),
// its diagram, the dry-run panel and the versions.
func (c *Console) editor(ctx *gin.Context) {
	brand, ok := c.brandParam(ctx)
	if !ok {
		return
	}
	d, ok := c.loadEditor(ctx, brand, ctx.Param("name"), ctx.Query("version"))
	if !ok {
		return
	}
	d.Saved = ctx.Query("saved")
	if n := ctx.Query("notice"); n != "" {
		d.Notice = translate(language(ctx.Request), "notice."+n)
	}
	c.renderEditor(ctx, http.StatusOK, d)
}

// loadEditor is editorData, answering the error (ok false) when it
// cannot load the workflow.
func (c *Console) loadEditor(ctx *gin.Context, brand, name, version string) (d *editorData, ok bool) {
	d, err := c.editorData(ctx, brand, name, version)
	if err != nil {
		c.fail(ctx, err)
		return nil, false
	}
	return d, true
}

// editorData loads a stored workflow for the editor.
func (c *Console) editorData(ctx *gin.Context, brand, name, version string) (*editorData, error) {
	head, err := c.o.Store.Workflow(ctx.Request.Context(), brand, name)
	if err != nil {
		return nil, err
	}
	if version == "" {
		version = head.Version
	}
	v, err := c.o.Store.WorkflowVersion(ctx.Request.Context(), brand, name, version)
	if err != nil {
		return nil, err
	}
	state, err := c.state(ctx, head)
	if err != nil {
		return nil, err
	}
	vs, err := c.o.Store.WorkflowVersions(ctx.Request.Context(), brand, name)
	if err != nil {
		return nil, err
	}
	d := &editorData{Brand: brand, Name: name, State: state, Version: version, Current: version == head.Version,
		Source: v.Source, CanEdit: c.canEdit(ctx)}
	for i := len(vs) - 1; i >= 0; i-- {
		d.Versions = append(d.Versions, versionRow{Version: vs[i].Version, CreatedAt: vs[i].CreatedAt, RetiredAt: vs[i].RetiredAt, Current: vs[i].Version == head.Version})
	}
	d.DryRun = c.defaultDryRun()
	return d, nil
}

// renderEditor fills in what follows from the source (line count,
// problems, diagram) and renders the page.
func (c *Console) renderEditor(ctx *gin.Context, status int, d *editorData) {
	d.Lines = strings.Count(d.Source, "\n") + 1
	wf, probs := c.check(d.Name, []byte(d.Source))
	if d.Problems == nil {
		d.Problems = probs
	}
	d.ErrorLines = map[int]string{}
	for _, p := range d.Problems {
		if p.Line > 0 && d.ErrorLines[p.Line] == "" {
			d.ErrorLines[p.Line] = p.Text
		}
	}
	lang := language(ctx.Request)
	if wf != nil {
		d.Diagram = diagram(wf, lang)
	}
	title := "editor.title"
	if d.New {
		title = "editor.new"
	}
	c.render(ctx, status, "editor", title, "/workflows", d)
}

// newWorkflow shows an empty editor with a starting point.
func (c *Console) newWorkflow(ctx *gin.Context) {
	if c.o.Workflows == nil {
		c.notFound(ctx)
		return
	}
	brands, err := c.brandsOf(ctx)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	brand := ctx.Query("brand")
	if (brand == "" || !slices.Contains(brands, brand)) && len(brands) > 0 {
		brand = brands[0]
	}
	d := &editorData{New: true, Brand: brand, Source: starter(brand), CanEdit: c.canEdit(ctx), DryRun: c.defaultDryRun()}
	c.renderEditor(ctx, http.StatusOK, d)
}

// brandsOf lists the brands the principal may act for.
func (c *Console) brandsOf(ctx *gin.Context) ([]string, error) {
	p := principalOf(ctx)
	if !p.Admin() {
		return []string{p.Brand}, nil
	}
	bs, err := c.o.Store.Brands(ctx.Request.Context(), "", store.Page{Limit: 1000})
	if err != nil {
		return nil, err
	}
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	return out, nil
}

// starter is the YAML a new workflow starts from.
func starter(brand string) string {
	if brand == "" {
		brand = "your-brand"
	}
	return fmt.Sprintf(`name: new-workflow
description: Welcome new members and remind them three days later.

trigger:
  event: member.joined

entry:
  brand: %s
  re_entry: never

goal:
  - purchase.completed

steps:
  - id: wait_1d
    wait: 1d

  - id: coupon
    send: first_purchase_coupon
    coupon: NEW-MEMBER-50

  - id: wait_purchase
    wait_for: purchase.completed
    timeout: 3d
    on_event: end
    on_timeout: call

  - id: call
    guide_task: "Call {{.Member.Name}}"
    due_in: 1d
`, brand)
}

// readSource reads the form's YAML.
func (c *Console) readSource(ctx *gin.Context) (string, bool) {
	if err := ctx.Request.ParseForm(); err != nil {
		if !tooLarge(ctx, err) {
			ctx.String(http.StatusBadRequest, "%v", err)
		}
		return "", false
	}
	return strings.ReplaceAll(ctx.Request.PostForm.Get("yaml"), "\r\n", "\n"), true
}

// createWorkflow stores a new workflow: its name and brand come from the
// YAML (entry.brand), which the principal must be allowed to act for.
func (c *Console) createWorkflow(ctx *gin.Context) {
	if c.o.Workflows == nil {
		c.notFound(ctx)
		return
	}
	src, ok := c.readSource(ctx)
	if !ok {
		return
	}
	d := &editorData{New: true, Brand: ctx.PostForm("brand"), Source: src, CanEdit: c.canEdit(ctx), DryRun: c.defaultDryRun()}
	wf, probs := c.check("", []byte(src))
	if probs != nil {
		d.Problems = probs
		c.renderEditor(ctx, http.StatusUnprocessableEntity, d)
		return
	}
	p := principalOf(ctx)
	if !p.Admin() && wf.Entry.Brand != p.Brand {
		msg := translate(language(ctx.Request), "editor.other_brand", p.Brand)
		d.Problems = []problem{{Message: msg, Text: msg}}
		c.renderEditor(ctx, http.StatusUnprocessableEntity, d)
		return
	}
	auditID(ctx, "brand", wf.Entry.Brand)
	auditID(ctx, "name", wf.Name)
	c.put(ctx, wf.Entry.Brand, wf.Name, src, d)
}

// saveWorkflow stores the editor's YAML as the workflow's new version.
func (c *Console) saveWorkflow(ctx *gin.Context) {
	brand, ok := c.writableBrand(ctx)
	if !ok {
		return
	}
	src, ok := c.readSource(ctx)
	if !ok {
		return
	}
	name := ctx.Param("name")
	d, ok := c.loadEditor(ctx, brand, name, "")
	if !ok {
		return
	}
	d.Source = src
	c.put(ctx, brand, name, src, d)
}

// put stores a version through the engine (as PUT /api/v1/workflows/{name})
// and shows the editor again: at the new version, or with the problems.
func (c *Console) put(ctx *gin.Context, brand, name, src string, d *editorData) {
	v, err := c.o.Workflows.Put(ctx.Request.Context(), brand, name, []byte(src))
	if errors.Is(err, engine.ErrInvalid) {
		d.Problems = problems(err)
		c.renderEditor(ctx, http.StatusUnprocessableEntity, d)
		return
	}
	if err != nil {
		c.fail(ctx, err)
		return
	}
	ctx.Redirect(http.StatusSeeOther, editorURL(brand, name)+"?saved="+url.QueryEscape(v.Version))
}

func editorURL(brand, name string) string {
	return Path + "/workflows/" + url.PathEscape(brand) + "/" + url.PathEscape(name)
}

// setEnabled enables or disables a workflow.
func (c *Console) setEnabled(on bool) gin.HandlerFunc {
	return func(ctx *gin.Context) {
		brand, ok := c.writableBrand(ctx)
		if !ok {
			return
		}
		name := ctx.Param("name")
		f, notice := c.o.Workflows.Disable, "disabled"
		if on {
			f, notice = c.o.Workflows.Enable, "enabled"
		}
		if err := f(ctx.Request.Context(), brand, name); err != nil {
			c.fail(ctx, err)
			return
		}
		ctx.Redirect(http.StatusSeeOther, editorURL(brand, name)+"?notice="+notice)
	}
}

// retire retires a version: its runs end, and retiring the current one
// disables the workflow.
func (c *Console) retire(ctx *gin.Context) {
	brand, ok := c.writableBrand(ctx)
	if !ok {
		return
	}
	name := ctx.Param("name")
	if _, err := c.o.Workflows.Retire(ctx.Request.Context(), brand, name, ctx.Param("version")); err != nil {
		c.fail(ctx, err)
		return
	}
	ctx.Redirect(http.StatusSeeOther, editorURL(brand, name)+"?notice=retired")
}

// readAll reads a JSON body (limitBody bounds it).
func (c *Console) readAll(ctx *gin.Context) ([]byte, error) {
	return io.ReadAll(ctx.Request.Body)
}

// writableBrand is the brand a workflow write names, when the principal
// may see it and the console can write workflows; otherwise it has
// answered (404) and returns false.
func (c *Console) writableBrand(ctx *gin.Context) (string, bool) {
	brand, ok := c.brandParam(ctx)
	if !ok {
		return "", false
	}
	if c.o.Workflows == nil {
		c.notFound(ctx)
		return "", false
	}
	return brand, true
}
