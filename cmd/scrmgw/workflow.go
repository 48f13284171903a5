package main

import (
	"fmt"
	"io"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows"
)

// runWorkflowValidate checks workflow files against the configured
// templates and prints every problem as file:line:column: message. It
// needs no database or Redis.
func runWorkflowValidate(cfg configs.Config, files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: scrmgw workflow validate FILE.yaml...")
		return 2
	}
	var (
		reg *templates.Registry
		err error
	)
	if cfg.TemplatesDir != "" {
		reg, err = templates.LoadDir(cfg.TemplatesDir)
	} else {
		reg, err = templates.LoadFS(configs.BuiltinTemplates())
	}
	if err != nil {
		fmt.Fprintf(stderr, "loading templates: %v\n", err)
		return 1
	}
	failed := 0
	for _, f := range files {
		wf, err := workflows.LoadFile(f, workflows.Options{Templates: reg})
		if err != nil {
			fmt.Fprintln(stderr, err)
			failed++
			continue
		}
		fmt.Fprintf(stdout, "%s: ok (workflow %q, version %s, %d steps)\n", f, wf.Name, wf.Version, len(wf.Steps))
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "%d of %d files have errors\n", failed, len(files))
		return 1
	}
	return 0
}
