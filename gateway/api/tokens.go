package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// tokenInput is the body of POST /tokens.
type tokenInput struct {
	Name         string  `json:"name"`
	Brand        *string `json:"brand"`
	CanViewPhone bool    `json:"can_view_phone"`
	// ReadOnly limits the token to GET and HEAD.
	ReadOnly bool `json:"read_only"`
	// Resources limits the token to some route groups (Resources).
	Resources []string `json:"resources"`
	// ExpiresAt (RFC 3339) or ExpiresIn (a duration: 720h) makes the
	// token expire.
	ExpiresAt *time.Time `json:"expires_at"`
	ExpiresIn string     `json:"expires_in"`
}

// TokenJSON is a token as the API and the command line show it (never its
// plaintext or hash).
type TokenJSON struct {
	ID           int64      `json:"id"`
	Name         string     `json:"name"`
	Brand        *string    `json:"brand,omitempty"`
	CanViewPhone bool       `json:"can_view_phone"`
	ReadOnly     bool       `json:"read_only"`
	Resources    []string   `json:"resources"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	Expired      bool       `json:"expired,omitempty"`
	LastUsedAt   *time.Time `json:"last_used_at,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
}

// TokenOut shows a token.
func TokenOut(t *store.APIToken, now time.Time) TokenJSON {
	out := TokenJSON{ID: t.ID, Name: t.Name, Brand: t.BrandID, CanViewPhone: t.CanViewPhone, ReadOnly: t.ReadOnly,
		Resources: t.ResourceList(), ExpiresAt: t.ExpiresAt, Expired: t.Expired(now), LastUsedAt: t.LastUsedAt,
		CreatedAt: t.CreatedAt, RevokedAt: t.RevokedAt}
	if out.Resources == nil {
		out.Resources = []string{}
	}
	return out
}

func (s *Server) listTokens(c *gin.Context) {
	if !adminOnly(c) {
		return
	}
	toks, err := s.store.APITokens(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	now := time.Now()
	items := make([]TokenJSON, 0, len(toks))
	for i := range toks {
		items = append(items, TokenOut(&toks[i], now))
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
}

// createToken issues a token; its plaintext is in this response only. A
// token issued by an API token is no broader than it: no more resources,
// no phones unless it sees them, no later expiry.
func (s *Server) createToken(c *gin.Context) {
	if !adminOnly(c) {
		return
	}
	var in tokenInput
	if !s.decodeBody(c, &in) {
		return
	}
	if err := CheckResources(in.Resources); err != nil {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "resources: %v", err))
		return
	}
	if in.ExpiresIn != "" {
		d, err := time.ParseDuration(in.ExpiresIn)
		if err != nil || d <= 0 || in.ExpiresAt != nil {
			abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "expires_in: want a positive duration such as 720h (and no expires_at), got %q", in.ExpiresIn))
			return
		}
		at := time.Now().Add(d)
		in.ExpiresAt = &at
	}
	if e := principal(c).covers(in); e != nil {
		abort(c, e)
		return
	}
	plain, tok, err := s.store.CreateAPIToken(c.Request.Context(), store.NewAPIToken{Name: in.Name, BrandID: in.Brand,
		CanViewPhone: in.CanViewPhone, ReadOnly: in.ReadOnly, Resources: in.Resources, ExpiresAt: in.ExpiresAt})
	if err != nil {
		s.fail(c, err)
		return
	}
	auditID(c, "token", strconv.FormatInt(tok.ID, 10))
	c.JSON(http.StatusCreated, struct {
		Token string `json:"token"`
		TokenJSON
	}{plain, TokenOut(tok, time.Now())})
}

// covers answers 403 when a token p would issue is broader than p (the
// configured admin tokens cover everything).
func (p *Principal) covers(in tokenInput) *apiError {
	if p.TokenID == 0 {
		return nil
	}
	var over []string
	if len(p.Resources) > 0 {
		if len(in.Resources) == 0 {
			over = append(over, "every resource")
		}
		for _, r := range in.Resources {
			if !slices.Contains(p.Resources, r) {
				over = append(over, r)
			}
		}
	}
	if in.CanViewPhone && !p.CanViewPhone {
		over = append(over, "full phone numbers")
	}
	if p.ExpiresAt != nil && (in.ExpiresAt == nil || in.ExpiresAt.After(*p.ExpiresAt)) {
		over = append(over, "a life past this token's expiry")
	}
	if len(over) > 0 {
		return newError(http.StatusForbidden, CodeForbidden, "a token cannot issue a broader one: this one has no access to %s", strings.Join(over, ", "))
	}
	return nil
}

func (s *Server) revokeToken(c *gin.Context) {
	if !adminOnly(c) {
		return
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "id: want an integer, got %q", c.Param("id")))
		return
	}
	if err := s.store.RevokeAPIToken(c.Request.Context(), id); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
