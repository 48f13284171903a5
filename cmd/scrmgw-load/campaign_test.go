package main

import (
	"context"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestCampaignWorkerKilled is the quick outbound campaign of
// docs/proof.md: 2,000 members, each a WeCom contact of one of 8 guides,
// enter a workflow that nudges each once through their guide (a message
// task, add_msg_template) and tries a second nudge the frequency cap (one
// a day) must stop. The real scrmgw binary runs it at send.rate.wecom
// 60/s against the fake WeCom API, which accepts 75 add_msg_template
// calls a second (45009 beyond) and takes 200 ms over each: 100 ms before
// creating the task (a request cut off then is dropped) and 100 ms after. When a third of the members were sent to,
// and every run waits for its message (a send step is done only once
// WeCom created its task), the worker is killed with
// SIGKILL while sends are in flight (scrmgw-load campaign kills it
// regardless of the runs; a step the killed worker had claimed is taken
// over after the engine's 2-minute claim timeout, too long for this
// test). It is started again 61 s later: its claims' lease (send.lease,
// 40 s) is over, so its start-up sweep asks WeCom (get_groupmsg_list_v2)
// about each send left "sending", records the ones WeCom has and sends
// the others again; and asynq's recoverer, which re-hands a dead
// worker's tasks once their 30 s lease is 30 s past, does so at once.
//
// Afterwards: every member got exactly one message task, through their
// own guide, none more than the cap allows per day; the outbox holds one
// sent row per member with its task id; every second nudge was skipped by
// the cap; and the kill caught sends in flight, which were recovered.
func TestCampaignWorkerKilled(t *testing.T) {
	t.Parallel() // mostly waits: the worker is down for a minute
	dbURL := storetest.URL(t, "postgres")
	redisURL := storetest.RedisURL(t)
	bin := buildScrmgw(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	res, err := runCampaign(ctx, campaignConfig{
		Members: 2000, Guides: 8,
		Rate: "60/s", CriticalShare: "-1",
		FakeLimit: 75, FakeWindow: time.Second, FakeDelay: 200 * time.Millisecond,
		KillAt: 1.0 / 3, KillAfterRuns: true, Lease: 40 * time.Second, Down: 61 * time.Second, Concurrency: 64,
		Timeout:    5 * time.Minute, // to settle: a bound for a busy machine, not a figure
		gatewayRun: gatewayRun{DBURL: dbURL, RedisURL: redisURL, Bin: bin, Dir: t.TempDir(), Logf: t.Logf},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Problems {
		t.Error(p)
	}
	if !res.Killed || res.SendingAtKill == 0 {
		t.Errorf("the kill caught no send in flight (%d rows sending)", res.SendingAtKill)
	}
	if res.Reconciled+res.Resent < res.SendingAtKill {
		t.Errorf("recovered %d found + %d sent again, want the %d rows sending at the kill", res.Reconciled, res.Resent, res.SendingAtKill)
	}
	t.Logf("%d members, %d message tasks in %s; %.1f sends/s before the kill, %.1f/s overall (worker down %s); "+
		"at most %d in one second, %d refused by the fake's rate limit; killed after %d tasks with %d sends in flight, "+
		"%d runs not ended; recovered: %d found at WeCom, %d sent again, %d unknown (%d answers lost)",
		res.Members, res.Tasks, res.Total.Round(time.Second), res.SteadyPerSec, res.SendsPerSec, res.Down.Round(time.Second),
		res.MaxPerSecond, res.RateLimited, res.KilledAfter, res.SendingAtKill, res.RunsActiveAtKill, res.Reconciled, res.Resent, res.Unknown, res.InDoubt)
}
