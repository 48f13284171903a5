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
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testGateway runs the real scrmgw binary for a fault scenario: processes
// started with the same environment on one HTTP port, stopped (and their
// logs shown on failure) when the test ends.
type testGateway struct {
	t     *testing.T
	bin   string
	dir   string
	base  string
	addr  string
	admin string
	env   []string
	procs []*proc
}

// newTestGateway prepares a gateway on a free port with the database and
// Redis given; extra holds further SCRMGW_* settings (KEY=value).
func newTestGateway(t *testing.T, bin, dbURL, redisURL string, extra ...string) *testGateway {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	g := &testGateway{t: t, bin: bin, dir: t.TempDir(), addr: "127.0.0.1:" + strconv.Itoa(port),
		admin: "scrmgw_admin_" + randomHex(16)}
	g.base = "http://" + g.addr
	g.env = append(gatewayEnv(os.Environ()),
		"SCRMGW_HTTP_ADDR="+g.addr,
		"SCRMGW_DATABASE_URL="+dbURL,
		"SCRMGW_REDIS_URL="+redisURL,
		"SCRMGW_ADMIN_TOKEN="+g.admin,
		"SCRMGW_SECURITY_PHONE_KEY="+randomHex(32),
		"SCRMGW_DATA_DIR="+filepath.Join(g.dir, "data"),
	)
	g.env = append(g.env, extra...)
	t.Cleanup(func() {
		for _, p := range g.procs {
			p.stop(10 * time.Second)
		}
		if t.Failed() {
			for _, p := range g.procs {
				b, _ := os.ReadFile(p.log.Name())
				t.Logf("--- %s (%s), last lines:\n%s", p.name, p.log.Name(), tail(string(b), 30))
			}
		}
	})
	return g
}

// start starts a scrmgw subcommand and returns its process.
func (g *testGateway) start(name string, args ...string) *proc {
	g.t.Helper()
	p, err := startProc(name, filepath.Join(g.dir, fmt.Sprintf("%s-%d.log", name, len(g.procs))), g.env, g.bin, args...)
	if err != nil {
		g.t.Fatal(err)
	}
	g.procs = append(g.procs, p)
	return p
}

// serve starts `scrmgw serve` with args and waits until it answers
// /healthz.
func (g *testGateway) serve(ctx context.Context, args ...string) *proc {
	g.t.Helper()
	p := g.start("serve", append([]string{"serve"}, args...)...)
	if err := waitHTTP(ctx, g.base+"/healthz", p, 60*time.Second); err != nil {
		g.t.Fatal(err)
	}
	return p
}

// seedAcme creates brand acme, store sh-1 and guide g-li (WeCom userid li).
func (g *testGateway) seedAcme() {
	g.t.Helper()
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"acme","name":"ACME"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["acme"],"lat":31.23,"lng":121.47}`},
		{"/api/v1/guides", `{"id":"g-li","store_id":"sh-1","name":"李娜","wecom_userid":"li","dingtalk_userid":"staff-li"}`},
	} {
		if code, body := post(g.base+req.path, g.admin, req.body); code != http.StatusCreated {
			g.t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
}

// ready returns the status of /readyz and its body (0 when it did not
// answer).
func (g *testGateway) ready() (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(g.base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// deliverUntil200 posts a signed callback until the gateway answers 200
// "success", as WeCom retries, and returns how many attempts failed.
func (g *testGateway) deliverUntil200(ctx context.Context, target, body string) (failed int, err error) {
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		resp, err := client.Post(g.base+target, "text/xml", strings.NewReader(body))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK && string(b) == "success":
				return failed, nil
			case resp.StatusCode == http.StatusOK:
				return failed, fmt.Errorf("200 with body %q", b)
			case resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode < 500:
				return failed, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
			}
		}
		failed++
		select {
		case <-ctx.Done():
			return failed, fmt.Errorf("never answered 200: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// dbCounter runs count queries on the gateway's database.
type dbCounter struct {
	t    *testing.T
	conn *pgx.Conn
}

func newDBCounter(ctx context.Context, t *testing.T, url string) *dbCounter {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &dbCounter{t: t, conn: conn}
}

func (d *dbCounter) count(ctx context.Context, q string, args ...any) int {
	d.t.Helper()
	var n int
	if err := d.conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		d.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// waitProcessed waits until the inbox holds want rows, all done, and
// returns how long that took.
func (d *dbCounter) waitProcessed(ctx context.Context, want int, timeout time.Duration) time.Duration {
	d.t.Helper()
	start := time.Now()
	for {
		n := d.count(ctx, `SELECT count(*) FROM inbox_messages`)
		pending := d.count(ctx, `SELECT count(*) FROM inbox_messages WHERE state <> 'done'`)
		if n >= want && pending == 0 {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			d.logUnfinished(ctx)
			d.t.Fatalf("after %s: %d inbox rows of %d, %d not processed", timeout, n, want, pending)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (d *dbCounter) logUnfinished(ctx context.Context) {
	rows, err := d.conn.Query(ctx, `SELECT id, dedup_key, state, attempts, last_error FROM inbox_messages WHERE state <> 'done' LIMIT 5`)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, attempts     int64
			key, state, last string
		)
		rows.Scan(&id, &key, &state, &attempts, &last)
		d.t.Logf("inbox %d %s: %s after %d attempts: %s", id, key, state, attempts, last)
	}
}

// logLines returns the lines of the gateway's process logs that contain s.
func (g *testGateway) logLines(s string) []string {
	var out []string
	for _, p := range g.procs {
		b, _ := os.ReadFile(p.log.Name())
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, s) {
				out = append(out, l)
			}
		}
	}
	return out
}

func (d *dbCounter) logUnsent(ctx context.Context) {
	rows, err := d.conn.Query(ctx, `SELECT id, state, attempts, last_error, updated_at,
		(SELECT count(*) FROM send_attempts a WHERE a.outbox_id = o.id) FROM outbox_messages o WHERE state <> 'sent' LIMIT 5`)
	if err != nil {
		d.t.Logf("listing unsent: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, attempts, tries int64
			state, last         string
			at                  time.Time
		)
		rows.Scan(&id, &state, &attempts, &last, &at, &tries)
		d.t.Logf("outbox %d: %s, %d claims, %d send attempts logged, updated %s: %s", id, state, attempts, tries, at.Format(time.RFC3339Nano), last)
	}
}
