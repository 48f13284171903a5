package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestMigrateHandoverInstances: a handover that names no channel
// instance becomes the default WeCom instance's ("wecom"), one that names
// its instance keeps it, and each is found again by its instance.
func TestMigrateHandoverInstances(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			url := storetest.URL(t, dialect)
			s := openURL(t, url)
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			s.Close()
			raw := rawDB(t, dialect, url)
			for _, q := range []string{
				`DELETE FROM schema_migrations WHERE id = '0027_handover_instances'`,
				`INSERT INTO handovers (guide_id, member_id, brand_id, store_id, channel, handover_userid, external_userid, takeover_userid, state, created_at, updated_at)
					VALUES ('g-li', 1, 'camellia', 'sh-1', '', 'li', 'wmA', 'wang', 'requested', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
					('g-zhang', 2, 'acme', 'acme-sh', 'wecom:acme', 'zhang', 'wmB', 'zhao', 'requested', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)`,
			} {
				if err := raw.Exec(q).Error; err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if db, _ := raw.DB(); db != nil {
				db.Close()
			}
			s = openURL(t, url)
			defer s.Close()
			applied, err := s.Migrate(ctx)
			if err != nil || !slices.Equal(applied, []string{"0027_handover_instances"}) {
				t.Fatalf("applied %v, %v", applied, err)
			}
			for _, tt := range []struct{ channel, to, ext, guide string }{
				{"wecom", "wang", "wmA", "g-li"},
				{"wecom:acme", "zhao", "wmB", "g-zhang"},
			} {
				h, err := s.RequestedHandover(ctx, tt.channel, tt.to, tt.ext)
				if err != nil || h.GuideID != tt.guide || h.Channel != tt.channel {
					t.Errorf("requested handover on %s of %s = %+v, %v; want %s's", tt.channel, tt.ext, h, err, tt.guide)
				}
			}
			if _, err := s.RequestedHandover(ctx, "wecom", "zhao", "wmB"); err != store.ErrNotFound {
				t.Errorf("acme's handover found on wecom: %v", err)
			}
		})
	}
}
