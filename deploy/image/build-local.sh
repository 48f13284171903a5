#!/usr/bin/env bash
# Builds the scrmgw image from the Dockerfile with buildah, on a machine
# with no registry and no daemon: the build stage's base (GO_IMAGE) is
# made here from the local Go toolchain, a static busybox (the build
# stage's shell) and the CA certificates, instead of being pulled.
#
#   apt-get install -y buildah busybox-static   # Debian
#   deploy/image/build-local.sh                 # → localhost/scrmgw:dev
#
# The host's Go module and build caches are mounted into the build stage
# (-v), so nothing is downloaded twice. --format docker: the OCI image
# format has no HEALTHCHECK. With a registry at hand, use
# `docker build .` or `buildah bud .` instead: GO_IMAGE then defaults to
# the official golang image.
set -euo pipefail
cd "$(dirname "$0")/../.."
STORAGE=(--storage-driver vfs)
TAG=${1:-localhost/scrmgw:dev}
GOROOT=$(go env GOROOT)
GOMODCACHE=$(go env GOMODCACHE)
GOCACHE=$(go env GOCACHE)

base=$(buildah "${STORAGE[@]}" from scratch)
trap 'buildah "${STORAGE[@]}" rm "$base" >/dev/null 2>&1 || true' EXIT
buildah "${STORAGE[@]}" copy "$base" "$GOROOT" /usr/local/go >/dev/null
buildah "${STORAGE[@]}" copy "$base" /bin/busybox /bin/busybox >/dev/null
buildah "${STORAGE[@]}" copy "$base" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
buildah "${STORAGE[@]}" run --isolation chroot "$base" -- /bin/busybox sh -c "/bin/busybox --install -s /bin && mkdir -p /tmp && chmod 1777 /tmp"
buildah "${STORAGE[@]}" config --env PATH=/usr/local/go/bin:/bin --env HOME=/root \
	--env GOMODCACHE=/go/pkg/mod --env GOCACHE=/root/.cache/go-build --env GOTOOLCHAIN=local "$base"
buildah "${STORAGE[@]}" commit -q "$base" localhost/scrmgw-go-base:local >/dev/null

buildah "${STORAGE[@]}" bud --isolation chroot --layers=false --format docker \
	--build-arg GO_IMAGE=localhost/scrmgw-go-base:local \
	--build-arg VERSION="$(git describe --tags --always 2>/dev/null || echo dev)" \
	--build-arg COMMIT="$(git rev-parse HEAD 2>/dev/null || true)" \
	-v "$GOMODCACHE:/go/pkg/mod" -v "$GOCACHE:/root/.cache/go-build" \
	-t "$TAG" .
buildah "${STORAGE[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$TAG"
