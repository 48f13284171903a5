package workflows

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

// Day and Week are the duration units workflows add to Go's: a day is 24
// hours and a week 7 days, not calendar days across a daylight-saving
// change; use a wait with until for calendar alignment.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// maxDuration bounds every duration a workflow writes: ten years.
const maxDuration = 3650 * Day

var durationPartRE = regexp.MustCompile(`^(\d+)([wdhms])`)

// ParseDuration parses a duration as marketers write it: a sequence of
// whole numbers with units w (weeks), d (days), h, m and s, such as 3d,
// 2w, 72h, 90m or 1h30m.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, fmt.Errorf("missing duration: write it like 3d, 72h or 1h30m")
	}
	var total time.Duration
	for s != "" {
		m := durationPartRE.FindStringSubmatch(s)
		if m == nil {
			return 0, durationError(orig)
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > int64(maxDuration/time.Second) {
			return 0, fmt.Errorf("duration %q is too long: at most 3650d", orig)
		}
		unit := map[string]time.Duration{"w": Week, "d": Day, "h": time.Hour, "m": time.Minute, "s": time.Second}[m[2]]
		if time.Duration(n) > maxDuration/unit {
			return 0, fmt.Errorf("duration %q is too long: at most 3650d", orig)
		}
		total += time.Duration(n) * unit
		if total > maxDuration {
			return 0, fmt.Errorf("duration %q is too long: at most 3650d", orig)
		}
		s = s[len(m[0]):]
	}
	return total, nil
}

var (
	friendlyDurationRE = regexp.MustCompile(`^(\d+)\s*([\p{L}]+)\.?$`)
	unitWords          = map[string]string{
		"w": "w", "wk": "w", "wks": "w", "week": "w", "weeks": "w", "周": "w", "星期": "w", "个星期": "w",
		"d": "d", "day": "d", "days": "d", "天": "d", "日": "d",
		"h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "小时": "h", "个小时": "h", "时": "h",
		"m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m", "分钟": "m", "分": "m",
		"s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s", "秒": "s",
	}
)

// durationError explains a bad duration, suggesting the short form of a
// written-out one: "3 days" → 3d.
func durationError(s string) error {
	t := strings.TrimSpace(s)
	if _, err := strconv.Atoi(t); err == nil {
		return fmt.Errorf("duration %q has no unit: write %sd for days, %sh for hours or %sm for minutes", s, t, t, t)
	}
	if m := friendlyDurationRE.FindStringSubmatch(t); m != nil {
		if u, ok := unitWords[strings.ToLower(m[2])]; ok {
			return fmt.Errorf("bad duration %q (did you mean %s%s?)", s, m[1], u)
		}
	}
	return fmt.Errorf("bad duration %q: write a whole number and a unit, like 3d, 2w, 72h, 90m or 1h30m", s)
}

// formatDuration writes d in the units ParseDuration reads: 3d, 1h30m.
// FormatDuration writes d as workflow files do: 3d, 1d12h, 90m is 1h30m.
func FormatDuration(d time.Duration) string { return formatDuration(d) }

func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{Day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.d
		}
	}
	return b.String()
}

// Clock is a time of day in minutes after midnight, in whatever zone the
// rule it belongs to is read in.
type Clock int

// String formats c as HH:MM.
func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

var clockRE = regexp.MustCompile(`^(\d{1,2}):(\d{2})$`)

func parseClock(s string) (Clock, bool) {
	m := clockRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, false
	}
	h, _ := strconv.Atoi(m[1])
	min, _ := strconv.Atoi(m[2])
	if h > 23 || min > 59 {
		return 0, false
	}
	return Clock(h*60 + min), true
}

// Window is a daily span of time from Start up to (not including) End.
// When End is before Start it runs across midnight: 21:00-09:00.
type Window struct {
	Start Clock
	End   Clock
}

// Contains reports whether the time of day c falls in the window.
func (w Window) Contains(c Clock) bool {
	if w.Start <= w.End {
		return c >= w.Start && c < w.End
	}
	return c >= w.Start || c < w.End
}

// String formats w as HH:MM-HH:MM.
func (w Window) String() string { return w.Start.String() + "-" + w.End.String() }

var windowSepRE = regexp.MustCompile(`\s*[-–~～至到]\s*`)

