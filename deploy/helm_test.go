package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"text/template"

	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/configs"
)

// renderChart renders a Helm chart's templates as `helm template` does,
// with the subset of Helm's functions (Go templates, sprig and include,
// required, toYaml) the scrmgw chart uses: a chart that calls any other
// fails to parse here. Helm's own engine (helm.sh/helm/v4/pkg/engine)
// took 290 s (118 s of CPU) to build on this 2-core machine, and Helm
// has no Debian package: see docs/deploy.md.
func renderChart(t *testing.T, dir string, overrides map[string]any) (map[string]string, error) {
	t.Helper()
	var chart struct {
		Name       string `yaml:"name"`
		Version    string `yaml:"version"`
		AppVersion string `yaml:"appVersion"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %w", err)
	}
	values := map[string]any{}
	data, err = os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("values.yaml: %w", err)
	}
	mergeValues(values, overrides)
	top := map[string]any{
		"Values":  values,
		"Chart":   map[string]any{"Name": chart.Name, "Version": chart.Version, "AppVersion": chart.AppVersion},
		"Release": map[string]any{"Name": "scrmgw", "Namespace": "default", "Service": "Helm"},
	}

	tpl := template.New("chart").Option("missingkey=zero")
	tpl.Funcs(template.FuncMap{
		"include": func(name string, data any) (string, error) {
			var b bytes.Buffer
			err := tpl.ExecuteTemplate(&b, name, data)
			return b.String(), err
		},
		"toYaml": func(v any) string {
			b, err := yaml.Marshal(v)
			if err != nil {
				return ""
			}
			return strings.TrimSuffix(string(b), "\n")
		},
		"indent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
		},
		"nindent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return "\n" + pad + strings.ReplaceAll(s, "\n", "\n"+pad)
		},
		"quote": func(v any) string { return fmt.Sprintf("%q", fmt.Sprint(v)) },
		"default": func(def any, given ...any) any {
			if len(given) == 0 || empty(given[0]) {
				return def
			}
			return given[0]
		},
		"empty":      empty,
		"trunc":      func(n int, s string) string { return s[:min(n, len(s))] },
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"list":       func(v ...any) []any { return v },
		"join": func(sep string, v any) string {
			var parts []string
			rv := reflect.ValueOf(v)
			for i := 0; rv.Kind() == reflect.Slice && i < rv.Len(); i++ {
				parts = append(parts, fmt.Sprint(rv.Index(i).Interface()))
			}
			return strings.Join(parts, sep)
		},
		"int": func(v any) int {
			switch n := v.(type) {
			case int:
				return n
			case float64:
				return int(n)
			}
			return 0
		},
		// As Helm's: only nil and "" are missing (an empty list is not;
		// deploy/helmcheck found the difference).
		"required": func(msg string, v any) (any, error) {
			if v == nil || v == "" {
				return nil, errors.New(msg)
			}
			return v, nil
		},
		"fail": func(msg string) (string, error) { return "", errors.New(msg) },
	})
	files, err := filepath.Glob(filepath.Join(dir, "templates", "*"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if _, err := tpl.New(filepath.Base(f)).Parse(string(src)); err != nil {
			return nil, err
		}
	}
	out := map[string]string{}
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "_") {
			continue
		}
		var b bytes.Buffer
		if err := tpl.ExecuteTemplate(&b, name, top); err != nil {
			return nil, err
		}
		out[name] = b.String()
	}
	return out, nil
}

// empty is sprig's: false, 0, "", nil and empty collections.
func empty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map, reflect.String:
		return rv.Len() == 0
	case reflect.Bool:
		return !rv.Bool()
	case reflect.Int, reflect.Int64, reflect.Float64:
		return rv.IsZero()
	}
	return false
}

// mergeValues overlays src onto dst, maps merged key by key (helm --set).
func mergeValues(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// manifest is the part of a Kubernetes object the checks read.
type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec map[string]any `yaml:"spec"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom struct {
			SecretKeyRef struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type podSpec struct {
	SecurityContext struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
		RunAsUser    int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
}

// parseManifests splits rendered files into objects; every one must be
// YAML with apiVersion, kind and metadata.name.
func parseManifests(t *testing.T, files map[string]string) map[string][]manifest {
	t.Helper()
	byKind := map[string][]manifest{}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if name == "NOTES.txt" {
			continue
		}
		dec := yaml.NewDecoder(strings.NewReader(files[name]))
		for {
			var raw map[string]any
			err := dec.Decode(&raw)
			if err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("%s: rendered YAML does not parse: %v\n%s", name, err, files[name])
				}
				break
			}
			if raw == nil {
				continue
			}
			b, _ := yaml.Marshal(raw)
			var m manifest
			if err := yaml.Unmarshal(b, &m); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if raw["apiVersion"] == nil || m.Kind == "" || m.Metadata.Name == "" {
				t.Errorf("%s: an object without apiVersion, kind or metadata.name:\n%s", name, b)
			}
			byKind[m.Kind] = append(byKind[m.Kind], m)
		}
	}
	return byKind
}

