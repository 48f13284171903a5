package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestFaultsRedisRestart is the "Redis restarted under load" scenario of
// docs/proof.md: Redis (AOF, fsync every second) is killed with SIGKILL
// while WeCom callbacks keep arriving and started again on the same port
// and files a few seconds later. /readyz reports not ready while it is
// down; the gateway, left alone, is ready again once it is back; every
// callback answered 200 is processed exactly once.
//
// Callbacks are still acknowledged while Redis is down: the inbox row in
// PostgreSQL is what an acknowledgement promises, and the rows whose task
// could not be queued are queued by the periodic sweep (every minute, rows
// older than a minute), so this scenario takes up to two minutes more than
// the outage.
func TestFaultsRedisRestart(t *testing.T) {
	t.Parallel() // mostly waits for the sweep
	restartUnderLoad(t, "redis")
}

// TestFaultsPostgresRestart is the "PostgreSQL restarted under load"
// scenario of docs/proof.md: PostgreSQL is stopped the hard way (pg_ctl
// stop -m immediate: every server process quits without a checkpoint, as
// in a crash, and the next start replays the WAL) while WeCom callbacks
// keep arriving, and started again on the same port a few seconds later.
// While it is down callbacks are refused (5xx) and their sender retries,
// as WeCom does, and /readyz reports not ready; the gateway, left alone,
// is ready again once it is back; every callback answered 200 is
// processed exactly once.
func TestFaultsPostgresRestart(t *testing.T) {
	restartUnderLoad(t, "postgres")
}

