package console

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLineDiff(t *testing.T) {
	for _, tc := range []struct {
		name, a, b string
		want       []string
	}{
		{"same", "a\nb\n", "a\nb\n", []string{" 1 1 a", " 2 2 b"}},
		{"empty to one", "", "x\n", []string{"+ 0 1 x"}},
		{"one to empty", "x", "", []string{"- 1 0 x"}},
		{"change in the middle", "a\nb\nc\n", "a\nB\nc\n", []string{" 1 1 a", "- 2 0 b", "+ 0 2 B", " 3 3 c"}},
		{"insert and delete", "a\nb\nc\nd\n", "a\nc\nd\ne\n", []string{" 1 1 a", "- 2 0 b", " 3 2 c", " 4 3 d", "+ 0 4 e"}},
		{"moved line", "x\na\nb\n", "a\nb\nx\n", []string{"- 1 0 x", " 2 1 a", " 3 2 b", "+ 0 3 x"}},
		{"crlf is lf", "a\r\nb\r\n", "a\nb\n", []string{" 1 1 a", " 2 2 b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, l := range lineDiff(tc.a, tc.b) {
				got = append(got, strings.TrimRight(strings.TrimSpace(string(l.Op)+" "+itoa(l.A))+" "+itoa(l.B)+" "+l.Text, " "))
			}
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.TrimRight(strings.TrimSpace(w), " ")
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("lineDiff (-want +got):\n%s", diff)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestCatalogueComplete(t *testing.T) {
	if len(catalogue) != 2 {
		t.Errorf("languages: %d, want zh and en", len(catalogue))
	}
	for lang, msgs := range catalogue {
		for other, others := range catalogue {
			for k := range msgs {
				if _, ok := others[k]; !ok {
					t.Errorf("%q is in %s but not in %s", k, lang, other)
				}
			}
		}
		for k, v := range msgs {
			if strings.TrimSpace(v) == "" {
				t.Errorf("%s %q is empty", lang, k)
			}
		}
	}
}

// TestCatalogueHasEveryKey finds the keys the templates and the code use
// and checks the catalogue has them.
func TestCatalogueHasEveryKey(t *testing.T) {
	files, _ := filepath.Glob("templates/*.html")
	gofiles, _ := filepath.Glob("*.go")
	used := map[string]bool{}
	keyRE := regexp.MustCompile(`\.T "([a-z_.0-9]+)"|translate\([^,]+, "([a-z_.0-9]+)"|titleKey|"((?:nav|editor|signin|notfound|error|workflows|diff|csrf|funnel|guides|stores|qr|forbidden|channel)\.[a-z_]+)"`)
	for _, f := range append(files, gofiles...) {
		if strings.HasSuffix(f, "_test.go") || f == "messages.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range keyRE.FindAllStringSubmatch(string(b), -1) {
			if m[3] != "" && !strings.HasSuffix(f, ".go") {
				continue // a quoted string in a template is not a key
			}
			for _, k := range m[1:] {
				if k != "" && !strings.HasSuffix(k, ".") {
					used[k] = true
				}
			}
		}
	}
	// Keys made of parts: state.<state>, notice.<action>.
	for _, k := range []string{"state.enabled", "state.disabled", "state.retired", "notice.enabled", "notice.disabled", "notice.retired",
		"guides.sort_overdue", "guides.sort_load", "guides.sort_points", "guides.sort_name", "channel.wecom", "channel.dingtalk"} {
		used[k] = true
	}
	if len(used) < 50 {
		t.Fatalf("found only %d keys in use: the scan is broken", len(used))
	}
	for k := range used {
		for lang, msgs := range catalogue {
			if _, ok := msgs[k]; !ok {
				t.Errorf("%q is used but not in the %s catalogue", k, lang)
			}
		}
	}
	// Every language formats the same arguments.
	verbRE := regexp.MustCompile(`%(\[\d\])?[dqsv]`)
	for k, en := range catalogue["en"] {
		if a, b := len(verbRE.FindAllString(en, -1)), len(verbRE.FindAllString(catalogue["zh"][k], -1)); a != b {
			t.Errorf("%q: en has %d arguments, zh %d", k, a, b)
		}
	}
}

func TestFoldContext(t *testing.T) {
	a := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n"
	b := strings.Replace(a, "6\n", "six\n", 1)
	var got []string
	for _, l := range foldContext(lineDiff(a, b), 2) {
		if l.Op == opFold {
			got = append(got, "~"+itoa(l.Skipped))
		} else {
			got = append(got, string(l.Op)+l.Text)
		}
	}
	want := []string{"~3", " 4", " 5", "-6", "+six", " 7", " 8", "~4"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("folded (-want +got):\n%s", diff)
	}
}

func TestChannelName(t *testing.T) {
	for _, tc := range []struct{ channel, lang, want string }{
		{"wecom", "zh", "企业微信"},
		{"wecom:acme", "en", "WeCom (acme)"},
		{"wechat_oa", "zh", "微信（公众号）"},
		{"dingtalk:store-app", "zh", "钉钉 (store-app)"},
		{"carrier_pigeon:x", "en", "carrier_pigeon:x"},
	} {
		if got := channelName(tc.channel, tc.lang); got != tc.want {
			t.Errorf("channelName(%q, %s) = %q, want %q", tc.channel, tc.lang, got, tc.want)
		}
	}
}
