package engine

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// crossBrandWorkflow is brand yun's offer to camellia's members whose
// store also carries yun: an offer at once, another a day later.
const crossBrandWorkflow = `name: yun-in-store
trigger:
  schedule: every day at 10:00
  time_zone: Asia/Shanghai
entry:
  brand: yun
  cross_brand_from: [camellia]
goal: purchase.completed
steps:
  - id: offer
    send: cross_brand_offer
  - id: later
    wait: 1d
  - id: again
    send: cross_brand_offer
`

// TestCrossBrandOffer runs a yun workflow that offers yun to camellia's
// members through their camellia guide, in the Shanghai store that
// carries both brands: only members who accepted yun's offers, are bound
// in a store carrying yun, unsubscribed from neither brand and have no
// yun guide of their own are entered; each send goes through their
// guide and checks consent again, so a member who declines after the
// first offer gets no second one.
func TestCrossBrandOffer(t *testing.T) {
	forEach(t, at(3, 9, 0), func(t *testing.T, h *harness) {
		ctx, s, now := h.ctx, h.s, h.clock.Now()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.CreateBrand(ctx, &store.Brand{ID: "yun", Name: "云裳"}))
		sh1, err := s.RetailStore(ctx, "sh1", "")
		must(err)
		sh1.BrandIDs = []string{"camellia", "yun"}
		must(s.UpsertRetailStores(ctx, []store.RetailStore{*sh1}))
		must(s.CreateGuide(ctx, &store.Guide{ID: "y1", StoreID: "sh1", Name: "小云", Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: "yunguide"}}, Active: true}))

		accepts := h.member("Accepts", "wecom", "g1")       // offered twice
		declinesLater := h.member("Later", "wecom", "g1")   // offered once, then declines
		neverAsked := h.member("NeverAsked", "wecom", "g1") // no opt-in
		london := h.member("London", "wecom", "g2")         // store without yun
		unsubscribed := h.member("Unsub", "wecom", "g1")    // unsubscribed from camellia
		ownGuide := h.member("OwnGuide", "wecom", "g1")     // already has a yun guide
		for _, m := range []int64{accepts, declinesLater, london, unsubscribed, ownGuide} {
			must(s.SetCrossBrandOptIn(ctx, m, []string{"yun"}, true, now))
		}
		must(s.SetConsent(ctx, unsubscribed, "camellia", store.ConsentAll, true, now))
		if _, _, err := s.EnsureMember(ctx, store.NewMember{BrandID: "yun",
			Identities: []store.Identity{{Channel: "wecom", ExternalID: "wecom-OwnGuide"}}}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Bind(ctx, &store.Binding{MemberID: ownGuide, BrandID: "yun", GuideID: "y1", StoreID: "sh1", Reason: "manual"}); err != nil {
			t.Fatal(err)
		}

		unknown := strings.Replace(crossBrandWorkflow, "[camellia]", "[camelia]", 1)
		if _, err := h.e.Put(ctx, "yun", "yun-in-store", []byte(unknown)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `no brand "camelia"`) {
			t.Fatalf("putting an offer from an unknown brand: %v", err)
		}
		if _, err := h.e.Put(ctx, "yun", "yun-in-store", []byte(crossBrandWorkflow)); err != nil {
			t.Fatal(err)
		}
		must(h.e.Enable(ctx, "yun", "yun-in-store"))

		h.clock.Set(at(3, 10, 0).Add(20 * time.Second))
		n, err := h.e.RunSchedules(ctx, h.clock.Now())
		if err != nil || n != 2 {
			t.Fatalf("the schedule started %d runs (%v), want 2", n, err)
		}
		for _, m := range []int64{neverAsked, london, unsubscribed, ownGuide} {
			if runs := h.runs(m); len(runs) != 0 {
				t.Errorf("member %d was entered: %+v", m, runs)
			}
		}
		for _, m := range []int64{accepts, declinesLater} {
			run := h.only(m)
			if run.BrandID != "yun" || run.ViaBrandID != "camellia" {
				t.Errorf("member %d's run is for %q via %q, want yun via camellia", m, run.BrandID, run.ViaBrandID)
			}
		}

		h.runUntil(at(3, 10, 5))
		msgs := h.sender.toMembers()
		if len(msgs) != 2 {
			t.Fatalf("first offers: %d messages, want 2: %+v", len(msgs), msgs)
		}
		for _, m := range msgs {
			if m.out.Via != "wang" || m.meta.Brand != "yun" || m.meta.GuideID != "g1" {
				t.Errorf("offer went via %q for brand %q credited to guide %q, want via wang (g1) for yun", m.out.Via, m.meta.Brand, m.meta.GuideID)
			}
			if !strings.Contains(m.out.Text, "云裳") || !strings.Contains(m.out.Text, "小王") || !strings.Contains(m.out.Text, "静安店") {
				t.Errorf("offer text %q does not name the brand, the guide and the store", m.out.Text)
			}
		}

		// "Later" declines yun's offers before the second one is due.
		h.clock.Set(at(3, 18, 0))
		must(s.SetCrossBrandOptIn(ctx, declinesLater, []string{"yun"}, false, h.clock.Now()))
		h.runUntil(at(4, 12, 0))

		if got := len(h.sender.toMembers()); got != 3 {
			t.Fatalf("after the second offer: %d messages in all, want 3", got)
		}
		if last := h.sender.toMembers()[2]; last.meta.MemberID != accepts {
			t.Errorf("the second offer went to member %d, want %d", last.meta.MemberID, accepts)
		}
		later := h.only(declinesLater)
		steps, err := s.RunSteps(ctx, later.ID)
		must(err)
		last := steps[len(steps)-1]
		if last.StepID != "again" || last.State != store.StepSkipped || !strings.Contains(last.Outcome, store.CrossBrandNoOptIn) {
			t.Errorf("the declined offer's step: %+v", last)
		}
		if later.State != store.RunDone {
			t.Errorf("run state %q, want done", later.State)
		}
		h.noErrors()
	})
}