func podOf(t *testing.T, m manifest) podSpec {
	t.Helper()
	tpl, _ := m.Spec["template"].(map[string]any)
	b, _ := yaml.Marshal(tpl["spec"])
	var p podSpec
	if err := yaml.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s %s: pod spec: %v", m.Kind, m.Metadata.Name, err)
	}
	return p
}

// checkPod checks what every scrmgw pod must have, and that its
// environment is a configuration scrmgw accepts (secrets stand in).
func checkPod(t *testing.T, m manifest) podSpec {
	t.Helper()
	p := podOf(t, m)
	if !p.SecurityContext.RunAsNonRoot || p.SecurityContext.RunAsUser == 0 {
		t.Errorf("%s: pod securityContext %+v: want runAsNonRoot and a non-root user", m.Metadata.Name, p.SecurityContext)
	}
	if len(p.Containers) != 1 {
		t.Fatalf("%s: %d containers", m.Metadata.Name, len(p.Containers))
	}
	c := p.Containers[0]
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
		t.Errorf("%s: resource requests %v", m.Metadata.Name, c.Resources.Requests)
	}
	if sc := c.SecurityContext; sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: container securityContext %+v", m.Metadata.Name, sc)
	}
	var environ []string
	for _, e := range c.Env {
		v := e.Value
		if ref := e.ValueFrom.SecretKeyRef; ref.Key != "" {
			v = map[string]string{"database-url": "postgres://u:p@pg:5432/scrmgw", "redis-url": "redis://:p@redis:6379/0",
				"admin-token": strings.Repeat("t", 32), "phone-key": strings.Repeat("ab", 32), "metrics-token": "m", "redis-password": "p"}[ref.Key]
		}
		v = strings.ReplaceAll(v, "$(REDIS_PASSWORD)", "p")
		environ = append(environ, e.Name+"="+v)
	}
	if _, err := configs.Load("", environ); err != nil {
		t.Errorf("%s: the container's environment is not a valid configuration:\n%v", m.Metadata.Name, err)
	}
	return p
}

