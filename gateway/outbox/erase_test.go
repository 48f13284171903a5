package outbox

import (
	"context"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestErasedMemberIsNeverSent: a message queued before its member's part
// was erased (first try, or a retry after a transient failure), or written
// after it by a run that was mid-step, is not delivered; the other brand's
// message to the same person is.
func TestErasedMemberIsNeverSent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, b := range []string{"acme", "zeta"} {
			if err := s.CreateBrand(ctx, &store.Brand{ID: b, Name: b}); err != nil {
				t.Fatal(err)
			}
		}
		var id int64
		for _, b := range []string{"acme", "zeta"} {
			m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: b,
				Identities: []store.Identity{{Channel: "fake", ExternalID: "wm-chen-" + b}}})
			if err != nil {
				t.Fatal(err)
			}
			id = m.ID
		}
		ch := &fakeChannel{fails: []error{&adapters.APIError{Channel: "fake", Code: 45009, Kind: adapters.ErrRateLimited}}}
		reg := adapters.NewRegistry()
		reg.Register(ch)
		q := queuetest.New()
		snd := NewSender(s, reg, q, discard)
		send := func(key, brand string) *store.OutboxMessage {
			t.Helper()
			row, err := snd.Send(ctx, "fake", &adapters.Outbound{IdempotencyKey: key, To: "wm-chen-" + brand, Kind: "text", Text: "Hi Chen " + key},
				Meta{MemberID: &id, BrandID: brand})
			if err != nil {
				t.Fatal(err)
			}
			return row
		}
		retried := send("retried", "acme")
		queued := send("queued", "acme")
		other := send("other", "zeta")
		tasks := q.Drain()
		// The first attempt of "retried" fails transiently: it is pending
		// again, its retry queued, when the erasure comes.
		if err := snd.SendTask(ctx, tasks[0]); err == nil {
			t.Fatal("the rate-limited first attempt succeeded")
		}
		if _, err := s.EraseMember(ctx, id, "acme", "acme-token"); err != nil {
			t.Fatal(err)
		}
		late := send("late", "acme")
		for _, task := range append(tasks, q.Drain()...) {
			snd.SendTask(ctx, task)
		}
		if len(ch.sent) != 1 || ch.sent[0].Text != "Hi Chen other" || ch.sent[0].To != "wm-chen-zeta" {
			var got []string
			for _, m := range ch.sent {
				got = append(got, m.To+": "+m.Text)
			}
			t.Fatalf("delivered %q, want only zeta's message", got)
		}
		for _, row := range []*store.OutboxMessage{retried, queued, late} {
			got, _ := s.Outbox(ctx, row.ID)
			if got.State != store.OutboxFailed || got.Failure != store.ErasedReason || string(got.Payload) != "{}" {
				t.Errorf("%s: %s (%s) payload %s", got.IdempotencyKey, got.State, got.Failure, got.Payload)
			}
		}
		if got, _ := s.Outbox(ctx, other.ID); got.State != store.OutboxSent {
			t.Errorf("zeta's message %s", got.State)
		}
	})
}
