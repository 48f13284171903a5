package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestKill9UnderLoad is the crash scenario of docs/proof.md: the real
// scrmgw binary receives signed WeCom callbacks from concurrent senders
// (contact additions and guide messages), its HTTP process is killed with
// SIGKILL mid-load and restarted on the same port while the senders keep
// going, retrying what was not answered as WeCom does, and redelivering
// some callbacks that were. Afterwards every callback answered 200 is in
// the inbox exactly once and processed, each added contact is one member
// with one member.joined event, and no welcome went out twice.
//
// The HTTP side (serve --workers=false) is killed first: it is what
// acknowledges, so it is where a lost or duplicated callback would come
// from. A worker process (scrmgw worker) processes the deliveries during
// the load; once two thirds are answered it is killed with SIGKILL too,
// with deliveries and welcomes in hand, and started again at once: asynq
// hands the dead worker's tasks out again once their lease is over, and
// the outbox sweep settles its claimed sends after send.lease (40 s
// here). After the load the worker is restarted gracefully so that its
// start-up sweep queues the deliveries the killed HTTP process committed
// but had not queued yet (in production the workers' periodic sweep does
// the same within two minutes). Killing a worker mid-campaign is
// TestCampaignWorkerKilled's scenario (campaign_test.go).
func TestKill9UnderLoad(t *testing.T) {
	t.Parallel()                          // mostly waits for the dead worker's leases
	dbURL := storetest.URL(t, "postgres") // fresh schema; fails in CI without PostgreSQL
	redisURL := storetest.RedisURL(t)     // own database, flushed
	bin := buildScrmgw(t)

	const (
		contacts = 150
		texts    = 150
		senders  = 16
	)
	fake := wecomfake.New(t)
	fake.AddEmployees("li")
	type callback struct {
		target, body string
		key          string
		contact      bool
		external     string
		welcome      string
	}
	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	var cbs []callback
	for i := range contacts + texts {
		var (
			plain []byte
			c     callback
			cb    wecomfake.Callback
		)
		if i%2 == 0 {
			c.contact = true
			c.external = fmt.Sprintf("wmKill%s%04d", runID, i)
			fake.AddContact(wecomfake.Contact{ExternalUserID: c.external, Name: "顾客" + strconv.Itoa(i),
				FollowUsers: []wecomfake.FollowUser{{UserID: "li", CreateTime: time.Now()}}})
			c.welcome = fake.IssueWelcomeCode(c.external)
			plain = wecomfake.AddExternalContact("li", c.external, "", c.welcome).XML()
		} else {
			m := wecomfake.EmployeeText(wecomfake.DefaultAgentID, "li", fmt.Sprintf("今天到店的会员 %d 想预约试衣", i))
			m.MsgID = strconv.FormatInt(8_000_000_000_000_000_000+time.Now().UnixNano()%1e15*1000+int64(i), 10)
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
		c.target, c.body, c.key = wecom.CallbackPath+"?"+q.Encode(), string(body), msg.DedupKey()
		cbs = append(cbs, c)
	}

	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	dir := t.TempDir()
	admin := "scrmgw_admin_" + randomHex(16)
	env := append(gatewayEnv(os.Environ()),
		"SCRMGW_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"SCRMGW_DATABASE_URL="+dbURL,
		"SCRMGW_REDIS_URL="+redisURL,
		"SCRMGW_ADMIN_TOKEN="+admin,
		"SCRMGW_SECURITY_PHONE_KEY="+randomHex(32),
		"SCRMGW_DATA_DIR="+filepath.Join(dir, "data"),
		"SCRMGW_SEND_LEASE=40s",
	)
	env = append(env, wecomEnv(fake)...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var procs []*proc
	start := func(name string, args ...string) *proc {
		t.Helper()
		p, err := startProc(name, filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, len(procs))), env, bin, args...)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
		return p
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.stop(10 * time.Second)
		}
		if t.Failed() {
			for _, p := range procs {
				b, _ := os.ReadFile(p.log.Name())
				t.Logf("--- %s (%s), last lines:\n%s", p.name, p.log.Name(), tail(string(b), 30))
			}
		}
	})

	gw := start("serve", "serve", "--workers=false")
	if err := waitHTTP(ctx, base+"/healthz", gw, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	worker := start("worker", "worker")
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li"}`},
	} {
		if code, body := post(base+req.path, admin, req.body); code != http.StatusCreated {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}

	// Senders deliver every callback until it is answered 200, as WeCom
	// retries; acked[i] is set by the first 200.
	client := &http.Client{Timeout: 5 * time.Second}
	deliver := func(c callback) (int, error) {
		resp, err := client.Post(base+c.target, "text/xml", strings.NewReader(c.body))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK && string(b) != "success" {
			return 0, fmt.Errorf("200 with body %q", b)
		}
		return resp.StatusCode, nil
	}
	var (
		acked     = make([]atomic.Bool, len(cbs))
		nAcked    atomic.Int64
		failures  atomic.Int64 // attempts that got no 200: refused, reset, 5xx
		afterKill atomic.Int64 // callbacks first answered after the kill
		killed    atomic.Bool
		// workerKilledAt is how many callbacks were answered when the
		// worker was killed.
		workerKilledAt atomic.Int64
		work           = make(chan int)
		wg             sync.WaitGroup
		senderErrs     = make(chan error, senders)
	)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				for {
					code, err := deliver(cbs[i])
					if err == nil && code == http.StatusOK {
						acked[i].Store(true)
						nAcked.Add(1)
						if killed.Load() {
							afterKill.Add(1)
						}
						break
					}
					if err == nil && code != http.StatusServiceUnavailable {
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
	// Kill the HTTP process once a third has been answered, while the
	// senders are busy, and start it again on the same port.
	var restartErr error
	killDone := make(chan struct{})
	go func() {
		defer close(killDone)
		for nAcked.Load() < int64(len(cbs)/3) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		killed.Store(true)
		if err := gw.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			restartErr = err
			return
		}
		<-gw.done
		t.Logf("killed -9 with %d of %d callbacks answered", nAcked.Load(), len(cbs))
		gw = start("serve", "serve", "--workers=false")
		if restartErr = waitHTTP(ctx, base+"/healthz", gw, 60*time.Second); restartErr != nil {
			return
		}
		// Then the worker, with the backlog of the restart in hand.
		for nAcked.Load() < int64(2*len(cbs)/3) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		if restartErr = worker.cmd.Process.Signal(syscall.SIGKILL); restartErr != nil {
			return
		}
		<-worker.done
		workerKilledAt.Store(nAcked.Load())
		t.Logf("worker killed -9 with %d of %d callbacks answered", nAcked.Load(), len(cbs))
		worker = start("worker", "worker")
	}()
	for i := range cbs {
		work <- i
	}
	close(work)
	wg.Wait()
	<-killDone
	close(senderErrs)
	for err := range senderErrs {
		t.Error(err)
	}
	if restartErr != nil {
		t.Fatalf("restarting after the kill: %v", restartErr)
	}
	if t.Failed() {
		t.FailNow()
	}
	// The kill must have hit the load: requests failed, and callbacks
	// were answered after it.
	if failures.Load() == 0 || afterKill.Load() == 0 {
		t.Fatalf("the kill did not happen under load: %d failed attempts, %d callbacks answered after it", failures.Load(), afterKill.Load())
	}
	t.Logf("%d attempts failed while the gateway was down; %d callbacks answered after the restart", failures.Load(), afterKill.Load())

	// Redeliver some answered callbacks: answered again, recorded nowhere.
	for i := 0; i < len(cbs); i += 7 {
		if code, err := deliver(cbs[i]); err != nil || code != http.StatusOK {
			t.Fatalf("redelivery of callback %d: %d %v", i, code, err)
		}
	}

	// The worker's start-up sweep queues what the killed process had
	// committed without queueing.
	worker.stop(30 * time.Second)
	worker = start("worker", "worker")

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
	if workerKilledAt.Load() == 0 {
		t.Fatal("the worker was not killed")
	}
	// The killed worker's deliveries come back once asynq's lease on them
	// is over (30 s) and its recoverer runs (every minute).
	deadline := time.Now().Add(150 * time.Second)
	for {
		pending := count(`SELECT count(*) FROM inbox_messages WHERE state <> 'done'`)
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			rows, _ := conn.Query(ctx, `SELECT id, dedup_key, state, attempts, last_error FROM inbox_messages WHERE state <> 'done' LIMIT 5`)
			for rows.Next() {
				var (
					id, attempts     int64
					key, state, last string
				)
				rows.Scan(&id, &key, &state, &attempts, &last)
				t.Logf("inbox %d %s: %s after %d attempts: %s", id, key, state, attempts, last)
			}
			rows.Close()
			t.Fatalf("%d deliveries still not processed", pending)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Every answered callback is recorded exactly once, and nothing else.
	keys := make([]string, len(cbs))
	var contactKeys, externals []string
	for i, c := range cbs {
		if !acked[i].Load() {
			t.Fatalf("callback %d was never answered 200", i)
		}
		keys[i] = c.key
		if c.contact {
			contactKeys = append(contactKeys, c.key)
			externals = append(externals, c.external)
		}
	}
	if n := count(`SELECT count(*) FROM inbox_messages`); n != len(cbs) {
		t.Errorf("inbox rows = %d, want %d (one per callback)", n, len(cbs))
	}
	if n := count(`SELECT count(DISTINCT dedup_key) FROM inbox_messages WHERE channel = 'wecom' AND dedup_key = ANY($1)`, keys); n != len(cbs) {
		t.Errorf("distinct callbacks recorded = %d, want %d", n, len(cbs))
	}
	// Each added contact is processed into exactly one member, with one
	// identity and one member.joined event.
	if n := count(`SELECT count(*) FROM members`); n != contacts {
		t.Errorf("members = %d, want %d", n, contacts)
		rows, _ := conn.Query(ctx, `SELECT m.id, m.name, m.created_at FROM members m WHERE NOT EXISTS (SELECT 1 FROM member_identities i WHERE i.member_id = m.id)`)
		for rows.Next() {
			var (
				id   int64
				name string
				at   time.Time
			)
			rows.Scan(&id, &name, &at)
			t.Logf("member %d %q created %s has no identity", id, name, at.Format(time.RFC3339Nano))
		}
		rows.Close()
		rows, _ = conn.Query(ctx, `SELECT id, dedup_key, attempts, last_error, created_at, processed_at FROM inbox_messages WHERE attempts > 0`)
		for rows.Next() {
			var (
				id, attempts int64
				key, last    string
				at, done     time.Time
			)
			rows.Scan(&id, &key, &attempts, &last, &at, &done)
			t.Logf("inbox %d %s: %d failed attempts (%s), recorded %s, done %s", id, key, attempts, last, at.Format(time.RFC3339Nano), done.Format(time.RFC3339Nano))
		}
		rows.Close()
	}
	if n := count(`SELECT count(*) FROM member_identities WHERE channel = 'wecom' AND external_id = ANY($1)`, externals); n != contacts {
		t.Errorf("wecom identities of the contacts = %d, want %d", n, contacts)
	}
	if n := count(`SELECT count(DISTINCT member_id) FROM member_identities WHERE channel = 'wecom'`); n != contacts {
		t.Errorf("members with a wecom identity = %d, want %d", n, contacts)
	}
	if n := count(`SELECT count(*) FROM events WHERE type = 'member.joined' AND source_id = ANY($1)`, contactKeys); n != contacts {
		t.Errorf("member.joined events = %d, want %d", n, contacts)
	}
	if n := count(`SELECT count(*) FROM events WHERE type = 'member.joined'`); n != contacts {
		t.Errorf("member.joined events in all = %d, want %d", n, contacts)
	}
	// The effect outside: no welcome code was used twice.
	seen := map[string]int{}
	for _, w := range fake.Welcomes() {
		if seen[w.WelcomeCode]++; seen[w.WelcomeCode] == 2 {
			t.Errorf("welcome code of %s sent twice", w.ExternalUserID)
		}
	}
	// Every contact has one welcome in the outbox: sent, or failed
	// because WeCom took its code no more (20 s after the contact was
	// added; the dead worker's contacts came back later). None is left
	// in doubt once the lease has settled what the dead worker claimed.
	welcomes := func(cond string) int {
		return count(`SELECT count(*) FROM outbox_messages WHERE idempotency_key LIKE 'welcome:%' AND ` + cond)
	}
	for welcomes(`state IN ('pending', 'sending')`) > 0 {
		if time.Now().After(deadline.Add(60 * time.Second)) {
			t.Fatalf("%d welcomes still pending or sending", welcomes(`state IN ('pending', 'sending')`))
		}
		time.Sleep(200 * time.Millisecond)
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
	t.Logf("%d callbacks recorded and processed once; %d members; %d welcomes sent, %d too late for their codes", len(cbs), contacts, len(seen), late)
}

// buildScrmgw builds the scrmgw binary into a temporary directory, with
// the race detector when the test runs with it (so that go test -race
// reuses the packages it has just compiled).
func buildScrmgw(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "scrmgw")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/scrmgw/scrmgw/cmd/scrmgw")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

func post(url, token, body string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
