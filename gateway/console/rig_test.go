package console_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/webhook"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/assign"
	"github.com/scrmgw/scrmgw/gateway/audit"
	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/gateway/inbox"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

const adminToken = "console-test-admin-token-0123456789"

// rig is a console on a real store and workflow engine, served over
// HTTP, with the admin API beside it (as the gateway mounts both).
type rig struct {
	t      *testing.T
	store  *store.Store
	engine *engine.Engine
	srv    *httptest.Server
	mux    *gin.Engine
	// audit is the audit trail's recorder the API and the console share.
	audit *audit.Recorder
	// assigner is the nearest-store index the API and the console share.
	assigner *assign.Assigner
	// redis is the Redis of the rig's queue.
	redis asynq.RedisConnOpt
	// sourcesChanged counts the console's calls of OnSourcesChanged.
	sourcesChanged atomic.Int32
	// webhook is the signed-events channel at /callbacks/events, on
	// the event sources the console manages, recording into the inbox.
	webhook *webhook.Channel
	// now is the console's clock; tests move it.
	mu  sync.Mutex
	now time.Time
	seq int
}

func (r *rig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *rig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

// unusedSender fails the test: the console never starts a run.
type unusedSender struct{ t *testing.T }

func (u unusedSender) Send(context.Context, string, *adapters.Outbound, engine.SendMeta) error {
	u.t.Error("the console sent a message")
	return nil
}

var ginOnce sync.Once

func newRig(t *testing.T, dialect string, cfg console.Config) *rig {
	t.Helper()
	ginOnce.Do(func() { gin.SetMode(gin.ReleaseMode) })
	ctx := context.Background()
	st := storetest.Open(t, dialect)
	reg, err := templates.LoadFS(configs.BuiltinTemplates())
	if err != nil {
		t.Fatalf("loading templates: %v", err)
	}
	ropt, err := asynq.ParseRedisURI(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := asynq.NewClient(ropt)
	t.Cleanup(func() { q.Close() })
	insp := asynq.NewInspector(ropt)
	t.Cleanup(func() { insp.Close() })
	eng, err := engine.New(engine.Options{Store: st, Queue: q, Templates: reg, Sender: unusedSender{t}})
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	for _, b := range []store.Brand{{ID: "camellia", Name: "Camellia"}, {ID: "peony", Name: "Peony"}} {
		if err := st.CreateBrand(ctx, &b); err != nil {
			t.Fatalf("creating brand: %v", err)
		}
	}
	rec := audit.New(st, audit.Options{})
	actx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(actx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	as, err := assign.New(ctx, st, assign.Options{})
	if err != nil {
		t.Fatalf("assigner: %v", err)
	}
	r := &rig{t: t, store: st, engine: eng, now: time.Now(), audit: rec, assigner: as, redis: ropt}
	apiSrv := api.New(api.Options{Store: st, AdminToken: adminToken, Workflows: eng, Audit: rec, Assigner: as, MaxBodyBytes: 1 << 20, MaxBulkBodyBytes: 1 << 20})
	c := console.New(console.Options{Store: st, Auth: apiSrv, Workflows: eng, Audit: rec, Nearest: as, Live: liveRecorder{st},
		LoadOptions: workflows.Options{Templates: reg},
		DryRun:      engine.DryRunOptions{Templates: reg, Locale: "zh", Specs: []adapters.Spec{wecom.Spec(), dingtalk.SpecFor("ding-robot")}},
		Config:      cfg, Now: r.clock, Queues: insp, OnSourcesChanged: func() { r.sourcesChanged.Add(1); r.webhook.InvalidateSources() },
		NewSourceSecret: webhook.NewSecret, ReservedSource: webhook.DefaultSourceID,
		// The gateway's readiness checks: the database up, DingTalk's
		// stream down.
		Health: func(context.Context) map[string]error {
			return map[string]error{"database": nil, "dingtalk": errors.New("stream not connected")}
		}})
	// The signed events channel, as the gateway wires it: the event
	// sources' secrets from the store, the events into the inbox.
	inb := inbox.NewRecorder(st, q, slog.New(slog.DiscardHandler), inbox.RecorderOptions{})
	ictx, istop := context.WithCancel(context.Background())
	go inb.Run(ictx)
	t.Cleanup(func() { istop(); inb.Wait() })
	r.webhook, err = webhook.New(webhook.Config{}, webhook.NewIngester(inb, nil, 0, nil), func(ctx context.Context) ([]webhook.Source, error) {
		srcs, err := st.ActiveSourceSecrets(ctx, time.Now())
		if err != nil {
			return nil, err
		}
		out := make([]webhook.Source, 0, len(srcs))
		for _, s := range srcs {
			src, err := webhook.NewSource(s.ID, s.BrandID, s.Secrets)
			if err != nil {
				return nil, err
			}
			out = append(out, src)
		}
		return out, nil
	}, nil)
	if err != nil {
		t.Fatalf("webhook channel: %v", err)
	}
	e := gin.New()
	apiSrv.Mount(e)
	c.Mount(e)
	for _, rt := range r.webhook.Routes() {
		e.Handle(rt.Method, rt.Path, gin.WrapH(rt.Handler))
	}
	// The channel's QR images (WeCom's CDN in production), served here.
	e.GET("/test-qr/:state", func(ctx *gin.Context) {
		png, err := qrcode.Encode("https://work.weixin.qq.com/ca/"+ctx.Param("state"), qrcode.Medium, 256)
		if err != nil {
			ctx.AbortWithStatus(http.StatusInternalServerError)
			return
		}
		ctx.Data(http.StatusOK, "image/png", png)
	})
	r.mux = e
	r.srv = httptest.NewServer(e)
	t.Cleanup(r.srv.Close)
	return r
}

// put stores a workflow file of configs/workflows for brand, renamed
// name, and returns its YAML.
func (r *rig) put(brand, name, file string, enable bool) string {
	r.t.Helper()
	data, err := os.ReadFile("../../configs/workflows/" + file)
	if err != nil {
		r.t.Fatal(err)
	}
	src := regexp.MustCompile(`(?m)^name: .*$`).ReplaceAllString(string(data), "name: "+name)
	src = regexp.MustCompile(`(?m)^  brand: .*$`).ReplaceAllString(src, "  brand: "+brand)
	ctx := context.Background()
	if _, err := r.engine.Put(ctx, brand, name, []byte(src)); err != nil {
		r.t.Fatalf("putting %s: %v", name, err)
	}
	if enable {
		if err := r.engine.Enable(ctx, brand, name); err != nil {
			r.t.Fatal(err)
		}
	}
	return src
}

// brandToken issues a brand's API token.
func (r *rig) brandToken(brand string) string {
	r.t.Helper()
	return r.token(store.NewAPIToken{Name: brand + " marketer", BrandID: &brand})
}

// token issues an API token.
func (r *rig) token(in store.NewAPIToken) string {
	r.t.Helper()
	plain, _, err := r.store.CreateAPIToken(context.Background(), in)
	if err != nil {
		r.t.Fatal(err)
	}
	return plain
}

// auditLog returns the audit trail written so far.
func (r *rig) auditLog() []store.AuditEntry {
	r.t.Helper()
	if err := r.audit.Flush(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	es, err := r.store.AuditLog(context.Background(), store.AuditQuery{Limit: 1000})
	if err != nil {
		r.t.Fatal(err)
	}
	return es
}

// client is a browser-like HTTP client: cookies, no redirects followed.
func (r *rig) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signIn signs c in with token through the sign-in form and returns the
// sign-in response.
func (r *rig) signIn(c *http.Client, token string) *http.Response {
	r.t.Helper()
	body := r.get(c, "/console/sign-in")
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		r.t.Fatalf("no form token on the sign-in page:\n%s", body)
	}
	resp, err := c.PostForm(r.srv.URL+"/console/sign-in", url.Values{"token": {token}, "csrf_token": {m[1]}, "next": {"/console/workflows"}})
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (r *rig) get(c *http.Client, path string) string {
	r.t.Helper()
	resp, err := c.Get(r.srv.URL + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		r.t.Fatal(err)
	}
	return b.String()
}

func mustGet(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func getBody(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return readAll(t, resp)
}

// httptestTLS serves the rig's handler over TLS as well.
func httptestTLS(t *testing.T, r *rig) *httptest.Server {
	s := httptest.NewTLSServer(r.srv.Config.Handler)
	t.Cleanup(s.Close)
	return s
}

// english is a client that reads the console in English.
func (r *rig) english() *http.Client {
	c := r.client()
	u, _ := url.Parse(r.srv.URL + "/console/")
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "scrmgw_lang", Value: "en", Path: "/console/"}})
	return c
}

// jarClient gives c a cookie jar and stops it following redirects.
func jarClient(c *http.Client) {
	c.Jar, _ = cookiejar.New(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
}

func htmlUnescape(s string) string { return html.UnescapeString(s) }

func itoa(n int) string { return strconv.Itoa(n) }

// seedRuns gives a workflow runs as the engine leaves them: entered
// members, converted within the last days, and one step that failed.
func (r *rig) seedRuns(brand, workflow string, entered, converted int, failure string) {
	r.t.Helper()
	ctx := context.Background()
	head, err := r.store.Workflow(ctx, brand, workflow)
	if err != nil {
		r.t.Fatal(err)
	}
	now := r.clock()
	for i := 0; i < entered; i++ {
		m, _, err := r.store.EnsureMember(ctx, store.NewMember{BrandID: brand, Name: fmt.Sprintf("Member %d", i),
			Identities: []store.Identity{{Channel: "wecom", ExternalID: fmt.Sprintf("wm-%s-%s-%d", brand, workflow, i)}}})
		if err != nil {
			r.t.Fatal(err)
		}
		started := now.Add(-time.Duration(i+1) * 7 * time.Hour)
		wake := started
		runs, err := r.store.StartRuns(ctx, []*store.WorkflowRun{{MemberID: m.ID, BrandID: brand, Workflow: workflow, Version: head.Version,
			TriggerKey: "seed", Step: "assign", WakeAt: &wake, StartedAt: started}})
		if err != nil || len(runs) != 1 {
			r.t.Fatalf("starting a run: %v", err)
		}
		switch {
		case i < converted:
			if _, err := r.store.EndRun(ctx, runs[0].ID, store.RunConverted, "goal", started.Add(2*time.Hour)); err != nil {
				r.t.Fatal(err)
			}
		case i == converted && failure != "":
			m := store.RunMove{RunID: runs[0].ID, Seq: runs[0].WakeSeq, Step: "assign", Visit: 1, StepState: store.StepPending, Error: failure, At: now.Add(-time.Hour)}
			if moved, _, err := r.store.MoveRun(ctx, m); err != nil || !moved {
				r.t.Fatalf("failing a step: %v %v", moved, err)
			}
		}
	}
}

// routes lists the routes of the rig's engine.
func (r *rig) routes() gin.RoutesInfo { return r.mux.Routes() }
