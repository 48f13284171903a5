package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// TestSendOnAnInstance: a member of a second WeCom corp ("wecom:north")
// is reached there, through their guide's account on the same corp; a
// guide on another corp only cannot carry the message; a step naming the
// kind finds the member's instance; the guide is told to confirm the
// message task on the same corp.
func TestSendOnAnInstance(t *testing.T) {
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		if err := h.s.CreateGuide(h.ctx, &store.Guide{ID: "g4", StoreID: "sh1", Name: "小赵", Active: true,
			Identities: []store.GuideIdentity{{Channel: "wecom:north", ExternalID: "zhao"}}}); err != nil {
			t.Fatal(err)
		}
		h.put(sendWorkflow("nudge", "store.visited", "always", "member", "none", "{}"))
		h.put(strings.Replace(sendWorkflow("kind", "x.nudge", "always", "member", "none", "{}"), "    send: recall\n", "    send: recall\n    channel: wecom\n", 1))
		a := h.member("A", "wecom:north", "g4")
		b := h.member("B", "wecom:north", "g1")
		h.event(events.TypeStoreVisited, a, `{}`)
		h.event(events.TypeStoreVisited, b, `{}`)
		h.event("x.nudge", a, `{}`)
		h.fire()
		var got []string
		notices := 0
		for _, s := range h.sender.sent {
			if s.out.ToParty == adapters.PartyGuide {
				// The message task's confirmation notice: on the corp the
				// guide sends it from.
				notices++
				if s.channel != "wecom:north" || s.out.To != "zhao" {
					t.Errorf("guide notice on %s to %s, want wecom:north to zhao", s.channel, s.out.To)
				}
				continue
			}
			got = append(got, fmt.Sprintf("%s to=%s via=%s kind=%s", s.channel, s.out.To, s.out.Via, s.out.Kind))
		}
		if notices == 0 {
			t.Error("the guide was not told to confirm the message task")
		}
		want := []string{"wecom:north to=wecom:north-A via=zhao kind=text", "wecom:north to=wecom:north-A via=zhao kind=text"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("sent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		rs, _ := h.s.RunStep(h.ctx, h.only(b).ID, "nudge", 1)
		if rs.State != store.StepSkipped || rs.Outcome != "member has no guide on wecom:north to send through: nothing sent" {
			t.Errorf("member whose guide is on another corp: %+v", rs)
		}
		h.noErrors()
	})
}
