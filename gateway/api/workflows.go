package api

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// Workflows is the part of the workflow engine the API uses.
type Workflows interface {
	Put(ctx context.Context, brand, name string, yaml []byte) (*engine.Version, error)
	Enable(ctx context.Context, brand, name string) error
	Disable(ctx context.Context, brand, name string) error
	Retire(ctx context.Context, brand, name, version string) (int64, error)
	Stats(ctx context.Context, brand, name string) (*engine.Stats, error)
	CompleteGuideTask(ctx context.Context, id int64) (*store.GuideTask, bool, error)
}

// workflowBrand is the brand a workflow request acts for: the token's, or
// ?brand= for the admin token.
func workflowBrand(c *gin.Context) (string, bool) {
	b := c.Query("brand")
	if !scopeBrand(c, &b, nil) {
		return "", false
	}
	if b == "" {
		abort(c, newError(http.StatusBadRequest, CodeInvalidArgument, "brand: the admin token names the brand with ?brand="))
		return "", false
	}
	return b, true
}

func (s *Server) workflowsReady(c *gin.Context) bool {
	if !serving(c, s.workflows != nil, "the workflow engine is") {
		return false
	}
	return true
}

// putWorkflow answers PUT /workflows/{name} with a YAML body: validated,
// stored as a new version (runs stay on theirs). Validation errors come
// back as details with file:line:column.
func (s *Server) putWorkflow(c *gin.Context) {
	if !s.workflowsReady(c) {
		return
	}
	brand, ok := workflowBrand(c)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.maxBody))
	if err != nil {
		abort(c, newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "workflow exceeds %d bytes", s.maxBody))
		return
	}
	v, err := s.workflows.Put(c.Request.Context(), brand, c.Param("name"), body)
	if errors.Is(err, engine.ErrInvalid) {
		e := newError(http.StatusBadRequest, CodeInvalidArgument, "%s", err.Error())
		var list workflows.ErrorList
		if errors.As(err, &list) {
			e.Message = "the workflow has errors; nothing was stored"
			for _, we := range list {
				e.Details = append(e.Details, Detail{Field: we.Path, Message: we.Error()})
			}
		}
		abort(c, e)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(createdOr(v.Created), gin.H{"brand": v.Brand, "name": v.Name, "version": v.Version, "created": v.Created, "enabled": v.Enabled})
}

func (s *Server) listWorkflows(c *gin.Context) {
	brand, ok := workflowBrand(c)
	if !ok {
		return
	}
	items, err := s.store.Workflows(c.Request.Context(), store.WorkflowFilter{Brand: brand})
	if err != nil {
		s.fail(c, err)
		return
	}
	if items == nil {
		items = []store.Workflow{}
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
}

func (s *Server) setWorkflowEnabled(on bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !s.workflowsReady(c) {
			return
		}
		brand, ok := workflowBrand(c)
		if !ok {
			return
		}
		f := s.workflows.Disable
		if on {
			f = s.workflows.Enable
		}
		if err := f(c.Request.Context(), brand, c.Param("name")); err != nil {
			s.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"brand": brand, "name": c.Param("name"), "enabled": on})
	}
}

func (s *Server) workflowStats(c *gin.Context) {
	if !s.workflowsReady(c) {
		return
	}
	brand, ok := workflowBrand(c)
	if !ok {
		return
	}
	st, err := s.workflows.Stats(c.Request.Context(), brand, c.Param("name"))
	s.answer(c, http.StatusOK, st, err)
}

func (s *Server) retireVersion(c *gin.Context) {
	if !s.workflowsReady(c) {
		return
	}
	brand, ok := workflowBrand(c)
	if !ok {
		return
	}
	n, err := s.workflows.Retire(c.Request.Context(), brand, c.Param("name"), c.Param("version"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"runs_ended": n})
}

// completeGuideTask answers POST /guide-tasks/{id}/complete.
func (s *Server) completeGuideTask(c *gin.Context) {
	if !s.workflowsReady(c) {
		return
	}
	id, ok := positiveIDParam(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	t, err := s.store.GuideTask(ctx, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	if b := principal(c).Brand; b != "" && t.BrandID != b {
		s.fail(c, store.ErrNotFound)
		return
	}
	t, completed, err := s.workflows.CompleteGuideTask(ctx, id)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"task": t, "completed": completed})
}
