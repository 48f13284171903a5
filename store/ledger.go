package store

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Settlement is the T+1 commission settlement of one store and brand for
// one day: the day's sales and refunds recorded in the store and what each
// party earned on them. A day is settled once; settling it again returns
// the same figures.
type Settlement struct {
	Date    string `gorm:"primaryKey;size:10" json:"date"`
	StoreID string `gorm:"primaryKey;size:64" json:"store_id"`
	BrandID string `gorm:"primaryKey;size:64" json:"brand"`
	Orders  int    `gorm:"not null" json:"orders"`
	Refunds int    `gorm:"not null" json:"refunds"`
	// SalesCents and RefundsCents are the day's order totals and refunds
	// (of the store's orders) recorded that day; NetCents their difference.
	SalesCents   int64 `gorm:"not null" json:"sales_cents"`
	RefundsCents int64 `gorm:"not null" json:"refunds_cents"`
	NetCents     int64 `gorm:"not null" json:"net_cents"`
	// GuideCents, StoreCents and DistributorCents are the sums of the
	// day's commission lines per party (clawbacks included).
	GuideCents       int64 `gorm:"not null" json:"guide_cents"`
	StoreCents       int64 `gorm:"not null" json:"store_cents"`
	DistributorCents int64 `gorm:"not null" json:"distributor_cents"`
	Lines            int   `gorm:"not null" json:"lines"`
	// Reconciled says the store lines' bases add up to NetCents: every
	// order and refund of the day is in the ledger.
	Reconciled bool `gorm:"not null" json:"reconciled"`
	// Status is SettlementSettled, or SettlementUnreconciled when the
	// ledger does not reconcile: such a settlement is not final, and
	// settling the day again recomputes it.
	Status    string    `gorm:"size:16;not null;default:'settled'" json:"status"`
	CreatedAt time.Time `json:"created_at"`
	// Parties are the per-party totals (guides, the store, the
	// distributor), for the CSV.
	Parties []PartyTotal `gorm:"-" json:"parties,omitempty"`
}

// Settlement statuses.
const (
	SettlementSettled      = "settled"
	SettlementUnreconciled = "unreconciled"
)

// PartyTotal is what one party earned in a settlement.
type PartyTotal struct {
	Party       string `json:"party"`
	PartyID     string `json:"party_id"`
	Lines       int    `json:"lines"`
	AmountCents int64  `json:"amount_cents"`
}

// ErrDayNotOver refuses to settle a day that has not ended.
var ErrDayNotOver = invalid("date", "the day is not over yet in the ledger time zone; settle it from the next day (T+1)")

