package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// The welcome surge of docs/performance-surge.md: new contacts add the
// guides of a store at a steady rate (a store opening, a live session),
// each an add_external_contact callback with a welcome code, signed and
// encrypted as WeCom sends it, into the real gateway (`scrmgw serve
// --workers=false` and `scrmgw worker` on PostgreSQL and Redis). The fake
// WeCom API keeps WeCom's call windows (10,000 calls of an API a minute
// and 150,000 an hour per corp, 45009 past them), takes 50–200 ms over
// each call and accepts a welcome code for 20 seconds only. Optionally a
// campaign of nudges through the guides (add_msg_template) is under way
// when the surge starts: the nudges must wait behind the welcomes.

// surgeConfig configures runSurge.
type surgeConfig struct {
	// PerSecond new contacts a second for For.
	PerSecond int
	For       time.Duration
	Guides    int
	// Rate is the gateway's send.rate.wecom ("" the product's default);
	// CriticalShare its send.critical_share ("" the default).
	Rate          string
	CriticalShare string
	// Concurrency is the gateway's queue.concurrency (0: the default).
	Concurrency int
	// Nudges members are nudged by a campaign started before the surge
	// (0: none); Lead is how long it runs before the surge starts.
	Nudges int
	Lead   time.Duration
	// DelayMin..DelayMax is how long the fake takes over each call of
	// send_welcome_msg, externalcontact/get and add_msg_template.
	DelayMin, DelayMax time.Duration
	// Windows enforces WeCom's call windows at the fake.
	Windows bool
	// Settle is how long after the last callback the scenario waits
	// for the welcomes to settle (beyond the code's 20 s nothing can go).
	Settle time.Duration
	gatewayRun
}

// surgeResult is what runSurge measured.
type surgeResult struct {
	Contacts     int           // callbacks sent
	Acked        int           // answered 200 "success"
	AckP99       time.Duration // callback answer time
	SentFor      time.Duration // first to last callback
	Welcomes     int           // welcomes WeCom accepted
	Within20s    int           // of them, within 20 s of the callback
	P50, P95     time.Duration // callback to welcome at WeCom
	P99, Max     time.Duration
	MostInSecond int // most welcomes accepted within one second
	// Outbox rows of welcomes by state and failure.
	Sent, Expired, FailedOther, Open int
	ExpiredReason                    string
	FailedReasons                    map[string]int
	// Calls the fake refused with 45009, by API; and welcome codes it
	// refused as too late (41050) or used (41051).
	Refused45009      map[string]int
	Late41050, Reused int
	Lookups           int // externalcontact/get calls
	NudgesBefore      float64
	NudgesDuring      float64 // nudges a second at WeCom while welcomes were going out
	NudgesAfter       float64
	NudgesSent        int
	WelcomesPerSec    float64 // welcomes a second while the surge lasted
	// ProcessP50 and ProcessP99: from a contact event's inbox row to
	// its processing done (member, binding, event, welcome queued).
	ProcessP50, ProcessP99 time.Duration
	LoadStart, LoadEnd     string
	// CPU seconds the gateway, PostgreSQL and Redis used from the
	// first message until the last was settled (Busy).
	CPU  map[string]float64
	Busy time.Duration
	checks
}

