package console

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
)

type validateRequest struct {
	// Name is the workflow's name ("" for a new one): errors name the
	// file name.yaml, as the engine does.
	Name string `json:"name"`
	YAML string `json:"yaml"`
}

type validateResponse struct {
	OK       bool      `json:"ok"`
	Problems []problem `json:"problems"`
	// Summary says how the check went, in the reader's language.
	Summary string `json:"summary,omitempty"`
	// Diagram is the workflow's SVG diagram when it is valid.
	Diagram string `json:"diagram,omitempty"`
}

// validate answers the editor's script: the problems of the YAML as
// `scrmgw workflow validate` words them, and the diagram when there are
// none. It needs the session's CSRF token in X-CSRF-Token.
func (c *Console) validate(ctx *gin.Context) {
	body, err := c.readAll(ctx)
	if err != nil {
		ctx.JSON(http.StatusRequestEntityTooLarge, gin.H{"error": translate(language(ctx.Request), "error.too_large")})
		return
	}
	var req validateRequest
	if err := json.Unmarshal(body, &req); err != nil {
		ctx.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	lang := language(ctx.Request)
	wf, probs := c.check(req.Name, []byte(req.YAML))
	resp := validateResponse{OK: probs == nil, Problems: []problem{}}
	for _, p := range probs {
		if p.Line > 0 {
			p.At = translate(lang, "editor.at", p.Line, p.Column)
		}
		resp.Problems = append(resp.Problems, p)
	}
	if probs != nil {
		resp.Summary = translate(lang, "editor.problems", len(probs))
	}
	if wf != nil {
		resp.Summary = translate(lang, "editor.valid", wf.Version, len(wf.Steps))
		resp.Diagram = string(diagram(wf, lang))
	}
	ctx.JSON(http.StatusOK, resp)
}
