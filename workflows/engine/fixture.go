package engine

import (
	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
)

// FixtureOf turns a stored member's profile with a brand into the member
// a dry run simulates, so a dry run can start from a real member (the
// console's dry-run panel) and see what the engine would: the same
// member, order and channel readings as a run's: the member's channel is
// the first of chs they have an id on, by its kind.
func FixtureOf(p *store.MemberProfile, brandName string, chs adapters.Specs) MemberFixture {
	m := memberModelOf(p)
	key := memberChannel(chs, p)
	m.Channel = kindOf(key)
	f := MemberFixture{ID: m.ID, Name: m.Name, PhoneTail: p.Member.PhoneTail, Level: m.Level, Points: m.Points,
		Tags: m.Tags, Channel: m.Channel, JoinedAt: m.JoinedAt, LastPurchaseAt: m.LastPurchaseAt,
		Orders: m.Orders, TotalSpent: m.TotalSpent, GuideID: m.GuideID, StoreID: m.StoreID,
		TimeZone: p.Member.TimeZone, StoreTimeZone: storeZone(p), Unsubscribed: p.Unsubscribed, BrandName: brandName}
	if key != "" {
		f.ChannelID = p.Identity(key)
		f.LastInboundAt = p.LastInbound(key)
	}
	if o := lastOrder(p); o.ID != "" || o.Total != 0 {
		f.LastOrder = &o
	}
	if p.Guide != nil {
		f.GuideName = p.Guide.Name
	}
	if s := p.Store; s != nil {
		f.StoreName, f.StoreAddress, f.OpeningHours = s.Name, s.Address, s.OpeningHours
	}
	return f
}
