package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// Path is where the console is mounted.
const Path = "/console"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Resolver resolves tokens to principals, as the API does; *api.Server
// implements it.
type Resolver interface {
	Resolve(ctx context.Context, token string) (*api.Principal, error)
	ResolveHash(ctx context.Context, hash string) (*api.Principal, error)
}

// Config configures sessions (the console: keys of the configuration).
type Config struct {
	// IdleTimeout ends a session without a request for that long.
	// Default 8h.
	IdleTimeout time.Duration
	// MaxAge ends a session that long after sign-in. Default 7 days.
	MaxAge time.Duration
	// SecureCookies marks the session cookie Secure even on plain HTTP
	// requests: for a console behind a TLS-terminating proxy. Requests
	// served over TLS get Secure cookies in any case.
	SecureCookies bool
}

// Options configure the console.
type Options struct {
	Store *store.Store
	Auth  Resolver
	// Workflows stores, enables, disables and retires workflows; nil in
	// a process without the engine (the pages are read-only then).
	Workflows api.Workflows
	// Funnels computes the funnel page's numbers; nil uses Workflows
	// when it does (the engine).
	Funnels Funnels
	// Nearest finds the stores nearest a point for the stores page's
	// probe (the assigner's index); nil hides the probe.
	Nearest Nearest
	// Live schedules and cancels live sessions (the gateway's: it has
	// them announced); nil makes the live page read-only.
	Live api.LiveScheduler
	// Withdrawals stop an erased member's pending message tasks at WeCom;
	// nil: not stopped.
	Withdrawals api.Withdrawals
	// Queues reads the task queues for the operations page (an
	// asynq.Inspector); nil shows none.
	Queues Queues
	// Health checks the gateway's dependencies and channels for the
	// operations page, as /readyz does (name → nil when up); nil shows
	// none.
	Health func(context.Context) map[string]error
	// LedgerZone is the zone of the leaderboards' months
	// (ledger.time_zone); default Asia/Shanghai.
	LedgerZone *time.Location
	// LoadOptions are what workflows are checked with: the options of
	// `scrmgw workflow validate`.
	LoadOptions workflows.Options
	// DryRun are the options of the dry-run panel: those of `scrmgw
	// workflow dry-run`.
	DryRun engine.DryRunOptions
	Config Config
	// OnSourcesChanged is told when the console writes an event source,
	// so signature checks see it at once (api.Options.OnSourcesChanged).
	OnSourcesChanged func()
	// NewSourceSecret makes an event source's secret (the webhook
	// channel's whsec_ form); nil: the console cannot create or rotate
	// sources. ReservedSource is the id of the source the configuration
	// defines (webhook.secret), which the console may not create.
	NewSourceSecret func() string
	ReservedSource  string
	// Audit records the console's writes in the audit trail, as the
	// API's (the gateway's gateway/audit Recorder); nil records nothing.
	Audit api.Auditor
	// MaxBodyBytes limits form and JSON bodies. Default 1 MiB.
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Console serves the web console.
type Console struct {
	o     Options
	log   *slog.Logger
	pages map[string]*template.Template
}

// assetVersion changes with the embedded static files: their URLs carry
// it, so a browser may keep them for a year and still gets new ones with
// a new binary.
var assetVersion = func() string {
	h := sha256.New()
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// New parses the embedded templates; it panics on a broken one (a
// programmer error, caught by every test).
func New(o Options) *Console {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Config.IdleTimeout <= 0 {
		o.Config.IdleTimeout = 8 * time.Hour
	}
	if o.Config.MaxAge <= 0 {
		o.Config.MaxAge = 7 * 24 * time.Hour
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.Audit == nil {
		o.Audit = noAuditor{}
	}
	c := &Console{o: o, log: o.Logger, pages: map[string]*template.Template{}}
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		c.pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return c
}

// Mount registers the console's routes on r under Path.
func (c *Console) Mount(r *gin.Engine) {
	g := r.Group(Path, c.headers, c.limitBody)
	static, _ := fs.Sub(staticFS, "static")
	g.GET("/static/*file", c.static(http.FS(static)))
	g.GET("", func(ctx *gin.Context) { ctx.Redirect(http.StatusSeeOther, Path+"/workflows") })
	g.GET("/", func(ctx *gin.Context) { ctx.Redirect(http.StatusSeeOther, Path+"/workflows") })
	g.GET("/sign-in", c.signInPage)
	g.POST("/sign-in", c.signIn)
	g.GET("/language", c.setLanguage)
	g.POST("/sign-out", c.session, c.csrf, c.signOut)

	// Every page and action belongs to an API route group: a token
	// limited to other groups gets 403, and a read-only token may look
	// but not write (writes are audited like the API's).
	pages := g.Group("", c.session)
	wfRead := c.requires(api.ResourceWorkflows, false)
	pages.GET("/workflows", wfRead, c.workflowList)
	pages.GET("/workflows/new", c.requires(api.ResourceWorkflows, true), c.newWorkflow)
	pages.GET("/workflows/:brand/:name", wfRead, c.editor)
	pages.GET("/workflows/:brand/:name/diff", wfRead, c.diff)
	pages.GET("/funnel", wfRead, c.funnelPage)
	pages.GET("/funnel.csv", wfRead, c.funnelCSV)
	pages.GET("/guides", c.requires(api.ResourceGuides, false), c.guidesPage)
	pages.GET("/stores", c.requires(api.ResourceCatalog, false), c.storesPage)
	pages.GET("/stores/:store/qr", c.requires(api.ResourceCatalog, false), c.qrPage)
	mem := api.ResourceMembers
	pages.GET("/members", c.requires(mem, false), c.membersPage)
	pages.GET("/members/:id", c.requires(mem, false), c.memberPage)
	pages.GET("/members/:id/erase", c.requires(mem, true), c.eraseForm)
	pages.GET("/commerce", c.requires(api.ResourceCommerce, false), c.commercePage)
	pages.GET("/commerce/settlements.csv", c.requires(api.ResourceCommerce, false), c.settlementsCSV)
	pages.GET("/live", c.requires(api.ResourceCommerce, false), c.livePage)
	pages.GET("/operations", c.requires(api.ResourceAudit, false), c.adminOnly, c.operationsPage)

	checks := g.Group("", c.session, c.csrf)
	checks.POST("/workflows/:brand/:name/dry-run", wfRead, c.dryRun)
	checks.POST("/validate", wfRead, c.validate)

	writes := g.Group("", c.session)
	wf := api.ResourceWorkflows
	writes.POST("/workflows/new", c.write(wf, c.createWorkflow)...)
	writes.POST("/workflows/:brand/:name/save", c.write(wf, c.saveWorkflow)...)
	writes.POST("/workflows/:brand/:name/enable", c.write(wf, c.setEnabled(true))...)
	writes.POST("/workflows/:brand/:name/disable", c.write(wf, c.setEnabled(false))...)
	writes.POST("/workflows/:brand/:name/versions/:version/retire", c.write(wf, c.retire)...)
	cm := api.ResourceCommerce
	writes.POST("/commerce/sources", c.write(cm, c.createSource)...)
	writes.POST("/commerce/sources/:id/rotate", c.write(cm, c.rotateSource)...)
	writes.POST("/commerce/sources/:id/disable", c.write(cm, c.setSourceActive(false))...)
	writes.POST("/commerce/sources/:id/enable", c.write(cm, c.setSourceActive(true))...)
	writes.POST("/live", c.write(cm, c.scheduleLive)...)
	writes.POST("/live/:id/cancel", c.write(cm, c.cancelLive)...)
	// A member's export is a read (read-only tokens may), erasure a
	// write; both are audited under their own actions, as the API's.
	writes.POST("/members/:id/export", api.RequireResource(mem), c.action(store.AuditMemberExport), c.audited, c.csrf,
		c.requires(mem, false), c.exportMember)
	writes.POST("/members/:id/erase", append([]gin.HandlerFunc{c.action(store.AuditMemberErase)}, c.write(mem, c.eraseMember)...)...)

	// A path under /console/ that no route matches gets the console's
	// own 404 page and headers. Middleware added with Use after the
	// routes reaches only gin's 404 and 405 handlers (routes keep the
	// handlers they were registered with), so this costs other routes
	// nothing.
	r.Use(func(ctx *gin.Context) {
		if p := ctx.Request.URL.Path; p == Path || strings.HasPrefix(p, Path+"/") {
			setHeaders(ctx)
			c.notFound(ctx)
			ctx.Abort()
		}
	})
}

// limitBody refuses a body over MaxBodyBytes with 413 before anything
// reads it (or signs in), and bounds what handlers read.
func (c *Console) limitBody(ctx *gin.Context) {
	if ctx.Request.ContentLength > c.o.MaxBodyBytes {
		ctx.Header("Connection", "close")
		ctx.AbortWithStatus(http.StatusRequestEntityTooLarge)
		return
	}
	if ctx.Request.Body != nil {
		ctx.Request.Body = http.MaxBytesReader(ctx.Writer, ctx.Request.Body, c.o.MaxBodyBytes)
	}
	ctx.Next()
}

// tooLarge reports (and answers 413 for) a body read past its limit.
func tooLarge(ctx *gin.Context, err error) bool {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		ctx.Header("Connection", "close")
		ctx.AbortWithStatus(http.StatusRequestEntityTooLarge)
		return true
	}
	return false
}

// navItems are the pages of the top bar: (path under Path, message key).
var navItems = []navItem{
	{"/workflows", "nav.workflows", api.ResourceWorkflows, false},
	{"/funnel", "nav.funnel", api.ResourceWorkflows, false},
	{"/guides", "nav.guides", api.ResourceGuides, false},
	{"/members", "nav.members", api.ResourceMembers, false},
	{"/stores", "nav.stores", api.ResourceCatalog, false},
	{"/commerce", "nav.commerce", api.ResourceCommerce, false},
	{"/live", "nav.live", api.ResourceCommerce, false},
	{"/operations", "nav.operations", api.ResourceAudit, true},
}

// navItem is a top-bar entry: the page's path under Path, its message
// key, the API route group it belongs to (hidden from a token limited to
// other groups), and whether only the admin may open it.
type navItem struct {
	Path, Key, Resource string
	Admin               bool
}

// navFor lists the top bar's entries p may open.
func navFor(p *api.Principal) []navItem {
	if p == nil {
		return nil
	}
	out := make([]navItem, 0, len(navItems))
	for _, n := range navItems {
		if p.Allows(n.Resource) && (!n.Admin || p.Admin()) {
			out = append(out, n)
		}
	}
	return out
}

type noAuditor struct{}

func (noAuditor) Record(store.AuditEntry)    {}
func (noAuditor) TokenUsed(int64, time.Time) {}

// static serves the embedded assets; they change with the binary.
func (c *Console) static(fsys http.FileSystem) gin.HandlerFunc {
	files := http.StripPrefix(Path+"/static", http.FileServer(fsys))
	return func(ctx *gin.Context) {
		if strings.HasSuffix(ctx.Request.URL.Path, "/") {
			c.notFound(ctx)
			return
		}
		if ctx.Query("v") == assetVersion {
			ctx.Header("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			ctx.Header("Cache-Control", "public, max-age=300")
		}
		files.ServeHTTP(ctx.Writer, ctx.Request)
	}
}

// view is what every page template gets: the page's own data in Data.
type view struct {
	Lang      string
	Principal *api.Principal
	CSRF      string
	// Nav is the path of the top-bar entry to mark current.
	Nav  string
	Path string
	// Title is the page's title (translated).
	Title string
	Data  any
}

// T translates a message key.
func (v *view) T(key string, args ...any) string { return translate(v.Lang, key, args...) }

// NavItems lists the top bar's entries the principal may open.
func (v *view) NavItems() []navItem { return navFor(v.Principal) }

// Home is the first page the principal may open (a page that refuses
// them links back there); nil when signed out or allowed none.
func (v *view) Home() *navItem {
	if items := navFor(v.Principal); len(items) > 0 {
		return &items[0]
	}
	return nil
}

// Base is the console's path prefix.
func (v *view) Base() string { return Path }

// Asset is the URL of a static file, with the assets' version.
func (v *view) Asset(name string) string { return Path + "/static/" + name + "?v=" + assetVersion }

// OtherLang is the language the switch offers.
func (v *view) OtherLang() string {
	if v.Lang == "zh" {
		return "en"
	}
	return "zh"
}

// render executes a page template with the request's language, principal
// and CSRF token.
func (c *Console) render(ctx *gin.Context, status int, name, titleKey, nav string, data any) {
	t, ok := c.pages[name]
	if !ok {
		panic("console: no page template " + name)
	}
	v := &view{Lang: language(ctx.Request), Nav: nav, Path: ctx.Request.URL.RequestURI(), Data: data}
	if s, ok := sessionOf(ctx); ok {
		v.Principal, v.CSRF = s.principal, s.row.CSRF
	}
	v.Title = v.T(titleKey)
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		c.log.ErrorContext(ctx.Request.Context(), "rendering console page", slog.String("page", name), slog.Any("error", err))
		ctx.String(http.StatusInternalServerError, "internal error")
		return
	}
	ctx.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// message is a page that only says something: not found, forbidden, an
// error.
type message struct {
	Heading, Text string
}

func (c *Console) notFound(ctx *gin.Context) {
	lang := language(ctx.Request)
	c.render(ctx, http.StatusNotFound, "message", "notfound.title", "",
		message{Heading: translate(lang, "notfound.title"), Text: translate(lang, "notfound.text")})
}

// fail answers an unexpected error with a generic page, logging it.
func (c *Console) fail(ctx *gin.Context, err error) {
	if errors.Is(err, store.ErrNotFound) {
		c.notFound(ctx)
		return
	}
	c.log.ErrorContext(ctx.Request.Context(), "console request failed", slog.String("path", ctx.FullPath()), slog.Any("error", err))
	lang := language(ctx.Request)
	c.render(ctx, http.StatusInternalServerError, "message", "error.title", "",
		message{Heading: translate(lang, "error.title"), Text: translate(lang, "error.text")})
}

// brandParam returns the :brand of the request when the principal may
// see it, else answers 404 (as the API does: another brand's things do
// not exist for a brand token).
func (c *Console) brandParam(ctx *gin.Context) (string, bool) {
	b := ctx.Param("brand")
	p := principalOf(ctx)
	if !p.Admin() && b != p.Brand {
		c.notFound(ctx)
		return "", false
	}
	return b, true
}
