package app

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrmgw/scrmgw/gateway/outbox"
)

// The process's metrics of the sends and the workflow wakes, on the
// /metrics of serve and worker (registry).
var (
	outboxMetrics = outbox.NewMetrics()
	// wakeLateness observes how long after its due time a workflow wake
	// acted: the queue's delay, busy workers, a catch-up after a crash.
	wakeLateness = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "scrmgw_workflow_wake_lateness_seconds",
		Help:    "How long after its due time a workflow wake acted.",
		Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600}})
)

// observeWake is the engine's OnWake.
func observeWake(due, acted time.Time) { wakeLateness.Observe(max(acted.Sub(due), 0).Seconds()) }
