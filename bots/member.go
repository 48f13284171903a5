package bots

import (
	"context"
	"errors"
	"fmt"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/geo"
	"github.com/scrmgw/scrmgw/templates"
)

// Template ids of bot replies (configs/templates/bot_*.yaml).
const (
	TemplateMemberHelp    = "bot_member_help"
	TemplateNearestStores = "bot_nearest_stores"
	TemplateAskLocation   = "bot_ask_location"
	TemplateMyGuide       = "bot_my_guide"
	TemplateGuideHelp     = "bot_guide_help"
	TemplateMyMembers     = "bot_my_members"
)

// Directory is what bots read about members, guides and stores;
// *store.Store is one.
type Directory interface {
	MemberByIdentity(ctx context.Context, channel, externalID string) (*store.MemberView, error)
	Member(ctx context.Context, id int64, brand string) (*store.MemberView, error)
	Guide(ctx context.Context, id, brand string) (*store.Guide, error)
	GuideByChannelID(ctx context.Context, channel, id string) (*store.Guide, error)
	RetailStore(ctx context.Context, id, brand string) (*store.RetailStore, error)
	Brand(ctx context.Context, id string) (*store.Brand, error)
	CurrentBindings(ctx context.Context, guideID string) ([]store.Binding, error)
}

// StoreFinder finds the stores nearest a point.
type StoreFinder interface {
	Nearest(lat, lng float64, brand string, maxKm float64, n int) []geo.Hit
}

// Deps are what the bots use.
type Deps struct {
	Directory Directory
	Stores    StoreFinder
	Templates *templates.Registry
	Intents   *Intents
}

// nearestCount is how many stores "nearest store" lists.
const nearestCount = 3

// MemberBot answers members: nearest stores, my guide, help.
func MemberBot(d Deps) Bot {
	return BotFunc(func(ctx context.Context, m *Message) ([]Reply, error) {
		intent, _ := d.Intents.Member(m.Brand).Match(m.Text)
		if m.Location != nil {
			intent = IntentNearestStore
		}
		data := &templates.Data{}
		brandData(ctx, d, m.Brand, data)
		switch intent {
		case IntentNearestStore:
			if m.Location == nil {
				return d.render(TemplateAskLocation, m, data, nil)
			}
			for _, h := range d.Stores.Nearest(m.Location.Lat, m.Location.Lng, m.Brand, 0, nearestCount) {
				rs, err := d.Directory.RetailStore(ctx, h.ID, "")
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, err
				}
				data.Stores = append(data.Stores, templates.Store{Name: rs.Name, Address: rs.Address, OpeningHours: rs.OpeningHours, DistanceKm: h.DistM / 1000})
			}
			return d.render(TemplateNearestStores, m, data, nil)
		case IntentMyGuide:
			return d.render(TemplateMyGuide, m, data, func() error { return d.guideData(ctx, m, data) })
		}
		return d.render(TemplateMemberHelp, m, data, nil)
	})
}

// guideData fills the member's bound guide and store for the brand.
func (d Deps) guideData(ctx context.Context, m *Message, data *templates.Data) error {
	v, err := d.Directory.MemberByIdentity(ctx, m.Channel, m.SenderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // not known yet: no guide
	}
	if err != nil {
		return err
	}
	data.Member = templates.Member{Name: v.Name, PhoneTail: v.PhoneTail}
	for _, b := range v.Bindings {
		if b.BrandID != m.Brand && m.Brand != "" {
			continue
		}
		g, err := d.Directory.Guide(ctx, b.GuideID, "")
		if err != nil {
			return err
		}
		rs, err := d.Directory.RetailStore(ctx, b.StoreID, "")
		if err != nil {
			return err
		}
		data.Guide = templates.Guide{Name: g.Name, Store: rs.Name}
		data.Store = templates.Store{Name: rs.Name, Address: rs.Address, OpeningHours: rs.OpeningHours}
		return nil
	}
	return nil
}

func brandData(ctx context.Context, d Deps, brand string, data *templates.Data) {
	if brand == "" {
		return
	}
	if b, err := d.Directory.Brand(ctx, brand); err == nil {
		data.Brand = templates.Brand{Name: b.Name}
	}
}

// render fills data with fill (when given) and renders a template.
func (d Deps) render(id string, m *Message, data *templates.Data, fill func() error) ([]Reply, error) {
	if fill != nil {
		if err := fill(); err != nil {
			return nil, err
		}
	}
	msg, err := d.Templates.Render(id, m.Locale, m.Channel, data)
	if err != nil {
		return nil, fmt.Errorf("rendering %s: %w", id, err)
	}
	return []Reply{{Kind: msg.Kind, Text: msg.Text, Fields: msg.Fields}}, nil
}

// maxListedMembers is how many members "my members" lists.
const maxListedMembers = 10

// GuideBot answers guides: my members, help.
func GuideBot(d Deps) Bot {
	return BotFunc(func(ctx context.Context, m *Message) ([]Reply, error) {
		intent, _ := d.Intents.Guide(m.Brand).Match(m.Text)
		data := &templates.Data{}
		brandData(ctx, d, m.Brand, data)
		switch intent {
		case IntentMyMembers:
			g, err := d.Directory.GuideByChannelID(ctx, m.Channel, m.SenderID)
			if errors.Is(err, store.ErrNotFound) {
				return d.render(TemplateGuideHelp, m, data, nil)
			}
			if err != nil {
				return nil, err
			}
			bs, err := d.Directory.CurrentBindings(ctx, g.ID)
			if err != nil {
				return nil, err
			}
			data.Guide = templates.Guide{Name: g.Name}
			data.Members = []templates.Member{}
			for i := len(bs) - 1; i >= 0 && len(data.Members) < maxListedMembers; i-- {
				v, err := d.Directory.Member(ctx, bs[i].MemberID, "")
				if err != nil {
					continue
				}
				level := ""
				for _, ms := range v.Memberships {
					if ms.BrandID == bs[i].BrandID {
						level = ms.Level
					}
				}
				data.Members = append(data.Members, templates.Member{Name: v.Name, PhoneTail: v.PhoneTail, Level: level})
			}
			return d.render(TemplateMyMembers, m, data, nil)
		}
		return d.render(TemplateGuideHelp, m, data, nil)
	})
}
