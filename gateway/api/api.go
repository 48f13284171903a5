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
	"github.com/scrmgw/scrmgw/store"
)

// Options configure the API.
type Options struct {
	Store *store.Store
	// AdminToken is the configured admin bearer token.
	AdminToken string
	// MaxBodyBytes and MaxBulkBodyBytes limit request bodies.
	MaxBodyBytes     int64
	MaxBulkBodyBytes int64
	Logger           *slog.Logger
	// ContactWays creates channel QR codes; nil when WeCom is off.
	ContactWays ContactWayMaker
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
	// LedgerZone is the zone of the leaderboards' months
	// (ledger.time_zone). Default UTC.
	LedgerZone *time.Location
}

// Server serves the admin API.
type Server struct {
	store      *store.Store
	adminToken string
	maxBody    int64
	maxBulk    int64
	log        *slog.Logger

	contactWays ContactWayMaker
	channels    adapters.Specs
	assigner    *assign.Assigner
	workflows   Workflows

	events           Events
	onSourcesChanged func()
	settler          Settler
	ledgerZone       *time.Location
}

// New returns the API server.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{store: o.Store, adminToken: o.AdminToken, maxBody: o.MaxBodyBytes, maxBulk: o.MaxBulkBodyBytes, log: o.Logger,
		contactWays: o.ContactWays, channels: o.Channels, assigner: o.Assigner, workflows: o.Workflows,
		events: o.Events, onSourcesChanged: o.OnSourcesChanged, settler: o.Settler, ledgerZone: o.LedgerZone}
}

// maxBulkItems bounds the rows of one bulk request.
const maxBulkItems = 10000

// Mount registers the routes under /api/v1 on r.
func (s *Server) Mount(r *gin.Engine) {
	// Admin only, outside the v1 group's authentication (as the queue UI).
	r.GET("/api/v1/handovers", s.RequireAdmin(), s.listHandovers)
	v1 := r.Group("/api/v1", s.Authenticate())

	v1.GET("/brands", s.listBrands)
	v1.POST("/brands", s.createBrand)
	v1.POST("/brands/bulk", s.bulkBrands)
	v1.GET("/brands/:id", s.getBrand)
	v1.PUT("/brands/:id", s.putBrand)
	v1.DELETE("/brands/:id", s.deleteBrand)
	v1.GET("/brands/:id/webhook-endpoint", s.getWebhookEndpoint)
	v1.PUT("/brands/:id/webhook-endpoint", s.putWebhookEndpoint)
	v1.DELETE("/brands/:id/webhook-endpoint", s.deleteWebhookEndpoint)

	v1.GET("/stores", s.listStores)
	v1.GET("/stores/nearest", s.nearestStores)
	v1.POST("/stores", s.createStore)
	v1.POST("/stores/bulk", s.bulkStores)
	v1.GET("/stores/:id", s.getStore)
	v1.PUT("/stores/:id", s.putStore)
	v1.DELETE("/stores/:id", s.deleteStore)

	v1.GET("/guides", s.listGuides)
	v1.POST("/guides", s.createGuide)
	v1.POST("/guides/bulk", s.bulkGuides)
	v1.GET("/guides/:id", s.getGuide)
	v1.PUT("/guides/:id", s.putGuide)
	v1.DELETE("/guides/:id", s.deleteGuide)
	v1.POST("/guides/:id/leave", s.guideLeave)

	v1.POST("/stores/:id/contact-way", s.storeContactWay)
	v1.POST("/guides/:id/contact-way", s.guideContactWay)
	v1.GET("/contact-ways", s.listContactWays)

	v1.GET("/members", s.findMember)
	v1.POST("/members", s.createMember)
	v1.POST("/members/bulk", s.bulkMembers)
	v1.GET("/members/:id", s.getMember)
	v1.PATCH("/members/:id", s.updateMember)
	v1.POST("/members/:id/assign", s.assignMember)
	v1.POST("/members/:id/merge", s.mergeMember)

	v1.GET("/workflows", s.listWorkflows)
	v1.PUT("/workflows/:name", s.putWorkflow)
	v1.POST("/workflows/:name/enable", s.setWorkflowEnabled(true))
	v1.POST("/workflows/:name/disable", s.setWorkflowEnabled(false))
	v1.GET("/workflows/:name/stats", s.workflowStats)
	v1.POST("/workflows/:name/versions/:version/retire", s.retireVersion)
	v1.GET("/guide-tasks", s.guideTaskCounts)
	v1.POST("/guide-tasks", s.createGuideTask)
	v1.POST("/guide-tasks/:id/complete", s.completeGuideTask)

	v1.POST("/events", s.postEvents)
	v1.GET("/event-sources", s.listEventSources)
	v1.POST("/event-sources", s.createEventSource)
	v1.GET("/event-sources/:id", s.getEventSource)
	v1.POST("/event-sources/:id/rotate", s.rotateEventSource)
	v1.POST("/event-sources/:id/enable", s.setEventSourceActive(true))
	v1.POST("/event-sources/:id/disable", s.setEventSourceActive(false))
	v1.DELETE("/event-sources/:id", s.deleteEventSource)

	v1.GET("/products", s.listProducts)
	v1.POST("/products/bulk", s.bulkProducts)
	v1.GET("/members/:id/orders", s.memberOrders)
	v1.GET("/members/:id/coupons", s.memberCoupons)
	v1.GET("/settlements", s.listSettlements)
	v1.POST("/settlements", s.settle)
	v1.GET("/leaderboards", s.leaderboard)

	v1.GET("/tokens", s.listTokens)
	v1.POST("/tokens", s.createToken)
	v1.DELETE("/tokens/:id", s.revokeToken)

	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) {
		abort(c, newError(http.StatusNotFound, CodeNotFound, "no such endpoint: %s %s", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		abort(c, newError(http.StatusMethodNotAllowed, "method_not_allowed", "method %s not allowed here", c.Request.Method))
	})
}

// page reads ?limit= and ?after=.
func page(c *gin.Context) (store.Page, *apiError) {
	p := store.Page{After: c.Query("after")}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			return p, newError(http.StatusBadRequest, CodeInvalidArgument, "limit: want an integer from 1 to 1000, got %q", l)
		}
		p.Limit = n
	}
	return p, nil
}

// list answers {"items": [...], "next_after": "..."}; next_after is set
// when the page is full, so a client pages until it is absent.
func list[T any](c *gin.Context, p store.Page, items []T, id func(T) string) {
	if items == nil {
		items = []T{}
	}
	body := gin.H{"items": items}
	limit := p.Limit
	if limit == 0 {
		limit = 100
	}
	if len(items) == limit {
		body["next_after"] = id(items[len(items)-1])
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
