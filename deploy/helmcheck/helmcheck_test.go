// Package helmcheck runs the helm command on the chart in
// deploy/helm/scrmgw: `helm lint --strict` and `helm template`, with the
// chart's defaults and with production values. The command is built from
// its Go module (helm.sh/helm/v4/cmd/helm, a `tool` of this module: `go
// tool helm` runs it by hand). Then every rendered object is checked
// against the Kubernetes API as kubeconform -strict would:
//
//   - against the Kubernetes OpenAPI schema (the v1.27 swagger.json that
//     k8s.io/kube-openapi ships for its own tests), as a JSON schema with
//     no property the API does not define (additionalProperties false),
//     int-or-string and quantities as the API takes them;
//   - by strict decoding into the API's Go types of this release
//     (k8s.io/api v0.37, client-go's scheme; prometheus-operator's types
//     for the ServiceMonitor and PodMonitor, which have no OpenAPI schema
//     here): an unknown or misspelt field, a wrong type or a duplicate key
//     fails.
//
// It is a module of its own so that Helm and the Kubernetes modules stay
// out of scrmgw's go.mod; scripts/test.sh runs it (docs/deploy.md says
// what it costs).
package helmcheck

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const chartDir = "../helm/scrmgw"

// valueSets are the values the chart is linted and rendered with, as
// `helm lint --set ...` and `helm template --set ...`: its defaults (the
// zero-setup mode), and production with every option on.
var valueSets = []struct {
	name   string
	values map[string]any
	kinds  map[string]int // what helm template must produce
}{
	{"defaults", nil, map[string]int{"Deployment": 1, "Service": 1}},
	{"production", map[string]any{
		"existingSecret": "scrmgw-secrets",
		"secretKeys":     map[string]any{"metricsToken": "metrics-token"},
		"redis": map[string]any{"sentinel": map[string]any{"enabled": true, "masterName": "main",
			"addrs": []any{"sentinel-0:26379", "sentinel-1:26379", "sentinel-2:26379"}}},
		"ingress": map[string]any{"enabled": true, "className": "nginx",
			"tls": []any{map[string]any{"secretName": "scrm-tls", "hosts": []any{"scrm.example.com"}}}},
		"serviceMonitor": map[string]any{"enabled": true},
		"nodeSelector":   map[string]any{"kubernetes.io/os": "linux"},
		"tolerations":    []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "scrm", "effect": "NoSchedule"}},
		"extraEnv":       []any{map[string]any{"name": "SCRMGW_LOG_LEVEL", "value": "debug"}},
	}, map[string]int{"Deployment": 2, "Service": 1, "Ingress": 1, "PodDisruptionBudget": 2,
		"ServiceMonitor": 1, "PodMonitor": 1, "Job": 1}},
}

// TestMain builds the helm command from its Go module (the `tool`
// directive in go.mod: helm.sh/helm/v4/cmd/helm at the version this module
// requires), as `go tool helm` would, and the tests run it.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "helmcheck")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	helmBin = filepath.Join(dir, "helm")
	build := exec.Command("go", "build", "-o", helmBin, "helm.sh/helm/v4/cmd/helm")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building the helm command: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	helmHome = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var helmBin, helmHome string

// helm runs the helm command with the values given (as a values file,
// `-f`), in an environment of its own (no cluster, no repositories).
func helm(t *testing.T, values map[string]any, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	if values != nil {
		b, err := yaml.Marshal(values)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-f", f)
	}
	cmd := exec.Command(helmBin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"),
		"KUBECONFIG="+filepath.Join(helmHome, "no-kubeconfig"))
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// TestHelmLint is `helm lint --strict` with each value set: it passes,
// with no error, no warning, and no info message either.
func TestHelmLint(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			out, errOut, err := helm(t, vs.values, "lint", "--strict", chartDir)
			if err != nil {
				t.Fatalf("helm lint --strict: %v\n%s%s", err, out, errOut)
			}
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Errorf("helm lint --strict said:\n%s%s", out, errOut)
			}
			for _, line := range strings.Split(out+errOut, "\n") {
				if strings.Contains(line, "[INFO]") || strings.Contains(line, "[WARNING]") || strings.Contains(line, "[ERROR]") {
					t.Errorf("helm lint: %s", line)
				}
			}
		})
	}
}

// manifest is one object of helm template's output.
type manifest struct {
	Name    string // its template, from helm's "# Source:" line
	Content string
}

