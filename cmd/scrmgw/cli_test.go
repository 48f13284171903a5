package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
)

// TestHelpOfEveryCommand: `scrmgw help CMD`, `scrmgw CMD --help` and
// `scrmgw CMD -h` print the synopsis, every flag and an example on
// stdout and exit 0.
func TestHelpOfEveryCommand(t *testing.T) {
	for _, c := range commands {
		for _, args := range [][]string{{"help", c.name}, {c.name, "--help"}, {c.name, "-h"}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var out, errb bytes.Buffer
				code := run(args, &out, &errb)
				if code != 0 || errb.Len() != 0 {
					t.Fatalf("exit %d, stderr %q", code, errb.String())
				}
				want := []string{"usage: scrmgw " + c.name, c.summary[1:], "Example:\n  scrmgw " + c.name}
				for _, f := range c.flagNames() {
					want = append(want, "  --"+f)
				}
				for _, w := range want {
					if !strings.Contains(out.String(), w) {
						t.Errorf("help lacks %q:\n%s", w, out.String())
					}
				}
			})
		}
	}
}

// TestImportHelp is the issue's own check, spelled out.
func TestImportHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"import", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("scrmgw import --help: exit %d, stderr %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "--skip-invalid") || !strings.Contains(out.String(), "scrmgw import members members.csv") {
		t.Errorf("import --help:\n%s", out.String())
	}
}

func TestOverview(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		for _, c := range commands {
			if !strings.Contains(out.String(), "  scrmgw "+c.name) {
				t.Errorf("%v: overview lacks %s:\n%s", args, c.name, out.String())
			}
		}
	}
}

// TestSuggestions: a typo of a command, flag, subcommand or kind exits 2
// and names the nearest.
func TestSuggestions(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serv"}, `unknown command "serv" (did you mean "serve"?)`},
		{[]string{"imprt", "members", "x.csv"}, `unknown command "imprt" (did you mean "import"?)`},
		{[]string{"help", "wrker"}, `unknown command "wrker" (did you mean "worker"?)`},
		{[]string{"migrate", "--konfig", "x"}, "flag provided but not defined: -konfig (did you mean --config?)"},
		{[]string{"serve", "--wrkers=false"}, "(did you mean --workers?)"},
		{[]string{"import", "members", "x.csv", "--skip-invald"}, "(did you mean --skip-invalid?)"},
		{[]string{"workflow", "valdate", "x.yaml"}, `unknown subcommand "valdate" (did you mean "validate"?)`},
		{[]string{"import", "membrs", "x.csv"}, `unknown kind "membrs" (did you mean "members"?)`},
		{[]string{"token", "craete", "--name", "x"}, `unknown subcommand "craete" (did you mean "create"?)`},
		{[]string{"ledger", "setle", "--date", "2026-01-05"}, `unknown subcommand "setle" (did you mean "settle"?)`},
		{[]string{"completion", "bsh"}, `unknown shell "bsh" (did you mean "bash"?)`},
		{[]string{"frobnicate"}, `unknown command "frobnicate"` + "\nRun 'scrmgw help'"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, errb.String(), tc.want)
			}
		})
	}
}

// TestExamplesParse: every command's example uses flags the command has.
func TestExamplesParse(t *testing.T) {
	for _, c := range commands {
		words := strings.Fields(c.example)
		for len(words) > 0 && words[0] != "scrmgw" { // VAR=value prefixes
			words = words[1:]
		}
		var args []string
		for _, w := range words[2:] {
			if w == "#" || w == "&&" || w == "|" {
				break
			}
			args = append(args, w)
		}
		fs := c.flagSet(&options{})
		for rest := args; ; rest = fs.Args()[1:] {
			if err := fs.Parse(rest); err != nil {
				t.Errorf("%s: example %q: %v", c.name, c.example, err)
				break
			}
			if fs.NArg() == 0 {
				break
			}
		}
	}
}

