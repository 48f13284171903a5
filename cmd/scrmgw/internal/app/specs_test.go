package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/configs"
)

// TestUnsendableTemplateStopsTheStart: the templates are checked against
// the channels' specs when the gateway starts: a DingTalk variant of a
// kind DingTalk cannot carry stops it, at its file, line and column.
func TestUnsendableTemplateStopsTheStart(t *testing.T) {
	dir := t.TempDir()
	bad := "id: welcome\nlocales:\n  zh:\n    default: 你好\n    dingtalk:\n      kind: miniprogram\n      title: 新会员礼\n" +
		"      appid: wx0123456789abcdef\n      page: pages/gift/index\n      pic_media_id: MEDIA_ID\n"
	if err := os.WriteFile(filepath.Join(dir, "welcome.yaml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.TemplatesDir = dir
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		a.Close()
		t.Fatal("started with a DingTalk mini-program variant")
	}
	want := "welcome.yaml:6:13: template welcome: zh.dingtalk.kind: dingtalk cannot send miniprogram messages; it sends text, markdown, news, action_card, image"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
}

// TestChannelSpecs: every built-in channel has a spec; templates take
// all their kinds, workflows the member kinds.
func TestChannelSpecs(t *testing.T) {
	cfg := configs.Default()
	cfg.DingTalk.ClientID = "dingrobot"
	specs := ChannelSpecs(cfg)
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	// The built-in three, then each section's (a channel plugged in by
	// its configuration section).
	want := []string{"wecom", "dingtalk", "webhook"}
	var sectionKinds []string
	for _, sec := range sections(&cfg) {
		sectionKinds = append(sectionKinds, sec.Spec().Name)
	}
	if strings.Join(names, ",") != strings.Join(append(want, sectionKinds...), ",") {
		t.Errorf("specs of %v", names)
	}
	if k := TemplateChannels(specs)["dingtalk"]; strings.Join(k, ",") != "text,markdown,news,action_card,image" {
		t.Errorf("dingtalk template kinds %v", k)
	}
	req, err := specs[1].Preview(&adapters.Outbound{To: "manager4220", Kind: "text", Text: "你好"})
	if err != nil || string(req.Body) != `{"robotCode":"dingrobot","userIds":["manager4220"],"msgKey":"sampleText","msgParam":"{\"content\":\"你好\"}"}` {
		t.Errorf("DingTalk preview %s, %v: want the configured robot", req.Body, err)
	}
	if chs := WorkflowChannels(cfg); strings.Join(chs, ",") != "dingtalk" {
		t.Errorf("workflow channels with DingTalk configured: %v", chs)
	}
	if chs := WorkflowChannels(configs.Default()); strings.Join(chs, ",") != strings.Join(append([]string{"wecom", "dingtalk"}, sectionKinds...), ",") {
		t.Errorf("workflow channels with none configured: %v", chs)
	}
}
