package console_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/store"
)

var (
	backlogRE = regexp.MustCompile(`(?s)<tr data-backlog="([^"]+)">(.*?)</tr>`)
	failureRE = regexp.MustCompile(`(?s)<tr data-failure="([^"]+)">(.*?)</tr>`)
	queueRE   = regexp.MustCompile(`(?s)<tr data-queue="([^"]+)">(.*?)</tr>`)
	auditRE   = regexp.MustCompile(`data-audit="(\d+)"`)
)

// The admin's operations page: the queues as asynq counts them, the
// inbox and outbox backlogs, the failed sends by channel and reason (and
// one reason's sends), the audit trail filtered and paged; a brand token
// is refused with a page that links where it may go.
func TestConsoleOperations(t *testing.T) {
	r := newRig(t, "sqlite", console.Config{})
	r.seedStores()
	r.put("camellia", "win-back", "dormant-win-back.yaml", true)
	ctx := context.Background()
	r.throughWinBack("camellia", "win-back", "g-wang", "sh-jingan", "invalid_recipient", false)
	r.throughWinBack("camellia", "win-back", "g-li", "sh-jingan", "refused", false)
	r.throughWinBack("camellia", "win-back", "g-li", "sh-jingan", "refused", false)
	r.throughWinBack("camellia", "win-back", "g-zhao", "sh-xujiahui", "", true)
	if _, err := r.store.AddOutbox(ctx, &store.OutboxMessage{IdempotencyKey: "waiting-1", Channel: "dingtalk", Recipient: "staff-wu", BrandID: "camellia",
		Kind: "text", Payload: []byte(`{}`), State: store.OutboxPending}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"msg:1", "msg:2"} {
		if _, err := r.store.RecordInbound(ctx, &store.InboxMessage{Channel: "wecom", DedupKey: k, Payload: []byte(`{}`), State: store.InboxPending}); err != nil {
			t.Fatal(err)
		}
	}
	// A task waiting in a queue of its own.
	q := asynq.NewClient(r.redis)
	defer q.Close()
	if _, err := q.Enqueue(asynq.NewTask("console:test", nil), asynq.Queue("console-ops-test"), asynq.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// 55 audit entries of a token of its own: more than a page.
	for i := range 55 {
		r.audit.Record(store.AuditEntry{At: time.Now(), Actor: "bulk importer", Action: store.AuditWrite, Method: http.MethodPost,
			Route: "/api/v1/members", Resource: api.ResourceMembers, ResourceIDs: fmt.Sprintf("member=%d", i+1), Status: http.StatusCreated})
	}
	r.auditLog() // flushed

	a := r.english()
	r.signIn(a, adminToken)
	page := r.get(a, "/console/operations")
	if got := rowsOf(queueRE, page)["console-ops-test"]; !strings.HasPrefix(got, "console-ops-test 1 0 0 1 0 0") {
		t.Errorf("the test queue: %q, want 1 scheduled", got)
	}
	backlog := rowsOf(backlogRE, page)
	if !strings.HasPrefix(backlog["wecom/pending"], "wecom pending 2 ") || !strings.HasPrefix(backlog["dingtalk/pending"], "dingtalk pending 1 ") {
		t.Errorf("backlogs: %v", backlog)
	}
	fails := rowsOf(failureRE, page)
	if !strings.HasPrefix(fails["wecom/refused"], "wecom refused 2 ") || !strings.HasPrefix(fails["wecom/invalid_recipient"], "wecom invalid_recipient 1 ") || len(fails) != 2 {
		t.Errorf("failures: %v", fails)
	}
	for _, want := range []string{`href="/admin/queues"`, `href="/metrics"`, `<li data-check="database"><span class="state state-enabled">up</span>`,
		`<li data-check="dingtalk"><span class="state state-failed">down</span> <code>dingtalk</code> <span class="err-text">stream not connected</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	page = r.get(a, "/console/operations?channel=wecom&failure=refused")
	if n := strings.Count(page, "data-outbox="); n != 2 || !strings.Contains(page, "the channel refused it") {
		t.Errorf("wecom/refused sends: %d", n)
	}

	// The audit trail: the bulk token's entries, a page at a time.
	page = r.get(a, "/console/operations?token=bulk+importer")
	ids := auditRE.FindAllStringSubmatch(page, -1)
	next := regexp.MustCompile(`href="([^"]+)" id="audit-next"`).FindStringSubmatch(page)
	if len(ids) != 50 || next == nil {
		t.Fatalf("first audit page: %d entries, next %v", len(ids), next)
	}
	page = r.get(a, htmlUnescape(next[1]))
	if ids := auditRE.FindAllStringSubmatch(page, -1); len(ids) != 5 || strings.Contains(page, `id="audit-next"`) || !strings.Contains(page, "member=55") {
		t.Errorf("second audit page: %d entries", len(ids))
	}
	if page := r.get(a, "/console/operations?action=member.erase"); !strings.Contains(page, `id="no-audit"`) {
		t.Error("the action filter lets other actions through")
	}
	if page := r.get(a, "/console/operations?since=2999-01-01"); !strings.Contains(page, `id="no-audit"`) {
		t.Error("the since filter lets older entries through")
	}
	if page := r.get(a, "/console/operations?since=soon"); !strings.Contains(page, "Since: want a time") {
		t.Error("a malformed since is not reported")
	}

	// A brand token: no Operations in the nav, a 403 that links back.
	c := r.english()
	r.signIn(c, r.brandToken("camellia"))
	if page := r.get(c, "/console/workflows"); strings.Contains(page, `href="/console/operations"`) || !strings.Contains(page, `href="/console/members"`) {
		t.Error("a brand token's nav: Operations shown or Members missing")
	}
	resp, err := c.Get(r.srv.URL + "/console/operations")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "for the admin token") ||
		!strings.Contains(body, `id="back" href="/console/workflows">Back to Workflows`) {
		t.Errorf("a brand token opening operations: %d\n%s", resp.StatusCode, body)
	}
	// A token limited to members is sent back to the members page.
	brand := "camellia"
	m := r.english()
	r.signIn(m, r.token(store.NewAPIToken{Name: "camellia service desk", BrandID: &brand, Resources: []string{api.ResourceMembers}}))
	resp, err = m.Get(r.srv.URL + "/console/workflows")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `id="back" href="/console/members">Back to Members`) {
		t.Errorf("a members-only token opening workflows: %d\n%s", resp.StatusCode, body)
	}
}
