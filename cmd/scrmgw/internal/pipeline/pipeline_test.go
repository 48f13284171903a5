package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeQueue records enqueued tasks and, like asynq, refuses a TaskID that
// is already queued.
type fakeQueue struct {
	mu    sync.Mutex
	ids   map[string]bool
	tasks []*asynq.Task
	queue map[string]string
	fail  error
}

func newFakeQueue() *fakeQueue { return &fakeQueue{ids: map[string]bool{}, queue: map[string]string{}} }

func (q *fakeQueue) EnqueueContext(_ context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return nil, q.fail
	}
	var id, queue string
	for _, o := range opts {
		switch o.Type() {
		case asynq.TaskIDOpt:
			id = o.Value().(string)
		case asynq.QueueOpt:
			queue = o.Value().(string)
		}
	}
	if q.ids[id] {
		return nil, asynq.ErrTaskIDConflict
	}
	q.ids[id] = true
	q.queue[id] = queue
	q.tasks = append(q.tasks, t)
	return &asynq.TaskInfo{ID: id}, nil
}

func (q *fakeQueue) setFail(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.fail = err
}

func (q *fakeQueue) drain() []*asynq.Task {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.tasks
	q.tasks = nil
	q.ids = map[string]bool{}
	return out
}

func startRecorder(t *testing.T, s *store.Store, q Enqueuer) *Recorder {
	return startRecorderWith(t, s, q, RecorderOptions{MaxBatch: 32, Linger: time.Millisecond})
}

func startRecorderWith(t *testing.T, s *store.Store, q Enqueuer, opts RecorderOptions) *Recorder {
	r := NewRecorder(s, q, discard, opts)
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	t.Cleanup(func() { cancel(); r.Wait() })
	return r
}

func TestRecorderCommitsBeforeReturningAndQueuesOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		q := newFakeQueue()
		r := startRecorder(t, s, q)
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				key := fmt.Sprintf("msg:%d", i%100) // every delivery twice
				in := &adapters.Inbound{Channel: "wecom", DedupKey: key, Kind: "text", Text: "hi"}
				if err := r.Record(ctx, in); err != nil {
					errs <- err
					return
				}
				// Acknowledged means durable.
				if _, err := s.InboxByKey(ctx, "wecom", key); err != nil {
					errs <- fmt.Errorf("%s acknowledged but not in the inbox: %v", key, err)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		// Queued before Record returned: each delivery once, in batches.
		queued := map[int64]int{}
		tasks := q.drain()
		for _, task := range tasks {
			for _, id := range batchIDs(t, task) {
				queued[id]++
			}
		}
		if len(queued) != 100 {
			t.Errorf("%d deliveries queued, want 100", len(queued))
		}
		for id, n := range queued {
			if n != 1 {
				t.Errorf("inbox %d queued %d times", id, n)
			}
		}
		if len(tasks) >= 100 {
			t.Errorf("%d tasks for 100 deliveries recorded concurrently: not batched", len(tasks))
		}
	})
}

// batchIDs returns the inbox rows of a TypeInboxBatch task.
func batchIDs(t *testing.T, task *asynq.Task) []int64 {
	t.Helper()
	if task.Type() != TypeInboxBatch {
		t.Fatalf("task %s, want %s", task.Type(), TypeInboxBatch)
	}
	var pl idsPayload
	if err := json.Unmarshal(task.Payload(), &pl); err != nil {
		t.Fatal(err)
	}
	return pl.IDs
}

