package importer

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/scrmgw/scrmgw/events"
	"github.com/scrmgw/scrmgw/store"
)

// Kinds of import.
const (
	KindStores   = "stores"
	KindGuides   = "guides"
	KindMembers  = "members"
	KindProducts = "products"
	KindOrders   = "orders"
)

// Columns lists each kind's columns; the header row names them, in any
// order. Required columns are marked in the README.
var Columns = map[string][]string{
	KindStores:   {"id", "name", "brands", "lat", "lng", "address", "time_zone", "opening_hours", "active", "distributor"},
	KindGuides:   guideColumns(),
	KindMembers:  {"phone", "name", "brand", "crm_id", "level", "points"},
	KindProducts: {"brand", "sku", "name", "category", "price", "replenish_days"},
	KindOrders: {"order_id", "brand", "phone", "crm_id", "store", "guide", "channel", "placed_at", "sku", "name", "category", "qty", "price",
		"replenish_days"},
}

// IdentityColumn starts the name of a guides column that holds the
// guides' ids on a channel instance: "id:wecom", "id:wecom:acme",
// "id:chirp". The legacy columns (store.LegacyGuideIDFields) are aliases
// of "id:" and their channel.
const IdentityColumn = "id:"

func guideColumns() []string {
	cols := []string{"id", "store_id", "name"}
	for _, f := range store.LegacyGuideIDFields {
		cols = append(cols, f.Field)
	}
	return append(cols, "capacity", "active")
}

var required = map[string][]string{
	KindStores:   {"id", "name", "brands", "lat", "lng"},
	KindGuides:   {"id", "store_id", "name"},
	KindMembers:  {},
	KindProducts: {"sku", "name", "price"},
	KindOrders:   {"order_id", "sku", "qty", "price"},
}

// RowError is one refused row.
type RowError struct {
	// Line is the line number in the file (the header is line 1).
	Line   int
	Reason string
}

