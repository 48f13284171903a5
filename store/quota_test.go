package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestReserveQuotaConcurrent has many sends of different runs race for a
// member's daily quota: exactly the limit get through, a retried key is
// not counted twice, and a released one frees its place.
func TestReserveQuotaConcurrent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		m := seedMember(t, s, "acme", "wm_quota")
		other := seedMember(t, s, "acme", "wm_other")
		day := time.Date(2025, 3, 3, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))
		const limit, racers = 3, 24
		var wg sync.WaitGroup
		granted := make(chan string, racers)
		errs := make(chan error, racers)
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := fmt.Sprintf("run%d:send", i)
				ok, err := s.ReserveQuota(ctx, store.QuotaReservation{Key: key, MemberID: m, Channel: "wecom",
					PeriodStart: day, Limit: limit, At: t0})
				if err != nil {
					errs <- err
					return
				}
				if ok {
					granted <- key
				}
			}()
		}
		wg.Wait()
		close(granted)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		var keys []string
		for k := range granted {
			keys = append(keys, k)
		}
		if len(keys) != limit {
			t.Fatalf("%d of %d racing sends reserved, want exactly %d", len(keys), racers, limit)
		}
		if n, err := s.QuotaUsed(ctx, m, "wecom", day); err != nil || n != limit {
			t.Fatalf("QuotaUsed = %d, %v; want %d", n, err, limit)
		}

		// A retry of a granted key is granted again, not counted again.
		ok, err := s.ReserveQuota(ctx, store.QuotaReservation{Key: keys[0], MemberID: m, Channel: "wecom", PeriodStart: day, Limit: limit, At: t0})
		if err != nil || !ok {
			t.Fatalf("retrying a reserved key: %v, %v; want granted", ok, err)
		}
		if n, _ := s.QuotaUsed(ctx, m, "wecom", day); n != limit {
			t.Fatalf("a retry was counted: used %d", n)
		}
		// Full for this member and day, not for the next day, another
		// member or another channel.
		for _, tc := range []struct {
			name string
			r    store.QuotaReservation
			want bool
		}{
			{"same day", store.QuotaReservation{Key: "late", MemberID: m, Channel: "wecom", PeriodStart: day}, false},
			{"next day", store.QuotaReservation{Key: "tomorrow", MemberID: m, Channel: "wecom", PeriodStart: day.AddDate(0, 0, 1)}, true},
			{"other member", store.QuotaReservation{Key: "other", MemberID: other, Channel: "wecom", PeriodStart: day}, true},
			{"other channel", store.QuotaReservation{Key: "dt", MemberID: m, Channel: "dingtalk", PeriodStart: day}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.r.Limit, tc.r.At = limit, t0
				ok, err := s.ReserveQuota(ctx, tc.r)
				if err != nil || ok != tc.want {
					t.Fatalf("ReserveQuota = %v, %v; want %v", ok, err, tc.want)
				}
			})
		}
		if err := s.ReleaseQuota(ctx, keys[1]); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.ReserveQuota(ctx, store.QuotaReservation{Key: "late", MemberID: m, Channel: "wecom", PeriodStart: day, Limit: limit, At: t0}); err != nil || !ok {
			t.Fatalf("after a release: %v, %v; want granted", ok, err)
		}
		if _, err := s.ReserveQuota(ctx, store.QuotaReservation{Key: "x", MemberID: m, Channel: "wecom", PeriodStart: day}); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("limit 0: %v, want ErrInvalid", err)
		}
	})
}

func TestSetMemberTimeZone(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "acme")
		m := seedMember(t, s, "acme", "wm_tz")
		if err := s.SetMemberTimeZone(ctx, m, "Europe/Paris"); err != nil {
			t.Fatal(err)
		}
		p, err := s.MemberProfile(ctx, "acme", m)
		if err != nil {
			t.Fatal(err)
		}
		if p.Member.TimeZone != "Europe/Paris" {
			t.Fatalf("time zone %q, want Europe/Paris", p.Member.TimeZone)
		}
		if err := s.SetMemberTimeZone(ctx, m, "Europe/Pariss"); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("bad zone: %v, want ErrInvalid", err)
		}
		if err := s.SetMemberTimeZone(ctx, 999999, "UTC"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown member: %v, want ErrNotFound", err)
		}
	})
}
