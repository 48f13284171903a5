package console

import (
	"fmt"
	"html/template"
	"time"

	"github.com/scrmgw/scrmgw/workflows"
)

// shownZone is the zone the console shows times in.
var shownZone = func() *time.Location {
	loc, err := time.LoadLocation(workflows.DefaultTimeZone)
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

var funcs = template.FuncMap{
	// when formats a time (or a *time.Time; nil is "") in shownZone.
	"when": func(v any) string {
		var t time.Time
		switch x := v.(type) {
		case time.Time:
			t = x
		case *time.Time:
			if x == nil {
				return ""
			}
			t = *x
		}
		if t.IsZero() {
			return ""
		}
		return t.In(shownZone).Format("2006-01-02 15:04")
	},
	// at formats a dry run's time in its own zone, with seconds.
	"at":    func(t time.Time) string { return t.Format("2006-01-02 15:04:05 MST") },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"short": func(s string, n int) string { return truncateText(s, n) },
	// dict makes a map of key, value pairs, for a template's argument.
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	},
	// yuan formats cents as an amount: 12345 → 123.45.
	"yuan": func(cents int64) string {
		sign := ""
		if cents < 0 {
			sign, cents = "-", -cents
		}
		return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
	},
}
