package openapitest_test

import (
	"bytes"
	"net/http"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/api/openapitest"
)

// TestDescriptionIsOpenAPI31: the description validates against the
// OpenAPI 3.1 schema (testdata/oas31-schema.json) and every schema in
// it compiles as JSON Schema 2020-12.
func TestDescriptionIsOpenAPI31(t *testing.T) {
	raw, err := api.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("testdata/oas31-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	meta, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("https://spec.openapis.org/oas/3.1/schema/2022-10-07", meta); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("https://spec.openapis.org/oas/3.1/schema/2022-10-07")
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Errorf("gateway/api/openapi.yaml is not a valid OpenAPI 3.1 document: %v", err)
	}
	spec, err := openapitest.Load()
	if err != nil {
		t.Fatalf("compiling the description's schemas: %v", err)
	}
	if n := len(spec.Routes()); n < 60 {
		t.Errorf("the description has %d operations; the API has more", n)
	}
}

// TestCheckCatchesMismatches: the check refuses a body that breaks its
// schema, a status the operation does not list, a route the description
// lacks, and content where none is described; it passes good answers.
func TestCheckCatchesMismatches(t *testing.T) {
	spec, err := openapitest.Load()
	if err != nil {
		t.Fatal(err)
	}
	jsonH := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	brand := `{"id":"acme","name":"ACME","created_at":"2026-12-07T10:31:49.781882Z","updated_at":"2026-12-07T10:31:49.781882Z"}`
	tests := []struct {
		name, method, path string
		status             int
		header             http.Header
		body               string
		ok                 bool
	}{
		{"good brand", "GET", "/api/v1/brands/acme", 200, jsonH, brand, true},
		{"error shape", "GET", "/api/v1/brands/acme", 404, jsonH, `{"error":{"code":"not_found","message":"not found"}}`, true},
		{"literal beats parameter", "GET", "/api/v1/stores/nearest", 200, jsonH, `{"items":[]}`, true},
		{"no content", "DELETE", "/api/v1/brands/acme", 204, http.Header{}, ``, true},
		{"router 404", "GET", "/api/v1/nothing", 404, jsonH, `{"error":{"code":"not_found","message":"no such endpoint"}}`, true},
		{"missing field", "GET", "/api/v1/brands/acme", 200, jsonH, `{"id":"acme","name":"ACME"}`, false},
		{"bad date", "GET", "/api/v1/brands/acme", 200, jsonH, `{"id":"acme","name":"ACME","created_at":"yesterday","updated_at":"2026-12-07T10:31:49Z"}`, false},
		{"wrong type", "GET", "/api/v1/brands", 200, jsonH, `{"items":{}}`, false},
		{"error not in shape", "GET", "/api/v1/brands/acme", 404, jsonH, `{"message":"not found"}`, false},
		{"undescribed route", "GET", "/api/v1/live-sessions", 200, jsonH, `{}`, false},
		{"undescribed method", "PATCH", "/api/v1/brands/acme", 200, jsonH, brand, false},
		{"body where none", "DELETE", "/api/v1/brands/acme", 204, jsonH, `{}`, false},
		{"other media type", "GET", "/api/v1/brands/acme", 200, http.Header{"Content-Type": {"text/plain"}}, `x`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := spec.Check(tc.method, tc.path, tc.status, tc.header, []byte(tc.body))
			if (err == nil) != tc.ok {
				t.Errorf("Check = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
