package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/scrmgw/scrmgw/gateway/console"
)

// EnvScreenshots names a directory the browser test writes a PNG of every
// page into (docs/console/ holds the committed ones):
//
//	SCRMGW_TEST_CONSOLE_SCREENSHOTS=$PWD/docs/console scripts/test.sh -run TestConsoleBrowser ./gateway/console/
const EnvScreenshots = "SCRMGW_TEST_CONSOLE_SCREENSHOTS"

// chromium finds the browser; the test fails without one (scripts/test.sh
// installs Debian's chromium when it is missing).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: the console's browser tests need it (scripts/test.sh installs it: apt-get install chromium)")
	return ""
}

// browser drives one headless Chromium tab against the rig.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // screenshot directory, or ""
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	// No sandbox: CI containers (and root) have no user namespaces for
	// it, and the browser only opens the test's own pages.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.WindowSize(1440, 900),
		chromedp.Flag("lang", "en-US"), chromedp.Flag("accept-lang", "en-US,en"), chromedp.NoSandbox)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	b := &browser{t: t, ctx: bctx, base: base, shot: os.Getenv(EnvScreenshots)}
	b.do("start", chromedp.EmulateViewport(1440, 900))
	return b
}

// do runs steps, failing the test with what it was doing.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", js, err)
	}
	return s
}

// until waits for a JavaScript condition.
func (b *browser) until(what, js string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		b.t.Fatalf("waiting for %s (%s): %v\npage:\n%s", what, js, err, b.eval(`document.querySelector("main") ? document.querySelector("main").innerText : document.body.innerText`))
	}
}

// screenshot saves the whole page as name.png when screenshots are on.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	if b.shot == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(b.shot, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.shot, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// typeAt puts the caret after the first occurrence of after in the
// editor and types keys there, as a person would.
func (b *browser) typeAt(after, keys string) {
	b.t.Helper()
	js := fmt.Sprintf(`(() => { const a = document.getElementById("yaml"); const i = a.value.indexOf(%q);
		if (i < 0) return "missing"; a.focus(); a.setSelectionRange(i + %d, i + %d); return "ok"; })()`, after, len(after), len(after))
	if got := b.eval(js); got != "ok" {
		b.t.Fatalf("the editor has no %q", after)
	}
	b.do("typing "+keys, chromedp.KeyEvent(keys))
}

