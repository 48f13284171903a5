package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/scrmgw/scrmgw/configs"
)

// runHealth is `scrmgw health`: the container image has no shell and no
// curl, so its HEALTHCHECK (and an exec probe) runs the binary itself.
// It GETs /healthz (or /readyz) of the gateway listening on http.addr
// and exits 0 on 200, 1 otherwise.
func runHealth(cfg configs.Config, o options, stdout, stderr io.Writer) int {
	url := o.healthURL
	if url == "" {
		path := "/healthz"
		if o.healthReady {
			path = "/readyz"
		}
		url = localURL(cfg.HTTP.Addr) + path
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "scrmgw health: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "scrmgw health: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "scrmgw health: %s answered %s: %s\n", url, resp.Status, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s\n", url, body)
	return 0
}

// localURL is the loopback address of a listener on addr (":8080",
// "0.0.0.0:8080", "[::]:8080" or a host's own address).
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// printVersion is `scrmgw version`: the version set at build time, the
// module's version and the commit the binary was built from.
func printVersion(w io.Writer) {
	fmt.Fprintln(w, "scrmgw", version)
	mod, rev := "(unknown)", commit
	modified := false
	if info, ok := debug.ReadBuildInfo(); ok {
		mod = info.Main.Path + " " + info.Main.Version
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if rev == "" {
		rev = "unknown (built without VCS information; set -ldflags -X main.commit=REV)"
	} else if modified {
		rev += " (modified)"
	}
	fmt.Fprintln(w, "module:", mod)
	fmt.Fprintln(w, "commit:", rev)
	fmt.Fprintln(w, "go:", runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
}

// versionString is the version and short commit, for logs.
func versionString() string {
	v, rev := version, commit
	if info, ok := debug.ReadBuildInfo(); ok && rev == "" {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	if len(rev) >= 12 {
		v += " (" + rev[:12] + ")"
	}
	return v
}
