package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// twoBrandPerson is one person who is a member of acme and of zeta, with
// data of each: names, identities, bindings, tags, consent, events,
// points, a coupon, messages both ways, a run and a guide task.
type twoBrandPerson struct {
	id                   int64
	acmeSend, zetaSend   int64
	acmeInbox, zetaInbox int64
	run, zetaRun         int64
}

// Texts only acme, or only zeta, collected.
var (
	acmeTexts = []string{"Chen Acme", "wm-acme-chen", "Acme Road", "secret acme text", "vip-acme", "Hi Chen Acme", "call Chen Acme", "crm-acme-1"}
	zetaTexts = []string{"Chen Zeta", "dt-zeta-chen", "Zeta Lane", "secret zeta text", "vip-zeta", "Hi Chen Zeta"}
)

func seedTwoBrandPerson(t *testing.T, s *store.Store) twoBrandPerson {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	seedBrands(t, s, "acme", "zeta")
	must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "st1", Name: "S1", Lat: 31.2, Lng: 121.4, BrandIDs: []string{"acme", "zeta"}, Active: true}))
	must(s.CreateGuide(ctx, &store.Guide{ID: "ga", StoreID: "st1", Name: "GA", Active: true}))
	must(s.CreateGuide(ctx, &store.Guide{ID: "gz", StoreID: "st1", Name: "GZ", Active: true}))
	var p twoBrandPerson
	m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", Name: "Chen Acme", BrandID: "acme",
		Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-acme-chen"}, {Channel: "crm:acme", ExternalID: "crm-acme-1"}}})
	must(err)
	p.id = m.ID
	m2, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "+8613800138000", Name: "Chen Zeta", BrandID: "zeta",
		Identities: []store.Identity{{Channel: "dingtalk", ExternalID: "dt-zeta-chen"}}})
	must(err)
	if m2.ID != p.id {
		t.Fatalf("same phone made member %d, want %d", m2.ID, p.id)
	}
	for _, b := range []struct{ brand, guide string }{{"acme", "ga"}, {"zeta", "gz"}} {
		_, _, err := s.Bind(ctx, &store.Binding{MemberID: p.id, BrandID: b.brand, GuideID: b.guide, StoreID: "st1", Reason: "manual",
			Remark: "remark " + b.brand})
		must(err)
		_, err = s.AddMemberTags(ctx, p.id, b.brand, []string{"vip-" + b.brand}, t0)
		must(err)
	}
	must(s.SetConsent(ctx, p.id, "acme", "wecom", true, t0))
	for _, e := range []store.Event{
		{Type: "purchase.completed", BrandID: "acme", MemberID: &p.id, Source: "pos", SourceID: "o1",
			Payload: `{"order_id":"o1","amount":100,"note":"deliver to 1 Acme Road"}`, OccurredAt: t0},
		{Type: "store.visited", BrandID: "zeta", MemberID: &p.id, Source: "pos", SourceID: "v1",
			Payload: `{"store_id":"st1","note":"met at Zeta Lane"}`, OccurredAt: t0},
	} {
		_, err := s.AppendEvent(ctx, &e)
		must(err)
	}
	_, err = s.AwardPoints(ctx, &store.PointsLine{MemberID: p.id, BrandID: "acme", Delta: 10, Reason: "purchase", Ref: "o1"})
	must(err)
	_, err = s.IssueCoupon(ctx, &store.IssuedCoupon{Key: "c1", Code: "ACME-1", Batch: "b", BrandID: "acme", MemberID: p.id,
		ValueCents: 500, ExpiresAt: t0.AddDate(1, 0, 0), IssuedAt: t0})
	must(err)
	for _, o := range []struct {
		brand, ch, to, text string
		id                  *int64
	}{{"acme", "wecom", "wm-acme-chen", "Hi Chen Acme", &p.acmeSend}, {"zeta", "dingtalk", "dt-zeta-chen", "Hi Chen Zeta", &p.zetaSend}} {
		row := &store.OutboxMessage{IdempotencyKey: "k-" + o.brand, Channel: o.ch, Recipient: o.to, MemberID: &p.id, BrandID: o.brand,
			Kind: "text", Payload: []byte(`{"kind":"text","text":"` + o.text + `"}`)}
		_, err := s.AddOutbox(ctx, row)
		must(err)
		*o.id = row.ID
	}
	for _, in := range []struct {
		ch, from, text string
		id             *int64
	}{{"wecom", "wm-acme-chen", "secret acme text", &p.acmeInbox}, {"dingtalk", "dt-zeta-chen", "secret zeta text", &p.zetaInbox}} {
		row := &store.InboxMessage{Channel: in.ch, DedupKey: "m-" + in.from, Payload: []byte(`{"from":"` + in.from + `","text":"` + in.text + `"}`)}
		_, err := s.RecordInbound(ctx, row)
		must(err)
		*in.id = row.ID
	}
	wake := t0.Add(time.Hour)
	runs, err := s.StartRuns(ctx, []*store.WorkflowRun{{MemberID: p.id, BrandID: "acme", Workflow: "recall", Version: "v1", TriggerKey: "e1",
		Step: "wait", WakeAt: &wake, StartedAt: t0}})
	must(err)
	p.run = runs[0].ID
	zruns, err := s.StartRuns(ctx, []*store.WorkflowRun{{MemberID: p.id, BrandID: "zeta", Workflow: "winback", Version: "v1", TriggerKey: "e2",
		Step: "wait", WakeAt: &wake, StartedAt: t0}})
	must(err)
	p.zetaRun = zruns[0].ID
	// Free text the channels' answers put in run steps, handovers, send
	// attempts and the outbox: they name the member.
	for _, f := range []struct {
		brand, guide, to, name string
		run, send              int64
	}{{"acme", "ga", "wm-acme-chen", "Chen Acme", p.run, p.acmeSend}, {"zeta", "gz", "dt-zeta-chen", "Chen Zeta", p.zetaRun, p.zetaSend}} {
		must(store.Exec(s, `INSERT INTO run_steps (run_id, step_id, visit, seq, state, outcome, error, failures, attempts, outbox_key, reason, started_at, finished_at)
			VALUES (?, 'hello', 1, 0, 'done', ?, ?, 1, 2, ?, '', ?, ?)`, f.run, "sent hello on wecom to "+f.to, "first try: "+f.name+" is not a contact", "k-"+f.brand, t0, t0))
		must(store.Exec(s, `UPDATE outbox_messages SET last_error = ? WHERE id = ?`, "recipient "+f.to+" blocked", f.send))
		must(s.RecordSendAttempt(ctx, &store.SendAttempt{OutboxID: f.send, Attempt: 1, At: t0, Outcome: "retry", Error: "errcode 84061: " + f.to}))
		_, err := s.CreateHandovers(ctx, []store.Handover{{GuideID: f.guide, MemberID: p.id, BrandID: f.brand, StoreID: "st1", Channel: "wecom",
			HandoverUserID: f.guide, ExternalUserID: f.to, Reason: "takeover refused for " + f.name, ErrCode: 40096}})
		must(err)
	}
	_, err = s.CreateGuideTask(ctx, &store.GuideTask{MemberID: p.id, GuideID: "ga", BrandID: "acme", Title: "call Chen Acme",
		Note: "she asked about Acme Road", DueAt: t0.Add(time.Hour), CreatedAt: t0})
	must(err)
	return p
}

