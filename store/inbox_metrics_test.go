package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestInboxWaiting counts the rows recorded and not processed, and finds
// the oldest of them.
func TestInboxWaiting(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if n, oldest, err := s.InboxWaiting(ctx); err != nil || n != 0 || !oldest.IsZero() {
			t.Fatalf("empty inbox: %d, %v, %v", n, oldest, err)
		}
		var rows []*store.InboxMessage
		for _, key := range []string{"m1", "m2", "m3"} {
			m := &store.InboxMessage{Channel: "wecom", DedupKey: key, Payload: []byte(`{}`)}
			if _, err := s.RecordInbound(ctx, m); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, m)
			time.Sleep(10 * time.Millisecond)
		}
		if err := s.FinishInbox(ctx, rows[0].ID); err != nil {
			t.Fatal(err)
		}
		n, oldest, err := s.InboxWaiting(ctx)
		if err != nil {
			t.Fatal(err)
		}
		second, _ := s.Inbox(ctx, rows[1].ID)
		if n != 2 || !oldest.Equal(second.CreatedAt) {
			t.Errorf("InboxWaiting = %d, oldest %v; want 2, %v (the first is processed)", n, oldest, second.CreatedAt)
		}
	})
}
