package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestTouchIdentity: a member's last inbound time on a channel id moves
// forward only, and an id no member has is no error.
func TestTouchIdentity(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		m, _, err := s.EnsureMember(ctx, store.NewMember{BrandID: "acme", Identities: []store.Identity{
			{Channel: "wechat_oa", ExternalID: "oChen"}, {Channel: "wecom", ExternalID: "wmChen"}}})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		for _, at := range []time.Time{t0, t0.Add(-time.Hour)} { // the second is a late redelivery
			if err := s.TouchIdentity(ctx, "wechat_oa", "oChen", at); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.TouchIdentity(ctx, "wechat_oa", "oNobody", t0); err != nil {
			t.Errorf("touching an unknown id: %v", err)
		}
		p, err := s.MemberProfile(ctx, "acme", m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.LastInbound("wechat_oa"); !got.Equal(t0) {
			t.Errorf("LastInbound(wechat_oa) = %v, want %v", got, t0)
		}
		if got := p.LastInbound("wecom"); !got.IsZero() {
			t.Errorf("LastInbound(wecom) = %v, want zero (never touched)", got)
		}
		if err := s.TouchIdentity(ctx, "wechat_oa", "oChen", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		p, _ = s.MemberProfile(ctx, "acme", m.ID)
		if got := p.LastInbound("wechat_oa"); !got.Equal(t0.Add(time.Minute)) {
			t.Errorf("after a later message, LastInbound = %v", got)
		}
	})
}