// New contacts (whose welcome code expires in 20 s) are queued apart from
// messages, on the critical queue, even when committed together.
func TestRecorderQueuesContactsOnCritical(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	q := newFakeQueue()
	// A long linger so that both deliveries share one commit.
	r := NewRecorder(s, q, discard, RecorderOptions{MaxBatch: 2, Linger: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	t.Cleanup(func() { cancel(); r.Wait() })
	var wg sync.WaitGroup
	for _, in := range []*adapters.Inbound{
		{Channel: "wecom", DedupKey: "evt:1", Kind: "event", Event: EventContactAdded},
		{Channel: "wecom", DedupKey: "msg:1", Kind: "text", Text: "hi"},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Record(context.Background(), in); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	q.mu.Lock()
	byQueue := map[string]int{}
	for _, queue := range q.queue {
		byQueue[queue]++
	}
	q.mu.Unlock()
	if byQueue[QueueCritical] != 1 || byQueue[QueueDefault] != 1 || len(q.drain()) != 2 {
		t.Errorf("tasks by queue = %v, want one critical and one default", byQueue)
	}
}

func TestRecorderAcknowledgesWhenQueueIsDown(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		q := newFakeQueue()
		q.setFail(errors.New("redis down"))
		// The recorder's own retry waits an hour here: the sweep is what
		// this test is about.
		r := startRecorderWith(t, s, q, RecorderOptions{MaxBatch: 32, Linger: time.Millisecond, RetryEvery: time.Hour})
		ctx := context.Background()
		contact := &adapters.Inbound{Channel: "wecom", DedupKey: "evt:1", Kind: "event", Event: EventContactAdded}
		if err := r.Record(ctx, contact); err != nil {
			t.Fatalf("Record with the queue down: %v (the row is durable; it must be acknowledged)", err)
		}
		q.setFail(nil)
		if err := Sweep(ctx, s, q, 0, discard); err != nil {
			t.Fatal(err)
		}
		if tasks := q.drain(); len(tasks) != 1 || tasks[0].Type() != TypeProcessInbox {
			t.Fatalf("sweep queued %v, want one inbox task", tasks)
		}
		// On the queue the recorder uses for a new contact: a TaskID is
		// unique per queue only.
		for _, queue := range q.queue {
			if queue != QueueCritical {
				t.Errorf("sweep queued the new contact on %q, want %q", queue, QueueCritical)
			}
		}
	})
}

// TestRecorderRetriesWhenQueueReturns: batches committed while Redis was
// away are queued by the recorder itself within a retry interval of its
// return, oldest first, each once, without waiting for the sweep.
func TestRecorderRetriesWhenQueueReturns(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		q := newFakeQueue()
		q.setFail(errors.New("redis down"))
		r := startRecorderWith(t, s, q, RecorderOptions{MaxBatch: 32, Linger: time.Millisecond, RetryEvery: 20 * time.Millisecond})
		ctx := context.Background()
		for i := range 5 {
			msg := &adapters.Inbound{Channel: "wecom", DedupKey: fmt.Sprintf("msg:%d", i), Kind: "text", Text: "hi"}
			if err := r.Record(ctx, msg); err != nil {
				t.Fatalf("Record with the queue down: %v", err)
			}
		}
		time.Sleep(100 * time.Millisecond) // retries fail meanwhile
		if n := r.Held(); n != 5 {
			t.Fatalf("held %d deliveries while the queue is down, want 5", n)
		}
		q.setFail(nil)
		deadline := time.Now().Add(5 * time.Second)
		for r.Held() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := r.Held(); n != 0 {
			t.Fatalf("still held after the queue came back: %d", n)
		}
		tasks := q.drain()
		var ids []int64
		for _, task := range tasks {
			if task.Type() != TypeInboxBatch {
				t.Fatalf("queued %s, want %s", task.Type(), TypeInboxBatch)
			}
			var pl idsPayload
			if err := json.Unmarshal(task.Payload(), &pl); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, pl.IDs...)
		}
		if len(ids) != 5 || !slices.IsSorted(ids) {
			t.Fatalf("queued inbox ids %v, want the 5 deliveries once, oldest first", ids)
		}
	})
}

