package bots

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Hours are a store's daily opening hours: one or more spans of the day,
// the same every day. The zero Hours are always open.
type Hours struct {
	spans []span
}

// span is open from start to end, in minutes after midnight; an end at or
// before the start closes the next day (22:00-02:00).
type span struct{ start, end int }

// hoursPattern finds "10:00-22:00" in free text: H:MM or HH:MM (a
// full-width colon too), a dash, tilde, "至", "到" or "to" between, and an
// optional "次日"/"翌日" (next day) before the end.
var hoursPattern = regexp.MustCompile(`(\d{1,2})\s*[:：]\s*(\d{2})\s*(?:-|~|～|－|–|—|至|到|to)\s*(?:次日|翌日)?\s*(\d{1,2})\s*[:：]\s*(\d{2})`)

// ParseHours reads a store's opening_hours text, such as "10:00-22:00",
// "10:00 - 14:00, 17:00 - 22:00", "周一至周日 9:30~21:30" or "22:00-次日02:00".
// Day names are ignored (every day is alike). Text it cannot read (empty,
// "24小时", a bad time) is always open: a reminder is never held back by
// hours nobody can read.
func ParseHours(text string) Hours {
	var h Hours
	for _, m := range hoursPattern.FindAllStringSubmatch(text, -1) {
		start, ok1 := minuteOfDay(m[1], m[2])
		end, ok2 := minuteOfDay(m[3], m[4])
		if !ok1 || !ok2 {
			return Hours{}
		}
		if start%(24*60) == end%(24*60) {
			return Hours{} // 00:00-24:00, 0:00-0:00: round the clock
		}
		h.spans = append(h.spans, span{start: start % (24 * 60), end: end % (24 * 60)})
	}
	return h
}

func minuteOfDay(hh, mm string) (int, bool) {
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if err1 != nil || err2 != nil || m > 59 || h > 24 || h == 24 && m != 0 {
		return 0, false
	}
	return h*60 + m, true
}

// AlwaysOpen reports whether the hours never close.
func (h Hours) AlwaysOpen() bool { return len(h.spans) == 0 }

// String shows the spans, "10:00-22:00".
func (h Hours) String() string {
	if h.AlwaysOpen() {
		return "always open"
	}
	parts := make([]string, len(h.spans))
	for i, s := range h.spans {
		parts[i] = hhmm(s.start) + "-" + hhmm(s.end)
	}
	return strings.Join(parts, ",")
}

func hhmm(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

// Next returns t when the store is open at t, and otherwise the next
// time it opens. The hours are read in t's location: pass a time in the
// store's zone.
func (h Hours) Next(t time.Time) time.Time {
	if h.AlwaysOpen() {
		return t
	}
	loc := t.Location()
	var next time.Time
	for day := -1; day <= 1; day++ {
		for _, s := range h.spans {
			open := at(t, day, s.start, loc)
			endDay := day
			if s.end <= s.start {
				endDay++
			}
			closes := at(t, endDay, s.end, loc)
			if !t.Before(open) && t.Before(closes) {
				return t
			}
			if open.After(t) && (next.IsZero() || open.Before(next)) {
				next = open
			}
		}
	}
	return next
}

// at is minute min of the day that is days after t's, in loc; built with
// time.Date, so a daylight-saving change shifts the hour as a wall clock
// would.
func at(t time.Time, days, min int, loc *time.Location) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day()+days, min/60, min%60, 0, 0, loc)
}
