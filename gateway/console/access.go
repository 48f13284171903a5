package console

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/store"
)

// Context keys of the console's own audit notes.
const (
	auditNoteKey = "scrmgw.console.audit_note"
	auditIDsKey  = "scrmgw.console.audit_ids"
	// auditActionKey names what a request did instead of
	// store.AuditWrite (an export, an erasure).
	auditActionKey = "scrmgw.console.audit_action"
)

// auditID adds an id to the request's audit entry besides its path
// parameters (the brand and name of a workflow created).
func auditID(ctx *gin.Context, key, value string) {
	ids := ctx.GetStringSlice(auditIDsKey)
	ctx.Set(auditIDsKey, append(ids, key+"="+store.AuditIDValue(value)))
}

// requires puts a route in an API route group (api.Resource*) and refuses,
// with a 403 page that says why, a principal that may not use it: a token
// limited to other groups, or a read-only token on a write (a route that
// changes something; validating and dry runs do not).
func (c *Console) requires(resource string, write bool) gin.HandlerFunc {
	mark := api.RequireResource(resource)
	return func(ctx *gin.Context) {
		mark(ctx)
		p := principalOf(ctx)
		lang := language(ctx.Request)
		switch {
		case write && p.ReadOnly:
			ctx.Set(auditNoteKey, "read_only")
			c.forbidden(ctx, translate(lang, "forbidden.read_only"))
		case !p.Allows(resource):
			ctx.Set(auditNoteKey, "resource")
			c.forbidden(ctx, translate(lang, "forbidden.resource", strings.Join(p.Resources, ", "), resource))
		default:
			ctx.Next()
			return
		}
		ctx.Abort()
	}
}

// forbidden answers 403 with a page that says why.
func (c *Console) forbidden(ctx *gin.Context, why string) {
	lang := language(ctx.Request)
	if scriptRequest(ctx) {
		ctx.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": why})
		return
	}
	c.render(ctx, http.StatusForbidden, "message", "forbidden.title", "",
		message{Heading: translate(lang, "forbidden.title"), Text: why})
}

// write is the chain of a signed-in write in a route group: audited
// (refusals too), CSRF-checked, refused to read-only and other groups'
// tokens.
func (c *Console) write(resource string, h gin.HandlerFunc) []gin.HandlerFunc {
	return []gin.HandlerFunc{api.RequireResource(resource), c.audited, c.csrf, c.requires(resource, true), h}
}

// audited records a console write in the audit trail once it is answered,
// whatever its outcome, with the fields of the API's writes: the route is
// the console's (/console/workflows/:brand/:name/save), the resource ids
// its path parameters.
func (c *Console) audited(ctx *gin.Context) {
	ctx.Next()
	s, ok := sessionOf(ctx)
	if !ok {
		return
	}
	action := ctx.GetString(auditActionKey)
	if action == "" {
		action = store.AuditWrite
	}
	e := api.EntryFor(ctx, s.principal, action)
	if e.Note == "" {
		e.Note = ctx.GetString(auditNoteKey)
	}
	var ids []string
	for _, p := range ctx.Params {
		ids = append(ids, p.Key+"="+store.AuditIDValue(p.Value))
	}
	ids = append(ids, ctx.GetStringSlice(auditIDsKey)...)
	e.ResourceIDs = strings.Join(ids, "&")
	c.o.Audit.Record(e)
}

// mayWrite reports whether the principal may change things in a route
// group: the pages show their write buttons only then.
func mayWrite(p *api.Principal, resource string) bool {
	return !p.ReadOnly && p.Allows(resource)
}

// canEdit reports whether the request's principal may save, enable,
// disable and retire workflows here.
func (c *Console) canEdit(ctx *gin.Context) bool {
	return c.o.Workflows != nil && mayWrite(principalOf(ctx), api.ResourceWorkflows)
}

// action names what the requests of a route do in the audit trail,
// instead of store.AuditWrite.
func (c *Console) action(name string) gin.HandlerFunc {
	return func(ctx *gin.Context) {
		ctx.Set(auditActionKey, name)
		ctx.Next()
	}
}

// adminOnly refuses, with a 403 page that says why, a brand token.
func (c *Console) adminOnly(ctx *gin.Context) {
	if !principalOf(ctx).Admin() {
		c.forbidden(ctx, translate(language(ctx.Request), "ops.admin_only"))
		ctx.Abort()
		return
	}
	ctx.Next()
}
