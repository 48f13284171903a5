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

// TestDryRunWindow: a dry run sees the channel's window as a run does:
// the rendered message while the member wrote within it, the template
// message of the same template (and its request) once it closed, the
// window moved by a message.received during a wait, and nothing on a
// channel without template messages.
func TestDryRunWindow(t *testing.T) {
	wf := loadWorkflow(t, `name: nudge
trigger:
  event: store.visited
entry:
  brand: camellia
goal: purchase.completed
send_rules:
  quiet_hours: none
steps:
  - id: first
    send: recall
  - id: pause
    wait: 72h
  - id: second
    send: recall
`)
	var previewed []string
	oa := adapters.Spec{Name: "oa", MemberKinds: []string{adapters.KindText}, Window: 48 * time.Hour, OutsideKinds: []string{adapters.KindTemplate},
		Preview: func(m *adapters.Outbound) (*adapters.Request, error) {
			previewed = append(previewed, m.Kind+":"+m.Fields["template"]+":"+m.Fields["kind"])
			return &adapters.Request{API: "send/" + m.Kind, Body: []byte(`{}`)}, nil
		}}
	kf := adapters.Spec{Name: "kf", MemberKinds: []string{adapters.KindText}, Window: 48 * time.Hour}
	start := at(3, 12, 0)
	lily := MemberFixture{ID: 7, Name: "Lily", Channel: "oa", ChannelID: "oLily", LastInboundAt: start.Add(-47 * time.Hour)}
	cases := []struct {
		name      string
		specs     []adapters.Spec
		member    MemberFixture
		events    []EventFixture
		want      []string
		previewed []string
	}{
		{"closes during the wait", []adapters.Spec{oa}, lily, nil, []string{
			"first (send)                 sends recall on oa",
			"second (send)                sends recall on oa as a template message (the member has not written on oa within 48h0m0s)",
			"    request send/template: {}",
		}, []string{"text::", "template:recall:text"}},
		{"kept open by a message", []adapters.Spec{oa}, lily,
			[]EventFixture{{At: start.Add(48 * time.Hour), Type: "message.received", Channel: "oa", Text: "在吗"}}, []string{
				"first (send)                 sends recall on oa\n",
				"second (send)                sends recall on oa\n",
			}, []string{"text::", "text::"}},
		{"never wrote", []adapters.Spec{oa}, MemberFixture{ID: 8, Channel: "oa"}, nil, []string{
			"first (send)                 sends recall on oa as a template message",
		}, []string{"template:recall:text", "template:recall:text"}},
		{"no templates", []adapters.Spec{kf}, MemberFixture{ID: 9, Channel: "kf", LastInboundAt: start.Add(-time.Hour)}, nil, []string{
			"first (send)                 sends recall on kf\n",
			"second (send)                member has not written on kf within 48h0m0s: nothing sent",
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			previewed = nil
			opts := dryRunOptions(t)
			opts.Specs = c.specs
			tl, err := DryRun(opts, wf, c.member, append(c.events, EventFixture{At: start, Type: "store.visited"}), start)
			if err != nil {
				t.Fatal(err)
			}
			text := timelineText(t, tl)
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("timeline lacks %q:\n%s", w, text)
				}
			}
			if strings.Join(previewed, " ") != strings.Join(c.previewed, " ") {
				t.Errorf("previewed %v, want %v", previewed, c.previewed)
			}
		})
	}
}

// TestFixtureOfLastInbound: a dry run of a stored member starts from
// when they last wrote on the channel it picks for them.
func TestFixtureOfLastInbound(t *testing.T) {
	last := at(3, 9, 0)
	p := &store.MemberProfile{Member: store.Member{ID: 5}, Identities: []store.MemberIdentity{
		{Channel: "wecom", ExternalID: "wmA"},
		{Channel: "oa", ExternalID: "oA", LastInboundAt: &last},
	}}
	f := FixtureOf(p, "Camellia", adapters.SpecList([]adapters.Spec{{Name: "oa"}, {Name: "wecom"}}))
	if f.Channel != "oa" || f.ChannelID != "oA" || !f.LastInboundAt.Equal(last) {
		t.Errorf("fixture: channel %q id %q last inbound %v, want oa oA %v", f.Channel, f.ChannelID, f.LastInboundAt, last)
	}
}
