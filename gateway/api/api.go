package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/assign"
	"github.com/scrmgw/scrmgw/gateway/membercode"
	"github.com/scrmgw/scrmgw/gateway/sharelink"
	"github.com/scrmgw/scrmgw/store"
)

// Options configure the API.
type Options struct {
	Store *store.Store
	// AdminToken is the configured admin bearer token; AdminTokenNext,
	// when set, is a second one, valid as well, for rotating it without
	// downtime (admin_token_next).
	AdminToken     string
	AdminTokenNext string
	// Audit records the audit trail; nil records nothing (tests of
	// other things).
	Audit Auditor
	// MaxBodyBytes and MaxBulkBodyBytes limit request bodies.
	MaxBodyBytes     int64
	MaxBulkBodyBytes int64
	Logger           *slog.Logger
	// ContactWays create channel QR codes, one per WeCom instance in the
	// registry's order; none when WeCom is off.
	ContactWays []ContactWayMaker
	// Channels are the channel instances the gateway was wired with: a
	// guide's identities must name one of them. Nil: not checked (the
	// import command, which runs without channels).
	Channels adapters.Specs
	// Assigner finds nearest stores and binds members to guides; store
	// writes refresh its index.
	Assigner *assign.Assigner
	// Workflows is the workflow engine; nil in processes without one.
	Workflows Workflows
	// Events ingests POST /events; OnSourcesChanged is told when event
	// sources are written, so signature checks see them at once.
	Events           Events
	OnSourcesChanged func()
	// Settler settles commissions (POST /settlements).
	Settler Settler
	// Redeemer redeems coupons (POST /coupons/redeem); nil answers 503.
	Redeemer Redeemer
	// Tags sets members' tags on the channels too and resyncs them;
	// nil answers 503.
	Tags Tags
	// Groups sends to customer groups; nil answers 503.
	Groups Groups
	// Links makes contact links (WeCom acquisition links); nil answers
	// 503.
	Links Links
	// Moments publishes moment tasks; nil answers 503.
	Moments Moments
	// LedgerZone is the zone of the leaderboards' months
	// (ledger.time_zone). Default UTC.
	LedgerZone *time.Location
	// Live schedules live sessions (POST /live-sessions); nil answers
	// 503.
	Live LiveScheduler
	// Shares signs guides' share links (POST /guides/{id}/share-links);
	// nil answers 503.
	Shares *sharelink.Signer
	// Withdrawals stop an erased member's pending message tasks at WeCom;
	// nil: not stopped.
	Withdrawals Withdrawals
}

// Server serves the admin API.
type Server struct {
	store       *store.Store
	adminTokens []adminToken
	audit       Auditor
	maxBody     int64
	maxBulk     int64
	log         *slog.Logger

	contactWays []ContactWayMaker
	channels    adapters.Specs
	assigner    *assign.Assigner
	workflows   Workflows

	events           Events
	onSourcesChanged func()
	settler          Settler
	redeemer         Redeemer
	ledgerZone       *time.Location

	memberCodes *membercode.Codes
	live        LiveScheduler
	shares      *sharelink.Signer
	tags        Tags
	groups      Groups
	links       Links
	moments     Moments
	withdrawals Withdrawals
}

// New returns the API server.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var admins []adminToken
	if o.AdminToken != "" {
		admins = append(admins, adminToken{name: "admin", token: o.AdminToken, hash: store.HashToken(o.AdminToken)})
	}
	if o.AdminTokenNext != "" {
		admins = append(admins, adminToken{name: "admin_next", token: o.AdminTokenNext, hash: store.HashToken(o.AdminTokenNext)})
	}
	if o.Audit == nil {
		o.Audit = noAuditor{}
	}
	return &Server{store: o.Store, adminTokens: admins, audit: o.Audit, maxBody: o.MaxBodyBytes, maxBulk: o.MaxBulkBodyBytes, log: o.Logger,
		contactWays: o.ContactWays, channels: o.Channels, assigner: o.Assigner, workflows: o.Workflows,
		events: o.Events, onSourcesChanged: o.OnSourcesChanged, settler: o.Settler, redeemer: o.Redeemer, ledgerZone: o.LedgerZone,
		memberCodes: membercode.New(o.Store, nil), live: o.Live, shares: o.Shares, tags: o.Tags, groups: o.Groups, links: o.Links, moments: o.Moments, withdrawals: o.Withdrawals}
}

