//! The raw layer: exactly what one environment file says, every field optional.
//!
//! Files are parsed into these types (unknown fields rejected), merged along their
//! `extends` chain, then resolved into [`crate::config::Environment`]. Each field's doc
//! ends with a YAML example; `wactl schema` and `docs/environment.schema.json` are
//! generated from these docs, so this file is the reference for the format.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One `environments/<name>.yaml` file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "wactl environment definition")]
pub struct EnvironmentSource {
    /// Another environment in the same directory whose values this one starts from.
    /// Objects merge field by field, maps (`config`, `secrets`, `buildArgs`) merge key by
    /// key, lists of named items (`smoke.checks`, `clusters`) merge by `name`, and any other value
    /// set here replaces the inherited one.
    /// ```yaml
    /// extends: base
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    /// What is deployed: the service's name and how it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<AppSource>,
    /// Where the service image is built from and pushed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSource>,
    /// The Kubernetes cluster and namespace this environment lives in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSource>,
    /// Several clusters (regions) for this one environment: each entry starts from
    /// `cluster:` and overrides what it names. Deploys go wave by wave (lowest first); the
    /// clusters of one wave are deployed in parallel. Entries merge along `extends` by `name`.
    /// Without `clusters:` the environment lives in the one `cluster:`.
    /// ```yaml
    /// clusters:
    ///   - { name: eu-1, context: production-eu-1, wave: 1 }
    ///   - { name: us-1, context: production-us-1, wave: 2 }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Vec<ClusterEntrySource>>,
    /// What a deploy to several clusters does when one cluster fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetSource>,
    /// Number of service pods when autoscaling is off.
    /// ```yaml
    /// replicas: 2
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Horizontal pod autoscaling (autoscaling/v2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSource>,
    /// CPU and memory for each service container, as Kubernetes quantities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSource>,
    /// Liveness, readiness and startup probes of the service container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes: Option<ProbesSource>,
    /// How a new version replaces the old one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutSource>,
    /// The public entry point: Kubernetes Ingress and the rendered nginx proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSource>,
    /// Supporting services deployed next to the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<ComponentsSource>,
    /// How the environment is monitored inside its cluster: a bundled Prometheus (and
    /// Grafana), objects for the Prometheus Operator, or nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSource>,
    /// Which nodes run the service and its components (postgres, redis).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<SchedulingSource>,
    /// How the service's Kubernetes Service is exposed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSource>,
    /// Plain configuration values, given to the service as environment variables
    /// (through a ConfigMap). Never put secrets here: use `secrets`. The service's duration
    /// settings (`REQUEST_TIMEOUT`, `SHUTDOWN_GRACE`, `SHUTDOWN_DELAY`) are checked here in
    /// the grammar the service reads them with: a number and a unit (`500ms`, `10s`,
    /// `1m 30s`), no bare numbers, and `REQUEST_TIMEOUT` above zero.
    /// ```yaml
    /// config:
    ///   LOG_FORMAT: json
    ///   REQUEST_TIMEOUT: 10s
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
    /// Secret references: environment variable name → the Kubernetes Secret and key that
    /// holds its value. Only names are written here, never values.
    /// ```yaml
    /// secrets:
    ///   DATABASE_URL: { secret: address-service-db, key: url }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secrets: Option<BTreeMap<String, SecretRefSource>>,
    /// A CA bundle the service trusts for TLS to PostgreSQL and Redis (a managed database
    /// signed by a provider's CA), from one key of a Secret or a ConfigMap created outside
    /// wactl. It is mounted read-only and the service's `SSL_CERT_FILE` names it, so it
    /// replaces the system store: it must hold every CA the service needs. A
    /// `sslrootcert=` in `DATABASE_URL` still wins for PostgreSQL.
    /// ```yaml
    /// trustedCa: { configMap: rds-ca-bundle, key: ca.pem }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_ca: Option<TrustedCaSource>,
    /// Deploying needs an interactive confirmation (or `--yes`).
    /// ```yaml
    /// protected: true
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
    /// Pull-request previews copy this environment: `wactl preview up N` without `--from`
    /// copies it (exactly one environment may say so then), and `wactl preview down N` and
    /// `wactl preview gc` without `--from` look for previews in every environment that says so.
    /// Inherited along `extends` like every field: an environment extending a preview base
    /// says `previews: false`.
    /// ```yaml
    /// previews: true
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previews: Option<bool>,
    /// The smoke suite run after every deploy and by `wactl smoke`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke: Option<SmokeSource>,
    /// Where wactl reports deployments on GitHub.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github: Option<GithubSource>,
    /// Published ports of the local Docker stack (`wactl up`), all on 127.0.0.1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalSource>,
    /// A directory, relative to this file, whose templates replace the built-in ones of
    /// the same relative path. A Kubernetes template may render several objects separated
    /// by `---` (for example from a `{% for %}` loop); each is type-checked, and a kind and
    /// name rendered twice is an error.
    /// ```yaml
    /// templates: ../templates-overrides
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppSource {
    /// Name of the service: Kubernetes object names and labels (DNS-1123 label).
    /// ```yaml
    /// app:
    ///   name: address-service
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Port the service container listens on.
    /// ```yaml
    /// app:
    ///   port: 8080
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    /// Log level given to the service (`RUST_LOG`).
    /// ```yaml
    /// app:
    ///   logLevel: info
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageSource {
    /// Registry host (and port) the image is pushed to.
    /// ```yaml
    /// image:
    ///   registry: ghcr.io
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// Repository path inside the registry.
    /// ```yaml
    /// image:
    ///   repository: world-address/address-service
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Tag used by `wactl render` when no built image is given; deploys pin a digest.
    /// ```yaml
    /// image:
    ///   tag: latest
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Image the build stage of the Dockerfile starts from (needs cargo).
    /// ```yaml
    /// image:
    ///   builder: docker.io/library/rust:1.95-bookworm
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
    /// Image the runtime stage starts from.
    /// ```yaml
    /// image:
    ///   runtime: gcr.io/distroless/cc-debian12:nonroot
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Build arguments passed to the Dockerfile.
    /// ```yaml
    /// image:
    ///   buildArgs:
    ///     CARGO_PROFILE: release
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_args: Option<BTreeMap<String, String>>,
    /// Dockerfile stage to build.
    /// ```yaml
    /// image:
    ///   target: runtime
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSource {
    /// Kubeconfig context to deploy with (`--context` overrides it).
    /// ```yaml
    /// cluster:
    ///   context: staging-eu-1
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Kubeconfig file (`~` expands; `--kubeconfig` and `KUBECONFIG` override it).
    /// ```yaml
    /// cluster:
    ///   kubeconfig: ~/.kube/config
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// Namespace everything is deployed to (DNS-1123 label).
    /// ```yaml
    /// cluster:
    ///   namespace: world-address-staging
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One cluster of an environment that lives in several.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterEntrySource {
    /// The cluster's name in this environment (DNS-1123 label): `--cluster NAME`, report
    /// rows and the GitHub environment `<environment>/<name>`.
    /// ```yaml
    /// clusters:
    ///   - name: eu-1
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Kubeconfig context of this cluster (default: `cluster.context`).
    /// ```yaml
    /// clusters:
    ///   - { name: eu-1, context: production-eu-1 }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Kubeconfig file of this cluster (`~` expands). Given here, it names this cluster and
    /// wins over `KUBECONFIG`; `--kubeconfig` still wins. Default: `cluster.kubeconfig`.
    /// ```yaml
    /// clusters:
    ///   - { name: eu-1, kubeconfig: ~/.kube/eu-1.yaml }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<String>,
    /// Namespace in this cluster (default: `cluster.namespace`).
    /// ```yaml
    /// clusters:
    ///   - { name: eu-1, namespace: world-address-eu }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The wave this cluster is deployed in (1 or more, default 1): wave 2 starts once every
    /// cluster of wave 1 succeeded. A first wave of one cluster serves as the canary wave.
    /// ```yaml
    /// clusters:
    ///   - { name: eu-1, wave: 1 }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<u32>,
    /// Service pods in this cluster when autoscaling is off (default: `replicas`).
    /// ```yaml
    /// clusters:
    ///   - { name: eu-1, replicas: 4 }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Configuration values for this cluster, merged key by key over `config`.
    /// ```yaml
    /// clusters:
    ///   - { name: eu-1, config: { REGION: eu-1 } }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
    /// Base URL the smoke suite targets in this cluster (default: `smoke.url`).
    /// ```yaml
    /// clusters:
    ///   - { name: eu-1, smokeUrl: https://eu-1.address.example }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smoke_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FleetSource {
    /// When a cluster fails (and is rolled back): `stop` keeps the clusters that already
    /// succeeded at their new revision and starts no later wave (default); `rollback-all`
    /// also rolls back every cluster that succeeded in this deploy.
    /// ```yaml
    /// fleet:
    ///   onFailure: rollback-all
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailureSource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailureSource {
    /// Roll back the failed cluster only; start no later wave.
    Stop,
    /// Roll back the failed cluster and every cluster this deploy changed.
    RollbackAll,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AutoscalingSource {
    /// Render a HorizontalPodAutoscaler (then `replicas` is only the starting point).
    /// ```yaml
    /// autoscaling:
    ///   enabled: true
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Fewest pods.
    /// ```yaml
    /// autoscaling:
    ///   min: 2
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    /// Most pods.
    /// ```yaml
    /// autoscaling:
    ///   max: 10
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// Target average CPU utilisation, percent of requests.
    /// ```yaml
    /// autoscaling:
    ///   cpu: 70
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// Target average memory utilisation, percent of requests.
    /// ```yaml
    /// autoscaling:
    ///   memory: 80
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    /// How fast to add pods.
    /// ```yaml
    /// autoscaling:
    ///   scaleUp: { stabilizationSeconds: 0, percent: 100, periodSeconds: 15 }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingBehaviourSource>,
    /// How fast to remove pods.
    /// ```yaml
    /// autoscaling:
    ///   scaleDown: { stabilizationSeconds: 300, percent: 50, periodSeconds: 60 }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingBehaviourSource>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScalingBehaviourSource {
    /// Seconds of past recommendations considered before scaling.
    /// ```yaml
    /// stabilizationSeconds: 300
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stabilization_seconds: Option<u32>,
    /// Largest change per period, percent of current pods.
    /// ```yaml
    /// percent: 50
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    /// Length of one period in seconds.
    /// ```yaml
    /// periodSeconds: 60
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourcesSource {
    /// What the scheduler reserves.
    /// ```yaml
    /// resources:
    ///   requests: { cpu: 100m, memory: 64Mi }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourceAmountsSource>,
    /// What the container may use at most.
    /// ```yaml
    /// resources:
    ///   limits: { cpu: "1", memory: 256Mi }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceAmountsSource>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceAmountsSource {
    /// CPU as a Kubernetes quantity.
    /// ```yaml
    /// cpu: 250m
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Memory as a Kubernetes quantity.
    /// ```yaml
    /// memory: 128Mi
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProbesSource {
    /// Restarts the container when it fails.
    /// ```yaml
    /// probes:
    ///   liveness: { path: /healthz, periodSeconds: 10 }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness: Option<ProbeSource>,
    /// Takes the pod out of the Service while it fails.
    /// ```yaml
    /// probes:
    ///   readiness: { path: /readyz, periodSeconds: 5 }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ProbeSource>,
    /// Holds the other probes back until the service has started.
    /// ```yaml
    /// probes:
    ///   startup: { path: /healthz, periodSeconds: 2, failureThreshold: 30 }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup: Option<ProbeSource>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProbeSource {
    /// HTTP path probed on the container port.
    /// ```yaml
    /// path: /healthz
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Seconds before the first probe.
    /// ```yaml
    /// initialDelaySeconds: 0
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<u32>,
    /// Seconds between probes.
    /// ```yaml
    /// periodSeconds: 10
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<u32>,
    /// Seconds before one probe counts as failed.
    /// ```yaml
    /// timeoutSeconds: 2
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Consecutive failures before acting.
    /// ```yaml
    /// failureThreshold: 3
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
}

/// A count of pods, or a percentage of the desired count such as `"25%"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum IntOrPercent {
    Int(u32),
    Percent(String),
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RolloutSource {
    /// Extra pods allowed during a rollout.
    /// ```yaml
    /// rollout:
    ///   maxSurge: 25%
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrPercent>,
    /// Pods that may be unavailable during a rollout; 0 keeps full capacity.
    /// ```yaml
    /// rollout:
    ///   maxUnavailable: 0
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrPercent>,
    /// Seconds without progress before the rollout counts as failed.
    /// ```yaml
    /// rollout:
    ///   progressDeadlineSeconds: 300
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<u32>,
    /// Seconds a stopping pod gets to drain.
    /// ```yaml
    /// rollout:
    ///   terminationGracePeriodSeconds: 30
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<u32>,
    /// Seconds a stopping pod keeps serving so endpoints can drop it first.
    /// ```yaml
    /// rollout:
    ///   preStopSeconds: 5
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_stop_seconds: Option<u32>,
    /// How a new version replaces the old one: `rolling` (the Deployment's rolling update,
    /// the default) or `canary` (a second Deployment of the new version takes a growing
    /// share of the traffic, step by step, while Prometheus judges it; needs
    /// `monitoring.mode: bundled`).
    /// ```yaml
    /// rollout:
    ///   strategy: canary
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RolloutStrategy>,
    /// Canary steps, in order: the share of pods running the new version (percent, 1-99,
    /// increasing) and how long it is analysed at that share. Default: 25% then 50%, 60 s
    /// each.
    /// ```yaml
    /// rollout:
    ///   steps:
    ///     - { weight: 25, analyze: 60s }
    ///     - { weight: 50, analyze: 60s }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<CanaryStepSource>>,
    /// How each canary step is judged from the service's own metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSource>,
}

/// `rolling` or `canary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RolloutStrategy {
    Rolling,
    Canary,
}

/// One canary step.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CanaryStepSource {
    /// Percent of the pods (and so of the requests) that run the new version, 1-99.
    /// ```yaml
    /// weight: 25
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// How long the step is analysed before the next one starts.
    /// ```yaml
    /// analyze: 60s
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analyze: Option<String>,
}

/// The canary analysis: which metrics, how often, and how many bad measurements stop it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnalysisSource {
    /// Time between two measurements; each one reads every metric over the last
    /// interval (at least four scrape intervals). Default 10s.
    /// ```yaml
    /// interval: 10s
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Failed measurements that stop the canary (default 1: the first one does).
    /// ```yaml
    /// failureLimit: 1
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<u32>,
    /// Inconclusive measurements (no data, Prometheus unreachable) that stop the canary
    /// (default 2); it then fails closed: nothing is promoted.
    /// ```yaml
    /// inconclusiveLimit: 2
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inconclusive_limit: Option<u32>,
    /// Judge the canary against the stable pods over the same window (default true): a
    /// metric beyond its threshold fails only when the stable pods do better.
    /// ```yaml
    /// baseline: true
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<bool>,
    /// The metrics judged; default: the success rate and the p95 latency of the rendered
    /// alert rules. In a query, `$track` stands for `canary` or `stable` and `$window` for
    /// the measurement's range.
    /// ```yaml
    /// metrics:
    ///   - name: success-rate
    ///     query: sum(rate(http_requests_total{job="address-service",track="$track",status!~"5.."}[$window])) / sum(rate(http_requests_total{job="address-service",track="$track"}[$window]))
    ///     min: 0.99
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<MetricSource>>,
    /// The Prometheus to query, as an http:// or https:// URL, instead of the bundled one
    /// through the Kubernetes API server's service proxy (the default). It must scrape the
    /// service's pods with their `track` label (the bundled one's configuration does).
    /// Never one for the other: a URL that does not answer makes the analysis inconclusive.
    /// ```yaml
    /// prometheus: https://prometheus.example.com
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<String>,
}

/// One metric of the canary analysis: a PromQL query giving one number, and its bound.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricSource {
    /// Shown in events and errors.
    /// ```yaml
    /// name: success-rate
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// PromQL with `$track` (and usually `$window`), giving one value.
    /// ```yaml
    /// query: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{track="$track"}[$window])))
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The lowest passing value (give `min` or `max`).
    /// ```yaml
    /// min: 0.99
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The highest passing value (give `min` or `max`).
    /// ```yaml
    /// max: 0.25
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressSource {
    /// Render an Ingress.
    /// ```yaml
    /// ingress:
    ///   enabled: true
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Public host name.
    /// ```yaml
    /// ingress:
    ///   host: address.staging.example.com
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// IngressClass to use. The Ingress's annotations are ingress-nginx's; with
    /// `rollout.strategy: canary` the class must be `nginx`, whose canary annotations carry
    /// each step's weight (another class is refused).
    /// ```yaml
    /// ingress:
    ///   className: nginx
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// TLS: a cert-manager issuer, or an existing Secret with the certificate.
    /// ```yaml
    /// ingress:
    ///   tls: { issuer: letsencrypt-prod }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSource>,
    /// Requests per second per client, with a burst above it.
    /// ```yaml
    /// ingress:
    ///   rateLimit: { requestsPerSecond: 20, burst: 40 }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSource>,
    /// Largest request body, as an nginx size.
    /// ```yaml
    /// ingress:
    ///   bodySize: 64k
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_size: Option<String>,
    /// Proxy timeouts, as durations.
    /// ```yaml
    /// ingress:
    ///   timeouts: { connect: 5s, read: 30s, send: 30s }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<TimeoutsSource>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsSource {
    /// cert-manager ClusterIssuer that issues the certificate.
    /// ```yaml
    /// issuer: letsencrypt-prod
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Secret holding the certificate (defaults to `<app>-tls` with an issuer).
    /// ```yaml
    /// secretName: address-service-tls
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitSource {
    /// Sustained requests per second per client address.
    /// ```yaml
    /// requestsPerSecond: 20
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
    /// Requests allowed above the rate before 429.
    /// ```yaml
    /// burst: 40
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeoutsSource {
    /// Connecting to the service.
    /// ```yaml
    /// connect: 5s
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<String>,
    /// Waiting for the service's response.
    /// ```yaml
    /// read: 30s
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<String>,
    /// Sending the request to the service.
    /// ```yaml
    /// send: 30s
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ComponentsSource {
    /// PostgreSQL for API keys and the audit log.
    /// ```yaml
    /// components:
    ///   postgres: { enabled: true, storage: 10Gi }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<ComponentSource>,
    /// Redis for rate limits shared across replicas.
    /// ```yaml
    /// components:
    ///   redis: { enabled: true, storage: 1Gi }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<ComponentSource>,
    /// Prometheus scraping the service and evaluating the alert rules.
    /// ```yaml
    /// components:
    ///   prometheus: { enabled: true, scrapeInterval: 15s }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<ComponentSource>,
    /// Grafana with the service dashboard.
    /// ```yaml
    /// components:
    ///   grafana: { enabled: false }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grafana: Option<ComponentSource>,
    /// nginx in front of the service in the local stack.
    /// ```yaml
    /// components:
    ///   nginx: { enabled: true }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nginx: Option<ComponentSource>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ComponentSource {
    /// Deploy this component.
    /// ```yaml
    /// enabled: true
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Image to run.
    /// ```yaml
    /// image: docker.io/library/postgres:15
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Persistent volume size (postgres, redis, prometheus).
    /// ```yaml
    /// storage: 10Gi
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// CPU and memory of the component's container.
    /// ```yaml
    /// resources: { requests: { cpu: 100m, memory: 256Mi } }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSource>,
    /// Prometheus only: how often targets are scraped.
    /// ```yaml
    /// scrapeInterval: 15s
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<String>,
    /// Prometheus only: how long samples are kept.
    /// ```yaml
    /// retention: 15d
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
}

/// Who runs Prometheus for a Kubernetes environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MonitoringModeSource {
    /// No monitoring objects in the cluster (the local stack still runs `components.prometheus`).
    Off,
    /// wactl deploys Prometheus (and Grafana when `components.grafana` is enabled) into the
    /// environment's namespace, configured from `components.prometheus`.
    Bundled,
    /// The cluster runs the Prometheus Operator: wactl renders a ServiceMonitor, a
    /// PrometheusRule and the dashboard as a ConfigMap for the Grafana sidecar.
    Operator,
}

/// How the bundled Prometheus finds the service's pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DiscoverySource {
    /// Kubernetes service discovery (pods of the namespace), through the API server, with a
    /// Role limited to the namespace.
    Kubernetes,
    /// DNS service discovery through a headless Service, for clusters whose pods cannot reach
    /// the API server (no RBAC needed).
    Dns,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MonitoringSource {
    /// `off`, `bundled` or `operator`.
    /// ```yaml
    /// monitoring:
    ///   mode: bundled
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<MonitoringModeSource>,
    /// Bundled only: how Prometheus discovers the service's pods (`kubernetes` or `dns`).
    /// ```yaml
    /// monitoring:
    ///   discovery: kubernetes
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoverySource>,
    /// Operator only: labels put on the ServiceMonitor and PrometheusRule so that the
    /// operator's `serviceMonitorSelector` and `ruleSelector` pick them up.
    /// ```yaml
    /// monitoring:
    ///   labels: { release: kube-prometheus-stack }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SchedulingSource {
    /// Node labels a node must carry to run the pods (a Kubernetes `nodeSelector`).
    /// ```yaml
    /// scheduling:
    ///   nodeSelector: { wactl.dev/node: real }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Taint keys the pods tolerate (any value, any effect), so they may run on nodes
    /// tainted with them.
    /// ```yaml
    /// scheduling:
    ///   tolerate: [wactl.dev/real-node]
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerate: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceSource {
    /// Expose the Service as a NodePort on this port (30000–32767) of every node, besides
    /// its cluster IP. Without it the Service is ClusterIP only.
    /// ```yaml
    /// service:
    ///   nodePort: 30080
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_port: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRefSource {
    /// Name of the Kubernetes Secret (created outside wactl).
    /// ```yaml
    /// secret: address-service-db
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Key inside that Secret.
    /// ```yaml
    /// key: url
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrustedCaSource {
    /// Name of the Secret holding the bundle (give this or `configMap`).
    /// ```yaml
    /// secret: db-ca
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Name of the ConfigMap holding the bundle (give this or `secret`).
    /// ```yaml
    /// configMap: rds-ca-bundle
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    /// Key whose value is the PEM bundle.
    /// ```yaml
    /// key: ca.pem
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SmokeSource {
    /// Base URL the suite targets; without it, deploys reach the Service by port-forward.
    /// ```yaml
    /// smoke:
    ///   url: https://address.staging.example.com
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// How long readiness is retried before the suite fails.
    /// ```yaml
    /// smoke:
    ///   deadline: 120s
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// Timeout of each request.
    /// ```yaml
    /// smoke:
    ///   requestTimeout: 5s
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<String>,
    /// Checks added to the built-in suite; merged with inherited ones by `name`.
    /// ```yaml
    /// smoke:
    ///   checks:
    ///     - name: validate-de
    ///       method: POST
    ///       path: /v1/addresses/validate
    ///       body: { country_code: DE, city: Berlin, postal_code: "10115", street_address: Unter den Linden 1 }
    ///       status: 200
    ///       expect: { /valid: true }
    ///       maxLatencyMs: 500
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<SmokeCheckSource>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SmokeCheckSource {
    /// Unique name of the check.
    /// ```yaml
    /// name: countries
    /// ```
    pub name: String,
    /// HTTP method.
    /// ```yaml
    /// method: GET
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path below the base URL.
    /// ```yaml
    /// path: /v1/countries
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// JSON request body.
    /// ```yaml
    /// body: { country_code: US }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Expected HTTP status.
    /// ```yaml
    /// status: 200
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Expected JSON values by JSON pointer.
    /// ```yaml
    /// expect: { /valid: false, /errors/postal_code: required }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<BTreeMap<String, serde_json::Value>>,
    /// Slowest acceptable answer in milliseconds.
    /// ```yaml
    /// maxLatencyMs: 500
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GithubSource {
    /// `owner/name` of the repository (`GITHUB_REPOSITORY` overrides it in Actions).
    /// ```yaml
    /// github:
    ///   repository: world-address/wactl
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// GitHub environment name deployments are reported under.
    /// ```yaml
    /// github:
    ///   environment: staging
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Create a GitHub Deployment and statuses on each deploy.
    /// ```yaml
    /// github:
    ///   deployments: true
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployments: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalSource {
    /// Docker Compose project name of the local stack.
    /// ```yaml
    /// local:
    ///   project: world-address
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Host ports (on 127.0.0.1) per service.
    /// ```yaml
    /// local:
    ///   ports: { address-service: 8080, nginx: 8081, prometheus: 9090, grafana: 3000 }
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<BTreeMap<String, u32>>,
}
