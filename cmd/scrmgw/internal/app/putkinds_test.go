package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/configs"
)

// TestPutRefusesUnsendableTemplate: a workflow put through the API is
// checked against what each channel carries, as `scrmgw workflow
// validate` checks it: a send step whose template renders a WeCom
// textcard (an app message WeCom sends guides, never members) is refused
// with the file, line and column, and nothing is stored. The gateway
// checks against the channels it has: WeCom and DingTalk, on fakes.
func TestPutRefusesUnsendableTemplate(t *testing.T) {
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.AdminToken = "put-kinds-admin-token-0001"
	cfg.WeCom = wecomfake.New(t).Config()
	cfg.WeCom.Brand = "camellia"
	openapi := dingtalkfake.NewOpenAPI(t)
	gw := dingtalkfake.New(t, dingtalkfake.WithOpenAPI(openapi))
	cfg.DingTalk = dingtalk.Config{ClientID: gw.ClientID(), ClientSecret: gw.ClientSecret(), Brand: "camellia",
		StreamHost: gw.URL(), APIBase: openapi.URL()}
	// The shipped templates and one more: a WeCom textcard.
	cfg.TemplatesDir = t.TempDir()
	for _, src := range append(mustGlob(t, "../../../../configs/templates/*.yaml"), "../../testdata/guide-card-templates/points_card.yaml") {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.TemplatesDir, filepath.Base(src)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startServe(t, cfg)
	tok := cfg.AdminToken
	if code, body := request(t, "POST", s.base+"/api/v1/brands", tok, `{"id":"camellia","name":"Camellia"}`); code != 201 {
		t.Fatalf("brand: %d %s", code, body)
	}
	wf, err := os.ReadFile("../../testdata/points-card.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if code, body := putWorkflow(t, s, tok, "camellia", "points-expiry", string(wf)); code != 400 ||
		!strings.Contains(body, "points-expiry.yaml:") || !strings.Contains(body, "textcard") {
		t.Fatalf("PUT: %d %s, want 400 naming the file position and the textcard", code, body)
	}
	if code, body := request(t, "GET", s.base+"/api/v1/workflows?brand=camellia", tok, ""); code != 200 || strings.Contains(body, "points-expiry") {
		t.Errorf("workflows after the refused PUT: %d %s, want none", code, body)
	}
	// The same workflow on DingTalk, which has no textcard variant and
	// sends the default text, is taken.
	dt := strings.Replace(string(wf), "  - send: points_card", "  - send: points_card\n    channel: dingtalk", 1)
	if code, body := putWorkflow(t, s, tok, "camellia", "points-expiry", dt); code != 201 {
		t.Fatalf("PUT on dingtalk: %d %s, want 201", code, body)
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("glob %s: %v (%d files)", pattern, err, len(m))
	}
	return m
}
