package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestErasureWithdrawsPendingDeliveries: erasing a member's part with a
// brand lists that brand's sends whose delivery was pending (a message
// task not yet sent by its guide) and records them withdrawn, never
// those delivered or of the other brand; erasing the person lists the
// rest; a repeated erasure lists none. PendingDeliveries finds a run's
// pending sends by key prefix, and SettlePendingDelivery settles a send
// once.
func TestErasureWithdrawsPendingDeliveries(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var member int64
		for _, b := range []string{"acme", "zeta"} {
			if err := s.CreateBrand(ctx, &store.Brand{ID: b, Name: b}); err != nil {
				t.Fatal(err)
			}
			m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: b,
				Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmChen"}}})
			if err != nil {
				t.Fatal(err)
			}
			member = m.ID
		}
		ids := map[string]int64{}
		send := func(key, brand, delivery string) {
			row := &store.OutboxMessage{IdempotencyKey: key, Channel: "wecom", Recipient: "wmChen", MemberID: &member, BrandID: brand,
				Kind: "text", Payload: []byte(`{"to":"wmChen","via":"li","text":"周六直播"}`)}
			if _, err := s.AddOutbox(ctx, row); err != nil {
				t.Fatal(err)
			}
			if _, claimed, err := s.ClaimOutbox(ctx, row.ID); err != nil || !claimed {
				t.Fatal(claimed, err)
			}
			if err := s.FinishOutbox(ctx, row.ID, "msg-"+key, "pending"); err != nil {
				t.Fatal(err)
			}
			if delivery != "pending" {
				if ok, err := s.SettlePendingDelivery(ctx, row.ID, delivery, ""); err != nil || !ok {
					t.Fatal(ok, err)
				}
			}
			ids[key] = row.ID
		}
		send("wf:1:invite:1", "acme", "pending")
		send("wf:1:remind:1", "acme", "delivered")
		send("wf:12:invite:1", "acme", "pending")
		send("wf:2:invite:1", "zeta", "pending")

		got, err := s.PendingDeliveries(ctx, "wf:1:")
		if err != nil || !cmp.Equal(got, []int64{ids["wf:1:invite:1"]}) {
			t.Errorf("PendingDeliveries(wf:1:) = %v, %v; want only run 1's pending send", got, err)
		}
		if ok, err := s.SettlePendingDelivery(ctx, ids["wf:1:remind:1"], "failed", "x"); err != nil || ok {
			t.Errorf("settling a delivered send again: %v, %v", ok, err)
		}

		e, err := s.EraseMember(ctx, member, "acme", "test")
		if err != nil {
			t.Fatal(err)
		}
		want := []store.Withdrawal{{ID: ids["wf:1:invite:1"], Channel: "wecom", ExternalID: "msg-wf:1:invite:1"},
			{ID: ids["wf:12:invite:1"], Channel: "wecom", ExternalID: "msg-wf:12:invite:1"}}
		if diff := cmp.Diff(want, e.Withdraw); diff != "" || e.Removed["outbox_withdrawn"] != 2 {
			t.Errorf("acme's erasure withdrew (-want +got):\n%s (counted %d)", diff, e.Removed["outbox_withdrawn"])
		}
		state := func() string {
			var out string
			for _, key := range []string{"wf:1:invite:1", "wf:1:remind:1", "wf:12:invite:1", "wf:2:invite:1"} {
				row, err := s.Outbox(ctx, ids[key])
				if err != nil {
					t.Fatal(err)
				}
				out += fmt.Sprintf("%s=%s(%s) ", key, row.Delivery, row.DeliveryDetail)
			}
			return out
		}
		wantState := "wf:1:invite:1=failed(withdrawn: member erased) wf:1:remind:1=delivered() wf:12:invite:1=failed(withdrawn: member erased) wf:2:invite:1=pending() "
		if got := state(); got != wantState {
			t.Errorf("after acme's erasure:\n%s\nwant\n%s", got, wantState)
		}
		if again, err := s.EraseMember(ctx, member, "acme", "test"); err != nil || again.Withdraw != nil {
			t.Errorf("erasing again withdrew %v, %v", again.Withdraw, err)
		}
		e, err = s.EraseMember(ctx, member, "", "test")
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Withdraw) != 1 || e.Withdraw[0].ID != ids["wf:2:invite:1"] {
			t.Errorf("the person's erasure withdrew %+v, want zeta's pending send", e.Withdraw)
		}
	})
}
