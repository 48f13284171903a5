package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/app"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// runWorkflowValidate checks workflow files against the configured
// templates and prints every problem as file:line:column: message. It
// needs no database or Redis.
func runWorkflowValidate(cfg configs.Config, files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: scrmgw workflow validate FILE.yaml...")
		return 2
	}
	reg, err := loadTemplates(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loading templates: %v\n", err)
		return 1
	}
	failed := 0
	for _, f := range files {
		wf, err := workflows.LoadFile(f, workflowOptions(cfg, reg))
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

// runWorkflowDryRun simulates one member through a workflow with a
// virtual clock and prints the timeline, with the exact request each send
// would make on the member's channel; nothing is stored or sent.
func runWorkflowDryRun(cfg configs.Config, args []string, memberFile, eventsFile, start string, stdout, stderr io.Writer) int {
	if len(args) != 1 || memberFile == "" {
		fmt.Fprintln(stderr, "usage: scrmgw workflow dry-run FILE.yaml --member MEMBER.json [--events EVENTS.json] [--start 2026-11-25T10:00:00+08:00]")
		return 2
	}
	reg, err := loadTemplates(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loading templates: %v\n", err)
		return 1
	}
	wf, err := workflows.LoadFile(args[0], workflowOptions(cfg, reg))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var member engine.MemberFixture
	if err := readJSON(memberFile, &member); err != nil {
		fmt.Fprintf(stderr, "--member: %v\n", err)
		return 1
	}
	var events []engine.EventFixture
	if eventsFile != "" {
		if err := readJSON(eventsFile, &events); err != nil {
			fmt.Fprintf(stderr, "--events: %v\n", err)
			return 1
		}
	}
	at := time.Now()
	if start != "" {
		if at, err = time.Parse(time.RFC3339, start); err != nil {
			fmt.Fprintf(stderr, "--start: want RFC 3339 (2026-11-25T10:00:00+08:00), got %q\n", start)
			return 2
		}
	}
	opts, err := app.DryRunOptions(cfg, reg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	timeline, err := engine.DryRun(opts, wf, member, events, at)
	if err != nil {
		fmt.Fprintf(stderr, "dry run: %v\n", err)
		return 1
	}
	if err := engine.WriteTimeline(stdout, timeline); err != nil {
		return 1
	}
	return 0
}

// loadTemplates loads the configured templates, checked against the
// kinds every built-in channel sends.
func loadTemplates(cfg configs.Config) (*templates.Registry, error) {
	return app.LoadTemplates(cfg)
}

// workflowOptions checks send steps against the enabled channels and the
// kinds each sends to members.
func workflowOptions(cfg configs.Config, reg *templates.Registry) workflows.Options {
	return app.WorkflowOptions(cfg, reg)
}

// readJSON decodes a JSON file strictly.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
