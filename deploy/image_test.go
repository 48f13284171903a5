package deploy

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
	line      int
}

func parseDockerfile(t *testing.T, path string) [][]instruction {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		cur.Reset()
		switch {
		case in.cmd == "FROM":
			stages = append(stages, []instruction{in})
		case len(stages) == 0 && in.cmd == "ARG":
			// a global ARG before the first FROM
		case len(stages) == 0:
			t.Fatalf("Dockerfile:%d: %s before FROM", in.line, in.cmd)
		default:
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	return stages
}

// TestDockerfile checks the essentials of the image's Dockerfile (hadolint
// is not a Go module; building the image here needs buildah, which
// deploy/image/build-local.sh runs and docs/deploy.md reports on):
// multi-stage, a static Go build, an empty final stage with no shell and
// no RUN, a numeric non-root user, the binary as entrypoint and its own
// health check.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "../Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a final one", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]
	if !strings.HasSuffix(build[0].args, " AS build") {
		t.Errorf("first stage is %q, want one named build", build[0].args)
	}
	joined := func(st []instruction, cmd string) string {
		var out []string
		for _, in := range st {
			if in.cmd == cmd {
				out = append(out, in.args)
			}
		}
		return strings.Join(out, "\n")
	}
	if env := joined(build, "ENV"); !strings.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("build stage ENV %q lacks CGO_ENABLED=0", env)
	}
	if run := joined(build, "RUN"); !strings.Contains(run, "go build ") || !strings.Contains(run, "./cmd/scrmgw") ||
		!strings.Contains(run, "-X main.version=${VERSION} -X main.commit=${COMMIT}") {
		t.Errorf("build stage does not build ./cmd/scrmgw with the version and commit: %q", run)
	}
	if final[0].args != "scratch" {
		t.Errorf("final stage FROM %q, want scratch", final[0].args)
	}
	want := map[string]*regexp.Regexp{
		"USER":        regexp.MustCompile(`^[1-9][0-9]*:[1-9][0-9]*$`),
		"ENTRYPOINT":  regexp.MustCompile(`^\["/scrmgw"\]$`),
		"HEALTHCHECK": regexp.MustCompile(`CMD \["/scrmgw", "health"\]$`),
		"CMD":         regexp.MustCompile(`^\["serve"\]$`),
	}
	for cmd, re := range want {
		if got := joined(final, cmd); !re.MatchString(got) {
			t.Errorf("final stage %s %q, want %s", cmd, got, re)
		}
	}
	for _, in := range final {
		if in.cmd == "RUN" || in.cmd == "SHELL" {
			t.Errorf("Dockerfile:%d: %s in the final stage, which has no shell", in.line, in.cmd)
		}
		if in.cmd == "COPY" && !strings.HasPrefix(in.args, "--from=build") {
			t.Errorf("Dockerfile:%d: COPY %s: the final stage takes files from the build stage only", in.line, in.args)
		}
	}
	if copies := joined(final, "COPY"); !strings.Contains(copies, "/out/scrmgw /scrmgw") ||
		!strings.Contains(copies, "ca-certificates.crt") || !strings.Contains(copies, "--chown=65532:65532 /out/data /data") {
		t.Errorf("final stage copies %q: want the binary, the CA certificates and a /data the user owns", copies)
	}
}

// TestStaticBinary builds the binary the image holds, with the
// Dockerfile's flags, and checks it needs nothing from the image: no
// dynamic loader, no shared library. It then runs it as the image would.
func TestStaticBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "scrmgw")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=v0.0.0-test -X main.commit=0123456789abcdef",
		"-o", bin, "../cmd/scrmgw")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %s program header: it is not static", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v", libs)
	}
	st, _ := os.Stat(bin)
	t.Logf("static binary: %.1f MiB (%d bytes)", float64(st.Size())/(1<<20), st.Size())

	// No SCRMGW_* of the test run: the binary refuses unknown ones, and
	// none is needed for these.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SCRMGW_") {
			env = append(env, kv)
		}
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"version"}, []string{"scrmgw v0.0.0-test\n", "module: github.com/scrmgw/scrmgw", "commit: 0123456789abcdef\n"}},
		{[]string{"import", "--help"}, []string{"usage: scrmgw import", "Example:"}},
		{[]string{"health", "--help"}, []string{"usage: scrmgw health"}},
	} {
		c := exec.Command(bin, tc.args...)
		c.Env = env
		out, err := c.CombinedOutput()
		if err != nil {
			t.Errorf("scrmgw %v: %v\n%s", tc.args, err, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("scrmgw %v lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
}
