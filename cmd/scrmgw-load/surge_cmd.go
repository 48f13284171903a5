package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// surgeMain is `scrmgw-load surge`: the welcome surge of
// docs/performance-surge.md (runSurge), on PostgreSQL and Redis started
// for it (or given), with the scrmgw binary built for it.
func surgeMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c surgeConfig
	fs := newScenarioFlags("surge", stderr)
	fs.IntVar(&c.PerSecond, "rate", 150, "new contacts (add_external_contact callbacks with a welcome code) a second")
	fs.DurationVar(&c.For, "for", 60*time.Second, "how long the surge lasts")
	fs.IntVar(&c.Guides, "guides", 20, "guides of the store the contacts add")
	fs.StringVar(&c.Rate, "send-rate", "", "the gateway's send.rate.wecom (default: the product's)")
	fs.StringVar(&c.CriticalShare, "critical-share", "", "the gateway's send.critical_share (default: the product's)")
	fs.IntVar(&c.Concurrency, "concurrency", 0, "the gateway's queue.concurrency (default: the product's)")
	fs.IntVar(&c.Nudges, "nudges", 0, "members of a nudge campaign (add_msg_template through their guides) under way when the surge starts (0: none)")
	fs.DurationVar(&c.Lead, "lead", 10*time.Second, "how long the campaign runs before the surge starts")
	fs.wecomDelay(&c.DelayMin, &c.DelayMax, "50ms-200ms", "how long the fake WeCom takes over send_welcome_msg, externalcontact/get and add_msg_template (MIN-MAX, uniformly)")
	fs.BoolVar(&c.Windows, "windows", true, "the fake WeCom keeps WeCom's call windows (10,000 calls of an API a minute, 150,000 an hour; 45009 past them)")
	fs.DurationVar(&c.Settle, "settle", 40*time.Second, "wait at most this long after the last callback for every welcome to be sent or expire")
	if err := fs.parse(args, stderr, &c.gatewayRun, true); err != nil {
		return err
	}
	if c.PerSecond < 1 || c.For < time.Second || c.Guides < 1 {
		return fmt.Errorf("--rate, --guides must be at least 1 and --for at least 1s")
	}
	h := fs.harness(stdout, stderr)
	defer h.cleanup()
	if err := fs.prepare(ctx, h, &c.gatewayRun); err != nil {
		return err
	}
	started := time.Now().UTC()
	res, err := runSurge(ctx, c)
	if err != nil {
		return err
	}
	rate := c.Rate
	if rate == "" {
		rate = "default"
	}
	w := reportLine(stdout, 28)
	fmt.Fprintf(stdout, "\nWelcome surge, %s: %d new contacts/s for %s, send.rate.wecom %s, fake WeCom %s per call, windows %v\n",
		started.Format("2006-01-02 15:04 MST"), c.PerSecond, c.For, rate, fs.delays, c.Windows)
	w("load average", "%s at the start, %s at the end (%s)", res.LoadStart, res.LoadEnd, cpuModel())
	w("callbacks", "%d sent in %s, %d answered success, p99 answer %s", res.Contacts, res.SentFor.Round(time.Millisecond), res.Acked, fmtDur(res.AckP99))
	w("welcomes at WeCom", "%d (%.1f%%), %d within 20 s of the callback; %.1f/s, most in one second %d", res.Welcomes,
		100*float64(res.Welcomes)/float64(max(res.Contacts, 1)), res.Within20s, res.WelcomesPerSec, res.MostInSecond)
	w("callback to welcome", "p50 %s, p95 %s, p99 %s, max %s", fmtDur(res.P50), fmtDur(res.P95), fmtDur(res.P99), fmtDur(res.Max))
	w("contact processed", "p50 %s, p99 %s after its callback was recorded (member, binding, event, welcome queued)", fmtDur(res.ProcessP50), fmtDur(res.ProcessP99))
	w("expired (not sent)", "%d; reason: %s", res.Expired, orNone(res.ExpiredReason))
	w("other failures", "%d %v", res.FailedOther, res.FailedReasons)
	w("45009 answers", "%s", fmtCounts(res.Refused45009))
	w("late codes (41050)", "%d", res.Late41050)
	w("contact lookups", "%d externalcontact/get calls", res.Lookups)
	w("CPU per new contact", "%s (%.1f cores over %s)", fmtCPU(res.CPU, res.Contacts), res.CPU["total"]/res.Busy.Seconds(), res.Busy.Round(time.Second))
	if c.Nudges > 0 {
		w("nudges (add_msg_template)", "%.1f/s before the surge, %.1f/s during it, %.1f/s after it; %d of %d sent by the end",
			res.NudgesBefore, res.NudgesDuring, res.NudgesAfter, res.NudgesSent, c.Nudges)
	}
	reportChecks(w, "every callback acknowledged, one welcome row each, each sent once or expired with its reason", res.Problems)
	c.Profiler.report(stdout)
	return fs.finish(c, res, res.Problems)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func fmtCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