func (e RowError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Options tune an import.
type Options struct {
	// SkipInvalid writes the valid rows even when some are bad.
	SkipInvalid bool
	// Brand is the brand of member rows without a brand column.
	Brand string
	// Progress, when set, is told how many rows are done of how many.
	Progress func(done, total int)
	// Orders writes one imported order (orders imports only); fresh is
	// false for an order recorded before.
	Orders func(ctx context.Context, brand string, order events.PurchaseData) (fresh bool, err error)
}

// Result says what an import did.
type Result struct {
	Rows    int
	Written int
	Invalid []RowError
}

// batchSize is how many rows are written per transaction.
const batchSize = 500

// Import reads a CSV of the kind and writes it.
func Import(ctx context.Context, s *store.Store, kind string, r io.Reader, opts Options) (*Result, error) {
	cols, ok := Columns[kind]
	if !ok {
		return nil, fmt.Errorf("unknown import kind %q (want stores, guides, members, products or orders)", kind)
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("the file is empty: want a header row naming the columns")
	}
	if err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	index := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if kind == KindGuides && strings.HasPrefix(h, IdentityColumn) {
			if h == IdentityColumn {
				return nil, fmt.Errorf("line 1: column %q names no channel: want %s<channel>, e.g. %swecom", h, IdentityColumn, IdentityColumn)
			}
		} else if !slices.Contains(cols, h) {
			more := ""
			if kind == KindGuides {
				more = ", " + IdentityColumn + "<channel>"
			}
			return nil, fmt.Errorf("line 1: unknown column %q (columns: %s%s)", h, strings.Join(cols, ", "), more)
		}
		if _, dup := index[h]; dup {
			return nil, fmt.Errorf("line 1: column %q appears twice", h)
		}
		index[h] = i
	}
	for _, c := range required[kind] {
		if _, ok := index[c]; !ok {
			return nil, fmt.Errorf("line 1: required column %q is missing", c)
		}
	}
	if kind == KindMembers || kind == KindOrders {
		if _, ok := index["phone"]; !ok {
			if _, ok := index["crm_id"]; !ok {
				return nil, fmt.Errorf("line 1: a %s file needs a phone or a crm_id column", kind)
			}
		}
	}
	if kind == KindOrders && opts.Orders == nil {
		return nil, errors.New("importing orders needs Options.Orders")
	}
	if kind == KindMembers || kind == KindProducts || kind == KindOrders {
		if _, ok := index["brand"]; !ok && opts.Brand == "" {
			return nil, errors.New("line 1: no brand column: give the brand with --brand")
		}
	}
	var records []record
	res := &Result{}
	seen := map[string]int{}
	for {
		fields, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				res.Invalid = append(res.Invalid, RowError{Line: pe.Line, Reason: pe.Err.Error()})
				continue
			}
			return nil, fmt.Errorf("reading CSV: %w", err)
		}
		res.Rows++
		get := func(c string) string {
			if i, ok := index[c]; ok && i < len(fields) {
				return strings.TrimSpace(fields[i])
			}
			return ""
		}
		if len(fields) != len(header) {
			res.Invalid = append(res.Invalid, RowError{Line: line, Reason: fmt.Sprintf("has %d fields, the header has %d", len(fields), len(header))})
			continue
		}
		rec, key, err := parse(kind, header, get, opts)
		if err != nil {
			res.Invalid = append(res.Invalid, RowError{Line: line, Reason: flatten(err)})
			continue
		}
		if first, dup := seen[key]; dup && key != "" {
			res.Invalid = append(res.Invalid, RowError{Line: line, Reason: fmt.Sprintf("duplicate of line %d", first)})
			continue
		}
		seen[key] = line
		rec.line = line
		records = append(records, rec)
	}
	records, bad, err := checkReferences(ctx, s, kind, records)
	if err != nil {
		return nil, err
	}
	res.Invalid = append(res.Invalid, bad...)
	var orders []order
	if kind == KindOrders {
		orders, bad = groupOrders(records)
		res.Invalid = append(res.Invalid, bad...)
	}
	if len(res.Invalid) > 0 && !opts.SkipInvalid {
		slices.SortFunc(res.Invalid, func(a, b RowError) int { return a.Line - b.Line })
		return res, nil
	}
	if kind == KindOrders {
		err := writeOrders(ctx, orders, opts, res)
		slices.SortFunc(res.Invalid, func(a, b RowError) int { return a.Line - b.Line })
		return res, err
	}
	total := len(records)
	for start := 0; start < total; start += batchSize {
		batch := records[start:min(start+batchSize, total)]
		written, bad, err := write(ctx, s, kind, batch)
		if err != nil {
			return res, err
		}
		res.Written += written
		res.Invalid = append(res.Invalid, bad...)
		if opts.Progress != nil {
			opts.Progress(start+len(batch), total)
		}
	}
	slices.SortFunc(res.Invalid, func(a, b RowError) int { return a.Line - b.Line })
	return res, nil
}