func TestConsoleBrowser(t *testing.T) {
	r := newRig(t, "postgres", console.Config{})
	src := r.put("camellia", "welcome", "new-member-welcome.yaml", false)
	r.put("camellia", "win-back", "dormant-win-back.yaml", true)
	r.put("peony", "peony-welcome", "new-member-welcome.yaml", true)
	r.seedRuns("camellia", "win-back", 18, 5, `sending step win_back: wecom: 41001 access_token missing`)
	r.seedRuns("peony", "peony-welcome", 9, 3, "")
	peony := r.brandToken("peony")
	b := newBrowser(t, r.srv.URL)

	// Sign in with the admin token.
	b.do("opening the console", chromedp.Navigate(r.srv.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.screenshot("sign-in")
	b.do("signing in", chromedp.SendKeys(chromedp.CSS("#token"), adminToken), chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#workflows")))
	list := b.text("#workflows")
	for _, want := range []string{"welcome", "win-back", "peony-welcome", "Disabled", "Enabled", "18", "41001 access_token missing"} {
		if !strings.Contains(list, want) {
			t.Errorf("the admin's list lacks %q:\n%s", want, list)
		}
	}
	b.screenshot("workflows")

	// Open a workflow: its YAML, line numbers and diagram.
	b.do("opening welcome", chromedp.Click(chromedp.CSS(`tr[data-workflow="camellia/welcome"] a`)), chromedp.WaitVisible(chromedp.CSS("#yaml")))
	if got := b.eval(`String(document.querySelectorAll("#gutter span").length)`); got != strconv.Itoa(strings.Count(src, "\n")+1) {
		t.Errorf("gutter has %s line numbers, want %d", got, strings.Count(src, "\n")+1)
	}
	svg := b.eval(`document.querySelector("#diagram svg").textContent`)
	for _, want := range []string{"say_hello", "wait · 3d", "wait · 27d", "else", "end"} {
		if !strings.Contains(svg, want) {
			t.Errorf("diagram lacks %q: %s", want, svg)
		}
	}
	b.screenshot("editor")

	// A typo: an unknown field, shown at its line as you type.
	b.typeAt("    due_in", "n")
	line := 1 + strings.Count(src[:strings.Index(src, "    due_in")], "\n")
	b.until("the typo's error", `document.querySelector("#problems li.problem") !== null`)
	problem := b.text("#problems li.problem")
	if want := fmt.Sprintf(`welcome.yaml:%d:5: steps[1].due_inn: unknown field "due_inn"`, line); !strings.Contains(problem, want) ||
		!strings.Contains(problem, fmt.Sprintf("line %d, column 5", line)) {
		t.Errorf("problem %q, want %q at line %d, column 5", problem, want, line)
	}
	if got := b.eval(fmt.Sprintf(`document.querySelector("#gutter span:nth-child(%d)").className`, line)); got != "err" {
		t.Errorf("gutter line %d has class %q, want err", line, got)
	}
	b.screenshot("editor-error")
	// The problem's button takes the caret to it.
	b.do("jumping to the problem", chromedp.Click(chromedp.CSS("#problems button.goto")))
	if got := b.eval(`(() => { const a = document.getElementById("yaml"); return a.value.slice(0, a.selectionStart).split("\n").length + ":" + (a.selectionStart - a.value.lastIndexOf("\n", a.selectionStart - 1)); })()`); got != fmt.Sprintf("%d:5", line) {
		t.Errorf("caret at %s after the jump, want %d:5", got, line)
	}

	// Fix it.
	b.typeAt("    due_inn", "\b")
	b.until("no problems", `document.querySelector("#status").classList.contains("status-ok") && document.querySelectorAll("#problems li").length === 0`)

	// Change the wait and dry-run the unsaved YAML.
	b.typeAt("wait: 27", "\b0") // 27d -> 20d
	b.until("the change validated", `document.querySelector("#status").classList.contains("status-ok") && document.querySelector("#diagram svg").textContent.includes("wait · 20d")`)
	b.do("filling the dry run", chromedp.SetValue(chromedp.CSS("#start"), "2026-12-01T10:00:00+08:00"),
		chromedp.SetValue(chromedp.CSS("#member_json"), `{"name": "Li Lei", "level": "gold", "channel": "wecom", "guide_id": "g-wang", "guide_name": "Wang Fang", "store_name": "Jing'an Store"}`),
		chromedp.Click(chromedp.CSS("#run-dryrun")), chromedp.WaitVisible(chromedp.CSS("ol.timeline")))
	timeline := b.text("ol.timeline")
	for _, want := range []string{"say_hello", "wait_3d", "coupon", "wecom", "wait_27d", "2026-12-01 10:00:00"} {
		if !strings.Contains(timeline, want) {
			t.Errorf("timeline lacks %q:\n%s", want, timeline)
		}
	}
	if got := b.eval(`String(document.querySelectorAll("ol.timeline .msg").length)`); got == "0" {
		t.Errorf("the timeline shows no rendered message:\n%s", timeline)
	}
	if v := b.eval(`document.getElementById("yaml").value`); !strings.Contains(v, "wait: 20d") {
		t.Error("the dry run lost the unsaved edit")
	}
	b.screenshot("dry-run")

	// Save as a new version, then enable.
	b.do("saving", chromedp.Click(chromedp.CSS("#save")), chromedp.WaitVisible(chromedp.CSS("#saved")))
	vs, err := r.store.WorkflowVersions(context.Background(), "camellia", "welcome")
	if err != nil || len(vs) != 2 || !strings.Contains(vs[1].Source, "wait: 20d") {
		t.Fatalf("after saving: %d versions (%v), want the edit as the second", len(vs), err)
	}
	b.do("enabling", chromedp.Click(chromedp.CSS("#enable")), chromedp.WaitVisible(chromedp.CSS("#notice")), chromedp.WaitVisible(chromedp.CSS("#disable")))
	if h, err := r.store.Workflow(context.Background(), "camellia", "welcome"); err != nil || !h.Enabled || h.Version != vs[1].Version {
		t.Fatalf("after enabling: %+v (%v)", h, err)
	}
	b.screenshot("editor-saved")

	// Compare the two versions.
	b.do("comparing", chromedp.Click(chromedp.CSS("#compare")), chromedp.WaitVisible(chromedp.CSS("#diff")))
	if got := b.text("#diff tr.d-add"); !strings.Contains(got, "wait: 20d") {
		t.Errorf("diff's added line %q, want wait: 20d", got)
	}
	b.screenshot("diff")

	// The new-workflow page, in Chinese.
	b.do("new workflow", chromedp.Navigate(r.srv.URL+"/console/workflows/new"), chromedp.WaitVisible(chromedp.CSS("#yaml")))
	b.until("a valid starter", `document.querySelector("#diagram svg") !== null`)
	b.screenshot("new-workflow")
	b.do("switching to Chinese", chromedp.Click(chromedp.CSS("a.lang")), chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-CN"] #yaml`)))
	b.do("the list in Chinese", chromedp.Navigate(r.srv.URL+"/console/workflows"), chromedp.WaitVisible(chromedp.CSS("#workflows")))
	if got := b.text("h1"); got != "自动化流程" {
		t.Errorf("Chinese heading %q", got)
	}
	b.screenshot("workflows-zh")
	b.do("back to English", chromedp.Click(chromedp.CSS("a.lang")), chromedp.WaitVisible(chromedp.CSS(`html[lang="en"] #workflows`)))

	// A brand token sees its brand only.
	b.do("signing out", chromedp.Click(chromedp.CSS(`form[action$="/sign-out"] button`)), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("signing in as peony", chromedp.SendKeys(chromedp.CSS("#token"), peony), chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("#workflows")))
	if list := b.text("#workflows"); !strings.Contains(list, "peony-welcome") || strings.Contains(list, "win-back") || strings.Contains(list, "camellia") {
		t.Errorf("peony's list shows another brand's workflows:\n%s", list)
	}
	b.do("opening camellia's workflow", chromedp.Navigate(r.srv.URL+"/console/workflows/camellia/welcome"), chromedp.WaitVisible(chromedp.CSS("h1")))
	if got := b.text("h1"); got != "Not found" {
		t.Errorf("peony opening camellia's workflow sees %q, want Not found", got)
	}
	b.screenshot("not-found")
}
