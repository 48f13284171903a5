package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// dryRunForm is the dry-run panel's fields.
type dryRunForm struct {
	MemberID   string
	MemberJSON string
	EventsJSON string
	// Start is RFC 3339; it defaults to now in the workflow time zone.
	Start string
	Error string
	// Ran is set once a dry run ran (its timeline may be empty).
	Ran bool
}

// sampleMember is the member a dry run simulates when none is picked,
// on the first channel of the dry run's specs.
var sampleMember = engine.MemberFixture{ID: 1, Name: "Demo Member", PhoneTail: "0000", Level: "silver"}

func (c *Console) defaultDryRun() dryRunForm {
	loc, err := time.LoadLocation(workflows.DefaultTimeZone)
	if err != nil {
		loc = time.UTC
	}
	return dryRunForm{Start: c.o.Now().In(loc).Truncate(time.Minute).Format(time.RFC3339)}
}

// timelineRow is one entry of the dry run's timeline, ready to show.
type timelineRow struct {
	At       time.Time
	Step     string
	Kind     string
	Decision string
	Channel  string
	// Message is the rendered message, if the step sends one.
	Message *messageView
	// API and Body are the request the channel would make; RequestError
	// says why there is none.
	API, Body, RequestError string
}

type messageView struct {
	Kind, Locale, Variant, Text string
	Fields                      []field
}

type field struct{ Name, Value string }

// dryRun simulates a member through the editor's YAML (saved or not) with
// the engine's DryRun, the options of `scrmgw workflow dry-run`, and shows
// the editor again with the timeline.
func (c *Console) dryRun(ctx *gin.Context) {
	brand, ok := c.brandParam(ctx)
	if !ok {
		return
	}
	src, ok := c.readSource(ctx)
	if !ok {
		return
	}
	name := ctx.Param("name")
	var d *editorData
	if name == "-" { // a new workflow, not stored yet
		d = &editorData{New: true, Brand: brand, CanEdit: c.canEdit(ctx)}
		name = ""
	} else if d, ok = c.loadEditor(ctx, brand, name, ""); !ok {
		return
	}
	d.Source = src
	d.DryRun = dryRunForm{MemberID: strings.TrimSpace(ctx.PostForm("member_id")), MemberJSON: ctx.PostForm("member_json"),
		EventsJSON: ctx.PostForm("events_json"), Start: strings.TrimSpace(ctx.PostForm("start"))}
	lang := language(ctx.Request)
	wf, probs := c.check(name, []byte(src))
	if probs != nil {
		d.Problems = probs
		d.DryRun.Error = translate(lang, "dryrun.invalid")
		c.renderEditor(ctx, http.StatusUnprocessableEntity, d)
		return
	}
	if d.New {
		// A new workflow's brand is its entry.brand.
		brand = wf.Entry.Brand
		if p := principalOf(ctx); !p.Admin() && brand != p.Brand {
			d.DryRun.Error = translate(lang, "editor.other_brand", p.Brand)
			c.renderEditor(ctx, http.StatusUnprocessableEntity, d)
			return
		}
	}
	member, events, start, err := c.dryRunInput(ctx, brand, d.DryRun)
	if err != nil {
		if !errors.Is(err, errInput) {
			c.fail(ctx, err)
			return
		}
		d.DryRun.Error = strings.TrimPrefix(err.Error(), errInput.Error()+": ")
		c.renderEditor(ctx, http.StatusUnprocessableEntity, d)
		return
	}
	timeline, err := engine.DryRun(c.o.DryRun, wf, member, events, start)
	if err != nil {
		d.DryRun.Error = err.Error()
		c.renderEditor(ctx, http.StatusUnprocessableEntity, d)
		return
	}
	d.DryRun.Ran = true
	d.Timeline = timelineRows(timeline)
	c.renderEditor(ctx, http.StatusOK, d)
}

// errInput marks a dry-run field the reader must correct.
var errInput = errors.New("input")

func inputError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInput, fmt.Sprintf(format, args...))
}

// dryRunInput reads the member (pasted JSON, a stored member's id, or the
// sample member), the events and the start time.
func (c *Console) dryRunInput(ctx *gin.Context, brand string, f dryRunForm) (engine.MemberFixture, []engine.EventFixture, time.Time, error) {
	lang := language(ctx.Request)
	var (
		member engine.MemberFixture
		events []engine.EventFixture
	)
	switch {
	case strings.TrimSpace(f.MemberJSON) != "":
		if err := strictJSON(f.MemberJSON, &member); err != nil {
			return member, nil, time.Time{}, inputError("%s: %v", translate(lang, "dryrun.member_json"), err)
		}
	case f.MemberID != "":
		id, err := strconv.ParseInt(f.MemberID, 10, 64)
		if err != nil || id < 1 {
			return member, nil, time.Time{}, inputError("%s", translate(lang, "dryrun.bad_member_id", f.MemberID))
		}
		// As GET /api/v1/members/{id}: merges followed, and a member
		// without a membership of the brand is not found.
		v, err := c.o.Store.Member(ctx.Request.Context(), id, brand)
		if errors.Is(err, store.ErrNotFound) {
			return member, nil, time.Time{}, inputError("%s", translate(lang, "dryrun.no_member", id, brand))
		}
		if err != nil {
			return member, nil, time.Time{}, err
		}
		p, err := c.o.Store.MemberProfile(ctx.Request.Context(), brand, v.Member.ID)
		if errors.Is(err, store.ErrNotFound) {
			return member, nil, time.Time{}, inputError("%s", translate(lang, "dryrun.no_member", id, brand))
		}
		if err != nil {
			return member, nil, time.Time{}, err
		}
		brandName := brand
		if b, err := c.o.Store.Brand(ctx.Request.Context(), brand); err == nil {
			brandName = b.Name
		}
		member = engine.FixtureOf(p, brandName, adapters.SpecList(c.o.DryRun.Specs))
	default:
		member = sampleMember
		member.Tags = slices.Clone(sampleMember.Tags)
		member.BrandName = brand
	}
	if strings.TrimSpace(f.EventsJSON) != "" {
		if err := strictJSON(f.EventsJSON, &events); err != nil {
			return member, nil, time.Time{}, inputError("%s: %v", translate(lang, "dryrun.events_json"), err)
		}
	}
	start := c.o.Now()
	if f.Start != "" {
		t, err := time.Parse(time.RFC3339, f.Start)
		if err != nil {
			return member, nil, time.Time{}, inputError("%s", translate(lang, "dryrun.bad_start", f.Start))
		}
		start = t
	}
	return member, events, start, nil
}

func strictJSON(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func timelineRows(entries []engine.TimelineEntry) []timelineRow {
	rows := make([]timelineRow, len(entries))
	for i, e := range entries {
		r := timelineRow{At: e.At, Step: e.Step, Kind: string(e.Kind), Decision: e.Decision, Channel: e.Channel, RequestError: e.RequestError}
		if m := e.Message; m != nil {
			mv := &messageView{Kind: m.Kind, Locale: m.Locale, Variant: m.Variant, Text: strings.TrimSpace(m.Text)}
			for _, k := range slices.Sorted(maps.Keys(m.Fields)) {
				mv.Fields = append(mv.Fields, field{k, m.Fields[k]})
			}
			r.Message = mv
		}
		if e.Request != nil {
			r.API = e.Request.API
			var b bytes.Buffer
			if json.Indent(&b, e.Request.Body, "", "  ") == nil {
				r.Body = b.String()
			} else {
				r.Body = string(e.Request.Body)
			}
		}
		rows[i] = r
	}
	return rows
}
