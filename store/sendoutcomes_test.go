package store_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestMigrateSendOutcomes: 0015 (and the funnel counters of 0042, whose
// triggers read its columns) apply to a database migrated before it, once.
func TestMigrateSendOutcomes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := store.UndoSendOutcomes(s); err != nil {
			t.Fatal(err)
		}
		applied, err := s.Migrate(ctx)
		if err != nil || !cmp.Equal(applied, []string{"0015_send_outcomes", "0042_funnel_deltas"}) {
			t.Fatalf("migrating an older schema: %v, %v", applied, err)
		}
		if applied, err := s.Migrate(ctx); err != nil || len(applied) != 0 {
			t.Fatalf("migrating again: %v, %v", applied, err)
		}
		// The columns are there.
		seedBrands(t, s, "acme")
		sendOutcomesFixture(t, s)
	})
}

// TestSendStats: a workflow's send visits by the state of their outbox
// message, and its skipped and failed visits by reason.
func TestSendStats(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		seedBrands(t, s, "acme")
		sendOutcomesFixture(t, s)
	})
}

// sendOutcomesFixture runs four members' runs through a send step: one
// sent and delivered, one sent and waiting for the guide, one refused,
// one still queued; and a fifth skipped by the caps. It checks what
// SendStats and the run and step rows say.
func sendOutcomesFixture(t *testing.T, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	type visit struct {
		who    string
		settle func(id int64) error
	}
	visits := []visit{
		{"delivered", func(id int64) error {
			if err := s.FinishOutbox(ctx, id, "msg1", "pending"); err != nil {
				return err
			}
			return s.SetDelivery(ctx, id, "delivered", "")
		}},
		{"waiting", func(id int64) error { return s.FinishOutbox(ctx, id, "msg2", "pending") }},
		{"refused", func(id int64) error { return s.FailOutboxFor(ctx, id, "invalid_recipient", "wecom api error 41048") }},
		{"queued", nil},
		{"capped", nil},
	}
	runs := map[string]*store.WorkflowRun{}
	for _, v := range visits {
		m := seedMember(t, s, "acme", "w-"+v.who)
		if _, err := s.StartRuns(ctx, []*store.WorkflowRun{newRun(m, "e1", t0)}); err != nil {
			t.Fatal(err)
		}
		run := started0(t, s, m)
		runs[v.who] = run
		if _, err := s.ClaimRunStep(ctx, run.ID, "wait", 1, t0, t0.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if v.who == "capped" {
			moveRun(t, s, store.RunMove{RunID: run.ID, Seq: 0, Step: "wait", Visit: 1, StepState: store.StepSkipped, Reason: "cap",
				Outcome: "frequency cap reached: skipped", Next: stepEnd, End: store.RunDone, At: t0})
			continue
		}
		key := "wf:" + v.who
		row := &store.OutboxMessage{IdempotencyKey: key, Channel: "wecom", Recipient: "w-" + v.who, BrandID: "acme", Kind: "text", Payload: []byte(`{}`)}
		if _, err := s.AddOutbox(ctx, row); err != nil {
			t.Fatal(err)
		}
		wake := t0.Add(time.Minute)
		moveRun(t, s, store.RunMove{RunID: run.ID, Seq: 0, Step: "wait", Visit: 1, StepState: store.StepSending, OutboxKey: key,
			Outcome: "queued", WakeAt: &wake, At: t0})
		rs, _ := s.RunStep(ctx, run.ID, "wait", 1)
		if rs.State != store.StepSending || rs.OutboxKey != key || rs.FinishedAt != nil {
			t.Fatalf("a sending step: %+v", rs)
		}
		got, err := s.OutboxByKey(ctx, key)
		if err != nil || got.ID != row.ID {
			t.Fatalf("outbox by key: %+v, %v", got, err)
		}
		if v.settle == nil {
			continue
		}
		if _, claimed, err := s.ClaimOutbox(ctx, row.ID); err != nil || !claimed {
			t.Fatal(claimed, err)
		}
		if err := v.settle(row.ID); err != nil {
			t.Fatal(err)
		}
		// What the engine does when it hears: wake the run now, then
		// end the step.
		if ok, err := s.WakeRunNow(ctx, run.ID, 1, t0.Add(time.Second)); err != nil || !ok {
			t.Fatalf("waking: %v, %v", ok, err)
		}
		if ok, _ := s.WakeRunNow(ctx, run.ID, 0, t0.Add(time.Second)); ok {
			t.Error("a stale sequence woke the run")
		}
		r, _ := s.Run(ctx, run.ID)
		if r.WakeAt == nil || !r.WakeAt.Equal(t0.Add(time.Second)) || r.QueuedAt == nil {
			t.Errorf("woken run: %+v", r)
		}
		mv := store.RunMove{RunID: run.ID, Seq: 1, Step: "wait", Visit: 1, StepState: store.StepDone, Sent: 1,
			Next: stepEnd, End: store.RunDone, At: t0.Add(time.Second)}
		if v.who == "refused" {
			mv.StepState, mv.Sent, mv.Reason, mv.Error, mv.End = store.StepFailed, 0, "invalid_recipient", "wecom api error 41048", store.RunFailed
		}
		moveRun(t, s, mv)
	}
	// A goal ends the queued one: its step is cancelled, its message
	// still counted as queued.
	if ended, err := s.EndRun(ctx, runs["queued"].ID, store.RunConverted, "purchase", t0.Add(time.Hour)); err != nil || !ended {
		t.Fatal(ended, err)
	}
	if rs, _ := s.RunStep(ctx, runs["queued"].ID, "wait", 1); rs.State != store.StepCancelled {
		t.Errorf("a sending step of an ended run: %+v", rs)
	}
	rows, err := s.SendStats(ctx, "acme", "recall")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.SendStat{
		{Step: "wait", State: "cancelled", OutboxState: "pending", N: 1},
		{Step: "wait", State: "done", OutboxState: "sent", Delivery: "delivered", N: 1},
		{Step: "wait", State: "done", OutboxState: "sent", Delivery: "pending", N: 1},
		{Step: "wait", State: "failed", Reason: "invalid_recipient", OutboxState: "failed", Failure: "invalid_recipient", N: 1},
		{Step: "wait", State: "skipped", Reason: "cap", N: 1},
	}
	sortStats := cmpopts.SortSlices(func(a, b store.SendStat) bool {
		return a.State+a.OutboxState+a.Delivery < b.State+b.OutboxState+b.Delivery
	})
	if diff := cmp.Diff(want, rows, sortStats); diff != "" {
		t.Errorf("send stats (-want +got):\n%s", diff)
	}
	// The confirmation task of a message closes by its key, once.
	task := &store.GuideTask{Key: ptrTo("wf:waiting:confirm"), MemberID: runs["waiting"].MemberID, GuideID: "g1", BrandID: "acme",
		Title: "确认发送", DueAt: t0.Add(24 * time.Hour), CreatedAt: t0}
	if _, err := s.CreateGuideTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		if done, err := s.CompleteGuideTaskByKey(ctx, "wf:waiting:confirm", t0.Add(time.Hour)); err != nil || done != want {
			t.Errorf("completing by key, %d: %v, %v", i+1, done, err)
		}
	}
	if done, err := s.CompleteGuideTaskByKey(ctx, "wf:none:confirm", t0); err != nil || done {
		t.Errorf("completing a missing task: %v, %v", done, err)
	}
	got, _ := s.GuideTask(ctx, task.ID)
	if got.State != store.GuideTaskDone || got.CompletedAt == nil {
		t.Errorf("task: %+v", got)
	}
}

