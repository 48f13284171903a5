package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func TestRecordInboundBatch(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seen := store.InboxMessage{Channel: "wecom", DedupKey: "k0", Payload: []byte("old")}
		if _, err := s.RecordInbound(ctx, &seen); err != nil {
			t.Fatal(err)
		}
		batch := []*store.InboxMessage{
			{Channel: "wecom", DedupKey: "k1", Payload: []byte("1")},
			{Channel: "wecom", DedupKey: "k0", Payload: []byte("again")},
			{Channel: "wecom", DedupKey: "k2", Payload: []byte("2")},
			{Channel: "wecom", DedupKey: "k1", Payload: []byte("1 twice in the batch")},
		}
		fresh, err := s.RecordInboundBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(fresh) != "[true false true false]" {
			t.Errorf("fresh = %v, want [true false true false]", fresh)
		}
		if batch[1].ID != seen.ID || string(batch[1].Payload) != "old" {
			t.Errorf("redelivered row = %+v, want the recorded one (id %d)", batch[1], seen.ID)
		}
		if batch[0].ID == 0 || batch[3].ID != batch[0].ID || batch[2].ID == batch[0].ID {
			t.Errorf("ids = %d %d %d", batch[0].ID, batch[2].ID, batch[3].ID)
		}
		ids, err := s.PendingInbox(ctx, batch[0].CreatedAt.Add(time.Millisecond), 10)
		if err != nil || len(ids) != 3 {
			t.Errorf("pending = %v, %v; want 3 rows", ids, err)
		}
		if err := s.FinishInbox(ctx, batch[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := s.FailInbox(ctx, batch[2].ID, "boom", true); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Inbox(ctx, batch[2].ID)
		if got.State != store.InboxFailed || got.LastError != "boom" || got.Attempts != 1 {
			t.Errorf("failed row = %+v", got)
		}
	})
}

func TestOutboxClaimsOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := store.OutboxMessage{IdempotencyKey: "welcome:1", Channel: "wecom", Recipient: "wm1", Kind: "text", Payload: []byte("{}")}
		if fresh, err := s.AddOutbox(ctx, &m); err != nil || !fresh {
			t.Fatalf("AddOutbox: fresh=%v err=%v", fresh, err)
		}
		dup := store.OutboxMessage{IdempotencyKey: "welcome:1", Channel: "wecom", Recipient: "wm1", Kind: "text", Payload: []byte("{}")}
		if fresh, err := s.AddOutbox(ctx, &dup); err != nil || fresh || dup.ID != m.ID {
			t.Fatalf("duplicate AddOutbox: fresh=%v id=%d err=%v", fresh, dup.ID, err)
		}
		const n = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		claims := 0
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, ok, err := s.ClaimOutbox(ctx, m.ID)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					claims++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if claims != 1 {
			t.Fatalf("%d handlers claimed the message, want 1", claims)
		}
		if err := s.ReleaseOutbox(ctx, m.ID, "throttled"); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.ClaimOutbox(ctx, m.ID)
		if err != nil || !ok || got.Attempts != 2 {
			t.Fatalf("claim after release: ok=%v attempts=%d err=%v", ok, got.Attempts, err)
		}
		// The claim returns the row as stored (on PostgreSQL, the claim's
		// own RETURNING).
		if stored, err := s.Outbox(ctx, m.ID); err != nil || !cmp.Equal(got, stored) {
			t.Errorf("claimed row differs from the stored one (-stored +claimed):\n%s", cmp.Diff(stored, got))
		}
		if err := s.FinishOutbox(ctx, m.ID, "msg-1", ""); err != nil {
			t.Fatal(err)
		}
		again, ok, err := s.ClaimOutbox(ctx, m.ID)
		if ok || err != nil {
			t.Errorf("a sent message was claimed again (err %v)", err)
		}
		if stored, _ := s.Outbox(ctx, m.ID); !cmp.Equal(again, stored) {
			t.Errorf("unclaimed row differs from the stored one (-stored +returned):\n%s", cmp.Diff(stored, again))
		}
		if _, _, err := s.ClaimOutbox(ctx, m.ID+1000); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("claiming a missing row: err = %v, want ErrNotFound", err)
		}
		got, _ = s.Outbox(ctx, m.ID)
		if got.State != store.OutboxSent || got.ExternalID != "msg-1" || got.SentAt == nil {
			t.Errorf("sent row = %+v", got)
		}
	})
}