// restartUnderLoad runs the restart scenario for server ("redis" or
// "postgres"), which the test starts and restarts itself; the other one
// is the test server of storetest.
func restartUnderLoad(t *testing.T, server string) {
	const (
		contacts = 100 // add_external_contact events: one member each
		texts    = 200 // guide text messages: one reply each
		rate     = 40  // callbacks a second: 7.5 s of load
		senders  = 8
		outage   = 4 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var (
		dbURL, redisURL string
		pg              *testPostgres
		rs              *testRedis
	)
	switch server {
	case "postgres":
		pg = startTestPostgres(t)
		dbURL = pg.url()
		redisURL = storetest.RedisURL(t)
	case "redis":
		dbURL = storetest.URL(t, "postgres")
		rs = startTestRedis(ctx, t)
		redisURL = rs.url()
	}
	bin := buildScrmgw(t)

	fake := wecomfake.New(t)
	fake.AddEmployees("li")
	runID := randomHex(3)
	type callback struct{ target, body, key string }
	var (
		cbs       []callback
		externals []string
	)
	for i := range contacts + texts {
		var (
			plain []byte
			cb    wecomfake.Callback
		)
		if i%3 == 0 {
			ext := fmt.Sprintf("wmR%s%04d", runID, i)
			externals = append(externals, ext)
			fake.AddContact(wecomfake.Contact{ExternalUserID: ext, Name: "顾客" + strconv.Itoa(i),
				FollowUsers: []wecomfake.FollowUser{{UserID: "li", CreateTime: time.Now()}}})
			plain = wecomfake.AddExternalContact("li", ext, "", "").XML()
		} else {
			m := wecomfake.EmployeeText(wecomfake.DefaultAgentID, "li", "我的会员")
			m.MsgID = strconv.FormatInt(7_000_000_000_000_000_000+time.Now().UnixNano()%1e15*1000+int64(i), 10)
			plain = m.XML()
			cb.AgentID = wecomfake.DefaultAgentID
		}
		msg, err := wecom.ParseMessage(plain)
		if err != nil {
			t.Fatal(err)
		}
		body, q, err := cb.Seal(plain)
		if err != nil {
			t.Fatal(err)
		}
		cbs = append(cbs, callback{wecom.CallbackPath + "?" + q.Encode(), string(body), msg.DedupKey()})
	}

	g := newTestGateway(t, bin, dbURL, redisURL, wecomEnv(fake)...)
	g.serve(ctx)
	g.seedAcme()
	if code, body := g.ready(); code != 200 {
		t.Fatalf("/readyz before the restart = %d %s", code, body)
	}

	// Senders deliver every callback, at rate a second in all, each until
	// it is answered 200 (as WeCom retries what is not).
	var (
		answered   atomic.Int64
		refused    atomic.Int64 // attempts without a 200
		duringDown atomic.Int64 // callbacks answered while the server was down
		slowest    atomic.Int64 // longest wait for a 200, retries included
		down       atomic.Bool
		work       = make(chan int)
		wg         sync.WaitGroup
		senderErrs = make(chan error, senders)
	)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				t0 := time.Now()
				n, err := g.deliverUntil200(ctx, cbs[i].target, cbs[i].body)
				refused.Add(int64(n))
				for d := time.Since(t0); ; {
					m := slowest.Load()
					if int64(d) <= m || slowest.CompareAndSwap(m, int64(d)) {
						break
					}
				}
				if err != nil {
					senderErrs <- fmt.Errorf("callback %d: %w", i, err)
					return
				}
				answered.Add(1)
				if down.Load() {
					duringDown.Add(1)
				}
			}
		}()
	}
	go func() {
		defer close(work)
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for i := range cbs {
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
			<-tick.C
		}
	}()

	// When a fifth is answered, stop the server; check that /readyz
	// says not ready; start it again after the outage; wait until the
	// gateway is ready by itself.
	for answered.Load() < int64(len(cbs)/5) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	before := answered.Load()
	stopped := time.Now()
	switch server {
	case "postgres":
		pg.crash(t)
	case "redis":
		rs.kill()
	}
	down.Store(true)
	var notReady string
	for notReady == "" && time.Since(stopped) < outage {
		if code, body := g.ready(); code == 503 {
			notReady = body
		}
		time.Sleep(100 * time.Millisecond)
	}
	if notReady == "" {
		t.Errorf("/readyz never reported not ready while %s was down", server)
	} else if want := `"` + map[string]string{"postgres": "database", "redis": "redis"}[server] + `":"unavailable"`; !strings.Contains(notReady, want) {
		t.Errorf("/readyz while %s was down = %s, want %s", server, notReady, want)
	}
	time.Sleep(outage - time.Since(stopped))
	down.Store(false)
	switch server {
	case "postgres":
		pg.start(t)
	case "redis":
		rs.start(ctx, t)
	}
	downFor := time.Since(stopped)
	readyAgain := time.Now()
	for {
		if code, _ := g.ready(); code == 200 {
			break
		}
		if time.Since(readyAgain) > 60*time.Second {
			t.Fatalf("/readyz not ready 60 s after %s came back", server)
		}
		time.Sleep(100 * time.Millisecond)
	}
	recovered := time.Since(readyAgain)
	wg.Wait()
	close(senderErrs)
	for err := range senderErrs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if answered.Load() != int64(len(cbs)) {
		t.Fatalf("%d of %d callbacks answered", answered.Load(), len(cbs))
	}
	if after := int64(len(cbs)) - before - duringDown.Load(); after == 0 {
		t.Fatalf("the restart did not happen under load: no callback answered after it")
	}

	// Everything answered is processed, once.
	db := newDBCounter(ctx, t, dbURL)
	took := db.waitProcessed(ctx, len(cbs), 3*time.Minute)
	keys := make([]string, len(cbs))
	for i, c := range cbs {
		keys[i] = c.key
	}
	if n := db.count(ctx, `SELECT count(*) FROM inbox_messages`); n != len(cbs) {
		t.Errorf("inbox rows = %d, want %d (one per callback)", n, len(cbs))
	}
	if n := db.count(ctx, `SELECT count(DISTINCT dedup_key) FROM inbox_messages WHERE channel = 'wecom' AND dedup_key = ANY($1)`, keys); n != len(cbs) {
		t.Errorf("distinct callbacks recorded = %d, want %d", n, len(cbs))
	}
	if n := db.count(ctx, `SELECT count(*) FROM members`); n != contacts {
		t.Errorf("members = %d, want %d (one per contact)", n, contacts)
	}
	if n := db.count(ctx, `SELECT count(DISTINCT member_id) FROM member_identities WHERE channel = 'wecom' AND external_id = ANY($1)`, externals); n != contacts {
		t.Errorf("members of the contacts = %d, want %d", n, contacts)
	}
	if n := db.count(ctx, `SELECT count(*) FROM events WHERE type = 'member.joined'`); n != contacts {
		t.Errorf("member.joined events = %d, want %d", n, contacts)
	}
	// Each guide message got one reply, sent once. (The guide may also
	// get the daily digest, an app message of its own, when the test runs
	// after bots.digest_time in the store's time zone.)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		sent := db.count(ctx, `SELECT count(*) FROM outbox_messages WHERE state = 'sent' AND idempotency_key LIKE 'reply:wecom:%'`)
		if sent >= texts || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let a duplicate surface
	if n := db.count(ctx, `SELECT count(*) FROM outbox_messages WHERE idempotency_key LIKE 'reply:wecom:%'`); n != texts {
		t.Errorf("replies in the outbox = %d, want %d (one per guide message)", n, texts)
	}
	if n := db.count(ctx, `SELECT count(*) FROM outbox_messages WHERE state <> 'sent'`); n != 0 {
		t.Errorf("%d replies not sent", n)
		db.logUnsent(ctx)
	}
	others := db.count(ctx, `SELECT count(*) FROM outbox_messages WHERE state = 'sent' AND idempotency_key NOT LIKE 'reply:wecom:%'`)
	if n := len(fake.AppMessages()); n != texts+others {
		t.Errorf("WeCom received %d app messages, want %d (one reply per guide message) and %d other sent messages (digests)", n, texts, others)
	}
	unqueued := len(g.logLines("queueing inbound failed"))
	t.Logf("%d callbacks (%d contacts, %d guide messages) at %d/s; %s down for %s with %d answered before it; "+
		"%d answered while it was down (queueing failures logged %d times: once per streak, the recorder retries), %d attempts refused, longest wait for a 200 %s; "+
		"/readyz ready %s after it was back; all recorded once and processed %s after the last answer",
		len(cbs), contacts, texts, rate, server, downFor.Round(100*time.Millisecond), before, duringDown.Load(), unqueued, refused.Load(),
		time.Duration(slowest.Load()).Round(10*time.Millisecond), recovered.Round(100*time.Millisecond), took.Round(100*time.Millisecond))
}