// runSurge runs the scenario; problems found are in the result, errors
// are failures to run it at all.
func runSurge(ctx context.Context, c surgeConfig) (*surgeResult, error) {
	logf := c.logger()
	res := &surgeResult{FailedReasons: map[string]int{}, Refused45009: map[string]int{}}
	fake := wecomfake.New(nil)
	defer fake.Close()
	if c.Windows {
		fake.EnforceCallWindows()
	}
	for _, p := range []string{wecomfake.PathSendWelcomeMsg, wecomfake.PathExternalContactGet, wecomfake.PathAddMsgTemplate} {
		fake.DelayBetween(p, c.DelayMin, c.DelayMax)
	}

	base, admin, gp, err := c.serveGateway(ctx, fake, c.Concurrency,
		envSet("SCRMGW_SEND_RATE_WECOM", c.Rate, "SCRMGW_SEND_CRITICAL_SHARE", c.CriticalShare)...)
	if err != nil {
		return nil, err
	}
	defer func() { gp.stop(res.Problems, logf) }()
	guides, err := seedStore(base, admin, c.Guides, `,"capacity":1000000`)
	if err != nil {
		return nil, err
	}
	fake.AddEmployees(guides...)
	conn, err := pgx.Connect(ctx, c.DBURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	count := func(q string, args ...any) int {
		var n int
		if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			res.problem("%s: %v", q, err)
		}
		return n
	}
	if c.Nudges > 0 {
		contacts, err := seedMembers(ctx, conn, c.Nudges, c.Guides)
		if err != nil {
			return nil, fmt.Errorf("seeding members: %w", err)
		}
		for ext, guide := range contacts {
			fake.AddContact(wecomfake.Contact{ExternalUserID: ext, FollowUsers: []wecomfake.FollowUser{{UserID: guide, CreateTime: time.Now()}}})
		}
		if code, body := apiCall(http.MethodPut, base+"/api/v1/workflows/campaign-nudge?brand=acme", admin, "application/yaml", campaignWorkflow); code/100 != 2 {
			return nil, fmt.Errorf("storing the workflow: %d %s", code, body)
		}
		if code, body := apiCall(http.MethodPost, base+"/api/v1/workflows/campaign-nudge/enable?brand=acme", admin, "application/json", ""); code/100 != 2 {
			return nil, fmt.Errorf("enabling the workflow: %d %s", code, body)
		}
		logf("campaign of %d nudges enabled", c.Nudges)
	}
	if _, err := gp.start("worker", "worker"); err != nil {
		return nil, err
	}
	if c.Nudges > 0 {
		// The campaign under way before the surge.
		deadline := time.Now().Add(2 * time.Minute)
		for len(fake.MsgTemplates()) == 0 {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return nil, fmt.Errorf("no nudge reached WeCom within 2 minutes of the worker's start")
			}
			time.Sleep(100 * time.Millisecond)
		}
		logf("nudges flowing; the surge starts in %s", c.Lead)
		time.Sleep(c.Lead)
	} else {
		time.Sleep(3 * time.Second) // the worker's queues up
	}

	// The surge: PerSecond callbacks a second, each at its own time.
	n := int(float64(c.PerSecond) * c.For.Seconds())
	res.Contacts = n
	run := randomHex(3)
	type sent struct {
		at, acked time.Time
		status    int
	}
	sends := make([]sent, n)
	exts := make([]string, n)
	index := make(map[string]int, n)
	for i := range n {
		exts[i] = fmt.Sprintf("wmSurge%s_%06d", run, i)
		index[exts[i]] = i
		fake.AddContact(wecomfake.Contact{ExternalUserID: exts[i], Name: "客户" + strconv.Itoa(i),
			FollowUsers: []wecomfake.FollowUser{{UserID: guides[i%len(guides)], CreateTime: time.Now()}}})
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
	jobs := make(chan int, 1024)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				code := fake.IssueWelcomeCode(exts[i])
				msg := wecomfake.AddExternalContact(guides[i%len(guides)], exts[i], "", code).XML()
				req, err := wecomfake.Callback{}.Request(base+"/callbacks/wecom", msg)
				if err != nil {
					continue
				}
				at := time.Now()
				resp, err := client.Do(req)
				s := sent{at: at, acked: time.Now()}
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					s.status = resp.StatusCode
					if string(b) != "success" {
						s.status = -resp.StatusCode
					}
				}
				sends[i] = s
			}
		}()
	}
	res.LoadStart = loadAvg()
	logf("surge: %d new contacts a second for %s (%d callbacks), load average %s", c.PerSecond, c.For, n, res.LoadStart)
	spent := c.measure(ctx, gp, c.For)
	start := time.Now()
	for i := range paced(ctx, start, n, c.PerSecond) {
		jobs <- i
		if i > 0 && i%(c.PerSecond*10) == 0 {
			logf("%d callbacks sent, %d welcomes at WeCom", i, len(fake.Welcomes()))
		}
	}
	close(jobs)
	wg.Wait()
	end := time.Now()
	res.SentFor = end.Sub(start)

	// Until every welcome settled (a code is good for 20 s), or Settle.
	deadline := end.Add(c.Settle)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		open := count(`SELECT count(*) FROM outbox_messages WHERE idempotency_key LIKE 'welcome:%' AND state IN ('pending', 'sending')`)
		rows := count(`SELECT count(*) FROM outbox_messages WHERE idempotency_key LIKE 'welcome:%'`)
		if rows >= n && open == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	res.LoadEnd = loadAvg()
	res.CPU = spent()
	res.Busy = time.Since(start)
	time.Sleep(time.Second)
	surgeEnd := time.Now()

	// What WeCom received.
	var lat []time.Duration
	var times []time.Time
	for _, w := range fake.Welcomes() {
		i, ok := index[w.ExternalUserID]
		if !ok {
			continue
		}
		res.Welcomes++
		times = append(times, w.At)
		d := w.At.Sub(sends[i].at)
		lat = append(lat, d)
		if d <= 20*time.Second {
			res.Within20s++
		}
	}
	for _, call := range fake.Calls() {
		switch {
		case call.Errcode == wecomfake.CodeFreqLimit:
			res.Refused45009[strings.TrimPrefix(call.Path, "/cgi-bin/")]++
		case call.Path == wecomfake.PathSendWelcomeMsg && call.Errcode == wecomfake.CodeInvalidWelcomeCode:
			res.Late41050++
		case call.Path == wecomfake.PathSendWelcomeMsg && call.Errcode == wecomfake.CodeStartedChatting:
			res.Reused++
		}
		if call.Path == wecomfake.PathExternalContactGet {
			res.Lookups++
		}
	}
	var acks []time.Duration
	for _, s := range sends {
		if s.status == http.StatusOK {
			res.Acked++
			acks = append(acks, s.acked.Sub(s.at))
		}
	}
	res.AckP99 = percentile(acks, 0.99)
	res.P50, res.P95, res.P99 = percentile(lat, 0.5), percentile(lat, 0.95), percentile(lat, 0.99)
	if len(lat) > 0 {
		res.Max = slices.Max(lat)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	j := 0
	for i := range times {
		for times[i].Sub(times[j]) >= time.Second {
			j++
		}
		res.MostInSecond = max(res.MostInSecond, i-j+1)
	}
	if len(times) > 1 {
		if d := times[len(times)-1].Sub(times[0]); d > 0 {
			res.WelcomesPerSec = float64(len(times)-1) / d.Seconds()
		}
	}

	// Where the time went: the contact events' processing (inbox row
	// written to processed), before the welcome was queued.
	var p50, p99 float64
	if err := conn.QueryRow(ctx, `SELECT coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY d), 0), coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY d), 0)
		FROM (SELECT extract(epoch FROM processed_at - created_at) d FROM inbox_messages WHERE processed_at IS NOT NULL) x`).Scan(&p50, &p99); err == nil {
		res.ProcessP50, res.ProcessP99 = time.Duration(p50*float64(time.Second)), time.Duration(p99*float64(time.Second))
	}

	// What the gateway recorded.
	rows, err := conn.Query(ctx, `SELECT state, coalesce(failure, ''), count(*), min(coalesce(last_error, '')) FROM outbox_messages
		WHERE idempotency_key LIKE 'welcome:%' GROUP BY 1, 2`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var state, failure, reason string
		var k int
		if err := rows.Scan(&state, &failure, &k, &reason); err != nil {
			return nil, err
		}
		switch {
		case state == "sent":
			res.Sent += k
		case state == "failed" && failure == "expired":
			res.Expired += k
			res.ExpiredReason = reason
		case state == "failed":
			res.FailedOther += k
			res.FailedReasons[failure+": "+reason] += k
		default:
			res.Open += k
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	// The nudges: how fast they went before, during and after.
	if c.Nudges > 0 {
		var tasks []time.Time
		for _, t := range fake.MsgTemplates() {
			tasks = append(tasks, t.At)
		}
		res.NudgesSent = len(tasks)
		rate := func(from, to time.Time) float64 {
			k := 0
			for _, t := range tasks {
				if !t.Before(from) && t.Before(to) {
					k++
				}
			}
			if d := to.Sub(from).Seconds(); d > 0 {
				return float64(k) / d
			}
			return 0
		}
		res.NudgesBefore = rate(start.Add(-c.Lead), start)
		res.NudgesDuring = rate(start, end)
		res.NudgesAfter = rate(end.Add(20*time.Second), surgeEnd)
	}

	// Checks.
	if res.Acked != n {
		res.problem("%d of %d callbacks answered success", res.Acked, n)
	}
	if k := count(`SELECT count(*) FROM outbox_messages WHERE idempotency_key LIKE 'welcome:%'`); k != n {
		res.problem("%d welcome outbox rows, want one per contact, %d", k, n)
	}
	if res.Sent != res.Welcomes {
		res.problem("%d welcomes recorded sent, %d accepted by WeCom", res.Sent, res.Welcomes)
	}
	if res.Reused > 0 {
		res.problem("%d welcome codes sent twice", res.Reused)
	}
	if res.Open > 0 {
		res.problem("%d welcomes neither sent nor failed %s after the last callback", res.Open, c.Settle)
	}
	return res, nil
}

// percentile returns the q-quantile of v (nearest rank); v is sorted.
func percentile(v []time.Duration, q float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	i := int(q*float64(len(v))+0.5) - 1
	return v[min(max(i, 0), len(v)-1)]
}
