package main

import (
	"context"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestSurgeSmall is the welcome surge of docs/performance-surge.md at a
// size CI affords: new contacts add guides (signed, encrypted
// add_external_contact callbacks with welcome codes) into the real
// gateway and worker while the fake WeCom keeps WeCom's call windows and
// answers in 50–200 ms: every welcome reaches WeCom once, within its
// code's 20 s, none refused (41050, 45009), none expired. The full runs
// are commands (scrmgw-load surge), not tests.
func TestSurgeSmall(t *testing.T) {
	t.Parallel()
	c := surgeConfig{PerSecond: 10, For: 3 * time.Second, Guides: 3, Windows: true,
		DelayMin: 50 * time.Millisecond, DelayMax: 200 * time.Millisecond, Settle: 40 * time.Second,
		gatewayRun: gatewayRun{DBURL: storetest.URL(t, "postgres"), RedisURL: storetest.RedisURL(t), Bin: buildScrmgw(t), Dir: t.TempDir(), Logf: t.Logf}}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := runSurge(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Problems {
		t.Error(p)
	}
	if res.Welcomes != res.Contacts || res.Within20s != res.Contacts || res.Sent != res.Contacts {
		t.Errorf("%d contacts: %d welcomes at WeCom, %d within 20 s, %d recorded sent; want all", res.Contacts, res.Welcomes, res.Within20s, res.Sent)
	}
	if res.Expired+res.FailedOther+res.Late41050+res.Reused+len(res.Refused45009) != 0 {
		t.Errorf("expired %d, other failures %v, 41050 %d, reused %d, 45009 %v; want none", res.Expired, res.FailedReasons,
			res.Late41050, res.Reused, res.Refused45009)
	}
}

// TestBotSmall is the bot answers scenario of docs/performance-surge.md
// at a size CI affords: members ask the member bot on WeCom customer
// service (kf callbacks, kf/sync_msg) and on the DingTalk stream; each
// message is recorded once and answered exactly once, at kf/send_msg or
// the message's session webhook.
func TestBotSmall(t *testing.T) {
	t.Parallel()
	c := botConfig{PerSecond: 20, For: 3 * time.Second, KFShare: 0.3, KFEvery: 50 * time.Millisecond, InFlight: 8,
		RateWeCom: "off", RateDingTalk: "off", Settle: 60 * time.Second,
		gatewayRun: gatewayRun{DBURL: storetest.URL(t, "postgres"), RedisURL: storetest.RedisURL(t), Bin: buildScrmgw(t), Dir: t.TempDir(), Logf: t.Logf}}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := runBot(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Problems {
		t.Error(p)
	}
	if res.KF == 0 || res.DingTalk == 0 || res.Replies != res.Messages || res.Missing+res.Twice != 0 {
		t.Errorf("%d messages (%d kf, %d DingTalk): %d replies, %d without, %d with more than one; want one each on both channels",
			res.Messages, res.KF, res.DingTalk, res.Replies, res.Missing, res.Twice)
	}
}