// testPostgres is a PostgreSQL cluster of the test's own, which it can
// crash and start again on the same port.
type testPostgres struct {
	pgServer
	opts string
}

// startTestPostgres initialises and starts a cluster with the durable
// settings of production (fsync and synchronous_commit on), small enough
// for a shared machine. Without PostgreSQL installed it fails in CI and
// skips elsewhere.
func startTestPostgres(t *testing.T) *testPostgres {
	t.Helper()
	bin, err := findPGBin()
	if err != nil {
		if storetest.InCI() {
			t.Fatalf("%v (required in CI)", err)
		}
		t.Skip(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	parent, err := os.MkdirTemp("", "scrmgw-faults-pg-")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "pg")
	s := &testPostgres{pgServer: pgServer{bin: bin, dir: dir, port: port, asRoot: os.Geteuid() == 0}}
	t.Cleanup(func() {
		s.command("pg_ctl", "-D", dir, "-m", "immediate", "-w", "stop").Run()
		os.RemoveAll(parent)
	})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if s.asRoot {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		os.Chmod(parent, 0o755)
	}
	if out, err := s.command("initdb", "-D", dir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	s.opts = strings.Join([]string{"-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100", "-c", "shared_buffers=64MB",
		"-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "full_page_writes=on"}, " ")
	s.start(t)
	return s
}

func (s *testPostgres) url() string { return s.pgServer.url("postgres") }

func (s *testPostgres) start(t *testing.T) {
	t.Helper()
	out, err := s.command("pg_ctl", "-D", s.dir, "-l", filepath.Join(s.dir, "server.log"), "-w", "-t", "60", "start", "-o", s.opts).CombinedOutput()
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, tail(string(b), 20))
	}
}

// crash stops every server process at once, without a checkpoint.
func (s *testPostgres) crash(t *testing.T) {
	t.Helper()
	if out, err := s.command("pg_ctl", "-D", s.dir, "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// testRedis is a redis-server of the test's own (AOF, fsync every
// second), which it can kill and start again on the same port and files.
type testRedis struct {
	dir  string
	port int
	p    *proc
}

func startTestRedis(ctx context.Context, t *testing.T) *testRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if storetest.InCI() {
			t.Fatalf("redis-server not found (required in CI): %v", err)
		}
		t.Skip("redis-server not found")
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	r := &testRedis{dir: t.TempDir(), port: port}
	t.Cleanup(func() { r.p.stop(5 * time.Second) })
	r.start(ctx, t)
	return r
}

func (r *testRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *testRedis) start(ctx context.Context, t *testing.T) {
	t.Helper()
	p, err := startProc("redis-server", filepath.Join(r.dir, fmt.Sprintf("redis-%d.log", time.Now().UnixNano())), os.Environ(), "redis-server",
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "")
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.port)})
	defer rdb.Close()
	for i := 0; ; i++ {
		if err := rdb.Ping(ctx).Err(); err == nil {
			return
		}
		if i > 200 || p.exited() {
			b, _ := os.ReadFile(p.log.Name())
			t.Fatalf("redis-server did not start:\n%s", tail(string(b), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends redis-server with SIGKILL: what it wrote to its AOF is in the
// file (it writes before it answers), what it had not fsynced is still
// in the kernel's page cache.
func (r *testRedis) kill() {
	r.p.cmd.Process.Signal(syscall.SIGKILL)
	<-r.p.done
	r.p.log.Close()
}
