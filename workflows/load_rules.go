package workflows

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scrmgw/scrmgw/templates/yamlcheck"
)

func defaultSendRules() SendRules {
	q := DefaultQuietHours
	return SendRules{TimeZone: ZoneMember, QuietHours: &q, Caps: Caps{WhenCapped: CapDelay}}
}

func (d *decoder) sendRules(n *yaml.Node, r *SendRules) {
	known := []string{"time_zone", "quiet_hours", "send_window", "send_days", "caps"}
	f := d.Fields(n, "send_rules", "a mapping of send rules", known)
	if f == nil {
		return
	}
	if p, ok := f["time_zone"]; ok {
		if s, ok := d.Str(p.Val, "send_rules.time_zone", "member, store or a time zone such as Asia/Shanghai"); ok {
			switch s {
			case ZoneMember, ZoneStore:
				r.TimeZone = s
			default:
				if _, err := loadZone(s); err != nil {
					d.Errorf(p.Val, "send_rules.time_zone", "%v; or use member or store", err)
				} else {
					r.TimeZone = s
				}
			}
		}
	}
	window := func(k string) (*Window, bool) {
		p, ok := f[k]
		if !ok {
			return nil, false
		}
		s, ok := d.Str(p.Val, "send_rules."+k, "a span of time such as 21:00-09:00")
		if !ok {
			return nil, true
		}
		if k == "quiet_hours" && s == "none" {
			return nil, true
		}
		w, err := parseWindow(s)
		if err != nil {
			d.Errorf(p.Val, "send_rules."+k, "bad %s: %v", strings.ReplaceAll(k, "_", " "), err)
			return nil, true
		}
		return &w, true
	}
	if w, ok := window("quiet_hours"); ok {
		r.QuietHours = w
	}
	r.SendWindow, _ = window("send_window")
	if p, ok := f["send_days"]; ok {
		r.SendDays = d.sendDays(p.Val)
	}
	if p, ok := f["caps"]; ok {
		d.caps(p.Val, &r.Caps)
	}
	// The rules must leave some time to send in any week.
	if r.SendTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC).IsZero() {
		d.Errorf(n, "send_rules", "these rules leave no time to send: the send window, send days and quiet hours never overlap")
	}
}

func (d *decoder) sendDays(n *yaml.Node) []time.Weekday {
	if n.Kind == yaml.ScalarNode && n.Value == "weekdays" {
		return []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
	}
	if n.Kind == yaml.ScalarNode && n.Value == "weekends" {
		return []time.Weekday{time.Saturday, time.Sunday}
	}
	if n.Kind != yaml.SequenceNode {
		d.Errorf(n, "send_rules.send_days", "expected a list of days such as [mon, tue, wed, thu, fri], or weekdays or weekends; got %s", yamlcheck.Describe(n))
		return nil
	}
	var days []time.Weekday
	for i, c := range n.Content {
		path := fmt.Sprintf("send_rules.send_days[%d]", i)
		s, ok := d.Str(c, path, "a day such as mon")
		if !ok {
			continue
		}
		wd, ok := parseWeekday(s)
		if !ok {
			d.Errorf(c, path, "unknown day %q%s", s, yamlcheck.DidYouMean(strings.ToLower(s), weekdayList))
			continue
		}
		if !slices.Contains(days, wd) {
			days = append(days, wd)
		}
	}
	return days
}

func (d *decoder) caps(n *yaml.Node, c *Caps) {
	f := d.Fields(n, "send_rules.caps", "a mapping with per_day, per_week and when_capped", []string{"per_day", "per_week", "when_capped"})
	if f == nil {
		return
	}
	count := func(k string) int {
		p, ok := f[k]
		if !ok {
			return 0
		}
		path := "send_rules.caps." + k
		s, ok := d.Str(p.Val, path, "a number of messages")
		if !ok {
			return 0
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			d.Errorf(p.Val, path, "%s must be a whole number of messages, got %q", k, s)
			return 0
		}
		if v < 1 || v > 1000 {
			d.Errorf(p.Val, path, "%s must be from 1 to 1000 (leave it out for no cap), got %d", k, v)
			return 0
		}
		return v
	}
	c.PerDay = count("per_day")
	c.PerWeek = count("per_week")
	if c.PerDay > 0 && c.PerWeek > 0 && c.PerWeek < c.PerDay {
		d.Errorf(f["per_week"].Val, "send_rules.caps.per_week", "per_week (%d) is less than per_day (%d): a week would never reach the daily cap", c.PerWeek, c.PerDay)
	}
	if p, ok := f["when_capped"]; ok {
		if s, ok := d.OneOf(p.Val, "send_rules.caps.when_capped", "cap action", []string{string(CapDelay), string(CapSkip)}); ok {
			c.WhenCapped = CapAction(s)
		}
	}
}