func traces(t *testing.T, s *store.Store, needles, phones []string) map[string][]string {
	t.Helper()
	got, err := store.Traces(s, needles, phones)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestBrandSeesItsOwnProfile(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := seedTwoBrandPerson(t, s)
		for _, tc := range []struct {
			brand, name, identity string
		}{{"acme", "Chen Acme", "crm:acme/crm-acme-1 wecom/wm-acme-chen"}, {"zeta", "Chen Zeta", "dingtalk/dt-zeta-chen"}} {
			v, err := s.Member(ctx, p.id, tc.brand)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, mi := range v.Identities {
				ids = append(ids, mi.Channel+"/"+mi.ExternalID)
			}
			if v.Name != tc.name || strings.Join(ids, " ") != tc.identity || len(v.Memberships) != 1 || len(v.Bindings) != 1 {
				t.Errorf("%s sees name %q, identities %v, memberships %+v, bindings %+v", tc.brand, v.Name, ids, v.Memberships, v.Bindings)
			}
			prof, err := s.MemberProfile(ctx, tc.brand, p.id)
			if err != nil || prof.Member.Name != tc.name {
				t.Errorf("%s's workflow profile name %q (%v), want %q", tc.brand, prof.Member.Name, err, tc.name)
			}
		}
		// The guide of each brand finds the member by that brand's name
		// only.
		for _, tc := range []struct {
			guide, q string
			found    bool
		}{{"ga", "chen acme", true}, {"ga", "zeta", false}, {"gz", "chen zeta", true}, {"gz", "acme", false}} {
			got, err := s.FindGuideMembers(ctx, tc.guide, tc.q, 10)
			if err != nil || (len(got) == 1) != tc.found {
				t.Errorf("%s searching %q: %+v, %v; want found %v", tc.guide, tc.q, got, err, tc.found)
			}
		}
		// A person zeta knows by a channel id only: acme's phone is not
		// zeta's to see, nor to find them by.
		wu, _, err := s.EnsureMember(ctx, store.NewMember{BrandID: "zeta", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-wu-1"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13900139000", BrandID: "acme",
			Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-wu-1"}}}); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Member(ctx, wu.ID, "zeta"); err != nil || v.Phone != "" || v.PhoneTail != "" {
			t.Errorf("zeta sees acme's phone: %q %q %v", v.Phone, v.PhoneTail, err)
		}
		if _, err := s.MemberByPhone(ctx, "13900139000", "zeta"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("zeta finds the person by acme's phone: %v", err)
		}
		if v, err := s.MemberByPhone(ctx, "13900139000", "acme"); err != nil || v.Phone != "+8613900139000" {
			t.Errorf("acme by its phone: %+v %v", v, err)
		}
		if prof, _ := s.MemberProfile(ctx, "zeta", wu.ID); prof.Member.PhoneTail != "" {
			t.Errorf("zeta's workflows see the phone tail %q", prof.Member.PhoneTail)
		}
		if v, _ := s.Member(ctx, wu.ID, ""); v.TailFor("zeta") != "" || v.TailFor("acme") != "9000" {
			t.Errorf("tails for zeta %q, acme %q", v.TailFor("zeta"), v.TailFor("acme"))
		}
		// A name zeta's channel reports renames the member for zeta only.
		if err := s.SetMemberName(ctx, p.id, "zeta", "Chen Z."); err != nil {
			t.Fatal(err)
		}
		if v, _ := s.Member(ctx, p.id, "acme"); v.Name != "Chen Acme" {
			t.Errorf("acme sees %q after zeta's rename", v.Name)
		}
	})
}