func TestRecorderStops(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	r := NewRecorder(s, newFakeQueue(), discard, RecorderOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	cancel()
	r.Wait()
	if err := r.Record(context.Background(), &adapters.Inbound{Channel: "wecom", DedupKey: "x"}); !errors.Is(err, ErrStopped) {
		t.Errorf("Record after stop = %v, want ErrStopped", err)
	}
}

func TestProcessorHandlesOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		q := newFakeQueue()
		r := startRecorder(t, s, q)
		p := NewProcessor(s, adapters.NewRegistry(), discard)
		calls := 0
		failNext := true
		p.On(OnMessage, HandlerFunc(func(ctx context.Context, in *adapters.Inbound) error {
			calls++
			if failNext {
				failNext = false
				return errors.New("transient")
			}
			if in.Text != "hello" {
				t.Errorf("handler got %+v", in)
			}
			return nil
		}))
		if err := r.Record(ctx, &adapters.Inbound{Channel: "wecom", DedupKey: "msg:1", Kind: "text", Text: "hello"}); err != nil {
			t.Fatal(err)
		}
		tasks := q.drain()
		if len(tasks) != 1 {
			t.Fatalf("queued %d tasks", len(tasks))
		}
		// The batch task becomes the row's own task.
		if err := r.BatchTask(ctx, tasks[0]); err != nil {
			t.Fatal(err)
		}
		if tasks = q.drain(); len(tasks) != 1 || tasks[0].Type() != TypeProcessInbox {
			t.Fatalf("batch task queued %v, want one %s task", tasks, TypeProcessInbox)
		}
		if err := p.ProcessTask(ctx, tasks[0]); err == nil || errors.Is(err, asynq.SkipRetry) {
			t.Fatalf("failing handler: err = %v, want a retryable error", err)
		}
		for i := 0; i < 3; i++ { // the retry, then duplicate deliveries
			if err := p.ProcessTask(ctx, tasks[0]); err != nil {
				t.Fatalf("attempt %d: %v", i, err)
			}
		}
		if calls != 2 {
			t.Errorf("handler ran %d times, want 2 (one failure, one success)", calls)
		}
		row, _ := s.InboxByKey(ctx, "wecom", "msg:1")
		if row.State != store.InboxDone || row.Attempts != 1 {
			t.Errorf("inbox row = %s after %d failed attempts", row.State, row.Attempts)
		}
		if err := p.ProcessTask(ctx, asynq.NewTask(TypeProcessInbox, []byte("nonsense"))); !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("bad payload: %v, want SkipRetry", err)
		}
	})
}

// A batch task queues each row's own task, with the TaskID the sweep
// uses: a row the sweep queued meanwhile is not queued twice, so no row
// is ever handled by two tasks at once.
func TestBatchTaskQueuesEachRowOnce(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	q := newFakeQueue()
	r := NewRecorder(s, q, discard, RecorderOptions{})
	ctx := context.Background()
	b, _ := json.Marshal(idsPayload{IDs: []int64{11, 12, 13}})
	batch := asynq.NewTask(TypeInboxBatch, b)
	if err := enqueueID(ctx, q, TypeProcessInbox, 12, QueueDefault); err != nil { // the sweep got there first
		t.Fatal(err)
	}
	if err := r.BatchTask(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, task := range q.drain() {
		var pl idPayload
		if task.Type() != TypeProcessInbox || json.Unmarshal(task.Payload(), &pl) != nil {
			t.Fatalf("queued %s %s", task.Type(), task.Payload())
		}
		got = append(got, pl.ID)
	}
	if diff := cmp.Diff([]int64{12, 11, 13}, got); diff != "" {
		t.Errorf("rows queued (-want +got):\n%s", diff)
	}
	q.fail = errors.New("redis down")
	if err := r.BatchTask(ctx, batch); err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("batch with the queue down: %v, want a retryable error", err)
	}
	q.fail = nil
	if err := r.BatchTask(ctx, asynq.NewTask(TypeInboxBatch, []byte(`{"ids":[]}`))); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("empty batch: %v, want SkipRetry", err)
	}
}

// fakeChannel is a Channel whose Send fails as told.
type fakeChannel struct {
	mu    sync.Mutex
	sent  []*adapters.Outbound
	fails []error
}

func (c *fakeChannel) Name() string { return "fake" }

func (c *fakeChannel) Send(_ context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.fails) > 0 {
		err := c.fails[0]
		c.fails = c.fails[1:]
		return nil, err
	}
	c.sent = append(c.sent, m)
	return &adapters.Receipt{ExternalID: fmt.Sprintf("ext-%d", len(c.sent))}, nil
}

func TestSenderSendsOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ch := &fakeChannel{fails: []error{&adapters.APIError{Channel: "fake", Code: 45009, Kind: adapters.ErrRateLimited}}}
		reg := adapters.NewRegistry()
		reg.Register(ch)
		q := newFakeQueue()
		snd := NewSender(s, reg, q, discard)
		m := &adapters.Outbound{IdempotencyKey: "welcome:evt:1", To: "wm1", Kind: "text", Text: "欢迎"}
		row, err := snd.Send(ctx, "fake", m, OutboxMeta{Queue: QueueCritical})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := snd.Send(ctx, "fake", m, OutboxMeta{}); err != nil { // the same message again
			t.Fatal(err)
		}
		tasks := q.drain()
		if len(tasks) != 1 {
			t.Fatalf("queued %d send tasks, want 1", len(tasks))
		}
		if err := snd.SendTask(ctx, tasks[0]); !errors.Is(err, adapters.ErrRateLimited) {
			t.Fatalf("rate-limited send: %v, want a retryable ErrRateLimited", err)
		}
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ { // the retry and duplicates, at once
			wg.Add(1)
			go func() { defer wg.Done(); snd.SendTask(ctx, tasks[0]) }()
		}
		wg.Wait()
		if len(ch.sent) != 1 || ch.sent[0].Text != "欢迎" {
			t.Fatalf("channel got %d messages, want exactly 1", len(ch.sent))
		}
		got, _ := s.Outbox(ctx, row.ID)
		if got.State != store.OutboxSent || got.ExternalID != "ext-1" || got.Attempts != 2 {
			t.Errorf("outbox row = %s ext %q after %d attempts", got.State, got.ExternalID, got.Attempts)
		}

		ch.fails = []error{&adapters.APIError{Channel: "fake", Code: 84061, Kind: adapters.ErrInvalidRecipient}}
		bad, _ := snd.Send(ctx, "fake", &adapters.Outbound{IdempotencyKey: "k2", To: "gone", Text: "x"}, OutboxMeta{})
		err = snd.SendTask(ctx, q.drain()[0])
		if !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("invalid recipient: %v, want SkipRetry", err)
		}
		got, _ = s.Outbox(ctx, bad.ID)
		if got.State != store.OutboxFailed || !strings.Contains(got.LastError, "84061") {
			t.Errorf("failed row = %s %q", got.State, got.LastError)
		}
	})
}

// taskChannel is a channel whose sends complete later, like a WeCom
// message task.
type taskChannel struct {
	fakeChannel
	delivery adapters.Delivery
}

func (c *taskChannel) Name() string { return "tasks" }

func (c *taskChannel) Send(ctx context.Context, m *adapters.Outbound) (*adapters.Receipt, error) {
	r, err := c.fakeChannel.Send(ctx, m)
	if r != nil {
		r.Pending = true
	}
	return r, err
}

func (c *taskChannel) CheckDelivery(_ context.Context, _ *adapters.Outbound, _ string) (adapters.Delivery, string, error) {
	return c.delivery, "", nil
}

func TestDeliveryChecks(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ch := &taskChannel{delivery: adapters.DeliveryPending}
		reg := adapters.NewRegistry()
		reg.Register(ch)
		q := newFakeQueue()
		snd := NewSender(s, reg, q, discard)
		row, err := snd.Send(ctx, "tasks", &adapters.Outbound{IdempotencyKey: "k", To: "wm1", Via: "li", Text: "回来看看"}, OutboxMeta{})
		if err != nil {
			t.Fatal(err)
		}
		if err := snd.SendTask(ctx, q.drain()[0]); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Outbox(ctx, row.ID)
		if got.State != store.OutboxSent || got.Delivery != "pending" {
			t.Fatalf("after send: %s / %q", got.State, got.Delivery)
		}
		checks := q.drain()
		if len(checks) != 1 || checks[0].Type() != TypeCheckDelivery {
			t.Fatalf("queued %v, want one delivery check", checks)
		}
		// Still pending: checked again later.
		if err := snd.CheckTask(ctx, checks[0]); err != nil {
			t.Fatal(err)
		}
		next := q.drain()
		if len(next) != 1 {
			t.Fatalf("pending check queued %d follow-ups, want 1", len(next))
		}
		ch.delivery = adapters.DeliveryDelivered
		if err := snd.CheckTask(ctx, next[0]); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Outbox(ctx, row.ID)
		if got.Delivery != "delivered" || len(q.drain()) != 0 {
			t.Errorf("after the guide confirmed: delivery %q", got.Delivery)
		}
	})
}

