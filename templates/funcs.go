package templates

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode/utf8"
)

// funcs are the functions templates can call besides text/template's
// builtins. The checker knows their signatures by reflection, so adding one
// here is enough for templates to use it and for load-time checks to cover
// its arguments.
var funcs = template.FuncMap{
	"date":     formatDate,
	"money":    formatMoney,
	"default":  defaultValue,
	"truncate": truncate,
	"join":     join,
	"upper":    strings.ToUpper,
	"lower":    strings.ToLower,
	"trim":     strings.TrimSpace,
}

// builtins are text/template's predefined functions. Their arguments are
// checked by the rules in checker.builtin, not by signature.
var builtins = []string{
	"and", "call", "html", "index", "slice", "js", "len", "not", "or",
	"print", "printf", "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
}

// formatDate formats t with a Go layout ("2006-01-02", "1月2日 15:04",
// "Jan 2"), in zone when one is given (an IANA name such as
// "Asia/Shanghai"), else in t's own location (Data.TimeZone). A zero time
// formats as "", so {{date "1月2日" .Coupon.ExpiresAt | default "长期有效"}}
// words a coupon without expiry.
func formatDate(layout string, t time.Time, zone ...string) (string, error) {
	if len(zone) > 1 {
		return "", fmt.Errorf("date takes at most one time zone, got %d", len(zone))
	}
	if t.IsZero() {
		return "", nil
	}
	if len(zone) == 1 {
		loc, err := loadZone(zone[0])
		if err != nil {
			return "", err
		}
		t = t.In(loc)
	}
	return t.Format(layout), nil
}

// formatMoney formats an amount in fen as yuan with the ¥ sign: ¥128,
// ¥128.50.
func formatMoney(m Money) string {
	s := m.String()
	if strings.HasPrefix(s, "-") {
		return "-¥" + s[1:]
	}
	return "¥" + s
}

// defaultValue returns v, or fallback when v is empty (zero):
// {{.Member.Name | default "会员"}}.
func defaultValue(fallback, v any) any {
	if v == nil {
		return fallback
	}
	rv := reflect.ValueOf(v)
	if rv.IsZero() || (rv.Kind() == reflect.Slice || rv.Kind() == reflect.Map) && rv.Len() == 0 {
		return fallback
	}
	return v
}

// truncate shortens s to at most n characters, ending it with "…" when it
// was cut: {{truncate 20 .Store.Address}}.
func truncate(n int, s string) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// join joins a list of texts with sep: {{join "、" .Order.ItemNames}}.
func join(sep string, list []string) string {
	return strings.Join(list, sep)
}

var zones sync.Map // IANA name → *time.Location

// loadZone loads an IANA time zone, caching it: time.LoadLocation reads
// the zone database on every call.
func loadZone(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("unknown time zone %q: use an IANA name such as Asia/Shanghai", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: use an IANA name such as Asia/Shanghai", name)
	}
	zones.Store(name, loc)
	return loc, nil
}
