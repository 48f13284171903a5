package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestCommands(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stdout string
		stderr string
	}{
		{"no command", nil, nil, 2, "", "Usage:"},
		{"unknown command", []string{"serv"}, nil, 2, "", `unknown command "serv"`},
		{"version", []string{"version"}, nil, 0, "scrmgw dev", ""},
		{"help", []string{"help"}, nil, 0, "scrmgw serve", ""},
		{"example config is valid", []string{"config", "--config", "../../configs/scrmgw.yaml"}, nil, 0, "configuration is valid", ""},
		{"missing config file", []string{"config", "--config", "nope.yaml"}, nil, 1, "", "reading config"},
		{"bad env", []string{"config"}, map[string]string{"SCRMGW_HTTP_ADDR": "nowhere"}, 1, "", "http.addr"},
		{"env listing", []string{"config", "--env"}, nil, 0, "database.url ↔ SCRMGW_DATABASE_URL", ""},
		{"stray argument", []string{"serve", "extra"}, nil, 2, "", `unexpected argument "extra"`},
		{"unknown flag", []string{"migrate", "--konfig", "x"}, nil, 2, "", "flag provided but not defined"},
		{"example workflows validate", []string{"workflow", "validate", "../../configs/workflows/new-member-welcome.yaml", "../../configs/workflows/dormant-win-back.yaml"}, nil, 0, `ok (workflow "new-member-welcome"`, ""},
		{"bad workflow", []string{"workflow", "validate", "testdata/bad-workflow.yaml"}, nil, 1, "", `testdata/bad-workflow.yaml:6:14: steps[0].channel: unknown channel "wecomm" (did you mean "wecom"?)`},
		{"workflow without subcommand", []string{"workflow"}, nil, 2, "", "usage: scrmgw workflow validate"},
		{"dry run", []string{"workflow", "dry-run", "../../configs/workflows/new-member-welcome.yaml", "--member", "../../configs/samples/member.json",
			"--events", "../../configs/samples/events.json", "--start", "2026-11-25T20:00:00+08:00"}, nil, 0, "2026-12-25 20:30:00 CST  recall (send)", ""},
		{"template of a kind its channel cannot send", []string{"workflow", "validate", "../../configs/workflows/new-member-welcome.yaml"},
			map[string]string{"SCRMGW_TEMPLATES_DIR": "testdata/unsendable-templates"}, 1, "",
			"testdata/unsendable-templates/reorder.yaml:6:13: template reorder: zh.dingtalk.kind: dingtalk cannot send miniprogram messages; it sends text, markdown, news, action_card, image"},
		{"template of a kind its channel sends guides only", []string{"workflow", "validate", "testdata/points-card.yaml"},
			map[string]string{"SCRMGW_TEMPLATES_DIR": "testdata/guide-card-templates"}, 1, "",
			`testdata/points-card.yaml:8:11: steps[0].send: template "points_card" renders a textcard message on wecom, which wecom cannot send to a member; it sends text, news, miniprogram, image, file`},
		{"dry run shows WeCom's request", []string{"workflow", "dry-run", "../../configs/workflows/new-member-welcome.yaml", "--member", "../../configs/samples/member.json",
			"--events", "../../configs/samples/events.json", "--start", "2026-11-25T20:00:00+08:00"}, nil, 0,
			`    request externalcontact/add_msg_template: {"chat_type":"single","external_userid":["member-1"],"sender":"g-li","attachments":[{"msgtype":"link","link":{"title":"山茶花新人专享：¥50优惠券",`, ""},
		{"dry run shows DingTalk's request", []string{"workflow", "dry-run", "../../configs/workflows/new-member-welcome.yaml", "--member", "testdata/member-dingtalk.json",
			"--events", "../../configs/samples/events.json", "--start", "2026-11-25T20:00:00+08:00"}, nil, 0,
			`    request robot/oToMessages/batchSend: {"robotCode":"","userIds":["manager4220"],"msgKey":"sampleActionCard","msgParam":"{\"singleTitle\":\"立即使用\",\"singleURL\":\"https://shop.example.com/coupons/NEW-MEMBER-50-1Y5J5I\",\"text\":\"### ¥50 新人专享券\\n王小美好，李娜为您申请了一张新人券，12月28日前有效。\\n券码：**NEW-MEMBER-50-1Y5J5I**\",\"title\":\"山茶花新人专享：¥50优惠券\"}"}` + "\n", ""},
		{"dry run without member", []string{"workflow", "dry-run", "../../configs/workflows/new-member-welcome.yaml"}, nil, 2, "", "usage: scrmgw workflow dry-run"},
		{"dry run with a bad member file", []string{"workflow", "dry-run", "../../configs/workflows/new-member-welcome.yaml", "--member", "../../configs/samples/events.json"}, nil, 1, "", "--member"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("run(%v) = %d\nstdout: %s\nstderr: %s\nwant %d, stdout containing %q, stderr containing %q",
					tc.args, code, out.String(), errb.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestMigrateCommand(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SCRMGW_DATA_DIR", dir)
	var out, errb bytes.Buffer
	if code := run([]string{"migrate"}, &out, &errb); code != 0 {
		t.Fatalf("migrate exited %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "0001_initial") {
		t.Errorf("first migrate did not report the migration: %s", errb.String())
	}
	errb.Reset()
	if code := run([]string{"migrate"}, &out, &errb); code != 0 || strings.Contains(errb.String(), "applied=") {
		t.Errorf("second migrate: exit %d, log %s; want nothing applied", code, errb.String())
	}
}

func TestImportCommand(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SCRMGW_DATA_DIR", dir)
	brands := dir + "/x.csv"
	if err := os.WriteFile(brands, []byte("id,name,brands,lat,lng\nsh-1,Shanghai,acme,31,121\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	// The brand does not exist yet: the row is refused with its line.
	if code := run([]string{"import", "stores", brands}, &out, &errb); code != 1 || !strings.Contains(errb.String(), `x.csv:2: unknown brand "acme"`) {
		t.Fatalf("import with an unknown brand: exit %d\nstdout %s\nstderr %s", code, out.String(), errb.String())
	}
	if code := run([]string{"import", "stores"}, &out, &errb); code != 2 {
		t.Errorf("import without a file: exit %d, want 2", code)
	}
	if code := run([]string{"import", "refunds", brands}, &out, &errb); code != 2 {
		t.Errorf("import of an unknown kind: exit %d, want 2", code)
	}
}

// TestReadmeWorkflowValidates keeps the README's workflow example valid.
func TestReadmeWorkflowValidates(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README has no yaml block")
	}
	path := t.TempDir() + "/readme.yaml"
	if err := os.WriteFile(path, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"workflow", "validate", path}, &out, &errb); code != 0 {
		t.Errorf("README workflow does not validate:\n%s", errb.String())
	}
}

// TestLedgerSettleCommand: a day that is not over is refused (exit 2);
// an empty finished day settles to a CSV header only, twice alike.
func TestLedgerSettleCommand(t *testing.T) {
	t.Setenv("SCRMGW_DATA_DIR", t.TempDir())
	var out, errb bytes.Buffer
	if code := run([]string{"ledger", "settle"}, &out, &errb); code != 2 {
		t.Errorf("settle without a date: exit %d, want 2", code)
	}
	tomorrow := time.Now().Add(48 * time.Hour).Format(time.DateOnly)
	if code := run([]string{"ledger", "settle", "--date", tomorrow}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "not over") {
		t.Errorf("settling a future day: exit %d, stderr %s", code, errb.String())
	}
	for i := 0; i < 2; i++ {
		out.Reset()
		errb.Reset()
		if code := run([]string{"ledger", "settle", "--date", "2026-01-05"}, &out, &errb); code != 0 ||
			out.String() != "date,store_id,brand,party,party_id,lines,amount,store_orders,store_sales,store_refunds,store_net,reconciled\n" {
			t.Errorf("settling an empty day (%d): exit %d\nstdout %s\nstderr %s", i, code, out.String(), errb.String())
		}
	}
}