// SettleDay settles every store and brand with ledger lines, orders or
// refunds recorded on date (YYYY-MM-DD in loc), which must be over at now;
// pairs settled before keep their figures, except those that did not
// reconcile (status unreconciled), which are computed again. It returns
// the day's settlements in store and brand order.
func (s *Store) SettleDay(ctx context.Context, date string, loc *time.Location, now time.Time) ([]Settlement, error) {
	day, err := time.ParseInLocation(time.DateOnly, date, loc)
	if err != nil {
		return nil, invalid("date", "want YYYY-MM-DD, got %q", date)
	}
	if now.Before(day.AddDate(0, 0, 1)) {
		return nil, ErrDayNotOver
	}
	db := s.db.WithContext(ctx)
	type key struct{ store, brand string }
	sums := map[key]*Settlement{}
	get := func(st, br string) *Settlement {
		k := key{st, br}
		if sums[k] == nil {
			sums[k] = &Settlement{Date: date, StoreID: st, BrandID: br}
		}
		return sums[k]
	}
	var orders []struct {
		StoreID string
		BrandID string
		N       int
		Cents   int64
	}
	if err := db.Model(&Order{}).Select("store_id, brand_id, COUNT(*) AS n, COALESCE(SUM(total_cents), 0) AS cents").
		Where("settle_date = ? AND store_id IS NOT NULL", date).Group("store_id, brand_id").Scan(&orders).Error; err != nil {
		return nil, translate(err)
	}
	for _, o := range orders {
		st := get(o.StoreID, o.BrandID)
		st.Orders, st.SalesCents = o.N, o.Cents
	}
	var refunds []struct {
		StoreID string
		BrandID string
		N       int
		Cents   int64
	}
	if err := db.Table("refunds").Select("orders.store_id AS store_id, refunds.brand_id AS brand_id, COUNT(*) AS n, COALESCE(SUM(refunds.amount_cents), 0) AS cents").
		Joins("JOIN orders ON orders.id = refunds.order_id").
		Where("refunds.settle_date = ? AND orders.store_id IS NOT NULL", date).Group("orders.store_id, refunds.brand_id").Scan(&refunds).Error; err != nil {
		return nil, translate(err)
	}
	for _, r := range refunds {
		st := get(r.StoreID, r.BrandID)
		st.Refunds, st.RefundsCents = r.N, r.Cents
	}
	var parties []struct {
		StoreID string
		BrandID string
		Party   string
		PartyID string
		N       int
		Cents   int64
		Base    int64
	}
	if err := db.Model(&CommissionLine{}).Select("store_id, brand_id, party, party_id, COUNT(*) AS n, SUM(amount_cents) AS cents, SUM(base_cents) AS base").
		Where("settle_date = ?", date).Group("store_id, brand_id, party, party_id").Order("store_id, brand_id, party, party_id").
		Scan(&parties).Error; err != nil {
		return nil, translate(err)
	}
	storeBase := map[key]int64{}
	for _, p := range parties {
		st := get(p.StoreID, p.BrandID)
		st.Lines += p.N
		switch p.Party {
		case PartyGuide:
			st.GuideCents += p.Cents
		case PartyStore:
			st.StoreCents += p.Cents
			storeBase[key{p.StoreID, p.BrandID}] += p.Base
		case PartyDistributor:
			st.DistributorCents += p.Cents
		}
		st.Parties = append(st.Parties, PartyTotal{Party: p.Party, PartyID: p.PartyID, Lines: p.N, AmountCents: p.Cents})
	}
	var out []Settlement
	err = db.Transaction(func(tx *gorm.DB) error {
		for k, st := range sums {
			st.NetCents = st.SalesCents - st.RefundsCents
			st.Reconciled = storeBase[k] == st.NetCents
			st.Status = SettlementSettled
			if !st.Reconciled {
				st.Status = SettlementUnreconciled
			}
			// A settled pair is final; an unreconciled one is redone.
			if err := tx.Clauses(clause.OnConflict{
				Columns: []clause.Column{{Name: "date"}, {Name: "store_id"}, {Name: "brand_id"}},
				DoUpdates: clause.AssignmentColumns([]string{"orders", "refunds", "sales_cents", "refunds_cents", "net_cents", "guide_cents",
					"store_cents", "distributor_cents", "lines", "reconciled", "status"}),
				Where: clause.Where{Exprs: []clause.Expression{clause.Expr{SQL: "settlements.status = ?", Vars: []any{SettlementUnreconciled}}}},
			}).Omit("Parties").Create(st).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, translate(err)
	}
	// What is stored wins: a pair settled before keeps its figures.
	if err := db.Where("date = ?", date).Order("store_id, brand_id").Find(&out).Error; err != nil {
		return nil, translate(err)
	}
	for i := range out {
		if st := sums[key{out[i].StoreID, out[i].BrandID}]; st != nil {
			out[i].Parties = st.Parties
		}
	}
	return out, nil
}

// SettlementSummary sums a day's stored settlements of a brand: the
// stores settled, those unreconciled, their net sales and commissions
// (all parties).
type SettlementSummary struct {
	Stores, Unreconciled      int
	NetCents, CommissionCents int64
}

// SettlementSummaryOf sums a day's settlements of brand in one aggregate
// (a brand's day may have 4,400 stores' settlements).
func (s *Store) SettlementSummaryOf(ctx context.Context, date, brand string) (SettlementSummary, error) {
	var out SettlementSummary
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		return out, invalid("date", "want YYYY-MM-DD, got %q", date)
	}
	err := s.db.WithContext(ctx).Model(&Settlement{}).
		Select("COUNT(*) AS stores, COALESCE(SUM(CASE WHEN status = ? THEN 1 ELSE 0 END), 0) AS unreconciled, "+
			"COALESCE(SUM(net_cents), 0) AS net_cents, COALESCE(SUM(guide_cents + store_cents + distributor_cents), 0) AS commission_cents",
			SettlementUnreconciled).
		Where("date = ? AND brand_id = ?", date, brand).Scan(&out).Error
	return out, translate(err)
}

// SettlementsPage returns a page of a day's settlements of brand, without
// their parties, in store id order after the store id after (only the
// unreconciled ones when unreconciled is set), at most limit (default
// 100, at most 1000).
func (s *Store) SettlementsPage(ctx context.Context, date, brand, after string, unreconciled bool, limit int) ([]Settlement, error) {
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		return nil, invalid("date", "want YYYY-MM-DD, got %q", date)
	}
	q := s.db.WithContext(ctx).Where("date = ? AND brand_id = ? AND store_id > ?", date, brand, after)
	if unreconciled {
		q = q.Where("status = ?", SettlementUnreconciled)
	}
	var out []Settlement
	err := q.Order("store_id").Limit(Page{Limit: limit}.limit()).Find(&out).Error
	return out, translate(err)
}

