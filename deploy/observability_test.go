package deploy

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// registeredMetrics are the metric names scrmgw's code registers (the
// Name of every prometheus.*Opts and NewDesc in non-test code, with a
// histogram's series), the Go and process collectors' that the
// dashboard uses, and Prometheus's own up.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	named := regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(scrmgw_[a-z0-9_]+)"`)
	histogram := regexp.MustCompile(`NewHistogram(?:Vec)?\(prometheus\.HistogramOpts\{\s*Name:\s*"(scrmgw_[a-z0-9_]+)"`)
	out := map[string]bool{"up": true, "go_goroutines": true, "process_resident_memory_bytes": true, "process_cpu_seconds_total": true}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "scrmgw-load" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		code := stripComments(string(src))
		for _, m := range named.FindAllStringSubmatch(code, -1) {
			out[m[1]] = true
		}
		for _, m := range histogram.FindAllStringSubmatch(code, -1) {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[m[1]+s] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var lineComment = regexp.MustCompile(`(?m)^\s*//.*$`)

func stripComments(src string) string { return lineComment.ReplaceAllString(src, "") }

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promCall     = regexp.MustCompile(`\b[a-zA-Z_][a-zA-Z0-9_]*\s*\(`)
	promIdent    = regexp.MustCompile(`\b[a-zA-Z_:][a-zA-Z0-9_:]*\b`)
	promKeywords = []string{"and", "or", "unless", "bool", "offset", "e"}
)

// metricNames are the metric names an expression selects: what is left
// of it without strings, label matchers, ranges, groupings and function
// calls. (deploy/promcheck parses every expression with Prometheus's
// parser; this only reads names, so it needs none.)
func metricNames(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	s = promCall.ReplaceAllString(s, "(")
	var out []string
	for _, id := range promIdent.FindAllString(s, -1) {
		if !slices.Contains(promKeywords, id) {
			out = append(out, id)
		}
	}
	return out
}

// observedExprs are the expressions of the alert rules and the
// dashboard, by where they are.
func observedExprs(t *testing.T) map[string]string {
	t.Helper()
	exprs := map[string]string{}
	data, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
			}
		}
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs["alert "+r.Alert] = r.Expr
		}
	}
	data, err = os.ReadFile("grafana/scrmgw.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("scrmgw.json: %v", err)
	}
	if dash.UID == "" {
		t.Error("the dashboard has no uid")
	}
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			exprs["panel "+p.Title+" "+q.RefID] = q.Expr
		}
	}
	return exprs
}

// TestObservability: every metric the alert rules and the dashboard name
// is one scrmgw registers, and together they cover the queues, the inbox,
// send failures and rate waits, wake lateness, settlements, channel
// connections, HTTP and the audit trail.
func TestObservability(t *testing.T) {
	known := registeredMetrics(t)
	for _, want := range []string{"scrmgw_queue_tasks", "scrmgw_channel_connected", "scrmgw_http_requests_total", "scrmgw_http_request_duration_seconds_bucket"} {
		if !known[want] {
			t.Fatalf("the scan of the code did not find %s: registeredMetrics is broken", want)
		}
	}
	exprs := observedExprs(t)
	if len(exprs) < 10 {
		t.Fatalf("%d expressions", len(exprs))
	}
	used := map[string]bool{}
	for where, e := range exprs {
		names := metricNames(e)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", where, e)
		}
		for _, n := range names {
			used[n] = true
			if !known[n] {
				t.Errorf("%s: %s is not a metric scrmgw registers", where, n)
			}
		}
	}
	for _, want := range []string{"scrmgw_queue_tasks", "scrmgw_channel_connected", "scrmgw_http_requests_total",
		"scrmgw_audit_write_errors_total", "scrmgw_http_request_duration_seconds_bucket",
		"scrmgw_inbox_waiting", "scrmgw_inbox_oldest_waiting_seconds", "scrmgw_outbox_failures_total",
		"scrmgw_send_rate_wait_seconds_bucket", "scrmgw_workflow_wake_lateness_seconds_bucket",
		"scrmgw_ledger_settlement_runs_total", "scrmgw_ledger_unreconciled_stores"} {
		if !used[want] {
			t.Errorf("no rule or panel uses %s", want)
		}
	}
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (queue) (scrmgw_queue_tasks{state="pending"}) > 1000`:                            "scrmgw_queue_tasks",
		`histogram_quantile(0.99, sum by (le) (rate(x_bucket{route=~"/callbacks/.*"}[5m]))) > 1`: "x_bucket",
		`sum(rate(a_total{code=~"5.."}[5m])) / sum(rate(a_total[5m])) > 0.05`:                    "a_total a_total",
		`increase(b_total[10m]) > 0 and on (instance) up == 1`:                                   "b_total up",
		`sum by (instance) (process_resident_memory_bytes) / 1048576`:                            "process_resident_memory_bytes",
		`scrmgw_channel_connected{channel="dingtalk", instance=~".+"} == 0 unless c offset 5m`:   "scrmgw_channel_connected c",
	} {
		if got := strings.Join(metricNames(expr), " "); got != want {
			t.Errorf("metricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}
