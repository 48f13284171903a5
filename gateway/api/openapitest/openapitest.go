// Package openapitest checks the admin API's answers against its OpenAPI
// description (gateway/api/openapi.yaml), for tests: Check wraps the
// handler a test serves, and every response under /api/v1 is validated
// against the schema of its operation, status and media type (JSON Schema
// 2020-12, the dialect of OpenAPI 3.1, with formats asserted).
//
// Only test binaries import it (it brings the JSON Schema validator).
package openapitest

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/scrmgw/scrmgw/gateway/api"
)

// Prefix is where the API is mounted: the description's server URL.
const Prefix = "/api/v1"

const docURL = "https://scrmgw.invalid/openapi.json"

// Spec is the API's description, its response schemas compiled.
type Spec struct {
	// Doc is the description as decoded JSON.
	Doc map[string]any
	ops []*operation
}

// operation is one path and method of the description.
type operation struct {
	method, path string
	segs         []string
	// responses maps a status ("200", "4XX", "default") to its media
	// types' schemas; a response without content has an empty map.
	responses map[string]map[string]*jsonschema.Schema
}

// Load reads and compiles the API's description.
var Load = sync.OnceValues(func() (*Spec, error) {
	raw, err := api.OpenAPI()
	if err != nil {
		return nil, err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("decoding the description: %w", err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the description is a %T, not an object", v)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, doc); err != nil {
		return nil, fmt.Errorf("adding the description: %w", err)
	}
	s := &Spec{Doc: doc}
	paths, _ := doc["paths"].(map[string]any)
	n := 0
	for path, item := range paths {
		methods, _ := item.(map[string]any)
		for method, o := range methods {
			op, ok := o.(map[string]any)
			if !ok || !slices.Contains(httpMethods, method) {
				continue
			}
			x := &operation{method: strings.ToUpper(method), path: path, segs: strings.Split(strings.Trim(path, "/"), "/"),
				responses: map[string]map[string]*jsonschema.Schema{}}
			resps, _ := op["responses"].(map[string]any)
			for status, r := range resps {
				resp, err := deref(doc, r)
				if err != nil {
					return nil, fmt.Errorf("%s %s: response %s: %w", x.method, path, status, err)
				}
				x.responses[status] = map[string]*jsonschema.Schema{}
				content, _ := resp["content"].(map[string]any)
				for mt, m := range content {
					media, _ := m.(map[string]any)
					schema, ok := media["schema"]
					if !ok {
						x.responses[status][mt] = nil
						continue
					}
					// Each schema is a resource of its own whose
					// references point into the description.
					n++
					url := fmt.Sprintf("https://scrmgw.invalid/response-%d.json", n)
					if err := c.AddResource(url, rebase(schema)); err != nil {
						return nil, fmt.Errorf("%s %s: response %s %s: %w", x.method, path, status, mt, err)
					}
					sch, err := c.Compile(url)
					if err != nil {
						return nil, fmt.Errorf("%s %s: response %s %s: %w", x.method, path, status, mt, err)
					}
					x.responses[status][mt] = sch
				}
			}
			s.ops = append(s.ops, x)
		}
	}
	return s, nil
})

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// deref follows a response's $ref into #/components/responses.
func deref(doc map[string]any, v any) (map[string]any, error) {
	m, _ := v.(map[string]any)
	ref, ok := m["$ref"].(string)
	if !ok {
		return m, nil
	}
	name, ok := strings.CutPrefix(ref, "#/components/responses/")
	if !ok {
		return nil, fmt.Errorf("$ref %q: want #/components/responses/NAME", ref)
	}
	comps, _ := doc["components"].(map[string]any)
	resps, _ := comps["responses"].(map[string]any)
	r, ok := resps[name].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("$ref %q: no such response", ref)
	}
	return r, nil
}

// rebase copies a schema, pointing its local references (#/components/...)
// at the description.
func rebase(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" && strings.HasPrefix(s, "#/") {
				out[k] = docURL + s
				continue
			}
			out[k] = rebase(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = rebase(e)
		}
		return out
	}
	return v
}

// Route is a method and a path in the description's form, relative to
// Prefix ("GET /stores/{id}").
type Route struct{ Method, Path string }

func (r Route) String() string { return r.Method + " " + r.Path }

