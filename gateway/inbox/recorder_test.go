package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func startRecorder(t *testing.T, s *store.Store, q queue.Enqueuer) *Recorder {
	return startRecorderWith(t, s, q, RecorderOptions{MaxBatch: 32, Linger: time.Millisecond})
}

func startRecorderWith(t *testing.T, s *store.Store, q queue.Enqueuer, opts RecorderOptions) *Recorder {
	r := NewRecorder(s, q, discard, opts)
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	t.Cleanup(func() { cancel(); r.Wait() })
	return r
}

func TestRecorderCommitsBeforeReturningAndQueuesOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		q := queuetest.New()
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
		tasks := q.Drain()
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

// batchIDs returns the inbox rows of a TypeBatch task.
func batchIDs(t *testing.T, task *asynq.Task) []int64 {
	t.Helper()
	if task.Type() != TypeBatch {
		t.Fatalf("task %s, want %s", task.Type(), TypeBatch)
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
	q := queuetest.New()
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
	byQueue := q.ByQueue()
	if byQueue[queue.Critical] != 1 || byQueue[queue.Default] != 1 || len(q.Drain()) != 2 {
		t.Errorf("tasks by queue = %v, want one critical and one default", byQueue)
	}
}

func TestRecorderAcknowledgesWhenQueueIsDown(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		q := queuetest.New()
		q.SetFail(errors.New("redis down"))
		// The recorder's own retry waits an hour here: the sweep is what
		// this test is about.
		r := startRecorderWith(t, s, q, RecorderOptions{MaxBatch: 32, Linger: time.Millisecond, RetryEvery: time.Hour})
		ctx := context.Background()
		contact := &adapters.Inbound{Channel: "wecom", DedupKey: "evt:1", Kind: "event", Event: EventContactAdded}
		if err := r.Record(ctx, contact); err != nil {
			t.Fatalf("Record with the queue down: %v (the row is durable; it must be acknowledged)", err)
		}
		q.SetFail(nil)
		if err := Sweep(ctx, s, q, 0, discard); err != nil {
			t.Fatal(err)
		}
		if tasks := q.Drain(); len(tasks) != 1 || tasks[0].Type() != TypeProcess {
			t.Fatalf("sweep queued %v, want one inbox task", tasks)
		}
		// On the queue the recorder uses for a new contact: a TaskID is
		// unique per queue only.
		for lane := range q.ByQueue() {
			if lane != queue.Critical {
				t.Errorf("sweep queued the new contact on %q, want %q", lane, queue.Critical)
			}
		}
	})
}

// TestRecorderRetriesWhenQueueReturns: batches committed while Redis was
// away are queued by the recorder itself within a retry interval of its
// return, oldest first, each once, without waiting for the sweep.
func TestRecorderRetriesWhenQueueReturns(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		q := queuetest.New()
		q.SetFail(errors.New("redis down"))
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
		q.SetFail(nil)
		deadline := time.Now().Add(5 * time.Second)
		for r.Held() > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := r.Held(); n != 0 {
			t.Fatalf("still held after the queue came back: %d", n)
		}
		tasks := q.Drain()
		var ids []int64
		for _, task := range tasks {
			if task.Type() != TypeBatch {
				t.Fatalf("queued %s, want %s", task.Type(), TypeBatch)
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
	r := NewRecorder(s, queuetest.New(), discard, RecorderOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	go r.Run(ctx)
	cancel()
	r.Wait()
	if err := r.Record(context.Background(), &adapters.Inbound{Channel: "wecom", DedupKey: "x"}); !errors.Is(err, ErrStopped) {
		t.Errorf("Record after stop = %v, want ErrStopped", err)
	}
}

// A batch task queues each row's own task, with the TaskID the sweep
// uses: a row the sweep queued meanwhile is not queued twice, so no row
// is ever handled by two tasks at once.
func TestBatchTaskQueuesEachRowOnce(t *testing.T) {
	s := storetest.Open(t, "sqlite")
	q := queuetest.New()
	r := NewRecorder(s, q, discard, RecorderOptions{})
	ctx := context.Background()
	b, _ := json.Marshal(idsPayload{IDs: []int64{11, 12, 13}})
	batch := asynq.NewTask(TypeBatch, b)
	if err := queue.EnqueueID(ctx, q, TypeProcess, 12, queue.Default); err != nil { // the sweep got there first
		t.Fatal(err)
	}
	if err := r.BatchTask(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, task := range q.Drain() {
		var pl queue.IDPayload
		if task.Type() != TypeProcess || json.Unmarshal(task.Payload(), &pl) != nil {
			t.Fatalf("queued %s %s", task.Type(), task.Payload())
		}
		got = append(got, pl.ID)
	}
	if diff := cmp.Diff([]int64{12, 11, 13}, got); diff != "" {
		t.Errorf("rows queued (-want +got):\n%s", diff)
	}
	q.SetFail(errors.New("redis down"))
	if err := r.BatchTask(ctx, batch); err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("batch with the queue down: %v, want a retryable error", err)
	}
	q.SetFail(nil)
	if err := r.BatchTask(ctx, asynq.NewTask(TypeBatch, []byte(`{"ids":[]}`))); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("empty batch: %v, want SkipRetry", err)
	}
}
