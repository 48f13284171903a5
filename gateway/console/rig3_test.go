package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// seedMember gives brand a member with a phone and a name, identities on
// two WeCom instances, bound to guide at storeID, tagged vip,
// unsubscribed from DingTalk, with points, a coupon, a message they wrote
// and a run of workflow whose win_back message was sent (the steps the
// engine leaves: win_back done, wait_reply waiting).
func (r *rig) seedMember(brand, phone, name, guide, storeID, workflow string) int64 {
	r.t.Helper()
	ctx := context.Background()
	now := r.clock().Add(-time.Hour)
	m, _, err := r.store.EnsureMember(ctx, store.NewMember{Phone: phone, Name: name, BrandID: brand, Identities: []store.Identity{
		{Channel: "wecom", ExternalID: "wm-" + name}, {Channel: "wecom:north", ExternalID: "wm-north-" + name}}})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.store.MarkPhoneKnown(ctx, m.ID, brand); err != nil {
		r.t.Fatal(err)
	}
	if _, _, err := r.store.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: brand, GuideID: guide, StoreID: storeID, Reason: "nearest"}); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.store.AddMemberTags(ctx, m.ID, brand, []string{"vip"}, now); err != nil {
		r.t.Fatal(err)
	}
	if err := r.store.SetConsent(ctx, m.ID, brand, "dingtalk", true, now); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.store.AwardPoints(ctx, &store.PointsLine{MemberID: m.ID, BrandID: brand, Delta: 120, Reason: "purchase", Ref: "seed-points-" + name}); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.store.IssueCoupon(ctx, &store.IssuedCoupon{Key: "seed-coupon-" + name, Code: "CPN-" + strings.ToUpper(strings.Fields(name)[0]), Batch: "autumn",
		BrandID: brand, MemberID: m.ID, ValueCents: 5000, ExpiresAt: now.Add(30 * 24 * time.Hour), IssuedAt: now}); err != nil {
		r.t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]string{"kind": "text", "text": "Is the cashmere coat in stock?"})
	if _, err := r.store.AppendEvent(ctx, &store.Event{Type: events.TypeMessageReceived, BrandID: brand, MemberID: &m.ID, Source: "wecom",
		SourceID: "seed-msg-" + name, Payload: string(payload), OccurredAt: now}); err != nil {
		r.t.Fatal(err)
	}
	head, err := r.store.Workflow(ctx, brand, workflow)
	if err != nil {
		r.t.Fatal(err)
	}
	runs, err := r.store.StartRuns(ctx, []*store.WorkflowRun{{MemberID: m.ID, BrandID: brand, Workflow: workflow, Version: head.Version,
		TriggerKey: "seed", Step: "win_back", WakeAt: &now, StartedAt: now}})
	if err != nil || len(runs) != 1 {
		r.t.Fatalf("starting a run: %v", err)
	}
	run := runs[0]
	key := fmt.Sprintf("run:%d:win_back:1", run.ID)
	msg := &store.OutboxMessage{IdempotencyKey: key, Channel: "wecom", Recipient: "wm-" + name, MemberID: &m.ID, GuideID: guide, BrandID: brand,
		Kind: "text", Payload: []byte(`{"text":"We miss you, ` + name + `: 20% off this week"}`), State: store.OutboxPending}
	if _, err := r.store.AddOutbox(ctx, msg); err != nil {
		r.t.Fatal(err)
	}
	if moved, _, err := r.store.MoveRun(ctx, store.RunMove{RunID: run.ID, Seq: run.WakeSeq, Step: "win_back", Visit: 1, StepState: store.StepSending,
		OutboxKey: key, At: now}); err != nil || !moved {
		r.t.Fatalf("sending: %v %v", moved, err)
	}
	if _, claimed, err := r.store.ClaimOutbox(ctx, msg.ID); err != nil || !claimed {
		r.t.Fatalf("claiming: %v %v", claimed, err)
	}
	if err := r.store.FinishOutbox(ctx, msg.ID, "ext-"+key, ""); err != nil {
		r.t.Fatal(err)
	}
	wake := now.Add(72 * time.Hour)
	if moved, _, err := r.store.MoveRun(ctx, store.RunMove{RunID: run.ID, Seq: run.WakeSeq + 1, Step: "win_back", Visit: 1, StepState: store.StepDone,
		Next: "wait_reply", NextState: store.StepWaiting, WakeAt: &wake, At: now}); err != nil || !moved {
		r.t.Fatalf("waiting: %v %v", moved, err)
	}
	return m.ID
}

// csrfOf reads the CSRF token of c's session from a console page.
func (r *rig) csrfOf(c *http.Client) string {
	r.t.Helper()
	m := csrfRE.FindStringSubmatch(r.get(c, "/console/workflows"))
	if m == nil {
		r.t.Fatal("no CSRF token on the page")
	}
	return m[1]
}

// post posts a form as the browser does.
func (r *rig) post(c *http.Client, path string, form url.Values) *http.Response {
	r.t.Helper()
	resp, err := c.PostForm(r.srv.URL+path, form)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp
}

// apiGet answers GET path of the API with a bearer token.
func (r *rig) apiGet(token, path string) (int, []byte) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.StatusCode, []byte(readAll(r.t, resp))
}

// auditOf returns the audit entries of an action.
func (r *rig) auditOf(action string) []store.AuditEntry {
	r.t.Helper()
	var out []store.AuditEntry
	for _, e := range r.auditLog() {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}
