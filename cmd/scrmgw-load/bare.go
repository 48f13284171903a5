package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof" // opt-in, on --pprof only: the load tool's own process
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

func bareMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bare", stderr)
	addr := fs.String("addr", "127.0.0.1:9090", "listen address")
	token := fs.String("token", wecomfake.DefaultToken, "callback Token")
	key := fs.String("encoding-aes-key", wecomfake.DefaultEncodingAESKey, "callback EncodingAESKey")
	corp := fs.String("corp-id", wecomfake.DefaultCorpID, "corp id the callbacks are sealed for")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof of this process on this address (default: off)")
	redisURL := fs.String("redis", "", "also queue one asynq task per callback in this Redis (queue "+bareQueue+"), as the gateway does (default: off)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	var q *asynq.Client
	if *redisURL != "" {
		opt, err := asynq.ParseRedisURI(*redisURL)
		if err != nil {
			return fmt.Errorf("--redis: %w", err)
		}
		q = asynq.NewClient(opt)
		defer q.Close()
		if err := q.Ping(); err != nil {
			return fmt.Errorf("--redis: %w", err)
		}
	}
	h, err := bareHandler(*token, *key, *corp, q)
	if err != nil {
		return err
	}
	if *pprofAddr != "" {
		go func() { fmt.Fprintln(stderr, http.ListenAndServe(*pprofAddr, http.DefaultServeMux)) }()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	// The same server settings as the gateway's http.Server.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(stdout, "bare callback server on %s%s\n", ln.Addr(), wecom.CallbackPath)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// bareQueue is the asynq queue of the bare server's tasks, apart from the
// gateway's.
const bareQueue = "loadbare"

// bareHandler is the ceiling the gateway is compared with: what every
// callback costs before it is recorded. It does what the gateway's
// handler does up to Record (timestamp parse, body read with a limit,
// signature check, AES decrypt, envelope and message parse, dedup key)
// and answers "success" without recording anything. With q it also
// queues one asynq task per callback, with a TaskID, as the gateway's
// recorder does (PERF.md's second reference row).
func bareHandler(token, key, corp string, queue *asynq.Client) (http.Handler, error) {
	cr, err := wecom.NewCrypto(token, key, corp)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("POST "+wecom.CallbackPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if _, err := strconv.ParseInt(q.Get("timestamp"), 10, 64); err != nil {
			http.Error(w, "bad timestamp", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "reading body", http.StatusBadRequest)
			return
		}
		plain, err := cr.Decrypt(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		msg, err := wecom.ParseMessage(plain)
		if err != nil || msg.DedupKey() == "" {
			http.Error(w, "malformed", http.StatusBadRequest)
			return
		}
		if queue != nil {
			key := msg.DedupKey()
			_, err := queue.EnqueueContext(r.Context(), asynq.NewTask("load:bare", []byte(`{"key":"`+key+`"}`)),
				asynq.TaskID("load:bare:"+key), asynq.Queue(bareQueue), asynq.MaxRetry(12))
			if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
				http.Error(w, "queueing", http.StatusServiceUnavailable)
				return
			}
		}
		io.WriteString(w, "success")
	})
	return mux, nil
}
