#!/usr/bin/env bash
# Runs every test against real PostgreSQL and Redis.
#
# Installs postgresql, redis-server and chromium (for the console's and the
# store page's browser tests) with apt-get when they are missing, starts PostgreSQL and Redis
# on loopback on free ports in a temporary directory, runs
# `go test -race ./...` with their URLs in SCRMGW_TEST_DATABASE_URL and
# SCRMGW_TEST_REDIS_URL, and stops them. Extra arguments go to `go test`
# (e.g. scripts/test.sh -run TestAPI ./cmd/...).
#
# A full run (no arguments) then runs every fuzz target of the module
# (go test -list '^Fuzz') for SCRMGW_FUZZTIME each (default 7s; 0 skips
# them; 10m or 1h for a long run). New inputs are minimized for 1s at
# most, or a short run spends its time minimizing. A failing input is
# saved under the package's testdata/fuzz/<Target>/ and replayed by every
# later go test.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh

find_pg_bin() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		[[ -x "$d/initdb" ]] && { echo "$d"; return 0; }
	done
	return 1
}

have_chromium() {
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null ||
		command -v google-chrome >/dev/null || command -v google-chrome-stable >/dev/null
}

install_missing() {
	local pkgs=()
	find_pg_bin >/dev/null || pkgs+=(postgresql)
	command -v redis-server >/dev/null || pkgs+=(redis-server)
	# The browser tests of the console and the store page drive Chromium.
	have_chromium || pkgs+=(chromium)
	# Chinese text in the console's pages (its screenshots and the
	# browser's layout of the zh pages) needs a CJK font.
	fc-list 2>/dev/null | grep -qi "wenquanyi\|wqy\|noto sans cjk" || pkgs+=(fonts-wqy-microhei)
	# A full run builds the container image with buildah (no daemon, no
	# registry; deploy/image/check.sh), the build stage's shell a static busybox.
	if ((FULL)) && [[ "$IMAGE" != 0 ]]; then
		command -v buildah >/dev/null || pkgs+=(buildah)
		# chroot isolation needs no OCI runtime, but buildah looks for one
		# (a recommendation, which apt_install leaves out).
		command -v crun >/dev/null || command -v runc >/dev/null || pkgs+=(crun)
		[[ -x /bin/busybox ]] || pkgs+=(busybox-static)
	fi
	if ((${#pkgs[@]})); then
		apt_install "${pkgs[@]}"
	fi
}

# Read here, and out of the tests' environment: the gateway refuses
# SCRMGW_* variables it does not know.
FUZZTIME=${SCRMGW_FUZZTIME:-7s}
# SCRMGW_IMAGE=0 leaves the container image out of a full run (it needs
# root for buildah's chroot isolation, and a few minutes).
IMAGE=${SCRMGW_IMAGE:-1}
unset SCRMGW_FUZZTIME SCRMGW_IMAGE
FULL=0
(($# == 0)) && FULL=1

install_missing
PG_BIN=$(find_pg_bin)
TMP=$(mktemp -d /tmp/scrmgw-test.XXXXXX)
chmod 755 "$TMP"

pg_user

cleanup() {
	set +e
	[[ -f "$TMP/pg/postmaster.pid" ]] && as_pg "$PG_BIN/pg_ctl" -D "$TMP/pg" -m immediate stop >/dev/null 2>&1
	[[ -f "$TMP/redis.pid" ]] && kill "$(cat "$TMP/redis.pid")" 2>/dev/null
	[[ -n "${helm_pid:-}" ]] && kill "$helm_pid" 2>/dev/null
	[[ -n "${image_pid:-}" ]] && kill "$image_pid" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

PG_PORT=$(free_port)
mkdir -p "$TMP/pg" && [[ $(id -u) -eq 0 ]] && chown postgres "$TMP/pg"
as_pg "$PG_BIN/initdb" -D "$TMP/pg" -U postgres --auth=trust --no-sync -E UTF8 >"$TMP/initdb.log" 2>&1 ||
	{ cat "$TMP/initdb.log"; exit 1; }
as_pg "$PG_BIN/pg_ctl" -D "$TMP/pg" -l "$TMP/pg/server.log" -w -t 60 start \
	-o "-p $PG_PORT -k $TMP/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null
log "postgresql $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --databases 64 \
	--daemonize yes --pidfile "$TMP/redis.pid" --logfile "$TMP/redis.log" --dir "$TMP"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
log "redis $(redis-server --version | awk '{print $3}' | sed 's/^v=//') on 127.0.0.1:$REDIS_PORT"

export SCRMGW_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
export SCRMGW_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export CI=${CI:-true} # nothing that needs a server may skip here

args=("$@")
((${#args[@]})) || args=(./...)

helm_pid=""
if ((${#@} == 0)); then
	# deploy/helmcheck is a module of its own (Helm and the Kubernetes
	# modules stay out of scrmgw's go.mod): helm lint, helm template and
	# the rendered objects against the Kubernetes schemas. Its compile is
	# the costly part (docs/deploy.md: it builds the helm command), so it
	# runs beside the main test run, whose many waits (leases, restarts,
	# failovers) leave the cores idle, and is waited for at the end.
	# vet is off here only: its fact pass over Helm's and Kubernetes'
	# packages would add about a fifth (go vet runs on it by hand).
	log "go test ./deploy/helmcheck (module of its own), in the background"
	(cd deploy/helmcheck && exec go test -count=1 -vet=off ./...) >"$TMP/helmcheck.log" 2>&1 &
	helm_pid=$!
fi
log "go test -race -count=1 ${args[*]}"
status=0
go test -race -count=1 -timeout 20m -v "${args[@]}" >"$TMP/test.log" 2>&1 || status=$?
# Show what failed in full, and a summary of what ran.
grep -E '^(ok|FAIL|---|panic:|\s+--- FAIL)|DATA RACE|\.go:[0-9]+:' "$TMP/test.log" | grep -vE '^\s*--- (PASS|SKIP)' || true
pg=$(grep -cE -- '--- PASS: .*/postgres' "$TMP/test.log" || true)
sq=$(grep -cE -- '--- PASS: .*/sqlite' "$TMP/test.log" || true)
rd=$(grep -cE -- '--- PASS: .*Redis' "$TMP/test.log" || true)
all=$(grep -cE -- '--- PASS' "$TMP/test.log" || true)
skips=$(grep -E -- '--- SKIP' "$TMP/test.log" || true)
log "passed: $all tests and subtests; on postgres: $pg, on sqlite: $sq, redis-backed: $rd"
if [[ -n "$skips" ]]; then
	log "skipped tests (not allowed):"
	echo "$skips"
	status=1
fi
if ((status != 0)); then
	log "FAILED (full log: rerun with the same arguments)"
	tail -n 200 "$TMP/test.log" | grep -vE -- '--- PASS|^=== ' | tail -n 80
fi

if ((${#@} == 0)); then
	# deploy/promcheck is a module of its own (Prometheus's PromQL parser
	# stays out of scrmgw's go.mod): the alert rules and dashboard queries
	# parse as Prometheus parses them.
	log "go test ./deploy/promcheck (module of its own)"
	if ! (cd deploy/promcheck && go test -count=1 ./...) >"$TMP/promcheck.log" 2>&1; then
		status=1
		cat "$TMP/promcheck.log"
		log "deploy/promcheck: FAILED"
	else
		cat "$TMP/promcheck.log"
	fi
	log "waiting for go test ./deploy/helmcheck"
	if ! wait "$helm_pid"; then
		status=1
		cat "$TMP/helmcheck.log"
		log "deploy/helmcheck: FAILED"
	else
		cat "$TMP/helmcheck.log"
	fi
	helm_pid=""
fi

image_pid=""
if ((FULL)) && [[ "$IMAGE" != 0 ]]; then
	# The image's build stage compiles the gateway with the settings
	# TestStaticBinary has just used (CGO_ENABLED=0 -trimpath) and the host's
	# build cache mounted: beside the fuzzing, which runs for a set time,
	# it adds little to the run's length.
	if [[ $(id -u) -ne 0 ]]; then
		status=1
		log "the container image needs root (buildah --isolation chroot): run as root, or SCRMGW_IMAGE=0 to leave it out"
	else
		log "building the container image (deploy/image/check.sh), in the background"
		bash deploy/image/check.sh >"$TMP/image.log" 2>&1 &
		image_pid=$!
	fi
fi

if ((${#@} == 0)) && [[ "$FUZZTIME" != 0 ]]; then
	# "pkg Target" for every fuzz target, so a new one runs without edits here.
	# Listed with the container image's build settings (CGO_ENABLED=0
	# -trimpath): deploy's TestStaticBinary has compiled the gateway's
	# packages so, and this reuses them instead of compiling them again.
	mapfile -t targets < <(CGO_ENABLED=0 go test -trimpath -list '^Fuzz' ./... 2>/dev/null |
		awk '/^Fuzz/ { names[n++] = $1 } /^ok / { for (i = 0; i < n; i++) print $2, names[i]; n = 0 }')
	log "fuzzing ${#targets[@]} targets for $FUZZTIME each"
	for t in "${targets[@]}"; do
		read -r pkg name <<<"$t"
		if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 1s "$pkg" >"$TMP/fuzz.log" 2>&1; then
			execs=$(grep -oE 'execs: [0-9]+' "$TMP/fuzz.log" | tail -n 1 | awk '{print $2}')
			log "fuzz $name ($pkg): ok, ${execs:-0} inputs"
		elif ! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$TMP/fuzz.log" &&
			grep -q 'context deadline exceeded' "$TMP/fuzz.log"; then
			# Go <1.27 can report the -fuzztime deadline itself as a failure
			# on a busy machine (go.dev/issue/75804): no input, no bug.
			log "fuzz $name ($pkg): ok (the toolchain reported its own deadline, go.dev/issue/75804)"
		else
			status=1
			grep -vE '^fuzz: elapsed' "$TMP/fuzz.log" | tail -n 40
			log "fuzz $name ($pkg): FAILED; the input is saved under $pkg's testdata/fuzz/$name/"
		fi
	done
fi
if [[ -n "$image_pid" ]]; then
	log "waiting for the container image"
	if ! wait "$image_pid"; then
		status=1
		cat "$TMP/image.log"
		log "container image: FAILED"
	else
		cat "$TMP/image.log"
	fi
	image_pid=""
fi
exit "$status"
