package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
)

// Quota is a channel's own limit on the messages one member may receive
// from the enterprise per calendar day or month, such as WeCom's limit on
// group-send messages (企业群发) to an external contact.
type Quota struct {
	// Limit is how many messages a member may receive per period; 0 is
	// no limit.
	Limit int
	// Month counts per calendar month; otherwise per calendar day.
	Month bool
	// Location is the zone of the platform's calendar; default
	// Asia/Shanghai (WeCom counts in Beijing time).
	Location *time.Location
}

// ParseQuota reads a quota as configured: "1/day", "4/month", or "off".
func ParseQuota(s string) (Quota, error) {
	t := strings.ToLower(strings.ReplaceAll(s, " ", ""))
	if t == "off" || t == "none" || t == "0" {
		return Quota{}, nil
	}
	num, unit, ok := strings.Cut(t, "/")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n <= 0 || n > 1000 {
		return Quota{}, fmt.Errorf("bad quota %q: write a number of messages from 1 to 1000 per day or month, like 1/day or 4/month, or off", s)
	}
	q := Quota{Limit: n}
	switch unit {
	case "d", "day":
	case "month", "mo":
		q.Month = true
	default:
		return Quota{}, fmt.Errorf("bad quota %q: unknown period %q; use day or month", s, unit)
	}
	return q, nil
}

// String writes q as ParseQuota reads it.
func (q Quota) String() string {
	if q.Limit <= 0 {
		return "off"
	}
	if q.Month {
		return strconv.Itoa(q.Limit) + "/month"
	}
	return strconv.Itoa(q.Limit) + "/day"
}

// period returns the start of the period t falls in and of the next one.
func (q Quota) period(t time.Time) (start, next time.Time) {
	loc := q.Location
	if loc == nil {
		loc = quotaZone
	}
	y, m, d := t.In(loc).Date()
	if q.Month {
		start = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		return start, start.AddDate(0, 1, 0)
	}
	start = time.Date(y, m, d, 0, 0, 0, 0, loc)
	return start, start.AddDate(0, 0, 1)
}

var quotaZone = func() *time.Location {
	loc, err := time.LoadLocation(workflows.DefaultTimeZone)
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// reserveQuota counts a send against the channel's quota of the member.
// Over the quota, capped is true and out delays the step to the next
// period (when sends are allowed then, spread as at the end of quiet
// hours) or skips it, per the step's when_capped, else the caps'; the
// decision names the limit, so the run shows why nothing went out.
func (e *Engine) reserveQuota(ctx context.Context, rc *runCtx, step *workflows.Step, channel, key string, now time.Time, loc *time.Location) (out outcome, capped bool, err error) {
	q, ok := e.opts.Quotas[channel]
	if !ok {
		q, ok = e.opts.Quotas[kindOf(channel)] // the kind's, for each instance
	}
	if !ok || q.Limit <= 0 {
		return outcome{}, false, nil
	}
	start, next := q.period(now)
	run := rc.run
	reserved, err := e.store.ReserveQuota(ctx, store.QuotaReservation{Key: key, MemberID: run.MemberID, Channel: channel,
		PeriodStart: start, Limit: q.Limit, RunID: run.ID, At: now})
	if err != nil {
		return outcome{}, false, fmt.Errorf("checking the %s message quota: %w", channel, err)
	}
	if reserved {
		return outcome{}, false, nil
	}
	words := fmt.Sprintf("%s limit of %s to a member reached", channel, q.String())
	action := step.Send.WhenCapped
	if action == "" {
		action = rc.wf.SendRules.Caps.WhenCapped
	}
	if action == workflows.CapSkip {
		return skipped(step.Next, reasonQuota, words+": skipped"), true, nil
	}
	sp := spread(run.ID, e.opts.SpreadWindow)
	at := next.Add(sp)
	if step.Send.Priority != workflows.PriorityHigh {
		if t, held := holdUntil(&rc.wf.SendRules, at, loc, sp); held {
			at = t
		}
	}
	at = ceilSecond(at)
	return outcome{stepState: store.StepPending, wakeAt: at,
		decision: words + ": delayed to " + at.In(loc).Format("2006-01-02 15:04:05 MST")}, true, nil
}

// assignRequest is what an assign_guide step asks of the Assigner.
func (rc *runCtx) assignRequest(ctx context.Context, a *workflows.AssignGuide) (AssignRequest, error) {
	req := AssignRequest{MemberID: rc.run.MemberID, Brand: rc.run.BrandID, Strategy: a.Strategy,
		MaxDistanceKm: a.MaxDistanceKm, Fallback: a.Fallback}
	trig, err := rc.triggerEvent(ctx)
	if err != nil {
		return req, err
	}
	if lat, err1 := strconv.ParseFloat(trig.event.Attrs["lat"], 64); err1 == nil {
		if lng, err2 := strconv.ParseFloat(trig.event.Attrs["lng"], 64); err2 == nil {
			req.Lat, req.Lng = &lat, &lng
		}
	}
	if a.Strategy == workflows.AssignStore {
		req.StoreID = a.StoreID
		if req.StoreID == "" {
			req.StoreID = trig.event.StoreID
		}
		if req.StoreID == "" {
			p, err := rc.member(ctx)
			if err != nil {
				return req, err
			}
			req.StoreID = lastOrder(p).StoreID
		}
	}
	return req, nil
}

// assignWords describes an assignment for a run's decision.
func assignWords(r AssignRequest) string {
	s := r.Strategy
	if r.Strategy == workflows.AssignStore {
		s += " " + orWord(r.StoreID, "(no store known)")
	}
	if r.Fallback != "" && r.Fallback != workflows.AssignNone {
		s += ", then " + r.Fallback
	}
	return s
}
