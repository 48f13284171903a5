package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// body is a response as text, to look for what must not be in it.
func body(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestBrandPrivacyEveryRoute: with two brands and their tokens, a brand
// sees of a shared person only what it collected, every cross-brand probe
// answers 404 (403 where the path names the other brand or the route is
// the admin's) and changes nothing, merging shared members is the admin's,
// and erasure and export work per brand and are in the audit trail.
func TestBrandPrivacyEveryRoute(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		a := newAudited(t, s)
		c := a.client
		seed(c)
		acme, _ := a.token(`{"name":"acme","brand":"acme","can_view_phone":true}`)
		zeta, _ := a.token(`{"name":"zeta","brand":"zeta"}`)

		// zeta's customer; then acme collects the same phone.
		z := c.must(201, "POST", "/api/v1/members", zeta, `{"phone":"13800138000","name":"Chen Zeta","identities":[{"channel":"dingtalk","external_id":"dt-zeta-chen"}]}`)
		shared := int64(z["id"].(float64))
		got := c.must(201, "POST", "/api/v1/members", acme, `{"phone":"138 0013 8000","name":"Chen Acme","identities":[{"channel":"wecom","external_id":"wm-acme-chen"}]}`)
		if int64(got["id"].(float64)) != shared {
			t.Fatalf("acme's member %v, want the person %d", got["id"], shared)
		}
		if b := body(got); got["name"] != "Chen Acme" || strings.Contains(b, "Zeta") || strings.Contains(b, "dt-zeta-chen") ||
			len(got["memberships"].([]any)) != 1 || len(got["identities"].([]any)) != 1 {
			t.Errorf("acme's find-or-create shows %s", b)
		}
		// Asked again, it is acme's own member: 200, still acme's fields.
		again := c.must(200, "POST", "/api/v1/members", acme, `{"phone":"13800138000"}`)
		if b := body(again); strings.Contains(b, "Zeta") {
			t.Errorf("acme's second find shows %s", b)
		}
		for _, tc := range []struct{ token, name, hidden string }{{acme, "Chen Acme", "Zeta"}, {zeta, "Chen Zeta", "Acme"}} {
			for _, path := range []string{fmt.Sprintf("/api/v1/members/%d", shared), "/api/v1/members?phone=13800138000"} {
				v := c.must(200, "GET", path, tc.token, "")
				if b := body(v); v["name"] != tc.name || strings.Contains(b, tc.hidden) || strings.Contains(b, strings.ToLower(tc.hidden)) {
					t.Errorf("%s GET %s = %s", tc.name, path, b)
				}
			}
		}

		// A zeta-only member, guide and task.
		zo := int64(c.must(201, "POST", "/api/v1/members", zeta, `{"phone":"13900139000","name":"Wu Zeta"}`)["id"].(float64))
		c.must(201, "POST", "/api/v1/guides", adminToken, `{"id":"gz","store_id":"bj-1","name":"GZ"}`)
		c.must(201, "POST", "/api/v1/guide-tasks", zeta, fmt.Sprintf(`{"guide_id":"gz","member_id":%d,"title":"call","due_at":"2030-01-01T10:00:00Z"}`, zo))
		before := body(c.must(200, "GET", fmt.Sprintf("/api/v1/members/%d/export", zo), adminToken, ""))
		beforeShared := body(c.must(200, "GET", fmt.Sprintf("/api/v1/members/%d/export", shared), zeta, ""))

		m := func(f string) string { return fmt.Sprintf(f, zo) }
		for _, tc := range []struct {
			method, path, body string
			status             int
		}{
			{"GET", m("/api/v1/members/%d"), "", 404},
			{"GET", "/api/v1/members?phone=13900139000", "", 404},
			{"POST", "/api/v1/members", `{"brand":"zeta","phone":"13900139000"}`, 403},
			{"PATCH", m("/api/v1/members/%d"), `{"time_zone":"UTC"}`, 404},
			{"POST", m("/api/v1/members/%d/merge"), fmt.Sprintf(`{"into":%d}`, shared), 404},
			{"POST", fmt.Sprintf("/api/v1/members/%d/merge", shared), m(`{"into":%d}`), 404},
			{"POST", m("/api/v1/members/%d/erase"), "", 404},
			{"GET", m("/api/v1/members/%d/export"), "", 404},
			{"GET", m("/api/v1/members/%d/orders"), "", 404},
			{"GET", m("/api/v1/members/%d/coupons"), "", 404},
			{"POST", "/api/v1/guide-tasks", m(`{"guide_id":"gz","member_id":%d,"title":"spy","due_at":"2030-01-01T10:00:00Z"}`), 404},
			{"POST", "/api/v1/guide-tasks", m(`{"guide_id":"gz","member_id":%d,"brand":"zeta","title":"spy","due_at":"2030-01-01T10:00:00Z"}`), 403},
			{"GET", "/api/v1/guide-tasks?store_id=bj-1", "", 404},
			{"GET", "/api/v1/guides/gz", "", 404},
			{"GET", "/api/v1/stores/bj-1", "", 404},
			{"GET", "/api/v1/leaderboards?brand=zeta", "", 404},
			{"GET", "/api/v1/brands/zeta/webhook-endpoint", "", 404},
			{"PUT", "/api/v1/brands/zeta/webhook-endpoint", `{"url":"https://spy.example/hook"}`, 404},
			{"GET", "/api/v1/brands/zeta", "", 404},
			{"POST", "/api/v1/brands/zeta/member-code/rotate", "", 404},
			{"POST", "/api/v1/pos/identify", `{"brand":"zeta","code":"123456789012345678"}`, 404},
			{"GET", "/api/v1/tokens", "", 403},
			{"GET", "/api/v1/audit", "", 403},
			{"GET", "/api/v1/handovers?brand=zeta", "", 404},
		} {
			t.Run(tc.method+" "+tc.path, func(t *testing.T) {
				got, out := c.do(tc.method, tc.path, acme, tc.body)
				if got != tc.status {
					t.Errorf("status %d, want %d (%v)", got, tc.status, out)
				}
				if b := body(out); strings.Contains(b, "Wu Zeta") || strings.Contains(b, "13900139000") {
					t.Errorf("refusal shows zeta's data: %s", b)
				}
			})
		}
		// Assigning needs the store index (a process with the assigner).
		if st, out := newServerWithAssigner(t, s).do("POST", m("/api/v1/members/%d/assign"), acme, `{}`); st != 404 {
			t.Errorf("acme assigning zeta's member: %d %v", st, out)
		}
		if after := body(c.must(200, "GET", fmt.Sprintf("/api/v1/members/%d/export", zo), adminToken, "")); after != before {
			t.Errorf("zeta's member changed by acme's probes:\nbefore %s\n after %s", before, after)
		}

		// Merging a person who is also zeta's is the admin's.
		solo := int64(c.must(201, "POST", "/api/v1/members", acme, `{"phone":"13700137000","name":"Chen again"}`)["id"].(float64))
		if st, out := c.do("POST", fmt.Sprintf("/api/v1/members/%d/merge", solo), acme, fmt.Sprintf(`{"into":%d}`, shared)); st != 403 {
			t.Errorf("acme merging into a shared person: %d %v", st, out)
		}
		if st, out := c.do("POST", fmt.Sprintf("/api/v1/members/%d/merge", shared), acme, fmt.Sprintf(`{"into":%d}`, solo)); st != 403 {
			t.Errorf("acme merging a shared person: %d %v", st, out)
		}
		c.must(200, "GET", fmt.Sprintf("/api/v1/members/%d", solo), acme, "")

		// acme's export: its part only, the full phone (its token may).
		x := c.must(200, "GET", fmt.Sprintf("/api/v1/members/%d/export", shared), acme, "")
		if b := body(x); x["name"] != "Chen Acme" || x["phone"] != "+8613800138000" || strings.Contains(b, "Zeta") || strings.Contains(b, "dt-zeta-chen") {
			t.Errorf("acme's export = %s", b)
		}
		if zx := c.must(200, "GET", fmt.Sprintf("/api/v1/members/%d/export", shared), zeta, ""); zx["phone"] != "+86138****8000" {
			t.Errorf("zeta's export shows phone %v, want it masked", zx["phone"])
		}

		// acme erases its part: twice, the same answer.
		e1 := c.must(200, "POST", fmt.Sprintf("/api/v1/members/%d/erase", shared), acme, "")
		e2 := c.must(200, "POST", fmt.Sprintf("/api/v1/members/%d/erase", shared), acme, "")
		if body(e1) != body(e2) || e1["person_erased"] != false || e1["brand"] != "acme" {
			t.Errorf("acme's erasures: %v, then %v", e1, e2)
		}
		c.must(404, "GET", fmt.Sprintf("/api/v1/members/%d", shared), acme, "")
		c.must(404, "GET", "/api/v1/members?phone=13800138000", acme, "")
		if v := c.must(200, "GET", fmt.Sprintf("/api/v1/members/%d", shared), zeta, ""); v["name"] != "Chen Zeta" || len(v["identities"].([]any)) != 1 {
			t.Errorf("zeta's view after acme's erasure: %v", v)
		}
		if after := body(c.must(200, "GET", fmt.Sprintf("/api/v1/members/%d/export", shared), zeta, "")); strings.Contains(after, "Acme") ||
			!strings.Contains(after, "Chen Zeta") || len(after) != len(beforeShared) {
			t.Errorf("zeta's export changed by acme's erasure:\nbefore %s\n after %s", beforeShared, after)
		}

		// The admin erases the person.
		all := c.must(200, "POST", fmt.Sprintf("/api/v1/members/%d/erase", shared), adminToken, "")
		if all["person_erased"] != true {
			t.Errorf("admin's erasure = %v", all)
		}
		c.must(404, "GET", fmt.Sprintf("/api/v1/members/%d", shared), zeta, "")
		c.must(404, "GET", fmt.Sprintf("/api/v1/members/%d", shared), adminToken, "")
		c.must(200, "POST", fmt.Sprintf("/api/v1/members/%d/erase", shared), adminToken, "")

		id := fmt.Sprint(shared)
		erasures := a.entries("action=" + store.AuditMemberErase + "&resource_id=" + id)
		exports := a.entries("action=" + store.AuditMemberExport + "&resource_id=" + id)
		if len(erasures) != 4 || len(exports) != 4 {
			t.Errorf("audit trail: %d erasures, %d exports of member %s; want 4 and 4", len(erasures), len(exports), id)
		}
		for _, e := range erasures {
			if e["status"] != 200.0 || e["route"] != "/api/v1/members/:id/erase" {
				t.Errorf("erasure entry %v", e)
			}
		}
	})
}

