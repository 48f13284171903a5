package app

import (
	"github.com/scrmgw/scrmgw/gateway/groups"
	"github.com/scrmgw/scrmgw/gateway/links"
	"github.com/scrmgw/scrmgw/gateway/moments"
	"github.com/scrmgw/scrmgw/gateway/tags"
)

// wireTags keeps members' tags in step with the channels that keep tags
// of their own (WeCom corp tags): the contact handler applies guides'
// tags and tag-library changes through it, the engine's tag steps and
// the API mark tags through it.
func (a *App) wireTags() {
	a.tags = tags.New(a.Store, a.Channels, a.Log)
	a.contacts.Tags = a.tags
}

// wireGroups keeps the channels' customer groups (WeCom 客户群) from
// their change events, for the API to list and send to.
func (a *App) wireGroups() {
	a.groups = groups.New(a.Store, a.Channels, a.Log)
	a.groups.Register(a.processor)
}

// wireLinks makes contact links (WeCom acquisition links) and warns of
// their quota, and publishes moment campaigns.
func (a *App) wireLinks() {
	a.links = links.New(a.Store, a.Channels, a.Log)
	a.links.Register(a.processor)
	a.moments = moments.New(a.Store, a.Channels, a.Log)
}