// helmTemplate runs `helm template scrmgw CHART --namespace scrmgw` (an
// install, the default capabilities, hooks included) and returns its
// objects in the order helm prints them.
func helmTemplate(t *testing.T, values map[string]any) []manifest {
	t.Helper()
	out, errOut, err := helm(t, values, "template", "scrmgw", chartDir, "--namespace", "scrmgw")
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, errOut)
	}
	var ms []manifest
	for _, doc := range documentSep.Split(out, -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		m := manifest{Content: doc}
		if src := sourceLine.FindStringSubmatch(doc); src != nil {
			m.Name = src[1]
		}
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		t.Fatalf("helm template printed no object:\n%s", errOut)
	}
	return ms
}

var (
	documentSep = regexp.MustCompile(`(?m)^---\s*$`)
	sourceLine  = regexp.MustCompile(`(?m)^# Source: (\S+)`)
)

// TestHelmTemplate renders the chart with each value set and checks each
// object against the Kubernetes API's schema and types.
func TestHelmTemplate(t *testing.T) {
	v := newValidator(t)
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			kinds := map[string]int{}
			for _, m := range helmTemplate(t, vs.values) {
				var obj map[string]any
				if err := yaml.Unmarshal([]byte(m.Content), &obj); err != nil {
					t.Errorf("%s: %v", m.Name, err)
					continue
				}
				if obj == nil {
					continue
				}
				kind, _ := obj["kind"].(string)
				kinds[kind]++
				if err := v.validate(obj); err != nil {
					t.Errorf("%s (%s): %v\n%s", m.Name, kind, err, m.Content)
				}
			}
			if !maps.Equal(kinds, vs.kinds) {
				t.Errorf("helm template made %v, want %v", kinds, vs.kinds)
			}
		})
	}
	t.Run("sentinel without addresses is refused", func(t *testing.T) {
		_, errOut, err := helm(t, map[string]any{"existingSecret": "s",
			"redis": map[string]any{"sentinel": map[string]any{"enabled": true}}}, "template", "scrmgw", chartDir)
		if err == nil || !strings.Contains(errOut, "redis.sentinel.addrs") {
			t.Errorf("helm template with redis.sentinel.enabled and no addrs: %v %s, want an error naming redis.sentinel.addrs", err, errOut)
		}
	})
	t.Run("the validator refuses", func(t *testing.T) {
		// The check is worth what it refuses: a misspelt field, a wrong
		// type, a missing required field, each in a Deployment that is
		// otherwise the chart's.
		var dep, sm map[string]any
		for _, m := range helmTemplate(t, valueSets[1].values) {
			var head struct{ Kind string }
			yaml.Unmarshal([]byte(m.Content), &head)
			switch head.Kind {
			case "Deployment":
				if dep == nil {
					yaml.Unmarshal([]byte(m.Content), &dep)
				}
			case "ServiceMonitor":
				yaml.Unmarshal([]byte(m.Content), &sm)
			}
		}
		if err := v.validate(dep); err != nil {
			t.Fatalf("the chart's Deployment: %v", err)
		}
		spec := func(d map[string]any) map[string]any { return d["spec"].(map[string]any) }
		container := func(d map[string]any) map[string]any {
			return spec(spec(d)["template"].(map[string]any))["containers"].([]any)[0].(map[string]any)
		}
		for _, tc := range []struct {
			name   string
			change func(d map[string]any)
		}{
			{"misspelt field", func(d map[string]any) { container(d)["readinesProbe"] = container(d)["readinessProbe"] }},
			{"wrong type", func(d map[string]any) { spec(d)["replicas"] = "two" }},
			{"missing container name", func(d map[string]any) { delete(container(d), "name") }},
			{"missing selector", func(d map[string]any) { delete(spec(d), "selector") }},
			{"port out of int-or-string", func(d map[string]any) {
				container(d)["readinessProbe"].(map[string]any)["httpGet"].(map[string]any)["port"] = []any{8080}
			}},
		} {
			d := deepCopy(t, dep)
			tc.change(d)
			if err := v.validate(d); err == nil {
				t.Errorf("%s: accepted", tc.name)
			} else {
				t.Logf("%s: %v", tc.name, err)
			}
		}
		// prometheus-operator's kinds have no OpenAPI schema here: their
		// Go types refuse a misspelt field.
		if err := v.validate(sm); err != nil {
			t.Fatalf("the chart's ServiceMonitor: %v", err)
		}
		bad := deepCopy(t, sm)
		bad["spec"].(map[string]any)["endpoint"] = bad["spec"].(map[string]any)["endpoints"]
		delete(bad["spec"].(map[string]any), "endpoints")
		if err := v.validate(bad); err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("ServiceMonitor with spec.endpoint: %v, want an unknown field", err)
		} else {
			t.Logf("ServiceMonitor misspelt field: %v", err)
		}
	})
}

// validator checks objects against the OpenAPI schema and the Go types.
type validator struct {
	schemas map[schema.GroupVersionKind]*jsonschema.Schema
	decoder runtime.Decoder
	typed   *runtime.Scheme
}

