package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// This file holds the keyset-paged lists of the large tables: members,
// a workflow's or a member's runs, a guide's tasks. Each answers
// {"items": [...], "next": "<cursor>"}; a client passes next back as
// ?cursor= until it is absent. A cursor is opaque: one that a list did not
// make is a 400.

// listMembers answers GET /members without ?phone=: the brand's members
// in id order (an admin names the brand with ?brand=, or lists every
// member without it), with the last four digits of the phone for a brand
// that was given it.
func (s *Server) listMembers(c *gin.Context) {
	brand := c.Query("brand")
	if !scopeBrand(c, &brand, nil) {
		return
	}
	limit, e := pageLimit(c)
	if e != nil {
		abort(c, e)
		return
	}
	rows, next, err := s.store.ListMembers(c.Request.Context(), store.MemberListQuery{Brand: brand, Cursor: c.Query("cursor"), Limit: limit})
	if err != nil {
		s.fail(c, err)
		return
	}
	keyset(c, rows, next, nil)
}

// memberRuns answers GET /members/{id}/runs: the member's runs (of the
// token's brand), newest first; ?state= keeps one state.
func (s *Server) memberRuns(c *gin.Context) {
	id, ok := positiveIDParam(c)
	if !ok {
		return
	}
	brand := principal(c).Brand
	v, err := s.store.Member(c.Request.Context(), id, brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.runs(c, store.RunListQuery{Brand: brand, MemberID: v.ID})
}

// workflowRuns answers GET /workflows/{name}/runs: the workflow's runs,
// newest first; ?state= keeps one state (active runs are the ones
// waiting or acting).
func (s *Server) workflowRuns(c *gin.Context) {
	brand, ok := workflowBrand(c)
	if !ok {
		return
	}
	s.runs(c, store.RunListQuery{Brand: brand, Workflow: c.Param("name")})
}

func (s *Server) runs(c *gin.Context, q store.RunListQuery) {
	switch q.State = c.Query("state"); q.State {
	case "", store.RunActive, store.RunDone, store.RunConverted, store.RunExited, store.RunFailed:
	default:
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "state: want active, done, converted, exited or failed, got %q", q.State))
		return
	}
	var e *apiError
	if q.Limit, e = pageLimit(c); e != nil {
		abort(c, e)
		return
	}
	q.Cursor = c.Query("cursor")
	items, next, err := s.store.ListRuns(c.Request.Context(), q)
	if err != nil {
		s.fail(c, err)
		return
	}
	keyset(c, items, next, nil)
}

// guideTasks answers GET /guides/{id}/tasks: the guide's tasks (of the
// token's brand) earliest due first, so overdue ones lead; ?state= keeps
// open, done or cancelled ones.
func (s *Server) guideTasks(c *gin.Context) {
	brand := principal(c).Brand
	ctx := c.Request.Context()
	g, err := s.store.Guide(ctx, c.Param("id"), brand)
	if err != nil {
		s.fail(c, err)
		return
	}
	q := store.GuideTaskListQuery{Brand: brand, GuideID: g.ID, State: c.Query("state"), Cursor: c.Query("cursor")}
	switch q.State {
	case "", store.GuideTaskOpen, store.GuideTaskDone, store.GuideTaskCancelled:
	default:
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "state: want open, done or cancelled, got %q", q.State))
		return
	}
	var e *apiError
	if q.Limit, e = pageLimit(c); e != nil {
		abort(c, e)
		return
	}
	items, next, err := s.store.ListGuideTasks(ctx, q)
	if err != nil {
		s.fail(c, err)
		return
	}
	keyset(c, items, next, nil)
}
