package api

import (
	"encoding/csv"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// Auditor records the audit trail off the request path (gateway/audit's
// Recorder): Record may wait only when its buffer is full.
type Auditor interface {
	Record(e store.AuditEntry)
	// TokenUsed notes an API token's use, for its last-used time.
	TokenUsed(id int64, at time.Time)
}

type noAuditor struct{}

func (noAuditor) Record(store.AuditEntry)    {}
func (noAuditor) TokenUsed(int64, time.Time) {}

// Context keys of what a request's audit entry says.
const (
	auditActionKey = "scrmgw.audit.action"
	auditIDsKey    = "scrmgw.audit.ids"
	auditPhonesKey = "scrmgw.audit.phones"
	auditNoteKey   = "scrmgw.audit.note"
	// auditWhoKey is the principal of a refused token (expired), which
	// is not the request's principal.
	auditWhoKey = "scrmgw.audit.who"
)

// auditAction names what a request did, instead of AuditWrite
// (store.AuditMemberErase), and records a read too (store.AuditMemberExport).
func auditAction(c *gin.Context, action string) { c.Set(auditActionKey, action) }

// auditID adds an id the request named to its audit entry, besides its
// path parameters (the member a merge kept, the token created).
func auditID(c *gin.Context, key, value string) {
	ids, _ := c.Get(auditIDsKey)
	s, _ := ids.(string)
	if s != "" {
		s += "&"
	}
	c.Set(auditIDsKey, s+key+"="+store.AuditIDValue(value))
}

// phoneShown records that the response shows a member's full phone.
func phoneShown(c *gin.Context, memberID int64) {
	v, _ := c.Get(auditPhonesKey)
	ids, _ := v.([]int64)
	c.Set(auditPhonesKey, append(ids, memberID))
}

// AuditTrail records, when the request is done, every write (POST, PUT,
// PATCH, DELETE: accepted or refused, by a known token), every full phone
// number a response showed, and what a handler marked (exports). Requests
// without a known token (none, forged, revoked) are not recorded: the
// refusal limiter throttles them.
func (s *Server) AuditTrail() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		write := !safeMethod(c.Request.Method)
		action := c.GetString(auditActionKey)
		phones, _ := c.Get(auditPhonesKey)
		if !write && action == "" && phones == nil {
			return
		}
		p, ok := PrincipalOf(c)
		if !ok {
			if v, found := c.Get(auditWhoKey); found {
				p, ok = v.(*Principal)
			}
		}
		if !ok {
			return
		}
		if action == "" && write {
			action = store.AuditWrite
		}
		if action != "" {
			e := EntryFor(c, p, action)
			e.ResourceIDs = joinIDs(pathIDs(c), c.GetString(auditIDsKey))
			s.audit.Record(e)
		}
		if ids, _ := phones.([]int64); len(ids) > 0 {
			e := EntryFor(c, p, store.AuditPhoneView)
			var b strings.Builder
			for i, id := range ids {
				if i > 0 {
					b.WriteByte('&')
				}
				b.WriteString("member=")
				b.WriteString(strconv.FormatInt(id, 10))
			}
			e.ResourceIDs = b.String()
			s.audit.Record(e)
		}
	}
}

// EntryFor fills an audit entry's who, when and from where for a request
// by p: the client IP as gin resolves it through the trusted proxies,
// the route pattern, the route group, the status answered so far. The
// console records its own writes with it.
func EntryFor(c *gin.Context, p *Principal, action string) store.AuditEntry {
	e := store.AuditEntry{At: time.Now(), Actor: p.Name, Brand: p.Brand, Action: action, Method: c.Request.Method,
		Route: c.FullPath(), Resource: c.GetString(resourceKey), Status: c.Writer.Status(), Note: c.GetString(auditNoteKey),
		ClientIP: c.ClientIP(), UserAgent: c.Request.UserAgent()}
	if p.TokenID != 0 {
		id := p.TokenID
		e.TokenID = &id
	}
	if len(e.UserAgent) > store.AuditUserAgentMax {
		e.UserAgent = e.UserAgent[:store.AuditUserAgentMax]
	}
	return e
}

