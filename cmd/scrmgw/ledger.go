package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/scrmgw/scrmgw/cmd/scrmgw/internal/app"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/store"
)

// runSettle settles a finished day and prints the settlement; running it
// again prints the same figures.
func runSettle(ctx context.Context, cfg configs.Config, log *slog.Logger, date, format string, stdout, stderr io.Writer) int {
	loc, err := time.LoadLocation(cfg.Ledger.TimeZone)
	if err != nil {
		fmt.Fprintf(stderr, "scrmgw ledger: ledger.time_zone: %v\n", err)
		return 1
	}
	s, err := app.OpenStore(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "scrmgw ledger: %v\n", err)
		return 1
	}
	defer s.Close()
	sts, err := s.SettleDay(ctx, date, loc, time.Now())
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			fmt.Fprintf(stderr, "scrmgw ledger: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "scrmgw ledger: %v\n", err)
		return 1
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"items": sts})
	} else if err := api.WriteSettlementsCSV(csv.NewWriter(stdout), sts); err != nil {
		fmt.Fprintf(stderr, "scrmgw ledger: %v\n", err)
		return 1
	}
	unreconciled := 0
	for _, st := range sts {
		if !st.Reconciled {
			unreconciled++
			fmt.Fprintf(stderr, "scrmgw ledger: store %s, brand %s: commission bases do not add up to net sales %s; check for orders without ledger lines\n",
				st.StoreID, st.BrandID, fmt.Sprintf("%d.%02d", st.NetCents/100, abs(st.NetCents%100)))
		}
	}
	if unreconciled > 0 {
		return 1
	}
	return 0
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
