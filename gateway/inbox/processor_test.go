package inbox

import (
	"context"
	"errors"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/queue/queuetest"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

func TestProcessorHandlesOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		q := queuetest.New()
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
		tasks := q.Drain()
		if len(tasks) != 1 {
			t.Fatalf("queued %d tasks", len(tasks))
		}
		// The batch task becomes the row's own task.
		if err := r.BatchTask(ctx, tasks[0]); err != nil {
			t.Fatal(err)
		}
		if tasks = q.Drain(); len(tasks) != 1 || tasks[0].Type() != TypeProcess {
			t.Fatalf("batch task queued %v, want one %s task", tasks, TypeProcess)
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
		if err := p.ProcessTask(ctx, asynq.NewTask(TypeProcess, []byte("nonsense"))); !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("bad payload: %v, want SkipRetry", err)
		}
	})
}
