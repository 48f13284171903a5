package engine

import "github.com/scrmgw/scrmgw/adapters"

// testChannels are the channel instances engine tests run with, in the
// order of preference: WeCom reaches a member through their guide's
// account on the same instance (a second corp, "wecom:north", too),
// DingTalk directly; both send guides text.
var testChannels = adapters.SpecList{
	{Name: "wecom", ThroughGuide: true, GuideKinds: []string{adapters.KindText}},
	{Name: "dingtalk", GuideKinds: []string{adapters.KindText}},
	{Name: "webhook"},
	{Name: "wecom:north", ThroughGuide: true, GuideKinds: []string{adapters.KindText}},
}
