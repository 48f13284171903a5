package api

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// Route groups ("resources") a token can be limited to. Every route of
// the API belongs to exactly one (see Mount).
const (
	// ResourceCatalog: brands, stores and their contact ways (QR codes).
	ResourceCatalog = "catalog"
	// ResourceGuides: guides, their contact ways, guides leaving,
	// handovers and the guide points leaderboards.
	ResourceGuides = "guides"
	// ResourceMembers: members (find, create, bulk, update, assign,
	// merge) and, when they come, their export and erasure.
	ResourceMembers = "members"
	// ResourceWorkflows: workflows, their versions and stats.
	ResourceWorkflows = "workflows"
	// ResourceTasks: guide tasks.
	ResourceTasks = "tasks"
	// ResourceCommerce: commerce events and their sources, products,
	// a member's orders and coupons, settlements, a brand's webhook
	// endpoint.
	ResourceCommerce = "commerce"
	// ResourceTokens: API tokens (admin only).
	ResourceTokens = "tokens"
	// ResourceAudit: the audit trail (admin only).
	ResourceAudit = "audit"
	// ResourceQueues: the queue UI (admin only).
	ResourceQueues = "queues"
)

// Resources lists every route group.
var Resources = []string{ResourceCatalog, ResourceGuides, ResourceMembers, ResourceWorkflows, ResourceTasks,
	ResourceCommerce, ResourceTokens, ResourceAudit, ResourceQueues}

// CheckResources returns an error naming the first unknown group.
func CheckResources(names []string) error {
	for _, n := range names {
		if !slices.Contains(Resources, n) {
			return fmt.Errorf("unknown resource %q (want some of %s)", n, strings.Join(Resources, ", "))
		}
	}
	return nil
}

const resourceKey = "scrmgw.resource"

// RequireResource names the route group of the routes after it, for
// Authenticate and RequireAdmin (which refuse tokens limited to other
// groups) and for the audit trail.
func RequireResource(name string) gin.HandlerFunc {
	if !slices.Contains(Resources, name) {
		panic("api: unknown resource " + name)
	}
	return func(c *gin.Context) { c.Set(resourceKey, name) }
}
