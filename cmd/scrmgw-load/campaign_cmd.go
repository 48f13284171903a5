package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// campaignMain is `scrmgw-load campaign`: the outbound campaign of
// docs/proof.md at full size (runCampaign), on PostgreSQL and Redis
// started for it (or given), with the scrmgw binary built for it.
func campaignMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c campaignConfig
	fs := newScenarioFlags("campaign", stderr)
	fs.IntVar(&c.Members, "members", 100_000, "members in the campaign")
	fs.IntVar(&c.Guides, "guides", 50, "guides the members are bound to (one store)")
	fs.StringVar(&c.Rate, "rate", "200/s", "the gateway's send.rate.wecom (the nudges get all but send.critical_share of it)")
	fs.StringVar(&c.CriticalShare, "critical-share", "", "the gateway's send.critical_share (default: the product's, 0.2)")
	fs.IntVar(&c.FakeLimit, "wecom-limit", 10_000, "add_msg_template calls the fake WeCom accepts per --wecom-window (WeCom: 10,000 a minute per API and corp); more answer 45009")
	fs.DurationVar(&c.FakeWindow, "wecom-window", time.Minute, "the window of --wecom-limit")
	fs.DurationVar(&c.FakeDelay, "wecom-delay", 200*time.Millisecond, "how long the fake WeCom takes over an add_msg_template (half before creating the task, half after)")
	fs.Float64Var(&c.KillAt, "kill-at", 0.5, "kill the worker with SIGKILL once this share of the members was sent to, and start it again after --lease (0: no kill)")
	fs.DurationVar(&c.Lease, "lease", 2*time.Minute, "the gateway's send.lease")
	fs.IntVar(&c.Concurrency, "concurrency", 100, "the gateway's queue.concurrency")
	fs.DurationVar(&c.Timeout, "timeout", time.Hour, "give up after this long")
	if err := fs.parse(args, stderr, &c.gatewayRun, false); err != nil {
		return err
	}
	switch {
	case c.Members < 1 || c.Guides < 1:
		return fmt.Errorf("--members and --guides must be at least 1")
	case c.KillAt < 0 || c.KillAt >= 1:
		return fmt.Errorf("--kill-at must be from 0 (no kill) to below 1, got %v", c.KillAt)
	case c.Lease < 40*time.Second:
		return fmt.Errorf("--lease must be at least 40s, as send.lease, got %s", c.Lease)
	}
	h := fs.harness(stdout, stderr)
	defer h.cleanup()
	if err := fs.prepare(ctx, h, &c.gatewayRun); err != nil {
		return err
	}
	started := time.Now().UTC()
	h.logf("campaign of %d members at send.rate.wecom %s, fake WeCom %d add_msg_template per %s, kill at %.0f%%, load average %s",
		c.Members, c.Rate, c.FakeLimit, c.FakeWindow, c.KillAt*100, loadAvg())
	res, err := runCampaign(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nOutbound campaign, %s (load average now %s)\n", started.Format("2006-01-02 15:04 MST"), loadAvg())
	w := reportLine(stdout, 23)
	w("members", "%d (%d guides), seeded in %s", res.Members, c.Guides, res.Seeded.Round(time.Millisecond))
	w("message tasks at WeCom", "%d in %s (worker start to the last check)", res.Tasks, res.Total.Round(time.Second))
	w("sends/s", "%.1f steady (%s), %.1f first to last task", res.SteadyPerSec,
		map[bool]string{true: "before the kill", false: "middle 80%"}[res.Killed], res.SendsPerSec)
	w("most in one second", "%d (send.rate.wecom %s)", res.MaxPerSecond, c.Rate)
	w("refused with 45009", "%d (fake limit %d per %s)", res.RateLimited, c.FakeLimit, c.FakeWindow)
	if res.Killed {
		w("worker kill -9", "after %d tasks; %d sends in flight; down %s", res.KilledAfter, res.SendingAtKill, res.Down.Round(time.Second))
		w("recovered", "%d found at WeCom, %d sent again, %d unknown (%d answers lost on the way, among them)",
			res.Reconciled, res.Resent, res.Unknown, res.InDoubt)
	}
	reportChecks(w, fmt.Sprintf("every member got exactly 1 message task through their guide; none over the cap of 1 a day; "+
		"%d outbox rows sent with their task ids; every second nudge skipped by the cap", res.Members), res.Problems)
	return fs.finish(c, res, res.Problems)
}
