package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/configs"
)

// readYAML decodes a YAML file into JSON's types (what a JSON schema
// validates), by way of encoding/json.
func readYAML(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out any
	if err := json.Unmarshal(j, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

type composeService struct {
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Deploy struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Healthcheck struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

// TestCompose validates deploy/compose.yaml against the Compose
// Specification's JSON schema, then checks what the schema cannot: the
// services and their order, and that each scrmgw service's environment,
// with the secret files deploy/secrets.sh writes, is a valid scrmgw
// configuration for PostgreSQL and Redis.
func TestCompose(t *testing.T) {
	c := jsonschema.NewCompiler()
	schemaDoc, err := os.Open("testdata/compose-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(schemaDoc)
	schemaDoc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("compose-spec.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("compose-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(readYAML(t, "compose.yaml")); err != nil {
		t.Fatalf("compose.yaml does not follow the Compose Specification:\n%v", err)
	}
	// The schema is strict enough to refuse a typo.
	bad := readYAML(t, "compose.yaml").(map[string]any)
	bad["services"].(map[string]any)["serve"].(map[string]any)["depends_onn"] = map[string]any{}
	if schema.Validate(bad) == nil {
		t.Error("the schema accepted an unknown service key")
	}

	var f composeFile
	data, _ := os.ReadFile("compose.yaml")
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		"migrate": {"migrate"}, "serve": {"serve", "--workers=false"}, "worker": {"worker", "--listen", ":9090"},
	} {
		if got := f.Services[name].Command; !slices.Equal(got, want) {
			t.Errorf("service %s runs %v, want %v", name, got, want)
		}
	}
	if n := f.Services["worker"].Deploy.Replicas; n != 2 {
		t.Errorf("worker replicas %d, want 2", n)
	}
	for _, name := range []string{"serve", "worker"} {
		if got := f.Services[name].DependsOn["migrate"].Condition; got != "service_completed_successfully" {
			t.Errorf("%s depends on migrate with %q, want service_completed_successfully", name, got)
		}
	}
	if got := f.Services["migrate"].DependsOn["postgres"].Condition; got != "service_healthy" {
		t.Errorf("migrate waits for postgres with %q", got)
	}
	if hc := f.Services["serve"].Healthcheck.Test; !slices.Equal(hc, []string{"CMD", "/scrmgw", "health", "--ready"}) {
		t.Errorf("serve's health check %v", hc)
	}
	if hc := f.Services["worker"].Healthcheck; hc.Disable || !slices.Equal(hc.Test, []string{"CMD", "/scrmgw", "health", "--url", "http://127.0.0.1:9090/readyz"}) {
		t.Errorf("worker's health check %+v: want /readyz on its --listen port", hc)
	}
	for _, name := range []string{"postgres", "redis"} {
		if len(f.Services[name].Healthcheck.Test) == 0 {
			t.Errorf("%s has no health check", name)
		}
	}

	// secrets.sh writes every secret file compose reads, and the URLs it
	// writes name the compose services.
	dir := t.TempDir()
	if out, err := exec.Command("bash", "secrets.sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("secrets.sh: %v\n%s", err, out)
	}
	first, _ := os.ReadFile(filepath.Join(dir, "admin_token"))
	if out, err := exec.Command("bash", "secrets.sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("secrets.sh again: %v\n%s", err, out)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "admin_token")); string(again) != string(first) {
		t.Error("a second secrets.sh changed the admin token")
	}
	for name, s := range f.Secrets {
		if !strings.HasPrefix(s.File, "./secrets/") {
			t.Errorf("secret %s is read from %s, not ./secrets/", name, s.File)
		}
		if _, err := os.Stat(filepath.Join(dir, strings.TrimPrefix(s.File, "./secrets/"))); err != nil {
			t.Errorf("secret %s: secrets.sh does not write it: %v", name, err)
		}
	}
	for _, name := range []string{"migrate", "serve", "worker"} {
		svc := f.Services[name]
		var environ []string
		for k, v := range svc.Environment {
			if after, ok := strings.CutPrefix(v, "/run/secrets/"); ok {
				if !slices.Contains(svc.Secrets, after) {
					t.Errorf("%s: %s reads secret %s, which the service is not given", name, k, after)
				}
				if _, ok := f.Secrets[after]; !ok {
					t.Errorf("%s: %s reads secret %s, which is not defined", name, k, after)
				}
				v = filepath.Join(dir, after)
			}
			environ = append(environ, k+"="+v)
		}
		cfg, err := configs.Load("", environ)
		if err != nil {
			t.Errorf("%s: its environment is not a valid configuration:\n%v", name, err)
			continue
		}
		if !strings.HasPrefix(cfg.Database.URL, "postgres://scrmgw:") || !strings.Contains(cfg.Database.URL, "@postgres:5432/scrmgw") ||
			!strings.HasPrefix(cfg.Redis.URL, "redis://:") || !strings.HasSuffix(cfg.Redis.URL, "@redis:6379/0") {
			t.Errorf("%s: database %s, redis %s: want the compose services", name, redact(cfg.Database.URL), redact(cfg.Redis.URL))
		}
	}
}

// redact hides the password of a URL in a failure message.
func redact(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if _, host, ok2 := strings.Cut(rest, "@"); ok && ok2 {
		return fmt.Sprintf("%s://***@%s", scheme, host)
	}
	return u
}
