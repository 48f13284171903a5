#!/usr/bin/env bash
# The outbound campaign of docs/proof.md at full size: installs
# postgresql and redis-server with apt-get when they are missing, then runs
# `go run ./cmd/scrmgw-load campaign`, which starts PostgreSQL (fsync on)
# and Redis (AOF everysec) on free loopback ports, builds scrmgw, seeds
# 100,000 members bound to 50 guides, and runs a workflow that nudges each
# through their guide on the fake WeCom API (10,000 add_msg_template a
# minute, 45009 beyond; 200 ms per call) at send.rate.wecom 200/s; the
# worker is killed with SIGKILL half way and started again after
# send.lease. It prints throughput and the checks (every member exactly
# one message, none over the cap), and exits non-zero if a check fails.
#
# Extra arguments go to `scrmgw-load campaign` (see `go run
# ./cmd/scrmgw-load campaign -h`), e.g. scripts/campaign.sh --members 20000
# --kill-at 0 --out /tmp/campaign.json
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }

pkgs=()
command -v redis-server >/dev/null || pkgs+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || pkgs+=(postgresql)
if ((${#pkgs[@]})); then
	log "installing ${pkgs[*]}"
	sudo=""
	[[ $(id -u) -ne 0 ]] && sudo="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi
# PostgreSQL refuses to run as root: the harness runs it as postgres then.
if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
	useradd --system --no-create-home postgres
fi

log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
exec go run ./cmd/scrmgw-load campaign "$@"
