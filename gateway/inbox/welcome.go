package inbox

import (
	"context"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/templates"
)

// WelcomeTemplate is the template id of the new-member welcome.
const WelcomeTemplate = "welcome"

// TemplateWelcomer renders the welcome template for the channel, in
// Locale.
type TemplateWelcomer struct {
	Templates *templates.Registry
	Locale    string
}

// Welcome implements Welcomer.
func (w TemplateWelcomer) Welcome(_ context.Context, channel string, d WelcomeData) (*adapters.Outbound, error) {
	data := &templates.Data{
		Member: templates.Member{Name: d.MemberName},
		Guide:  templates.Guide{Name: d.GuideName, Store: d.StoreName},
		Store:  templates.Store{Name: d.StoreName, Address: d.StoreAddr, OpeningHours: d.OpeningHour},
		Brand:  templates.Brand{Name: d.Brand},
	}
	m, err := w.Templates.Render(WelcomeTemplate, w.Locale, channel, data)
	if err != nil {
		return nil, err
	}
	return &adapters.Outbound{Kind: m.Kind, Text: m.Text, Fields: m.Fields}, nil
}
