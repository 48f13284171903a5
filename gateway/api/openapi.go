package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"gopkg.in/yaml.v3"
)

// openAPIYAML is the API's contract: every route Mount registers under
// /api/v1 is described there (TestOpenAPICoversEveryRoute), and the API
// tests check each response they get against it.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPIYAML returns the OpenAPI 3.1 description of the API as written.
func OpenAPIYAML() []byte { return openAPIYAML }

// OpenAPI returns the OpenAPI 3.1 description of the API as JSON, as
// GET /api/v1/openapi.json serves it.
var OpenAPI = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("reading openapi.yaml: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		// A mapping with a key YAML reads as a number (an unquoted
		// status code) has no JSON form.
		return nil, fmt.Errorf("converting openapi.yaml to JSON: %w", err)
	}
	return b, nil
})

// serveOpenAPI answers GET /api/v1/openapi.json to any valid token.
func (s *Server) serveOpenAPI(c *gin.Context) {
	b, err := OpenAPI()
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Data(http.StatusOK, "application/json", b)
}

// anyToken lets through any valid token, whatever route groups it is
// limited to (the API's description is no group's).
func (s *Server) anyToken() gin.HandlerFunc { return s.authenticate(false) }