// TestWebhookEndpointGetsOneDelivery: a brand endpoint answering 500 and
// then 200 gets the message twice with the same webhook-id (so it keeps
// one), a 400 is not retried, and every attempt is on record.
func TestWebhookEndpointGetsOneDelivery(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var mu sync.Mutex
		statuses := []int{500, 200, 400}
		var ids []string
		var bodies []map[string]any
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			var body map[string]any
			json.NewDecoder(r.Body).Decode(&body)
			ids, bodies = append(ids, r.Header.Get("webhook-id")), append(bodies, body)
			w.WriteHeader(statuses[0])
			statuses = statuses[1:]
		}))
		defer srv.Close()
		ch, err := webhook.New(webhook.Config{Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", URL: srv.URL}, webhook.NewIngester(nil, 0, nil), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		reg := adapters.NewRegistry()
		reg.Register(ch)
		q := newFakeQueue()
		snd := NewSender(s, reg, q, discard)
		row, err := snd.Send(ctx, webhook.ChannelName, &adapters.Outbound{IdempotencyKey: "wf:7:nudge:1", To: "m-7", Kind: "text", Text: "hi"}, OutboxMeta{})
		if err != nil {
			t.Fatal(err)
		}
		task := q.drain()[0]
		if err := snd.SendTask(ctx, task); !errors.Is(err, adapters.ErrTemporary) {
			t.Fatalf("500: %v, want a temporary error", err)
		}
		if err := snd.SendTask(ctx, task); err != nil {
			t.Fatalf("retry: %v", err)
		}
		snd.SendTask(ctx, task) // a duplicate task sends nothing
		mu.Lock()
		if len(ids) != 2 || ids[0] != "wf:7:nudge:1" || ids[1] != ids[0] || bodies[1]["id"] != ids[0] || bodies[1]["specversion"] != "1.0" ||
			bodies[1]["type"] != webhook.MessageType {
			t.Errorf("endpoint got ids %v, bodies %v", ids, bodies)
		}
		mu.Unlock()
		attempts, _ := s.SendAttempts(ctx, row.ID)
		if len(attempts) != 2 || attempts[0].Outcome != "retry" || !strings.Contains(attempts[0].Error, "500") || attempts[1].Outcome != "sent" {
			t.Errorf("attempts = %+v", attempts)
		}
		bad, _ := snd.Send(ctx, webhook.ChannelName, &adapters.Outbound{IdempotencyKey: "k-400", To: "m-8", Text: "x"}, OutboxMeta{})
		if err := snd.SendTask(ctx, q.drain()[0]); !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("400: %v, want no retry", err)
		}
		if attempts, _ := s.SendAttempts(ctx, bad.ID); len(attempts) != 1 || attempts[0].Outcome != "failed" {
			t.Errorf("400 attempts = %+v", attempts)
		}
	})
}

// The sweep re-queues a pending welcome on the critical queue, other
// messages on default.
func TestSweepKeepsWelcomesCritical(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	ctx := context.Background()
	for _, key := range []string{WelcomeKeyPrefix + "evt:1", "wf:1:nudge:1"} {
		if _, err := s.AddOutbox(ctx, &store.OutboxMessage{IdempotencyKey: key, Channel: "wecom", Recipient: "wm1", Kind: "text", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	q := newFakeQueue()
	if err := Sweep(ctx, s, q, -time.Minute, discard); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	byQueue := map[string]int{}
	for _, queue := range q.queue {
		byQueue[queue]++
	}
	if byQueue[QueueCritical] != 1 || byQueue[QueueDefault] != 1 {
		t.Errorf("swept to queues %v, want one critical (the welcome) and one default", byQueue)
	}
}
