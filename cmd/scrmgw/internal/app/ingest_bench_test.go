package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// BenchmarkEventIngest posts CloudEvents batches of 1,000 purchases to
// POST /api/v1/events on a gateway running HTTP only (as `serve
// --workers=false`), into PostgreSQL with deduplication: one batch in ten
// repeats the previous batch's events. One op is one batch; the metric
// events/s counts accepted and duplicate events answered 200.
//
//	SCRMGW_TEST_DATABASE_URL=... SCRMGW_TEST_REDIS_URL=... \
//	  go test -run '^$' -bench EventIngest -benchtime 300x ./cmd/scrmgw/internal/app/
func BenchmarkEventIngest(b *testing.B) {
	cfg := configs.Default()
	cfg.DataDir = b.TempDir()
	cfg.Database.URL = storetest.URL(b, "postgres")
	cfg.Redis.URL = storetest.RedisURL(b)
	cfg.AdminToken = "ingest-bench-admin-token-01"
	cfg.Security.PhoneKey = strings.Repeat("78", 32)
	cfg.HTTP.Addr = freeAddr(b)
	cfg.Log.Level = "error"
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.ServeHTTPOnly(ctx) }()
	defer func() {
		cancel()
		<-done
		a.Close()
	}()
	base := "http://" + cfg.HTTP.Addr
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("gateway did not start")
		}
	}
	if code, body := benchRequest(base+"/api/v1/brands", cfg.AdminToken, "application/json", []byte(`{"id":"acme","name":"ACME"}`)); code != 201 {
		b.Fatalf("brand: %d %s", code, body)
	}
	const perBatch = 1000
	batches := make([][]byte, b.N)
	for i := range batches {
		n := i
		if i%10 == 9 {
			n = i - 1 // a sender retrying the previous batch
		}
		var buf bytes.Buffer
		buf.WriteByte('[')
		for j := 0; j < perBatch; j++ {
			if j > 0 {
				buf.WriteByte(',')
			}
			id := n*perBatch + j
			fmt.Fprintf(&buf, `{"specversion":"1.0","id":"e-%d","source":"/pos/sh-%d","type":"purchase.completed","brand":"acme",`+
				`"data":{"member":{"phone":"+86138%08d"},"order_id":"SO-%d","store":"sh-%d","items":[{"sku":"CL-100","qty":1,"price":"129.00"}]}}`,
				id, id%200, id%5000000, id, id%200)
		}
		buf.WriteByte(']')
		batches[i] = buf.Bytes()
	}
	const clients = 4
	var next, events atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(batches) {
					return
				}
				code, body := benchRequest(base+"/api/v1/events", cfg.AdminToken, "application/cloudevents-batch+json", batches[i])
				if code != 200 {
					b.Errorf("batch %d: %d %s", i, code, body)
					return
				}
				events.Add(perBatch)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(events.Load())/elapsed.Seconds(), "events/s")
}

var benchClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

func benchRequest(url, token, contentType string, body []byte) (int, string) {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := benchClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
