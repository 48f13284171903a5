package app

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/api"
)

// QueueUIPath is where the asynqmon UI is mounted, behind the admin token.
const QueueUIPath = "/admin/queues"

var ginModeOnce sync.Once

// Handler builds the gateway's HTTP handler: health and readiness,
// Prometheus metrics, channel callbacks, the admin API and the queue UI.
func (a *App) Handler() http.Handler {
	ginModeOnce.Do(func() { gin.SetMode(gin.ReleaseMode) })
	r := gin.New()
	r.ContextWithFallback = true
	r.Use(gin.CustomRecovery(func(c *gin.Context, err any) {
		a.Log.Error("panic in http handler", slog.String("route", c.FullPath()), slog.Any("error", err))
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": gin.H{"code": api.CodeInternal, "message": "internal error"}})
	}))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newQueueCollector(asynq.NewInspectorFromRedisClient(a.RDB)), channelConnected)
	r.Use(httpMetrics(reg))

	// The client IP is the connection's, or X-Forwarded-For's when the
	// connection comes from a trusted proxy (never from anyone else: the
	// header is the client's to forge).
	if err := r.SetTrustedProxies(a.Config.HTTP.TrustedProxies); err != nil {
		a.Log.Error("http.trusted_proxies: trusting no proxy", slog.Any("error", err))
		_ = r.SetTrustedProxies(nil)
	}
	var routes []adapters.Route
	callbacks := map[string]bool{}
	for _, name := range a.Channels.Names() {
		ch, _ := a.Channels.Channel(name)
		if rcv, ok := ch.(adapters.HTTPReceiver); ok {
			for _, rt := range rcv.Routes() {
				routes = append(routes, rt)
				callbacks[rt.Path] = true
			}
		}
	}
	if rate := a.Config.HTTP.RefusedRate; rate > 0 {
		lim := newRefusalLimiter(rate, a.Config.HTTP.RefusedBurst, a.Log)
		throttled := prometheus.NewCounter(prometheus.CounterOpts{Name: "scrmgw_http_throttled_total",
			Help: "Requests answered 429 because their client made too many refused requests."})
		reg.MustRegister(throttled)
		lim.throttled = throttled.Inc
		r.Use(lim.middleware(publicRoutes(callbacks)))
	}

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", func(c *gin.Context) {
		checks := gin.H{}
		ok := true
		for name, err := range a.Ready(c.Request.Context()) {
			if err != nil {
				ok = false
				a.Log.Warn("readiness check failed", slog.String("check", name), slog.Any("error", err))
				checks[name] = "unavailable"
			} else {
				checks[name] = "ok"
			}
		}
		status := http.StatusOK
		if !ok {
			status = http.StatusServiceUnavailable
		}
		c.JSON(status, gin.H{"ready": ok, "checks": checks})
	})
	metrics := gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if tok := a.Config.HTTP.MetricsToken; tok != "" {
		r.GET("/metrics", requireBearer(tok), metrics)
	} else {
		r.GET("/metrics", metrics)
	}

	for _, rt := range routes {
		r.Handle(rt.Method, rt.Path, gin.WrapH(rt.Handler))
	}

	var contactWays api.ContactWayMaker
	if ch, ok := a.Channels.Channel("wecom"); ok {
		contactWays, _ = ch.(api.ContactWayMaker)
	}
	apiSrv := api.New(api.Options{Store: a.Store, AdminToken: a.Config.AdminToken, ContactWays: contactWays, Assigner: a.assigner, Workflows: a.apiWorkflows(),
		MaxBodyBytes: a.Config.HTTP.MaxBodyBytes, MaxBulkBodyBytes: a.Config.HTTP.MaxBulkBodyBytes, Logger: a.Log,
		Events: a.ingester, OnSourcesChanged: a.webhook.InvalidateSources, Settler: a.settler(), LedgerZone: a.ledgerZone()})
	ui := asynqmon.New(asynqmon.Options{RootPath: QueueUIPath, RedisConnOpt: a.Redis})
	queues := r.Group(QueueUIPath, apiSrv.RequireAdmin())
	queues.Any("", gin.WrapH(ui))
	queues.Any("/*path", gin.WrapH(ui))
	r.GET("/api/v1/handovers", apiSrv.RequireAdmin(), a.listHandovers)
	apiSrv.Mount(r)
	return r
}

// httpMetrics counts requests and their latency by route and status.
func httpMetrics(reg prometheus.Registerer) gin.HandlerFunc {
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

// requireBearer answers 401 unless the request carries
// "Authorization: Bearer <token>" (compared in constant time).
func requireBearer(token string) gin.HandlerFunc {
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

// queueCollector reports asynq queue sizes at scrape time.
type queueCollector struct {
	insp  *asynq.Inspector
	tasks *prometheus.Desc
}

func newQueueCollector(insp *asynq.Inspector) *queueCollector {
	return &queueCollector{insp: insp, tasks: prometheus.NewDesc("scrmgw_queue_tasks",
		"Tasks in each asynq queue by state.", []string{"queue", "state"}, nil)}
}

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- q.tasks }

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
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
