// Package queue names the gateway's asynq queues (critical, default, low,
// workflows), queues a row's task at most once at a time, and backs off
// failed tasks.
//
// It is the floor under inbox and outbox, which both hand rows to workers
// through it, and is imported by the wiring; it imports adapters only.
package queue