func TestEventsAndBindings(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		if err := s.CreateRetailStore(ctx, &store.RetailStore{ID: "sh", Name: "SH", Lat: 31, Lng: 121, BrandIDs: []string{"acme"}}); err != nil {
			t.Fatal(err)
		}
		for _, g := range []string{"g1", "g2"} {
			if err := s.CreateGuide(ctx, &store.Guide{ID: g, StoreID: "sh", Name: g, Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: "wx-" + g}}}); err != nil {
				t.Fatal(err)
			}
		}
		m, _, err := s.EnsureMember(ctx, store.NewMember{Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm1"}}, BrandID: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		e := store.Event{Type: "member.joined", BrandID: "acme", MemberID: &m.ID, Source: "wecom", SourceID: "evt:1"}
		if fresh, err := s.AppendEvent(ctx, &e); err != nil || !fresh {
			t.Fatalf("AppendEvent: %v %v", fresh, err)
		}
		again := store.Event{Type: "member.joined", Source: "wecom", SourceID: "evt:1"}
		if fresh, err := s.AppendEvent(ctx, &again); err != nil || fresh || again.ID != e.ID {
			t.Fatalf("duplicate event: fresh=%v id=%d err=%v", fresh, again.ID, err)
		}
		evs, _ := s.Events(ctx, store.EventFilter{MemberID: m.ID})
		if len(evs) != 1 {
			t.Errorf("member has %d events, want 1", len(evs))
		}
		g, err := s.GuideByChannelID(ctx, "wecom", "wx-g2")
		if err != nil || g.ID != "g2" {
			t.Fatalf("GuideByChannelID = %v, %v", g, err)
		}
		var wg sync.WaitGroup
		results := make([]string, 6)
		for i := range results {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				b, _, err := s.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: "acme", GuideID: fmt.Sprintf("g%d", i%2+1), StoreID: "sh", Reason: "state"})
				if err != nil {
					results[i] = "error: " + err.Error()
					return
				}
				results[i] = b.GuideID
			}(i)
		}
		wg.Wait()
		for _, r := range results {
			if r != results[0] || r == "" {
				t.Fatalf("concurrent binds disagree: %v", results)
			}
		}
		v, _ := s.MemberByIdentity(ctx, "wecom", "wm1")
		if len(v.Bindings) != 1 {
			t.Errorf("member has %d current bindings, want 1", len(v.Bindings))
		}
		if _, err := s.MemberByIdentity(ctx, "wecom", "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown identity: %v", err)
		}
		if err := s.SetCursor(ctx, "kf:w1", "c1"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetCursor(ctx, "kf:w1", "c2"); err != nil {
			t.Fatal(err)
		}
		if c, err := s.Cursor(ctx, "kf:w1"); err != nil || c != "c2" {
			t.Errorf("cursor = %q, %v", c, err)
		}
		if c, err := s.Cursor(ctx, "kf:none"); err != nil || c != "" {
			t.Errorf("missing cursor = %q, %v", c, err)
		}
	})
}

func TestContactWays(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		cw := store.ContactWay{Channel: "wecom", StoreID: "sh-1", State: "s:sh-1", ConfigID: "c1", QRCode: "https://qr/1"}
		if err := s.SaveContactWay(ctx, &cw); err != nil {
			t.Fatal(err)
		}
		again := store.ContactWay{Channel: "wecom", StoreID: "sh-1", State: "s:sh-1", ConfigID: "c2", QRCode: "https://qr/2"}
		if err := s.SaveContactWay(ctx, &again); err != nil {
			t.Fatal(err)
		}
		got, err := s.ContactWays(ctx, "sh-1", "")
		if err != nil || len(got) != 1 || got[0].QRCode != "https://qr/2" {
			t.Fatalf("contact ways = %+v, %v; want one, updated", got, err)
		}
		// The store's Official Account code carries the same state: a
		// second code, not a replacement of the WeCom one.
		exp := time.Date(2027, 1, 6, 0, 0, 0, 0, time.UTC)
		oa := store.ContactWay{Channel: "wechat_oa", StoreID: "sh-1", State: "s:sh-1", ConfigID: "gQ1", QRCode: "https://qr/oa", ExpiresAt: &exp}
		if err := s.SaveContactWay(ctx, &oa); err != nil {
			t.Fatal(err)
		}
		got, err = s.ContactWays(ctx, "sh-1", "")
		if err != nil || len(got) != 2 || got[0].Channel != "wecom" || got[0].QRCode != "https://qr/2" ||
			got[1].Channel != "wechat_oa" || got[1].ExpiresAt == nil || !got[1].ExpiresAt.Equal(exp) {
			t.Fatalf("contact ways = %+v, %v; want the WeCom code and the account's, expiring", got, err)
		}
		if cw, err := s.ContactWayByState(ctx, "s:sh-1"); err != nil || cw.StoreID != "sh-1" {
			t.Errorf("by state = %+v, %v", cw, err)
		}
		if err := s.SaveContactWay(ctx, &store.ContactWay{Channel: "wecom", State: "x"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("contact way for nothing: %v", err)
		}
	})
}
