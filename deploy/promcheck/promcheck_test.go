// Package promcheck parses the alert rules' and the dashboard's
// expressions with Prometheus's own PromQL parser, as promtool check
// rules would (promtool itself is not installable here: no Debian
// package on this machine's release and no download). It is a module of
// its own so that github.com/prometheus/prometheus and the versions it
// asks for stay out of scrmgw's go.mod; scripts/test.sh runs it.
package promcheck

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// promql is the parser Prometheus 3 runs rules with (its default options).
var promql = parser.NewParser(parser.Options{})

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func TestAlertRules(t *testing.T) {
	data, err := os.ReadFile("../prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	n := 0
	seen := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || seen[r.Alert] {
				t.Errorf("rule %d of %s: alert name %q missing or repeated", n, g.Name, r.Alert)
			}
			seen[r.Alert] = true
			expr, err := promql.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: expr does not parse: %v\n%s", r.Alert, err, r.Expr)
				continue
			}
			if typ := expr.Type(); typ != parser.ValueTypeVector {
				t.Errorf("%s: expr is a %s, want an instant vector", r.Alert, typ)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: want a severity label, a summary and a description", r.Alert)
			}
			for k, v := range r.Annotations {
				// The alert templates' syntax (their functions are
				// Prometheus's; only the syntax is checked here).
				tpl := template.New(k).Funcs(template.FuncMap{"humanizePercentage": func(any) string { return "" }, "humanizeDuration": func(any) string { return "" }})
				// Prometheus defines these before every alert template.
				defs := "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
				if _, err := tpl.Parse(defs + v); err != nil {
					t.Errorf("%s: annotation %s: %v", r.Alert, k, err)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no rules")
	}
}

func TestDashboardQueries(t *testing.T) {
	data, err := os.ReadFile("../grafana/scrmgw.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			n++
			if _, err := promql.ParseExpr(q.Expr); err != nil {
				t.Errorf("panel %q: %v\n%s", p.Title, err, q.Expr)
			}
		}
	}
	if n == 0 {
		t.Fatal("no queries")
	}
}
