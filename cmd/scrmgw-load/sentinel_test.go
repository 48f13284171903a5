package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// sentinelSet is a Redis primary, a replica and three Sentinels on
// loopback, all with a password.
type sentinelSet struct {
	password  string
	ports     [2]int // primary, replica (at the start)
	sentinels []string
	procs     []*proc
}

// startSentinels starts the set in dir and waits until every Sentinel
// knows the primary and its replica.
func startSentinels(t *testing.T, ctx context.Context, dir string) *sentinelSet {
	t.Helper()
	set := &sentinelSet{password: randomHex(12)}
	start := func(name string, args ...string) {
		t.Helper()
		p, err := startProc(name, filepath.Join(dir, name+".log"), os.Environ(), "redis-server", args...)
		if err != nil {
			t.Fatal(err)
		}
		set.procs = append(set.procs, p)
	}
	t.Cleanup(func() {
		for _, p := range set.procs {
			p.stop(5 * time.Second)
		}
	})
	for i := range set.ports {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		set.ports[i] = port
		d := filepath.Join(dir, fmt.Sprintf("redis-%d", i))
		os.MkdirAll(d, 0o755)
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
			"--appendonly", "yes", "--appendfsync", "everysec",
			"--requirepass", set.password, "--masterauth", set.password}
		if i == 1 {
			args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(set.ports[0]))
		}
		start(fmt.Sprintf("redis-%d", i), args...)
	}
	for i := range 3 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", i))
		// Sentinel rewrites its file with what it learns.
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nrequirepass %s\n"+
			"sentinel monitor main 127.0.0.1 %d 2\nsentinel auth-pass main %s\n"+
			"sentinel down-after-milliseconds main 1000\nsentinel failover-timeout main 10000\nsentinel parallel-syncs main 1\n",
			port, dir, set.password, set.ports[0], set.password)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		start(fmt.Sprintf("sentinel-%d", i), conf, "--sentinel")
		set.sentinels = append(set.sentinels, "127.0.0.1:"+strconv.Itoa(port))
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range set.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr, Password: set.password})
		for {
			replicas, err := sc.Replicas(ctx, "main").Result()
			if err == nil && len(replicas) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sentinel %s does not know the replica: %v %v", addr, replicas, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		sc.Close()
	}
	return set
}

// url is the gateway's redis.url for the set.
func (s *sentinelSet) url() string {
	return "redis-sentinel://:" + s.password + "@" + strings.Join(s.sentinels, ",") + "/0?master=main"
}

// primary asks a Sentinel for the primary's port.
func (s *sentinelSet) primary(ctx context.Context) (int, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0], Password: s.password})
	defer sc.Close()
	addr, err := sc.GetMasterAddrByName(ctx, "main").Result()
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(addr[1])
}