// pathIDs are the route's parameters as k=v&k=v.
func pathIDs(c *gin.Context) string {
	var b strings.Builder
	for i, p := range c.Params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.Key)
		b.WriteByte('=')
		b.WriteString(store.AuditIDValue(p.Value))
	}
	return b.String()
}

func joinIDs(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "&" + b
}

// listAudit answers GET /audit?since=&until=&token=&action=&resource=
// &resource_id=&limit=&after= (admin only): entries in id order, paged by
// after; as CSV with Accept: text/csv or format=csv (every matching entry
// unless limit is given).
func (s *Server) listAudit(c *gin.Context) {
	if !adminOnly(c) {
		return
	}
	q := store.AuditQuery{Token: c.Query("token"), Action: c.Query("action"), Resource: c.Query("resource"), ResourceID: c.Query("resource_id")}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := c.Query(f.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "%s: want an RFC 3339 time such as 2026-12-01T00:00:00+08:00, got %q", f.name, v))
				return
			}
			*f.dst = t
		}
	}
	if v := c.Query("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "after: want the id of the last entry of the previous page, got %q", v))
			return
		}
		q.After = n
	}
	pg, e := page(c)
	if e != nil {
		abort(c, e)
		return
	}
	q.Limit = pg.Limit
	if c.Query("cursor") != "" {
		// page decoded the cursor into the last id of the previous page.
		n, err := strconv.ParseInt(pg.After, 10, 64)
		if err != nil || n < 0 {
			abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "cursor: not a cursor of this list: pass the \"next\" of the previous page unchanged"))
			return
		}
		q.After = n
	}
	ctx := c.Request.Context()
	if c.Query("format") == "csv" || strings.Contains(c.GetHeader("Accept"), "text/csv") {
		s.auditCSV(c, q)
		return
	}
	items, err := s.store.AuditLog(ctx, q)
	if err != nil {
		s.fail(c, err)
		return
	}
	list(c, pg, items, func(e store.AuditEntry) string { return strconv.FormatInt(e.ID, 10) })
}

// auditCSVHeader is the header row of the audit trail as CSV.
var auditCSVHeader = []string{"id", "at", "token_id", "actor", "brand", "action", "method", "route", "resource", "resource_ids",
	"status", "note", "client_ip", "user_agent"}

func (s *Server) auditCSV(c *gin.Context, q store.AuditQuery) {
	ctx := c.Request.Context()
	all := q.Limit == 0
	if all {
		q.Limit = 1000
	}
	items, err := s.store.AuditLog(ctx, q)
	if err != nil {
		s.fail(c, err)
		return
	}
	if !all && len(items) == q.Limit {
		c.Header("X-Next-After", strconv.FormatInt(items[len(items)-1].ID, 10))
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="audit.csv"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	w.Write(auditCSVHeader)
	for {
		for _, e := range items {
			tok := ""
			if e.TokenID != nil {
				tok = strconv.FormatInt(*e.TokenID, 10)
			}
			w.Write([]string{strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339Nano), tok, csvCell(e.Actor), e.Brand, e.Action,
				e.Method, e.Route, e.Resource, csvCell(e.ResourceIDs), strconv.Itoa(e.Status), e.Note, e.ClientIP, csvCell(e.UserAgent)})
		}
		if !all || len(items) < q.Limit {
			break
		}
		q.After = items[len(items)-1].ID
		if items, err = s.store.AuditLog(ctx, q); err != nil {
			// The header is sent: end the file short, and say so in the log.
			s.log.ErrorContext(ctx, "writing the audit trail as CSV", slog.Any("error", err))
			break
		}
	}
	w.Flush()
}

// csvCell keeps a spreadsheet from taking a cell (a user agent, a token
// name) for a formula.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
