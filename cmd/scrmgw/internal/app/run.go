package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/assign"
	"github.com/scrmgw/scrmgw/gateway/inbox"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
)

// queuePriorities weighs the queues: critical (new contacts and welcome
// messages, whose WeCom welcome_code is valid 20 s) before default
// (deliveries, replies) before low (maintenance). The workflows queue has
// a server of its own.
var queuePriorities = map[string]int{queue.Critical: 6, queue.Default: 3, queue.Low: 1}

// Serve runs the whole gateway in one process: HTTP server, queue workers
// and the periodic scheduler, until ctx ends; then it stops accepting,
// finishes in-flight requests and tasks, and returns.
func (a *App) Serve(ctx context.Context) error {
	return a.run(ctx, true, true)
}

// ServeHTTPOnly runs the HTTP server (API and callbacks) without queue
// workers, for deployments whose workers run as `scrmgw worker`.
func (a *App) ServeHTTPOnly(ctx context.Context) error {
	return a.run(ctx, true, false)
}

// Worker runs queue workers and the scheduler only, so workers scale
// independently of HTTP replicas.
func (a *App) Worker(ctx context.Context) error {
	return a.run(ctx, false, true)
}

// stopper is what run stops on its way out.
type stopper interface{ Shutdown() }

func (a *App) run(ctx context.Context, withHTTP, withWorkers bool) error {
	if a.mini != nil {
		a.Log.Warn("ZERO-SETUP MODE: using an in-process Redis (and SQLite unless database.url is set); " +
			"this is for trying scrmgw out and is NOT durable: queued work is lost on exit. " +
			"Set redis.url (SCRMGW_REDIS_URL) and database.url (SCRMGW_DATABASE_URL) for production.")
	}
	if err := a.Migrate(ctx); err != nil {
		return err
	}
	var transferers []assign.Transferer
	for _, wc := range a.weComClients() {
		transferers = append(transferers, wc)
	}
	assigner, err := assign.New(ctx, a.Store, assign.Options{MaxDistanceKm: a.Config.Assign.MaxDistanceKm,
		OnlinePools: a.Config.Assign.Pools(), Transferers: transferers, Logger: a.Log})
	if err != nil {
		return err
	}
	a.assigner = assigner
	// Loading the stores into the index (pages of rows through gorm) is
	// most of what start-up allocates: at 200,000 stores about 470 MB
	// over a live heap of about 60 MB. Give it back to the system now
	// rather than as the scavenger gets to it.
	debug.FreeOSMemory()
	a.commerce.Assigner = assigner
	unassigned := func(b *store.Binding, err error) (*store.Binding, error) {
		if errors.Is(err, assign.ErrUnassigned) {
			return nil, nil
		}
		return b, err
	}
	a.contacts.AssignInStore = func(ctx context.Context, memberID int64, brand, storeID string) (*store.Binding, error) {
		return unassigned(assigner.Assign(ctx, assign.Request{MemberID: memberID, Brand: brand, StoreID: storeID, Reason: assign.ReasonState, NoPool: true}))
	}
	a.contacts.AssignNearest = func(ctx context.Context, memberID int64, brand string, lat, lng float64) (*store.Binding, error) {
		return unassigned(assigner.Assign(ctx, assign.Request{MemberID: memberID, Brand: brand, Lat: &lat, Lng: &lng}))
	}
	if a.clock != nil {
		// Settlement days and coupon expiry follow the tests' clock.
		a.commerce.SetClock(a.clock)
	}
	a.wireHandovers()
	departures := &assign.Departures{Store: a.Store, Assigner: assigner, Handovers: a.handovers, Log: a.Log}
	a.processor.On(inbox.OnEvent(inbox.EventGuideLeft), inbox.HandlerFunc(departures.GuideLeft))
	bot, botDeps, err := a.bots()
	if err != nil {
		return err
	}
	a.messages = inbox.NewMessages(a.Store, bot, a.sender, a.Log)
	a.messages.Register(a.processor)
	if err := a.wireEngine(); err != nil {
		return err
	}
	syncCtx, stopSync := context.WithCancel(ctx)
	defer stopSync()
	go a.syncIndex(syncCtx)
	// The recorder outlives everything that records: streams, HTTP
	// callbacks and tasks are stopped first (deferred calls run last in,
	// first out).
	recCtx, stopRecorder := context.WithCancel(context.Background())
	defer func() {
		stopRecorder()
		a.recorder.Wait()
	}()
	go a.recorder.Run(recCtx)
	var streams sync.WaitGroup
	defer streams.Wait()
	streamCtx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	for _, name := range a.Channels.Names() {
		ch, _ := a.Channels.Channel(name)
		a.Log.Info("channel enabled", slog.String("channel", name))
		if st, ok := ch.(adapters.Streamer); ok {
			streams.Add(1)
			go func() {
				defer streams.Done()
				if err := st.Run(streamCtx); err != nil && !errors.Is(err, context.Canceled) {
					a.Log.Error("channel stream stopped", slog.String("channel", name), slog.Any("error", err))
				}
			}()
		}
	}

	var workers []stopper // stopped in reverse order
	stopWorkers := func() {
		for i := len(workers) - 1; i >= 0; i-- {
			workers[i].Shutdown()
		}
	}
	if withWorkers {
		srvClient, stopIdle, err := a.pollClient(slices.Collect(maps.Keys(queuePriorities)))
		if err != nil {
			return err
		}
		defer srvClient.Close()
		srv := asynq.NewServerFromRedisClient(srvClient, asynq.Config{
			Concurrency:              a.Config.Queue.Concurrency,
			Queues:                   queuePriorities,
			ShutdownTimeout:          a.Config.HTTP.ShutdownTimeout,
			DelayedTaskCheckInterval: time.Second,
			RetryDelayFunc:           queue.RetryDelay,
			TaskCheckInterval:        100 * time.Millisecond,
			Logger:                   asynqLogger{a.Log},
			LogLevel:                 asynq.WarnLevel,
			ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
				a.Log.WarnContext(ctx, "task failed", slog.String("task", t.Type()), slog.Any("error", err))
			}),
		})
		mux := asynq.NewServeMux()
		a.registerTasks(mux)
		a.registerBotTasks(mux, botDeps)
		// The wakes of high-priority sends (a welcome) travel on the
		// critical queue, which this server serves.
		a.engine.Register(mux)
		if err := srv.Start(mux); err != nil {
			return fmt.Errorf("starting queue workers: %w", err)
		}
		workers = append(workers, srv, stopIdle)
		// Workflow wakes get a server of their own: a wake reaches its
		// handler a moment before it is due and waits for the exact
		// time, so many are in flight at once and must not take the
		// slots of deliveries.
		wfClient, stopWfIdle, err := a.pollClient([]string{queue.Workflows})
		if err != nil {
			stopWorkers()
			return err
		}
		defer wfClient.Close()
		wfSrv := asynq.NewServerFromRedisClient(wfClient, asynq.Config{
			Concurrency:              a.Config.Queue.WorkflowConcurrency,
			Queues:                   map[string]int{queue.Workflows: 1},
			ShutdownTimeout:          a.Config.HTTP.ShutdownTimeout,
			DelayedTaskCheckInterval: time.Second,
			TaskCheckInterval:        100 * time.Millisecond,
			Logger:                   asynqLogger{a.Log},
			LogLevel:                 asynq.WarnLevel,
		})
		wfMux := asynq.NewServeMux()
		a.engine.Register(wfMux)
		if err := wfSrv.Start(wfMux); err != nil {
			stopWorkers()
			return fmt.Errorf("starting workflow workers: %w", err)
		}
		workers = append(workers, wfSrv, stopWfIdle)
		sched := asynq.NewScheduler(a.Redis, &asynq.SchedulerOpts{Logger: asynqLogger{a.Log}, LogLevel: asynq.WarnLevel})
		if err := a.registerPeriodic(sched); err != nil {
			stopWorkers()
			return err
		}
		if err := a.registerBotPeriodic(sched); err != nil {
			stopWorkers()
			return err
		}
		if err := sched.Start(); err != nil {
			stopWorkers()
			return fmt.Errorf("starting scheduler: %w", err)
		}
		workers = append(workers, sched)
		a.Log.Info("queue workers started", slog.Int("concurrency", a.Config.Queue.Concurrency))
		// Work saved before a crash or while Redis was away is queued again.
		if err := inbox.Sweep(ctx, a.Store, a.Queue, 0, a.Log); err != nil {
			a.Log.Warn("start-up sweep", slog.Any("error", err))
		}
		if a.handovers != nil {
			if err := a.handovers.Sweep(ctx, 0); err != nil {
				a.Log.Warn("start-up handover sweep", slog.Any("error", err))
			}
		}
		// Sends claimed by a worker that died (this one, before a
		// restart) are settled once their lease is over.
		if _, err := a.sender.Recover(ctx, a.Config.Send.Lease); err != nil {
			a.Log.Warn("start-up recovery of lost sends", slog.Any("error", err))
		}
		if err := a.engine.Sweep(ctx); err != nil {
			a.Log.Warn("start-up workflow sweep", slog.Any("error", err))
		}
	}

	var (
		httpSrv *http.Server
		httpErr = make(chan error, 1)
	)
	if withHTTP {
		// The audit trail's writer stops after the HTTP server (deferred,
		// it runs once in-flight requests are done) and writes what it
		// holds before run returns.
		auditCtx, stopAudit := context.WithCancel(context.Background())
		auditDone := make(chan struct{})
		go func() {
			defer close(auditDone)
			a.audit.Run(auditCtx)
		}()
		defer func() {
			stopAudit()
			<-auditDone
		}()
		ln, err := net.Listen("tcp", a.Config.HTTP.Addr)
		if err != nil {
			stopWorkers()
			return fmt.Errorf("listening on %s: %w", a.Config.HTTP.Addr, err)
		}
		httpSrv = &http.Server{
			Handler:           a.served(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       a.Config.HTTP.ReadTimeout,
			IdleTimeout:       2 * time.Minute,
		}
		a.Log.Info("http server listening", slog.String("addr", ln.Addr().String()),
			slog.String("console", consoleURL(a.Config.Console.PublicURL, ln.Addr().String())))
		go func() { httpErr <- httpSrv.Serve(ln) }()
	} else if addr := a.Config.HTTP.WorkerAddr; addr != "" {
		// A worker answers its probes and the scrape here.
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			stopWorkers()
			return fmt.Errorf("listening on %s (http.worker_addr): %w", addr, err)
		}
		httpSrv = &http.Server{Handler: a.WorkerHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		a.Log.Info("worker health and metrics listening", slog.String("addr", ln.Addr().String()))
		go func() { httpErr <- httpSrv.Serve(ln) }()
	}

	var runErr error
	select {
	case <-ctx.Done():
		a.Log.Info("shutting down")
	case err := <-httpErr:
		runErr = fmt.Errorf("http server: %w", err)
	}

	// Stop accepting first, finish in-flight requests, then stop handing
	// out tasks and wait for running ones.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.Config.HTTP.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	if httpSrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := httpSrv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.Log.Warn("http shutdown incomplete", slog.Any("error", err))
			}
		}()
	}
	wg.Wait()
	stopWorkers()
	a.Log.Info("stopped")
	return runErr
}

