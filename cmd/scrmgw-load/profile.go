package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// profileAddrEnv names the listen address of the profiling build's pprof
// server. It is not SCRMGW_*: the gateway refuses unknown SCRMGW_ variables.
const profileAddrEnv = "LOAD_PPROF_ADDR"

// profileSource is added to package main of cmd/scrmgw in the profiling
// build only, through go build -overlay: the repository is not modified
// and the product has no pprof endpoint.
const profileSource = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("` + profileAddrEnv + `"); addr != "" {
		go http.ListenAndServe(addr, http.DefaultServeMux)
	}
}
`

// buildProfiling builds cmd/scrmgw of the module in the current directory
// with profileSource overlaid, into dir.
func buildProfiling(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-f", "{{.Dir}}", "github.com/scrmgw/scrmgw/cmd/scrmgw").Output()
	if err != nil {
		return "", fmt.Errorf("locating cmd/scrmgw (run from the module): %w", err)
	}
	pkgDir := strings.TrimSpace(string(out))
	src := filepath.Join(dir, "zz_load_pprof.go")
	if err := os.WriteFile(src, []byte(profileSource), 0o644); err != nil {
		return "", err
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(pkgDir, "zz_load_pprof.go"): src}})
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "scrmgw-pprof")
	if out, err := exec.CommandContext(ctx, "go", "build", "-overlay", ov, "-o", bin, "github.com/scrmgw/scrmgw/cmd/scrmgw").CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the profiling gateway: %v\n%s", err, out)
	}
	return bin, nil
}
