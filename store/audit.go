package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Actions of audit entries. Writes through the admin API are AuditWrite
// unless the handler names what they did more precisely.
const (
	// AuditWrite is a POST, PUT, PATCH or DELETE through the admin API,
	// whatever its outcome (a refused write is recorded with its status).
	AuditWrite = "api.write"
	// AuditPhoneView is a response that showed a member's full phone
	// number (a token with can_view_phone).
	AuditPhoneView = "phone.view"
	// AuditMemberExport is the export of what is stored about a member.
	AuditMemberExport = "member.export"
	// AuditMemberErase is the erasure of a member's personal data.
	AuditMemberErase = "member.erase"
	// AuditTokenCreate and AuditTokenRevoke are token changes made on
	// the command line (the API's are AuditWrite entries).
	AuditTokenCreate = "token.create"
	AuditTokenRevoke = "token.revoke"
)

// AuditEntry is one line of the append-only audit trail: who did what,
// when and from where. It holds ids, never request bodies, phone numbers
// or secrets.
type AuditEntry struct {
	ID int64 `gorm:"primaryKey;autoIncrement" json:"id"`
	// At is when the request was answered (UTC).
	At time.Time `gorm:"not null;index" json:"at"`
	// TokenID is the API token's id; nil for the configured admin
	// token(s) and for the command line.
	TokenID *int64 `gorm:"index" json:"token_id,omitempty"`
	// Actor is the token's name, "admin" or "admin_next" for the
	// configured admin tokens, "cli" for the command line.
	Actor string `gorm:"size:200;not null" json:"actor"`
	// Brand is the brand the actor is limited to; empty for the admin.
	Brand string `gorm:"size:64;not null;default:''" json:"brand,omitempty"`
	// Action is AuditWrite, AuditPhoneView, ...
	Action string `gorm:"size:40;not null;index" json:"action"`
	// Method and Route are the request's method and route pattern
	// (/api/v1/members/:id), never its query string.
	Method string `gorm:"size:10;not null;default:''" json:"method,omitempty"`
	Route  string `gorm:"size:200;not null;default:''" json:"route,omitempty"`
	// Resource is the route group (members, workflows, ...).
	Resource string `gorm:"size:40;not null;default:'';index" json:"resource,omitempty"`
	// ResourceIDs are the ids the request named, as a query string
	// (id=42&into=7).
	ResourceIDs string `gorm:"size:500;not null;default:''" json:"resource_ids,omitempty"`
	// Status is the HTTP status answered (0 outside HTTP).
	Status int `gorm:"not null;default:0" json:"status"`
	// Note is a short machine-readable reason of a refusal
	// (read_only, resource, expired) or the API's error code.
	Note string `gorm:"size:60;not null;default:''" json:"note,omitempty"`
	// ClientIP is the client's address as resolved through the trusted
	// proxies; UserAgent is truncated to 200 characters.
	ClientIP  string `gorm:"size:64;not null;default:''" json:"client_ip,omitempty"`
	UserAgent string `gorm:"size:200;not null;default:''" json:"user_agent,omitempty"`
}

// TableName is audit_log.
func (AuditEntry) TableName() string { return "audit_log" }

// Field limits of AuditEntry, applied by AppendAudit.
const (
	auditActorMax = 200
	auditRouteMax = 200
	auditIDsMax   = 500
	auditNoteMax  = 60
	auditIPMax    = 64
	// AuditUserAgentMax is how much of a user agent is kept.
	AuditUserAgentMax = 200
)

