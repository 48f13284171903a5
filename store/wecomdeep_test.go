package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestCustomerGroups: saving a group again records who joined and who
// left (and who came back); the counts follow; a dismissal lets
// everyone go; a day's send is one key's.
func TestCustomerGroups(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		g := &store.CustomerGroup{Channel: "wecom", ChatID: "wr1", BrandID: "acme", Name: "VIP", OwnerID: "li", CreatedAt: t0}
		m := func(ids ...string) []store.CustomerGroupMember {
			var out []store.CustomerGroupMember
			for _, id := range ids {
				out = append(out, store.CustomerGroupMember{UserID: id, Guide: id == "li", JoinedAt: t0})
			}
			return out
		}
		steps := []struct {
			members      []string
			joined, left []string
		}{
			{[]string{"li", "wmA", "wmB"}, []string{"li", "wmA", "wmB"}, nil},
			{[]string{"li", "wmA"}, nil, []string{"wmB"}},
			{[]string{"li", "wmA", "wmB", "wmC"}, []string{"wmB", "wmC"}, nil},
		}
		for i, st := range steps {
			ch, err := s.SaveCustomerGroup(ctx, g, m(st.members...), t0.Add(time.Duration(i+1)*time.Hour))
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if !slices.Equal(ch.Joined, st.joined) || !slices.Equal(ch.Left, st.left) {
				t.Errorf("step %d: joined %v left %v, want %v %v", i, ch.Joined, ch.Left, st.joined, st.left)
			}
		}
		stats, err := s.CustomerGroupStats(ctx, "wecom", "wr1", t0.Add(-time.Hour))
		if err != nil || *stats != (store.GroupStats{Members: 4, Contacts: 3, Joins: 4, Leaves: 0}) {
			t.Errorf("stats = %+v, %v", stats, err)
		}
		if r, err := s.ReserveGroupSend(ctx, "wecom", "wr1", "2026-03-01", "k1"); err != nil || r != (store.GroupReservation{}) {
			t.Fatalf("a fresh reservation = %+v, %v", r, err)
		}
		// Reserved but never attempted: a retry may send.
		if r, err := s.ReserveGroupSend(ctx, "wecom", "wr1", "2026-03-01", "k1"); err != nil || r.Unconfirmed() || r.MsgID != "" {
			t.Errorf("the same key before any attempt = %+v, %v", r, err)
		}
		// Attempted, the answer lost: unconfirmed, from the first attempt.
		at := t0.Add(6 * time.Hour)
		for i, key := range []string{"k2", "k1", "k1"} {
			if err := s.AttemptGroupSends(ctx, "wecom", []string{"wr1"}, "2026-03-01", key, at.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if r, err := s.ReserveGroupSend(ctx, "wecom", "wr1", "2026-03-01", "k1"); err != nil || !r.Unconfirmed() || !r.AttemptedAt.Equal(at.Add(time.Minute)) {
			t.Errorf("the same key after an attempt = %+v, %v; want unconfirmed since the first attempt", r, err)
		}
		if err := s.SetGroupSendMsgID(ctx, "wecom", "wr1", "2026-03-01", "li", "msg1"); err != nil {
			t.Fatal(err)
		}
		if r, err := s.ReserveGroupSend(ctx, "wecom", "wr1", "2026-03-01", "k1"); err != nil || r.MsgID != "msg1" || r.Unconfirmed() || r.Delivery != store.GroupDeliveryPending {
			t.Errorf("the same key again = %+v, %v", r, err)
		}
		// The owner's task is checked until it is delivered.
		now := time.Now()
		due, err := s.GroupSendsToCheck(ctx, now.Add(-time.Hour), now, 10)
		if err != nil || len(due) != 1 || due[0].MsgID != "msg1" || due[0].Owner != "li" {
			t.Fatalf("sends to check = %+v, %v", due, err)
		}
		if err := s.SetGroupSendDeliveries(ctx, "wecom", "msg1", nil, now); err != nil {
			t.Fatal(err)
		}
		if due, err := s.GroupSendsToCheck(ctx, now.Add(-time.Hour), now.Add(-time.Minute), 10); err != nil || len(due) != 0 {
			t.Errorf("sends to check right after a check = %+v, %v", due, err)
		}
		if err := s.SetGroupSendDeliveries(ctx, "wecom", "msg1", map[string]string{"wr1": store.GroupDeliveryDelivered}, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if due, err := s.GroupSendsToCheck(ctx, now.Add(-time.Hour), now.Add(time.Hour), 10); err != nil || len(due) != 0 {
			t.Errorf("sends to check once delivered = %+v, %v", due, err)
		}
		if r, err := s.ReserveGroupSend(ctx, "wecom", "wr1", "2026-03-01", "k1"); err != nil || r.Delivery != store.GroupDeliveryDelivered {
			t.Errorf("the delivered send = %+v, %v", r, err)
		}
		if _, err := s.ReserveGroupSend(ctx, "wecom", "wr1", "2026-03-01", "k2"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("another key the same day = %v, want ErrConflict", err)
		}
		if err := s.DismissCustomerGroup(ctx, "wecom", "wr1", t0.Add(5*time.Hour)); err != nil {
			t.Fatal(err)
		}
		gs, err := s.CustomerGroups(ctx, store.GroupFilter{Brand: "acme", State: store.GroupDismissed})
		if err != nil || len(gs) != 1 {
			t.Errorf("dismissed groups = %+v, %v", gs, err)
		}
		if ms, _ := s.CustomerGroupMembers(ctx, "wecom", "wr1"); len(ms) != 0 {
			t.Errorf("members of a dismissed group: %+v", ms)
		}
	})
}

// TestChannelTagsAndMoments: a channel's stored tags are replaced whole;
// a moment task is one per key.
func TestChannelTagsAndMoments(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.ReplaceChannelTags(ctx, "wecom", []store.ChannelTag{{TagID: "t1", Name: "VIP"}, {TagID: "t2", Name: "老客"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.ReplaceChannelTags(ctx, "wecom", []store.ChannelTag{{TagID: "t2", Name: "老客户"}}); err != nil {
			t.Fatal(err)
		}
		tags, err := s.ChannelTags(ctx, "wecom")
		if err != nil || len(tags) != 1 || tags[0].Name != "老客户" {
			t.Errorf("tags = %+v, %v", tags, err)
		}
		mt := &store.MomentTask{Key: "spring-1", Channel: "wecom", BrandID: "acme", State: store.MomentCreating}
		if created, err := s.CreateMomentTask(ctx, mt); err != nil || !created {
			t.Fatalf("CreateMomentTask = %v, %v", created, err)
		}
		again := &store.MomentTask{Key: "spring-1", Channel: "wecom", BrandID: "acme", State: store.MomentCreating}
		if created, err := s.CreateMomentTask(ctx, again); err != nil || created || again.ID != mt.ID {
			t.Errorf("the same key again: created %v id %d, %v", created, again.ID, err)
		}
	})
}
