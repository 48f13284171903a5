package ledger

import (
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"slices"
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

// Rule pays the parties on the items of a category ("*": any), in the
// stores (or the stores of the distributors) it names, or in any store
// when it names none.
type Rule struct {
	Category string `yaml:"category"`
	// Stores and Distributors narrow the rule to orders credited to
	// these stores, or to stores of these distributors.
	Stores       []string `yaml:"stores"`
	Distributors []string `yaml:"distributors"`
	Guide        Rate     `yaml:"guide"`
	Store        Rate     `yaml:"store"`
	Distributor  Rate     `yaml:"distributor"`
}

// specificity ranks a matching rule: a store match beats a distributor
// match, which beats a category match, which beats "*".
func (r *Rule) specificity() int {
	n := 0
	if len(r.Stores) > 0 {
		n += 4
	}
	if len(r.Distributors) > 0 {
		n += 2
	}
	if r.Category != "*" {
		n++
	}
	return n
}

// matches reports whether the rule applies to an item of category sold
// in store, of distributor.
func (r *Rule) matches(category, store, distributor string) bool {
	if r.Category != "*" && r.Category != category {
		return false
	}
	if len(r.Stores) > 0 && !slices.Contains(r.Stores, store) {
		return false
	}
	if len(r.Distributors) > 0 && (distributor == "" || !slices.Contains(r.Distributors, distributor)) {
		return false
	}
	return true
}

// name is how a line names the rule that paid it: the category, with
// the store or distributor it is narrowed to.
func (r *Rule) name(store, distributor string) string {
	s := r.Category
	if len(r.Stores) > 0 {
		s = "store " + store + " " + s
	} else if len(r.Distributors) > 0 {
		s = "distributor " + distributor + " " + s
	}
	return s
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
			for j, id := range rule.Stores {
				if err := store.ValidateID("store", id); err != nil {
					return nil, fmt.Errorf("%s: brands.%s[%d].stores[%d]: %v", name, brand, i, j, err)
				}
			}
			for j, id := range rule.Distributors {
				if err := store.ValidateID("distributor", id); err != nil {
					return nil, fmt.Errorf("%s: brands.%s[%d].distributors[%d]: %v", name, brand, i, j, err)
				}
			}
		}
	}
	return &r, nil
}

// rule is the brand's most specific rule for an item of category sold
// in store (of distributor): a rule naming the store beats one naming
// the distributor, which beats one naming the category, which beats
// "*"; of equally specific rules the first in the file wins.
func (r *Rules) rule(brand, category, store, distributor string) (*Rule, string) {
	rules, ok := r.Brands[brand]
	if !ok {
		rules = r.Brands["*"]
	}
	var best *Rule
	for i := range rules {
		if rules[i].matches(category, store, distributor) && (best == nil || rules[i].specificity() > best.specificity()) {
			best = &rules[i]
		}
	}
	if best == nil {
		return nil, ""
	}
	return best, best.name(store, distributor)
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
		rule, cat := r.rule(o.BrandID, it.Category, p.Store, p.Distributor)
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
