package app

import (
	"fmt"

	"github.com/scrmgw/scrmgw/gateway/inbox"
)

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
	if _, ok := reg.Lookup(inbox.WelcomeTemplate); !ok {
		return fmt.Errorf("loading templates: no %q template (the new-member welcome)", inbox.WelcomeTemplate)
	}
	a.Templates = reg
	return nil
}

func (a *App) welcomer() inbox.Welcomer {
	return inbox.TemplateWelcomer{Templates: a.Templates, Locale: a.Config.Locale}
}