func TestEraseBrandPartThenPerson(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := seedTwoBrandPerson(t, s)
		// A zeta-only member: acme cannot erase them.
		other, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13900139000", Name: "Wu Xiaoming", BrandID: "zeta"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.EraseMember(ctx, other.ID, "acme", "acme-token"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("acme erasing a zeta member: %v, want ErrNotFound", err)
		}
		if v, err := s.Member(ctx, other.ID, "zeta"); err != nil || v.Name != "Wu Xiaoming" {
			t.Errorf("zeta member after acme's refused erasure: %+v, %v", v, err)
		}
		if _, err := s.EraseMember(ctx, 999999, "", "admin"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("erasing nobody: %v", err)
		}

		e, err := s.EraseMember(ctx, p.id, "acme", "acme-token")
		if err != nil {
			t.Fatal(err)
		}
		if e.Person || e.Brand != "acme" || e.Removed["memberships"] != 1 || e.Removed["member_identities"] != 2 || e.Removed["workflow_runs"] != 1 {
			t.Errorf("acme's erasure = %+v", e)
		}
		again, err := s.EraseMember(ctx, p.id, "acme", "acme-token")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(e, again); diff != "" {
			t.Errorf("second erasure differs (-first +second):\n%s", diff)
		}
		if left := traces(t, s, acmeTexts, nil); len(left) > 0 {
			t.Errorf("acme's data left after acme's erasure: %v", left)
		}
		left := traces(t, s, zetaTexts, []string{"13800138000"})
		for _, want := range []string{"memberships.name", "member_identities.external_id", "events.payload", "member_tags.tag",
			"outbox_messages.payload", "inbox_messages.payload", "members.phone_hash", "run_steps.outcome", "run_steps.error",
			"handovers.reason", "handovers.external_userid", "send_attempts.error", "outbox_messages.last_error"} {
			if len(left[want]) == 0 {
				t.Errorf("zeta's %s gone after acme's erasure (left: %v)", want, left)
			}
		}
		if _, err := s.Member(ctx, p.id, "acme"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("acme still sees the member: %v", err)
		}
		if v, err := s.Member(ctx, p.id, "zeta"); err != nil || v.Name != "Chen Zeta" || len(v.Bindings) != 1 {
			t.Errorf("zeta's view after acme's erasure: %+v, %v", v, err)
		}
		// Ledgers keep amounts, dates and the pseudonymous id.
		for _, table := range []string{"points_ledger", "issued_coupons", "events", "workflow_runs", "outbox_messages", "guide_tasks"} {
			if n, err := store.Rows(s, table, p.id); err != nil || n == 0 {
				t.Errorf("%s rows of the member: %d, %v; want them kept", table, n, err)
			}
		}
		evs, err := s.Events(ctx, store.EventFilter{MemberID: p.id})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.BrandID == "acme" && ev.Payload != `{"amount":100,"order_id":"o1"}` {
				t.Errorf("acme's purchase after erasure: %s", ev.Payload)
			}
		}
		run, err := s.Run(ctx, p.run)
		if err != nil || run.State != store.RunExited || run.EndReason != store.ErasedReason {
			t.Errorf("acme's run after erasure: %+v, %v", run, err)
		}
		// What the funnel and the stats count is kept: the steps, their
		// states, attempts, failures and outbox keys; the texts are not.
		steps, err := s.RunSteps(ctx, p.run)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, st := range steps {
			got = append(got, fmt.Sprintf("%s/%s/%s/%q/%d/%d/%s", st.StepID, st.State, st.Outcome, st.Error, st.Attempts, st.Failures, st.OutboxKey))
		}
		if want := `hello/done/erased/""/2/1/k-acme wait/cancelled/erased/""/0/0/`; strings.Join(got, " ") != want {
			t.Errorf("acme's run steps after erasure:\n got %s\nwant %s", strings.Join(got, " "), want)
		}
		hs, err := s.Handovers(ctx, store.HandoverFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			if h.State != store.HandoverPending || h.ErrCode != 40096 || (h.BrandID == "acme") != (h.Reason == "" && h.ExternalUserID == "") {
				t.Errorf("%s's handover after acme's erasure: %+v", h.BrandID, h)
			}
		}
		if g, _ := s.Guide(ctx, "ga", ""); g.BoundCount != 0 {
			t.Errorf("acme's guide still counts %d members", g.BoundCount)
		}
		// acme's pending message is never claimed; zeta's is.
		if _, claimed, err := s.ClaimOutbox(ctx, p.acmeSend); err != nil || claimed {
			t.Errorf("acme's message claimed after erasure: %v, %v", claimed, err)
		}
		if row, claimed, err := s.ClaimOutbox(ctx, p.zetaSend); err != nil || !claimed || row.Recipient != "dt-zeta-chen" {
			t.Errorf("zeta's message: claimed %v, %v", claimed, err)
		}
		// A message a run was writing as the erasure committed.
		late := &store.OutboxMessage{IdempotencyKey: "late", Channel: "wecom", Recipient: "wm-late", MemberID: &p.id, BrandID: "acme",
			Kind: "text", Payload: []byte(`{"text":"late"}`)}
		if _, err := s.AddOutbox(ctx, late); err != nil {
			t.Fatal(err)
		}
		if _, claimed, err := s.ClaimOutbox(ctx, late.ID); err != nil || claimed {
			t.Errorf("a message written after the erasure was claimed: %v, %v", claimed, err)
		}
		if row, _ := s.Outbox(ctx, late.ID); row.State != store.OutboxFailed || row.Failure != store.ErasedReason || string(row.Payload) != "{}" ||
			row.LastError != "member erased" || row.Attempts != 0 {
			t.Errorf("late message = %s %s %s (%q, %d attempts), want failed, erased, {} (member erased, no attempt)", row.State, row.Failure,
				row.Payload, row.LastError, row.Attempts)
		}

		// The admin erases the person.
		all, err := s.EraseMember(ctx, p.id, "", "admin")
		if err != nil {
			t.Fatal(err)
		}
		if !all.Person || all.Brand != "" {
			t.Errorf("admin's erasure = %+v", all)
		}
		if again, err := s.EraseMember(ctx, p.id, "", "admin"); err != nil || !cmp.Equal(all, again) {
			t.Errorf("second admin erasure = %+v, %v; want %+v", again, err, all)
		}
		if left := traces(t, s, append(append([]string{"remark "}, acmeTexts...), zetaTexts...), []string{"13800138000"}); len(left) > 0 {
			t.Errorf("personal data left after the admin's erasure: %v", left)
		}
		if n, _ := store.PhoneCiphertexts(s, p.id); n != 0 {
			t.Error("phone ciphertext kept")
		}
		for _, table := range []string{"memberships", "member_identities", "bindings", "member_tags", "member_consent", "member_cross_brand"} {
			if n, err := store.Rows(s, table, p.id); err != nil || n != 0 {
				t.Errorf("%s: %d rows of the erased person (%v)", table, n, err)
			}
		}
		for _, brand := range []string{"", "zeta"} {
			if _, err := s.Member(ctx, p.id, brand); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("erased person read with brand %q: %v", brand, err)
			}
		}
		if _, err := s.MemberByPhone(ctx, "13800138000", ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("erased person found by phone: %v", err)
		}
		// Joining again makes a new person.
		m, created, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: "acme"})
		if err != nil || !created || m.ID == p.id {
			t.Errorf("joining after erasure: %+v created %v %v", m, created, err)
		}
		if v, err := s.Member(ctx, other.ID, ""); err != nil || v.Name != "Wu Xiaoming" {
			t.Errorf("another member after the erasure: %+v %v", v, err)
		}
	})
}

