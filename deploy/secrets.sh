#!/usr/bin/env bash
# Writes the secrets deploy/compose.yaml reads, one file each, under
# deploy/secrets/ (or DIR): random passwords for PostgreSQL and Redis, the
# URLs that carry them, an admin token and the phone encryption key.
# Existing files are kept, so running it again changes nothing.
#
#   deploy/secrets.sh && docker compose -f deploy/compose.yaml up -d
set -euo pipefail
dir=${1:-"$(dirname "$0")/secrets"}
mkdir -p "$dir"
chmod 700 "$dir"
rand() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
put() { [[ -s "$dir/$1" ]] || (umask 077 && printf '%s\n' "$2" >"$dir/$1"); }
put postgres_password "$(rand 24)"
put redis_password "$(rand 24)"
put admin_token "$(rand 32)"
put phone_key "$(rand 32)" # 32 bytes, hex: security.phone_key
put database_url "postgres://scrmgw:$(cat "$dir/postgres_password")@postgres:5432/scrmgw?sslmode=disable"
put redis_url "redis://:$(cat "$dir/redis_password")@redis:6379/0"
# The containers run as other users than the one who ran this: they read
# the files through compose's secrets, which are bind mounts.
chmod 644 "$dir"/*
chmod 755 "$dir"
echo "secrets in $dir"