// adminToken is a configured admin token, its store.HashToken (what the
// console's sessions keep, computed once) and the name the audit trail
// gives it.
type adminToken struct{ name, token, hash string }

// maxBulkItems bounds the rows of one bulk request.
const maxBulkItems = 10000

// Mount registers the routes under /api/v1 on r. Every route belongs to
// one route group (Resources), which a token may be limited to; every
// write and every full phone shown is in the audit trail.
func (s *Server) Mount(r *gin.Engine) {
	v1 := r.Group("/api/v1", s.AuditTrail())
	v1.GET("/openapi.json", s.anyToken(), s.serveOpenAPI)
	group := func(resource string) *gin.RouterGroup {
		return v1.Group("", RequireResource(resource), s.Authenticate())
	}

	catalog := group(ResourceCatalog)
	catalog.GET("/brands", s.listBrands)
	catalog.POST("/brands", s.createBrand)
	catalog.POST("/brands/bulk", s.bulkBrands)
	catalog.GET("/brands/:id", s.getBrand)
	catalog.PUT("/brands/:id", s.putBrand)
	catalog.DELETE("/brands/:id", s.deleteBrand)
	catalog.GET("/stores", s.listStores)
	catalog.GET("/stores/nearest", s.nearestStores)
	catalog.POST("/stores", s.createStore)
	catalog.POST("/stores/bulk", s.bulkStores)
	catalog.GET("/stores/:id", s.getStore)
	catalog.PUT("/stores/:id", s.putStore)
	catalog.DELETE("/stores/:id", s.deleteStore)
	catalog.POST("/stores/:id/contact-way", s.storeContactWay)
	catalog.GET("/contact-ways", s.listContactWays)
	catalog.POST("/stores/:id/acquisition-link", s.storeLink)
	catalog.GET("/acquisition-links", s.listLinks)
	catalog.GET("/acquisition-quota", s.linkQuota)

	guides := group(ResourceGuides)
	guides.GET("/guides", s.listGuides)
	guides.POST("/guides", s.createGuide)
	guides.POST("/guides/bulk", s.bulkGuides)
	guides.GET("/guides/:id", s.getGuide)
	guides.PUT("/guides/:id", s.putGuide)
	guides.DELETE("/guides/:id", s.deleteGuide)
	guides.POST("/guides/:id/leave", s.guideLeave)
	guides.POST("/guides/:id/contact-way", s.guideContactWay)
	guides.POST("/guides/:id/acquisition-link", s.guideLink)
	guides.GET("/leaderboards", s.leaderboard)
	guides.GET("/handovers", s.listHandovers)

	members := group(ResourceMembers)
	members.GET("/members", s.findMember)
	members.GET("/members/:id/runs", s.memberRuns)
	members.POST("/members", s.createMember)
	members.POST("/members/bulk", s.bulkMembers)
	members.GET("/members/:id", s.getMember)
	members.PATCH("/members/:id", s.updateMember)
	members.POST("/members/:id/assign", s.assignMember)
	members.POST("/members/:id/merge", s.mergeMember)
	members.POST("/members/:id/erase", s.eraseMember)
	members.GET("/members/:id/export", s.exportMember)
	members.POST("/members/:id/tags", s.setMemberTags)
	members.POST("/channels/:key/tags/resync", s.resyncTags)
	members.GET("/groups", s.listGroups)
	members.POST("/groups/messages", s.sendGroupMessage)
	members.GET("/channels/:key/groups/:chat_id", s.getGroup)
	members.POST("/channels/:key/groups/welcome", s.groupWelcome)
	members.POST("/channels/:key/groups/resync", s.resyncGroups)

	workflows := group(ResourceWorkflows)
	workflows.GET("/workflows", s.listWorkflows)
	workflows.PUT("/workflows/:name", s.putWorkflow)
	workflows.POST("/workflows/:name/enable", s.setWorkflowEnabled(true))
	workflows.POST("/workflows/:name/disable", s.setWorkflowEnabled(false))
	workflows.GET("/workflows/:name/stats", s.workflowStats)
	workflows.GET("/workflows/:name/runs", s.workflowRuns)
	workflows.POST("/workflows/:name/versions/:version/retire", s.retireVersion)
	workflows.POST("/moments", s.publishMoment)
	workflows.GET("/moments", s.listMoments)
	workflows.GET("/moments/:id", s.getMoment)

	tasks := group(ResourceTasks)
	tasks.GET("/guide-tasks", s.guideTaskCounts)
	tasks.GET("/guides/:id/tasks", s.guideTasks)
	tasks.POST("/guide-tasks", s.createGuideTask)
	tasks.POST("/guide-tasks/:id/complete", s.completeGuideTask)

	commerce := group(ResourceCommerce)
	commerce.GET("/brands/:id/webhook-endpoint", s.getWebhookEndpoint)
	commerce.PUT("/brands/:id/webhook-endpoint", s.putWebhookEndpoint)
	commerce.DELETE("/brands/:id/webhook-endpoint", s.deleteWebhookEndpoint)
	commerce.POST("/events", s.postEvents)
	commerce.GET("/event-sources", s.listEventSources)
	commerce.POST("/event-sources", s.createEventSource)
	commerce.GET("/event-sources/:id", s.getEventSource)
	commerce.POST("/event-sources/:id/rotate", s.rotateEventSource)
	commerce.POST("/event-sources/:id/enable", s.setEventSourceActive(true))
	commerce.POST("/event-sources/:id/disable", s.setEventSourceActive(false))
	commerce.DELETE("/event-sources/:id", s.deleteEventSource)
	commerce.GET("/products", s.listProducts)
	commerce.POST("/products/bulk", s.bulkProducts)
	commerce.GET("/members/:id/orders", s.memberOrders)
	commerce.GET("/members/:id/coupons", s.memberCoupons)
	commerce.GET("/settlements", s.listSettlements)
	commerce.POST("/settlements", s.settle)

	tokens := group(ResourceTokens)
	tokens.GET("/tokens", s.listTokens)
	tokens.POST("/tokens", s.createToken)
	tokens.DELETE("/tokens/:id", s.revokeToken)

	group(ResourceAudit).GET("/audit", s.listAudit)

	pos := group(ResourceMembers)
	pos.POST("/pos/identify", s.posIdentify)
	commerce.POST("/coupons/redeem", s.redeemCoupon)
	commerce.GET("/orders/:id/commission", s.orderCommission)
	group(ResourceCatalog).POST("/brands/:id/member-code/rotate", s.rotateMemberCode)
	s.mountRetail(group)

	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) {
		abort(c, newError(http.StatusNotFound, CodeNotFound, "no such endpoint: %s %s", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		abort(c, newError(http.StatusMethodNotAllowed, "method_not_allowed", "method %s not allowed here", c.Request.Method))
	})
}

