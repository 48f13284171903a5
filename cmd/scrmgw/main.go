// Command scrmgw is the SCRM gateway: one binary whose subcommands run the
// whole gateway (serve), queue workers only (worker), database migrations
// (migrate), a configuration check (config) and print the version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	_ "time/tzdata" // store time zones must resolve on machines without tzdata

	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/app"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/importer"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// commit with -X main.commit=<git revision> where the build has no VCS
// stamp (go build -buildvcs=false, or a build context without .git).
var (
	version = "dev"
	commit  = ""
)

// defaultGCPercent is the garbage collector's target (GOGC) when the
// environment sets none. The gateway's heap is small (tens of MB) and
// churns with every callback; at Go's default of 100 the collector took
// 13% of its CPU under load, at 300 about half that, for ~10% more
// callbacks/s on two cores (docs/performance-callbacks.md). GOGC or
// GOMEMLIMIT in the environment override it as usual.
const defaultGCPercent = 300

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, overview())
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "--version", "-v":
		name = "version"
	case "--help", "-h", "-help":
		name = "help"
	}
	cmd, ok := lookupCommand(name)
	if !ok {
		fmt.Fprint(stderr, unknownCommand(name))
		return 2
	}
	var o options
	fs := cmd.flagSet(&o)
	var positional []string
	for {
		if err := fs.Parse(rest); errors.Is(err, flag.ErrHelp) {
			cmd.printHelp(stdout)
			return 0
		} else if err != nil {
			fmt.Fprint(stderr, cmd.unknownFlag(err))
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	switch cmd.name {
	case "help":
		if len(positional) == 0 {
			fmt.Fprint(stdout, overview())
			return 0
		}
		c, ok := lookupCommand(positional[0])
		if !ok || len(positional) > 1 {
			fmt.Fprint(stderr, unknownCommand(strings.Join(positional, " ")))
			return 2
		}
		c.printHelp(stdout)
		return 0
	case "version":
		printVersion(stdout)
		return 0
	case "completion":
		if len(positional) != 1 {
			fmt.Fprint(stderr, cmd.usageLines())
			return 2
		}
		return printCompletion(positional[0], stdout, stderr)
	case "workflow":
		if len(positional) == 0 {
			fmt.Fprint(stderr, cmd.usageLines())
			return 2
		}
		if positional[0] != "validate" && positional[0] != "dry-run" {
			fmt.Fprint(stderr, cmd.unknownWord("subcommand", positional[0]))
			return 2
		}
	case "import":
		if len(positional) != 2 {
			fmt.Fprint(stderr, cmd.usageLines())
			return 2
		}
		if !slices.Contains(cmd.words, positional[0]) {
			fmt.Fprint(stderr, cmd.unknownWord("kind", positional[0]))
			return 2
		}
	case "ledger":
		if len(positional) == 1 && positional[0] != "settle" {
			fmt.Fprint(stderr, cmd.unknownWord("subcommand", positional[0]))
			return 2
		}
		if len(positional) != 1 || o.settleDate == "" || (o.settleFormat != "csv" && o.settleFormat != "json") {
			fmt.Fprint(stderr, cmd.usageLines())
			return 2
		}
	case "live":
		if len(positional) > 0 && !slices.Contains(cmd.words, positional[0]) {
			fmt.Fprint(stderr, cmd.unknownWord("subcommand", positional[0]))
			return 2
		}
		if len(positional) == 0 || o.brand == "" || (positional[0] == "schedule" && (len(positional) != 1 || o.liveFile == "")) ||
			(positional[0] == "funnel" && len(positional) != 2) || (positional[0] == "cancel" && len(positional) != 2) ||
			(positional[0] == "edit" && (len(positional) != 2 || o.liveFile == "")) {
			fmt.Fprint(stderr, cmd.usageLines())
			return 2
		}
	case "token":
		if len(positional) == 0 {
			fmt.Fprintln(stderr, tokenUsage)
			return 2
		}
		if !slices.Contains(cmd.words, positional[0]) {
			fmt.Fprint(stderr, cmd.unknownWord("subcommand", positional[0]))
			return 2
		}
	default:
		if len(positional) > 0 {
			fmt.Fprintf(stderr, "scrmgw %s: unexpected argument %q\n%s", cmd.name, positional[0], cmd.usageLines())
			return 2
		}
	}
	listEnv, workers := o.listEnv, o.workers
	if listEnv {
		fmt.Fprintln(stdout, strings.Join(configs.EnvVars(), "\n"))
		return 0
	}
	cfg, err := configs.Load(o.config, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "scrmgw: %v\n", err)
		return 1
	}
	if o.listen != "" {
		cfg.HTTP.WorkerAddr = o.listen
		if err := cfg.Validate(); err != nil {
			fmt.Fprintf(stderr, "scrmgw: --listen: %v\n", err)
			return 2
		}
	}
	switch cmd.name {
	case "config":
		fmt.Fprintln(stdout, "configuration is valid")
		return 0
	case "health":
		return runHealth(cfg, o, stdout, stderr)
	case "workflow":
		if positional[0] == "dry-run" {
			return runWorkflowDryRun(cfg, positional[1:], o.memberFile, o.eventsFile, o.startAt, stdout, stderr)
		}
		return runWorkflowValidate(cfg, positional[1:], stdout, stderr)
	}
	log := newLogger(cfg.Log, stderr)
	slog.SetDefault(log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd.name {
	case "ledger":
		return runSettle(ctx, cfg, log, o.settleDate, o.settleFormat, stdout, stderr)
	case "live":
		return runLive(ctx, cfg, log, positional, o.brand, o.liveFile, stdout, stderr)
	case "token":
		return runToken(ctx, cfg, log, positional, o.token, stdout, stderr)
	case "import":
		return runImport(ctx, cfg, log, positional[0], positional[1], importer.Options{SkipInvalid: o.skipInvalid, Brand: o.brand}, stdout, stderr)
	}

	a, err := app.New(ctx, cfg, log)
	if err != nil {
		log.Error("starting scrmgw", slog.Any("error", err))
		return 1
	}
	defer a.Close()
	switch cmd.name {
	case "migrate":
		err = a.Migrate(ctx)
		if err == nil {
			log.Info("database is up to date", slog.String("dialect", a.Store.Dialect()))
		}
	case "serve":
		log.Info("scrmgw starting", slog.String("version", versionString()))
		if workers {
			err = a.Serve(ctx)
		} else {
			err = a.ServeHTTPOnly(ctx)
		}
	case "worker":
		log.Info("scrmgw worker starting", slog.String("version", versionString()))
		err = a.Worker(ctx)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("scrmgw "+cmd.name, slog.Any("error", err))
		return 1
	}
	return 0
}

func newLogger(c configs.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
