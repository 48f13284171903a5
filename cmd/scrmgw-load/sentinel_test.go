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

// TestScaleOutSentinelFailover is the scale-out scenario of docs/proof.md:
// two `scrmgw serve --workers=false` and two `scrmgw worker` processes on
// one PostgreSQL and a Redis under Sentinel (a primary, a replica, three
// Sentinels, all on loopback, with a password). Signed WeCom contact
// callbacks arrive at both serve processes, as behind a load balancer,
// retried until answered 200 as WeCom does. Under that load the Sentinels
// fail Redis over to the replica, then every process is restarted in
// turn (SIGTERM, wait, start: a rolling restart). Afterwards every
// callback answered 200 is in the inbox exactly once and processed, each
// contact is one member with one member.joined event, and the WeCom fake
// got no welcome twice. (Sends deferred by the rate limit whose task was
// lost in the failover wait for the periodic sweep; the test restarts a
// worker once more for its start-up sweep instead of waiting minutes.)
//
// A worker killed with SIGKILL mid-batch is TestKill9UnderLoad's scenario
// (kill_test.go): its tasks come back after asynq's lease, which takes
// longer than this test may.
func TestScaleOutSentinelFailover(t *testing.T) {
	t.Parallel()
	dbURL := storetest.URL(t, "postgres")
	bin := buildScrmgw(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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

	// Under load: the failover at a quarter of the callbacks, then the
	// rolling restart from half of them on.
	var (
		failoverTook time.Duration
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
	if afterFailover.Load() == 0 || len(restarts) != len(nodes) {
		t.Fatalf("the failover and restarts did not happen under load: %d callbacks answered after the failover, restarts %v", afterFailover.Load(), restarts)
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
	// were queued by the restarted workers' start-up sweep.
	deadline := time.Now().Add(60 * time.Second)
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
	if n := welcomes(`state = 'sent'`); n != len(seen) {
		t.Errorf("welcome rows sent = %d, but the fake got %d welcomes", n, len(seen))
	}
	// A welcome too late for its code fails as expired before it is
	// sent (its 20 s count from the contact's CreateTime), or, rarely,
	// meets WeCom's 41050.
	late := welcomes(`state = 'failed' AND (failure = 'expired' OR last_error LIKE '%41050%')`)
	if n := welcomes(`state = 'failed'`); n != late {
		t.Errorf("%d welcomes failed, %d of them because the code was too old; want all failures to be late codes", n, late)
	}
	t.Logf("2 serve + 2 worker on Sentinel: %d callbacks in %s (%d attempts refused or unanswered, retried); "+
		"failover in %s, %d callbacks answered after it; rolling restart: %s; inbox processed %s and every welcome settled %s after the start; "+
		"%d members, %d welcomes sent once each, %d too late for their codes (expired or 41050), 0 twice",
		len(cbs), loadTook.Round(10*time.Millisecond), failures.Load(), failoverTook.Round(10*time.Millisecond), afterFailover.Load(),
		strings.Join(restarts, "; "), inboxDone.Round(10*time.Millisecond), drained.Round(10*time.Millisecond), contacts, len(seen), late)
}
