package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wechatoa"
)

// TestChannelSection: a channel's own section (wechat_oa) decodes from
// YAML and the environment like any other, its instances start from the
// section's defaults (SetDefaults), and its Validate names the keys.
func TestChannelSection(t *testing.T) {
	file := filepath.Join(t.TempDir(), "scrmgw.yaml")
	yaml := `
wechat_oa:
  app_id: wx-default
  token: tok
  encoding_aes_key: ` + aesKey + `
  brand: acme
  templates:
    recall:
      template_id: TPL-1
      data: {thing1: $title, thing2: $text}
  instances:
    kids:
      app_id: wx-kids
      app_secret: kids-secret
      token: tok-kids
      mode: plaintext
      brand: acme-kids
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file, []string{"SCRMGW_WECHAT_OA_APP_SECRET=s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	oa := cfg.WeChatOA
	if oa.AppSecret != "s3cret" || oa.Mode != wechatoa.ModeSafe || oa.MaxClockSkew != 5*time.Minute || oa.APIBase != wechatoa.DefaultAPIBase {
		t.Errorf("default account: %+v", oa)
	}
	if tpl := oa.Templates["recall"]; tpl.TemplateID != "TPL-1" || tpl.Data["thing2"] != "$text" {
		t.Errorf("template mapping: %+v", tpl)
	}
	kids := oa.Instances["kids"]
	if kids.Mode != wechatoa.ModePlaintext || kids.MaxClockSkew != 5*time.Minute || kids.APIBase != wechatoa.DefaultAPIBase {
		t.Errorf("instance kids does not start from the section's defaults: %+v", kids)
	}
	var keys []string
	for _, b := range oa.Configured() {
		keys = append(keys, b.Name)
	}
	if strings.Join(keys, ",") != "default,kids" {
		t.Errorf("configured accounts %v", keys)
	}
	_, err = Load(file, []string{"SCRMGW_WECHAT_OA_INSTANCES_KIDS_MODE=aes"})
	if err == nil || !strings.Contains(err.Error(), "wechat_oa.app_secret: required when wechat_oa.app_id is set") ||
		!strings.Contains(err.Error(), `wechat_oa.instances.kids.mode: want plaintext, compatible or safe, got "aes"`) {
		t.Errorf("Load = %v, want both problems named by key", err)
	}
}
