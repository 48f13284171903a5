package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/api/openapitest"
	"github.com/scrmgw/scrmgw/gateway/httpserve"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// started runs Serve in the background and waits for /healthz.
type started struct {
	app  *App
	base string
	stop context.CancelFunc
	done chan error
}

func startServe(t *testing.T, cfg configs.Config) *started {
	t.Helper()
	return startServeWith(t, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
}

// startServeWith runs the gateway with log, its workflow engine on clock
// (nil: the wall clock) and opts, until the test ends, once it answers
// /healthz.
func startServeWith(t *testing.T, cfg configs.Config, log *slog.Logger, clock func() time.Time, opts ...Option) *started {
	t.Helper()
	cfg.HTTP.Addr = freeAddr(t)
	cfg.HTTP.ShutdownTimeout = 10 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Every answer of the admin API is checked against its OpenAPI
	// description.
	check := WithHTTPWrap(func(h http.Handler) http.Handler { return openapitest.Check(t, h) })
	a, err := New(ctx, cfg, log, append([]Option{check}, opts...)...)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	a.clock = clock
	s := &started{app: a, base: "http://" + cfg.HTTP.Addr, stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- a.Serve(ctx) }()
	t.Cleanup(func() {
		s.shutdown(t)
		a.Close()
	})
	// Migrating a fresh database takes seconds; on a loaded machine many.
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("Serve exited early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway did not answer /healthz: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *started) shutdown(t *testing.T) {
	s.stop()
	select {
	case err, ok := <-s.done:
		if ok && err != nil {
			t.Errorf("Serve returned %v", err)
		}
		if ok {
			close(s.done)
		}
	case <-time.After(20 * time.Second):
		t.Error("Serve did not return after shutdown")
	}
}

// putWorkflow puts a brand's workflow (YAML) through the API.
func putWorkflow(t *testing.T, s *started, token, brand, name, yaml string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", s.base+"/api/v1/workflows/"+name+"?brand="+brand, strings.NewReader(yaml))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func request(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// exerciseGateway checks what every deployment must do: health, a store
// created with the admin token reads back, 401 without it, metrics and the
// queue UI behind the admin token.
func exerciseGateway(t *testing.T, s *started, token string) {
	t.Helper()
	if code, body := request(t, "GET", s.base+"/readyz", "", ""); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/brands", token, `{"id":"acme","name":"ACME"}`); code != 201 {
		t.Fatalf("creating brand: %d %s", code, body)
	}
	if code, body := request(t, "POST", s.base+"/api/v1/stores", token, `{"id":"sh-1","name":"Shanghai","brands":["acme"],"lat":31.23,"lng":121.47}`); code != 201 {
		t.Fatalf("creating store: %d %s", code, body)
	}
	if code, body := request(t, "GET", s.base+"/api/v1/stores/sh-1", token, ""); code != 200 || !strings.Contains(body, `"name":"Shanghai"`) {
		t.Errorf("reading store back: %d %s", code, body)
	}
	if code, _ := request(t, "GET", s.base+"/api/v1/stores/sh-1", "", ""); code != 401 {
		t.Errorf("without a token: %d, want 401", code)
	}
	if code, body := request(t, "GET", s.base+"/metrics", "", ""); code != 200 || !strings.Contains(body, `scrmgw_http_requests_total{code="201",method="POST",route="/api/v1/stores"} 1`) {
		t.Errorf("/metrics = %d, lacks the request counter:\n%.2000s", code, body)
	}
	if code, _ := request(t, "GET", s.base+httpserve.QueueUIPath+"/", "", ""); code != 401 {
		t.Errorf("queue UI without a token: %d, want 401", code)
	}
	req, _ := http.NewRequest("GET", s.base+httpserve.QueueUIPath+"/api/queues", nil)
	req.SetBasicAuth("admin", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("queue UI API with the admin token: %d, want 200", resp.StatusCode)
	}
}

func TestServeZeroSetup(t *testing.T) {
	cfg := configs.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	s := startServe(t, cfg)
	tokenFile := filepath.Join(cfg.DataDir, "admin-token")
	fi, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatalf("admin token file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin token file mode %v, want 0600", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(tokenFile)
	token := strings.TrimSpace(string(raw))
	if s.app.mini == nil {
		t.Fatal("zero-setup mode did not start the in-process redis")
	}
	exerciseGateway(t, s, token)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "scrmgw.db")); err != nil {
		t.Errorf("sqlite database not under data dir: %v", err)
	}
}

func TestServeWithPostgresAndRedis(t *testing.T) {
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "integration-admin-token-0123"
	cfg.Security.PhoneKey = strings.Repeat("ab", 32)
	s := startServe(t, cfg)
	if s.app.mini != nil || s.app.Store.Dialect() != "postgres" {
		t.Fatalf("production config ran with in-process redis=%v, dialect %s", s.app.mini != nil, s.app.Store.Dialect())
	}
	exerciseGateway(t, s, cfg.AdminToken)

	// Queue workers run: a prune task enqueued on Redis removes old
	// processed inbox rows and keeps recent and pending ones.
	ctx := context.Background()
	old := time.Now().Add(-30 * 24 * time.Hour)
	for _, m := range []store.InboxMessage{
		{Channel: "wecom", DedupKey: "old-done", Payload: []byte("x"), State: store.InboxDone, CreatedAt: old},
		{Channel: "wecom", DedupKey: "old-pending", Payload: []byte("x"), State: store.InboxPending, CreatedAt: old},
		{Channel: "wecom", DedupKey: "new-done", Payload: []byte("x"), State: store.InboxDone, CreatedAt: time.Now()},
	} {
		if _, err := s.app.Store.RecordInbound(ctx, &m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.app.Queue.Enqueue(asynq.NewTask(TypePruneInbox, nil), asynq.Queue(queue.Low)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var keys []string
		for _, k := range []string{"old-done", "old-pending", "new-done"} {
			if _, err := s.app.Store.InboxByKey(ctx, "wecom", k); err == nil {
				keys = append(keys, k)
			}
		}
		if strings.Join(keys, ",") == "old-pending,new-done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inbox after prune task = %v, want [old-pending new-done]", keys)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestShutdownFinishesInFlightRequests sends a request whose body is still
// arriving when shutdown starts: it must complete and be written.
func TestShutdownFinishesInFlightRequests(t *testing.T) {
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.AdminToken = "inflight-admin-token-0123"
	s := startServe(t, cfg)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", s.base+"/api/v1/brands", pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+cfg.AdminToken)
	result := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- -1
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	io.WriteString(pw, `{"id":"late",`)
	time.Sleep(200 * time.Millisecond) // the request is now in flight
	s.stop()
	time.Sleep(200 * time.Millisecond)
	io.WriteString(pw, `"name":"Late"}`)
	pw.Close()
	if code := <-result; code != 201 {
		t.Fatalf("in-flight request during shutdown: status %d, want 201", code)
	}
	s.shutdown(t)
	if _, err := s.app.Store.Brand(context.Background(), "late"); err != nil {
		t.Errorf("in-flight write lost: %v", err)
	}
}

// TestBadTemplateStopsTheStart: a template naming an unknown variable is
// refused when the gateway starts, not when a message is sent.
func TestBadTemplateStopsTheStart(t *testing.T) {
	dir := t.TempDir()
	bad := "id: welcome\nlocales:\n  zh:\n    default: \"你好 {{.Member.Nmae}}\"\n"
	if err := os.WriteFile(filepath.Join(dir, "welcome.yaml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.TemplatesDir = dir
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		a.Close()
		t.Fatal("started with a template naming an unknown field")
	}
	if !strings.Contains(err.Error(), "welcome.yaml:4") || !strings.Contains(err.Error(), "Nmae") {
		t.Errorf("error %q does not point at welcome.yaml:4 and the field", err)
	}
}
