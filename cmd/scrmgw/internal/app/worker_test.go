package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// startWorker runs `scrmgw worker` (App.Worker) with cfg until the test
// ends, once its health listener (http.worker_addr) answers /healthz.
func startWorker(t *testing.T, cfg configs.Config) (*App, string) {
	t.Helper()
	cfg.HTTP.ShutdownTimeout = 10 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Worker(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Worker returned %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Worker did not return after shutdown")
		}
		a.Close()
	})
	base := "http://" + cfg.HTTP.WorkerAddr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return a, base
			}
		}
		select {
		case err := <-done:
			t.Fatalf("Worker exited early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker did not answer /healthz on %s: %v", base, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWorkerHealthAndMetrics: `scrmgw worker` with http.worker_addr
// answers /healthz, /readyz (database and Redis checked) and /metrics
// (behind the metrics token: runtime, inbox waiting, wake lateness), serves
// nothing else, and reports not ready once Redis is gone.
func TestWorkerHealthAndMetrics(t *testing.T) {
	const metricsToken = "worker-metrics-token-0123456789"
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = "worker-admin-token-0123456789"
	cfg.Security.PhoneKey = strings.Repeat("cd", 32)
	cfg.HTTP.MetricsToken = metricsToken
	cfg.HTTP.WorkerAddr = freeAddr(t)
	a, base := startWorker(t, cfg)

	code, body := request(t, "GET", base+"/readyz", "", "")
	var ready struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != 200 || !ready.Ready ||
		ready.Checks["database"] != "ok" || ready.Checks["redis"] != "ok" {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if code, _ := request(t, "GET", base+"/metrics", "", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %d, want 401", code)
	}
	// An acknowledged callback not yet processed (recorded, not queued:
	// the sweep would queue it) is waiting in the inbox.
	if _, err := a.Store.RecordInbound(context.Background(), &store.InboxMessage{Channel: "wecom", DedupKey: "worker-metrics-1", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	code, body = request(t, "GET", base+"/metrics", metricsToken, "")
	for _, want := range []string{"go_goroutines", "process_start_time_seconds", "\nscrmgw_inbox_waiting 1\n",
		"\nscrmgw_inbox_oldest_waiting_seconds ", "\nscrmgw_workflow_wake_lateness_seconds_count "} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics = %d, lacks %s:\n%.3000s", code, want, body)
		}
	}
	// A worker serves its probes and the scrape, not the API.
	if code, _ := request(t, "GET", base+"/api/v1/brands", cfg.AdminToken, ""); code != http.StatusNotFound {
		t.Errorf("worker answered the API: %d", code)
	}

	a.RDB.Close()
	code, body = request(t, "GET", base+"/readyz", "", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"redis":"unavailable"`) {
		t.Errorf("/readyz with Redis gone = %d %s, want 503 naming redis", code, body)
	}
}
