package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// The outbound campaign of docs/proof.md: N members of brand acme, each a
// WeCom contact of one of a few guides, enter a workflow whose schedule
// fires at once and which sends each member one nudge through their guide
// (a WeCom message task, externalcontact/add_msg_template) and tries a
// second one that the frequency cap (one a day) must stop. The real
// scrmgw binary runs it (`serve --workers=false` for the API, `scrmgw
// worker` for the work) against the fake WeCom API, which limits
// add_msg_template's rate (45009 beyond it) and takes a while to answer,
// so that sends are in flight when the worker is killed with SIGKILL part
// way; it is started again once its claims' lease is over. In the end
// every member must have got exactly one message task, none more than
// the cap allows, every outbox row must be sent and every run ended.

// campaignWorkflow is the campaign: one nudge, and a second that the cap
// of one a day must skip.
const campaignWorkflow = `name: campaign-nudge
description: Load scenario - one nudge to every member of the brand, through their guide; the second is over the cap.
trigger:
  schedule: every hour
  time_zone: Asia/Shanghai
entry:
  brand: acme
  re_entry: never
goal: none
send_rules:
  quiet_hours: none
  caps:
    per_day: 1
    when_capped: skip
steps:
  - id: nudge
    send: recall
  - id: again
    send: recall
`

// campaignConfig configures runCampaign.
type campaignConfig struct {
	Members int
	Guides  int
	// Rate is the gateway's send.rate.wecom; CriticalShare its
	// send.critical_share.
	Rate          string
	CriticalShare string
	// FakeLimit calls of add_msg_template per FakeWindow are accepted by
	// the fake; more answer 45009.
	FakeLimit  int
	FakeWindow time.Duration
	// FakeDelay is how long the fake takes over an add_msg_template,
	// half before creating the task and half after.
	FakeDelay time.Duration
	// KillAt is the share of the members sent to when the worker is
	// killed (0: no kill). Lease is the gateway's send.lease; the worker
	// is started again that long after the kill.
	KillAt float64
	// KillAfterRuns holds the kill until every run has started and none
	// has a step about to act (pending or claimed): each waits for its
	// message to be sent, or has ended. So the kill hits sends only (a
	// step claimed by the killed worker is taken over by another only
	// after the engine's 2-minute claim timeout).
	KillAfterRuns bool
	// Down is how long the worker stays dead; default Lease.
	Down        time.Duration
	Lease       time.Duration
	Concurrency int
	Timeout     time.Duration
	gatewayRun
}

// campaignResult is what runCampaign measured and found.
type campaignResult struct {
	Members     int
	Tasks       int           // message tasks the fake created
	Seeded      time.Duration // seeding the members
	FirstSend   time.Time
	LastSend    time.Time
	SendsPerSec float64 // over the whole campaign (first to last task)
	// SteadyPerSec is the rate before the kill (or over the middle 80%
	// without one).
	SteadyPerSec     float64
	MaxPerSecond     int // most tasks created within one second
	RateLimited      int // calls the fake refused with 45009
	Killed           bool
	KilledAfter      int // tasks created before the kill
	SendingAtKill    int
	RunsActiveAtKill int
	Down             time.Duration
	// Recovered by the lease after the kill: found at WeCom, sent again,
	// failed as unknown.
	Reconciled, Resent, Unknown int
	// InDoubt counts sends whose answer was lost (left for Recover).
	InDoubt int
	Total   time.Duration
	checks
}

