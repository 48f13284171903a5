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

. scripts/harness.sh
harness_setup wrk
exec go run ./cmd/scrmgw-load run "$@"
