package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run measured.
type wrkResult struct {
	Target      string             `json:"target"`
	Round       int                `json:"round"`
	Conns       int                `json:"conns"`
	Warmup      bool               `json:"warmup"`
	Discarded   bool               `json:"discarded,omitempty"`
	Disturbed   bool               `json:"disturbed,omitempty"`
	Wrapped     bool               `json:"wrapped,omitempty"` // the cycle ran out: part of the run were redeliveries
	Offset      int64              `json:"offset"`
	Duration    time.Duration      `json:"duration"`
	RPS         float64            `json:"rps"`
	P50         time.Duration      `json:"p50"`
	P75         time.Duration      `json:"p75"`
	P90         time.Duration      `json:"p90"`
	P99         time.Duration      `json:"p99"`
	P999        time.Duration      `json:"p999"`
	Max         time.Duration      `json:"max"`
	Completed   int64              `json:"completed"`
	Sent        int64              `json:"sent"`
	Non2xx      int64              `json:"non_2xx"`
	SocketErrs  int64              `json:"socket_errors"`
	Timeouts    int64              `json:"timeouts"`
	Cores       map[string]float64 `json:"cores,omitempty"`
	Commits     int64              `json:"db_commits,omitempty"`
	RedisCmds   int64              `json:"redis_commands,omitempty"`
	WrkCPU      float64            `json:"-"`
	Output      string             `json:"-"`
	ProfilePath string             `json:"profile,omitempty"`
}

// Acked is how many requests were answered 2xx.
func (r *wrkResult) Acked() int64 { return r.Completed - r.Non2xx }

// Errors is every request that did not end in a 2xx answer, except those
// still in flight when wrk stopped.
func (r *wrkResult) Errors() int64 { return r.Non2xx + r.SocketErrs }

// wrkRun is one invocation of wrk.
type wrkRun struct {
	Script   string
	URL      string
	Threads  int
	Conns    int
	Duration time.Duration
	Timeout  time.Duration
	Offset   int64
	// OnStart is called when wrk starts sending (its first thread is
	// up, after the script's init loaded the requests), OnStop when
	// it has stopped (or exited).
	OnStart, OnStop func()
}

