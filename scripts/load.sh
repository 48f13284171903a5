#!/usr/bin/env bash
# Measures scrmgw's inbound WeCom callbacks under load, as
# docs/performance-callbacks.md describes: installs wrk, postgresql and
# redis-server with apt-get when they are missing, then runs
# `go run ./cmd/scrmgw-load run`, which generates ~400k signed and
# encrypted callbacks, starts PostgreSQL and Redis on free loopback ports,
# builds and starts `scrmgw serve --workers=false` and the bare baseline
# servers, drives each with wrk (one thread, 5 s warm-up, 15 s at 32, 64
# and 128 connections), checks the inbox, and prints the table.
#
# Extra arguments go to `scrmgw-load run` (see `go run ./cmd/scrmgw-load
# run -h`), e.g. scripts/load.sh --out /tmp/load.json --rounds 3
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '== %s\n' "$*" >&2; }

pkgs=()
command -v wrk >/dev/null || pkgs+=(wrk)
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
exec go run ./cmd/scrmgw-load run "$@"
