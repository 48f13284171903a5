package wecom

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// DefaultAPIBase is WeCom's API host.
const DefaultAPIBase = "https://qyapi.weixin.qq.com"

// Config is a WeCom self-built app's settings. The YAML keys are
// wecom.<yaml tag>, each with its SCRMGW_WECOM_* environment form.
type Config struct {
	// CorpID is the enterprise id (企业ID); callbacks must be sealed for it.
	CorpID string `yaml:"corp_id"`
	// AgentID is the self-built app's AgentId, used for app messages to
	// guides.
	AgentID string `yaml:"agent_id"`
	// Secret is the app's Secret.
	Secret string `yaml:"secret" secret:"true"`
	// ContactSecret is the customer-contact (客户联系) secret, when the app
	// itself lacks customer-contact permission. Default: Secret.
	ContactSecret string `yaml:"contact_secret" secret:"true"`
	// Token and EncodingAESKey are the callback settings of the app's
	// "receive messages" page.
	Token          string `yaml:"token" secret:"true"`
	EncodingAESKey string `yaml:"encoding_aes_key" secret:"true"`
	// Brand is the brand whose members this corp's contacts become.
	Brand string `yaml:"brand"`
	// MaxClockSkew is the replay window for callback timestamps; 0 turns
	// the check off. Default 10m.
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`
	// APIBase is where every API call goes. Default
	// https://qyapi.weixin.qq.com; a proxy or a test server can stand in.
	APIBase string `yaml:"api_base"`
	// MemberMassLimit is how many group-send messages (企业群发, the
	// message tasks of add_msg_template) one customer may receive from
	// the corp: "N/day" or "N/month" in Beijing time, or "off". The
	// workflow engine holds back sends over it. Default "1/day".
	MemberMassLimit string `yaml:"member_mass_limit"`
	// MediaFetchPrivate lets messages name pictures and files on
	// loopback, private and link-local addresses, which the channel
	// fetches to upload them to WeCom. Default false: a template's URL
	// cannot make the gateway read from the network it runs in.
	MediaFetchPrivate bool `yaml:"media_fetch_private"`
}

// Enabled reports whether WeCom is configured at all.
func (c *Config) Enabled() bool { return c.CorpID != "" }

// WithDefaults fills the defaults of unset fields.
func (c Config) WithDefaults() Config {
	if c.APIBase == "" {
		c.APIBase = DefaultAPIBase
	}
	if c.ContactSecret == "" {
		c.ContactSecret = c.Secret
	}
	return c
}

// Validate checks an enabled configuration; errors name the keys.
func (c *Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	req := func(key, v string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("wecom.%s: required when wecom.corp_id is set", key))
		}
	}
	req("agent_id", c.AgentID)
	req("secret", c.Secret)
	req("token", c.Token)
	req("encoding_aes_key", c.EncodingAESKey)
	req("brand", c.Brand)
	if c.EncodingAESKey != "" && len(c.EncodingAESKey) != encodingAESKeyLen {
		errs = append(errs, fmt.Errorf("wecom.encoding_aes_key: want %d characters, got %d", encodingAESKeyLen, len(c.EncodingAESKey)))
	}
	if c.MaxClockSkew < 0 {
		errs = append(errs, fmt.Errorf("wecom.max_clock_skew: must not be negative"))
	}
	if c.APIBase != "" {
		u, err := url.Parse(c.APIBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("wecom.api_base: want an http(s) URL, got %q", c.APIBase))
		}
	}
	return errors.Join(errs...)
}
