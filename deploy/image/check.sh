#!/usr/bin/env bash
# Builds the container image from the Dockerfile with buildah (no daemon,
# no registry: deploy/image/build-local.sh) and checks what an operator
# gets: a static binary as entrypoint, run as a numeric non-root user,
# the health check, no shell, the version and commit built in, and the
# image's size. scripts/test.sh runs it in a full run (it needs root for
# buildah's chroot isolation); it removes what it made.
#
#   deploy/image/check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
STORAGE=(--storage-driver vfs)
TAG=localhost/scrmgw:check-$$
fail() { printf 'image: %s\n' "$*" >&2; exit 1; }

cleanup() {
	buildah "${STORAGE[@]}" rm "${ctr:-}" >/dev/null 2>&1 || true
	buildah "${STORAGE[@]}" rmi -f "$TAG" localhost/scrmgw-go-base:local >/dev/null 2>&1 || true
	buildah "${STORAGE[@]}" rmi --prune >/dev/null 2>&1 || true # the build stage's image
}
trap cleanup EXIT

start=$(date +%s)
bash deploy/image/build-local.sh "$TAG" >"${TMPDIR:-/tmp}/image-build.$$.log" 2>&1 ||
	{ tail -n 40 "${TMPDIR:-/tmp}/image-build.$$.log"; rm -f "${TMPDIR:-/tmp}/image-build.$$.log"; fail "buildah bud failed"; }
rm -f "${TMPDIR:-/tmp}/image-build.$$.log"
built=$(($(date +%s) - start))

inspect() { buildah "${STORAGE[@]}" inspect --type image --format "$1" "$TAG"; }
[[ $(inspect '{{.Docker.Config.User}}') == 65532:65532 ]] || fail "user is $(inspect '{{.Docker.Config.User}}'), want 65532:65532"
[[ $(inspect '{{.Docker.Config.Entrypoint}}') == '[/scrmgw]' ]] || fail "entrypoint $(inspect '{{.Docker.Config.Entrypoint}}')"
[[ $(inspect '{{.Docker.Config.Healthcheck.Test}}') == '[CMD /scrmgw health]' ]] ||
	fail "health check $(inspect '{{.Docker.Config.Healthcheck.Test}}')"
layers=$(inspect '{{len .Docker.RootFS.DiffIDs}}')

ctr=$(buildah "${STORAGE[@]}" from "$TAG")
mnt=$(buildah "${STORAGE[@]}" mount "$ctr")
[[ -x "$mnt/scrmgw" ]] || fail "no /scrmgw"
[[ ! -e "$mnt/bin/sh" && ! -e "$mnt/bin" ]] || fail "the image has a /bin (a shell?)"
files=$(cd "$mnt" && find . -type f | sort | tr '\n' ' ')
[[ $files == "./etc/ssl/certs/ca-certificates.crt ./scrmgw " ]] || fail "unexpected files: $files"
[[ $(stat -c %u:%g "$mnt/data") == 65532:65532 ]] || fail "/data is not the user's"
# Static: no interpreter, so it runs on scratch.
if command -v readelf >/dev/null && readelf -l "$mnt/scrmgw" | grep -q 'INTERP'; then
	fail "/scrmgw has an ELF interpreter: not static"
fi
buildah "${STORAGE[@]}" umount "$ctr" >/dev/null

version=$(buildah "${STORAGE[@]}" run --isolation chroot "$ctr" -- /scrmgw version)
commit=$(git rev-parse HEAD)
grep -q "$commit" <<<"$version" || fail "/scrmgw version says '$version', want commit $commit"
size=$(buildah "${STORAGE[@]}" images --format '{{.Size}}' "$TAG")
printf 'image: built in %d s, %s, %s layer(s), user 65532, no shell; %s\n' "$built" "$size" "$layers" "$(head -n 1 <<<"$version")"
