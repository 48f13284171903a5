package app

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/scrmgw/scrmgw/store"
)

// TestJourneyConsoleFunnel watches the console's funnel in Chromium while
// members go through new-member-welcome in the running gateway: they add
// the guide on WeCom (signed, encrypted callbacks), the engine starts and
// moves their runs, one buys (a signed CloudEvent) and converts, the other
// gets the coupon through the guide three virtual days later. The funnel
// moves with each, and agrees with the API's stats.
func TestJourneyConsoleFunnel(t *testing.T) {
	start := time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai) // a Tuesday, outside quiet hours
	j := startJourney(t, journeyChannels{wecom: true}, start)
	j.enableShipped("new-member-welcome")
	fake := j.wecom

	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Fatal("no chromium on PATH: the console's browser tests need it (scripts/test.sh installs it: apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.WindowSize(1440, 900),
		chromedp.Flag("lang", "en-US"), chromedp.Flag("accept-lang", "en-US,en"), chromedp.NoSandbox)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return strings.Join(strings.Fields(s), " ")
	}
	// The funnel of January 2027 (the engine's virtual time).
	funnel := j.s.base + "/console/funnel?workflow=camellia%2Fnew-member-welcome&from=2027-01-01&to=2027-01-31"
	look := func(what string) {
		t.Helper()
		do(what, chromedp.Navigate(funnel), chromedp.WaitVisible(chromedp.CSS("#totals")))
	}

	do("signing in", chromedp.Navigate(j.s.base+"/console/sign-in"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), j.tok), chromedp.Submit(chromedp.CSS("#token")), chromedp.WaitVisible(chromedp.CSS("#workflows")))
	look("the funnel before anyone joined")
	if got := text("#t-entered"); got != "0" {
		t.Errorf("entered before anyone joined: %s", got)
	}

	// Two members add the guide; the engine starts their runs.
	j.wecomJoin("wmChen", "陈女士", "138 0013 8000")
	j.wecomJoin("wmWang", "王先生", "139 0013 9000")
	waitFor(t, "the two welcomes", func() bool { return len(fake.Welcomes()) == 2 })
	chen, wang := j.memberByPhone("13800138000"), j.memberByPhone("13900139000")
	j.waitRun("new-member-welcome", chen.ID, "wait_3d")
	j.waitRun("new-member-welcome", wang.ID, "wait_3d")
	look("the funnel after two joined")
	if got := text("#t-entered"); got != "2" || text("#t-converted") != "0" {
		t.Errorf("after two joined: entered %s, converted %s; want 2, 0", got, text("#t-converted"))
	}
	if got := text(`#steps tr[data-step="say_hello"]`); !strings.HasPrefix(got, "say_hello guide_task 2 ") {
		t.Errorf("say_hello: %q, want 2 entered", got)
	}

	// Chen buys: the run converts.
	j.event("buy-1", purchase("buy-1", "13800138000", "SO-CHEN-1", start.Add(2*time.Hour)))
	j.sweepUntil("Chen's run converted", func() bool {
		rs := j.runs("new-member-welcome", chen.ID)
		return len(rs) == 1 && rs[0].State == store.RunConverted
	})
	// Three days on, Wang gets the coupon through the guide.
	j.advance(3*24*time.Hour, "Wang's coupon step done", func() bool {
		rs := j.runs("new-member-welcome", wang.ID)
		return len(rs) == 1 && (rs[0].Step == "wait_27d" || rs[0].State != store.RunActive)
	})
	waitFor(t, "the coupon message task", func() bool { return len(fake.MsgTemplates()) == 1 })
	look("the funnel after the purchase and the coupon")
	if got := text("#t-entered"); got != "2" || text("#t-converted") != "1" {
		t.Errorf("after Chen bought: entered %s, converted %s; want 2, 1", got, text("#t-converted"))
	}
	coupon := text(`#steps tr[data-step="coupon"]`)
	if !strings.HasPrefix(coupon, "coupon send 1 1") {
		t.Errorf("the coupon step: %q, want 1 entered, 1 sent", coupon)
	}
	st, _ := j.stats("new-member-welcome")
	if st.Entered != 2 || st.Converted != 1 {
		t.Errorf("the API's stats: entered %d, converted %d; the funnel shows 2, 1", st.Entered, st.Converted)
	}
	if dir := os.Getenv("SCRMGW_TEST_CONSOLE_SCREENSHOTS"); dir != "" {
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "funnel-journey.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
