package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows"
)

// GroupMessenger sends messages to customer groups (WeCom 客户群)
// through their owners, for send_groups steps (Options.Groups). The
// wiring implements it over the channels that have groups.
type GroupMessenger interface {
	// SendGroups sends to the active groups of req.Brand that the
	// guide owns, or of the store. A group gets one message a day: the
	// groups that had theirs from another key are left out (Taken). The
	// same Key again (a retry) sends nothing twice and reports what the
	// first call sent.
	SendGroups(ctx context.Context, req GroupSend) (*GroupSent, error)
}

// GroupSend is a message to the customer groups of a guide or a store.
type GroupSend struct {
	Brand string
	// GuideID selects the groups the guide owns; StoreID those of the
	// store. One is set.
	GuideID string
	StoreID string
	// Render renders the message for the channel instance (a key such
	// as wecom) the groups are on.
	Render func(channel string) (*adapters.Outbound, error)
	// Key identifies the send: the step visit.
	Key string
}

// GroupSent is what a send to groups did.
type GroupSent struct {
	// Groups counts the groups the message went to, Owners the owners
	// it went through (one message task each), Taken the groups left
	// out because they had their message of the day.
	Groups int
	Owners int
	Taken  int
}

// Reasons a send_groups step was skipped.
const (
	// reasonNoGroups: the guide or store has no active group.
	reasonNoGroups = "no_groups"
	// reasonGroupLimit: every group had its message of the day.
	reasonGroupLimit = "group_limit"
)

// sendGroups executes a send_groups step: the send rules' hours apply
// (caps and consent are the member's, and the message is not theirs);
// the channel taking at least one group's message task is done and
// sent.
func (e *Engine) sendGroups(ctx context.Context, rc *runCtx, step *workflows.Step, key string, now time.Time) (outcome, error) {
	sg := step.SendGroups
	if e.opts.Groups == nil {
		return outcome{}, fmt.Errorf("this gateway sends to no customer groups: %w", errPermanent)
	}
	p, err := rc.member(ctx)
	if err != nil {
		return outcome{}, err
	}
	req := GroupSend{Brand: rc.run.BrandID, Key: key}
	switch {
	case p.Guide == nil:
		return skipped(step.Next, reasonNoGuide, "member has no guide, so no "+sg.To+" groups: nothing sent"), nil
	case sg.To == workflows.GroupsOfStore:
		if p.Binding == nil || p.Binding.StoreID == "" {
			return skipped(step.Next, reasonNoGuide, "member's guide has no store: nothing sent"), nil
		}
		req.StoreID = p.Binding.StoreID
	default:
		req.GuideID = p.Guide.ID
	}
	rules := &rc.wf.SendRules
	loc := rules.Location(p.Member.TimeZone, storeZone(p))
	if at, held := holdUntil(rules, now, loc, spread(rc.run.ID, e.opts.SpreadWindow)); held {
		return outcome{stepState: store.StepPending, wakeAt: at,
			decision: "held by the send rules until " + at.In(loc).Format("2006-01-02 15:04:05 MST")}, nil
	}
	data, err := rc.templateData(ctx, step.ID, loc.String())
	if err != nil {
		return outcome{}, err
	}
	data = groupData(data)
	req.Render = func(channel string) (*adapters.Outbound, error) {
		msg, err := e.opts.Templates.Render(sg.Template, e.opts.Locale, kindOf(channel), data)
		if err != nil {
			return nil, fmt.Errorf("rendering %s for groups on %s: %v: %w", sg.Template, channel, err, errPermanent)
		}
		return &adapters.Outbound{IdempotencyKey: key, Kind: msg.Kind, Text: msg.Text, Fields: msg.Fields}, nil
	}
	sent, err := e.opts.Groups.SendGroups(ctx, req)
	if err != nil {
		if errors.Is(err, errPermanent) || !adapters.Retryable(err) {
			return outcome{}, fmt.Errorf("sending %s to groups: %w: %w", sg.Template, err, errPermanent)
		}
		return outcome{}, fmt.Errorf("sending %s to groups: %w", sg.Template, err)
	}
	whose := "guide " + p.Guide.ID
	if req.StoreID != "" {
		whose = "store " + req.StoreID
	}
	switch {
	case sent.Groups == 0 && sent.Taken == 0:
		return skipped(step.Next, reasonNoGroups, whose+" has no customer groups of the brand: nothing sent"), nil
	case sent.Groups == 0:
		return skipped(step.Next, reasonGroupLimit, fmt.Sprintf("the %d groups of %s had their message today: nothing sent", sent.Taken, whose)), nil
	}
	decision := fmt.Sprintf("sent %s to %d groups of %s through %d owners (message tasks the owners confirm)", sg.Template, sent.Groups, whose, sent.Owners)
	if sent.Taken > 0 {
		decision += fmt.Sprintf("; %d groups had their message today", sent.Taken)
	}
	out := done(step.Next, decision)
	out.sent = 1
	return out, nil
}

// groupData is the template data of a message to groups: nothing of
// the member whose run sends it (Load refuses templates that show it).
func groupData(d *templates.Data) *templates.Data {
	cp := *d
	cp.Member, cp.Order, cp.Coupon, cp.MemberCode = templates.Member{}, templates.Order{}, templates.Coupon{}, templates.MemberCode{}
	cp.Members, cp.Orders = nil, nil
	return &cp
}

// groupWords says whose groups a send_groups step sends to, for a dry
// run.
func groupWords(sg *workflows.SendGroups, m *MemberFixture) string {
	if sg.To == workflows.GroupsOfStore {
		return "the customer groups of store " + orWord(m.StoreName, m.StoreID)
	}
	return "the customer groups of guide " + orWord(m.GuideName, m.GuideID)
}
