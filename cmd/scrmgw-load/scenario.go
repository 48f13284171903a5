package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/cmd/internal/subcmd"
)

// newFlagSet is the flag set of the command name: errors and usage to
// stderr, parse errors returned.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args into fs; a bad flag or any argument left over
// is subcmd.ErrUsage (the argument said on stderr).
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	if err := fs.Parse(args); err != nil {
		return subcmd.ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scrmgw-load %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return subcmd.ErrUsage
	}
	return nil
}

// scenarioFlags are the flags the outbound scenarios (campaign, surge,
// bot) share: where their servers run, the scrmgw binary, where the
// results go; and for the tunable ones (surge, bot) --gateway-env and
// --profile.
type scenarioFlags struct {
	*flag.FlagSet
	name                    string
	workDir, pg, redis, out string
	keep, profile           bool
	env                     listFlag
	// delays is --wecom-delay, read into *delayMin and *delayMax.
	delays             string
	delayMin, delayMax *time.Duration
}

// parseDelayRange reads "50ms-200ms" (or one duration).
func parseDelayRange(s string) (lo, hi time.Duration, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	if lo, err = time.ParseDuration(a); err == nil {
		hi, err = time.ParseDuration(b)
	}
	if err != nil || hi < lo || lo < 0 {
		return 0, 0, fmt.Errorf("bad delay range %q: write MIN-MAX like 50ms-200ms", s)
	}
	return lo, hi, nil
}

// newScenarioFlags is the flag set of the scenario name; its flags go
// in before parse adds the shared ones.
func newScenarioFlags(name string, stderr io.Writer) *scenarioFlags {
	return &scenarioFlags{FlagSet: newFlagSet(name, stderr), name: name}
}

// wecomDelay adds --wecom-delay, how long the fake WeCom takes over
// its calls (MIN-MAX, parseDelayRange; value by default), which parse
// reads into *lo and *hi.
func (s *scenarioFlags) wecomDelay(lo, hi *time.Duration, value, usage string) {
	s.delayMin, s.delayMax = lo, hi
	s.StringVar(&s.delays, "wecom-delay", value, usage)
}

// parse adds the shared flags (--scrmgw into g.Bin; with tunable,
// --gateway-env into g.ExtraEnv and --profile) and parses args.
func (s *scenarioFlags) parse(args []string, stderr io.Writer, g *gatewayRun, tunable bool) error {
	if tunable {
		s.Var(&s.env, "gateway-env", "extra KEY=VALUE for the gateway's environment (repeatable)")
	}
	s.StringVar(&s.workDir, "workdir", "", "directory for the servers' data and logs (default: a new one under /var/tmp)")
	s.StringVar(&s.pg, "pg", "", "PostgreSQL URL of a server the harness may create a database on (default: start a throwaway cluster, fsync on)")
	s.StringVar(&s.redis, "redis", "", "Redis URL for the gateway, a dedicated instance (default: start redis-server with AOF everysec)")
	s.StringVar(&g.Bin, "scrmgw", "", "scrmgw binary (default: go build ./cmd/scrmgw into the work directory)")
	s.BoolVar(&s.keep, "keep", false, "keep the work directory and database afterwards")
	s.StringVar(&s.out, "out", "", "also write the results as JSON to this file")
	if tunable {
		s.BoolVar(&s.profile, "profile", false, "take CPU profiles of serve and worker while the load lasts: they are built with a pprof listener\n"+
			"added through go build -overlay (the source tree is not touched; the product has no pprof endpoint)")
	}
	if err := parseFlags(s.FlagSet, args, stderr); err != nil {
		return err
	}
	g.ExtraEnv = s.env
	if s.delayMin != nil {
		lo, hi, err := parseDelayRange(s.delays)
		if err != nil {
			return err
		}
		*s.delayMin, *s.delayMax = lo, hi
	}
	return nil
}

// harness is the scenario's harness on the servers the flags say; the
// caller defers its cleanup before prepare.
func (s *scenarioFlags) harness(stdout, stderr io.Writer) *harness {
	return &harness{cfg: runConfig{WorkDir: s.workDir, PG: s.pg, Redis: s.redis, Keep: s.keep}, stdout: stdout, stderr: stderr}
}

// prepare starts (or reaches) h's PostgreSQL and Redis and builds the
// gateway into g (prepareGateway), its work folder prefixed with the
// scenario's name.
func (s *scenarioFlags) prepare(ctx context.Context, h *harness, g *gatewayRun) error {
	return h.prepareGateway(ctx, "scrmgw-"+s.name+"-", g, s.profile)
}

// finish writes the scenario's config and result as JSON to --out when
// given, and fails when the scenario's checks found problems.
func (s *scenarioFlags) finish(config, result any, problems []string) error {
	if s.out != "" {
		b, _ := json.MarshalIndent(struct {
			Config any
			Result any
		}{config, result}, "", "  ")
		if err := os.WriteFile(s.out, b, 0o644); err != nil {
			return err
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d checks failed", len(problems))
	}
	return nil
}

// reportLine is the printer of a scenario report's lines: the label
// padded to width, then the value.
func reportLine(stdout io.Writer, width int) func(label, format string, args ...any) {
	return func(label, format string, args ...any) {
		fmt.Fprintf(stdout, "  %-*s %s\n", width, label, fmt.Sprintf(format, args...))
	}
}

// reportChecks prints the checks line of a scenario report: ok when
// there are no problems, else each problem.
func reportChecks(w func(label, format string, args ...any), ok string, problems []string) {
	if len(problems) == 0 {
		w("checks", "OK: %s", ok)
	} else {
		w("checks", "FAILED:\n    %s", strings.Join(problems, "\n    "))
	}
}

// checks are the problems a scenario's run found (Problems in its
// result's JSON).
type checks struct {
	Problems []string
}

func (c *checks) problem(format string, args ...any) {
	c.Problems = append(c.Problems, fmt.Sprintf(format, args...))
}

// logger is g.Logf, or a logger that drops everything when it is not
// set.
func (g *gatewayRun) logger() func(format string, args ...any) {
	if g.Logf == nil {
		return func(string, ...any) {}
	}
	return g.Logf
}

// prepareOutbound makes the work directory, starts the backends and
// builds scrmgw into *bin unless it is set: what the outbound scenarios
// share.
func (h *harness) prepareOutbound(ctx context.Context, prefix string, bin *string) error {
	if h.cfg.WorkDir == "" {
		d, err := os.MkdirTemp("/var/tmp", prefix)
		if err != nil {
			return err
		}
		h.cfg.WorkDir = d
		if !h.cfg.Keep {
			h.defer_(func() { os.RemoveAll(d) })
		}
	}
	os.Chmod(h.cfg.WorkDir, 0o755)
	h.logf("work directory %s", h.cfg.WorkDir)
	if err := h.startBackends(ctx); err != nil {
		return err
	}
	if *bin == "" {
		*bin = filepath.Join(h.cfg.WorkDir, "scrmgw")
		h.logf("building scrmgw")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", *bin, "github.com/scrmgw/scrmgw/cmd/scrmgw").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/scrmgw (run from the module): %v\n%s", err, out)
		}
	}
	return nil
}
