package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
)

// guideTaskCounts answers GET /guide-tasks?store_id=&status=&brand=: each
// guide of the store with their open (not yet due), overdue and done
// tasks, for the store manager. status (open, overdue or done) lists only
// the guides with such tasks. A brand token counts only its brand's tasks,
// in a store that carries its brand (404 otherwise).
func (s *Server) guideTaskCounts(c *gin.Context) {
	storeID, status, brand := c.Query("store_id"), c.Query("status"), c.Query("brand")
	if storeID == "" {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "store_id: required: say whose store's guides to count"))
		return
	}
	switch status {
	case "", store.TaskStatusOpen, store.TaskStatusOverdue, store.TaskStatusDone:
	default:
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "status: want open, overdue or done, got %q", status))
		return
	}
	if !scopeBrand(c, &brand, nil) {
		return
	}
	ctx := c.Request.Context()
	if _, err := s.store.RetailStore(ctx, storeID, brand); err != nil {
		s.fail(c, err)
		return
	}
	now := time.Now()
	rows, err := s.store.GuideTaskCounts(ctx, store.TaskCountQuery{StoreID: storeID, Brand: brand, Now: now, Status: status})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"store_id": storeID, "brand": brand, "status": status, "as_of": now.UTC(), "items": rows})
}

// guideTaskInput is the body of POST /guide-tasks.
type guideTaskInput struct {
	GuideID  string `json:"guide_id"`
	MemberID int64  `json:"member_id"`
	Brand    string `json:"brand"`
	Title    string `json:"title"`
	Note     string `json:"note"`
	// DueAt is an RFC 3339 time.
	DueAt string `json:"due_at"`
	// Key makes the request idempotent: a task with the key is created
	// once, and a repeat answers it with 200.
	Key string `json:"key"`
}

// createGuideTask answers POST /guide-tasks: a task given to a guide by
// hand (a store manager's "call her back by Friday"). The guide's store
// must carry the brand, and the member must be one of its members. It
// gets reminders like any task.
func (s *Server) createGuideTask(c *gin.Context) {
	var in guideTaskInput
	if !s.decodeScoped(c, &in, &in.Brand, func(own, named string) *apiError {
		return newError(http.StatusForbidden, CodeForbidden, "brand: a token of brand %q cannot give tasks of brand %q", own, named)
	}) {
		return
	}
	var details []Detail
	need := func(field, msg string) { details = append(details, Detail{Field: field, Message: msg}) }
	if in.Brand == "" {
		need("brand", "required")
	}
	if in.GuideID == "" {
		need("guide_id", "required")
	}
	if in.MemberID < 1 {
		need("member_id", "required: a positive member id")
	}
	if strings.TrimSpace(in.Title) == "" {
		need("title", "required")
	}
	due, err := time.Parse(time.RFC3339, in.DueAt)
	if err != nil {
		need("due_at", fmt.Sprintf("want an RFC 3339 time such as 2026-05-02T18:00:00+08:00, got %q", in.DueAt))
	}
	if len(in.Key) > 100 {
		need("key", "at most 100 characters")
	}
	if len(details) > 0 {
		abort(c, invalidFields(details))
		return
	}
	ctx := c.Request.Context()
	if _, err := s.store.Guide(ctx, in.GuideID, in.Brand); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = newError(http.StatusNotFound, CodeNotFound, "guide %q not found in a store of brand %q", in.GuideID, in.Brand)
		}
		s.fail(c, err)
		return
	}
	v, err := s.store.Member(ctx, in.MemberID, in.Brand)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = newError(http.StatusNotFound, CodeNotFound, "member %d not found among brand %q's members", in.MemberID, in.Brand)
		}
		s.fail(c, err)
		return
	}
	// A merged member's tasks go to the member it was merged into.
	t := &store.GuideTask{MemberID: v.ID, GuideID: in.GuideID, BrandID: in.Brand, Title: in.Title, Note: in.Note,
		DueAt: due, CreatedAt: time.Now()}
	if in.Key != "" {
		key := "api:" + in.Brand + ":" + in.Key
		t.Key = &key
	}
	fresh, err := s.store.CreateGuideTask(ctx, t)
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusCreated
	if !fresh {
		status = http.StatusOK
	}
	c.JSON(status, t)
}
