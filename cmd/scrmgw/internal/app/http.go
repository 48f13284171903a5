package app

import (
	"log/slog"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/gateway/httpserve"
	"github.com/scrmgw/scrmgw/gateway/inbox"
	"github.com/scrmgw/scrmgw/gateway/membercode"
	"github.com/scrmgw/scrmgw/gateway/storepage"
)

var ginModeOnce sync.Once

// Handler builds the gateway's HTTP handler: health and readiness,
// Prometheus metrics, channel callbacks, the admin API, the queue UI and
// the store page and the web console.
func (a *App) Handler() http.Handler {
	ginModeOnce.Do(func() { gin.SetMode(gin.ReleaseMode) })
	r := gin.New()
	r.ContextWithFallback = true
	r.Use(gin.CustomRecovery(func(c *gin.Context, err any) {
		a.Log.Error("panic in http handler", slog.String("route", c.FullPath()), slog.Any("error", err))
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": gin.H{"code": api.CodeInternal, "message": "internal error"}})
	}))

	reg := a.registry()
	r.Use(httpserve.Metrics(reg))

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
		lim := httpserve.NewRefusalLimiter(rate, a.Config.HTTP.RefusedBurst, a.Log)
		throttled := prometheus.NewCounter(prometheus.CounterOpts{Name: "scrmgw_http_throttled_total",
			Help: "Requests answered 429 because their client made too many refused requests."})
		reg.MustRegister(throttled)
		lim.Throttled = throttled.Inc
		r.Use(lim.Middleware(httpserve.PublicRoutes(callbacks)))
	}

	a.mountHealth(r, reg)

	for _, rt := range routes {
		r.Handle(rt.Method, rt.Path, gin.WrapH(rt.Handler))
	}

	// Every channel that makes QR codes (WeCom contact ways, an Official
	// Account's follow codes), in the registry's order.
	var contactWays []api.ContactWayMaker
	for _, name := range a.Channels.Names() {
		if ch, _ := a.Channels.Channel(name); ch != nil {
			if m, ok := ch.(api.ContactWayMaker); ok {
				contactWays = append(contactWays, m)
			}
		}
	}
	reg.MustRegister(a.audit.Collectors()...)
	reg.MustRegister(a.links.Collectors()...)
	apiSrv := api.New(api.Options{Store: a.Store, AdminToken: a.Config.AdminToken, AdminTokenNext: a.Config.AdminTokenNext, Audit: a.audit, ContactWays: contactWays, Channels: a.Channels, Assigner: a.assigner, Workflows: a.apiWorkflows(),
		MaxBodyBytes: a.Config.HTTP.MaxBodyBytes, MaxBulkBodyBytes: a.Config.HTTP.MaxBulkBodyBytes, Logger: a.Log,
		Events: a.ingester, OnSourcesChanged: a.webhook.InvalidateSources, Settler: a.settler(), Redeemer: a.commerce, LedgerZone: a.ledgerZone(),
		Live: liveScheduler{a}, Shares: a.shares, Tags: a.tags, Groups: a.groups, Links: a.links, Moments: a.moments, Withdrawals: a.sender})
	ui := asynqmon.New(asynqmon.Options{RootPath: httpserve.QueueUIPath, RedisConnOpt: a.Redis})
	queues := r.Group(httpserve.QueueUIPath, apiSrv.AuditTrail(), api.RequireResource(api.ResourceQueues), apiSrv.RequireAdmin())
	queues.Any("", gin.WrapH(ui))
	queues.Any("/*path", gin.WrapH(ui))
	apiSrv.Mount(r)
	// The store page members open on their phones (门店H5): public, reads only.
	pageOpts := storepage.Options{Store: a.Store, Codes: membercode.New(a.Store, nil), Log: a.Log}
	if a.assigner != nil {
		pageOpts.Stores = a.assigner
	}
	if a.shares != nil {
		pageOpts.Shares = a.shares
	}
	storepage.New(pageOpts).Mount(r)
	a.console(apiSrv).Mount(r)
	return r
}

// console builds the web console on the API's token resolution, the
// engine, and the options of `scrmgw workflow validate` and `dry-run`.
func (a *App) console(apiSrv *api.Server) *console.Console {
	dry, err := DryRunOptions(a.Config, a.Templates)
	if err != nil {
		// The engine's wiring loaded the same batches and quota; this
		// cannot fail after it did not.
		a.Log.Error("console: dry runs without coupon batches or quotas", slog.Any("error", err))
	}
	o := console.Options{Store: a.Store, Auth: apiSrv, Workflows: a.apiWorkflows(), Audit: a.audit, LedgerZone: a.ledgerZone(), Live: liveScheduler{a},
		OnSourcesChanged: a.webhook.InvalidateSources, NewSourceSecret: webhook.NewSecret, ReservedSource: webhook.DefaultSourceID,
		Queues: asynq.NewInspectorFromRedisClient(a.RDB), Health: a.Ready, Withdrawals: a.sender,
		LoadOptions: WorkflowOptions(a.Config, a.Templates), DryRun: dry, MaxBodyBytes: a.Config.HTTP.MaxBodyBytes, Logger: a.Log,
		Config: console.Config{IdleTimeout: a.Config.Console.IdleTimeout, MaxAge: a.Config.Console.MaxAge,
			SecureCookies: a.Config.Console.SecureCookies()}}
	if a.assigner != nil {
		o.Nearest = a.assigner
	}
	return console.New(o)
}

// registry is a new Prometheus registry with the process's metrics: the
// Go runtime and process, the queues, channel connections, settlements,
// the inbox waiting, send failures and rate waits, workflow wake lateness.
// `serve` and `worker` both answer /metrics with it.
func (a *App) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		httpserve.NewQueueCollector(asynq.NewInspectorFromRedisClient(a.RDB)), channelConnected,
		settleMetrics.Runs, settleMetrics.Unreconciled, inbox.NewCollector(a.Store), wakeLateness)
	reg.MustRegister(outboxMetrics.Collectors()...)
	return reg
}

// mountHealth registers /healthz (the process is up), /readyz (the
// database, Redis and the channel streams are reachable) and /metrics
// (reg; behind http.metrics_token when it is set).
func (a *App) mountHealth(r *gin.Engine, reg *prometheus.Registry) {
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
		r.GET("/metrics", httpserve.RequireBearer(tok), metrics)
	} else {
		r.GET("/metrics", metrics)
	}
}

// WorkerHandler is what `scrmgw worker` serves on http.worker_addr:
// /healthz, /readyz and /metrics, nothing else.
func (a *App) WorkerHandler() http.Handler {
	ginModeOnce.Do(func() { gin.SetMode(gin.ReleaseMode) })
	r := gin.New()
	r.Use(gin.CustomRecovery(func(c *gin.Context, err any) {
		a.Log.Error("panic in http handler", slog.String("route", c.FullPath()), slog.Any("error", err))
		c.AbortWithStatus(http.StatusInternalServerError)
	}))
	a.mountHealth(r, a.registry())
	return r
}
