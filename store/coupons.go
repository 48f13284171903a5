package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Coupon redemption errors, each its own kind so the API answers each
// with its code.
var (
	// ErrCouponRedeemed: the coupon is redeemed on another order.
	ErrCouponRedeemed = errors.New("coupon already redeemed on another order")
	// ErrCouponExpired: the coupon's validity has passed.
	ErrCouponExpired = errors.New("coupon expired")
	// ErrCouponMember: the coupon is another member's than the order's
	// (or than the member the till named).
	ErrCouponMember = errors.New("coupon belongs to another member than the order")
)

// CouponRedemption is one redemption of an issued coupon at a till: the
// order it was taken against, the store, and who is credited with it
// (the run and guide whose message carried the coupon). A refund of the
// whole order reverses it (UnredeemedAt set); the row stays.
type CouponRedemption struct {
	ID       int64  `gorm:"primaryKey;autoIncrement" json:"id"`
	CouponID int64  `gorm:"not null;index" json:"-"`
	BrandID  string `gorm:"size:64;not null;index:idx_coupon_redemption_order,priority:1" json:"brand"`
	Code     string `gorm:"size:100;not null" json:"code"`
	Batch    string `gorm:"size:64;not null" json:"batch"`
	OrderNo  string `gorm:"size:100;not null;index:idx_coupon_redemption_order,priority:2" json:"order_id"`
	StoreID  string `gorm:"size:64;not null;default:''" json:"store_id,omitempty"`
	MemberID int64  `gorm:"not null;index" json:"member_id"`
	// ValueCents is the coupon's value.
	ValueCents int64 `gorm:"not null" json:"value_cents"`
	// RunID, Workflow and GuideID are the coupon's (IssuedCoupon): the
	// redemption is attributed to them.
	RunID      *int64    `gorm:"index" json:"run_id,omitempty"`
	Workflow   string    `gorm:"size:100;not null;default:''" json:"workflow,omitempty"`
	GuideID    string    `gorm:"size:64;not null;default:'';index" json:"guide_id,omitempty"`
	RedeemedAt time.Time `gorm:"not null" json:"redeemed_at"`
	// UnredeemedAt and RefundNo say the order was refunded and the
	// coupon given back.
	UnredeemedAt *time.Time `json:"unredeemed_at,omitempty"`
	RefundNo     string     `gorm:"size:100;not null;default:''" json:"refund_id,omitempty"`
}

// Redemption asks to redeem a brand's coupon against an order.
type Redemption struct {
	Brand   string
	Code    string
	OrderNo string
	StoreID string
	// MemberID, when set, is the member the till says is paying: the
	// coupon must be theirs.
	MemberID int64
	At       time.Time
}

// RedeemCoupon redeems a brand's coupon against an order with a guarded
// update: of two redemptions racing for the same coupon exactly one wins.
// Redeeming it again for the same order answers the same redemption
// (fresh false). A code the brand never issued is ErrNotFound (another
// brand's coupon too), one redeemed on another order ErrCouponRedeemed,
// one past its validity ErrCouponExpired, one of another member than
// the order's (when the order is recorded already) or than r.MemberID
// ErrCouponMember; nothing is written then.
func (s *Store) RedeemCoupon(ctx context.Context, r Redemption) (red *CouponRedemption, fresh bool, err error) {
	var errs []error
	if r.Code == "" || len(r.Code) > 100 {
		errs = append(errs, invalid("code", "must be 1-100 characters"))
	}
	if r.OrderNo == "" || len(r.OrderNo) > 100 {
		errs = append(errs, invalid("order_id", "must be 1-100 characters"))
	}
	if r.StoreID != "" {
		errs = append(errs, ValidateID("store_id", r.StoreID))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, false, err
	}
	at := utc(r.At)
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var c IssuedCoupon
		if err := tx.Where("brand_id = ? AND code = ?", r.Brand, r.Code).Order("id").Take(&c).Error; err != nil {
			return err
		}
		if c.RedeemedOrder == r.OrderNo {
			red, err = activeRedemption(tx, c.ID, r.OrderNo)
			return err
		}
		if r.MemberID != 0 && r.MemberID != c.MemberID {
			return ErrCouponMember
		}
		var orderMembers []int64
		if err := tx.Model(&Order{}).Where("brand_id = ? AND order_no = ?", r.Brand, r.OrderNo).Pluck("member_id", &orderMembers).Error; err != nil {
			return err
		}
		if len(orderMembers) > 0 && orderMembers[0] != c.MemberID {
			return ErrCouponMember
		}
		if c.RedeemedOrder != "" {
			return ErrCouponRedeemed
		}
		if !at.Before(c.ExpiresAt) {
			return ErrCouponExpired
		}
		res := tx.Model(&IssuedCoupon{}).Where("id = ? AND redeemed_order = ''", c.ID).
			Updates(map[string]any{"redeemed_order": r.OrderNo, "redeemed_at": at})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			// Another redemption won the race (SQLite serialises
			// writers, so this is PostgreSQL's re-checked row).
			if err := tx.Where("id = ?", c.ID).Take(&c).Error; err != nil {
				return err
			}
			if c.RedeemedOrder == r.OrderNo {
				red, err = activeRedemption(tx, c.ID, r.OrderNo)
				return err
			}
			return ErrCouponRedeemed
		}
		red = &CouponRedemption{CouponID: c.ID, BrandID: c.BrandID, Code: c.Code, Batch: c.Batch, OrderNo: r.OrderNo, StoreID: r.StoreID,
			MemberID: c.MemberID, ValueCents: c.ValueCents, RunID: c.RunID, Workflow: c.Workflow, GuideID: c.GuideID, RedeemedAt: at}
		fresh = true
		return tx.Create(red).Error
	})
	if errors.Is(err, ErrCouponRedeemed) || errors.Is(err, ErrCouponExpired) || errors.Is(err, ErrCouponMember) {
		return nil, false, err
	}
	if err != nil {
		return nil, false, translate(err)
	}
	return red, fresh, nil
}

