package engine

import (
	"slices"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/workflows"
)

// The engine names no channel: what it needs to know of one (whether it
// reaches a member through their guide, what it sends a guide) is the
// channel's Spec, and the order in which a member's channels are
// preferred is the order they were registered in (Options.Channels).

// kindOf is the channel kind of an instance key: what workflows' channel:
// and templates' variants name.
func kindOf(key string) string {
	k, _ := adapters.KindOf(key)
	return k
}

// memberChannel is the channel instance a member is reached on: the first
// registered one they have an identity on.
func memberChannel(chs adapters.Specs, p *store.MemberProfile) string {
	for _, key := range chs.Names() {
		if p.Identity(key) != "" {
			return key
		}
	}
	return ""
}

// recipient is the channel instance a send goes out on and the member's
// id there: the member's own channel, or (a step naming a kind) the
// first registered instance of that kind they have an identity on. A
// member not reachable gets to "" and, when the step names a kind, that
// kind as the channel.
func recipient(chs adapters.Specs, p *store.MemberProfile, want string) (channel, to string) {
	if want == "" || want == workflows.ChannelMember {
		channel = memberChannel(chs, p)
		if channel == "" {
			return "", ""
		}
		return channel, p.Identity(channel)
	}
	for _, key := range chs.Names() {
		if kindOf(key) == want {
			if id := p.Identity(key); id != "" {
				return key, id
			}
		}
	}
	return want, ""
}

// guideChannel is where a guide is told something: their first identity,
// in registration order, on a channel that sends guides text.
func guideChannel(chs adapters.Specs, g *store.Guide) (channel, to string) {
	for _, key := range chs.Names() {
		id := g.Identity(key)
		if id == "" {
			continue
		}
		if sp, ok := chs.Spec(key); ok && slices.Contains(sp.GuideKinds, adapters.KindText) {
			return key, id
		}
	}
	return "", ""
}

// throughGuide reports whether channel reaches a member only through
// their guide's account on it.
func throughGuide(chs adapters.Specs, channel string) bool {
	sp, ok := chs.Spec(channel)
	return ok && sp.ThroughGuide
}

// memberKinds maps each channel kind onto the kinds its first registered
// instance sends members (workflows.Options.MemberKinds).
func memberKinds(chs adapters.Specs) map[string][]string {
	return kindsByChannel(chs, func(sp adapters.Spec) []string { return sp.MemberKinds })
}

// groupKinds maps each channel kind onto the kinds its first registered
// instance sends customer groups (workflows.Options.GroupKinds); a
// gateway without groups has an empty map, not nil, so a send_groups
// step is refused.
func groupKinds(chs adapters.Specs) map[string][]string {
	return kindsByChannel(chs, func(sp adapters.Spec) []string { return sp.GroupKinds })
}

// kindsByChannel maps each channel kind onto kinds(its Spec) of its
// first registered instance for which that is not empty; never nil.
func kindsByChannel(chs adapters.Specs, kinds func(adapters.Spec) []string) map[string][]string {
	out := map[string][]string{}
	for _, key := range chs.Names() {
		k := kindOf(key)
		if _, ok := out[k]; ok {
			continue
		}
		if sp, ok := chs.Spec(key); ok && len(kinds(sp)) > 0 {
			out[k] = slices.Clone(kinds(sp))
		}
	}
	return out
}

// eventFields parses an event for expressions: an event that came in on
// a channel (its source is a registered channel instance) has that
// channel's kind as event.channel unless its payload names one.
func (e *Engine) eventFields(ev *store.Event) eventFields {
	f := parseEvent(ev)
	if f.event.Channel == "" && slices.Contains(e.opts.Channels.Names(), ev.Source) {
		f.event.Channel = kindOf(ev.Source)
	}
	return f
}

// memberModel is a member as expressions see them: their channel is the
// kind of the instance they are reached on.
func (e *Engine) memberModel(p *store.MemberProfile) workflows.Member {
	m := memberModelOf(p)
	if ch := memberChannel(e.opts.Channels, p); ch != "" {
		m.Channel = kindOf(ch)
	}
	return m
}