// Settlements returns a day's stored settlements, of one brand when brand
// is set.
func (s *Store) Settlements(ctx context.Context, date, brand string) ([]Settlement, error) {
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		return nil, invalid("date", "want YYYY-MM-DD, got %q", date)
	}
	var out []Settlement
	q := s.db.WithContext(ctx).Where("date = ?", date)
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	err := q.Order("store_id, brand_id").Find(&out).Error
	if err != nil {
		return nil, translate(err)
	}
	if len(out) == 0 {
		return out, nil
	}
	type row struct {
		StoreID string
		BrandID string
		PartyTotal
	}
	var rows []row
	q = s.db.WithContext(ctx).Model(&CommissionLine{}).Select("store_id, brand_id, party, party_id, COUNT(*) AS lines, SUM(amount_cents) AS amount_cents").
		Where("settle_date = ?", date)
	if brand != "" {
		q = q.Where("brand_id = ?", brand)
	}
	if err := q.Group("store_id, brand_id, party, party_id").Order("store_id, brand_id, party, party_id").Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
	// Each settlement's parties, in the rows' order (a brand's day has
	// 4,400 settlements and 13,200 party rows).
	at := make(map[[2]string]int, len(out))
	for i := range out {
		at[[2]string{out[i].StoreID, out[i].BrandID}] = i
	}
	for _, r := range rows {
		if i, ok := at[[2]string{r.StoreID, r.BrandID}]; ok {
			out[i].Parties = append(out[i].Parties, r.PartyTotal)
		}
	}
	return out, nil
}

// SettlementRun is the automatic T+1 settlement of one day: claimed by
// one replica at a time, finished once. A failed attempt gives the claim
// back (Holder empty) so the next one retries.
type SettlementRun struct {
	Date      string    `gorm:"primaryKey;size:10" json:"date"`
	Holder    string    `gorm:"size:100;not null" json:"-"`
	ClaimedAt time.Time `gorm:"not null" json:"claimed_at"`
	// Attempts counts the claims.
	Attempts   int        `gorm:"not null" json:"attempts"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// Status is running, failed, settled or unreconciled (some store's
	// ledger does not add up; see its settlement).
	Status       string `gorm:"size:16;not null" json:"status"`
	Stores       int    `gorm:"not null" json:"stores"`
	Unreconciled int    `gorm:"not null" json:"unreconciled"`
	LastError    string `gorm:"size:1000;not null;default:''" json:"last_error,omitempty"`
}

// Settlement run statuses besides the settlements' own.
const (
	SettlementRunning = "running"
	SettlementFailed  = "failed"
)

// ClaimSettlementRun claims the automatic settlement of date for holder:
// the first claim wins; a failed attempt, or one claimed before
// staleBefore and never finished (its replica died), is taken over. A
// finished day is never claimed again.
func (s *Store) ClaimSettlementRun(ctx context.Context, date, holder string, now, staleBefore time.Time) (bool, error) {
	r := SettlementRun{Date: date, Holder: holder, ClaimedAt: utc(now), Attempts: 1, Status: SettlementRunning}
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&r)
	if res.Error != nil {
		return false, translate(res.Error)
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	res = s.db.WithContext(ctx).Model(&SettlementRun{}).
		Where("date = ? AND finished_at IS NULL AND (holder = '' OR claimed_at < ?)", date, utc(staleBefore)).
		Updates(map[string]any{"holder": holder, "claimed_at": utc(now), "attempts": gorm.Expr("attempts + 1"), "status": SettlementRunning})
	if res.Error != nil {
		return false, translate(res.Error)
	}
	return res.RowsAffected == 1, nil
}

// FinishSettlementRun records a day's automatic settlement as done.
func (s *Store) FinishSettlementRun(ctx context.Context, date, holder string, stores, unreconciled int, now time.Time) error {
	status := SettlementSettled
	if unreconciled > 0 {
		status = SettlementUnreconciled
	}
	return translate(s.db.WithContext(ctx).Model(&SettlementRun{}).Where("date = ? AND holder = ?", date, holder).
		Updates(map[string]any{"finished_at": utc(now), "status": status, "stores": stores, "unreconciled": unreconciled, "last_error": ""}).Error)
}

// FailSettlementRun gives a failed attempt's claim back, with its error.
func (s *Store) FailSettlementRun(ctx context.Context, date, holder, why string) error {
	if len(why) > 1000 {
		why = why[:1000]
	}
	return translate(s.db.WithContext(ctx).Model(&SettlementRun{}).Where("date = ? AND holder = ? AND finished_at IS NULL", date, holder).
		Updates(map[string]any{"holder": "", "status": SettlementFailed, "last_error": why}).Error)
}

// SettlementRunOf returns the automatic settlement of a day.
func (s *Store) SettlementRunOf(ctx context.Context, date string) (*SettlementRun, error) {
	var r SettlementRun
	if err := s.db.WithContext(ctx).Where("date = ?", date).Take(&r).Error; err != nil {
		return nil, translate(err)
	}
	return &r, nil
}

func migrateSettlementRuns(tx *gorm.DB) error {
	if err := tx.AutoMigrate(&Settlement{}, &SettlementRun{}); err != nil {
		return err
	}
	// Settlements made before statuses: what they reconciled says it.
	return tx.Model(&Settlement{}).Where("reconciled = ?", false).Update("status", SettlementUnreconciled).Error
}
