package outbox

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the outbox's Prometheus metrics.
type Metrics struct {
	// Failures counts sends that failed for good, by channel instance
	// and reason (the row's failure: invalid_message, invalid_recipient,
	// unauthorized, rate_limited, gave_up, refused, not_configured,
	// error; unknown: a send lost mid-way that the channel cannot
	// reconcile).
	Failures *prometheus.CounterVec
	// RateWait observes, per channel instance, how far away the send
	// slot a send reserved was: the time it waits (in the handler or
	// queued again) to keep the channel's rate. 0 when it may go at once.
	RateWait *prometheus.HistogramVec
	// Handler counts the messages sent by the handler that made them
	// (Sender.SendNow: bot replies, welcomes), by channel instance and
	// path: inline (sent at once) or queued (no send slot at once, or
	// the limiter away: sent by a task as other messages are).
	Handler *prometheus.CounterVec
}

// NewMetrics makes the outbox's metrics; register Collectors on the
// process's registry and give them to Sender.Measure.
func NewMetrics() *Metrics {
	return &Metrics{
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scrmgw_outbox_failures_total",
			Help: "Sends that failed for good, by channel instance and reason."}, []string{"channel", "reason"}),
		RateWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "scrmgw_send_rate_wait_seconds",
			Help:    "How long sends wait for their channel's rate limit slot, by channel instance.",
			Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900}}, []string{"channel"}),
		Handler: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scrmgw_outbox_handler_sends_total",
			Help: "Messages a handler sent at once (path inline) or had to queue (path queued: no send slot at once), by channel instance."},
			[]string{"channel", "path"}),
	}
}

// Collectors lists the metrics, to register them.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Failures, m.RateWait, m.Handler}
}

// Measure makes the Sender count its failures and rate waits in m.
func (s *Sender) Measure(m *Metrics) { s.metrics = m }

// failed counts a send that failed for good.
func (s *Sender) failed(channel, reason string) {
	if s.metrics != nil {
		s.metrics.Failures.WithLabelValues(channel, reason).Inc()
	}
}

// counted counts a message of SendNow by its path.
func (s *Sender) counted(channel, path string) {
	if s.metrics != nil {
		s.metrics.Handler.WithLabelValues(channel, path).Inc()
	}
}
