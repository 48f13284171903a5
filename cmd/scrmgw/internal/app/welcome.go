package app

import (
	"context"
	"fmt"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/pipeline"
	"github.com/scrmgw/scrmgw/templates"
)

// WelcomeTemplate is the template id of the new-member welcome.
const WelcomeTemplate = "welcome"

// loadTemplates loads the message templates: templates_dir, or the
// built-in ones. Every template is type-checked here, and checked
// against the kinds its channels send, so a template that names an
// unknown variable or a kind its channel cannot carry stops the start,
// not a send.
func (a *App) loadTemplates() error {
	reg, err := LoadTemplates(a.Config)
	if err != nil {
		return fmt.Errorf("loading templates: %w", err)
	}
	if _, ok := reg.Lookup(WelcomeTemplate); !ok {
		return fmt.Errorf("loading templates: no %q template (the new-member welcome)", WelcomeTemplate)
	}
	a.Templates = reg
	return nil
}

// templateWelcomer renders the welcome template for the channel.
type templateWelcomer struct {
	reg    *templates.Registry
	locale string
}

func (w templateWelcomer) Welcome(_ context.Context, channel string, d pipeline.WelcomeData) (*adapters.Outbound, error) {
	data := &templates.Data{
		Member: templates.Member{Name: d.MemberName},
		Guide:  templates.Guide{Name: d.GuideName, Store: d.StoreName},
		Store:  templates.Store{Name: d.StoreName, Address: d.StoreAddr, OpeningHours: d.OpeningHour},
		Brand:  templates.Brand{Name: d.Brand},
	}
	m, err := w.reg.Render(WelcomeTemplate, w.locale, channel, data)
	if err != nil {
		return nil, err
	}
	return &adapters.Outbound{Kind: m.Kind, Text: m.Text, Fields: m.Fields}, nil
}

func (a *App) welcomer() pipeline.Welcomer {
	return templateWelcomer{reg: a.Templates, locale: a.Config.Locale}
}
