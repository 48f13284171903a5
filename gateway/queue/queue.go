package queue

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters"
)

// The gateway's queues. Critical work (new contacts and their welcome,
// whose WeCom code expires in 20 seconds) goes first.
const (
	Critical = "critical"
	Default  = "default"
	Low      = "low"

	// Workflows is the queue of workflow wakes (the engine's timed steps).
	Workflows = "workflows"
)

// Enqueuer is the part of *asynq.Client the gateway uses.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// IDPayload is the payload of row tasks: the row to work on.
type IDPayload struct {
	ID int64 `json:"id"`
}

// IDTask returns a task of type typ for row id.
func IDTask(typ string, id int64) *asynq.Task {
	b, _ := json.Marshal(IDPayload{ID: id})
	return asynq.NewTask(typ, b)
}

// EnqueueID queues a task for a row with a TaskID derived from it, so a
// row is queued at most once at a time. An id already queued is not an
// error.
func EnqueueID(ctx context.Context, q Enqueuer, typ string, id int64, queue string) error {
	_, err := q.EnqueueContext(ctx, IDTask(typ, id), asynq.TaskID(typ+":"+strconv.FormatInt(id, 10)),
		asynq.Queue(queue), asynq.MaxRetry(12))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}

// LastAttempt reports whether the running task will not be retried.
func LastAttempt(ctx context.Context) bool {
	retry, ok1 := asynq.GetRetryCount(ctx)
	maxRetry, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && retry >= maxRetry
}

// RetryDelay backs off failed tasks: longer for rate limits.
func RetryDelay(n int, err error, t *asynq.Task) time.Duration {
	base := time.Second
	if errors.Is(err, adapters.ErrRateLimited) {
		base = 10 * time.Second
	}
	d := base << min(n, 10)
	return min(d, 30*time.Minute)
}
