package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// botMain is `scrmgw-load bot`: the bot answers of
// docs/performance-surge.md (runBot), on PostgreSQL and Redis started for
// it (or given), with the scrmgw binary built for it.
func botMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c botConfig
	fs := newScenarioFlags("bot", stderr)
	fs.IntVar(&c.PerSecond, "rate", 1000, "member messages a second")
	fs.DurationVar(&c.For, "for", 60*time.Second, "how long the messages come")
	fs.Float64Var(&c.KFShare, "kf-share", 0.1, "share of the messages on WeCom customer service (the rest to the DingTalk robot); "+
		"WeCom allows a corp 10,000 kf/send_msg a minute")
	fs.DurationVar(&c.KFEvery, "kf-every", 50*time.Millisecond, "how often the fake WeCom announces new kf messages with a callback")
	fs.IntVar(&c.InFlight, "stream-in-flight", 64, "frames the fake DingTalk stream gateway keeps unacknowledged on the connection")
	fs.StringVar(&c.RateWeCom, "send-rate-wecom", "off", "the gateway's send.rate.wecom (WeCom's call windows are kept regardless)")
	fs.StringVar(&c.RateDingTalk, "send-rate-dingtalk", "off", "the gateway's send.rate.dingtalk")
	fs.IntVar(&c.Concurrency, "concurrency", 0, "the gateway's queue.concurrency (default: the product's)")
	fs.wecomDelay(&c.DelayMin, &c.DelayMax, "0ms", "how long the fake WeCom takes over kf/sync_msg and kf/send_msg (MIN-MAX, uniformly)")
	fs.DurationVar(&c.Settle, "settle", 60*time.Second, "wait at most this long after the last message for the replies")
	if err := fs.parse(args, stderr, &c.gatewayRun, true); err != nil {
		return err
	}
	if c.PerSecond < 1 || c.For < time.Second || c.KFShare < 0 || c.KFShare > 1 || c.KFEvery <= 0 || c.InFlight < 1 {
		return fmt.Errorf("--rate and --stream-in-flight must be at least 1, --for at least 1s, --kf-share from 0 to 1, --kf-every positive")
	}
	h := fs.harness(stdout, stderr)
	defer h.cleanup()
	if err := fs.prepare(ctx, h, &c.gatewayRun); err != nil {
		return err
	}
	started := time.Now().UTC()
	res, err := runBot(ctx, c)
	if err != nil {
		return err
	}
	w := reportLine(stdout, 28)
	fmt.Fprintf(stdout, "\nBot answers, %s: %d member messages/s for %s (%.0f%% WeCom kf, the rest DingTalk), send.rate.wecom %s, send.rate.dingtalk %s\n",
		started.Format("2006-01-02 15:04 MST"), c.PerSecond, c.For, c.KFShare*100, c.RateWeCom, c.RateDingTalk)
	w("load average", "%s at the start, %s at the end (%s)", res.LoadStart, res.LoadEnd, cpuModel())
	w("messages", "%d in %s: %d WeCom kf (%d callbacks, %d answered other than success), %d DingTalk frames",
		res.Messages, res.SentFor.Round(time.Millisecond), res.KF, res.KFCallbacks, res.CallbackFailures, res.DingTalk)
	w("replies at the fakes", "%d; %d messages without one, %d with more than one", res.Replies, res.Missing, res.Twice)
	w("message to reply request", "p50 %s, p95 %s, p99 %s, max %s; %.1f%% under 300 ms", fmtDur(res.P50), fmtDur(res.P95), fmtDur(res.P99),
		fmtDur(res.Max), 100*float64(res.Under300)/float64(max(res.Messages, 1)))
	w("p99 by channel", "WeCom kf %s, DingTalk %s", fmtDur(res.KFP99), fmtDur(res.DingTalkP99))
	w("45009 answers", "%d", res.Refused45009)
	w("CPU per message", "%s (%.1f cores over %s)", fmtCPU(res.CPU, res.Messages), res.CPU["total"]/res.Busy.Seconds(), res.Busy.Round(time.Second))
	reportChecks(w, "every message in the inbox once and answered exactly once", res.Problems)
	c.Profiler.report(stdout)
	return fs.finish(c, res, res.Problems)
}
