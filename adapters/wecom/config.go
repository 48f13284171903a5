package wecom

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
)

// DefaultAPIBase is WeCom's API host.
const DefaultAPIBase = "https://qyapi.weixin.qq.com"

// Config is a WeCom self-built app's settings. The YAML keys are
// wecom.<yaml tag>, each with its SCRMGW_WECOM_* environment form; they
// configure the instance named "default" (channel key "wecom"). Further
// corps (or apps) are wecom.instances.<name>, each a Config of its own
// (channel key "wecom:<name>", callback path /callbacks/wecom/<name>),
// with the environment form SCRMGW_WECOM_INSTANCES_<NAME>_<KEY>.
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
	// Brands are further brands the corp serves (a group's brands sharing
	// one corp): a contact joins the brand of the guide or store they
	// added (a contact way's state, else the employee), else Brand (or
	// the first of Brands). Brand or Brands is required.
	Brands []string `yaml:"brands"`
	// KFBrands maps the corp's customer-service accounts (微信客服, by
	// open_kfid) to the brand whose members their customers are, for a
	// corp serving several brands; each must be one of Brand and Brands.
	// An account not listed serves Brand (or the first of Brands). In the
	// environment: SCRMGW_WECOM_KF_BRANDS=wkA=acme,wkB=acme-kids.
	KFBrands map[string]string `yaml:"kf_brands"`
	// MaxClockSkew is the replay window for callback timestamps; 0 turns
	// the check off. Default 10m.
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`
	// APIBase is where every API call goes. Default
	// https://qyapi.weixin.qq.com; a proxy or a test server can stand in.
	// Every instance must use the same: the WeCom SDK's HTTP client is
	// process-wide.
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
	// SendRate is the instance's send rate ("40/s", "600/min", "off").
	// Default: send.rate.wecom (each corp's), else the channel's own
	// rate (Spec().Rate).
	SendRate string `yaml:"send_rate"`
	// TagGroup is the corp tag group (标签组) scrmgw creates the tags it
	// marks customers with when the corp has no tag of that name yet.
	// Default "scrmgw".
	TagGroup string `yaml:"tag_group"`
	// Instances are further WeCom corps (or apps of one corp), by
	// instance name: lower-case letters, digits, '-' and '_'. Only the
	// top-level wecom section has them.
	Instances map[string]Config `yaml:"instances"`
}

// Enabled reports whether this instance is configured: its corp_id is
// set.
func (c *Config) Enabled() bool { return c.CorpID != "" }

// AnyEnabled reports whether any instance is configured.
func (c *Config) AnyEnabled() bool { return len(c.All()) > 0 }

// Named is one configured instance of the WeCom channel.
type Named = adapters.Named[Config]

// All lists the configured instances: the default first (when its
// corp_id is set), then the named ones by name.
func (c *Config) All() []Named {
	d := *c
	d.Instances = nil
	return adapters.Instances(ChannelName, d, c.Enabled(), c.Instances)
}

// AllBrands are Brand and Brands, without repeats, Brand first.
func (c Config) AllBrands() []string {
	var out []string
	for _, b := range append([]string{c.Brand}, c.Brands...) {
		if b != "" && !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	return out
}

// KFBrand is the brand of the customers of a customer-service account:
// its KFBrands entry, else the default brand.
func (c Config) KFBrand(openKfID string) string {
	if b := c.KFBrands[openKfID]; b != "" {
		return b
	}
	if bs := c.AllBrands(); len(bs) > 0 {
		return bs[0]
	}
	return ""
}

// CallbackPathOf is the callback path of an instance: CallbackPath for
// the default, CallbackPath/<name> for the others.
func CallbackPathOf(instance string) string {
	if instance == "" || instance == adapters.DefaultInstance {
		return CallbackPath
	}
	return CallbackPath + "/" + instance
}

// WithDefaults fills the defaults of unset fields.
func (c Config) WithDefaults() Config {
	if c.APIBase == "" {
		c.APIBase = DefaultAPIBase
	}
	if c.ContactSecret == "" {
		c.ContactSecret = c.Secret
	}
	if c.TagGroup == "" {
		c.TagGroup = DefaultTagGroup
	}
	return c
}

// Validate checks the default instance (when its corp_id is set) and
// every named one; errors name the keys (wecom.instances.acme.corp_id).
// No two instances may share a corp_id and agent_id: each would take the
// other's callbacks and tokens.
func (c *Config) Validate() error {
	var errs []error
	if c.Enabled() {
		errs = append(errs, c.validate("wecom.", "wecom.corp_id is set"))
	}
	seen := map[string]string{}
	var base, baseKey string
	if c.Enabled() {
		seen[c.CorpID+"/"+c.AgentID] = "wecom"
		base, baseKey = c.WithDefaults().APIBase, "wecom.api_base"
	}
	names, nameErrs := adapters.InstanceNames("wecom", c.Instances, func(ic Config) bool { return len(ic.Instances) > 0 })
	errs = append(errs, nameErrs...)
	for _, name := range names {
		prefix := "wecom.instances." + name + "."
		ic := c.Instances[name]
		if ic.CorpID == "" {
			errs = append(errs, fmt.Errorf("%scorp_id: required", prefix))
			continue
		}
		errs = append(errs, ic.validate(prefix, "it is an instance"))
		// The SDK's HTTP client is process-wide (see API): every
		// instance calls one host, as every corp does at WeCom.
		if base == "" {
			base, baseKey = ic.WithDefaults().APIBase, prefix+"api_base"
		} else if b := ic.WithDefaults().APIBase; b != base {
			errs = append(errs, fmt.Errorf("%sapi_base: %q, but %s is %q: every WeCom instance calls one api_base", prefix, b, baseKey, base))
		}
		id := ic.CorpID + "/" + ic.AgentID
		if other, ok := seen[id]; ok {
			errs = append(errs, fmt.Errorf("%scorp_id: corp %s agent %s is also %s", prefix, ic.CorpID, ic.AgentID, other))
		}
		seen[id] = "wecom.instances." + name
	}
	return errors.Join(errs...)
}

// validate checks one instance's keys, each named prefix+key; when says
// why required keys are.
func (c *Config) validate(prefix, when string) error {
	var errs []error
	req := func(key, v string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s%s: required when %s", prefix, key, when))
		}
	}
	req("agent_id", c.AgentID)
	req("secret", c.Secret)
	req("token", c.Token)
	req("encoding_aes_key", c.EncodingAESKey)
	if len(c.AllBrands()) == 0 {
		errs = append(errs, fmt.Errorf("%sbrand: required (or %sbrands) when %s", prefix, prefix, when))
	}
	for _, kf := range slices.Sorted(maps.Keys(c.KFBrands)) {
		if b := c.KFBrands[kf]; kf == "" || !slices.Contains(c.AllBrands(), b) {
			errs = append(errs, fmt.Errorf("%skf_brands.%s: %q is not one of the instance's brands %q", prefix, kf, b, c.AllBrands()))
		}
	}
	if c.EncodingAESKey != "" && len(c.EncodingAESKey) != encodingAESKeyLen {
		errs = append(errs, fmt.Errorf("%sencoding_aes_key: want %d characters, got %d", prefix, encodingAESKeyLen, len(c.EncodingAESKey)))
	}
	if c.MaxClockSkew < 0 {
		errs = append(errs, fmt.Errorf("%smax_clock_skew: must not be negative", prefix))
	}
	if c.APIBase != "" {
		u, err := url.Parse(c.APIBase)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%sapi_base: want an http(s) URL, got %q", prefix, c.APIBase))
		}
	}
	return errors.Join(errs...)
}