func newValidator(t *testing.T) *validator {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := monitoringv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	v := &validator{
		schemas: map[schema.GroupVersionKind]*jsonschema.Schema{},
		decoder: serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer(),
		typed:   s,
	}
	defs := kubernetesDefinitions(t)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4) // OpenAPI 2's schema objects are draft 4's
	if err := c.AddResource("k8s.json", map[string]any{"definitions": defs}); err != nil {
		t.Fatal(err)
	}
	for name, d := range defs {
		gvks, _ := d.(map[string]any)["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			g := g.(map[string]any)
			gvk := schema.GroupVersionKind{Group: g["group"].(string), Version: g["version"].(string), Kind: g["kind"].(string)}
			if gvk.Kind == "DeleteOptions" || gvk.Kind == "WatchEvent" {
				continue // shared by every group: not what a chart holds
			}
			sch, err := c.Compile("k8s.json#/definitions/" + jsonPointerEscape(name))
			if err != nil {
				t.Fatalf("compiling the schema of %s: %v", name, err)
			}
			v.schemas[gvk] = sch
		}
	}
	if len(v.schemas) < 100 {
		t.Fatalf("only %d kinds in the Kubernetes OpenAPI schema", len(v.schemas))
	}
	return v
}

// validate checks one object. Kinds of the Kubernetes API are checked
// against their OpenAPI schema and decoded strictly; other kinds
// (prometheus-operator's) must be in the typed scheme.
func (v *validator) validate(obj map[string]any) error {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil || apiVersion == "" || kind == "" {
		return fmt.Errorf("apiVersion %q, kind %q: %v", apiVersion, kind, err)
	}
	gvk := gv.WithKind(kind)
	sch, hasSchema := v.schemas[gvk]
	if !hasSchema && !v.typed.Recognizes(gvk) {
		return fmt.Errorf("%s: no schema and no type: not a kind of the Kubernetes API nor of prometheus-operator", gvk)
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	if hasSchema {
		// The instance as the validator sees it: JSON's numbers.
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(string(raw)))
		if err != nil {
			return err
		}
		if err := sch.Validate(inst); err != nil {
			return fmt.Errorf("OpenAPI schema: %v", err)
		}
	}
	if _, _, err := v.decoder.Decode(raw, nil, nil); err != nil {
		return fmt.Errorf("strict decoding into %s: %v", gvk, err)
	}
	return nil
}

var (
	defsOnce sync.Once
	defs     map[string]any
	defsErr  error
)

// kubernetesDefinitions reads the Kubernetes API's OpenAPI definitions
// (swagger.json of Kubernetes v1.27.0, the test data of the
// k8s.io/kube-openapi module this module requires) and makes them the
// schemas kubeconform's strict mode uses.
func kubernetesDefinitions(t *testing.T) map[string]any {
	t.Helper()
	defsOnce.Do(func() {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kube-openapi").Output()
		if err != nil {
			defsErr = fmt.Errorf("go list -m k8s.io/kube-openapi: %v", err)
			return
		}
		path := filepath.Join(strings.TrimSpace(string(out)), "pkg", "schemaconv", "testdata", "swagger.json")
		b, err := os.ReadFile(path)
		if err != nil {
			defsErr = err
			return
		}
		var doc struct {
			Info        struct{ Version string }
			Definitions map[string]any
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			defsErr = fmt.Errorf("%s: %v", path, err)
			return
		}
		if doc.Info.Version != "v1.27.0" {
			defsErr = fmt.Errorf("%s: Kubernetes %s, want v1.27.0 (update this test and docs/deploy.md)", path, doc.Info.Version)
			return
		}
		// As kubeconform's schemas: an int-or-string takes either, a
		// quantity a string or a number.
		doc.Definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = map[string]any{
			"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
		doc.Definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"] = map[string]any{
			"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
		for _, d := range doc.Definitions {
			strict(d)
		}
		defs = doc.Definitions
	})
	if defsErr != nil {
		t.Fatal(defsErr)
	}
	return defs
}

// strict closes every object schema with properties to others
// (additionalProperties false, kubeconform -strict).
func strict(s any) {
	switch s := s.(type) {
	case map[string]any:
		if props, ok := s["properties"].(map[string]any); ok {
			if _, set := s["additionalProperties"]; !set {
				s["additionalProperties"] = false
			}
			for _, p := range props {
				strict(p)
			}
		}
		for _, k := range []string{"items", "additionalProperties"} {
			if sub, ok := s[k].(map[string]any); ok {
				strict(sub)
			}
		}
	}
}

func jsonPointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func deepCopy(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