// TestCrossBrandGoal ends a cross-brand run as converted when the member
// buys the offered brand, before the second offer.
func TestCrossBrandGoal(t *testing.T) {
	forEach(t, at(3, 9, 0), func(t *testing.T, h *harness) {
		ctx, s := h.ctx, h.s
		if err := s.CreateBrand(ctx, &store.Brand{ID: "yun", Name: "云裳"}); err != nil {
			t.Fatal(err)
		}
		sh1, err := s.RetailStore(ctx, "sh1", "")
		if err != nil {
			t.Fatal(err)
		}
		sh1.BrandIDs = []string{"camellia", "yun"}
		if err := s.UpsertRetailStores(ctx, []store.RetailStore{*sh1}); err != nil {
			t.Fatal(err)
		}
		m := h.member("Buyer", "wecom", "g1")
		if err := s.SetCrossBrandOptIn(ctx, m, []string{"yun"}, true, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := h.e.Put(ctx, "yun", "yun-in-store", []byte(crossBrandWorkflow)); err != nil {
			t.Fatal(err)
		}
		if err := h.e.Enable(ctx, "yun", "yun-in-store"); err != nil {
			t.Fatal(err)
		}
		h.clock.Set(at(3, 10, 0).Add(20 * time.Second))
		if n, err := h.e.RunSchedules(ctx, h.clock.Now()); err != nil || n != 1 {
			t.Fatalf("started %d (%v), want 1", n, err)
		}
		h.runUntil(at(3, 12, 0))
		ev := &store.Event{Type: events.TypePurchaseCompleted, BrandID: "yun", MemberID: &m, Source: "test", SourceID: "yun-order-1",
			Payload: `{"order":{"id":"Y1","total":399}}`, OccurredAt: h.clock.Now().UTC()}
		if _, err := s.AppendEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if err := h.e.HandleEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
		h.runUntil(at(5, 12, 0))
		if run := h.only(m); run.State != store.RunConverted {
			t.Errorf("run %+v, want converted", run)
		}
		if got := len(h.sender.toMembers()); got != 1 {
			t.Errorf("%d offers sent, want 1 (the purchase stops the second)", got)
		}
		h.noErrors()
	})
}
