package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/mattn/go-isatty"

	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/app"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/commerce"
	"github.com/scrmgw/scrmgw/gateway/importer"
)

// maxReported bounds the bad rows printed; the count says how many more.
const maxReported = 200

func runImport(ctx context.Context, cfg configs.Config, log *slog.Logger, kind, path string, opts importer.Options, stdout, stderr io.Writer) int {
	if _, ok := importer.Columns[kind]; !ok {
		fmt.Fprintf(stderr, "scrmgw import: unknown kind %q (want stores, guides, members, products or orders)\n", kind)
		return 2
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "scrmgw import: %v\n", err)
		return 1
	}
	defer f.Close()
	s, err := app.OpenStore(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "scrmgw import: %v\n", err)
		return 1
	}
	defer s.Close()
	if kind == importer.KindOrders {
		opts.Orders = commerce.New(s, log).ImportPurchase
	}
	if file, ok := stderr.(*os.File); ok && isatty.IsTerminal(file.Fd()) {
		opts.Progress = func(done, total int) { fmt.Fprint(stderr, "\r"+progressBar(kind, done, total)) }
	}
	res, err := importer.Import(ctx, s, kind, f, opts)
	if opts.Progress != nil {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "scrmgw import: %v\n", err)
		return 1
	}
	for i, e := range res.Invalid {
		if i == maxReported {
			fmt.Fprintf(stderr, "... and %d more bad rows\n", len(res.Invalid)-maxReported)
			break
		}
		fmt.Fprintf(stderr, "%s:%d: %s\n", path, e.Line, e.Reason)
	}
	switch {
	case len(res.Invalid) > 0 && res.Written == 0 && !opts.SkipInvalid:
		fmt.Fprintf(stdout, "%d of %d rows are bad; nothing was written (fix them, or use --skip-invalid)\n", len(res.Invalid), res.Rows)
		return 1
	case len(res.Invalid) > 0:
		fmt.Fprintf(stdout, "%d %s written, %d rows skipped\n", res.Written, kind, len(res.Invalid))
		return 1
	}
	fmt.Fprintf(stdout, "%d %s written\n", res.Written, kind)
	return 0
}

// progressBar draws "stores  [=====>     ]  52%  5200/10000".
func progressBar(kind string, done, total int) string {
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * width)
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("%-8s [%s] %3.0f%%  %d/%d", kind, bar, frac*100, done, total)
}