func parseWindow(s string) (Window, error) {
	parts := windowSepRE.Split(strings.TrimSpace(s), -1)
	if len(parts) != 2 {
		return Window{}, fmt.Errorf("%q is not a span of time: write it like 21:00-09:00", s)
	}
	start, ok1 := parseClock(parts[0])
	end, ok2 := parseClock(parts[1])
	if !ok1 || !ok2 {
		return Window{}, fmt.Errorf("%q is not a span of time: write it like 21:00-09:00, hours 00-23 and minutes 00-59", s)
	}
	if start == end {
		return Window{}, fmt.Errorf("%q starts and ends at the same time", s)
	}
	return Window{Start: start, End: end}, nil
}

var weekdayNames = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

var weekdayList = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

func parseWeekday(s string) (time.Weekday, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if d, ok := weekdayNames[s]; ok {
		return d, true
	}
	d, ok := weekdayNames[strings.TrimSuffix(s, "s")] // mondays
	return d, ok
}

// Period is how often a schedule fires.
type Period string

// Periods of a Schedule.
const (
	Hourly  Period = "hour"
	Daily   Period = "day"
	Weekly  Period = "week"
	Monthly Period = "month"
)

// Schedule is when a schedule trigger fires, in its time zone.
type Schedule struct {
	// Spec is the schedule as written: "every day at 10:00".
	Spec  string
	Every Period
	// Weekdays are the days a Weekly schedule fires on.
	Weekdays []time.Weekday
	// Day is the day of the month a Monthly schedule fires on, 1 to 28.
	Day int
	// At is the time of day it fires (not for Hourly, which fires on the
	// hour).
	At       Clock
	Location *time.Location
}

var (
	scheduleDailyRE   = regexp.MustCompile(`^every day at (\S+)$`)
	scheduleWeeklyRE  = regexp.MustCompile(`^every ([a-z, ]+?) at (\S+)$`)
	scheduleMonthlyRE = regexp.MustCompile(`^every month on (?:day |the )?(\d{1,2})(?:st|nd|rd|th)? at (\S+)$`)
	spacesRE          = regexp.MustCompile(`\s+`)
)

const scheduleForms = `write it like "every day at 10:00", "every monday at 09:30", "every weekday at 10:00", "every month on day 1 at 10:00" or "every hour"`

