package configs

import (
	"embed"
	"io/fs"
)

//go:embed templates/*.yaml workflows/*.yaml bots/*.yaml ledger/*.yaml coupons/*.yaml
var examples embed.FS

// BuiltinTemplates returns the message templates shipped in
// configs/templates, used unless templates_dir names others.
func BuiltinTemplates() fs.FS {
	sub, err := fs.Sub(examples, "templates")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}

// ExampleWorkflows returns the workflows shipped in configs/workflows.
func ExampleWorkflows() fs.FS {
	sub, err := fs.Sub(examples, "workflows")
	if err != nil {
		panic(err)
	}
	return sub
}

// BotIntents returns the bot intent files shipped in configs/bots.
func BotIntents() fs.FS {
	sub, err := fs.Sub(examples, "bots")
	if err != nil {
		panic(err)
	}
	return sub
}

// CommissionRules returns the built-in commission rules file
// (configs/ledger/commission.yaml), used unless ledger.rules names another.
func CommissionRules() (fs.FS, string) { return examples, "ledger/commission.yaml" }

// GuidePointsRules returns the built-in guide points rules file
// (configs/ledger/guide_points.yaml), used unless ledger.guide_points
// names another.
func GuidePointsRules() (fs.FS, string) { return examples, "ledger/guide_points.yaml" }

// CouponBatches returns the built-in coupon batches file
// (configs/coupons/coupons.yaml), used unless coupons.file names another.
func CouponBatches() (fs.FS, string) { return examples, "coupons/coupons.yaml" }