// migrateAuditLog creates audit_log and makes it append-only: on both
// dialects a trigger refuses UPDATE and DELETE (and TRUNCATE on
// PostgreSQL), so even a bug or a console with SQL access cannot rewrite
// the trail without first dropping the trigger, which needs the table's
// owner.
func migrateAuditLog(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&AuditEntry{}); err != nil {
		return err
	}
	if err := tx.Exec(`CREATE INDEX IF NOT EXISTS idx_audit_log_actor ON audit_log (actor)`).Error; err != nil {
		return err
	}
	var stmts []string
	if tx.Dialector.Name() == "postgres" {
		stmts = []string{
			`CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$`,
			`DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log`,
			`CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()`,
		}
	} else {
		stmts = []string{
			`CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
	BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END`,
			`CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
	BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END`,
		}
	}
	for _, q := range stmts {
		if err := tx.Exec(q).Error; err != nil {
			return fmt.Errorf("making audit_log append-only: %w", err)
		}
	}
	return nil
}

// AppendAudit inserts entries in one statement (the batch of a buffered
// writer). It is the only way the store writes to audit_log: there is no
// update or delete. Over-long fields are cut to their column's size.
func (s *Store) AppendAudit(ctx context.Context, entries []AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	rows := make([]AuditEntry, len(entries))
	for i, e := range entries {
		e.ID = 0
		if e.At.IsZero() {
			e.At = time.Now()
		}
		e.At = utc(e.At)
		e.Actor = cut(e.Actor, auditActorMax)
		e.Action = cut(e.Action, 40)
		e.Method = cut(e.Method, 10)
		e.Route = cut(e.Route, auditRouteMax)
		e.Resource = cut(e.Resource, 40)
		e.ResourceIDs = cut(e.ResourceIDs, auditIDsMax)
		e.Note = cut(e.Note, auditNoteMax)
		e.ClientIP = cut(e.ClientIP, auditIPMax)
		e.UserAgent = cut(e.UserAgent, AuditUserAgentMax)
		e.Brand = cut(e.Brand, 64)
		rows[i] = e
	}
	if err := s.db.WithContext(ctx).CreateInBatches(rows, 500).Error; err != nil {
		return fmt.Errorf("appending %d audit entries: %w", len(rows), translate(err))
	}
	return nil
}

// cut shortens s to at most n runes.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// AuditQuery selects audit entries; zero fields select everything.
type AuditQuery struct {
	// Since and Until bound At: Since <= At < Until.
	Since, Until time.Time
	// Token is a token id, or a name ("admin", "cli", a token's name).
	Token string
	// Action, Resource and ResourceID (one id the request named, e.g.
	// "42") narrow the entries.
	Action, Resource, ResourceID string
	// After is the id of the last entry of the previous page; entries
	// come in id order.
	After int64
	// Limit is 100 by default, at most 1000.
	Limit int
}

// AuditLog lists audit entries in id (insertion) order, for keyset
// pagination with AuditQuery.After.
func (s *Store) AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	db := s.db.WithContext(ctx).Where("id > ?", q.After)
	if !q.Since.IsZero() {
		db = db.Where("at >= ?", utc(q.Since))
	}
	if !q.Until.IsZero() {
		db = db.Where("at < ?", utc(q.Until))
	}
	if q.Token != "" {
		if id, err := strconv.ParseInt(q.Token, 10, 64); err == nil {
			db = db.Where("token_id = ?", id)
		} else {
			db = db.Where("actor = ?", q.Token)
		}
	}
	if q.Action != "" {
		db = db.Where("action = ?", q.Action)
	}
	if q.Resource != "" {
		db = db.Where("resource = ?", q.Resource)
	}
	if q.ResourceID != "" {
		// ids are stored as k=v&k=v, with %, & and = escaped; a
		// LIKE's '_' matching any character only widens the match.
		db = db.Where("('&' || resource_ids || '&') LIKE ?", "%="+AuditIDValue(q.ResourceID)+"&%")
	}
	var out []AuditEntry
	if err := db.Order("id").Limit(Page{Limit: q.Limit}.limit()).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", translate(err))
	}
	return out, nil
}

// AuditIDValue escapes one value of AuditEntry.ResourceIDs, which are
// stored as k=v pairs joined by '&'.
func AuditIDValue(v string) string { return idEscaper.Replace(v) }

var idEscaper = strings.NewReplacer("%", "%25", "&", "%26", "=", "%3D", "\\", "%5C")
