package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Rate
		err  bool
	}{
		{in: "50/s", want: Rate{50, time.Second}},
		{in: "600/min", want: Rate{600, time.Minute}},
		{in: "150000 / h", want: Rate{150000, time.Hour}},
		{in: "off", want: Unlimited},
		{in: "50", err: true},
		{in: "50/day", err: true},
		{in: "-1/s", err: true},
		{in: "x/s", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRate(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("ParseRate(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
}

// redisClient returns a client of a Redis database of the test's own.
func redisClient(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLimiterSharedAcrossReplicas has two replicas (two clients, two
// Limiters) reserve at once: the slots they get, read on the Redis clock,
// are one interval apart however the calls interleave.
func TestLimiterSharedAcrossReplicas(t *testing.T) {
	url := storetest.RedisURL(t)
	ctx := context.Background()
	rates := map[string]Rate{"wecom": {50, time.Second}}
	var lims []*Limiter
	for range 2 {
		opt, _ := redis.ParseURL(url)
		c := redis.NewClient(opt)
		t.Cleanup(func() { c.Close() })
		lims = append(lims, NewLimiter(c, LimiterOptions{Rates: rates, CriticalShare: -1}))
	}
	const each = 60
	var mu sync.Mutex
	var slots []int64
	var wg sync.WaitGroup
	for i := range 2 * each {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, slot, err := lims[i%2].reserve(ctx, "wecom", false, time.Time{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			slots = append(slots, slot)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(slots)
	if len(slots) != 2*each {
		t.Fatalf("%d slots, want %d", len(slots), 2*each)
	}
	const interval = 20_000 // µs at 50/s
	for i := 1; i < len(slots); i++ {
		if d := slots[i] - slots[i-1]; d < interval {
			t.Fatalf("slots %d and %d are %dµs apart, want at least %dµs: two sends in one slot", i-1, i, d, interval)
		}
	}
	// Unlimited channels take no slot.
	if w, err := lims[0].Reserve(ctx, "webhook", false); err != nil || w != 0 {
		t.Fatalf("unlimited channel: wait %v, %v", w, err)
	}
}

// TestLimiterCriticalLane: welcomes on the critical queue do not wait
// behind a backlog of other sends.
func TestLimiterCriticalLane(t *testing.T) {
	ctx := context.Background()
	l := NewLimiter(redisClient(t), LimiterOptions{Rates: map[string]Rate{"wecom": {10, time.Second}}})
	var last time.Duration
	for range 20 {
		w, err := l.Reserve(ctx, "wecom", false)
		if err != nil {
			t.Fatal(err)
		}
		last = w
	}
	// 8/s for the default lane: the 20th send is about 2.4 s away.
	if last < 2*time.Second {
		t.Fatalf("20th normal send waits %v, want about 2.4s (8/s)", last)
	}
	w, err := l.Reserve(ctx, "wecom", true)
	if err != nil || w > 100*time.Millisecond {
		t.Fatalf("critical send behind a backlog waits %v (%v), want no wait", w, err)
	}
}

// TestLimiterCriticalLaneWindowPace: with call windows, welcomes are
// spaced at the shortest window's pace when it is faster than the rate
// (WeCom: 10,000 a minute is 166/s against 40/s), so a crowd of 150 new
// contacts a second is welcomed as it comes; the others keep their
// share of the rate.
func TestLimiterCriticalLaneWindowPace(t *testing.T) {
	ctx := context.Background()
	l := NewLimiter(redisClient(t), LimiterOptions{Rates: map[string]Rate{"wecom": {40, time.Second}},
		Windows: map[string][]Rate{"wecom": {{N: 150_000, Per: time.Hour}, {N: 10_000, Per: time.Minute}}},
		Prefix:  "test:" + t.Name() + ":" + time.Now().Format("150405.000000") + ":"})
	var last time.Duration
	start := time.Now()
	for range 150 {
		w, err := l.Reserve(ctx, "wecom", true)
		if err != nil {
			t.Fatal(err)
		}
		last = w
	}
	// 150 at 166.7/s: the last slot is 0.89 s after the first (3.7 s
	// at 40/s). A new minute may begin meanwhile, moving nothing.
	if span := time.Since(start) + last; span < 850*time.Millisecond || last > 1500*time.Millisecond {
		t.Errorf("150th welcome waits %v, %v after the first; want about 0.89s (10,000/min)", last, span)
	}
	start = time.Now()
	for range 32 {
		last, _ = l.Reserve(ctx, "wecom", false)
	}
	// The others: 32/s (40/s less the critical share).
	if span := time.Since(start) + last; span < 900*time.Millisecond || last > 1500*time.Millisecond {
		t.Errorf("32nd other send waits %v, %v after the first; want about 0.97s (32/s)", last, span)
	}
}

// limitedSender is a Sender of the channel wecom (a slowChannel) on a
// queuetest queue, keeping lim's rates; sends over them wait in the
// handler at most maxWait.
func limitedSender(s *store.Store, lim RateLimiter, maxWait time.Duration) (*Sender, *slowChannel, *queuetest.Queue) {
	ch := &slowChannel{sent: map[string][]time.Time{}}
	reg := adapters.NewRegistry()
	reg.Register(ch)
	q := queuetest.New()
	snd := NewSender(s, reg, q, discard)
	snd.Limit(lim, maxWait)
	return snd, ch, q
}

// slowChannel records when each message went out.
type slowChannel struct {
	mu   sync.Mutex
	sent map[string][]time.Time
}

func (c *slowChannel) Name() string { return "wecom" }

func (c *slowChannel) Send(_ context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent[m.IdempotencyKey] = append(c.sent[m.IdempotencyKey], time.Now())
	return &adapters.Receipt{ExternalID: "x-" + m.IdempotencyKey}, nil
}

func (c *slowChannel) times() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []time.Time
	for _, ts := range c.sent {
		all = append(all, ts...)
	}
	slices.SortFunc(all, func(a, b time.Time) int { return a.Compare(b) })
	return all
}

// TestSenderDefersOverTheRate drives SendTask by hand: a send over the
// rate is queued again for its slot without an attempt, a failure or a
// send; the queued task sends it at its slot, once however often it runs.
func TestSenderDefersOverTheRate(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		// 4/s: a slot every 250 ms; wait in the handler at most 50 ms.
		snd, ch, q := limitedSender(s, NewLimiter(redisClient(t), LimiterOptions{Rates: map[string]Rate{"wecom": {4, time.Second}}, CriticalShare: -1}),
			50*time.Millisecond)
		metrics := NewMetrics()
		snd.Measure(metrics)
		var rows []*store.OutboxMessage
		for i := range 3 {
			row, err := snd.Send(ctx, "wecom", &adapters.Outbound{IdempotencyKey: fmt.Sprintf("k%d", i), To: "wm1", Kind: "text", Text: "hi"}, Meta{})
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, row)
		}
		for _, task := range q.Drain() {
			if err := snd.SendTask(ctx, task); err != nil {
				t.Fatalf("a send over the rate must not fail (a failure is a retry): %v", err)
			}
		}
		if got := len(ch.times()); got != 1 {
			t.Fatalf("%d messages sent at once, want 1 (the others wait for their slots)", got)
		}
		deferred := q.Drain()
		if len(deferred) != 2 {
			t.Fatalf("%d tasks queued again, want 2", len(deferred))
		}
		for _, r := range rows[1:] {
			got, _ := s.Outbox(ctx, r.ID)
			atts, _ := s.SendAttempts(ctx, r.ID)
			if got.State != store.OutboxPending || got.Attempts != 0 || len(atts) != 0 {
				t.Fatalf("deferred row: state %s, %d attempts, %d attempt records; want pending, 0, 0", got.State, got.Attempts, len(atts))
			}
			if !got.UpdatedAt.After(time.Now()) {
				t.Errorf("deferred row's updated_at %v is not its (future) slot: the sweep would queue it again", got.UpdatedAt)
			}
		}
		// Each queued task runs twice at once (a duplicate delivery): one send each.
		var wg sync.WaitGroup
		for _, task := range deferred {
			var pl sendPayload
			json.Unmarshal(task.Payload(), &pl)
			if pl.Slot == 0 {
				t.Fatalf("queued task carries no slot: %s", task.Payload())
			}
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := snd.SendTask(ctx, task); err != nil {
						t.Errorf("running the deferred task: %v", err)
					}
				}()
			}
		}
		wg.Wait()
		times := ch.times()
		if len(times) != 3 {
			t.Fatalf("%d sends, want 3", len(times))
		}
		for k, ts := range ch.sent {
			if len(ts) != 1 {
				t.Errorf("%s sent %d times", k, len(ts))
			}
		}
		// Slots are 250 ms apart on the Redis clock; what the channel sees
		// also varies with each send's database work.
		for i := 1; i < len(times); i++ {
			if d := times[i].Sub(times[i-1]); d < 150*time.Millisecond {
				t.Errorf("sends %d and %d went %v apart, want about 250ms (4/s)", i-1, i, d)
			}
		}
		for _, r := range rows {
			got, _ := s.Outbox(ctx, r.ID)
			if got.State != store.OutboxSent || got.Attempts != 1 {
				t.Errorf("row %d: %s after %d attempts, want sent after 1", r.ID, got.State, got.Attempts)
			}
		}
		// Three slots reserved: one at once, two 250 and 500 ms away,
		// each wait less the time its task took to run again (on a
		// loaded machine a deferred task may run after its slot and
		// wait nothing): three waits, at most 0.75 s in all.
		var h dto.Metric
		if err := metrics.RateWait.WithLabelValues("wecom").(prometheus.Histogram).Write(&h); err != nil {
			t.Fatal(err)
		}
		if n, sum := h.GetHistogram().GetSampleCount(), h.GetHistogram().GetSampleSum(); n != 3 || sum > 0.8 {
			t.Errorf("scrmgw_send_rate_wait_seconds{wecom}: %d waits summing to %.3fs, want 3 summing to at most 0.75s", n, sum)
		}
	})
}

// TestSenderRateLimitRealAsynq runs deliveries through a real asynq server
// with MaxRetry 0: a send over the rate that counted as a failed attempt
// would be archived and never sent. Every message goes once, and no
// second holds more sends than the rate allows (without the limit, all
// 25 go within a second).
func TestSenderRateLimitRealAsynq(t *testing.T) {
	s := storetest.Open(t, "postgres")
	ctx := context.Background()
	url := storetest.RedisURL(t)
	redisOpt, err := asynq.ParseRedisURI(url)
	if err != nil {
		t.Fatal(err)
	}
	client := asynq.NewClient(redisOpt)
	defer client.Close()
	inspector := asynq.NewInspector(redisOpt)
	defer inspector.Close()
	ch := &slowChannel{sent: map[string][]time.Time{}}
	reg := adapters.NewRegistry()
	reg.Register(ch)
	snd := NewSender(s, reg, client, discard)
	const rate, n = 10, 25
	snd.Limit(NewLimiter(redisClient(t), LimiterOptions{Rates: map[string]Rate{"wecom": {rate, time.Second}}, CriticalShare: -1}), 0)
	srv := asynq.NewServer(redisOpt, asynq.Config{Concurrency: 20, Queues: map[string]int{queue.Default: 1},
		DelayedTaskCheckInterval: time.Second, TaskCheckInterval: 50 * time.Millisecond, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc(TypeSend, snd.SendTask)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	for i := range n {
		m := &adapters.Outbound{IdempotencyKey: fmt.Sprintf("m%d", i), To: "wm", Kind: "text", Text: "hi"}
		payload, _ := json.Marshal(m)
		row := &store.OutboxMessage{IdempotencyKey: m.IdempotencyKey, Channel: "wecom", Recipient: "wm", Kind: "text", Payload: payload}
		if _, err := s.AddOutbox(ctx, row); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(queue.IDPayload{ID: row.ID})
		if _, err := client.Enqueue(asynq.NewTask(TypeSend, b), asynq.MaxRetry(0), asynq.Queue(queue.Default)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(ch.times()) < n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a second send of anything would show now
	times := ch.times()
	if len(times) != n {
		archived, _ := inspector.ListArchivedTasks(queue.Default)
		t.Fatalf("%d of %d messages sent (%d archived tasks)", len(times), n, len(archived))
	}
	for k, ts := range ch.sent {
		if len(ts) != 1 {
			t.Errorf("%s sent %d times", k, len(ts))
		}
	}
	// Sliding one-second windows: at most the rate, plus one for the
	// window's edges and one for the jitter of each send's database work
	// between its slot and the channel (slots themselves are exact).
	for i := range times {
		j := i
		for j < len(times) && times[j].Sub(times[i]) < time.Second {
			j++
		}
		if j-i > rate+2 {
			t.Fatalf("%d sends within one second from send %d, want at most %d", j-i, i, rate+2)
		}
	}
	if info, err := inspector.GetQueueInfo(queue.Default); err == nil && (info.Archived > 0 || info.Retry > 0) {
		t.Errorf("queue has %d archived and %d retry tasks, want none", info.Archived, info.Retry)
	}
}

// TestSenderShutdownWhileWaiting: a send waiting in its worker for its
// slot when shutdown starts goes back to the queue with its slot, neither
// sent early nor failed.
func TestSenderShutdownWhileWaiting(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	ch := &slowChannel{sent: map[string][]time.Time{}}
	reg := adapters.NewRegistry()
	reg.Register(ch)
	q := queuetest.New()
	snd := NewSender(s, reg, q, discard)
	snd.Limit(NewLimiter(redisClient(t), LimiterOptions{Rates: map[string]Rate{"wecom": {1, time.Second}}, CriticalShare: -1}), 2*time.Second)
	ctx := context.Background()
	for _, k := range []string{"first", "second"} {
		if _, err := snd.Send(ctx, "wecom", &adapters.Outbound{IdempotencyKey: k, To: "wm", Kind: "text", Text: "hi"}, Meta{}); err != nil {
			t.Fatal(err)
		}
	}
	tasks := q.Drain()
	if err := snd.SendTask(ctx, tasks[0]); err != nil {
		t.Fatal(err)
	}
	stopping, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := snd.SendTask(stopping, tasks[1]); err != nil {
		t.Fatalf("shutdown while waiting: %v, want nil (not a failed attempt)", err)
	}
	if n := len(ch.times()); n != 1 {
		t.Fatalf("%d sent, want only the first", n)
	}
	again := q.Drain()
	if len(again) != 1 {
		t.Fatalf("%d tasks queued again, want 1", len(again))
	}
	var pl sendPayload
	json.Unmarshal(again[0].Payload(), &pl)
	if d := time.Until(time.UnixMilli(pl.Slot)); d < 500*time.Millisecond {
		t.Fatalf("requeued with its slot %v from now, want the slot about 1s after the first send", d)
	}
	if err := snd.SendTask(ctx, again[0]); err != nil {
		t.Fatal(err)
	}
	if n := len(ch.times()); n != 2 {
		t.Fatalf("%d sent after the requeued task ran, want 2", n)
	}
}

// TestLimiterRatesFromSpecs: each channel instance is limited to its
// spec's default rate unless the configuration names one; a spec without
// a rate leaves its channel unlimited.
func TestLimiterRatesFromSpecs(t *testing.T) {
	chs := adapters.SpecList{
		{Name: "wecom", Rate: adapters.Rate{N: 40, Per: time.Second}},
		{Name: "wecom:north", Rate: adapters.Rate{N: 40, Per: time.Second}},
		{Name: "dingtalk", Rate: adapters.Rate{N: 20, Per: time.Second}},
		{Name: "webhook"},
	}
	l := NewLimiter(redisClient(t), LimiterOptions{Channels: chs, Rates: map[string]Rate{"wecom:north": {5, time.Minute}}})
	if got := l.Rates(); got != "dingtalk=20/s wecom:north=5/min wecom=40/s" {
		t.Errorf("rates = %q", got)
	}
	if l.Rate("webhook").Limited() {
		t.Errorf("webhook limited: %v", l.Rate("webhook"))
	}
}
