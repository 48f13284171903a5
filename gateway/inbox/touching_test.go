package inbox

import (
	"context"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestProcessorTouching: the processor records a member's touch (their
// identity's last inbound time) around the handlers of their delivery,
// unless every handler that takes it is Touching (records it itself).
func TestProcessorTouching(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "ACME"}); err != nil {
			t.Fatal(err)
		}
		m, _, err := s.EnsureMember(ctx, store.NewMember{BrandID: "acme", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmChen"}}})
		if err != nil {
			t.Fatal(err)
		}
		last := func() time.Time {
			t.Helper()
			p, err := s.MemberProfile(ctx, "acme", m.ID)
			if err != nil {
				t.Fatal(err)
			}
			return p.LastInbound("wecom")
		}
		t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		ran := map[string]int{}
		handler := func(name string) Handler {
			return HandlerFunc(func(context.Context, *adapters.Inbound) error { ran[name]++; return nil })
		}
		p := NewProcessor(s, adapters.NewRegistry(), discard)
		p.On(OnEvent("self.touched"), Touching(handler("self")))
		p.On(OnEvent("both"), Touching(handler("self")))
		p.On(OnEvent("both"), handler("plain"))
		deliver := func(event string, at time.Time) {
			t.Helper()
			in := &adapters.Inbound{Channel: "wecom", Kind: "event", Event: event, From: adapters.PartyMember, SenderID: "wmChen", At: at}
			if err := p.handle(ctx, in); err != nil {
				t.Fatal(err)
			}
		}
		deliver("self.touched", t0)
		if got := last(); !got.IsZero() || ran["self"] != 1 {
			t.Errorf("after a delivery only Touching handlers take: last inbound %v (want none: theirs to record), handler ran %d", got, ran["self"])
		}
		deliver("both", t0)
		if got := last(); !got.Equal(t0) || ran["self"] != 2 || ran["plain"] != 1 {
			t.Errorf("after a delivery a plain handler also takes: last inbound %v, want %v; ran %v", got, t0, ran)
		}
		deliver("nobody.handles", t0.Add(time.Minute))
		if got := last(); !got.Equal(t0.Add(time.Minute)) {
			t.Errorf("after a delivery no handler takes: last inbound %v, want %v", got, t0.Add(time.Minute))
		}
	})
}