// failover makes the Sentinels promote the replica and waits until they
// name it primary and it takes writes.
func (s *sentinelSet) failover(t *testing.T, ctx context.Context) time.Duration {
	t.Helper()
	started := time.Now()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.sentinels[0], Password: s.password})
	defer sc.Close()
	if err := sc.Failover(ctx, "main").Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	for {
		if port, err := s.primary(ctx); err == nil && port == s.ports[1] {
			rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), Password: s.password})
			err := rdb.Set(ctx, "scrmgw:test:failover", "1", time.Minute).Err()
			rdb.Close()
			if err == nil {
				return time.Since(started)
			}
		}
		if time.Since(started) > 30*time.Second {
			t.Fatal("the replica was not promoted within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nudgeWait is how long after a member joins the scale-out scenario's
// workflow nudges them through their guide.
const nudgeWait = 20 * time.Second

// joinedNudgeWorkflow is the scale-out scenario's workflow: every member
// who joins is nudged once through their guide (a WeCom message task),
// nudgeWait after joining; the wait's wake is a scheduled task in Redis.
const joinedNudgeWorkflow = `name: joined-nudge
description: Scale-out scenario - nudge each new member through their guide 20 s after they join.
trigger:
  event: member.joined
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
  - id: pause
    wait: 20s
  - id: nudge
    send: recall
`

// TestScaleOutSentinelFailover is the scale-out scenario of docs/proof.md:
// two `scrmgw serve --workers=false` and two `scrmgw worker` processes on
// one PostgreSQL and a Redis under Sentinel (a primary, a replica, three
// Sentinels, all on loopback, with a password). Signed WeCom contact
// callbacks arrive at both serve processes, as behind a load balancer,
// retried until answered 200 as WeCom does; each new member enters a
// workflow that waits 20 s and then nudges them through their guide.
// Under that load the Sentinels fail Redis over to the replica, a worker
// is killed with SIGKILL (mid-batch: deliveries and welcomes in hand) and
// started again, then every process is restarted in turn (SIGTERM, wait,
// start: a rolling restart). Afterwards every callback answered 200 is in
// the inbox exactly once and processed, each contact is one member with
// one member.joined event, the WeCom fake got no welcome twice and one
// nudge per member, none before its wait was over. (The killed worker's
// tasks come back once asynq's 30 s lease is over and its recoverer
// runs; sends deferred by the rate limit whose task was lost in the
// failover wait for the periodic sweep, so the test restarts a worker
// once more for its start-up sweep instead of waiting minutes.)
func TestScaleOutSentinelFailover(t *testing.T) {
	t.Parallel()
	dbURL := storetest.URL(t, "postgres")
	bin := buildScrmgw(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dir := t.TempDir()
	redisSet := startSentinels(t, ctx, dir)

	const (
		contacts = 300
		senders  = 10
		pace     = 400 * time.Millisecond // 25 callbacks/s in all
	)
	fake := wecomfake.New(t)
	fake.AddEmployees("li")
	type callback struct{ target, body, key, external string }
	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	cbs := make([]callback, contacts)
	for i := range cbs {
		ext := fmt.Sprintf("wmScale%s%04d", runID, i)
		fake.AddContact(wecomfake.Contact{ExternalUserID: ext, Name: "顾客" + strconv.Itoa(i),
			FollowUsers: []wecomfake.FollowUser{{UserID: "li", CreateTime: time.Now()}}})
		cbs[i].external = ext
	}
	// seal makes a contact's callback when it is first sent: its welcome
	// code is valid 20 s from then, as WeCom's.
	seal := func(i int) error {
		plain := wecomfake.AddExternalContact("li", cbs[i].external, "", fake.IssueWelcomeCode(cbs[i].external)).XML()
		msg, err := wecom.ParseMessage(plain)
		if err != nil {
			return err
		}
		body, q, err := wecomfake.Callback{}.Seal(plain)
		if err != nil {
			return err
		}
		cbs[i].target, cbs[i].body, cbs[i].key = wecom.CallbackPath+"?"+q.Encode(), string(body), msg.DedupKey()
		return nil
	}

	admin := "scrmgw_admin_" + randomHex(16)
	env := append(gatewayEnv(os.Environ()),
		"SCRMGW_DATABASE_URL="+dbURL,
		"SCRMGW_REDIS_URL="+redisSet.url(),
		"SCRMGW_ADMIN_TOKEN="+admin,
		"SCRMGW_SECURITY_PHONE_KEY="+randomHex(32),
		"SCRMGW_DATA_DIR="+filepath.Join(dir, "data"),
		"SCRMGW_HTTP_SHUTDOWN_TIMEOUT=15s",
		// The critical lane (welcomes) gets a fifth of it: 80/s, above
		// the callbacks' 25/s, so that welcomes wait for Redis and the
		// workers, not for the rate.
		"SCRMGW_SEND_RATE_WECOM=400/s",
		// The killed worker's claimed sends are settled after the lease.
		"SCRMGW_SEND_LEASE=40s",
	)
	env = append(env, wecomEnv(fake)...)
	type node struct {
		name string
		args []string
		addr string // serve: http.addr; worker: --listen
		p    *proc
	}
	var (
		mu    sync.Mutex
		nodes []*node
		logs  []string
	)
	startNode := func(n *node) error {
		p, err := startProc(n.name, filepath.Join(dir, fmt.Sprintf("%s-%d.log", n.name, len(logs))), append(env, "SCRMGW_HTTP_ADDR="+n.addr), bin, n.args...)
		if err != nil {
			return err
		}
		mu.Lock()
		n.p = p
		logs = append(logs, p.log.Name())
		mu.Unlock()
		return waitHTTP(ctx, "http://"+n.addr+"/readyz", p, 60*time.Second)
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.p.stop(10 * time.Second)
		}
		if t.Failed() {
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("--- %s, last lines:\n%s", l, tail(string(b), 20))
			}
		}
	})
	for i, name := range []string{"serve-a", "serve-b", "worker-a", "worker-b"} {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		n := &node{name: name, addr: "127.0.0.1:" + strconv.Itoa(port), args: []string{"serve", "--workers=false"}}
		if i >= 2 {
			n.args = []string{"worker", "--listen", n.addr}
		}
		nodes = append(nodes, n)
		if err := startNode(n); err != nil {
			t.Fatal(err)
		}
	}
	serves := nodes[:2]
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li"}`},
	} {
		if code, body := post("http://"+serves[0].addr+req.path, admin, req.body); code != http.StatusCreated {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	if code, body := apiCall(http.MethodPut, "http://"+serves[0].addr+"/api/v1/workflows/joined-nudge?brand=acme", admin, "application/yaml", joinedNudgeWorkflow); code/100 != 2 {
		t.Fatalf("storing the workflow: %d %s", code, body)
	}
	if code, body := apiCall(http.MethodPost, "http://"+serves[0].addr+"/api/v1/workflows/joined-nudge/enable?brand=acme", admin, "application/json", ""); code/100 != 2 {
		t.Fatalf("enabling the workflow: %d %s", code, body)
	}

	// Senders deliver each callback until it is answered 200, to one
	// serve process and, when it does not answer, to the other (a load
	// balancer's retry).
	client := &http.Client{Timeout: 5 * time.Second}
	var (
		acked         = make([]atomic.Bool, len(cbs))
		nAcked        atomic.Int64
		failures      atomic.Int64
		afterFailover atomic.Int64
		failedOver    atomic.Bool
		work          = make(chan int)
		wg            sync.WaitGroup
		senderErrs    = make(chan error, senders)
	)
	began := time.Now()
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				// Paced: the load lasts through the failover and the
				// restarts.
				time.Sleep(pace)
				if err := seal(i); err != nil {
					senderErrs <- err
					return
				}
				for try := 0; ; try++ {
					n := serves[(i+s+try)%2]
					resp, err := client.Post("http://"+n.addr+cbs[i].target, "text/xml", strings.NewReader(cbs[i].body))
					code := 0
					if err == nil {
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						code = resp.StatusCode
						if code == http.StatusOK && string(b) != "success" {
							senderErrs <- fmt.Errorf("callback %d: 200 with body %q", i, b)
							return
						}
					}
					if code == http.StatusOK {
						acked[i].Store(true)
						nAcked.Add(1)
						if failedOver.Load() {
							afterFailover.Add(1)
						}
						break
					}
					if code != 0 && code != http.StatusServiceUnavailable {
						senderErrs <- fmt.Errorf("callback %d: HTTP %d", i, code)
						return
					}
					failures.Add(1)
					if ctx.Err() != nil {
						senderErrs <- fmt.Errorf("callback %d never answered 200: %v", i, ctx.Err())
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}

	// Under load: the failover at a quarter of the callbacks, the kill -9
	// of a worker at three eighths, then the rolling restart from half of
	// them on.
	var (
		failoverTook time.Duration
		killedAt     string
		inFlight     int // outbox rows sending when the worker was killed
		restarts     []string
		chaosErr     error
		chaosDone    = make(chan struct{})
	)
	go func() {
		defer close(chaosDone)
		waitAcked := func(n int) {
			for nAcked.Load() < int64(n) && ctx.Err() == nil {
				time.Sleep(time.Millisecond)
			}
		}
		waitAcked(len(cbs) / 4)
		failoverTook = redisSet.failover(t, ctx)
		failedOver.Store(true)
		waitAcked(3 * len(cbs) / 8)
		victim := nodes[3]
		at, inbox := nAcked.Load(), countNow(ctx, dbURL, `SELECT count(*) FROM inbox_messages WHERE state <> 'done'`)
		t0 := time.Now()
		if chaosErr = victim.p.cmd.Process.Signal(syscall.SIGKILL); chaosErr != nil {
			return
		}
		<-victim.p.done
		// The dead worker's claimed sends stay sending until the lease
		// (40 s); the live worker's are counted too (an upper bound).
		sending := countNow(ctx, dbURL, `SELECT count(*) FROM outbox_messages WHERE state = 'sending'`)
		if chaosErr = startNode(victim); chaosErr != nil {
			return
		}
		inFlight = sending
		killedAt = fmt.Sprintf("%s at %d answered (%d inbox rows not done, %d sends left in flight), back in %s",
			victim.name, at, inbox, sending, time.Since(t0).Round(10*time.Millisecond))
		waitAcked(len(cbs) / 2)
		for _, n := range nodes {
			at := nAcked.Load()
			t0 := time.Now()
			n.p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.p.done:
			case <-time.After(30 * time.Second):
				chaosErr = fmt.Errorf("%s did not stop within 30 s of SIGTERM", n.name)
				return
			}
			if n.p.err != nil {
				chaosErr = fmt.Errorf("%s exited with %v after SIGTERM", n.name, n.p.err)
				return
			}
			if chaosErr = startNode(n); chaosErr != nil {
				return
			}
			restarts = append(restarts, fmt.Sprintf("%s at %d answered, back in %s", n.name, at, time.Since(t0).Round(10*time.Millisecond)))
		}
	}()
	for i := range cbs {
		work <- i
	}
	close(work)
	wg.Wait()
	<-chaosDone
	close(senderErrs)
	for err := range senderErrs {
		t.Error(err)
	}
	if chaosErr != nil {
		t.Fatal(chaosErr)
	}
	if t.Failed() {
		t.FailNow()
	}
	loadTook := time.Since(began)
	if port, err := redisSet.primary(ctx); err != nil || port != redisSet.ports[1] {
		t.Fatalf("primary after the failover: port %d (%v), want the old replica's %d", port, err, redisSet.ports[1])
	}
	if afterFailover.Load() == 0 || killedAt == "" || len(restarts) != len(nodes) {
		t.Fatalf("the failover, kill and restarts did not happen under load: %d callbacks answered after the failover, kill %q, restarts %v",
			afterFailover.Load(), killedAt, restarts)
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	// Inbox rows whose task could not be queued while Redis failed over
	// were queued by the restarted workers' start-up sweep; the killed
	// worker's come back once asynq's 30 s lease on them is over and its
	// recoverer runs (every minute).
	deadline := time.Now().Add(150 * time.Second)
	for count(`SELECT count(*) FROM inbox_messages WHERE state <> 'done'`) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries still not processed", count(`SELECT count(*) FROM inbox_messages WHERE state <> 'done'`))
		}
		time.Sleep(100 * time.Millisecond)
	}
	inboxDone := time.Since(began)

	// Tasks queued on the old primary just before the failover and not
	// yet replicated are gone: their rows are still pending in
	// PostgreSQL. Sends the rate limit had deferred to a later slot
	// (their updated_at) are queued by the periodic sweep a minute after
	// that slot; a worker restarted once the slots have passed does the
	// same at once (as TestKill9UnderLoad does).
	var lastSlot time.Time
	if err := conn.QueryRow(ctx, `SELECT COALESCE(max(updated_at), now()) FROM outbox_messages WHERE state = 'pending'`).Scan(&lastSlot); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(lastSlot.Add(time.Second)))
	sweeper := nodes[2]
	sweeper.p.stop(30 * time.Second)
	if err := startNode(sweeper); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(60 * time.Second)
	welcomes := func(cond string) int {
		return count(`SELECT count(*) FROM outbox_messages WHERE idempotency_key LIKE 'welcome:%' AND ` + cond)
	}
	for welcomes(`state IN ('pending', 'sending')`) > 0 {
		if time.Now().After(deadline) {
			rows, _ := conn.Query(ctx, `SELECT id, state, attempts, last_error, created_at, updated_at FROM outbox_messages WHERE state IN ('pending', 'sending') LIMIT 10`)
			for rows.Next() {
				var (
					id, attempts int64
					state, last  string
					at, upd      time.Time
				)
				rows.Scan(&id, &state, &attempts, &last, &at, &upd)
				t.Logf("outbox %d: %s after %d attempts (%s), created %s, updated %s", id, state, attempts, last,
					at.Sub(began).Round(time.Millisecond), upd.Sub(began).Round(time.Millisecond))
			}
			rows.Close()
			t.Fatalf("%d welcomes still pending or sending", welcomes(`state IN ('pending', 'sending')`))
		}
		time.Sleep(100 * time.Millisecond)
	}
	drained := time.Since(began)

	keys := make([]string, len(cbs))
	externals := make([]string, len(cbs))
	for i, c := range cbs {
		if !acked[i].Load() {
			t.Fatalf("callback %d was never answered 200", i)
		}
		keys[i], externals[i] = c.key, c.external
	}
	if n := count(`SELECT count(*) FROM inbox_messages`); n != len(cbs) {
		t.Errorf("inbox rows = %d, want %d (one per callback)", n, len(cbs))
	}
	if n := count(`SELECT count(DISTINCT dedup_key) FROM inbox_messages WHERE channel = 'wecom' AND dedup_key = ANY($1)`, keys); n != len(cbs) {
		t.Errorf("distinct callbacks recorded = %d, want %d", n, len(cbs))
	}
	if n := count(`SELECT count(*) FROM members`); n != contacts {
		t.Errorf("members = %d, want %d", n, contacts)
	}
	if n := count(`SELECT count(*) FROM member_identities WHERE channel = 'wecom' AND external_id = ANY($1)`, externals); n != contacts {
		t.Errorf("wecom identities of the contacts = %d, want %d", n, contacts)
	}
	if n := count(`SELECT count(*) FROM events WHERE type = 'member.joined'`); n != contacts {
		t.Errorf("member.joined events = %d, want %d", n, contacts)
	}
	// The effect outside, counted at the WeCom fake: no welcome twice.
	seen := map[string]int{}
	for _, w := range fake.Welcomes() {
		if seen[w.WelcomeCode]++; seen[w.WelcomeCode] == 2 {
			t.Errorf("welcome code of %s sent twice", w.ExternalUserID)
		}
	}
	if n := welcomes(`true`); n != contacts {
		t.Errorf("welcome rows = %d, want %d (one per contact)", n, contacts)
	}
	// A welcome the killed worker sent but did not record cannot be
	// told apart later: WeCom answers 41050 for its code once it is 20 s
	// old, used or not, so the row ends failed, outcome unknown, while
	// the member got it (once). The outbox may under-count by the sends in flight at the
	// kill, never over-count.
	sent := welcomes(`state = 'sent'`)
	if sent > len(seen) || len(seen)-sent > max(inFlight, 0) {
		t.Errorf("welcome rows sent = %d, but the fake got %d welcomes (%d sends were in flight at the kill)", sent, len(seen), inFlight)
	}
	// Too late: WeCom took the code no more (41050), or the gateway saw
	// that it had expired before the send was reached (failure expired).
	// A welcome the kill left in doubt, taken back after its code
	// expired, fails as outcome_unknown: at most the sends in flight.
	late := welcomes(`state = 'failed' AND (last_error LIKE '%41050%' OR failure = 'expired')`)
	unknown := welcomes(`state = 'failed' AND failure = 'outcome_unknown'`)
	if int64(unknown) > int64(max(inFlight, 0)) {
		t.Errorf("%d welcomes failed with their outcome unknown, more than the %d sends in flight at the kill", unknown, max(inFlight, 0))
	}
	if n := welcomes(`state = 'failed'`); n != late+unknown {
		t.Errorf("%d welcomes failed, %d of them because the code was too old and %d in doubt; want no other failure", n, late, unknown)
		rows, _ := conn.Query(ctx, `SELECT failure, left(last_error, 160), count(*) FROM outbox_messages
			WHERE idempotency_key LIKE 'welcome:%' AND state = 'failed' AND last_error NOT LIKE '%41050%' AND failure NOT IN ('expired', 'outcome_unknown') GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10`)
		for rows.Next() {
			var (
				failure, last string
				k             int
			)
			rows.Scan(&failure, &last, &k)
			t.Logf("%d welcomes failed (%s): %s", k, failure, last)
		}
		rows.Close()
	}

	// The workflow: one run per member, each ended with its one nudge,
	// which no process sent before the member's wait was over: the step
	// was entered and claimed, and WeCom got the message task, at or after
	// the wait's due time.
	deadline = time.Now().Add(150 * time.Second)
	for count(`SELECT count(*) FROM workflow_runs WHERE ended_at IS NULL`) > 0 || count(`SELECT count(*) FROM workflow_runs`) < contacts {
		if time.Now().After(deadline) {
			t.Fatalf("workflow runs: %d, %d of them not ended", count(`SELECT count(*) FROM workflow_runs`),
				count(`SELECT count(*) FROM workflow_runs WHERE ended_at IS NULL`))
		}
		time.Sleep(200 * time.Millisecond)
	}
	runsEnded := time.Since(began)
	nudges := map[string][]time.Time{}
	for _, m := range fake.MsgTemplates() {
		if m.Sender != "li" || len(m.ExternalUserIDs) != 1 {
			t.Errorf("message task from %q to %v, want from li to one member", m.Sender, m.ExternalUserIDs)
			continue
		}
		nudges[m.ExternalUserIDs[0]] = append(nudges[m.ExternalUserIDs[0]], m.At)
	}
	rows, err := conn.Query(ctx, `SELECT i.external_id, r.state, r.sent, p.started_at, COALESCE(n.state, 'missing'), COALESCE(n.started_at, p.started_at), n.claimed_at
		FROM workflow_runs r
		JOIN member_identities i ON i.member_id = r.member_id AND i.channel = 'wecom'
		JOIN run_steps p ON p.run_id = r.id AND p.step_id = 'pause'
		LEFT JOIN run_steps n ON n.run_id = r.id AND n.step_id = 'nudge'
		WHERE r.workflow = 'joined-nudge'`)
	if err != nil {
		t.Fatal(err)
	}
	var (
		runs      int
		minMargin = time.Duration(1<<63 - 1)
		maxLate   time.Duration
	)
	for rows.Next() {
		var (
			ext, state, nState string
			sent               int
			waitFrom, nStarted time.Time
			nClaimed           *time.Time
		)
		if err := rows.Scan(&ext, &state, &sent, &waitFrom, &nState, &nStarted, &nClaimed); err != nil {
			t.Fatal(err)
		}
		runs++
		due := waitFrom.Add(nudgeWait)
		at := nudges[ext]
		switch {
		case state != "done" || sent != 1 || nState != "done" || nClaimed == nil:
			t.Errorf("run of %s: %s with %d sent, nudge step %q (claimed %v)", ext, state, sent, nState, nClaimed)
		case len(at) != 1:
			t.Errorf("%s got %d nudges, want 1", ext, len(at))
		case nStarted.Before(due) || nClaimed.Before(due) || at[0].Before(due):
			t.Errorf("%s nudged early: wait due %s, step entered %s, claimed %s, WeCom got it %s", ext,
				due.Format(time.RFC3339Nano), nStarted.Format(time.RFC3339Nano), nClaimed.Format(time.RFC3339Nano), at[0].Format(time.RFC3339Nano))
		default:
			minMargin = min(minMargin, at[0].Sub(due))
			maxLate = max(maxLate, at[0].Sub(due))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if runs != contacts || len(nudges) != contacts {
		t.Errorf("workflow runs = %d, members nudged = %d, want %d", runs, len(nudges), contacts)
	}
	t.Logf("2 serve + 2 worker on Sentinel: %d callbacks in %s (%d attempts refused or unanswered, retried); "+
		"failover in %s, %d callbacks answered after it; kill -9 of %s; rolling restart: %s; inbox processed %s, every welcome settled %s "+
		"and every workflow run ended %s after the start; "+
		"%d members, %d welcomes sent once each (%d recorded sent), %d too late (expired, or 41050 from WeCom), 0 twice; %d nudges, one per member, none early "+
		"(WeCom got them %s to %s after their wait was due)",
		len(cbs), loadTook.Round(10*time.Millisecond), failures.Load(), failoverTook.Round(10*time.Millisecond), afterFailover.Load(),
		killedAt, strings.Join(restarts, "; "), inboxDone.Round(10*time.Millisecond), drained.Round(10*time.Millisecond),
		runsEnded.Round(10*time.Millisecond), contacts, len(seen), sent, late, len(nudges), minMargin.Round(time.Millisecond), maxLate.Round(time.Millisecond))
}

// countNow runs a count query on its own connection (from a goroutine
// other than the test's); -1 when it fails.
func countNow(ctx context.Context, url, q string) int {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return -1
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		return -1
	}
	return n
}