// runCampaign runs the scenario and checks it; problems found are in the
// result, errors are failures to run it at all.
func runCampaign(ctx context.Context, c campaignConfig) (*campaignResult, error) {
	logf := c.logger()
	res := &campaignResult{Members: c.Members}
	start := time.Now()
	fake := wecomfake.New(nil)
	defer fake.Close()
	fake.LimitRate(wecomfake.PathAddMsgTemplate, c.FakeLimit, c.FakeWindow)
	fake.Delay(wecomfake.PathAddMsgTemplate, c.FakeDelay/2, c.FakeDelay/2)

	base, admin, gp, err := c.serveGateway(ctx, fake, 0, append([]string{
		"SCRMGW_SEND_RATE_WECOM=" + c.Rate,
		"SCRMGW_SEND_LEASE=" + c.Lease.String(),
		"SCRMGW_QUEUE_CONCURRENCY=" + strconv.Itoa(c.Concurrency),
	}, envSet("SCRMGW_SEND_CRITICAL_SHARE", c.CriticalShare)...)...)
	if err != nil {
		return nil, err
	}
	defer func() { gp.stop(res.Problems, logf) }()

	// Brand, store and guides through the API; members in bulk with SQL.
	guides, err := seedStore(base, admin, c.Guides, ``)
	if err != nil {
		return nil, err
	}
	fake.AddEmployees(guides...)
	conn, err := pgx.Connect(ctx, c.DBURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	seedStart := time.Now()
	contacts, err := seedMembers(ctx, conn, c.Members, c.Guides)
	if err != nil {
		return nil, fmt.Errorf("seeding members: %w", err)
	}
	for ext, guide := range contacts {
		fake.AddContact(wecomfake.Contact{ExternalUserID: ext, FollowUsers: []wecomfake.FollowUser{{UserID: guide, CreateTime: seedStart}}})
	}
	res.Seeded = time.Since(seedStart)
	logf("seeded %d members bound to %d guides in %s", c.Members, c.Guides, res.Seeded.Round(time.Millisecond))

	count := func(q string, args ...any) int {
		var n int
		if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			res.problem("%s: %v", q, err)
		}
		return n
	}
	// The workflow is stored and enabled; the worker's sweep fires its
	// schedule (the last hourly firing, within the hour's catch-up).
	if code, body := apiCall(http.MethodPut, base+"/api/v1/workflows/campaign-nudge?brand=acme", admin, "application/yaml", campaignWorkflow); code/100 != 2 {
		return nil, fmt.Errorf("storing the workflow: %d %s", code, body)
	}
	if code, body := apiCall(http.MethodPost, base+"/api/v1/workflows/campaign-nudge/enable?brand=acme", admin, "application/json", ""); code/100 != 2 {
		return nil, fmt.Errorf("enabling the workflow: %d %s", code, body)
	}
	campaignStart := time.Now()
	worker, err := gp.start("worker", "worker")
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.Timeout)
	progress := time.Now()
	if c.KillAt > 0 {
		target := int(c.KillAt * float64(c.Members))
		for i := 0; ; i++ {
			if len(fake.MsgTemplates()) >= target && (!c.KillAfterRuns ||
				i%10 == 0 && count(`SELECT count(*) FROM workflow_runs`) == c.Members &&
					count(`SELECT count(*) FROM run_steps WHERE state IN ('pending', 'running')`) == 0) {
				break
			}
			if worker.exited() {
				return nil, fmt.Errorf("the worker exited: %v (log %s)", worker.err, worker.log.Name())
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if time.Now().After(deadline) {
				res.problem("only %d of %d tasks before the kill after %s", len(fake.MsgTemplates()), target, c.Timeout)
				return res, nil
			}
			if time.Since(progress) > 10*time.Second {
				progress = time.Now()
				logf("%d message tasks so far", len(fake.MsgTemplates()))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := worker.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return nil, err
		}
		<-worker.done
		killedAt := time.Now()
		res.Killed = true
		res.KilledAfter = len(fake.MsgTemplates())
		res.SendingAtKill = count(`SELECT count(*) FROM outbox_messages WHERE state = 'sending' AND recipient LIKE 'wmCamp%'`)
		res.RunsActiveAtKill = count(`SELECT count(*) FROM workflow_runs WHERE ended_at IS NULL`)
		if first := firstTask(fake); !first.IsZero() {
			res.SteadyPerSec = float64(res.KilledAfter) / killedAt.Sub(first).Seconds()
		}
		down := c.Down
		if down == 0 {
			down = c.Lease + time.Second
		}
		logf("worker killed -9 after %d of %d message tasks: %d outbox rows sending, %d runs not ended; restarting it in %s",
			res.KilledAfter, c.Members, res.SendingAtKill, res.RunsActiveAtKill, down)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Until(killedAt.Add(down))):
		}
		if _, err := gp.start("worker", "worker"); err != nil {
			return nil, err
		}
		res.Down = time.Since(killedAt)
	}

	// Until every run ended and every nudge is out.
	for {
		sent := count(`SELECT count(*) FROM outbox_messages WHERE state = 'sent' AND recipient LIKE 'wmCamp%'`)
		open := count(`SELECT count(*) FROM outbox_messages WHERE state IN ('pending', 'sending')`)
		active := count(`SELECT count(*) FROM workflow_runs WHERE ended_at IS NULL`)
		runs := count(`SELECT count(*) FROM workflow_runs`)
		if runs == c.Members && active == 0 && open == 0 && sent >= c.Members {
			break
		}
		if len(res.Problems) > 0 {
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			res.problem("after %s: %d runs (%d not ended), %d outbox rows sent, %d pending or sending (%s), %d tasks at WeCom",
				c.Timeout, runs, active, sent, open, openRows(ctx, conn), len(fake.MsgTemplates()))
			break
		}
		if time.Since(progress) > 10*time.Second {
			progress = time.Now()
			logf("%d runs (%d not ended), %d sent, %d pending or sending, %d tasks at WeCom", runs, active, sent, open, len(fake.MsgTemplates()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // let a late duplicate surface
	res.Total = time.Since(campaignStart)
	checkCampaign(res, fake, contacts, count)
	logf("checked in %s", time.Since(start).Round(time.Second))
	return res, nil
}

// checkCampaign compares what WeCom received with the members and what
// the gateway recorded, and measures the rates.
func checkCampaign(res *campaignResult, fake *wecomfake.Server, contacts map[string]string, count func(string, ...any) int) {
	tasks := fake.MsgTemplates()
	res.Tasks = len(tasks)
	res.RateLimited = fake.RateLimited()
	perMember := map[string]int{}
	perMemberDay := map[string]int{}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	var times []time.Time
	for _, t := range tasks {
		times = append(times, t.At)
		for _, ext := range t.ExternalUserIDs {
			perMember[ext]++
			perMemberDay[ext+" "+t.At.In(shanghai).Format(time.DateOnly)]++
			if g, ok := contacts[ext]; !ok {
				res.problem("a message task for %s, who is not a campaign member", ext)
			} else if g != t.Sender {
				res.problem("the task for %s went through %s, not their guide %s", ext, t.Sender, g)
			}
		}
		if len(t.ExternalUserIDs) != 1 {
			res.problem("message task %s is for %d members, want 1", t.MsgID, len(t.ExternalUserIDs))
		}
	}
	missing, twice := 0, 0
	for ext := range contacts {
		switch n := perMember[ext]; {
		case n == 0:
			missing++
		case n > 1:
			twice++
			if twice <= 5 {
				res.problem("member %s got %d message tasks, want exactly 1", ext, n)
			}
		}
	}
	if missing > 0 {
		res.problem("%d members got no message task", missing)
	}
	if twice > 0 {
		res.problem("%d members got more than one message task", twice)
	}
	// The frequency cap (one a day, Beijing time) against what WeCom got.
	for k, n := range perMemberDay {
		if n > 1 {
			res.problem("%s: %d messages in a day, over the cap of 1", k, n)
			break
		}
	}
	// What the gateway recorded: one sent row per member, nothing else;
	// every second nudge stopped by the cap.
	// (The guides get other messages, such as their daily digest.)
	if n := count(`SELECT count(*) FROM outbox_messages WHERE recipient LIKE 'wmCamp%'`); n != res.Members {
		res.problem("outbox rows to members = %d, want %d", n, res.Members)
	}
	if n := count(`SELECT count(*) FROM outbox_messages WHERE recipient LIKE 'wmCamp%' AND state = 'sent' AND external_id <> ''`); n != res.Members {
		res.problem("outbox rows to members sent with a task id = %d, want %d", n, res.Members)
	}
	if n := count(`SELECT count(DISTINCT external_id) FROM outbox_messages WHERE recipient LIKE 'wmCamp%' AND state = 'sent'`); n != res.Members {
		res.problem("distinct task ids recorded = %d, want %d", n, res.Members)
	}
	if n := count(`SELECT count(*) FROM run_steps WHERE step_id = 'again' AND outcome LIKE '%cap%skipped%'`); n != res.Members {
		res.problem("second nudges stopped by the cap = %d, want %d", n, res.Members)
	}
	if n := count(`SELECT count(*) FROM workflow_runs WHERE sent <> 1`); n != 0 {
		res.problem("%d runs sent other than one message", n)
	}
	res.Reconciled = count(`SELECT count(*) FROM send_attempts WHERE outcome = 'reconciled'`)
	res.Resent = count(`SELECT count(*) FROM send_attempts WHERE outcome = 'resend'`)
	res.Unknown = count(`SELECT count(*) FROM send_attempts WHERE outcome = 'unknown'`)
	res.InDoubt = count(`SELECT count(*) FROM send_attempts WHERE outcome = 'in_doubt'`)
	if res.Unknown > 0 {
		res.problem("%d sends failed as unknown: WeCom message tasks are always reconciled", res.Unknown)
	}
	if len(times) == 0 {
		return
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	res.FirstSend, res.LastSend = times[0], times[len(times)-1]
	if d := res.LastSend.Sub(res.FirstSend); d > 0 {
		res.SendsPerSec = float64(len(times)-1) / d.Seconds()
	}
	if !res.Killed && len(times) > 10 {
		lo, hi := len(times)/10, len(times)*9/10
		if d := times[hi].Sub(times[lo]); d > 0 {
			res.SteadyPerSec = float64(hi-lo) / d.Seconds()
		}
	}
	j := 0
	for i := range times {
		for times[i].Sub(times[j]) >= time.Second {
			j++
		}
		res.MaxPerSecond = max(res.MaxPerSecond, i-j+1)
	}
}

func firstTask(fake *wecomfake.Server) time.Time {
	var first time.Time
	for _, t := range fake.MsgTemplates() {
		if first.IsZero() || t.At.Before(first) {
			first = t.At
		}
	}
	return first
}

// seedMembers writes n members of brand acme, each with a WeCom identity
// and bound to one of the guides g-0 … g-(guides-1) of store sh-1, in a
// few statements, and returns each member's external_userid with their
// guide's WeCom userid.
func seedMembers(ctx context.Context, conn *pgx.Conn, n, guides int) (map[string]string, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	run := randomHex(3)
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO members (name, created_at, updated_at) SELECT '会员' || g, now(), now() FROM generate_series(1, $1::int) g`, []any{n}},
		{`INSERT INTO memberships (member_id, brand_id, level, points, created_at) SELECT id, 'acme', '', 0, now() FROM members`, nil},
		{`INSERT INTO member_identities (member_id, channel, external_id, created_at) SELECT id, 'wecom', $1::text || id, now() FROM members`,
			[]any{"wmCamp" + run + "_"}},
		{`INSERT INTO bindings (member_id, brand_id, guide_id, store_id, reason, distance_m, created_at)
			SELECT id, 'acme', 'g-' || (id % $1::int), 'sh-1', 'manual', 0, now() FROM members`, []any{guides}},
		{`UPDATE guides g SET bound_count = (SELECT count(*) FROM bindings b WHERE b.guide_id = g.id AND b.ended_at IS NULL)`, nil},
	} {
		if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(strings.Fields(st.sql)[:3], " "), err)
		}
	}
	rows, err := tx.Query(ctx, `SELECT i.external_id, gi.external_id FROM member_identities i
		JOIN bindings b ON b.member_id = i.member_id AND b.ended_at IS NULL
		JOIN guide_identities gi ON gi.guide_id = b.guide_id AND gi.channel = 'wecom'`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, n)
	for rows.Next() {
		var ext, guide string
		if err := rows.Scan(&ext, &guide); err != nil {
			return nil, err
		}
		out[ext] = guide
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) != n {
		return nil, fmt.Errorf("seeded %d members with a guide, want %d", len(out), n)
	}
	return out, tx.Commit(ctx)
}

// apiCall sends one request to the gateway's API and returns the status
// and body (0 and the error when there was no answer).
func apiCall(method, url, token, contentType, body string) (int, string) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// wecomEnv is the WeCom configuration of a gateway talking to fake.
func wecomEnv(fake *wecomfake.Server) []string {
	return []string{
		"SCRMGW_WECOM_CORP_ID=" + wecomfake.DefaultCorpID,
		"SCRMGW_WECOM_AGENT_ID=" + wecomfake.DefaultAgentID,
		"SCRMGW_WECOM_SECRET=" + fake.Secret(),
		"SCRMGW_WECOM_CONTACT_SECRET=" + fake.ContactSecret(),
		"SCRMGW_WECOM_TOKEN=" + wecomfake.DefaultToken,
		"SCRMGW_WECOM_ENCODING_AES_KEY=" + wecomfake.DefaultEncodingAESKey,
		"SCRMGW_WECOM_API_BASE=" + fake.URL(),
		"SCRMGW_WECOM_BRAND=acme",
		"SCRMGW_WECOM_MAX_CLOCK_SKEW=10m",
	}
}

// openRows says what the outbox rows still pending or sending are: by
// state, kind and the first letters of the recipient.
func openRows(ctx context.Context, conn *pgx.Conn) string {
	rows, err := conn.Query(ctx, `SELECT state, kind, left(recipient, 6), count(*) FROM outbox_messages
		WHERE state IN ('pending', 'sending') GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 8`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var state, kind, to string
		var n int
		if err := rows.Scan(&state, &kind, &to, &n); err != nil {
			return err.Error()
		}
		parts = append(parts, fmt.Sprintf("%d %s %s to %s…", n, state, kind, to))
	}
	return strings.Join(parts, ", ")
}