// pollClient returns a Redis client for an asynq server polling queues:
// idle, it polls less and is woken by what this process queues (see
// queue.Idle). Shut the stopper down before the server so that the
// server's shutdown does not wait out an idle poll.
func (a *App) pollClient(queues []string) (redis.UniversalClient, stopper, error) {
	c, ok := a.Redis.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, nil, errors.New("connecting to redis: unexpected client type")
	}
	_, cluster := c.(*redis.ClusterClient)
	idle := queue.NewIdle(queues, a.wake, queue.IdleOptions{NoCheck: cluster, Client: c})
	c.AddHook(idle)
	return c, idleStopper{idle}, nil
}

type idleStopper struct{ *queue.Idle }

func (s idleStopper) Shutdown() { s.Stop() }

// syncIndex applies other replicas' store changes to the index.
func (a *App) syncIndex(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.assigner.Sync(ctx); err != nil && ctx.Err() == nil {
				a.Log.Warn("syncing store index", slog.Any("error", err))
			}
		}
	}
}

// asynqLogger adapts slog to asynq's logger.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) {
	l.log.Debug(fmt.Sprint(args...), slog.String("component", "asynq"))
}
func (l asynqLogger) Info(args ...any) {
	l.log.Info(fmt.Sprint(args...), slog.String("component", "asynq"))
}
func (l asynqLogger) Warn(args ...any) {
	l.log.Warn(fmt.Sprint(args...), slog.String("component", "asynq"))
}
func (l asynqLogger) Error(args ...any) {
	l.log.Error(fmt.Sprint(args...), slog.String("component", "asynq"))
}
func (l asynqLogger) Fatal(args ...any) {
	l.log.Error(fmt.Sprint(args...), slog.String("component", "asynq"))
}

// consoleURL is where people open the console: console.public_url, else
// the listen address (a wildcard host read as localhost).
func consoleURL(public, addr string) string {
	if public != "" {
		return strings.TrimSuffix(public, "/") + "/console/"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "/console/"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/console/"
}

// served is the handler Serve serves: Handler, wrapped by WithHTTPWrap.
func (a *App) served() http.Handler {
	if a.wrapHTTP != nil {
		return a.wrapHTTP(a.Handler())
	}
	return a.Handler()
}
