package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func TestStaleSending(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ids := make([]int64, 4)
		for i := range ids {
			m := store.OutboxMessage{IdempotencyKey: fmt.Sprintf("nudge:%d", i), Channel: "wecom", Recipient: fmt.Sprintf("wm%d", i),
				Kind: "text", Payload: []byte("{}")}
			if _, err := s.AddOutbox(ctx, &m); err != nil {
				t.Fatal(err)
			}
			ids[i] = m.ID
		}
		before := time.Now().Add(-time.Second)
		claimed := map[int64]*store.OutboxMessage{}
		for _, id := range ids[:3] { // the last stays pending
			m, ok, err := s.ClaimOutbox(ctx, id)
			if err != nil || !ok {
				t.Fatalf("claiming %d: %v %v", id, ok, err)
			}
			claimed[id] = m
		}
		// A claim younger than the cutoff is its handler's.
		if got, err := s.StaleSending(ctx, before, 10); err != nil || len(got) != 0 {
			t.Fatalf("stale before the claims = %d rows, %v; want none", len(got), err)
		}
		got, err := s.StaleSending(ctx, time.Now().Add(time.Second), 10)
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs []int64
		for _, m := range got {
			gotIDs = append(gotIDs, m.ID)
		}
		if fmt.Sprint(gotIDs) != fmt.Sprint(ids[:3]) {
			t.Fatalf("stale = %v, want the claimed rows %v", gotIDs, ids[:3])
		}
		if got, _ := s.StaleSending(ctx, time.Now().Add(time.Second), 2); len(got) != 2 {
			t.Errorf("limit 2 gave %d rows", len(got))
		}

		// Sent: the channel listed it.
		a := claimed[ids[0]]
		if ok, err := s.SettleStaleSent(ctx, a, "msgA", "pending", "reconciled"); err != nil || !ok {
			t.Fatalf("SettleStaleSent = %v, %v", ok, err)
		}
		if ok, _ := s.SettleStaleSent(ctx, a, "msgA", "pending", "reconciled"); ok {
			t.Error("a settled claim was settled again")
		}
		row, _ := s.Outbox(ctx, a.ID)
		if row.State != store.OutboxSent || row.ExternalID != "msgA" || row.Delivery != "pending" || row.SentAt == nil {
			t.Errorf("reconciled row = %+v", row)
		}

		// The handler settles first: the sweep changes nothing.
		b := claimed[ids[1]]
		if err := s.FinishOutbox(ctx, b.ID, "msgB", ""); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.SettleStalePending(ctx, b, "not sent"); err != nil || ok {
			t.Errorf("settling a row its handler finished = %v, %v; want false", ok, err)
		}
		if row, _ := s.Outbox(ctx, b.ID); row.State != store.OutboxSent || row.ExternalID != "msgB" {
			t.Errorf("finished row changed: %+v", row)
		}

		// Not sent: back to pending, and claimed again. The old claim
		// cannot settle the new one.
		c := claimed[ids[2]]
		if ok, err := s.SettleStalePending(ctx, c, "not sent"); err != nil || !ok {
			t.Fatalf("SettleStalePending = %v, %v", ok, err)
		}
		c2, ok, err := s.ClaimOutbox(ctx, c.ID)
		if err != nil || !ok || c2.Attempts != 2 {
			t.Fatalf("claiming again: %v %v attempts %d", ok, err, c2.Attempts)
		}
		if ok, _ := s.SettleStaleFailed(ctx, c, "unknown"); ok {
			t.Error("the first claim settled the second one")
		}
		if ok, err := s.SettleStaleFailed(ctx, c2, "the worker died mid-send; unknown"); err != nil || !ok {
			t.Fatalf("SettleStaleFailed = %v, %v", ok, err)
		}
		row, _ = s.Outbox(ctx, c.ID)
		if row.State != store.OutboxFailed || row.LastError != "the worker died mid-send; unknown" {
			t.Errorf("failed row = %+v", row)
		}
		// A pending row is never stale, whatever its age.
		if got, _ := s.StaleSending(ctx, time.Now().Add(time.Hour), 10); len(got) != 0 {
			t.Errorf("stale after settling = %d rows, want none", len(got))
		}
	})
}