// TestExportAndEraseMessages: a member's export holds, for the token's
// brand only, what they wrote (message.received) and every message sent
// to them with each attempt's outcome and the channel's error; after one
// brand's erasure, that brand's message texts, send errors and handover
// reasons are gone and the other brand's are untouched.
func TestExportAndEraseMessages(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := newAudited(t, s)
		c := a.client
		seed(c)
		acme, _ := a.token(`{"name":"acme","brand":"acme"}`)
		zeta, _ := a.token(`{"name":"zeta","brand":"zeta"}`)
		type brandData struct {
			brand, token, name, channel, ext string
			texts                            []string // what only this brand collected
		}
		brands := []brandData{
			{"acme", acme, "Chen Acme", "wecom", "wm-acme-chen", nil},
			{"zeta", zeta, "Chen Zeta", "dingtalk", "dt-zeta-chen", nil},
		}
		var id int64
		for i := range brands {
			b := &brands[i]
			v := c.must(201, "POST", "/api/v1/members", b.token, fmt.Sprintf(`{"phone":"13800138000","name":%q,"identities":[{"channel":%q,"external_id":%q}]}`,
				b.name, b.channel, b.ext))
			id = int64(v["id"].(float64))
			wrote, hello, refusal, reason := "my size is "+b.brand+" 38", "Hello "+b.name, "errcode 84061: "+b.ext+" is not a contact", "takeover refused for "+b.name
			b.texts = []string{b.name, b.ext, wrote, hello, reason}
			if _, err := s.AppendEvent(ctx, &store.Event{Type: "message.received", BrandID: b.brand, MemberID: &id, Source: b.channel,
				SourceID: "in-" + b.brand, Payload: `{"kind":"text","text":"` + wrote + `"}`, OccurredAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			row := &store.OutboxMessage{IdempotencyKey: "hello-" + b.brand, Channel: b.channel, Recipient: b.ext, MemberID: &id, BrandID: b.brand,
				Kind: "text", Payload: []byte(`{"kind":"text","text":"` + hello + `"}`)}
			if _, err := s.AddOutbox(ctx, row); err != nil {
				t.Fatal(err)
			}
			for n, out := range []struct{ outcome, err string }{{"retry", refusal}, {"sent", ""}} {
				if err := s.RecordSendAttempt(ctx, &store.SendAttempt{OutboxID: row.ID, Attempt: n + 1, At: time.Now(), Outcome: out.outcome, Error: out.err}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.CreateHandovers(ctx, []store.Handover{{GuideID: "g-" + b.brand, MemberID: id, BrandID: b.brand, StoreID: "gz-1",
				Channel: b.channel, HandoverUserID: "g-" + b.brand, ExternalUserID: b.ext, Reason: reason, ErrCode: 40096}}); err != nil {
				t.Fatal(err)
			}
		}
		path := fmt.Sprintf("/api/v1/members/%d/export", id)
		for i, b := range brands {
			other := brands[1-i]
			x := c.must(200, "GET", path, b.token, "")
			out := body(x)
			for _, hidden := range other.texts {
				if strings.Contains(out, hidden) {
					t.Errorf("%s's export shows %q, which %s collected: %s", b.brand, hidden, other.brand, out)
				}
			}
			var got struct {
				Received []store.ExportReceived
				Messages []store.ExportMessage
			}
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Received) != 1 || got.Received[0].Text != b.texts[2] || got.Received[0].Channel != b.channel || got.Received[0].Brand != b.brand {
				t.Errorf("%s's export: received %+v, want what they wrote to %s", b.brand, got.Received, b.brand)
			}
			if len(got.Messages) != 1 {
				t.Fatalf("%s's export: messages %+v", b.brand, got.Messages)
			}
			m := got.Messages[0]
			var attempts []string
			for _, at := range m.Attempts {
				attempts = append(attempts, fmt.Sprintf("%d %s %s", at.Attempt, at.Outcome, at.Error))
			}
			if m.To != "member" || m.Channel != b.channel || m.Kind != "text" || m.State != store.OutboxPending || !strings.Contains(string(m.Payload), b.texts[3]) ||
				strings.Join(attempts, "; ") != "1 retry errcode 84061: "+b.ext+" is not a contact; 2 sent " {
				t.Errorf("%s's export: message %+v, attempts %q", b.brand, m, attempts)
			}
			// Its handovers, and only those.
			hs := c.must(200, "GET", "/api/v1/handovers", b.token, "")["handovers"].([]any)
			if len(hs) != 1 || hs[0].(map[string]any)["brand"] != b.brand {
				t.Errorf("%s's handovers: %v", b.brand, hs)
			}
		}

		c.must(200, "POST", fmt.Sprintf("/api/v1/members/%d/erase", id), acme, "")
		all := body(c.must(200, "GET", path, adminToken, "")) + body(c.must(200, "GET", "/api/v1/handovers", adminToken, ""))
		for _, gone := range brands[0].texts {
			if strings.Contains(all, gone) {
				t.Errorf("after acme's erasure the admin still sees %q: %s", gone, all)
			}
		}
		for _, kept := range brands[1].texts {
			if !strings.Contains(all, kept) {
				t.Errorf("after acme's erasure zeta's %q is gone: %s", kept, all)
			}
		}
		// The send log keeps its counts: two attempts of each message.
		var got struct{ Messages []store.ExportMessage }
		_ = json.Unmarshal([]byte(all[:strings.Index(all, `{"handovers"`)]), &got)
		for _, m := range got.Messages {
			if len(m.Attempts) != 2 || m.Attempts[1].Outcome != "sent" {
				t.Errorf("%s's message after acme's erasure: %+v", m.Brand, m)
			}
		}
		hs := c.must(200, "GET", "/api/v1/handovers?brand=acme", adminToken, "")["handovers"].([]any)
		if len(hs) != 1 || hs[0].(map[string]any)["errcode"] != 40096.0 || hs[0].(map[string]any)["state"] != store.HandoverPending {
			t.Errorf("acme's handover after the erasure: %v; want it counted, its texts cleared", hs)
		}
	})
}
