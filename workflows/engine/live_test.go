package engine

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// TestLiveRemindersQuietHours: the shipped store-live-invite for a live
// session starting at 22:30, inside its quiet hours (22:00-08:00): the
// invitation goes at once; the day-before reminder, due at 22:30 the day
// before, is held to 08:00 (before its valid_until, an hour before the
// start) and goes then; the 10-minute reminder, due at 22:20, would be
// held to 08:00 the morning after the session, past its valid_until (the
// start), so it is skipped, not sent late.
func TestLiveRemindersQuietHours(t *testing.T) {
	forEach(t, at(3, 15, 0), func(t *testing.T, h *harness) {
		h.putExample("store-live-invite")
		m := h.member("L", "wecom", "g1")
		h.event(events.TypeLiveScheduled, m, `{"live":{"id":"l-1","title":"夜场","url":"https://live.example.com/l-1",
		  "store_id":"sh1","starts_at":"2025-03-06T22:30:00+08:00","ends_at":"2025-03-06T23:30:00+08:00"},"store_id":"sh1","guide_id":"g1"}`)
		h.runUntil(at(7, 12, 0))
		h.noErrors()
		var steps []string
		var times []time.Time
		for _, s := range h.sender.toMembers() {
			if s.meta.MemberID == m {
				steps = append(steps, s.meta.Step)
				times = append(times, s.at.In(shanghai))
			}
		}
		if !slices.Equal(steps, []string{"invite", "remind_day_before"}) {
			t.Fatalf("sent %v, want the invitation and the day-before reminder", steps)
		}
		if !times[0].Equal(at(3, 15, 0)) || times[1].Before(at(6, 8, 0)) || times[1].After(at(6, 8, 10)) {
			t.Errorf("sent at %v, want at once and at 08:00 on the 6th (the quiet hours' end)", times)
		}
		r := h.only(m)
		trail := h.trail(r.ID)
		if !slices.Contains(trail, "remind_soon:skipped") {
			t.Errorf("trail %v, want remind_soon skipped", trail)
		}
		if r.State != store.RunDone {
			t.Errorf("run %s at %s, want done after the session's end", r.State, r.Step)
		}
	})
}

// TestLiveCancelEndsOnlyItsSession: the shipped store-live-invite exits
// on live.cancelled, and a live session's events act only on the runs
// it started: another session's cancellation (or edit) leaves the
// member's run alone, its own ends it as exited (not converted) and
// nothing more is sent.
func TestLiveCancelEndsOnlyItsSession(t *testing.T) {
	forEach(t, at(3, 15, 0), func(t *testing.T, h *harness) {
		h.putExample("store-live-invite")
		m := h.member("L", "wecom", "g1")
		live := func(id string) string {
			return `{"live":{"id":"` + id + `","title":"夜场","url":"https://live.example.com/` + id + `",
			  "store_id":"sh1","starts_at":"2025-03-06T20:00:00+08:00","ends_at":"2025-03-06T21:00:00+08:00"},"store_id":"sh1","guide_id":"g1"}`
		}
		h.event(events.TypeLiveScheduled, m, live("l-1"))
		h.runUntil(at(3, 16, 0))
		h.event(events.TypeLiveCancelled, m, live("l-2"))
		h.event(events.TypeLiveScheduled, m, strings.Replace(live("l-2"), `"guide_id":"g1"`, `"guide_id":"g1","change":"updated"`, 1))
		h.runUntil(at(3, 17, 0))
		if r := h.only(m); r.State != store.RunActive || r.Step != "wait_day_before" {
			t.Fatalf("after another session's events the run is %s at %s, want active at wait_day_before", r.State, r.Step)
		}
		h.event(events.TypeLiveCancelled, m, live("l-1"))
		h.runUntil(at(7, 12, 0))
		h.noErrors()
		r := h.only(m)
		if r.State != store.RunExited {
			t.Errorf("run %s at %s, want exited", r.State, r.Step)
		}
		var steps []string
		for _, s := range h.sender.toMembers() {
			if s.meta.MemberID == m {
				steps = append(steps, s.meta.Step)
			}
		}
		if !slices.Equal(steps, []string{"invite"}) {
			t.Errorf("sent %v, want the invitation alone", steps)
		}
	})
}
