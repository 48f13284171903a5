package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// campaignMain is `scrmgw-load campaign`: the outbound campaign of
// docs/proof.md at full size (runCampaign), on PostgreSQL and Redis
// started for it (or given), with the scrmgw binary built for it.
func campaignMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		c       campaignConfig
		workDir string
		pg, rds string
		keep    bool
		out     string
	)
	fs := flag.NewFlagSet("campaign", flag.ContinueOnError)
	fs.SetOutput(stderr)
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
	fs.StringVar(&workDir, "workdir", "", "directory for the servers' data and logs (default: a new one under /var/tmp)")
	fs.StringVar(&pg, "pg", "", "PostgreSQL URL of a server the harness may create a database on (default: start a throwaway cluster, fsync on)")
	fs.StringVar(&rds, "redis", "", "Redis URL for the gateway, a dedicated instance (default: start redis-server with AOF everysec)")
	fs.StringVar(&c.Bin, "scrmgw", "", "scrmgw binary (default: go build ./cmd/scrmgw into the work directory)")
	fs.BoolVar(&keep, "keep", false, "keep the work directory and database afterwards")
	fs.StringVar(&out, "out", "", "also write the results as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scrmgw-load campaign: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	switch {
	case c.Members < 1 || c.Guides < 1:
		return fmt.Errorf("--members and --guides must be at least 1")
	case c.KillAt < 0 || c.KillAt >= 1:
		return fmt.Errorf("--kill-at must be from 0 (no kill) to below 1, got %v", c.KillAt)
	case c.Lease < 40*time.Second:
		return fmt.Errorf("--lease must be at least 40s, as send.lease, got %s", c.Lease)
	}
	h := &harness{cfg: runConfig{WorkDir: workDir, PG: pg, Redis: rds, Keep: keep}, stdout: stdout, stderr: stderr}
	defer h.cleanup()
	if h.cfg.WorkDir == "" {
		d, err := os.MkdirTemp("/var/tmp", "scrmgw-campaign-")
		if err != nil {
			return err
		}
		h.cfg.WorkDir = d
		if !keep {
			h.defer_(func() { os.RemoveAll(d) })
		}
	}
	os.Chmod(h.cfg.WorkDir, 0o755)
	h.logf("work directory %s", h.cfg.WorkDir)
	if err := h.startBackends(ctx); err != nil {
		return err
	}
	if c.Bin == "" {
		c.Bin = filepath.Join(h.cfg.WorkDir, "scrmgw")
		h.logf("building scrmgw")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", c.Bin, "github.com/scrmgw/scrmgw/cmd/scrmgw").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/scrmgw (run from the module): %v\n%s", err, out)
		}
	}
	c.DBURL, c.RedisURL = h.dbURL, h.redis
	c.Dir = filepath.Join(h.cfg.WorkDir, "gateway")
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	c.Logf = h.logf
	started := time.Now().UTC()
	h.logf("campaign of %d members at send.rate.wecom %s, fake WeCom %d add_msg_template per %s, kill at %.0f%%, load average %s",
		c.Members, c.Rate, c.FakeLimit, c.FakeWindow, c.KillAt*100, loadAvg())
	res, err := runCampaign(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nOutbound campaign, %s (load average now %s)\n", started.Format("2006-01-02 15:04 MST"), loadAvg())
	fmt.Fprintf(stdout, "  members                 %d (%d guides), seeded in %s\n", res.Members, c.Guides, res.Seeded.Round(time.Millisecond))
	fmt.Fprintf(stdout, "  message tasks at WeCom  %d in %s (worker start to the last check)\n", res.Tasks, res.Total.Round(time.Second))
	fmt.Fprintf(stdout, "  sends/s                 %.1f steady (%s), %.1f first to last task\n", res.SteadyPerSec,
		map[bool]string{true: "before the kill", false: "middle 80%"}[res.Killed], res.SendsPerSec)
	fmt.Fprintf(stdout, "  most in one second      %d (send.rate.wecom %s)\n", res.MaxPerSecond, c.Rate)
	fmt.Fprintf(stdout, "  refused with 45009      %d (fake limit %d per %s)\n", res.RateLimited, c.FakeLimit, c.FakeWindow)
	if res.Killed {
		fmt.Fprintf(stdout, "  worker kill -9          after %d tasks; %d sends in flight; down %s\n", res.KilledAfter, res.SendingAtKill, res.Down.Round(time.Second))
		fmt.Fprintf(stdout, "  recovered               %d found at WeCom, %d sent again, %d unknown (%d answers lost on the way, among them)\n",
			res.Reconciled, res.Resent, res.Unknown, res.InDoubt)
	}
	if len(res.Problems) == 0 {
		fmt.Fprintf(stdout, "  checks                  OK: every member got exactly 1 message task through their guide; none over the cap of 1 a day; "+
			"%d outbox rows sent with their task ids; every second nudge skipped by the cap\n", res.Members)
	} else {
		fmt.Fprintf(stdout, "  checks                  FAILED:\n    %s\n", strings.Join(res.Problems, "\n    "))
	}
	if out != "" {
		b, _ := json.MarshalIndent(struct {
			Config campaignConfig
			Result *campaignResult
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
