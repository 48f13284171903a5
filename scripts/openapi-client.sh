#!/usr/bin/env bash
# Generates a TypeScript client from the API's OpenAPI description
# (openapi-typescript types, openapi-fetch requests), type-checks it with
# tsc --strict, and runs it against a fresh zero-setup gateway: it creates
# a brand, a store and a member, reads them back, finds the member by
# phone, pages the stores and reads a 404's error shape (docs/api.md).
# Needs node and npm (the npm registry); not part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/scrmgw-openapi-client.XXXXXX)
pid=""
cleanup() { [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cp scripts/openapi-client/{package.json,tsconfig.json,client.ts} "$work/"
go build -o "$work/scrmgw" ./cmd/scrmgw
(cd "$work" && npm install --no-audit --no-fund --silent &&
	npx openapi-typescript "$OLDPWD/gateway/api/openapi.yaml" -o schema.d.ts &&
	npx tsc -p .)

port=$((20000 + RANDOM % 40000))
SCRMGW_HTTP_ADDR=127.0.0.1:$port SCRMGW_DATA_DIR="$work/data" "$work/scrmgw" serve >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
node "$work/out/client.js" "http://127.0.0.1:$port" "$(cat "$work/data/admin-token")"
