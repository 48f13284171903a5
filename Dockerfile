# syntax=docker/dockerfile:1
# The scrmgw image: one static binary on an empty base (docs/deploy.md).
#
#   docker build -t scrmgw --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) .
#
# GO_IMAGE is the build stage's base: any image with Go (at least go.mod's
# version) and a POSIX shell. The SQLite driver (glebarez/sqlite on
# modernc.org/sqlite) is pure Go, so the binary is built with
# CGO_ENABLED=0 and needs no libc. deploy/deploy_test.go builds the same
# binary with the same flags and checks this file's essentials.
ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
RUN go build -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/scrmgw ./cmd/scrmgw \
 && mkdir -p /out/data /out/tmp

FROM scratch
# CA certificates for WeCom's and DingTalk's HTTPS APIs; time zones are
# compiled into the binary (time/tzdata).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/scrmgw /scrmgw
# The zero-setup mode's SQLite and generated secrets; with PostgreSQL and
# Redis (compose, Helm) nothing is written here.
COPY --from=build --chown=65532:65532 /out/data /data
# Go's os.TempDir (multipart uploads spill there).
COPY --from=build --chown=65532:65532 /out/tmp /tmp
ENV SCRMGW_DATA_DIR=/data SCRMGW_HTTP_ADDR=:8080 SCRMGW_LOG_FORMAT=json
WORKDIR /data
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["/scrmgw", "health"]
ENTRYPOINT ["/scrmgw"]
CMD ["serve"]
