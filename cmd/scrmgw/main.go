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
	"strings"
	"syscall"
	_ "time/tzdata" // store time zones must resolve on machines without tzdata

	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/app"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/importer"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `scrmgw: SCRM gateway for brands that sell through physical stores.

Usage:
  scrmgw serve   [--config FILE] [--workers=false]
                                   run the gateway: HTTP API, callbacks, queue workers, scheduler
  scrmgw worker  [--config FILE]   run queue workers and the scheduler only
  scrmgw migrate [--config FILE]   apply database migrations and exit
  scrmgw import  stores|guides|members|products|orders FILE.csv [--skip-invalid] [--brand B] [--config FILE]
                                   upsert rows from a CSV file; every bad row is reported with its line
  scrmgw ledger settle --date YYYY-MM-DD [--format csv|json] [--config FILE]
                                   settle a finished day's commissions per store (T+1); idempotent
  scrmgw workflow validate FILE...  check workflow files; every error with file:line:column
  scrmgw workflow dry-run FILE --member M.json [--events E.json] [--start TIME]
                                   simulate one member through a workflow; nothing is sent
  scrmgw token   create --name N [--brand B] [--read-only] [--resources a,b] [--expires 720h] [--phones]
                 | list | revoke ID  [--config FILE]
                                   manage API tokens; create prints the token once
  scrmgw config  [--config FILE]   check the configuration; list environment variables with --env
  scrmgw version                   print the version

With no configuration at all, serve starts in the zero-setup mode: SQLite
under ./data and an in-process Redis. Every setting can come from
SCRMGW_* environment variables; see configs/scrmgw.yaml.
`

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
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "scrmgw", versionString())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	case "serve", "worker", "migrate", "config", "import", "workflow", "ledger", "token":
	default:
		fmt.Fprintf(stderr, "scrmgw: unknown command %q\n\n%s", cmd, usage)
		return 2
	}

	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (default: none; defaults and SCRMGW_* variables)")
	listEnv, workers, skipInvalid, brand := false, true, false, ""
	var memberFile, eventsFile, startAt string
	if cmd == "workflow" {
		fs.StringVar(&memberFile, "member", "", "dry-run: the member, as JSON")
		fs.StringVar(&eventsFile, "events", "", "dry-run: events that happen to the member, as a JSON list")
		fs.StringVar(&startAt, "start", "", "dry-run: when the simulation starts (RFC 3339); default now")
	}
	if cmd == "import" {
		fs.BoolVar(&skipInvalid, "skip-invalid", false, "write the valid rows even when some rows are bad")
		fs.StringVar(&brand, "brand", "", "brand of member rows that have no brand column")
	}
	if cmd == "config" {
		fs.BoolVar(&listEnv, "env", false, "list every key with its environment variable")
	}
	var settleDate, settleFormat string
	if cmd == "ledger" {
		fs.StringVar(&settleDate, "date", "", "the day to settle, YYYY-MM-DD in ledger.time_zone")
		fs.StringVar(&settleFormat, "format", "csv", "output: csv or json")
	}
	var tf tokenFlags
	if cmd == "token" {
		fs.StringVar(&tf.name, "name", "", "create: the token's name, shown in the audit trail")
		fs.StringVar(&tf.brand, "brand", "", "create: limit the token to this brand (default: an admin token, every brand)")
		fs.BoolVar(&tf.readOnly, "read-only", false, "create: GET and HEAD only")
		fs.StringVar(&tf.resources, "resources", "", "create: limit the token to these route groups, comma-separated ("+strings.Join(api.Resources, ", ")+")")
		fs.DurationVar(&tf.expires, "expires", 0, "create: the token expires after this long, e.g. 720h (default: never)")
		fs.BoolVar(&tf.phones, "phones", false, "create: the token sees full phone numbers")
	}
	if cmd == "serve" {
		fs.BoolVar(&workers, "workers", true, "run queue workers and the scheduler in this process too")
	}
	var positional []string
	for {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if cmd == "workflow" {
		if len(positional) == 0 || (positional[0] != "validate" && positional[0] != "dry-run") {
			fmt.Fprintln(stderr, "usage: scrmgw workflow validate FILE... | scrmgw workflow dry-run FILE --member M.json")
			return 2
		}
	} else if cmd == "import" {
		if len(positional) != 2 {
			fmt.Fprintln(stderr, "usage: scrmgw import stores|guides|members|products|orders FILE.csv [--skip-invalid] [--brand B]")
			return 2
		}
	} else if cmd == "ledger" {
		if len(positional) != 1 || positional[0] != "settle" || settleDate == "" || (settleFormat != "csv" && settleFormat != "json") {
			fmt.Fprintln(stderr, "usage: scrmgw ledger settle --date YYYY-MM-DD [--format csv|json]")
			return 2
		}
	} else if cmd == "token" {
		if len(positional) == 0 {
			fmt.Fprintln(stderr, tokenUsage)
			return 2
		}
	} else if len(positional) > 0 {
		fmt.Fprintf(stderr, "scrmgw %s: unexpected argument %q\n", cmd, positional[0])
		return 2
	}
	if listEnv {
		fmt.Fprintln(stdout, strings.Join(configs.EnvVars(), "\n"))
		return 0
	}
	cfg, err := configs.Load(*cfgPath, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "scrmgw: %v\n", err)
		return 1
	}
	if cmd == "config" {
		fmt.Fprintln(stdout, "configuration is valid")
		return 0
	}
	if cmd == "workflow" {
		if positional[0] == "dry-run" {
			return runWorkflowDryRun(cfg, positional[1:], memberFile, eventsFile, startAt, stdout, stderr)
		}
		return runWorkflowValidate(cfg, positional[1:], stdout, stderr)
	}
	log := newLogger(cfg.Log, stderr)
	slog.SetDefault(log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cmd == "ledger" {
		return runSettle(ctx, cfg, log, settleDate, settleFormat, stdout, stderr)
	}
	if cmd == "token" {
		return runToken(ctx, cfg, log, positional, tf, stdout, stderr)
	}
	if cmd == "import" {
		return runImport(ctx, cfg, log, positional[0], positional[1], importer.Options{SkipInvalid: skipInvalid, Brand: brand}, stdout, stderr)
	}

	a, err := app.New(ctx, cfg, log)
	if err != nil {
		log.Error("starting scrmgw", slog.Any("error", err))
		return 1
	}
	defer a.Close()
	switch cmd {
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
		log.Error("scrmgw "+cmd, slog.Any("error", err))
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

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	return v
}
