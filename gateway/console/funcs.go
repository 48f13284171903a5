package console

import (
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
}
