#!/usr/bin/env bash
# Runs `scrmgw-bench nearest` against a throwaway PostgreSQL with PostGIS.
#
# Starts PostgreSQL (from /usr/lib/postgresql/*/bin, as the postgres user when
# run as root, since PostgreSQL refuses to run as root) on loopback on a free
# port in a temporary directory, runs the benchmark with --pg pointing at it,
# then stops it and removes the directory. Installs the PostGIS package with
# apt-get if the extension is missing. Extra arguments go to
# `scrmgw-bench nearest` (e.g. --pg-queries 5000 --explain).
set -euo pipefail
cd "$(dirname "$0")/../.."

. scripts/lib.sh

PG_BIN=
for d in /usr/lib/postgresql/*/bin; do
	[[ -x "$d/initdb" ]] && PG_BIN=$d
done
[[ -n "$PG_BIN" ]] || { echo "PostgreSQL not found under /usr/lib/postgresql" >&2; exit 1; }
PG_MAJOR=$(basename "$(dirname "$PG_BIN")")
if [[ ! -f /usr/share/postgresql/$PG_MAJOR/extension/postgis.control ]]; then
	log "installing postgresql-$PG_MAJOR-postgis-3"
	sudo=""
	[[ $(id -u) -ne 0 ]] && sudo="sudo"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$PG_MAJOR-postgis-3" >/dev/null
fi

pg_user

TMP=$(mktemp -d /tmp/scrmgw-bench-pg.XXXXXX)
chmod 755 "$TMP"
[[ $(id -u) -eq 0 ]] && chown postgres "$TMP"
PORT=$(free_port)
cleanup() {
	as_pg "$PG_BIN/pg_ctl" -D "$TMP/data" -m fast stop >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT

log "PostgreSQL $PG_MAJOR with PostGIS on 127.0.0.1:$PORT in $TMP"
as_pg "$PG_BIN/initdb" -D "$TMP/data" -U postgres --auth=trust >/dev/null
# fsync off only speeds up the load; the timed lookups read from memory.
as_pg "$PG_BIN/pg_ctl" -D "$TMP/data" -l "$TMP/log" -w \
	-o "-h 127.0.0.1 -p $PORT -k $TMP -c fsync=off -c shared_buffers=256MB" start >/dev/null

go build -o "$TMP/scrmgw-bench" ./cmd/scrmgw-bench
"$TMP/scrmgw-bench" nearest --pg "postgres://postgres@127.0.0.1:$PORT/postgres?sslmode=disable" "$@"
