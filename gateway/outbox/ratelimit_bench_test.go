package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// BenchmarkLimiterReserve is the cost of one reservation: one script call
// on Redis, from 16 goroutines.
func BenchmarkLimiterReserve(b *testing.B) {
	l := NewLimiter(redisClient(b), LimiterOptions{Rates: map[string]Rate{"wecom": {1_000_000, time.Second}}, CriticalShare: -1})
	ctx := context.Background()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Reserve(ctx, "wecom", false); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reserves/s")
}

// BenchmarkSenderUnderLimit sends b.N outbox messages through SendTask
// (claim, channel, finish, on PostgreSQL) from 64 workers with the
// channel limited to rate/s, and without a limit as the baseline of the
// same run. sends/s is what went out; of_rate is sends/s over the rate
// (1.00: the limit is used in full and never exceeded).
func BenchmarkSenderUnderLimit(b *testing.B) {
	for _, rate := range []int{0, 200, 500} {
		name := "unlimited"
		if rate > 0 {
			name = fmt.Sprintf("rate=%d/s", rate)
		}
		b.Run(name, func(b *testing.B) { benchSender(b, rate) })
	}
}

type countChannel struct{ n atomic.Int64 }

func (c *countChannel) Name() string { return "wecom" }
func (c *countChannel) Send(context.Context, *adapters.Outbound) (*adapters.Receipt, error) {
	c.n.Add(1)
	return &adapters.Receipt{}, nil
}

func benchSender(b *testing.B, rate int) {
	s := storetest.Open(b, "postgres")
	ctx := context.Background()
	ch := &countChannel{}
	reg := adapters.NewRegistry()
	reg.Register(ch)
	q := queuetest.New()
	snd := NewSender(s, reg, q, discard)
	rates := map[string]Rate{"wecom": Unlimited}
	if rate > 0 {
		rates["wecom"] = Rate{rate, time.Second}
	}
	// Every wait happens in the handler, as in a worker pool that keeps up.
	snd.Limit(NewLimiter(redisClient(b), LimiterOptions{Rates: rates, CriticalShare: -1}), time.Hour)
	ids := make([]int64, b.N)
	for i := range b.N {
		row, err := snd.Send(ctx, "wecom", &adapters.Outbound{IdempotencyKey: fmt.Sprintf("b%d", i), To: "wm", Kind: "text", Text: "hi"}, Meta{})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = row.ID
	}
	tasks := q.Drain()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(tasks)) {
					return
				}
				if err := snd.SendTask(ctx, tasks[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if got := ch.n.Load(); got != int64(b.N) {
		b.Fatalf("%d sent, want %d", got, b.N)
	}
	perSec := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "sends/s")
	if rate > 0 {
		b.ReportMetric(perSec/float64(rate), "of_rate")
	}
	var left int64
	for _, id := range ids {
		if m, _ := s.Outbox(ctx, id); m.State != store.OutboxSent {
			left++
		}
	}
	if left > 0 {
		b.Fatalf("%d messages not sent", left)
	}
}

// BenchmarkSenderDeferredRealAsynq sends b.N messages through a real
// asynq server (20 workers) with the channel limited to 100/s and no wait
// in the worker (send.max_wait 1ms): almost every send goes back to the
// queue for its slot, the path a backlog takes. sends/s and of_rate as
// above; none may fail or go twice.
func BenchmarkSenderDeferredRealAsynq(b *testing.B) {
	const rate = 100
	s := storetest.Open(b, "postgres")
	ctx := context.Background()
	redisOpt, err := asynq.ParseRedisURI(storetest.RedisURL(b))
	if err != nil {
		b.Fatal(err)
	}
	client := asynq.NewClient(redisOpt)
	defer client.Close()
	ch := &countChannel{}
	reg := adapters.NewRegistry()
	reg.Register(ch)
	snd := NewSender(s, reg, client, discard)
	snd.Limit(NewLimiter(redisClient(b), LimiterOptions{Rates: map[string]Rate{"wecom": {rate, time.Second}}, CriticalShare: -1}), time.Millisecond)
	var ids []int64
	for i := range b.N {
		m := &adapters.Outbound{IdempotencyKey: fmt.Sprintf("d%d", i), To: "wm", Kind: "text", Text: "hi"}
		payload, _ := json.Marshal(m)
		row := &store.OutboxMessage{IdempotencyKey: m.IdempotencyKey, Channel: "wecom", Recipient: "wm", Kind: "text", Payload: payload}
		if _, err := s.AddOutbox(ctx, row); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, row.ID)
	}
	srv := asynq.NewServer(redisOpt, asynq.Config{Concurrency: 20, Queues: map[string]int{queue.Default: 1},
		DelayedTaskCheckInterval: time.Second, TaskCheckInterval: 50 * time.Millisecond, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeSend, snd.SendTask)
	b.ResetTimer()
	for _, id := range ids {
		p, _ := json.Marshal(queue.IDPayload{ID: id})
		if _, err := client.Enqueue(asynq.NewTask(TypeSend, p), asynq.MaxRetry(0), asynq.Queue(queue.Default)); err != nil {
			b.Fatal(err)
		}
	}
	if err := srv.Start(mux); err != nil {
		b.Fatal(err)
	}
	for ch.n.Load() < int64(b.N) {
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	srv.Shutdown()
	perSec := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "sends/s")
	b.ReportMetric(perSec/rate, "of_rate")
	time.Sleep(200 * time.Millisecond)
	if got := ch.n.Load(); got != int64(b.N) {
		b.Fatalf("%d sends, want %d", got, b.N)
	}
}