func activeRedemption(tx *gorm.DB, coupon int64, orderNo string) (*CouponRedemption, error) {
	var red CouponRedemption
	err := tx.Where("coupon_id = ? AND order_no = ? AND unredeemed_at IS NULL", coupon, orderNo).Order("id DESC").Take(&red).Error
	if err != nil {
		return nil, fmt.Errorf("reading the redemption of coupon %d: %w", coupon, err)
	}
	return &red, nil
}

// UnredeemOrderCoupons gives back the coupons redeemed on a brand's order
// (its refund refundNo returned all of it): each redemption is marked
// reversed and its coupon usable again (until it expires). It returns the
// redemptions reversed now; a second call reverses nothing.
func (s *Store) UnredeemOrderCoupons(ctx context.Context, brand, orderNo, refundNo string, at time.Time) ([]CouponRedemption, error) {
	at = utc(at)
	var out []CouponRedemption
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var reds []CouponRedemption
		if err := tx.Where("brand_id = ? AND order_no = ? AND unredeemed_at IS NULL", brand, orderNo).Order("id").Find(&reds).Error; err != nil {
			return err
		}
		for _, red := range reds {
			res := tx.Model(&CouponRedemption{}).Where("id = ? AND unredeemed_at IS NULL", red.ID).
				Updates(map[string]any{"unredeemed_at": at, "refund_no": refundNo})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected != 1 {
				continue
			}
			if err := tx.Model(&IssuedCoupon{}).Where("id = ? AND redeemed_order = ?", red.CouponID, orderNo).
				Updates(map[string]any{"redeemed_order": "", "redeemed_at": nil}).Error; err != nil {
				return err
			}
			red.UnredeemedAt, red.RefundNo = &at, refundNo
			out = append(out, red)
		}
		return nil
	})
	return out, translate(err)
}

// OrderRedemptions lists the redemptions (reversed ones too) of a
// brand's order, oldest first.
func (s *Store) OrderRedemptions(ctx context.Context, brand, orderNo string) ([]CouponRedemption, error) {
	var out []CouponRedemption
	err := s.db.WithContext(ctx).Where("brand_id = ? AND order_no = ?", brand, orderNo).Order("id").Find(&out).Error
	return out, translate(err)
}

// CouponCounts are how many coupons a workflow issued and how many of
// them are redeemed now.
type CouponCounts struct {
	Issued   int64 `json:"issued"`
	Redeemed int64 `json:"redeemed"`
}

// WorkflowCoupons counts the coupons of a workflow's runs that f selects
// (all of them with a zero filter), for its funnel.
func (s *Store) WorkflowCoupons(ctx context.Context, brand, workflow string, f FunnelFilter) (CouponCounts, error) {
	var row CouponCounts
	where, args := f.where("r", brand, workflow)
	err := s.db.WithContext(ctx).Table("issued_coupons AS c").Joins("JOIN workflow_runs r ON r.id = c.run_id").
		Select("COUNT(*) AS issued, COALESCE(SUM(CASE WHEN c.redeemed_order <> '' THEN 1 ELSE 0 END), 0) AS redeemed").
		Where(where, args...).Scan(&row).Error
	return row, translate(err)
}

func migrateCouponRedemptions(tx *gorm.DB) error {
	return tx.AutoMigrate(&IssuedCoupon{}, &CouponRedemption{})
}
