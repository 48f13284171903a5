package inbox

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scrmgw/scrmgw/store"
)

// Collector reports, at scrape time, the inbox rows waiting to be
// processed: what was acknowledged to the platforms and not yet handled.
type Collector struct {
	store           *store.Store
	waiting, oldest *prometheus.Desc
}

// NewCollector returns a collector of s's inbox.
func NewCollector(s *store.Store) *Collector {
	return &Collector{store: s,
		waiting: prometheus.NewDesc("scrmgw_inbox_waiting",
			"Inbox rows (acknowledged callbacks, stream messages, events) waiting to be processed.", nil, nil),
		oldest: prometheus.NewDesc("scrmgw_inbox_oldest_waiting_seconds",
			"Age of the oldest inbox row waiting to be processed; 0 when none waits.", nil, nil)}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.waiting; ch <- c.oldest }

// Collect implements prometheus.Collector. Without the database it
// reports nothing (the scrape shows the gap; /readyz says why).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, oldest, err := c.store.InboxWaiting(ctx)
	if err != nil {
		return
	}
	age := 0.0
	if n > 0 && !oldest.IsZero() {
		age = max(time.Since(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