// parseSchedule reads the schedule forms of a trigger.
func parseSchedule(spec string, loc *time.Location) (*Schedule, error) {
	s := strings.ToLower(strings.TrimSpace(spacesRE.ReplaceAllString(spec, " ")))
	sched := &Schedule{Spec: spec, Location: loc}
	at := func(v string) error {
		c, ok := parseClock(v)
		if !ok {
			return fmt.Errorf("bad time of day %q in schedule %q: write it like 10:00", v, spec)
		}
		sched.At = c
		return nil
	}
	switch {
	case s == "every hour":
		sched.Every = Hourly
		return sched, nil
	case s == "every day" || s == "daily":
		return nil, fmt.Errorf("schedule %q does not say when: write it like \"every day at 10:00\"", spec)
	}
	if m := scheduleDailyRE.FindStringSubmatch(s); m != nil {
		sched.Every = Daily
		return sched, at(m[1])
	}
	if m := scheduleMonthlyRE.FindStringSubmatch(s); m != nil {
		day, _ := strconv.Atoi(m[1])
		if day < 1 || day > 28 {
			return nil, fmt.Errorf("schedule %q: use a day of the month from 1 to 28, which every month has", spec)
		}
		sched.Every, sched.Day = Monthly, day
		return sched, at(m[2])
	}
	if m := scheduleWeeklyRE.FindStringSubmatch(s); m != nil {
		sched.Every = Weekly
		seen := map[time.Weekday]bool{}
		for _, name := range strings.FieldsFunc(strings.ReplaceAll(m[1], " and ", ","), func(r rune) bool { return r == ',' }) {
			name = strings.TrimSpace(name)
			days := []time.Weekday{}
			switch name {
			case "weekday":
				days = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
			default:
				d, ok := parseWeekday(name)
				if !ok {
					names := []string{"weekday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
					if sug := yamlcheck.Suggest(name, names); sug != "" {
						return nil, fmt.Errorf("schedule %q: unknown day %q (did you mean %q?)", spec, name, sug)
					}
					return nil, fmt.Errorf("bad schedule %q: %s", spec, scheduleForms)
				}
				days = append(days, d)
			}
			for _, d := range days {
				if !seen[d] {
					seen[d] = true
					sched.Weekdays = append(sched.Weekdays, d)
				}
			}
		}
		if len(sched.Weekdays) == 0 {
			return nil, fmt.Errorf("bad schedule %q: %s", spec, scheduleForms)
		}
		return sched, at(m[2])
	}
	return nil, fmt.Errorf("bad schedule %q: %s", spec, scheduleForms)
}

// wallTime returns the time of day c on the given date in loc. A time of
// day that a daylight-saving jump skips is read with the offset in force
// before the jump, so 02:30 on a night clocks go from 02:00 to 03:00 is
// 03:30 daylight time: the same instant every time.
func wallTime(y int, m time.Month, d int, c Clock, loc *time.Location) time.Time {
	h, min := int(c)/60, int(c)%60
	t := time.Date(y, m, d, h, min, 0, 0, loc)
	if t.Hour() == h && t.Minute() == min {
		return t
	}
	_, off := t.Add(-12 * time.Hour).Zone()
	day := time.Date(y, m, d, 12, 0, 0, 0, loc) // the date, normalized
	return time.Date(day.Year(), day.Month(), day.Day(), h, min, 0, 0, time.UTC).Add(-time.Duration(off) * time.Second).In(loc)
}

// Next returns the first time the schedule fires after t. Times of day
// are read in the schedule's zone; one skipped by a daylight-saving jump
// fires as far after the jump as it was meant to be after its start
// (02:30 fires at 03:30 daylight time).
func (s *Schedule) Next(t time.Time) time.Time {
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	local := t.In(loc)
	y, m, d := local.Date()
	if s.Every == Hourly {
		c := time.Date(y, m, d, local.Hour(), 0, 0, 0, loc)
		for !c.After(t) {
			c = c.Add(time.Hour)
		}
		return c
	}
	for i := 0; i <= 62; i++ {
		c := wallTime(y, m, d+i, s.At, loc)
		if !c.After(t) {
			continue
		}
		switch s.Every {
		case Daily:
			return c
		case Weekly:
			for _, wd := range s.Weekdays {
				if c.Weekday() == wd {
					return c
				}
			}
		case Monthly:
			if c.Day() == s.Day {
				return c
			}
		}
	}
	return time.Time{}
}

// commonZones are the zones "did you mean" suggests for a misspelt one.
var commonZones = []string{
	"Asia/Shanghai", "Asia/Hong_Kong", "Asia/Macau", "Asia/Taipei", "Asia/Urumqi", "Asia/Tokyo",
	"Asia/Seoul", "Asia/Singapore", "Asia/Kuala_Lumpur", "Asia/Bangkok", "Asia/Jakarta",
	"Asia/Manila", "Asia/Ho_Chi_Minh", "Asia/Dubai", "Asia/Kolkata", "Europe/London",
	"Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Europe/Rome", "Europe/Moscow",
	"America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
	"America/Toronto", "America/Vancouver", "America/Sao_Paulo", "Australia/Sydney",
	"Australia/Melbourne", "Pacific/Auckland", "UTC",
}

// loadZone loads an IANA time zone by name.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || strings.ContainsAny(name, "\\\x00") || strings.Contains(name, "..") {
		return nil, zoneError(name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, zoneError(name)
	}
	return loc, nil
}

// cityZones are zones marketers name by a city: Beijing is in
// Asia/Shanghai.
var cityZones = map[string]string{
	"beijing": "Asia/Shanghai", "shanghai": "Asia/Shanghai", "shenzhen": "Asia/Shanghai",
	"guangzhou": "Asia/Shanghai", "chengdu": "Asia/Shanghai", "hangzhou": "Asia/Shanghai",
	"china": "Asia/Shanghai", "cst": "Asia/Shanghai", "北京": "Asia/Shanghai", "上海": "Asia/Shanghai",
	"hong kong": "Asia/Hong_Kong", "hongkong": "Asia/Hong_Kong", "taipei": "Asia/Taipei",
	"tokyo": "Asia/Tokyo", "seoul": "Asia/Seoul", "singapore": "Asia/Singapore",
	"london": "Europe/London", "paris": "Europe/Paris", "new york": "America/New_York",
}

func zoneError(name string) error {
	if z, ok := cityZones[strings.ToLower(strings.TrimSpace(name))]; ok {
		return fmt.Errorf("unknown time zone %q (did you mean %q?)", name, z)
	}
	if s := yamlcheck.Suggest(name, commonZones); s != "" {
		return fmt.Errorf("unknown time zone %q (did you mean %q?)", name, s)
	}
	return fmt.Errorf("unknown time zone %q: use an IANA name such as Asia/Shanghai", name)
}