// Routes lists the operations of the description.
func (s *Spec) Routes() []Route {
	out := make([]Route, 0, len(s.ops))
	for _, o := range s.ops {
		out = append(out, Route{o.method, o.path})
	}
	return out
}

// GinRoute turns a gin route path ("/api/v1/stores/:id") into the
// description's form ("/stores/{id}").
func GinRoute(method, path string) Route {
	p := strings.TrimPrefix(path, Prefix)
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if len(s) > 1 && (s[0] == ':' || s[0] == '*') {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return Route{method, strings.Join(segs, "/")}
}

// find returns the operation of method on a concrete path (relative to
// Prefix), and whether some operation has the path at all. Literal
// segments win over parameters (/stores/nearest over /stores/{id}).
func (s *Spec) find(method, path string) (op *operation, pathKnown bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var best *operation
	for _, o := range s.ops {
		if !matches(o.segs, segs) {
			continue
		}
		pathKnown = true
		if o.method != method {
			continue
		}
		if best == nil || moreLiteral(o.segs, best.segs) {
			best = o
		}
	}
	return best, pathKnown
}

func matches(tmpl, segs []string) bool {
	if len(tmpl) != len(segs) {
		return false
	}
	for i, t := range tmpl {
		if !isParam(t) && t != segs[i] {
			return false
		}
	}
	return true
}

func isParam(seg string) bool { return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") }

// moreLiteral reports whether a has a literal segment where b first has a
// parameter.
func moreLiteral(a, b []string) bool {
	for i := range a {
		if pa, pb := isParam(a[i]), isParam(b[i]); pa != pb {
			return !pa
		}
	}
	return false
}

// Check validates one response to method path (the request's path,
// starting with Prefix).
func (s *Spec) Check(method, path string, status int, header http.Header, body []byte) error {
	rel := strings.TrimPrefix(path, Prefix)
	op, known := s.find(method, rel)
	if op == nil {
		if known && status == http.StatusMethodNotAllowed || !known && status == http.StatusNotFound {
			// The router's own answer to a method or path the API does
			// not have: the error shape still holds.
			return s.checkError(status, header, body)
		}
		return fmt.Errorf("%s %s answered %d, but gateway/api/openapi.yaml has no operation %s %s: describe it under paths", method, path, status, method, rel)
	}
	code := strconv.Itoa(status)
	media, ok := op.responses[code]
	if !ok {
		media, ok = op.responses[code[:1]+"XX"]
	}
	if !ok {
		media, ok = op.responses["default"]
	}
	if !ok {
		return fmt.Errorf("%s %s (%s %s) answered %d, a status gateway/api/openapi.yaml does not list for it", method, path, op.method, op.path, status)
	}
	return checkMedia(fmt.Sprintf("%s %s (%s %s) %d", method, path, op.method, op.path, status), media, header, body)
}

func (s *Spec) checkError(status int, header http.Header, body []byte) error {
	op, _ := s.find(http.MethodGet, "/brands")
	media := op.responses["default"]
	return checkMedia(fmt.Sprintf("router's %d", status), media, header, body)
}

func checkMedia(what string, media map[string]*jsonschema.Schema, header http.Header, body []byte) error {
	if len(media) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("%s: the description says no content, the body is %q", what, clip(body))
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		return fmt.Errorf("%s: content type %q: %w", what, header.Get("Content-Type"), err)
	}
	sch, ok := media[mt]
	if !ok {
		return fmt.Errorf("%s: content type %s is not one the description lists (%s)", what, mt, strings.Join(keys(media), ", "))
	}
	if sch == nil || !strings.HasSuffix(mt, "json") {
		return nil
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: body is not JSON (%v): %q", what, err, clip(body))
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("%s: the body does not match gateway/api/openapi.yaml: %v\nbody: %s", what, err, clip(body))
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}

// Check returns h with every response under Prefix validated against
// the description; a mismatch fails t (with the route, status, what does
// not match and the body).
func Check(t testing.TB, h http.Handler) http.Handler {
	spec, err := Load()
	if err != nil {
		t.Fatalf("loading gateway/api/openapi.yaml: %v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, Prefix+"/") {
			h.ServeHTTP(w, r)
			return
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if r.Method == http.MethodHead {
			return
		}
		if err := spec.Check(r.Method, r.URL.Path, rec.status, w.Header(), rec.body.Bytes()); err != nil {
			t.Errorf("openapi: %v", err)
		}
	})
}

// recorder passes a response through and keeps its status and body.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
