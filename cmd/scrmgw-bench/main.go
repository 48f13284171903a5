// Command scrmgw-bench is scrmgw's load tool. Each subcommand measures one
// part of the gateway against its baseline in the same run and prints a
// table (see docs/performance-geo.md for the nearest-store figures):
//
//	scrmgw-bench nearest --stores 200000 --queries 100000 [--pg URL]
//
// nearest generates the synthetic store network of store/geo (the data the
// package's benchmarks use), then times nearest-eligible-store lookups one
// by one: the in-process geo.Index, a linear scan, and, with --pg, PostGIS
// KNN queries with one GiST index plus a brand filter and with one partial
// GiST index per brand.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/scrmgw/scrmgw/cmd/internal/subcmd"
)

const usage = `scrmgw-bench: scrmgw load tool.

Usage:
  scrmgw-bench nearest [flags]   nearest eligible store: geo.Index vs linear scan vs PostGIS
  scrmgw-bench scale [flags]     seeded PostgreSQL at scale: member by phone, lists, funnel, console pages, a schedule trigger, segment plans

Run "scrmgw-bench nearest -h" or "scrmgw-bench scale -h" for their flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return subcmd.Run("scrmgw-bench", usage, map[string]subcmd.Func{
		"scale": func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			cfg, err := parseScale(args, stderr)
			if err != nil {
				return subcmd.ErrUsage
			}
			return runScale(ctx, cfg, stdout, stderr)
		},
		"nearest": func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			cfg, err := parseNearest(args, stderr)
			if err != nil {
				return subcmd.ErrUsage
			}
			return runNearest(ctx, cfg, stdout, stderr)
		},
	}, args, stdout, stderr)
}

func parseNearest(args []string, stderr io.Writer) (nearestConfig, error) {
	var c nearestConfig
	fs := flag.NewFlagSet("nearest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Stores, "stores", 200_000, "number of synthetic stores")
	fs.IntVar(&c.Queries, "queries", 100_000, "lookups timed against the in-process index")
	fs.IntVar(&c.LinearQueries, "linear-queries", 2_000, "lookups timed against the linear scan (each scans every store)")
	fs.IntVar(&c.PGQueries, "pg-queries", 20_000, "lookups timed against each PostGIS variant")
	fs.Int64Var(&c.Seed, "seed", 1, "seed of the synthetic stores and member locations")
	fs.StringVar(&c.PG, "pg", "", "PostgreSQL URL of a database with PostGIS available (default: skip PostGIS)")
	fs.BoolVar(&c.PGKeep, "pg-keep", false, "keep the scrmgw_bench schema and its tables afterwards")
	fs.BoolVar(&c.Explain, "explain", false, "print the PostGIS query plans")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scrmgw-bench nearest: unexpected argument %q\n", fs.Arg(0))
		return c, flag.ErrHelp
	}
	if c.Stores <= 0 || c.Queries <= 0 || c.LinearQueries < 0 || c.PGQueries < 0 {
		fmt.Fprintln(stderr, "scrmgw-bench nearest: --stores and --queries must be positive, the others not negative")
		return c, flag.ErrHelp
	}
	return c, nil
}
