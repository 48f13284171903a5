package engine

import (
	"fmt"
	"testing"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// awaitReply is a workflow of brand %s that a reply converts.
const awaitReply = `name: await-reply
trigger:
  event: store.visited
entry:
  brand: %s
goal: message.received
steps:
  - id: later
    wait: 1d
`

// TestMessageConvertsRunsOfItsBrand: a person who is a member of
// camellia and yun has a run of each brand's await-reply. A message
// attributed to camellia (the channel's brand, or the identity's)
// converts camellia's run only: yun's workflow never learns that the
// person wrote to camellia. A message that could not be attributed to
// one brand (brand "") converts the runs of every brand, as the person
// wrote to all of them.
func TestMessageConvertsRunsOfItsBrand(t *testing.T) {
	for _, tc := range []struct {
		brand string
		want  string
	}{
		{"camellia", "camellia converted, yun active"},
		{"yun", "camellia active, yun converted"},
		{"", "camellia converted, yun converted"},
	} {
		t.Run("brand "+tc.brand, func(t *testing.T) {
			forEach(t, at(3, 9, 0), func(t *testing.T, h *harness) {
				ctx, s := h.ctx, h.s
				if err := s.CreateBrand(ctx, &store.Brand{ID: "yun", Name: "云裳"}); err != nil {
					t.Fatal(err)
				}
				chen := h.member("Chen", "dingtalk", "")
				if err := s.SetMembership(ctx, chen, "yun", "", nil); err != nil {
					t.Fatal(err)
				}
				for _, b := range []string{"camellia", "yun"} {
					if _, err := h.e.Put(ctx, b, "await-reply", []byte(fmt.Sprintf(awaitReply, b))); err != nil {
						t.Fatal(err)
					}
					if err := h.e.Enable(ctx, b, "await-reply"); err != nil {
						t.Fatal(err)
					}
					h.brandEvent(b, events.TypeStoreVisited, chen, `{"store_id":"sh1"}`)
				}
				h.fire()
				h.brandEvent(tc.brand, events.TypeMessageReceived, chen, `{"kind":"text","text":"好的"}`)
				state := map[string]string{}
				for _, r := range h.runs(chen) {
					state[r.BrandID] = r.State
					if r.State == store.RunConverted {
						state[r.BrandID] = "converted"
					}
				}
				if got := fmt.Sprintf("camellia %s, yun %s", state["camellia"], state["yun"]); got != tc.want {
					t.Errorf("after a message of brand %q: %s, want %s", tc.brand, got, tc.want)
				}
			})
		})
	}
}

// brandEvent appends an event of a brand at the clock's time and handles
// it.
func (h *harness) brandEvent(brand, typ string, member int64, payload string) {
	h.t.Helper()
	eventSeq++
	ev := &store.Event{Type: typ, BrandID: brand, MemberID: &member, Source: "test",
		SourceID: fmt.Sprintf("%s-%d-%d", typ, member, eventSeq), Payload: payload, OccurredAt: h.clock.Now().UTC()}
	if _, err := h.s.AppendEvent(h.ctx, ev); err != nil {
		h.t.Fatal(err)
	}
	if err := h.e.HandleEvent(h.ctx, ev); err != nil {
		h.t.Fatalf("handling %s: %v", typ, err)
	}
}
