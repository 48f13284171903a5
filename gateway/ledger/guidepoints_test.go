package ledger_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/gateway/commerce"
	"github.com/scrmgw/scrmgw/gateway/ledger"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

const testPointsRules = `brands:
  acme:
    member_bound: 10
    task_on_time: 5
    nudge_purchase: 20
    nudge_days: 7
    per_yuan: "0.1"
  "*":
    member_bound: 1
`

// TestGuidePointsLedger runs purchases, redeliveries, refunds and tasks
// through Commerce with the awarder hooked in, and checks the ledger
// against figures worked out by hand.
func TestGuidePointsLedger(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.CreateBrand(ctx, &store.Brand{ID: "acme", Name: "ACME"}))
		must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "sh-1", Name: "静安店", BrandIDs: []string{"acme"}, Lat: 31, Lng: 121, Active: true}))
		must(s.CreateGuide(ctx, &store.Guide{ID: "g-li", StoreID: "sh-1", Name: "李娜", Active: true}))
		must(s.CreateGuide(ctx, &store.Guide{ID: "g-wu", StoreID: "sh-1", Name: "吴敏", Active: true}))
		m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: "acme"})
		must(err)
		heir, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13900139000", BrandID: "acme"})
		must(err)
		_, _, err = s.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: "acme", GuideID: "g-li", StoreID: "sh-1", Reason: "state"})
		must(err)
		_, _, err = s.Bind(ctx, &store.Binding{MemberID: heir.ID, BrandID: "acme", GuideID: "g-wu", StoreID: "sh-1", Reason: "inherited"})
		must(err)

		rules, err := ledger.ParsePointsRules("points.yaml", []byte(testPointsRules))
		must(err)
		sh, _ := time.LoadLocation("Asia/Shanghai")
		gp := ledger.NewGuidePoints(s, rules, sh, nil)
		c := commerce.New(s, nil)
		c.OnLogged = gp.Then(nil)

		// An event about the member 8 days after the binding: too late to
		// earn (a binding made before points were turned on).
		gp.SetNow(func() time.Time { return time.Now().Add(ledger.BindingFresh + time.Hour) })
		must(gp.HandleEvent(ctx, &store.Event{Type: events.TypeMemberUpdated, BrandID: "acme", MemberID: &m.ID}))
		if es, _ := s.GuidePoints(ctx, store.GuidePointsFilter{}); len(es) != 0 {
			t.Fatalf("an old binding earned: %+v", es)
		}
		gp.SetNow(time.Now)
		// Members joined, each event delivered twice: Li earns 10 once; Wu
		// nothing for a member inherited from a leaver.
		for _, id := range []int64{m.ID, heir.ID, m.ID} {
			must(gp.HandleEvent(ctx, &store.Event{Type: events.TypeMemberJoined, BrandID: "acme", MemberID: &id}))
		}

		// A workflow nudge to the member through Li, 3 days before the
		// purchase.
		placed := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		run := int64(7)
		reserved, err := s.ReserveSend(ctx, store.SendReservation{Key: "run:7:send:1", MemberID: m.ID, BrandID: "acme", RunID: run,
			Channel: "wecom", At: placed.AddDate(0, 0, -3)})
		if err != nil || !reserved {
			t.Fatal(reserved, err)
		}
		_, err = s.AddOutbox(ctx, &store.OutboxMessage{IdempotencyKey: "run:7:send:1", Channel: "wecom", Recipient: "wmX", MemberID: &m.ID,
			GuideID: "g-li", BrandID: "acme", Kind: "text", Payload: []byte(`{}`)})
		must(err)

		event := func(typ, key, data string) {
			t.Helper()
			in := &adapters.Inbound{Channel: webhook.ChannelName, Kind: "event", Event: typ, Brand: "acme", DedupKey: key,
				Attrs: map[string]string{"data": data}, At: placed}
			must(c.Handle(ctx, in))
		}
		// SO-1: 2 × 129.00 + 99.50 = 357.50, credited to Li by the POS.
		so1 := `{"member":{"phone":"13800138000"},"order_id":"SO-1","store":"sh-1","guide":"g-li","placed_at":"` + placed.Format(time.RFC3339) + `",
		  "items":[{"sku":"CL-100","qty":2,"price":"129.00"},{"sku":"TN-200","qty":1,"price":"99.50"}]}`
		event(events.TypePurchaseCompleted, "e-so1", so1)
		event(events.TypePurchaseCompleted, "e-so1", so1) // redelivered
		// SO-2: 99.50, ten days after the nudge, not credited by the POS:
		// the bound guide by binding; sales points, no nudge points.
		later := placed.AddDate(0, 0, 7).Add(time.Minute)
		event(events.TypePurchaseCompleted, "e-so2", `{"member":{"phone":"13800138000"},"order_id":"SO-2","placed_at":"`+later.Format(time.RFC3339)+`",
		  "items":[{"sku":"TN-200","qty":1,"price":"99.50"}]}`)

		o1, err := s.OrderByNo(ctx, "acme", "SO-1")
		must(err)
		o2, err := s.OrderByNo(ctx, "acme", "SO-2")
		must(err)
		type row struct {
			Key    string
			Guide  string
			Kind   string
			Points int64
		}
		ledgerRows := func() []row {
			t.Helper()
			es, err := s.GuidePoints(ctx, store.GuidePointsFilter{BrandID: "acme"})
			must(err)
			var out []row
			for _, e := range es {
				out = append(out, row{e.Key, e.GuideID, e.Kind, e.Points})
			}
			return out
		}
		id := func(n int64) string { return strconv.FormatInt(n, 10) }
		// Hand-computed: 357.50 × 0.1 = 35.75 → 36; 99.50 × 0.1 = 9.95 → 10.
		want := []row{
			{"bound:acme:" + id(m.ID) + ":g-li", "g-li", store.GuidePointsBound, 10},
			{"order:" + id(o1.ID) + ":sales", "g-li", store.GuidePointsSales, 36},
			{"order:" + id(o1.ID) + ":nudge", "g-li", store.GuidePointsNudge, 20},
			{"order:" + id(o2.ID) + ":sales", "g-li", store.GuidePointsSales, 10},
		}
		if diff := cmp.Diff(want, ledgerRows()); diff != "" {
			t.Fatalf("ledger after purchases (-want +got):\n%s", diff)
		}

		// Refunds of SO-1: one cleanser (129.00), then the rest (228.50),
		// each delivered twice. Sales: round(36 × 129/357.5) = round(12.99)
		// = 13, then round(36 × 357.5/357.5) - 13 = 23; the nudge points go
		// with the refund that completes the full refund.
		for range 2 {
			event(events.TypePurchaseRefunded, "e-rf1", `{"member":{"phone":"13800138000"},"order_id":"SO-1","refund_id":"RF-1","items":[{"sku":"CL-100","qty":1}]}`)
		}
		refunds, _ := s.OrderRefunds(ctx, o1.ID)
		want = append(want, row{"refund:" + id(refunds[0].ID) + ":sales", "g-li", store.GuidePointsClawback, -13})
		if diff := cmp.Diff(want, ledgerRows()); diff != "" {
			t.Fatalf("ledger after the first refund (-want +got):\n%s", diff)
		}
		event(events.TypePurchaseRefunded, "e-rf2", `{"member":{"phone":"13800138000"},"order_id":"SO-1","refund_id":"RF-2"}`)
		// The hook retried with the logged event (as after a crash).
		logged, err := s.Events(ctx, store.EventFilter{MemberID: m.ID, Type: events.TypePurchaseRefunded})
		must(err)
		for _, e := range logged {
			must(gp.HandleEvent(ctx, &e))
		}
		refunds, _ = s.OrderRefunds(ctx, o1.ID)
		want = append(want, row{"refund:" + id(refunds[1].ID) + ":sales", "g-li", store.GuidePointsClawback, -23},
			row{"refund:" + id(refunds[1].ID) + ":nudge", "g-li", store.GuidePointsClawback, -20})
		if diff := cmp.Diff(want, ledgerRows()); diff != "" {
			t.Fatalf("ledger after the full refund (-want +got):\n%s", diff)
		}

		// Tasks through the completer: on time earns 5 once (retried), late
		// nothing.
		due := time.Now().Add(time.Hour)
		onTime := &store.GuideTask{MemberID: m.ID, GuideID: "g-li", BrandID: "acme", Title: "回访", DueAt: due}
		late := &store.GuideTask{MemberID: m.ID, GuideID: "g-li", BrandID: "acme", Title: "回访", DueAt: time.Now().Add(-time.Hour)}
		for _, task := range []*store.GuideTask{onTime, late} {
			if _, err := s.CreateGuideTask(ctx, task); err != nil {
				t.Fatal(err)
			}
		}
		tasks := gp.Tasks(storeCompleter{s})
		for range 2 {
			for _, task := range []*store.GuideTask{onTime, late} {
				if _, _, err := tasks.CompleteGuideTask(ctx, task.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		want = append(want, row{"task:" + id(onTime.ID), "g-li", store.GuidePointsTask, 5})
		if diff := cmp.Diff(want, ledgerRows()); diff != "" {
			t.Fatalf("ledger after tasks (-want +got):\n%s", diff)
		}
		// 10 + 36 + 20 + 10 - 13 - 23 - 20 + 5 = 25, over the months the
		// entries fell in (SO-2 is a week later).
		var total int64
		for month := range map[string]bool{gp.Month(placed): true, gp.Month(later): true, gp.Month(time.Now()): true} {
			n, err := s.GuidePointsTotal(ctx, "g-li", "acme", month)
			must(err)
			total += n
		}
		if total != 25 {
			t.Errorf("Li's points = %d, want 25", total)
		}
		if n, _ := s.GuidePointsTotal(ctx, "g-wu", "", gp.Month(time.Now())); n != 0 {
			t.Errorf("Wu's points = %d, want 0 (inherited member)", n)
		}

		// A completer that fails after completing: the retry still awards.
		retried := &store.GuideTask{MemberID: m.ID, GuideID: "g-wu", BrandID: "acme", Title: "回访", DueAt: due}
		s.CreateGuideTask(ctx, retried)
		flaky := gp.Tasks(failingCompleter{storeCompleter{s}})
		if _, _, err := flaky.CompleteGuideTask(ctx, retried.ID); err == nil {
			t.Fatal("the failing completer's error was lost")
		}
		if es, _ := s.GuidePoints(ctx, store.GuidePointsFilter{GuideID: "g-wu"}); len(es) != 1 || es[0].Points != 5 {
			t.Errorf("Wu's entries after a completion that failed late = %+v", es)
		}
	})
}

type storeCompleter struct{ s *store.Store }

func (c storeCompleter) CompleteGuideTask(ctx context.Context, id int64) (*store.GuideTask, bool, error) {
	return c.s.CompleteGuideTask(ctx, id, time.Now())
}

// failingCompleter completes the task and then fails (the engine's event
// after the task was marked done).
type failingCompleter struct{ next ledger.TaskCompleter }

func (c failingCompleter) CompleteGuideTask(ctx context.Context, id int64) (*store.GuideTask, bool, error) {
	t, done, _ := c.next.CompleteGuideTask(ctx, id)
	return t, done, errors.New("engine down")
}
