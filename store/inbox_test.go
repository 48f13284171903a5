package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func TestInboxDedupAndPrune(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		first := store.InboxMessage{Channel: "wecom", DedupKey: "msg:1", Payload: []byte("a")}
		fresh, err := s.RecordInbound(ctx, &first)
		if err != nil || !fresh || first.ID == 0 {
			t.Fatalf("first delivery: fresh=%v id=%d err=%v", fresh, first.ID, err)
		}
		again := store.InboxMessage{Channel: "wecom", DedupKey: "msg:1", Payload: []byte("b")}
		fresh, err = s.RecordInbound(ctx, &again)
		if err != nil || fresh || again.ID != first.ID || string(again.Payload) != "a" {
			t.Fatalf("redelivery: fresh=%v id=%d payload=%q err=%v; want the first row", fresh, again.ID, again.Payload, err)
		}
		other := store.InboxMessage{Channel: "dingtalk", DedupKey: "msg:1", Payload: []byte("c")}
		if fresh, err := s.RecordInbound(ctx, &other); err != nil || !fresh {
			t.Fatalf("same key on another channel: fresh=%v err=%v", fresh, err)
		}
		if _, err := s.RecordInbound(ctx, &store.InboxMessage{Channel: "wecom"}); err == nil {
			t.Error("inbox row without a dedup key accepted")
		}
		old := time.Now().Add(-48 * time.Hour)
		for _, k := range []string{"old-1", "old-2"} {
			m := store.InboxMessage{Channel: "wecom", DedupKey: k, Payload: []byte("x"), State: store.InboxDone, CreatedAt: old}
			if _, err := s.RecordInbound(ctx, &m); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.PruneInbox(ctx, time.Now().Add(-24*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("PruneInbox deleted %d (err %v), want 2", n, err)
		}
		if _, err := s.InboxByKey(ctx, "wecom", "msg:1"); err != nil {
			t.Errorf("pending row pruned: %v", err)
		}
	})
}
