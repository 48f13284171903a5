package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/configs"
)

func TestLoadCouponBatches(t *testing.T) {
	b, err := LoadCouponBatches(configs.Default())
	if err != nil || b["NEW-MEMBER-50"].Value != 5000 || b["WIN-BACK-30"].ValidDays != 14 {
		t.Fatalf("built-in batches = %+v, %v", b, err)
	}
	dir := t.TempDir()
	for src, want := range map[string]string{
		"batches: {X: {value: \"1.234\"}}":             "batches.X.value",
		"batches: {X: {value: \"0\"}}":                 "batches.X.value",
		"batches: {X: {value: \"5\", valid_days: -1}}": "valid_days",
		"batches: {X: {value: \"5\", vaild_days: 3}}":  "vaild_days",
		"batches: {\"bad id\": {value: \"5\"}}":        "not a valid id",
		"batchez: {}":                                  "batchez",
	} {
		p := filepath.Join(dir, "c.yaml")
		os.WriteFile(p, []byte(src), 0o600)
		cfg := configs.Default()
		cfg.Coupons.File = p
		if _, err := LoadCouponBatches(cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
}