func TestEraseLastBrandErasesPerson(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		seedBrands(t, s, "zeta")
		m, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13900139000", Name: "Wu Xiaoming", BrandID: "zeta",
			Identities: []store.Identity{{Channel: "wecom", ExternalID: "wm-wu-000"}}})
		if err != nil {
			t.Fatal(err)
		}
		e, err := s.EraseMember(ctx, m.ID, "zeta", "zeta-token")
		if err != nil || !e.Person {
			t.Fatalf("erasing the only brand: %+v %v; want the person erased", e, err)
		}
		if left := traces(t, s, []string{"Wu Xiaoming", "wm-wu-000"}, []string{"13900139000"}); len(left) > 0 {
			t.Errorf("left: %v", left)
		}
		if _, err := s.Member(ctx, m.ID, ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("person after the last brand's erasure: %v", err)
		}
		if again, err := s.EraseMember(ctx, m.ID, "", "admin"); err != nil || !again.Person {
			t.Errorf("admin erasing an erased person: %+v %v", again, err)
		}
	})
}

func TestExportMember(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := seedTwoBrandPerson(t, s)
		x, err := s.ExportMember(ctx, p.id, "acme")
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprintf("name=%s phone=%s ids=%d ms=%d binds=%d tags=%d consent=%d events=%d coupons=%d points=%d runs=%d msgs=%d tasks=%d handovers=%d",
			x.Name, x.Phone, len(x.Identities), len(x.Memberships), len(x.Bindings), len(x.Tags), len(x.Consent), len(x.Events),
			len(x.Coupons), len(x.Points), len(x.Runs), len(x.Messages), len(x.GuideTasks), len(x.Handovers))
		want := "name=Chen Acme phone=+8613800138000 ids=2 ms=1 binds=1 tags=1 consent=1 events=1 coupons=1 points=1 runs=1 msgs=1 tasks=1 handovers=1"
		if got != want {
			t.Errorf("acme's export:\n got %s\nwant %s", got, want)
		}
		for _, ev := range x.Events {
			if ev.Brand != "acme" {
				t.Errorf("acme's export has %s's event", ev.Brand)
			}
		}
		if string(x.Messages[0].Payload) != `{"kind":"text","text":"Hi Chen Acme"}` {
			t.Errorf("message payload %s", x.Messages[0].Payload)
		}
		all, err := s.ExportMember(ctx, p.id, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(x.Handovers) == 1 && (x.Handovers[0].BrandID != "acme" || x.Handovers[0].ExternalUserID != "wm-acme-chen") {
			t.Errorf("acme's export has handover %+v", x.Handovers[0])
		}
		if len(all.Memberships) != 2 || len(all.Identities) != 3 || len(all.Events) != 2 || len(all.Messages) != 2 || len(all.Tags) != 2 ||
			len(all.Handovers) != 2 {
			t.Errorf("admin's export: %d memberships, %d identities, %d events, %d messages, %d tags",
				len(all.Memberships), len(all.Identities), len(all.Events), len(all.Messages), len(all.Tags))
		}
		if _, err := s.ExportMember(ctx, p.id, "nobrand"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("export for a brand the member is not in: %v", err)
		}
	})
}

