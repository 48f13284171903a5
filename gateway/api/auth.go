package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// Principal is who a request acts as.
type Principal struct {
	// Name is the token's name, for audit logs.
	Name string
	// Brand limits the principal to one brand; empty means every brand.
	Brand string
	// CanViewPhone allows full phone numbers in responses.
	CanViewPhone bool
}

// Admin reports whether the principal sees every brand.
func (p *Principal) Admin() bool { return p.Brand == "" }

const principalKey = "scrmgw.principal"

func principal(c *gin.Context) *Principal { return c.MustGet(principalKey).(*Principal) }

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

// Authenticate resolves the request's token to a Principal, or answers 401.
func (s *Server) Authenticate() gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := s.resolve(c.Request)
		if err != nil {
			c.Header("WWW-Authenticate", `Bearer realm="scrmgw"`)
			if errors.Is(err, errNoToken) {
				abort(c, newError(http.StatusUnauthorized, CodeUnauthorized, "missing bearer token (Authorization: Bearer <token>)"))
				return
			}
			if errors.Is(err, errBadToken) {
				abort(c, newError(http.StatusUnauthorized, CodeUnauthorized, "invalid or revoked token"))
				return
			}
			s.fail(c, err)
			return
		}
		c.Set(principalKey, p)
		c.Next()
	}
}

// RequireAdmin answers 401 to anything but the admin token (for the queue
// UI, where a browser's Basic auth prompt is the way in).
func (s *Server) RequireAdmin() gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := s.resolve(c.Request)
		if err != nil || !p.Admin() {
			c.Header("WWW-Authenticate", `Basic realm="scrmgw admin (password: admin token)"`)
			abort(c, newError(http.StatusUnauthorized, CodeUnauthorized, "the admin token is required"))
			return
		}
		c.Next()
	}
}

var (
	errNoToken = errors.New("no token")
	// ErrBadToken is what Resolve and ResolveHash return for a token that
	// is not the admin token nor a live API token.
	ErrBadToken = errors.New("invalid or revoked token")
	errBadToken = ErrBadToken
)

func (s *Server) resolve(r *http.Request) (*Principal, error) {
	t := bearer(r)
	if t == "" {
		return nil, errNoToken
	}
	return s.Resolve(r.Context(), t)
}

// Resolve returns the Principal of a token, as every API request's
// Authenticate does, or ErrBadToken.
func (s *Server) Resolve(ctx context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, ErrBadToken
	}
	if s.adminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.adminToken)) == 1 {
		return &Principal{Name: "admin", CanViewPhone: true}, nil
	}
	if !strings.HasPrefix(token, store.TokenPrefix) {
		return nil, ErrBadToken
	}
	return s.ResolveHash(ctx, store.HashToken(token))
}

// ResolveHash returns the Principal of the token whose store.HashToken is
// hash, or ErrBadToken: the console's sessions keep the hash, not the
// token, and resolve it on every request, so a revoked token (or a
// changed admin token) ends them.
func (s *Server) ResolveHash(ctx context.Context, hash string) (*Principal, error) {
	if s.adminToken != "" && subtle.ConstantTimeCompare([]byte(hash), []byte(store.HashToken(s.adminToken))) == 1 {
		return &Principal{Name: "admin", CanViewPhone: true}, nil
	}
	tok, err := s.store.APITokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrBadToken
	}
	if err != nil {
		return nil, err
	}
	p := &Principal{Name: tok.Name, CanViewPhone: tok.CanViewPhone}
	if tok.BrandID != nil {
		p.Brand = *tok.BrandID
	}
	return p, nil
}

// adminOnly answers 403 unless the principal sees every brand.
func adminOnly(c *gin.Context) bool {
	if !principal(c).Admin() {
		abort(c, newError(http.StatusForbidden, CodeForbidden, "this needs an admin token; brand tokens cannot do it"))
		return false
	}
	return true
}
