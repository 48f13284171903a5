package wechatoa

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// ChannelName is the channel's kind: the registry name of the default
// instance, what workflows' channel: and templates' variants name.
const ChannelName = "wechat_oa"

// DefaultAPIBase is WeChat's API host.
const DefaultAPIBase = "https://api.weixin.qq.com"

// Callback modes (the account's 消息加解密方式).
const (
	ModePlaintext  = "plaintext"
	ModeCompatible = "compatible"
	ModeSafe       = "safe"
)

// encodingAESKeyLen is the length of an EncodingAESKey.
const encodingAESKeyLen = 43

// Config is one Official Account's settings: the YAML keys are
// wechat_oa.<yaml tag> (SCRMGW_WECHAT_OA_*) for the instance named
// "default" (channel key "wechat_oa"); further accounts are
// wechat_oa.instances.<name> (channel key "wechat_oa:<name>", callback
// path /callbacks/wechat-oa/<name>).
type Config struct {
	// AppID and AppSecret are the account's developer credentials
	// (开发者ID). The channel is off while app_id is empty.
	AppID     string `yaml:"app_id"`
	AppSecret string `yaml:"app_secret" secret:"true"`
	// Token and EncodingAESKey are the server settings (服务器配置) of
	// the account: the token signs callbacks, the key encrypts them in
	// compatible and safe mode.
	Token          string `yaml:"token" secret:"true"`
	EncodingAESKey string `yaml:"encoding_aes_key" secret:"true"`
	// Mode is the message encryption mode set on the account:
	// plaintext, compatible or safe. Default safe.
	Mode string `yaml:"mode"`
	// Brand is the brand whose members the followers become. Required.
	Brand string `yaml:"brand"`
	// MaxClockSkew is the replay window for callback timestamps; 0 turns
	// the check off. Default 5m.
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`
	// APIBase is where API calls go. Default https://api.weixin.qq.com.
	APIBase string `yaml:"api_base"`
	// MediaFetchPrivate lets messages name pictures (picurl) on
	// loopback, private and link-local addresses, which the channel
	// fetches to upload them to WeChat. Default false: a template's URL
	// cannot make the gateway read from the network it runs in.
	MediaFetchPrivate bool `yaml:"media_fetch_private"`
	// SendRate is the account's send rate ("20/s", "off"). Default: the
	// channel's own (Spec().Rate).
	SendRate string `yaml:"send_rate"`
	// Templates map scrmgw templates (by id) onto the account's template
	// messages, sent outside the 48-hour window. A workflow message whose
	// template has no mapping is not sent outside the window.
	Templates map[string]Template `yaml:"templates"`
	// Instances are further accounts, by instance name (lower-case
	// letters, digits, '-' and '_'). Only the top-level section has them.
	Instances map[string]Config `yaml:"instances"`
}

// Template is an account's template message standing in for a scrmgw
// template outside the window.
type Template struct {
	// TemplateID is the account's template id (模板ID).
	TemplateID string `yaml:"template_id"`
	// URL is where the message leads; "$url" takes the message's url.
	URL string `yaml:"url"`
	// Data maps the template's keys (first, keyword1, thing2, remark...)
	// onto the rendered message: "$text", "$title", "$description" or
	// "$<field>" take that part of it; anything else is literal.
	Data map[string]string `yaml:"data"`
}

// SetDefaults fills the defaults the configuration starts from.
func (c *Config) SetDefaults() {
	if c.Mode == "" {
		c.Mode = ModeSafe
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = 5 * time.Minute
	}
	if c.APIBase == "" {
		c.APIBase = DefaultAPIBase
	}
}

// Enabled reports whether the instance is configured: app_id is set.
func (c *Config) Enabled() bool { return c.AppID != "" }

// Named is one configured account.
type Named = adapters.Named[Config]

// All lists the configured accounts: the default first (when its app_id
// is set), then the named ones by name.
func (c *Config) All() []Named {
	d := *c
	d.Instances = nil
	return adapters.Instances(ChannelName, d, c.Enabled(), c.Instances)
}

// Spec is the channel's Spec (adapters.Section).
func (c *Config) Spec() adapters.Spec { return Spec() }

// Configured lists the accounts to build (adapters.Section).
func (c *Config) Configured() []adapters.Build {
	var out []adapters.Build
	for _, n := range c.All() {
		cfg, name := n.Config, n.Name
		out = append(out, adapters.Build{Name: name, SendRate: cfg.SendRate, New: func(d adapters.Deps) (adapters.Channel, error) {
			return New(cfg, name, d)
		}})
	}
	return out
}

var _ adapters.Section = (*Config)(nil)

// CallbackPath is the default instance's callback URL path; instance
// acme's is CallbackPath/acme.
const CallbackPath = "/callbacks/wechat-oa"

// CallbackPathOf is the callback path of an instance.
func CallbackPathOf(instance string) string {
	if instance == "" || instance == adapters.DefaultInstance {
		return CallbackPath
	}
	return CallbackPath + "/" + instance
}

// Validate checks the default account (when its app_id is set) and every
// named one; errors name the keys (wechat_oa.instances.acme.app_id).
func (c *Config) Validate() error {
	var errs []error
	seen := map[string]string{}
	if c.Enabled() {
		errs = append(errs, c.validate("wechat_oa."))
		seen[c.AppID] = "wechat_oa"
	}
	names, nameErrs := adapters.InstanceNames("wechat_oa", c.Instances, func(ic Config) bool { return len(ic.Instances) > 0 })
	errs = append(errs, nameErrs...)
	for _, name := range names {
		prefix := "wechat_oa.instances." + name + "."
		ic := c.Instances[name]
		if ic.AppID == "" {
			errs = append(errs, fmt.Errorf("%sapp_id: required", prefix))
			continue
		}
		errs = append(errs, ic.validate(prefix))
		if other, ok := seen[ic.AppID]; ok {
			errs = append(errs, fmt.Errorf("%sapp_id: %s is also %s", prefix, ic.AppID, other))
		}
		seen[ic.AppID] = strings.TrimSuffix(prefix, ".")
	}
	return errors.Join(errs...)
}

func (c *Config) validate(prefix string) error {
	var errs []error
	req := func(key, v string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s%s: required when %sapp_id is set", prefix, key, prefix))
		}
	}
	req("app_secret", c.AppSecret)
	req("token", c.Token)
	req("brand", c.Brand)
	switch c.Mode {
	case ModePlaintext:
	case ModeCompatible, ModeSafe:
		req("encoding_aes_key", c.EncodingAESKey)
	default:
		errs = append(errs, fmt.Errorf("%smode: want plaintext, compatible or safe, got %q", prefix, c.Mode))
	}
	if c.EncodingAESKey != "" && len(c.EncodingAESKey) != encodingAESKeyLen {
		errs = append(errs, fmt.Errorf("%sencoding_aes_key: want %d characters, got %d", prefix, encodingAESKeyLen, len(c.EncodingAESKey)))
	}
	if c.MaxClockSkew < 0 {
		errs = append(errs, fmt.Errorf("%smax_clock_skew: must not be negative", prefix))
	}
	if u, err := url.Parse(c.APIBase); c.APIBase != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		errs = append(errs, fmt.Errorf("%sapi_base: want an http(s) URL, got %q", prefix, c.APIBase))
	}
	for _, name := range slices.Sorted(maps.Keys(c.Templates)) {
		if c.Templates[name].TemplateID == "" {
			errs = append(errs, fmt.Errorf("%stemplates.%s.template_id: required", prefix, name))
		}
	}
	return errors.Join(errs...)
}
