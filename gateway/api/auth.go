package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// Principal is who a request acts as.
type Principal struct {
	// Name is the token's name, for audit logs: "admin" and
	// "admin_next" for the configured admin tokens.
	Name string
	// Brand limits the principal to one brand; empty means every brand.
	Brand string
	// CanViewPhone allows full phone numbers in responses.
	CanViewPhone bool
	// TokenID is the API token's id; 0 for the configured admin tokens.
	TokenID int64
	// ReadOnly limits the principal to GET and HEAD.
	ReadOnly bool
	// Resources are the route groups (Resources) the principal may use;
	// empty allows every group.
	Resources []string
	// ExpiresAt is when the token expires; nil when it does not.
	ExpiresAt *time.Time
}

// Admin reports whether the principal sees every brand.
func (p *Principal) Admin() bool { return p.Brand == "" }

// Allows reports whether the principal may use the route group resource.
func (p *Principal) Allows(resource string) bool {
	return len(p.Resources) == 0 || slices.Contains(p.Resources, resource)
}

// MayUse reports whether the principal may make a request of method on
// the route group resource: nil, or an error that says why not (the API
// answers it with 403).
func (p *Principal) MayUse(method, resource string) error {
	if e := p.mayUse(method, resource); e != nil {
		return e
	}
	return nil
}

func (p *Principal) mayUse(method, resource string) *apiError {
	if p.ReadOnly && !safeMethod(method) {
		return newError(http.StatusForbidden, CodeForbidden, "this token is read-only: it may GET and HEAD, not %s", method)
	}
	if !p.Allows(resource) {
		return newError(http.StatusForbidden, CodeForbidden, "this token may use only %s; this endpoint belongs to %s",
			strings.Join(p.Resources, ", "), resource)
	}
	return nil
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

const principalKey = "scrmgw.principal"

func principal(c *gin.Context) *Principal { return c.MustGet(principalKey).(*Principal) }

// PrincipalOf returns the request's principal, once Authenticate or
// RequireAdmin has let it through.
func PrincipalOf(c *gin.Context) (*Principal, bool) {
	v, ok := c.Get(principalKey)
	if !ok {
		return nil, false
	}
	p, ok := v.(*Principal)
	return p, ok
}

// bearer extracts the token from "Authorization: Bearer T", or from the
// password of Basic auth (so a browser can open the queue UI).
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	if _, pw, ok := r.BasicAuth(); ok {
		return pw
	}
	return ""
}

// Authenticate resolves the request's token to a Principal, or answers
// 401 (no token, an unknown, revoked or expired one); then it answers 403
// to a read-only token's write and to a token limited to other route
// groups than the route's (set by the group, see Mount).
func (s *Server) Authenticate() gin.HandlerFunc { return s.authenticate(true) }

// authenticate is Authenticate, the 403s only when scope is set.
func (s *Server) authenticate(scope bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := s.resolve(c.Request)
		if err != nil {
			s.refuse(c, err, "")
			return
		}
		c.Set(principalKey, p)
		if !scope || scoped(c, p) {
			c.Next()
		}
	}
}

// scoped answers 403, and reports false, when p may not make the request:
// a write with a read-only token, or a route group the token is not
// limited to.
func scoped(c *gin.Context, p *Principal) bool {
	e := p.mayUse(c.Request.Method, c.GetString(resourceKey))
	if e == nil {
		return true
	}
	note := "resource"
	if p.ReadOnly && !safeMethod(c.Request.Method) {
		note = "read_only"
	}
	c.Set(auditNoteKey, note)
	abort(c, e)
	return false
}

// refuse answers 401 (or 500 when the token could not be looked up).
func (s *Server) refuse(c *gin.Context, err error, realm string) {
	if realm == "" {
		realm = `Bearer realm="scrmgw"`
	}
	c.Header("WWW-Authenticate", realm)
	var exp *ExpiredError
	switch {
	case errors.Is(err, ErrNoToken):
		abort(c, newError(http.StatusUnauthorized, CodeUnauthorized, "missing bearer token (Authorization: Bearer <token>)"))
	case errors.As(err, &exp):
		// Who it was is known: the audit trail records the attempt.
		c.Set(auditWhoKey, exp.Principal)
		c.Set(auditNoteKey, "expired")
		abort(c, newError(http.StatusUnauthorized, CodeUnauthorized, "%s", exp.Error()))
	case errors.Is(err, ErrBadToken):
		abort(c, newError(http.StatusUnauthorized, CodeUnauthorized, "invalid or revoked token"))
	default:
		s.fail(c, err)
	}
}

