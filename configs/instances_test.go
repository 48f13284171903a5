package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/wecom"
)

const aesKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

// twoCorps is a deployment of two WeCom corps (the default serving
// camellia, acme serving two brands) and two DingTalk apps.
const twoCorps = `
wecom:
  corp_id: ww-default
  agent_id: "1000002"
  token: tok-default
  encoding_aes_key: ` + aesKey + `
  brand: camellia
  instances:
    acme:
      corp_id: ww-acme
      agent_id: "1000005"
      token: tok-acme
      encoding_aes_key: ` + aesKey + `
      brands: [acme, acme-kids]
      member_mass_limit: 4/month
      send_rate: 30/s
      kf_brands:
        wkKids: acme-kids
    acme-cn:
      corp_id: ww-acme
      agent_id: "1000006"
      secret: cn-secret-from-file
      token: tok-acme-cn
      encoding_aes_key: ` + aesKey + `
      brand: acme
dingtalk:
  client_id: ding-default
  client_secret: s1
  instances:
    cn:
      client_id: ding-cn
      client_secret: s2
      brand: acme
`

func TestInstancesLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "scrmgw.yaml")
	if err := os.WriteFile(path, []byte(twoCorps), 0o600); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "acme-contact")
	if err := os.WriteFile(secretFile, []byte("acme-contact-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, []string{
		"SCRMGW_WECOM_SECRET=default-secret",
		"SCRMGW_WECOM_INSTANCES_ACME_SECRET=acme-secret",
		"SCRMGW_WECOM_INSTANCES_ACME_CONTACT_SECRET_FILE=" + secretFile,
		// acme-cn, as the environment spells it.
		"SCRMGW_WECOM_INSTANCES_ACME_CN_SECRET=cn-secret",
		"SCRMGW_WECOM_INSTANCES_ACME_CN_KF_BRANDS=wkCN1=acme, wkCN2=acme",
		"SCRMGW_DINGTALK_INSTANCES_CN_CLIENT_SECRET=ding-cn-secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	def := Default().WeCom
	acme := def
	acme.CorpID, acme.AgentID, acme.Token, acme.EncodingAESKey = "ww-acme", "1000005", "tok-acme", aesKey
	acme.Secret, acme.ContactSecret = "acme-secret", "acme-contact-secret"
	acme.Brands, acme.MemberMassLimit, acme.SendRate = []string{"acme", "acme-kids"}, "4/month", "30/s"
	acme.KFBrands = map[string]string{"wkKids": "acme-kids"}
	cn := def
	cn.CorpID, cn.AgentID, cn.Secret, cn.Token, cn.EncodingAESKey, cn.Brand = "ww-acme", "1000006", "cn-secret", "tok-acme-cn", aesKey, "acme"
	cn.KFBrands = map[string]string{"wkCN1": "acme", "wkCN2": "acme"}
	if diff := cmp.Diff(map[string]wecom.Config{"acme": acme, "acme-cn": cn}, cfg.WeCom.Instances); diff != "" {
		t.Errorf("wecom.instances (-want +got):\n%s", diff)
	}
	if cfg.WeCom.Secret != "default-secret" || cfg.WeCom.Instances["acme"].MaxClockSkew != 10*time.Minute {
		t.Errorf("default secret %q, acme max_clock_skew %s: want the default's own and the section default", cfg.WeCom.Secret, cfg.WeCom.Instances["acme"].MaxClockSkew)
	}
	var keys []string
	for _, n := range cfg.WeCom.All() {
		keys = append(keys, n.Key()+" "+n.Config.CorpID)
	}
	for _, n := range cfg.DingTalk.All() {
		keys = append(keys, n.Key()+" "+n.Config.ClientID)
	}
	want := []string{"wecom ww-default", "wecom:acme ww-acme", "wecom:acme-cn ww-acme", "dingtalk ding-default", "dingtalk:cn ding-cn"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("instances in order (-want +got):\n%s", diff)
	}
	wantCN := Default().DingTalk
	wantCN.ClientID, wantCN.ClientSecret, wantCN.Brand = "ding-cn", "ding-cn-secret", "acme"
	if diff := cmp.Diff(map[string]dingtalk.Config{"cn": wantCN}, cfg.DingTalk.Instances); diff != "" {
		t.Errorf("dingtalk.instances (-want +got):\n%s", diff)
	}
	if got := cfg.WeCom.Instances["acme"].AllBrands(); !cmp.Equal(got, []string{"acme", "acme-kids"}) {
		t.Errorf("acme's brands = %q", got)
	}
	if b := cfg.WeCom.Instances["acme"].KFBrand("wkKids"); b != "acme-kids" {
		t.Errorf("acme's kf account wkKids serves %q, want acme-kids", b)
	}
	if b := cfg.WeCom.Instances["acme"].KFBrand("wkOther"); b != "acme" {
		t.Errorf("acme's kf account wkOther serves %q, want acme (the default)", b)
	}
	if p := wecom.CallbackPathOf("acme"); p != "/callbacks/wecom/acme" {
		t.Errorf("acme's callback path = %q", p)
	}
}

// TestInstanceFromEnvOnly: an instance the file does not name can be
// configured from the environment alone.
func TestInstanceFromEnvOnly(t *testing.T) {
	cfg, err := Load("", []string{
		"SCRMGW_WECOM_INSTANCES_ACME_CORP_ID=ww-acme", "SCRMGW_WECOM_INSTANCES_ACME_AGENT_ID=1000005",
		"SCRMGW_WECOM_INSTANCES_ACME_SECRET=s", "SCRMGW_WECOM_INSTANCES_ACME_TOKEN=t",
		"SCRMGW_WECOM_INSTANCES_ACME_ENCODING_AES_KEY=" + aesKey, "SCRMGW_WECOM_INSTANCES_ACME_BRANDS=acme,acme-kids",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.WeCom.Instances["acme"]
	if got.CorpID != "ww-acme" || got.Secret != "s" || !cmp.Equal(got.Brands, []string{"acme", "acme-kids"}) || got.APIBase != wecom.DefaultAPIBase {
		t.Errorf("acme = %+v", got)
	}
	if cfg.WeCom.Enabled() || !cfg.WeCom.AnyEnabled() {
		t.Errorf("default enabled %v, any %v: want only acme", cfg.WeCom.Enabled(), cfg.WeCom.AnyEnabled())
	}
}

func TestInstanceErrorsNameTheKey(t *testing.T) {
	corp := func(name, body string) string {
		return "wecom:\n  instances:\n    " + name + ":\n" + body
	}
	full := "      corp_id: ww-acme\n      agent_id: \"5\"\n      secret: s\n      token: t\n      encoding_aes_key: " + aesKey + "\n"
	tests := []struct {
		name  string
		yaml  string
		env   []string
		wants []string
	}{
		{"corp_id missing", corp("acme", "      agent_id: \"5\"\n"), nil, []string{"wecom.instances.acme.corp_id: required"}},
		{"required keys", corp("acme", "      corp_id: ww-acme\n"), nil, []string{"wecom.instances.acme.agent_id: required", "wecom.instances.acme.secret: required",
			"wecom.instances.acme.token: required", "wecom.instances.acme.encoding_aes_key: required", "wecom.instances.acme.brand: required (or wecom.instances.acme.brands)"}},
		{"bad name", corp("Acme", full+"      brand: acme\n"), nil, []string{`wecom.instances.Acme: instance name "Acme"`}},
		{"default is the section", corp("default", full+"      brand: acme\n"), nil, []string{"wecom.instances.default: the default instance is the wecom section itself"}},
		{"same corp and agent", "wecom:\n  corp_id: ww-acme\n  agent_id: \"5\"\n  secret: s\n  token: t\n  encoding_aes_key: " + aesKey + "\n  brand: b\n  instances:\n    acme:\n" + full + "      brand: acme\n",
			nil, []string{"wecom.instances.acme.corp_id: corp ww-acme agent 5 is also wecom"}},
		{"no nesting", corp("acme", full+"      brand: acme\n      instances:\n        x:\n          corp_id: y\n"), nil,
			[]string{"wecom.instances.acme.instances: only the top-level wecom section has instances"}},
		{"bad key position", corp("acme", full+"      brnad: acme\n"), nil, []string{`scrmgw.yaml:9:7: wecom.instances.acme.brnad: unknown key (did you mean "brand"?)`}},
		{"bad aes key", corp("acme", "      corp_id: ww-acme\n      agent_id: \"5\"\n      secret: s\n      token: t\n      encoding_aes_key: short\n      brand: a\n"), nil,
			[]string{"wecom.instances.acme.encoding_aes_key: want 43 characters, got 5"}},
		{"kf brand not served", corp("acme", full+"      brand: acme\n      kf_brands:\n        wkX: acme-kids\n"), nil,
			[]string{`wecom.instances.acme.kf_brands.wkX: "acme-kids" is not one of the instance's brands ["acme"]`}},
		{"bad kf_brands env", "", []string{"SCRMGW_WECOM_KF_BRANDS=wkX"}, []string{"SCRMGW_WECOM_KF_BRANDS (wecom.kf_brands): want key=value pairs"}},
		{"bad env value", "", []string{"SCRMGW_WECOM_INSTANCES_ACME_MAX_CLOCK_SKEW=soon"}, []string{"SCRMGW_WECOM_INSTANCES_ACME_MAX_CLOCK_SKEW (wecom.instances.acme.max_clock_skew): want a duration"}},
		{"unknown instance key from env", "", []string{"SCRMGW_WECOM_INSTANCES_ACME_SECRIT=x"}, []string{"SCRMGW_WECOM_INSTANCES_ACME_SECRIT: unknown environment variable"}},
		{"dingtalk instance", "dingtalk:\n  instances:\n    cn:\n      client_secret: s\n", nil, []string{"dingtalk.instances.cn.client_id: required"}},
		{"same dingtalk app", "dingtalk:\n  client_id: d\n  client_secret: s\n  instances:\n    cn:\n      client_id: d\n      client_secret: s\n", nil,
			[]string{"dingtalk.instances.cn.client_id: app d is also dingtalk"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "scrmgw.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, tc.env)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestEnvVarsListsInstanceKeys(t *testing.T) {
	got := strings.Join(EnvVars(), "\n")
	for _, w := range []string{"wecom.instances.<name>.secret ↔ SCRMGW_WECOM_INSTANCES_<NAME>_SECRET",
		"dingtalk.instances.<name>.client_secret ↔ SCRMGW_DINGTALK_INSTANCES_<NAME>_CLIENT_SECRET"} {
		if !strings.Contains(got, w) {
			t.Errorf("EnvVars() lacks %q", w)
		}
	}
}

func TestInstancesShareTheAPIBase(t *testing.T) {
	yaml := "wecom:\n  corp_id: ww1\n  agent_id: \"1\"\n  secret: s\n  token: t\n  encoding_aes_key: " + aesKey + "\n  brand: b\n  instances:\n    acme:\n" +
		"      corp_id: ww2\n      agent_id: \"1\"\n      secret: s\n      token: t\n      encoding_aes_key: " + aesKey + "\n      brand: a\n      api_base: https://proxy.example.com\n"
	path := filepath.Join(t.TempDir(), "scrmgw.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, nil)
	want := `wecom.instances.acme.api_base: "https://proxy.example.com", but wecom.api_base is "https://qyapi.weixin.qq.com": every WeCom instance calls one api_base`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
}
