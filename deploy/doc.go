// Package deploy holds no code: its directory has what operators run
// scrmgw with (docs/deploy.md), and its tests check those files.
//
//   - ../Dockerfile and image/build-local.sh: the container image;
//     TestDockerfile checks its essentials and TestStaticBinary builds
//     the binary the image holds, with the same flags.
//   - compose.yaml and secrets.sh: TestCompose validates the file against
//     the Compose Specification's schema and loads each service's
//     configuration with the secrets secrets.sh writes.
//   - helm/scrmgw: TestHelmChart renders the chart (renderChart, the
//     subset of Helm's template functions the chart uses) and checks what
//     the manifests mean (commands, probes, secrets, each container's
//     configuration); helmcheck/ (a module of its own) runs Helm's own
//     lint and template on it and checks every rendered object against
//     the Kubernetes OpenAPI schema and API types.
//   - prometheus/alerts.yaml and grafana/scrmgw.json: TestObservability
//     checks every expression names only metrics scrmgw registers;
//     promcheck/ parses them with Prometheus's own PromQL parser.
package deploy