// page reads ?limit= and ?cursor= (the opaque "next" of the previous
// page) or ?after= (the last id of the previous page, as before cursors).
func page(c *gin.Context) (store.Page, *apiError) {
	n, e := pageLimit(c)
	p := store.Page{After: c.Query("after"), Limit: n}
	if e != nil {
		return p, e
	}
	if cur := c.Query("cursor"); cur != "" {
		if p.After != "" {
			return p, newError(http.StatusBadRequest, CodeInvalidArgument, "cursor: give cursor or after, not both")
		}
		after, err := store.AfterCursor(cur)
		if err != nil {
			return p, newError(http.StatusBadRequest, CodeInvalidArgument, "%v", err)
		}
		p.After = after
	}
	return p, nil
}

// pageLimit reads ?limit= (1-1000; 0 when absent: the store's default).
func pageLimit(c *gin.Context) (int, *apiError) {
	l := c.Query("limit")
	if l == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > 1000 {
		return 0, newError(http.StatusBadRequest, CodeInvalidArgument, "limit: want an integer from 1 to 1000, got %q", l)
	}
	return n, nil
}

// list answers {"items": [...], "next": "...", "next_after": "..."};
// next (an opaque cursor, for ?cursor=) and next_after (the last id, for
// ?after=) are set when the page is full, so a client pages until they are
// absent.
func list[T any](c *gin.Context, p store.Page, items []T, id func(T) string) {
	limit := p.Limit
	if limit == 0 {
		limit = 100
	}
	next, after := "", ""
	if len(items) == limit {
		after = id(items[len(items)-1])
		next = store.IDCursor(after)
	}
	keyset(c, items, next, gin.H{"next_after": after})
}

