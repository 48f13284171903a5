package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestStripExpiredClearsFreeText: the retention job clears, by age, the
// free text a channel's answer puts in run steps (outcome, error), send
// attempts (error), handovers (reason) and the outbox (last error), and
// keeps what is counted: states, reason codes, attempts, failures, error
// codes. acme's rows are old, zeta's new; a second pass finds nothing.
func TestStripExpiredClearsFreeText(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := seedTwoBrandPerson(t, s)
		now := time.Now().UTC()
		old := now.AddDate(0, 0, -200)
		for _, q := range []struct {
			sql string
			arg any
		}{
			{`UPDATE run_steps SET finished_at = ? WHERE run_id = ` + fmt.Sprint(p.zetaRun), now},
			{`UPDATE run_steps SET finished_at = ? WHERE run_id = ` + fmt.Sprint(p.run), old},
			{`UPDATE send_attempts SET at = ? WHERE outbox_id = ` + fmt.Sprint(p.zetaSend), now},
			{`UPDATE send_attempts SET at = ? WHERE outbox_id = ` + fmt.Sprint(p.acmeSend), old},
			{`UPDATE handovers SET updated_at = ? WHERE brand_id = 'acme'`, old},
			{`UPDATE outbox_messages SET state = 'failed', created_at = ? WHERE brand_id = 'acme'`, old},
		} {
			if err := store.Exec(s, q.sql, q.arg); err != nil {
				t.Fatal(err)
			}
		}
		var total store.Retained
		for i := 0; ; i++ {
			r, err := s.StripExpired(ctx, now.AddDate(0, 0, -180), 1)
			if err != nil {
				t.Fatal(err)
			}
			total.Add(r)
			if !r.More {
				break
			}
			if i > 20 {
				t.Fatal("StripExpired never done")
			}
		}
		if total.Steps != 1 || total.Attempts != 1 || total.Handovers != 1 || total.Outbox != 1 {
			t.Errorf("stripped %+v, want one step, attempt, handover and outbox row", total)
		}
		if left := traces(t, s, []string{"wm-acme-chen blocked", "errcode 84061: wm-acme-chen", "refused for Chen Acme", "Chen Acme is not", "to wm-acme-chen"}, nil); len(left) > 0 {
			t.Errorf("old free text left: %v", left)
		}
		if left := traces(t, s, []string{"errcode 84061: dt-zeta-chen", "refused for Chen Zeta", "Chen Zeta is not", "to dt-zeta-chen"}, nil); len(left) != 4 {
			t.Errorf("new free text: %v, want the step's outcome and error, the attempt's error and the handover's reason kept", left)
		}
		st, err := s.RunStep(ctx, p.run, "hello", 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%s %q %q %d %d %s", st.State, st.Outcome, st.Error, st.Failures, st.Attempts, st.OutboxKey); got != `done "expired" "" 1 2 k-acme` {
			t.Errorf("old step = %s", got)
		}
		hs, err := s.Handovers(ctx, store.HandoverFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			if h.ErrCode != 40096 || (h.BrandID == "acme") != (h.Reason == "") {
				t.Errorf("handover of %s: reason %q, code %d", h.BrandID, h.Reason, h.ErrCode)
			}
		}
		if row, _ := s.Outbox(ctx, p.acmeSend); row.LastError != "" || row.State != store.OutboxFailed {
			t.Errorf("old message: %s, last error %q", row.State, row.LastError)
		}
		if r, err := s.StripExpired(ctx, now.AddDate(0, 0, -180), 100); err != nil || r.Total() != 0 {
			t.Errorf("second run: %+v %v", r, err)
		}
	})
}

// TestUnattributedMessagesGoWithThePerson: a message the person wrote on
// a channel serving no single brand, through an identity collected with
// no brand while they are a member of two brands, carries no brand. It
// and its answer are in both brands' exports, survive the erasure of
// one brand's part and go with the last brand's.
func TestUnattributedMessagesGoWithThePerson(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := seedTwoBrandPerson(t, s)
		if _, err := s.AppendEvent(ctx, &store.Event{Type: events.TypeMessageReceived, MemberID: &p.id, Source: "dingtalk", SourceID: "msg-u1",
			Payload: `{"kind":"text","text":"unattributed words"}`, OccurredAt: t0}); err != nil {
			t.Fatal(err)
		}
		// An event of another kind without a brand is the admin's only.
		if _, err := s.AppendEvent(ctx, &store.Event{Type: "store.visited", MemberID: &p.id, Source: "pos", SourceID: "v-admin",
			Payload: `{"note":"admin only note"}`, OccurredAt: t0}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddOutbox(ctx, &store.OutboxMessage{IdempotencyKey: "reply:u1", Channel: "dingtalk", Recipient: "dt-shared", MemberID: &p.id,
			Kind: "text", Payload: []byte(`{"kind":"text","text":"unattributed answer"}`)}); err != nil {
			t.Fatal(err)
		}
		exported := func(brand string) string {
			t.Helper()
			x, err := s.ExportMember(ctx, p.id, brand)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range x.Received {
				got = append(got, "received "+r.Brand+":"+r.Text)
			}
			for _, e := range x.Events {
				if e.Brand == "" {
					got = append(got, "event "+e.Type)
				}
			}
			for _, m := range x.Messages {
				if m.Brand == "" {
					got = append(got, "message "+string(m.Payload))
				}
			}
			slices.Sort(got)
			return fmt.Sprint(got)
		}
		want := `[event message.received message {"kind":"text","text":"unattributed answer"} received :unattributed words]`
		for _, b := range []string{"acme", "zeta"} {
			if got := exported(b); got != want {
				t.Errorf("%s's export: %s\nwant %s", b, got, want)
			}
		}
		if got := exported(""); got != `[event message.received event store.visited message {"kind":"text","text":"unattributed answer"} received :unattributed words]` {
			t.Errorf("admin's export: %s", got)
		}
		if _, err := s.EraseMember(ctx, p.id, "acme", "test"); err != nil {
			t.Fatal(err)
		}
		if got := exported("zeta"); got != want {
			t.Errorf("zeta's export after acme's erasure: %s\nwant %s", got, want)
		}
		if _, err := s.EraseMember(ctx, p.id, "zeta", "test"); err != nil {
			t.Fatal(err)
		}
		if left := traces(t, s, []string{"unattributed words", "unattributed answer", "admin only note"}, nil); len(left) > 0 {
			t.Errorf("left after the last brand's erasure: %v", left)
		}
	})
}
