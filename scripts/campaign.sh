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

. scripts/harness.sh
harness_setup
exec go run ./cmd/scrmgw-load campaign "$@"