// keyset answers a keyset page: {"items": [...], "next": "..."}, next
// set while more remain; extra adds the non-empty string fields.
func keyset[T any](c *gin.Context, items []T, next string, extra gin.H) {
	if items == nil {
		items = []T{}
	}
	body := gin.H{"items": items}
	if next != "" {
		body["next"] = next
	}
	for k, v := range extra {
		if v != "" {
			body[k] = v
		}
	}
	c.JSON(http.StatusOK, body)
}

// bulkBody is the body of a bulk upsert.
type bulkBody[T any] struct {
	Items []T `json:"items"`
}

// checkBulk validates a bulk request's size and ids before anything is
// written: every bad row is reported at once.
func checkBulk[T any](items []T, id func(T) string, validate func(int, T) error) *apiError {
	if len(items) == 0 {
		return newError(http.StatusBadRequest, CodeInvalidArgument, "items: want at least one item")
	}
	if len(items) > maxBulkItems {
		return newError(http.StatusBadRequest, CodeInvalidArgument, "items: at most %d per request, got %d", maxBulkItems, len(items))
	}
	var details []Detail
	seen := make(map[string]int, len(items))
	for i, it := range items {
		row := i
		if err := validate(i, it); err != nil {
			ds := fieldDetails(err, i)
			if len(ds) == 0 {
				ds = []Detail{{Row: &row, Message: err.Error()}}
			}
			details = append(details, ds...)
		}
		if k := id(it); k != "" {
			if first, dup := seen[k]; dup {
				details = append(details, Detail{Row: &row, Field: "id", Message: fmt.Sprintf("duplicate id %q (also in row %d)", k, first)})
			} else {
				seen[k] = i
			}
		}
		if len(details) >= 100 {
			break
		}
	}
	if len(details) == 0 {
		return nil
	}
	e := newError(http.StatusBadRequest, CodeInvalidArgument, "%d problem(s) in the items; nothing was written", len(details))
	e.Details = details
	return e
}

// decodeBulk reads the body of a bulk upsert: it decodes it, then
// converts and checks every item with conv, id the key no two items may
// share (checkBulk: every bad row reported at once). It answers what
// fails; ok is false then.
func decodeBulk[In, T any](s *Server, c *gin.Context, id func(In) string, conv func(In) (T, error)) (items []T, ok bool) {
	var in bulkBody[In]
	if e := decodeJSON(c, s.maxBulk, &in); e != nil {
		abort(c, e)
		return nil, false
	}
	items = make([]T, len(in.Items))
	e := checkBulk(in.Items, id, func(i int, it In) error {
		var err error
		items[i], err = conv(it)
		return err
	})
	if e != nil {
		abort(c, e)
		return nil, false
	}
	return items, true
}

// decodeWrite reads the body of a single write: it decodes it, takes
// the path's id into it when bodyID is given (idParam, for a PUT), then
// converts and checks it with conv. It answers what fails; ok is false
// then.
func decodeWrite[In, T any](s *Server, c *gin.Context, bodyID func(*In) *string, conv func(In) (T, error)) (v T, ok bool) {
	var in In
	if !s.decodeBody(c, &in) {
		return v, false
	}
	if bodyID != nil {
		if e := idParam(c, bodyID(&in)); e != nil {
			abort(c, e)
			return v, false
		}
	}
	v, err := conv(in)
	if err != nil {
		s.fail(c, err)
		return v, false
	}
	return v, true
}

// positiveIDParam reads the path's numeric id (a member's, a run's); a
// malformed one is answered 400.
func positiveIDParam(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "id: want a positive integer, got %q", c.Param("id")))
		return 0, false
	}
	return id, true
}

// idParam checks that a body's id, when given, matches the path's.
func idParam(c *gin.Context, bodyID *string) *apiError {
	id := c.Param("id")
	if *bodyID == "" {
		*bodyID = id
	} else if *bodyID != id {
		return newError(http.StatusBadRequest, CodeInvalidArgument, "id: body says %q, path says %q", *bodyID, id)
	}
	return nil
}

func rowError(row int, status int, code, format string, args ...any) *apiError {
	e := newError(status, code, format, args...)
	r := row
	e.Details = []Detail{{Row: &r, Message: e.Message}}
	return e
}

// refreshIndex re-reads written stores into the nearest-store index.
func (s *Server) refreshIndex(c *gin.Context, ids ...string) {
	if s.assigner != nil {
		s.assigner.Refresh(c.Request.Context(), ids...)
	}
}

// isNotFound is errors.Is(err, store.ErrNotFound).
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
