#!/usr/bin/env bash
# Measures what an idle process costs, as docs/performance-idle.md
# describes: scripts/idle.sh PID [SECONDS] prints the CPU time the process
# used over SECONDS (default 60; utime+stime from /proc/PID/stat) as a
# share of one core, the context switches of all its threads a second
# (the voluntary ones are mostly wake-ups from sleeps and polls), and its
# RSS (/proc/PID/status) at the end. Run two side by side (one per
# binary) to compare in the same conditions.
set -euo pipefail
pid=$1 secs=${2:-60}
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$pid/stat"; }
cs() { cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/{v+=$2} /^nonvoluntary_ctxt_switches/{n+=$2} END{print v, n}'; }
c0=$(cpu); read -r v0 n0 < <(cs); t0=$(date +%s.%N)
sleep "$secs"
c1=$(cpu); read -r v1 n1 < <(cs); t1=$(date +%s.%N)
rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
awk -v p="$pid" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v tck="$tck" -v v="$((v1 - v0))" -v n="$((n1 - n0))" -v rss="$rss" 'BEGIN{
	w = t1 - t0; c = (c1 - c0) / tck
	printf "pid %d over %.0f s: cpu %.2f s = %.2f%% of a core; %.0f voluntary + %.0f involuntary context switches/s; rss %.1f MB\n", p, w, c, 100 * c / w, v / w, n / w, rss / 1024
}'
echo "load: $(uptime)"