func TestStripExpired(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := seedTwoBrandPerson(t, s)
		now := time.Now().UTC()
		// acme's rows are old, zeta's new.
		for _, q := range []string{
			`UPDATE outbox_messages SET state = 'sent', created_at = ? WHERE brand_id = 'acme'`,
			`UPDATE inbox_messages SET state = 'done', created_at = ? WHERE channel = 'wecom'`,
			`UPDATE events SET created_at = ? WHERE brand_id = 'acme'`,
		} {
			if err := store.Exec(s, q, now.AddDate(0, 0, -200)); err != nil {
				t.Fatal(err)
			}
		}
		if err := store.Exec(s, `UPDATE outbox_messages SET state = 'sent' WHERE brand_id = 'zeta'`); err != nil {
			t.Fatal(err)
		}
		total := store.Retained{}
		for i := 0; ; i++ {
			r, err := s.StripExpired(ctx, now.AddDate(0, 0, -180), 1)
			if err != nil {
				t.Fatal(err)
			}
			total.Inbox, total.Outbox, total.Events = total.Inbox+r.Inbox, total.Outbox+r.Outbox, total.Events+r.Events
			if !r.More {
				break
			}
			if i > 10 {
				t.Fatal("StripExpired never done")
			}
		}
		if total.Inbox != 1 || total.Outbox != 1 || total.Events != 1 {
			t.Errorf("stripped %+v, want one of each", total)
		}
		if left := traces(t, s, []string{"Hi Chen Acme", "secret acme text", "deliver to"}, nil); len(left) > 0 {
			t.Errorf("old personal data left: %v", left)
		}
		left := traces(t, s, []string{"Hi Chen Zeta", "secret zeta text", "Zeta Lane"}, nil)
		if len(left) != 3 {
			t.Errorf("new payloads: %v, want all three kept", left)
		}
		if row, _ := s.Outbox(ctx, p.acmeSend); string(row.Payload) != "{}" || row.Recipient != "wm-acme-chen" {
			t.Errorf("old message = %s to %s", row.Payload, row.Recipient)
		}
		// A second run finds nothing more.
		if r, err := s.StripExpired(ctx, now.AddDate(0, 0, -180), 100); err != nil || r.Inbox+r.Outbox+r.Events != 0 {
			t.Errorf("second run: %+v %v", r, err)
		}
	})
}

func TestMigratePrivacyMovesNamesToTheirBrand(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := seedTwoBrandPerson(t, s)
		if err := store.UndoPrivacy(s); err != nil {
			t.Fatal(err)
		}
		applied, err := s.Migrate(ctx)
		if err != nil || len(applied) != 1 || applied[0] != "0026_privacy_brand_profiles" {
			t.Fatalf("migrating again: %v %v", applied, err)
		}
		// The name was first given to acme (the person was created with
		// it): acme's; zeta's own name is not known from before. So are
		// identities other than crm:<brand> ones: the first brand's.
		if v, err := s.Member(ctx, p.id, "acme"); err != nil || v.Name != "Chen Acme" || len(v.Identities) != 3 {
			t.Errorf("acme after the migration: %+v %v", v, err)
		}
		if v, err := s.Member(ctx, p.id, "zeta"); err != nil || v.Name != "" || len(v.Identities) != 0 {
			t.Errorf("zeta after the migration: name %q, identities %+v, %v", v.Name, v.Identities, err)
		}
		if v, err := s.Member(ctx, p.id, ""); err != nil || v.Name != "Chen Acme" || len(v.Identities) != 3 {
			t.Errorf("admin after the migration: %+v %v", v, err)
		}
	})
}
