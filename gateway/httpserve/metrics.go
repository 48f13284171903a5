package httpserve

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// QueueUIPath is where the asynqmon UI is mounted, behind the admin token.
const QueueUIPath = "/admin/queues"

// Metrics counts requests and their latency by route and status.
func Metrics(reg prometheus.Registerer) gin.HandlerFunc {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scrmgw_http_requests_total", Help: "HTTP requests by route, method and status code.",
	}, []string{"route", "method", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "scrmgw_http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "method"})
	reg.MustRegister(requests, latency)
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
		latency.WithLabelValues(route, c.Request.Method).Observe(time.Since(start).Seconds())
	}
}

// RequireBearer answers 401 unless the request carries
// "Authorization: Bearer <token>" (compared in constant time).
func RequireBearer(token string) gin.HandlerFunc {
	want := []byte(token)
	return func(c *gin.Context) {
		got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			c.Header("WWW-Authenticate", `Bearer realm="scrmgw metrics"`)
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": gin.H{"code": "unauthorized",
				"message": "the metrics token is required (Authorization: Bearer <http.metrics_token>)"}})
			return
		}
		c.Next()
	}
}

// QueueCollector reports asynq queue sizes at scrape time.
type QueueCollector struct {
	insp  *asynq.Inspector
	tasks *prometheus.Desc
}

// NewQueueCollector returns a collector of insp's queues.
func NewQueueCollector(insp *asynq.Inspector) *QueueCollector {
	return &QueueCollector{insp: insp, tasks: prometheus.NewDesc("scrmgw_queue_tasks",
		"Tasks in each asynq queue by state.", []string{"queue", "state"}, nil)}
}

// Describe implements prometheus.Collector.
func (q *QueueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- q.tasks }

// Collect implements prometheus.Collector.
func (q *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	names, err := q.insp.Queues()
	if err != nil {
		return
	}
	for _, n := range names {
		info, err := q.insp.GetQueueInfo(n)
		if err != nil {
			continue
		}
		for state, v := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived, "completed": info.Completed} {
			ch <- prometheus.MustNewConstMetric(q.tasks, prometheus.GaugeValue, float64(v), n, state)
		}
	}
}