// checkReferences refuses rows naming brands or stores that do not exist,
// before anything is written, so a refused import writes nothing.
func checkReferences(ctx context.Context, s *store.Store, kind string, records []record) ([]record, []RowError, error) {
	table := "brands"
	refs := func(r record) []string {
		switch kind {
		case KindStores:
			return r.store.BrandIDs
		case KindGuides:
			return []string{r.guide.StoreID}
		case KindProducts:
			return []string{r.product.BrandID}
		case KindOrders:
			return []string{r.orderLine.brand}
		}
		return []string{r.member.BrandID}
	}
	if kind == KindGuides {
		table = "stores"
	}
	set := map[string]bool{}
	for _, r := range records {
		for _, id := range refs(r) {
			set[id] = true
		}
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	missing, err := s.MissingIDs(ctx, table, ids)
	if err != nil {
		return nil, nil, err
	}
	if len(missing) == 0 {
		return records, nil, nil
	}
	gone := map[string]bool{}
	for _, id := range missing {
		gone[id] = true
	}
	var bad []RowError
	kept := records[:0]
	for _, r := range records {
		var unknown []string
		for _, id := range refs(r) {
			if gone[id] {
				unknown = append(unknown, id)
			}
		}
		if len(unknown) > 0 {
			bad = append(bad, RowError{Line: r.line, Reason: fmt.Sprintf("unknown %s %q", strings.TrimSuffix(table, "s"), strings.Join(unknown, ", "))})
			continue
		}
		kept = append(kept, r)
	}
	return kept, bad, nil
}

// record is one parsed row.
type record struct {
	line      int
	store     store.RetailStore
	guide     store.Guide
	member    store.NewMember
	product   store.Product
	orderLine orderLine
	level     string
	points    *int64
}

func parse(kind string, header []string, get func(string) string, opts Options) (record, string, error) {
	var r record
	switch kind {
	case KindStores:
		lat, err1 := parseFloat("lat", get("lat"))
		lng, err2 := parseFloat("lng", get("lng"))
		active, err3 := parseBool("active", get("active"))
		if err := errors.Join(err1, err2, err3); err != nil {
			return r, "", err
		}
		var brands []string
		for _, b := range strings.Split(get("brands"), ";") {
			if b = strings.TrimSpace(b); b != "" {
				brands = append(brands, b)
			}
		}
		r.store = store.RetailStore{ID: get("id"), Name: get("name"), BrandIDs: brands, Lat: lat, Lng: lng, Address: get("address"),
			TimeZone: get("time_zone"), OpeningHours: get("opening_hours"), Active: active, Distributor: get("distributor")}
		return r, r.store.ID, r.store.Validate()
	case KindProducts:
		brand := get("brand")
		if brand == "" {
			brand = opts.Brand
		}
		price, err := events.ParseMoney(get("price"))
		if err != nil {
			return r, "", fmt.Errorf("price: %v", err)
		}
		days := 0
		if v := get("replenish_days"); v != "" {
			if days, err = strconv.Atoi(v); err != nil {
				return r, "", fmt.Errorf("replenish_days: want a whole number of days, got %q", v)
			}
		}
		r.product = store.Product{BrandID: brand, SKU: get("sku"), Name: get("name"), Category: get("category"), PriceCents: int64(price),
			ReplenishDays: days}
		return r, brand + "/" + r.product.SKU, store.ValidateProduct(&r.product)
	case KindOrders:
		ol, err := parseOrderLine(get, opts)
		r.orderLine = ol
		return r, "", err
	case KindGuides:
		capacity := 0
		if v := get("capacity"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return r, "", fmt.Errorf("capacity: want a whole number, got %q", v)
			}
			capacity = n
		}
		active, err := parseBool("active", get("active"))
		if err != nil {
			return r, "", err
		}
		r.guide = store.Guide{ID: get("id"), StoreID: get("store_id"), Name: get("name"), Capacity: capacity, Active: active}
		r.guide.Identities = guideIdentities(header, get)
		return r, r.guide.ID, r.guide.Validate()
	case KindMembers:
		brand := get("brand")
		if brand == "" {
			brand = opts.Brand
		}
		r.member = store.NewMember{Phone: get("phone"), Name: get("name"), BrandID: brand}
		key := ""
		if p := get("phone"); p != "" {
			e164, err := store.NormalizePhone(p)
			if err != nil {
				return r, "", fmt.Errorf("phone: %v", err)
			}
			key = "phone:" + e164
		}
		if id := get("crm_id"); id != "" {
			r.member.Identities = []store.Identity{{Channel: "crm:" + brand, ExternalID: id}}
			if key == "" {
				key = "crm:" + id
			}
		}
		if key == "" {
			return r, "", errors.New("phone or crm_id is required")
		}
		if err := store.ValidateID("brand", brand); err != nil {
			return r, "", err
		}
		r.level = get("level")
		if v := get("points"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return r, "", fmt.Errorf("points: want a whole number of 0 or more, got %q", v)
			}
			r.points = &n
		}
		return r, key, nil
	}
	return r, "", fmt.Errorf("unknown kind %q", kind)
}

