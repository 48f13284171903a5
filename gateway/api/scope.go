package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// serving answers 503 not_ready unless up: the feature (tags, groups,
// the store index, live sessions) is not served by this process.
func serving(c *gin.Context, up bool, what string) bool {
	if !up {
		abort(c, newError(http.StatusServiceUnavailable, "not_ready", "%s not running in this process", what))
	}
	return up
}

// decodeBody decodes the request's JSON body into in, answering the
// error when it cannot.
func (s *Server) decodeBody(c *gin.Context, in any) bool {
	if e := decodeJSON(c, s.maxBody, in); e != nil {
		abort(c, e)
		return false
	}
	return true
}

// scopeBrand settles the brand a request names (*brand) for its token:
// a brand token acts for its own brand, whether the request names it or
// leaves it out; another brand's name is refused with refuse(own,
// named), or 404 as if that brand did not exist when refuse is nil. The
// admin's brand stays as named.
func scopeBrand(c *gin.Context, brand *string, refuse func(own, named string) *apiError) bool {
	p := principal(c)
	if p.Admin() {
		return true
	}
	if *brand != "" && *brand != p.Brand {
		if refuse != nil {
			abort(c, refuse(p.Brand, *brand))
		} else {
			abort(c, newError(http.StatusNotFound, CodeNotFound, "brand %q not found", *brand))
		}
		return false
	}
	*brand = p.Brand
	return true
}

// decodeScoped is decodeBody, then scopeBrand of the body's brand field.
func (s *Server) decodeScoped(c *gin.Context, in any, brand *string, refuse func(own, named string) *apiError) bool {
	return s.decodeBody(c, in) && scopeBrand(c, brand, refuse)
}

// answer answers v with status, or err.
func (s *Server) answer(c *gin.Context, status int, v any, err error) {
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(status, v)
}

// createdOr is the status of an upsert: 201 when it created the row,
// else 200.
func createdOr(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}
