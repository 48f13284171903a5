package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// botMain is `scrmgw-load bot`: the bot answers of
// docs/performance-surge.md (runBot), on PostgreSQL and Redis started for
// it (or given), with the scrmgw binary built for it.
func botMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		c       botConfig
		workDir string
		pg, rds string
		keep    bool
		profile bool
		out     string
		delays  string
		env     listFlag
	)
	fs := flag.NewFlagSet("bot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.PerSecond, "rate", 1000, "member messages a second")
	fs.DurationVar(&c.For, "for", 60*time.Second, "how long the messages come")
	fs.Float64Var(&c.KFShare, "kf-share", 0.1, "share of the messages on WeCom customer service (the rest to the DingTalk robot); "+
		"WeCom allows a corp 10,000 kf/send_msg a minute")
	fs.DurationVar(&c.KFEvery, "kf-every", 50*time.Millisecond, "how often the fake WeCom announces new kf messages with a callback")
	fs.IntVar(&c.InFlight, "stream-in-flight", 64, "frames the fake DingTalk stream gateway keeps unacknowledged on the connection")
	fs.StringVar(&c.RateWeCom, "send-rate-wecom", "off", "the gateway's send.rate.wecom (WeCom's call windows are kept regardless)")
	fs.StringVar(&c.RateDingTalk, "send-rate-dingtalk", "off", "the gateway's send.rate.dingtalk")
	fs.IntVar(&c.Concurrency, "concurrency", 0, "the gateway's queue.concurrency (default: the product's)")
	fs.StringVar(&delays, "wecom-delay", "0ms", "how long the fake WeCom takes over kf/sync_msg and kf/send_msg (MIN-MAX, uniformly)")
	fs.DurationVar(&c.Settle, "settle", 60*time.Second, "wait at most this long after the last message for the replies")
	fs.Var(&env, "gateway-env", "extra KEY=VALUE for the gateway's environment (repeatable)")
	fs.StringVar(&workDir, "workdir", "", "directory for the servers' data and logs (default: a new one under /var/tmp)")
	fs.StringVar(&pg, "pg", "", "PostgreSQL URL of a server the harness may create a database on (default: start a throwaway cluster, fsync on)")
	fs.StringVar(&rds, "redis", "", "Redis URL for the gateway, a dedicated instance (default: start redis-server with AOF everysec)")
	fs.StringVar(&c.Bin, "scrmgw", "", "scrmgw binary (default: go build ./cmd/scrmgw into the work directory)")
	fs.BoolVar(&keep, "keep", false, "keep the work directory and database afterwards")
	fs.StringVar(&out, "out", "", "also write the results as JSON to this file")
	fs.BoolVar(&profile, "profile", false, "take CPU profiles of serve and worker while the load lasts: they are built with a pprof listener\n"+
		"added through go build -overlay (the source tree is not touched; the product has no pprof endpoint)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scrmgw-load bot: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	lo, hi, err := parseDelayRange(delays)
	if err != nil {
		return err
	}
	c.DelayMin, c.DelayMax, c.ExtraEnv = lo, hi, env
	if c.PerSecond < 1 || c.For < time.Second || c.KFShare < 0 || c.KFShare > 1 || c.KFEvery <= 0 || c.InFlight < 1 {
		return fmt.Errorf("--rate and --stream-in-flight must be at least 1, --for at least 1s, --kf-share from 0 to 1, --kf-every positive")
	}
	h := &harness{cfg: runConfig{WorkDir: workDir, PG: pg, Redis: rds, Keep: keep}, stdout: stdout, stderr: stderr}
	defer h.cleanup()
	if err := h.prepareGateway(ctx, "scrmgw-bot-", &c.gatewayRun, profile); err != nil {
		return err
	}
	started := time.Now().UTC()
	res, err := runBot(ctx, c)
	if err != nil {
		return err
	}
	w := func(label, format string, args ...any) {
		fmt.Fprintf(stdout, "  %-28s %s\n", label, fmt.Sprintf(format, args...))
	}
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
	if len(res.Problems) == 0 {
		w("checks", "OK: every message in the inbox once and answered exactly once")
	} else {
		w("checks", "FAILED:\n    %s", strings.Join(res.Problems, "\n    "))
	}
	if top := c.Profiler.summary(); top != "" {
		fmt.Fprintf(stdout, "\nCPU profiles while the load lasted:\n%s\n", top)
	}
	if out != "" {
		b, _ := json.MarshalIndent(struct {
			Config botConfig
			Result *botResult
		}{c, res}, "", "  ")
		if err := os.WriteFile(out, b, 0o644); err != nil {
			return err
		}
	}
	if len(res.Problems) > 0 {
		return fmt.Errorf("%d checks failed", len(res.Problems))
	}
	return nil
}
