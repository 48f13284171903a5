package dingtalk

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
)

// memRecorder is an inbox in memory: like the real one it records a
// (Channel, DedupKey) once and answers a repeat with nil.
type memRecorder struct {
	mu       sync.Mutex
	seen     map[string]bool
	recorded []adapters.Inbound
	calls    int
	fail     error         // Record fails with it while set
	block    chan struct{} // Record waits for it to close while set
	entered  chan string   // gets each DedupKey as Record is entered
}

func newMemRecorder() *memRecorder {
	return &memRecorder{seen: map[string]bool{}, entered: make(chan string, 100)}
}

func (r *memRecorder) Record(ctx context.Context, in *adapters.Inbound) error {
	r.mu.Lock()
	r.calls++
	block, fail := r.block, r.fail
	r.mu.Unlock()
	select {
	case r.entered <- in.DedupKey:
	default:
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := in.Channel + "\x00" + in.DedupKey
	if r.seen[key] {
		return nil
	}
	r.seen[key] = true
	r.recorded = append(r.recorded, *in)
	return nil
}

func (r *memRecorder) setFail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = err
}

// blockRecords makes Record wait until the returned func is called.
func (r *memRecorder) blockRecords() (release func()) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.block = ch
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.block = nil
			r.mu.Unlock()
			close(ch)
		})
	}
}

func (r *memRecorder) Recorded() []adapters.Inbound {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]adapters.Inbound(nil), r.recorded...)
}

func (r *memRecorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// waitEntered waits for Record to be entered for dedupKey.
func (r *memRecorder) waitEntered(t *testing.T, dedupKey string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case k := <-r.entered:
			if k == dedupKey {
				return
			}
		case <-timeout:
			t.Fatalf("Record not called for %s", dedupKey)
		}
	}
}

// memTokens is a TokenCache in memory.
type memTokens struct {
	mu      sync.Mutex
	m       map[string]memToken
	ttls    []time.Duration // every Set's ttl
	deletes int
	broken  error // every call fails with it while set
}

type memToken struct {
	token   string
	expires time.Time
}

func newMemTokens() *memTokens { return &memTokens{m: map[string]memToken{}} }

func (c *memTokens) Get(_ context.Context, key string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return "", c.broken
	}
	e, ok := c.m[key]
	if !ok || !time.Now().Before(e.expires) {
		return "", nil
	}
	return e.token, nil
}

func (c *memTokens) Set(_ context.Context, key, token string, ttl time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	c.ttls = append(c.ttls, ttl)
	c.m[key] = memToken{token, time.Now().Add(ttl)}
	return nil
}

func (c *memTokens) Delete(_ context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	c.deletes++
	delete(c.m, key)
	return nil
}

func (c *memTokens) token(key string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key].token
}

// logBuffer collects log output for inspection; it is written to the
// test log when the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// guidesNamed says the staff ids given are guides.
func guidesNamed(ids ...string) GuideResolver {
	return GuideFunc(func(_ context.Context, staffID string) (bool, error) {
		for _, id := range ids {
			if id == staffID {
				return true, nil
			}
		}
		return false, nil
	})
}

type testEnv struct {
	gw     *dingtalkfake.Gateway
	api    *dingtalkfake.OpenAPI
	c      *Client
	rec    *memRecorder
	tokens *memTokens
	logs   *logBuffer
	http   *http.Client
}

type envOption func(*Config, *Deps)

// newEnv starts a fake gateway serving a fake OpenAPI and makes a Client
// for them, with short timings.
func newEnv(t *testing.T, gwOpts []dingtalkfake.Option, opts ...envOption) *testEnv {
	t.Helper()
	api := dingtalkfake.NewOpenAPI(t)
	gw := dingtalkfake.New(t, append([]dingtalkfake.Option{dingtalkfake.WithOpenAPI(api)}, gwOpts...)...)
	t.Cleanup(func() {
		for _, err := range gw.ProtocolErrors() {
			t.Errorf("stream protocol error: %v", err)
		}
	})
	env := &testEnv{
		gw:     gw,
		api:    api,
		rec:    newMemRecorder(),
		tokens: newMemTokens(),
		logs:   &logBuffer{},
		http:   &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second},
	}
	t.Cleanup(env.http.CloseIdleConnections)
	cfg := Config{
		ClientID:     gw.ClientID(),
		ClientSecret: gw.ClientSecret(),
		StreamHost:   gw.URL(),
		APIBase:      api.URL(),
	}
	deps := Deps{
		Recorder:   env.rec,
		Tokens:     env.tokens,
		Guides:     guidesNamed("guide01"),
		Logger:     slog.New(slog.NewTextHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HTTPClient: env.http,
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	c, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	c.backoffMin = 10 * time.Millisecond
	c.backoffMax = 100 * time.Millisecond
	c.recordRetry = time.Millisecond
	c.recordTimeout = 2 * time.Second
	c.drainTimeout = 300 * time.Millisecond
	env.c = c
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("client log:\n%s", env.logs.String())
		}
	})
	return env
}

// run starts Run and returns a func that stops it and checks it returned
// nil promptly. It is also called at cleanup.
func (e *testEnv) run(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("Run did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or 5s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkGoroutines waits for the goroutine count to fall back to base and
// fails with a dump of the goroutines if it does not.
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d goroutines, want at most %d: leaked?\n%s", runtime.NumGoroutine(), base, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// botMsgID returns the msgId inside the bot message frame messageID.
func botMsgID(t *testing.T, gw *dingtalkfake.Gateway, messageID string) string {
	t.Helper()
	f, ok := gw.Frame(messageID)
	if !ok {
		t.Fatalf("no frame %s", messageID)
	}
	m, _, err := decodeBot(f.Data)
	if err != nil {
		t.Fatal(err)
	}
	return m.DedupKey
}

func waitAck(t *testing.T, gw *dingtalkfake.Gateway, messageID string) dingtalkfake.Ack {
	t.Helper()
	ack, err := gw.WaitAck(testContext(t), messageID)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

var errDBDown = errors.New("database is down")

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
