package app

import (
	"context"
	"strings"
	"text/template"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/pipeline"
)

// builtinWelcome is the welcome used until brand templates are loaded.
var builtinWelcome = template.Must(template.New("welcome").Option("missingkey=error").Parse(
	`{{if .MemberName}}{{.MemberName}}，{{end}}您好！欢迎关注{{.Brand}}。` +
		`{{if .GuideName}}我是{{if .StoreName}}{{.StoreName}}的{{end}}导购{{.GuideName}}，{{end}}有任何需要随时找我。`))

type textWelcomer struct{ tmpl *template.Template }

func (w textWelcomer) Welcome(_ context.Context, _ string, d pipeline.WelcomeData) (*adapters.Outbound, error) {
	var b strings.Builder
	if err := w.tmpl.Execute(&b, d); err != nil {
		return nil, err
	}
	return &adapters.Outbound{Kind: "text", Text: b.String()}, nil
}

func (a *App) welcomer() pipeline.Welcomer { return textWelcomer{tmpl: builtinWelcome} }
