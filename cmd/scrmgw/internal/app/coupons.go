package app

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/commerce"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// LoadCouponBatches reads the coupon batches of coupons.file, or the
// built-in ones. Unknown keys, bad values and bad ids are errors.
func LoadCouponBatches(cfg configs.Config) (engine.CouponBatches, error) {
	var (
		b    []byte
		err  error
		name = cfg.Coupons.File
	)
	if name != "" {
		b, err = os.ReadFile(name)
	} else {
		var fsys fs.FS
		fsys, name = configs.CouponBatches()
		b, err = fs.ReadFile(fsys, name)
	}
	if err != nil {
		return nil, fmt.Errorf("coupons.file: %w", err)
	}
	return commerce.ParseCouponBatches(name, b)
}
