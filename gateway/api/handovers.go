package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// listHandovers is GET /api/v1/handovers: the handovers of guides who
// left, for an operator to see what could not be moved and why. A brand
// token sees its brand's handovers (the members its guides had); naming
// another brand answers 404, as the leaderboards do. Query: state
// (pending, requested, transferred, failed), guide_id, brand, after_id,
// limit.
func (s *Server) listHandovers(c *gin.Context) {
	f := store.HandoverFilter{GuideID: c.Query("guide_id"), Brand: c.Query("brand"), State: c.Query("state")}
	if !scopeBrand(c, &f.Brand, nil) {
		return
	}
	if f.State == "" {
		f.State = c.Query("status")
	}
	switch f.State {
	case "", store.HandoverPending, store.HandoverRequested, store.HandoverTransferred, store.HandoverFailed:
	default:
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "state must be pending, requested, transferred or failed"))
		return
	}
	if v := c.Query("after_id"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "after_id must be an integer"))
			return
		}
		f.AfterID = n
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "limit must be an integer"))
			return
		}
		f.Limit = n
	}
	rows, err := s.store.Handovers(c.Request.Context(), f)
	if err != nil {
		s.fail(c, err)
		return
	}
	if rows == nil {
		rows = []store.Handover{}
	}
	c.JSON(http.StatusOK, gin.H{"handovers": rows})
}
