package engine

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// TestSendWindow: a channel that sends members freely only within 48
// hours of their last message (adapters.Spec.Window) gets the rendered
// message within it, a template message of the same template outside
// it; a channel with a window and no template messages sends nothing
// outside it, and says why.
func TestSendWindow(t *testing.T) {
	chans := append(slices.Clone(testChannels),
		adapters.Spec{Name: "oa", MemberKinds: []string{adapters.KindText}, Window: 48 * time.Hour, OutsideKinds: []string{adapters.KindTemplate}},
		adapters.Spec{Name: "kf", MemberKinds: []string{adapters.KindText}, Window: 48 * time.Hour})
	forEach(t, at(3, 12, 0), func(t *testing.T, h *harness) {
		h.put(sendWorkflow("nudge", "store.visited", "always", "member", "none", "{}"))
		recent := h.member("Recent", "oa", "g1")
		old := h.member("Old", "oa", "g1")
		never := h.member("Never", "oa", "g1")
		kf := h.member("Kf", "kf", "g1")
		now := h.clock.Now()
		for id, last := range map[string]time.Time{"oa-Recent": now.Add(-47 * time.Hour), "oa-Old": now.Add(-49 * time.Hour), "kf-Kf": now.Add(-49 * time.Hour)} {
			ch, _, _ := strings.Cut(id, "-")
			if err := h.s.TouchIdentity(h.ctx, ch, id, last); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range []int64{recent, old, never, kf} {
			h.event(events.TypeStoreVisited, m, `{}`)
		}
		h.fire()
		var got []string
		for _, s := range h.sender.toMembers() {
			got = append(got, fmt.Sprintf("%s to=%s kind=%s template=%s as=%s", s.channel, s.out.To, s.out.Kind, s.out.Fields["template"], s.out.Fields["kind"]))
		}
		slices.Sort(got)
		want := []string{
			"oa to=oa-Never kind=template template=recall as=text",
			"oa to=oa-Old kind=template template=recall as=text",
			"oa to=oa-Recent kind=text template= as=",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("sent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		rs, _ := h.s.RunStep(h.ctx, h.only(kf).ID, "nudge", 1)
		if rs.State != store.StepSkipped || rs.Outcome != "member has not written on kf within 48h0m0s: nothing sent" {
			t.Errorf("member outside the window of a channel without templates: %+v", rs)
		}
		h.noErrors()
	}, func(o *Options) { o.Channels = chans })
}
