package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/store"
)

// Rate is what a rule pays a party: basis points of the amount
// (Percent, 100 = 1%) or a fixed amount per unit in fen.
type Rate struct {
	BasisPoints int64
	PerUnit     int64
	set         bool
	text        string
}

// UnmarshalYAML reads "3%", "2.5%" or a per-unit amount in yuan ("2.00").
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	r.set, r.text = true, s
	if p, ok := strings.CutSuffix(s, "%"); ok {
		bp, err := hundredths(p)
		if err != nil || bp < 0 || bp > 10000 {
			return fmt.Errorf("line %d: %q: want a percentage from 0%% to 100%% with at most 2 decimals", n.Line, s)
		}
		r.BasisPoints = bp
		return nil
	}
	fen, err := hundredths(s)
	if err != nil || fen < 0 {
		return fmt.Errorf("line %d: %q: want a percentage (3%%) or yuan per unit (2.00)", n.Line, s)
	}
	r.PerUnit = fen
	return nil
}

// hundredths parses a decimal with at most two decimals, times 100.
func hundredths(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 || strings.ContainsAny(whole, "+-") {
		return 0, errors.New("bad number")
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > 1<<40 {
		return 0, errors.New("bad number")
	}
	f := int64(0)
	if frac != "" {
		if f, err = strconv.ParseInt((frac + "0")[:2], 10, 64); err != nil {
			return 0, errors.New("bad number")
		}
	}
	return w*100 + f, nil
}

// amount is what the rate pays on qty units worth cents.
func (r Rate) amount(cents int64, qty int) int64 {
	if r.PerUnit > 0 {
		return r.PerUnit * int64(qty)
	}
	return mulDiv(cents, r.BasisPoints, 10000)
}

// mulDiv is a×b/c rounded half away from zero, without overflow.
func mulDiv(a, b, c int64) int64 {
	n := new(big.Int).Mul(big.NewInt(a), big.NewInt(b))
	d := big.NewInt(c)
	q, m := new(big.Int).QuoRem(n, d, new(big.Int))
	if new(big.Int).Abs(new(big.Int).Mul(m, big.NewInt(2))).Cmp(d) >= 0 {
		if n.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q.Int64()
}

// Rule pays the parties on the items of a category ("*": any).
type Rule struct {
	Category    string `yaml:"category"`
	Guide       Rate   `yaml:"guide"`
	Store       Rate   `yaml:"store"`
	Distributor Rate   `yaml:"distributor"`
}

// Rules are the commission rules of every brand.
type Rules struct {
	// Brands maps a brand id (or "*", for brands without rules of their
	// own) to its rules, tried in order.
	Brands map[string][]Rule `yaml:"brands"`
	// BoundGuide credits a purchase the POS did not credit to a guide to
	// the member's bound guide (attribution "binding").
	BoundGuide bool `yaml:"bound_guide"`
}

// LoadRules reads rules from a YAML file; unknown keys are errors.
func LoadRules(fsys fs.FS, name string) (*Rules, error) {
	b, err := readRules(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("commission rules: %w", err)
	}
	return ParseRules(name, b)
}

// readRules reads a rules file from fsys, or from disk when fsys is nil.
func readRules(fsys fs.FS, name string) ([]byte, error) {
	if fsys != nil {
		return fs.ReadFile(fsys, name)
	}
	return os.ReadFile(name)
}

// decodeRules decodes YAML strictly: unknown keys are errors, reported
// with the file's name.
func decodeRules(name string, b []byte, v any) error {
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

// ParseRules reads rules from YAML.
func ParseRules(name string, b []byte) (*Rules, error) {
	var r Rules
	if err := decodeRules(name, b, &r); err != nil {
		return nil, err
	}
	for brand, rules := range r.Brands {
		for i, rule := range rules {
			if rule.Category == "" {
				return nil, fmt.Errorf("%s: brands.%s[%d].category: required (\"*\" for any)", name, brand, i)
			}
		}
	}
	return &r, nil
}

// rule is the first rule of the brand for a category.
func (r *Rules) rule(brand, category string) (*Rule, string) {
	rules, ok := r.Brands[brand]
	if !ok {
		rules = r.Brands["*"]
	}
	for i := range rules {
		if rules[i].Category == "*" || rules[i].Category == category {
			return &rules[i], rules[i].Category
		}
	}
	return nil, ""
}

// Parties are who an order's commission goes to.
type Parties struct {
	Guide       string
	Store       string
	Distributor string
}

// SettleDate is the day in loc a line recorded at t settles on.
func SettleDate(t time.Time, loc *time.Location) string { return t.In(loc).Format(time.DateOnly) }

// Lines computes an order's commission lines (OrderID is set by the
// store when it records them). No store, no lines: an order nobody is
// credited with earns nothing.
func (r *Rules) Lines(o *store.Order, p Parties, date string) []store.CommissionLine {
	if p.Store == "" {
		return nil
	}
	var out []store.CommissionLine
	for i := range o.Items {
		it := &o.Items[i]
		rule, cat := r.rule(o.BrandID, it.Category)
		base := it.Amount()
		add := func(party, id string, rate Rate, always bool) {
			if id == "" || (!always && (rule == nil || !rate.set)) {
				return
			}
			amount, text := int64(0), "none"
			if rule != nil && rate.set {
				amount, text = rate.amount(base, it.Qty), cat+" "+rate.text
			}
			out = append(out, store.CommissionLine{BrandID: o.BrandID, ItemLine: i + 1, Party: party, PartyID: id, StoreID: p.Store,
				BaseCents: base, AmountCents: amount, Rule: text, SettleDate: date})
		}
		var g, st, d Rate
		if rule != nil {
			g, st, d = rule.Guide, rule.Store, rule.Distributor
		}
		add(store.PartyGuide, p.Guide, g, false)
		add(store.PartyStore, p.Store, st, true)
		add(store.PartyDistributor, p.Distributor, d, false)
	}
	return out
}

// Clawback computes the lines reversing a refund's share of an order's
// commission. refunded are the order's lines as they were before the
// refund (with their RefundedQty), lines the ledger lines written so far.
func Clawback(o *store.Order, refund []store.RefundItem, lines []store.CommissionLine, date string) []store.CommissionLine {
	type key struct {
		line  int
		party string
	}
	orig := map[key]store.CommissionLine{}
	left := map[key]int64{}
	leftBase := map[key]int64{}
	var order []key
	for _, l := range lines {
		k := key{l.ItemLine, l.Party}
		if l.RefundID == 0 {
			orig[k] = l
			order = append(order, k)
		}
		left[k] += l.AmountCents
		leftBase[k] += l.BaseCents
	}
	qty := map[int]int{}
	for _, it := range refund {
		qty[it.Line] += it.Qty
	}
	var out []store.CommissionLine
	for _, k := range order {
		q := qty[k.line]
		if q == 0 {
			continue
		}
		it := &o.Items[k.line-1]
		l := orig[k]
		amount, base := mulDiv(l.AmountCents, int64(q), int64(it.Qty)), int64(q)*it.PriceCents
		if it.RefundedQty+q >= it.Qty {
			// The last units: reverse exactly what is left.
			amount, base = left[k], leftBase[k]
		}
		out = append(out, store.CommissionLine{BrandID: l.BrandID, OrderID: l.OrderID, ItemLine: k.line, Party: l.Party, PartyID: l.PartyID,
			StoreID: l.StoreID, BaseCents: -base, AmountCents: -amount, Rule: "clawback " + l.Rule, SettleDate: date})
	}
	return out
}