// RequireAdmin guards the queue UI: no token, or a bad one, answers 401
// with a Basic realm (a browser's Basic auth prompt is the way in); a
// valid token that is not the admin's (a brand token) answers 403, as the
// API's admin-only routes do (a 401 would make the browser ask again for a
// password that is right, and count towards the refusal limit); a
// read-only one's writes answer 403. A route group set before it
// (RequireResource) limits it further.
func (s *Server) RequireAdmin() gin.HandlerFunc {
	const realm = `Basic realm="scrmgw admin (password: admin token)"`
	return func(c *gin.Context) {
		p, err := s.resolve(c.Request)
		if err != nil {
			s.refuse(c, err, realm)
			return
		}
		c.Set(principalKey, p)
		if !adminOnly(c) {
			return
		}
		if scoped(c, p) {
			c.Next()
		}
	}
}

// Errors of ResolveToken.
var (
	// ErrNoToken: the request has no token.
	ErrNoToken = errors.New("no token")
	// ErrBadToken: the token is unknown or revoked.
	ErrBadToken = errors.New("bad token")
)

// ExpiredError is a known token past its expiry.
type ExpiredError struct {
	Principal *Principal
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("token %q expired at %s; ask an admin for a new one", e.Principal.Name, e.Principal.ExpiresAt.UTC().Format(time.RFC3339))
}

func (s *Server) resolve(r *http.Request) (*Principal, error) {
	return s.ResolveToken(r.Context(), bearer(r))
}

// ResolveToken returns the principal of a bearer token: one of the
// configured admin tokens, or an API token that is neither revoked
// (ErrBadToken) nor expired (*ExpiredError). Its use is noted for the
// token's last-used time, off the request path.
func (s *Server) ResolveToken(ctx context.Context, t string) (*Principal, error) {
	if t == "" {
		return nil, ErrNoToken
	}
	for _, a := range s.adminTokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(a.token)) == 1 {
			return &Principal{Name: a.name, CanViewPhone: true}, nil
		}
	}
	if !strings.HasPrefix(t, store.TokenPrefix) {
		return nil, ErrBadToken
	}
	return s.ResolveHash(ctx, store.HashToken(t))
}

// Resolve is ResolveToken for callers that have the token itself (the
// console's sign-in): an empty token is ErrBadToken.
func (s *Server) Resolve(ctx context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, ErrBadToken
	}
	return s.ResolveToken(ctx, token)
}

// ResolveHash returns the Principal of the token whose store.HashToken is
// hash, as ResolveToken does (ErrBadToken, *ExpiredError): the console's
// sessions keep the hash, not the token, and resolve it on every request,
// so a revoked or expired token (or a changed admin token) ends them.
func (s *Server) ResolveHash(ctx context.Context, hash string) (*Principal, error) {
	for _, a := range s.adminTokens {
		if subtle.ConstantTimeCompare([]byte(hash), []byte(a.hash)) == 1 {
			return &Principal{Name: a.name, CanViewPhone: true}, nil
		}
	}
	tok, err := s.store.APITokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrBadToken
	}
	if err != nil {
		return nil, err
	}
	p := &Principal{Name: tok.Name, CanViewPhone: tok.CanViewPhone, TokenID: tok.ID, ReadOnly: tok.ReadOnly,
		Resources: tok.ResourceList(), ExpiresAt: tok.ExpiresAt}
	if tok.BrandID != nil {
		p.Brand = *tok.BrandID
	}
	now := time.Now()
	if tok.Expired(now) {
		return nil, &ExpiredError{Principal: p}
	}
	s.audit.TokenUsed(tok.ID, now)
	return p, nil
}

// adminOnly answers 403 unless the principal sees every brand: a brand
// token is known and valid, so never 401 (docs/security.md).
func adminOnly(c *gin.Context) bool {
	if !principal(c).Admin() {
		abort(c, newError(http.StatusForbidden, CodeForbidden, "this needs an admin token; a brand token (brand %q) cannot use %s %s",
			principal(c).Brand, c.Request.Method, c.Request.URL.Path))
		return false
	}
	return true
}