// stepEnd is workflows.End (store does not import workflows).
const stepEnd = "end"

func moveRun(t *testing.T, s *store.Store, m store.RunMove) {
	t.Helper()
	if moved, _, err := s.MoveRun(context.Background(), m); err != nil || !moved {
		t.Fatalf("move %+v: %v, %v", m, moved, err)
	}
}

func ptrTo[T any](v T) *T { return &v }

// TestLongReasonsCutAtCharacters: a reason longer than its column is cut
// at a character boundary (PostgreSQL refuses half a character).
func TestLongReasonsCutAtCharacters(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		row := &store.OutboxMessage{IdempotencyKey: "k", Channel: "wecom", Recipient: "wm", Kind: "text", Payload: []byte(`{}`)}
		if _, err := s.AddOutbox(ctx, row); err != nil {
			t.Fatal(err)
		}
		reason := "x" + strings.Repeat("无可发送的客户", 100) // 1 + 2100 bytes
		if err := s.FailOutboxFor(ctx, row.ID, "invalid_recipient", reason); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Outbox(ctx, row.ID)
		if !utf8.ValidString(got.LastError) || len(got.LastError) != 1000 || !strings.HasPrefix(reason, got.LastError) {
			t.Errorf("last error cut to %d bytes, valid %v", len(got.LastError), utf8.ValidString(got.LastError))
		}
	})
}