// write upserts a batch; rows the database refuses (an unknown brand or
// store) are returned as invalid, the rest written.
func write(ctx context.Context, s *store.Store, kind string, batch []record) (int, []RowError, error) {
	switch kind {
	case KindStores:
		rows := make([]store.RetailStore, len(batch))
		for i, r := range batch {
			rows[i] = r.store
		}
		return retryRows(batch, s.UpsertRetailStores, ctx, rows)
	case KindGuides:
		rows := make([]store.Guide, len(batch))
		for i, r := range batch {
			rows[i] = r.guide
		}
		return retryRows(batch, s.UpsertGuides, ctx, rows)
	case KindProducts:
		rows := make([]store.Product, len(batch))
		for i, r := range batch {
			rows[i] = r.product
		}
		return retryRows(batch, s.UpsertProducts, ctx, rows)
	case KindMembers:
		var bad []RowError
		written := 0
		for _, r := range batch {
			m, _, err := s.EnsureMember(ctx, r.member)
			if err == nil && (r.level != "" || r.points != nil) {
				err = s.SetMembership(ctx, m.ID, r.member.BrandID, r.level, r.points)
			}
			if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrConflict) {
				bad = append(bad, RowError{Line: r.line, Reason: flatten(err)})
				continue
			}
			if err != nil {
				return written, bad, fmt.Errorf("line %d: %w", r.line, err)
			}
			written++
		}
		return written, bad, nil
	}
	return 0, nil, fmt.Errorf("unknown kind %q", kind)
}

// retryRows writes a batch in one transaction; when the database refuses
// one row, that row is reported and the rest written again.
func retryRows[T any](batch []record, upsert func(context.Context, []T) error, ctx context.Context, rows []T) (int, []RowError, error) {
	var bad []RowError
	for len(rows) > 0 {
		err := upsert(ctx, rows)
		if err == nil {
			return len(rows), bad, nil
		}
		var re *store.RowError
		switch {
		case errors.As(err, &re) && re.Row < len(rows):
			bad = append(bad, RowError{Line: batch[re.Row].line, Reason: flatten(re.Err)})
			rows = slices.Delete(rows, re.Row, re.Row+1)
			batch = slices.Delete(slices.Clone(batch), re.Row, re.Row+1)
		case errors.Is(err, store.ErrInvalid) && len(rows) == 1:
			bad = append(bad, RowError{Line: batch[0].line, Reason: flatten(err)})
			return 0, bad, nil
		case errors.Is(err, store.ErrConflict):
			return 0, bad, fmt.Errorf("lines %d-%d: %w", batch[0].line, batch[len(batch)-1].line, err)
		default:
			return 0, bad, err
		}
	}
	return 0, bad, nil
}

func parseFloat(field, v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: want a number, got %q", field, v)
	}
	return f, nil
}

func parseBool(field, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "true", "1", "yes", "y":
		return true, nil
	case "false", "0", "no", "n":
		return false, nil
	}
	return false, fmt.Errorf("%s: want true or false, got %q", field, v)
}

func optional(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// flatten joins a (possibly joined) error onto one line.
func flatten(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// guideIdentities reads a guide row's ids: the legacy columns, then the
// id:<channel> ones, in header order; empty cells are no id.
func guideIdentities(header []string, get func(string) string) []store.GuideIdentity {
	var ids []store.GuideIdentity
	for _, f := range store.LegacyGuideIDFields {
		if v := get(f.Field); v != "" {
			ids = append(ids, store.GuideIdentity{Channel: f.Channel, ExternalID: v})
		}
	}
	for _, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if ch, ok := strings.CutPrefix(h, IdentityColumn); ok && ch != "" {
			if v := get(h); v != "" {
				ids = append(ids, store.GuideIdentity{Channel: ch, ExternalID: v})
			}
		}
	}
	return ids
}
