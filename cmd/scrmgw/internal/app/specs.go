package app

import (
	"slices"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/webhook"
	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// ChannelSpecs returns the specs of every built-in channel, enabled or
// not, with what cfg puts into their requests (DingTalk's robotCode).
// Templates are checked against all of them, workflows against the
// enabled ones, and dry runs preview their requests with them.
func ChannelSpecs(cfg configs.Config) []adapters.Spec {
	robot := cfg.DingTalk.RobotCode
	if robot == "" {
		robot = cfg.DingTalk.ClientID
	}
	specs := []adapters.Spec{
		wecom.Spec(),
		dingtalk.SpecFor(robot),
		webhook.Spec,
	}
	for _, sec := range sections(&cfg) {
		specs = append(specs, sec.Spec())
	}
	return specs
}

// TemplateChannels turns specs into what templates checks variants
// against: every kind each channel sends, to members or guides.
func TemplateChannels(specs []adapters.Spec) templates.Channels {
	c := templates.Channels{}
	for _, s := range specs {
		ks := slices.Clone(s.MemberKinds)
		for _, k := range s.GuideKinds {
			if !slices.Contains(ks, k) {
				ks = append(ks, k)
			}
		}
		c[s.Name] = ks
	}
	return c
}

// MemberKinds maps each spec's channel onto the kinds it sends members,
// for workflows.Options.
func MemberKinds(specs []adapters.Spec) map[string][]string {
	m := make(map[string][]string, len(specs))
	for _, s := range specs {
		m[s.Name] = slices.Clone(s.MemberKinds)
	}
	return m
}

// GroupKinds maps each spec's channel onto the kinds it sends its
// customer groups (none for a channel without groups), for
// workflows.Options.
func GroupKinds(specs []adapters.Spec) map[string][]string {
	m := make(map[string][]string, len(specs))
	for _, s := range specs {
		if len(s.GroupKinds) > 0 {
			m[s.Name] = slices.Clone(s.GroupKinds)
		}
	}
	return m
}

// WorkflowChannels are the channels a workflow's send steps may use: the
// kinds among WeCom, DingTalk and the sections with an instance configured (a workflow
// names the kind; the member's identity picks the instance), or both when
// neither is configured
// (validating workflows without a channel configuration checks them
// against every channel).
func WorkflowChannels(cfg configs.Config) []string {
	var chs []string
	if cfg.WeCom.AnyEnabled() {
		chs = append(chs, wecom.ChannelName)
	}
	if cfg.DingTalk.AnyEnabled() {
		chs = append(chs, dingtalk.ChannelName)
	}
	for _, sec := range sections(&cfg) {
		if len(sec.Configured()) > 0 {
			chs = append(chs, sec.Spec().Name)
		}
	}
	if len(chs) == 0 {
		chs = []string{wecom.ChannelName, dingtalk.ChannelName}
		for _, sec := range sections(&cfg) {
			chs = append(chs, sec.Spec().Name)
		}
	}
	return chs
}

// LoadTemplates loads the message templates, templates_dir or the
// built-in ones, checked against the channels' specs.
func LoadTemplates(cfg configs.Config) (*templates.Registry, error) {
	opt := templates.WithChannels(TemplateChannels(ChannelSpecs(cfg)))
	if cfg.TemplatesDir != "" {
		return templates.LoadDir(cfg.TemplatesDir, opt)
	}
	return templates.LoadFS(configs.BuiltinTemplates(), opt)
}

// WorkflowOptions are what `scrmgw workflow validate` and the console
// check a workflow file with: the templates, the enabled channels and the
// kinds each sends to members and to customer groups.
func WorkflowOptions(cfg configs.Config, reg *templates.Registry) workflows.Options {
	specs := ChannelSpecs(cfg)
	return workflows.Options{Templates: reg, Channels: WorkflowChannels(cfg), MemberKinds: MemberKinds(specs), GroupKinds: GroupKinds(specs)}
}

// DryRunOptions are what `scrmgw workflow dry-run` and the console
// simulate a workflow with: the templates, locale, channel specs, coupon
// batches and the WeCom instances' mass-message limits.
func DryRunOptions(cfg configs.Config, reg *templates.Registry) (engine.DryRunOptions, error) {
	opts := engine.DryRunOptions{Templates: reg, Locale: cfg.Locale, Specs: ChannelSpecs(cfg)}
	var err error
	if opts.Coupons, err = LoadCouponBatches(cfg); err != nil {
		return opts, err
	}
	// The quotas of every instance, by key (the dry run's member is on
	// the default instances).
	if opts.Quotas, err = Quotas(cfg); err != nil {
		return opts, err
	}
	return opts, nil
}