// TestHelmChart renders the chart with its defaults (the zero-setup mode)
// and for production (existingSecret, Sentinel, Ingress, ServiceMonitor),
// and checks the manifests.
func TestHelmChart(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		files, err := renderChart(t, "helm/scrmgw", nil)
		if err != nil {
			t.Fatal(err)
		}
		got := parseManifests(t, files)
		kinds := slices.Sorted(maps.Keys(got))
		if !slices.Equal(kinds, []string{"Deployment", "Service"}) {
			t.Fatalf("default kinds %v, want one Deployment and a Service (the zero-setup mode)", kinds)
		}
		p := checkPod(t, got["Deployment"][0])
		c := p.Containers[0]
		if !slices.Equal(c.Args, []string{"serve", "--workers=true"}) || got["Deployment"][0].Spec["replicas"] != 1 {
			t.Errorf("zero-setup serve: args %v, replicas %v", c.Args, got["Deployment"][0].Spec["replicas"])
		}
		if c.Image != "localhost/scrmgw:dev" {
			t.Errorf("image %q", c.Image)
		}
		if !strings.Contains(files["NOTES.txt"], "ZERO-SETUP MODE") {
			t.Errorf("NOTES.txt does not warn of the zero-setup mode:\n%s", files["NOTES.txt"])
		}
	})

	t.Run("production", func(t *testing.T) {
		files, err := renderChart(t, "helm/scrmgw", map[string]any{
			"existingSecret": "scrmgw-secrets",
			"secretKeys":     map[string]any{"metricsToken": "metrics-token"},
			"redis": map[string]any{"sentinel": map[string]any{"enabled": true, "masterName": "main",
				"addrs": []any{"sentinel-0:26379", "sentinel-1:26379", "sentinel-2:26379"}}},
			"ingress":        map[string]any{"enabled": true, "className": "nginx"},
			"serviceMonitor": map[string]any{"enabled": true},
		})
		if err != nil {
			t.Fatal(err)
		}
		got := parseManifests(t, files)
		want := map[string]int{"Deployment": 2, "Service": 1, "Ingress": 1, "PodDisruptionBudget": 2, "ServiceMonitor": 1, "PodMonitor": 1, "Job": 1}
		for kind, n := range want {
			if len(got[kind]) != n {
				t.Errorf("%d %s, want %d", len(got[kind]), kind, n)
			}
		}
		if len(got) != len(want) {
			t.Errorf("kinds %v, want %v", slices.Sorted(maps.Keys(got)), want)
		}
		for _, d := range append(got["Deployment"], got["Job"]...) {
			p := checkPod(t, d)
			c := p.Containers[0]
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
				if ref := e.ValueFrom.SecretKeyRef; ref.Key != "" {
					if ref.Name != "scrmgw-secrets" {
						t.Errorf("%s: %s from secret %q", d.Metadata.Name, e.Name, ref.Name)
					}
					env[e.Name] = "secret:" + ref.Key
				}
			}
			if env["SCRMGW_DATABASE_URL"] != "secret:database-url" || env["SCRMGW_ADMIN_TOKEN"] != "secret:admin-token" ||
				env["SCRMGW_SECURITY_PHONE_KEY"] != "secret:phone-key" || env["SCRMGW_HTTP_METRICS_TOKEN"] != "secret:metrics-token" {
				t.Errorf("%s: secrets by reference: %v", d.Metadata.Name, env)
			}
			if want := "redis-sentinel://:$(REDIS_PASSWORD)@sentinel-0:26379,sentinel-1:26379,sentinel-2:26379/0?master=main"; env["SCRMGW_REDIS_URL"] != want {
				t.Errorf("%s: SCRMGW_REDIS_URL %q, want %q", d.Metadata.Name, env["SCRMGW_REDIS_URL"], want)
			}
			switch d.Metadata.Name {
			case "scrmgw-serve":
				if !slices.Equal(c.Args, []string{"serve", "--workers=false"}) {
					t.Errorf("serve args %v", c.Args)
				}
				if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
					t.Errorf("serve probes: readiness %+v, liveness %+v", c.ReadinessProbe, c.LivenessProbe)
				}
			case "scrmgw-worker":
				if !slices.Equal(c.Args, []string{"worker", "--listen", ":9090"}) {
					t.Errorf("worker args %v", c.Args)
				}
				if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port != "metrics" ||
					c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
					t.Errorf("worker probes: readiness %+v, liveness %+v", c.ReadinessProbe, c.LivenessProbe)
				}
			case "scrmgw-migrate":
				if !slices.Equal(c.Args, []string{"migrate"}) {
					t.Errorf("migrate args %v", c.Args)
				}
			default:
				t.Errorf("unexpected workload %s", d.Metadata.Name)
			}
		}
		sm := got["ServiceMonitor"][0].Spec
		if ep := sm["endpoints"].([]any)[0].(map[string]any); ep["path"] != "/metrics" || ep["port"] != "http" {
			t.Errorf("ServiceMonitor endpoint %v", ep)
		}
		pm := got["PodMonitor"][0].Spec
		if ep := pm["podMetricsEndpoints"].([]any)[0].(map[string]any); ep["path"] != "/metrics" || ep["port"] != "metrics" || ep["authorization"] == nil {
			t.Errorf("PodMonitor endpoint %v", ep)
		}
	})

	t.Run("sentinel without addresses is refused", func(t *testing.T) {
		_, err := renderChart(t, "helm/scrmgw", map[string]any{"existingSecret": "s",
			"redis": map[string]any{"sentinel": map[string]any{"enabled": true}}})
		if err == nil || !strings.Contains(err.Error(), "redis.sentinel.addrs") {
			t.Errorf("rendering: %v, want an error naming redis.sentinel.addrs", err)
		}
	})
}
