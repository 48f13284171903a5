// Package queuetest is a queue.Enqueuer for tests: it records the tasks
// queued and, like asynq, refuses a TaskID that is already queued.
package queuetest

import (
	"context"
	"sync"

	"github.com/hibiken/asynq"
)

// Queue records enqueued tasks.
type Queue struct {
	mu    sync.Mutex
	ids   map[string]bool
	tasks []*asynq.Task
	queue map[string]string
	fail  error
}

// New returns an empty Queue.
func New() *Queue { return &Queue{ids: map[string]bool{}, queue: map[string]string{}} }

// EnqueueContext records t, unless its TaskID is queued already
// (asynq.ErrTaskIDConflict) or the queue was told to fail.
func (q *Queue) EnqueueContext(_ context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return nil, q.fail
	}
	var id, lane string
	for _, o := range opts {
		switch o.Type() {
		case asynq.TaskIDOpt:
			id = o.Value().(string)
		case asynq.QueueOpt:
			lane = o.Value().(string)
		}
	}
	if q.ids[id] {
		return nil, asynq.ErrTaskIDConflict
	}
	q.ids[id] = true
	q.queue[id] = lane
	q.tasks = append(q.tasks, t)
	return &asynq.TaskInfo{ID: id}, nil
}

// SetFail makes every enqueue fail with err until SetFail(nil).
func (q *Queue) SetFail(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.fail = err
}

// Drain returns the tasks queued since the last Drain, and forgets their
// TaskIDs (as asynq does once a task is done).
func (q *Queue) Drain() []*asynq.Task {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.tasks
	q.tasks = nil
	q.ids = map[string]bool{}
	return out
}

// ByQueue counts the TaskIDs ever queued on each queue.
func (q *Queue) ByQueue() map[string]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := map[string]int{}
	for _, lane := range q.queue {
		n[lane]++
	}
	return n
}
