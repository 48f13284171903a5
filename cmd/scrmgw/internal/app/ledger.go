package app

import (
	"context"
	"time"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/store"
)

// settler settles commissions for the API, in the ledger's time zone.
type settler struct{ a *App }

func (a *App) settler() api.Settler { return settler{a} }

func (s settler) Settle(ctx context.Context, date string) ([]store.Settlement, error) {
	loc, err := time.LoadLocation(s.a.Config.Ledger.TimeZone)
	if err != nil {
		return nil, err
	}
	return s.a.Store.SettleDay(ctx, date, loc, s.a.now())
}
