package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestMigrateGroupSendAttempts upgrades a database made before 0041: its
// group sends have no attempt time, owner or delivery. The migration
// adds them, and a send reserved then without its channel's id counts
// as attempted when it was reserved: a retry asks the channel first.
func TestMigrateGroupSendAttempts(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			url := storetest.URL(t, dialect)
			s := openURL(t, url)
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			s.Close()
			reserved := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
			raw := rawDB(t, dialect, url)
			for _, q := range []string{
				`DELETE FROM schema_migrations WHERE id = '0041_group_send_attempts'`,
				`ALTER TABLE customer_group_sends DROP COLUMN attempted_at`,
				`ALTER TABLE customer_group_sends DROP COLUMN owner`,
				`ALTER TABLE customer_group_sends DROP COLUMN delivery`,
				`ALTER TABLE customer_group_sends DROP COLUMN delivered_at`,
				`ALTER TABLE customer_group_sends DROP COLUMN checked_at`,
			} {
				if err := raw.Exec(q).Error; err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			for _, row := range [][]any{{"wr-lost", "k1", ""}, {"wr-sent", "k1", "msg1"}} {
				if err := raw.Exec(`INSERT INTO customer_group_sends (channel, chat_id, day, key, msg_id, created_at) VALUES ('wecom', ?, '2026-03-01', ?, ?, ?)`,
					row[0], row[1], row[2], reserved).Error; err != nil {
					t.Fatal(err)
				}
			}
			if db, _ := raw.DB(); db != nil {
				db.Close()
			}
			s = openURL(t, url)
			defer s.Close()
			applied, err := s.Migrate(ctx)
			if err != nil || !slices.Equal(applied, []string{"0041_group_send_attempts"}) {
				t.Fatalf("applied %v, %v", applied, err)
			}
			if r, err := s.ReserveGroupSend(ctx, "wecom", "wr-lost", "2026-03-01", "k1"); err != nil || !r.Unconfirmed() || !r.AttemptedAt.Equal(reserved) {
				t.Errorf("the send reserved without an id = %+v, %v; want unconfirmed since %s", r, err, reserved)
			}
			if r, err := s.ReserveGroupSend(ctx, "wecom", "wr-sent", "2026-03-01", "k1"); err != nil || r.Unconfirmed() || r.MsgID != "msg1" {
				t.Errorf("the sent one = %+v, %v", r, err)
			}
			// New sends get the columns.
			if err := s.SetGroupSendMsgID(ctx, "wecom", "wr-lost", "2026-03-01", "li", "msg2"); err != nil {
				t.Fatal(err)
			}
			if due, err := s.GroupSendsToCheck(ctx, reserved.Add(-time.Hour), time.Now(), 10); err != nil || len(due) != 1 || due[0].Owner != "li" {
				t.Errorf("sends to check = %+v, %v", due, err)
			}
		})
	}
}