func (w wrkRun) run(ctx context.Context) (*wrkResult, error) {
	args := []string{
		"-t" + strconv.Itoa(w.Threads), "-c" + strconv.Itoa(w.Conns),
		"-d" + strconv.Itoa(int(w.Duration.Round(time.Second)/time.Second)) + "s",
		"--timeout", strconv.Itoa(int(w.Timeout.Round(time.Second)/time.Second)) + "s",
		// wrk calls request() once before the run to check the script
		// (script_verify_request) and never sends that request: start
		// the script one position early so that call takes the position
		// before ours, and the run sends offset, offset+1, ...
		"--latency", "-s", w.Script, w.URL, "--", strconv.FormatInt(w.Offset-1, 10),
	}
	cmd := exec.CommandContext(ctx, "wrk", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting wrk (apt-get install wrk): %w", err)
	}
	// wrk runs the script's init (loading every request) on the main
	// thread, then starts its threads: the load begins when the process
	// has more than one thread.
	// and then when it has one again (the load has stopped; wrk is
	// printing and freeing the requests).
	started := make(chan struct{})
	var wrkStartCPU, wrkStopCPU float64
	go func() {
		defer close(started)
		pid := cmd.Process.Pid
		threads := func() int {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				return -1
			}
			if m := threadsRe.FindSubmatch(b); m != nil {
				n, _ := strconv.Atoi(string(m[1]))
				return n
			}
			return -1
		}
		for {
			n := threads()
			if n < 0 {
				return
			}
			if n > 1 {
				wrkStartCPU = procCPU(pid)
				if w.OnStart != nil {
					w.OnStart()
				}
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		for {
			time.Sleep(5 * time.Millisecond)
			if n := threads(); n <= 1 {
				if n == 1 {
					wrkStopCPU = procCPU(pid)
				}
				if w.OnStop != nil {
					w.OnStop()
				}
				return
			}
		}
	}()
	err := cmd.Wait()
	<-started
	if err != nil {
		return nil, fmt.Errorf("wrk %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	res, err := parseWrk(out.String())
	if err != nil {
		return nil, fmt.Errorf("wrk %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	res.Conns, res.Offset = w.Conns, w.Offset
	if wrkStopCPU == 0 {
		if ps := cmd.ProcessState; ps != nil {
			wrkStopCPU = (ps.UserTime() + ps.SystemTime()).Seconds()
		}
	}
	res.WrkCPU = wrkStopCPU - wrkStartCPU
	return res, nil
}

var (
	threadsRe   = regexp.MustCompile(`(?m)^Threads:\s+(\d+)`)
	rpsRe       = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	latRe       = regexp.MustCompile(`(?m)^\s+(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	totalRe     = regexp.MustCompile(`(?m)^\s+(\d+) requests in ([0-9.]+)(us|ms|s|m)`)
	socketRe    = regexp.MustCompile(`(?m)^\s+Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	non2xxRe    = regexp.MustCompile(`(?m)^\s+Non-2xx or 3xx responses: (\d+)`)
	summaryLine = regexp.MustCompile(`(?m)^SCRMGW-LOAD (.*)$`)
)

// parseWrk reads wrk's --latency report and the script's summary line.
func parseWrk(out string) (*wrkResult, error) {
	r := &wrkResult{Output: out}
	m := rpsRe.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("no Requests/sec in wrk output")
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	for _, m := range latRe.FindAllStringSubmatch(out, -1) {
		d := parseWrkDuration(m[2], m[3])
		switch m[1] {
		case "50":
			r.P50 = d
		case "75":
			r.P75 = d
		case "90":
			r.P90 = d
		case "99":
			r.P99 = d
		}
	}
	if m := totalRe.FindStringSubmatch(out); m != nil {
		r.Completed, _ = strconv.ParseInt(m[1], 10, 64)
		r.Duration = parseWrkDuration(m[2], m[3])
	}
	if m := socketRe.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.SocketErrs += n
		}
		r.Timeouts, _ = strconv.ParseInt(m[4], 10, 64)
	}
	if m := non2xxRe.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	m = summaryLine.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("no SCRMGW-LOAD line: is the script the one gen wrote?")
	}
	kv := map[string]int64{}
	for _, f := range strings.Fields(m[1]) {
		k, v, _ := strings.Cut(f, "=")
		kv[k], _ = strconv.ParseInt(v, 10, 64)
	}
	// The script counted wrk's verification call too (see run).
	r.Sent = max(kv["sent"]-1, 0)
	r.P999 = time.Duration(kv["p999_us"]) * time.Microsecond
	r.Max = time.Duration(kv["max_us"]) * time.Microsecond
	// The script's counters are exact; wrk's text rounds.
	if kv["completed"] > 0 {
		r.Completed = kv["completed"]
	}
	if kv["p99_us"] > 0 {
		r.P99 = time.Duration(kv["p99_us"]) * time.Microsecond
		r.P50 = time.Duration(kv["p50_us"]) * time.Microsecond
		r.P90 = time.Duration(kv["p90_us"]) * time.Microsecond
	}
	if kv["duration_us"] > 0 {
		r.Duration = time.Duration(kv["duration_us"]) * time.Microsecond
	}
	if kv["status"] != r.Non2xx {
		r.Non2xx = max(r.Non2xx, kv["status"])
	}
	return r, nil
}

func parseWrkDuration(v, unit string) time.Duration {
	f, _ := strconv.ParseFloat(v, 64)
	switch unit {
	case "us":
		return time.Duration(f * float64(time.Microsecond))
	case "ms":
		return time.Duration(f * float64(time.Millisecond))
	case "s":
		return time.Duration(f * float64(time.Second))
	case "m":
		return time.Duration(f * float64(time.Minute))
	}
	return 0
}