// TestBashCompletion sources the script in bash and completes as a user
// pressing tab would.
func TestBashCompletion(t *testing.T) {
	var script bytes.Buffer
	if code := run([]string{"completion", "bash"}, &script, &script); code != 0 {
		t.Fatalf("completion bash: exit %d: %s", code, script.String())
	}
	tests := []struct {
		line string // the words typed, the last one being completed
		want string
	}{
		{"scrmgw im", "import"},
		{"scrmgw w", "worker workflow"},
		{"scrmgw import me", "members"},
		{"scrmgw workflow d", "dry-run"},
		{"scrmgw serve --w", "--workers"},
		{"scrmgw token create --re", "--read-only --resources"},
		{"scrmgw help tok", "token"},
		{"scrmgw completion f", "fish"},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			words := strings.Fields(tc.line)
			prog := fmt.Sprintf("%s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_scrmgw\necho \"${COMPREPLY[*]}\"\n",
				script.String(), tc.line, len(words)-1)
			out, err := exec.Command("bash", "-c", prog).CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Errorf("completing %q: got %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

// TestZshAndFishCompletion checks the scripts name every command and
// flag (zsh and fish are not on CI machines to run them).
func TestZshAndFishCompletion(t *testing.T) {
	for _, shell := range []string{"zsh", "fish"} {
		var out, errb bytes.Buffer
		if code := run([]string{"completion", shell}, &out, &errb); code != 0 {
			t.Fatalf("completion %s: exit %d: %s", shell, code, errb.String())
		}
		s := out.String()
		for _, c := range commands {
			want := []string{"'" + c.name + ":"}
			if shell == "fish" {
				want = []string{"-a " + c.name + " -d '"}
			}
			for _, f := range c.cliFlags() {
				if shell == "zsh" {
					want = append(want, "'--"+f.name+"[")
				} else {
					want = append(want, "'__fish_seen_subcommand_from "+c.name+"' -l "+f.name)
				}
			}
			for _, w := range want {
				if !strings.Contains(s, w) {
					t.Errorf("%s completion lacks %q", shell, w)
				}
			}
		}
	}
	var out bytes.Buffer
	run([]string{"completion", "zsh"}, &out, &out)
	if !strings.Contains(out.String(), `'--read-only[create: GET and HEAD only]'`) ||
		!strings.Contains(out.String(), `'--config[YAML configuration file (default: none; defaults and SCRMGW_* variables)]:config:_files'`) {
		t.Errorf("zsh flag specs:\n%s", out.String())
	}
}

func TestVersion(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "v1.2.3", "0123456789abcdef0123"
	var out, errb bytes.Buffer
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out.Reset()
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		for _, w := range []string{"scrmgw v1.2.3\n", "\nmodule: ", "\ncommit: 0123456789abcdef0123\n", "\ngo: go1."} {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v lacks %q:\n%s", args, w, out.String())
			}
		}
	}
	if got := versionString(); got != "v1.2.3 (0123456789ab)" {
		t.Errorf("versionString() = %q", got)
	}
}

// TestHealth: `scrmgw health` GETs /healthz (or /readyz) on the port of
// http.addr and exits 0 only on 200.
func TestHealth(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.URL.Path == "/readyz" {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"ready":false,"checks":{"redis":"unavailable"}}`)
			return
		}
		fmt.Fprint(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	t.Setenv("SCRMGW_HTTP_ADDR", ":"+port)

	var out, errb bytes.Buffer
	if code := run([]string{"health"}, &out, &errb); code != 0 || out.String() != "http://127.0.0.1:"+port+"/healthz: {\"status\":\"ok\"}\n" {
		t.Errorf("health: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	errb.Reset()
	if code := run([]string{"health", "--ready"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), `answered 503 Service Unavailable: {"ready":false,"checks":{"redis":"unavailable"}}`) {
		t.Errorf("health --ready: exit %d, stderr %q", code, errb.String())
	}
	if got := strings.Join(paths, " "); got != "/healthz /readyz" {
		t.Errorf("requests: %s", got)
	}
	srv.Close()
	errb.Reset()
	if code := run([]string{"health", "--timeout", "1s"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "connection refused") {
		t.Errorf("health of a stopped gateway: exit %d, stderr %q", code, errb.String())
	}
}

func TestLocalURL(t *testing.T) {
	for addr, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080",
		"0.0.0.0:9000":   "http://127.0.0.1:9000",
		"[::]:8080":      "http://127.0.0.1:8080",
		"10.1.2.3:8080":  "http://10.1.2.3:8080",
		"[fd00::1]:8080": "http://[fd00::1]:8080",
	} {
		if got := localURL(addr); got != want {
			t.Errorf("localURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestWorkerListenChecked: `scrmgw worker --listen` with an address that
// is not host:port is refused before anything starts.
func TestWorkerListenChecked(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"worker", "--listen", "nowhere"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), `http.worker_addr: want host:port or :port, got "nowhere"`) {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}
