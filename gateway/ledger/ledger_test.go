package ledger

import (
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/store"
)

func TestLinesAndClawbackNetToZero(t *testing.T) {
	r, err := ParseRules("t.yaml", []byte(`brands:
  "*":
    - category: food
      guide: "0.35"
      store: 3.33%
    - category: "*"
      guide: 2.5%
      store: 5%
      distributor: 1%
bound_guide: true
`))
	if err != nil {
		t.Fatal(err)
	}
	o := &store.Order{BrandID: "any", Items: []store.OrderItem{
		{Line: 1, SKU: "F", Category: "food", Qty: 3, PriceCents: 333},
		{Line: 2, SKU: "X", Category: "skin", Qty: 7, PriceCents: 1999},
	}}
	lines := r.Lines(o, Parties{Guide: "g", Store: "s", Distributor: "d"}, "2026-11-20")
	got := map[string]int64{}
	for _, l := range lines {
		got[l.Party+string(rune('0'+l.ItemLine))] = l.AmountCents
	}
	// food: 3 × 0.35 = 105; 3.33% of 999 = 33.27 → 33; no distributor rate.
	// skin: 2.5% of 13993 = 349.825 → 350; 5% = 699.65 → 700; 1% = 139.93 → 140.
	want := map[string]int64{"guide1": 105, "store1": 33, "guide2": 350, "store2": 700, "distributor2": 140}
	if len(got) != len(want) {
		t.Fatalf("lines = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	// Refund line 2 one unit at a time: the clawbacks add up to exactly
	// the commission, whatever the rounding.
	ledger := append([]store.CommissionLine(nil), lines...)
	for i := 0; i < 7; i++ {
		claw := Clawback(o, []store.RefundItem{{Line: 2, Qty: 1}}, ledger, "2026-11-21")
		for j := range claw {
			claw[j].RefundID = int64(i + 1)
		}
		ledger = append(ledger, claw...)
		o.Items[1].RefundedQty++
	}
	sum := map[string]int64{}
	base := int64(0)
	for _, l := range ledger {
		if l.ItemLine == 2 {
			sum[l.Party] += l.AmountCents
			if l.Party == store.PartyStore {
				base += l.BaseCents
			}
		}
	}
	for p, v := range sum {
		if v != 0 {
			t.Errorf("%s nets %d after a full refund, want 0", p, v)
		}
	}
	if base != 0 {
		t.Errorf("store base nets %d, want 0", base)
	}
}

func TestNoStoreNoLines(t *testing.T) {
	r, _ := ParseRules("t", []byte("brands: {\"*\": [{category: \"*\", guide: 3%}]}"))
	o := &store.Order{BrandID: "a", Items: []store.OrderItem{{Line: 1, Qty: 1, PriceCents: 100}}}
	if ls := r.Lines(o, Parties{Guide: "g"}, "d"); ls != nil {
		t.Errorf("lines without a store = %+v", ls)
	}
	ls := r.Lines(o, Parties{Store: "s"}, "d")
	if len(ls) != 1 || ls[0].Party != store.PartyStore || ls[0].AmountCents != 0 || ls[0].BaseCents != 100 {
		t.Errorf("store line without a store rate = %+v", ls)
	}
}

func TestParseRulesErrors(t *testing.T) {
	for src, want := range map[string]string{
		`brands: {"*": [{category: "*", guide: 120%}]}`: "0% to 100%",
		`brands: {"*": [{category: "*", guide: abc}]}`:  "yuan per unit",
		`brands: {"*": [{guide: 3%}]}`:                  "category: required",
		`brands: {"*": [{category: "*", gide: 3%}]}`:    "gide",
		`brandz: {}`: "brandz",
		`brands: {"*": [{category: "*", store: 1.234}]}`: "yuan per unit",
	} {
		if _, err := ParseRules("r.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
}

// TestRulePrecedence: the most specific matching rule pays, whatever the
// file order: a store beats a distributor, a distributor a category, a
// category "*".
func TestRulePrecedence(t *testing.T) {
	r, err := ParseRules("t.yaml", []byte(`brands:
  acme:
    - category: "*"
      guide: 1%
    - category: skin
      guide: 2%
    - category: "*"
      distributors: [d-east]
      guide: 3%
    - category: skin
      distributors: [d-east]
      guide: 4%
    - category: "*"
      stores: [sh-1, sh-2]
      guide: 5%
    - category: skin
      stores: [sh-1]
      guide: 6%
    - category: skin
      stores: [sh-1]
      guide: 7%
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, category, store, distributor string
		want                               int64
		rule                               string
	}{
		{"any store, other category", "food", "bj-1", "", 100, "* 1%"},
		{"category", "skin", "bj-1", "", 200, "skin 2%"},
		{"distributor beats category", "food", "bj-1", "d-east", 300, "distributor d-east * 3%"},
		{"distributor and category", "skin", "bj-1", "d-east", 400, "distributor d-east skin 4%"},
		{"store beats distributor", "food", "sh-2", "d-east", 500, "store sh-2 * 5%"},
		{"store and category; the first of equals", "skin", "sh-1", "d-east", 600, "store sh-1 skin 6%"},
		{"another distributor", "food", "bj-1", "d-west", 100, "* 1%"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &store.Order{BrandID: "acme", Items: []store.OrderItem{{Line: 1, SKU: "X", Category: tc.category, Qty: 1, PriceCents: 10000}}}
			ls := r.Lines(o, Parties{Guide: "g", Store: tc.store, Distributor: tc.distributor}, "2026-12-07")
			if len(ls) == 0 || ls[0].Party != store.PartyGuide || ls[0].AmountCents != tc.want || ls[0].Rule != tc.rule {
				t.Errorf("guide line = %+v, want %d by %q", ls, tc.want, tc.rule)
			}
		})
	}
	if _, err := ParseRules("r.yaml", []byte(`brands: {"*": [{category: "*", stores: ["bad id!"], guide: 1%}]}`)); err == nil ||
		!strings.Contains(err.Error(), "brands.*[0].stores[0]") {
		t.Errorf("bad store id: %v", err)
	}
}
