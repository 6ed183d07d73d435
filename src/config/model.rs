//! The resolved environment: complete, validated, and what every later stage reads.
//!
//! Nothing here is optional because it was "not given": defaults are applied during
//! resolution, and an `Option` means the feature is off (no Ingress TLS, no Postgres).

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// Name of the environment (the file name without `.yaml`).
    pub name: String,
    /// Files this environment was merged from, most specific first (`staging.yaml`, `base.yaml`).
    pub files: Vec<String>,
    pub app: App,
    pub image: Image,
    pub cluster: Cluster,
    /// The clusters of an environment that lives in several (empty: only `cluster`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterTarget>,
    pub fleet: Fleet,
    pub replicas: u32,
    pub autoscaling: Option<Autoscaling>,
    pub resources: Resources,
    pub probes: Probes,
    pub rollout: Rollout,
    pub ingress: Ingress,
    pub components: Components,
    pub monitoring: Monitoring,
    pub scheduling: Scheduling,
    pub service: ServiceExposure,
    pub config: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, SecretRef>,
    /// The CA bundle mounted for the service's TLS clients; `None`: the image's system store.
    pub trusted_ca: Option<TrustedCa>,
    pub protected: bool,
    /// `wactl preview` copies this environment when no `--from` is given.
    pub previews: bool,
    pub smoke: Smoke,
    pub github: Github,
    pub local: Local,
    /// Directory whose templates override the built-in ones.
    pub templates: Option<PathBuf>,
}

impl Environment {
    /// "staging.yaml (extends base.yaml)": the header every rendered file carries.
    pub fn source_description(&self) -> String {
        match self.files.split_first() {
            Some((first, [])) => first.clone(),
            Some((first, rest)) => format!("{first} (extends {})", rest.join(", ")),
            None => self.name.clone(),
        }
    }
}

/// One cluster of an environment that lives in several, resolved: `cluster` already holds
/// the defaults of the definition's `cluster:` with this entry's overrides.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterTarget {
    pub name: String,
    pub wave: u32,
    pub cluster: Cluster,
    pub replicas: u32,
    /// The whole configuration in this cluster (`config` with this entry's keys over it).
    pub config: BTreeMap<String, String>,
    pub smoke_url: Option<String>,
    /// The entry named its own kubeconfig file: it wins over `KUBECONFIG` for this cluster.
    pub own_kubeconfig: bool,
}

/// What a deploy to several clusters does when one fails.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Fleet {
    pub on_failure: OnFailure,
}

/// Spelled `stop` and `rollback-all` everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Roll back the failed cluster; keep the others; start no later wave.
    #[default]
    Stop,
    /// Roll back every cluster this deploy changed.
    RollbackAll,
}

/// Where one deploy of an environment goes: the environment as that cluster sees it.
#[derive(Debug, Clone)]
pub struct Target {
    /// `None` for an environment with a single `cluster:`.
    pub name: Option<String>,
    pub wave: u32,
    /// The cluster's own kubeconfig file, when its entry names one.
    pub kubeconfig: Option<PathBuf>,
    pub environment: Environment,
}

impl Environment {
    /// Whether the environment names several clusters (`clusters:`).
    pub fn is_fleet(&self) -> bool {
        !self.clusters.is_empty()
    }

    /// The names of the clusters, in definition order.
    pub fn cluster_names(&self) -> Vec<&str> {
        self.clusters.iter().map(|c| c.name.as_str()).collect()
    }

    /// One resolved environment per cluster, in wave order (definition order within a
    /// wave): the single-cluster pipeline runs on each unchanged. Each has no `clusters`,
    /// its own `cluster`, replicas, config and smoke URL, and the GitHub environment
    /// `<environment>/<cluster>`.
    pub fn targets(&self) -> Vec<Target> {
        if self.clusters.is_empty() {
            return vec![Target {
                name: None,
                wave: 1,
                kubeconfig: None,
                environment: self.clone(),
            }];
        }
        let mut targets: Vec<Target> = self
            .clusters
            .iter()
            .map(|c| {
                let mut environment = self.clone();
                environment.clusters = Vec::new();
                environment.cluster = c.cluster.clone();
                environment.replicas = c.replicas;
                environment.config = c.config.clone();
                if c.smoke_url.is_some() {
                    environment.smoke.url = c.smoke_url.clone();
                }
                environment.github.environment = format!("{}/{}", self.github.environment, c.name);
                Target {
                    name: Some(c.name.clone()),
                    wave: c.wave,
                    kubeconfig: c
                        .own_kubeconfig
                        .then(|| c.cluster.kubeconfig.clone())
                        .flatten(),
                    environment,
                }
            })
            .collect();
        // A stable sort keeps definition order inside a wave.
        targets.sort_by_key(|t| t.wave);
        targets
    }
}

/// How the environment is monitored in its cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Monitoring {
    pub mode: MonitoringMode,
    /// How the bundled Prometheus finds the service's pods.
    pub discovery: Discovery,
    /// Operator mode: labels the operator's selectors match (empty otherwise).
    pub labels: BTreeMap<String, String>,
}

/// Who runs Prometheus; spelled in lowercase everywhere (`off`, `bundled`, `operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MonitoringMode {
    Off,
    /// Prometheus (and Grafana when `components.grafana` is on) in the environment's namespace.
    Bundled,
    /// ServiceMonitor, PrometheusRule and a dashboard ConfigMap for the Prometheus Operator.
    Operator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Discovery {
    Kubernetes,
    Dns,
}

/// Where the pods run; empty means anywhere the scheduler likes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scheduling {
    pub node_selector: BTreeMap<String, String>,
    /// Taint keys tolerated with `operator: Exists`.
    pub tolerate: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServiceExposure {
    /// NodePort of the Service; `None` keeps it ClusterIP.
    pub node_port: Option<u16>,
}

#[derive(Debug, Clone, Serialize)]
pub struct App {
    pub name: String,
    pub port: u16,
    pub log_level: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Image {
    pub registry: Option<String>,
    pub repository: String,
    pub tag: String,
    pub builder: String,
    pub runtime: String,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
}

impl Image {
    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        match &self.registry {
            Some(registry) => format!("{registry}/{}", self.repository),
            None => self.repository.clone(),
        }
    }

    /// The reference rendered when no built image is given.
    pub fn tagged(&self) -> String {
        format!("{}:{}", self.name(), self.tag)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub context: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    pub namespace: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Autoscaling {
    pub min: u32,
    pub max: u32,
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
    pub scale_up: ScalingBehaviour,
    pub scale_down: ScalingBehaviour,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScalingBehaviour {
    pub stabilization_seconds: u32,
    pub percent: u32,
    pub period_seconds: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Resources {
    pub requests: ResourceAmounts,
    pub limits: ResourceAmounts,
}

/// Quantities exactly as written (Kubernetes keeps them as strings), already checked.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceAmounts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Probes {
    pub liveness: Probe,
    pub readiness: Probe,
    pub startup: Probe,
}

#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub path: String,
    pub initial_delay_seconds: u32,
    pub period_seconds: u32,
    pub timeout_seconds: u32,
    pub failure_threshold: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rollout {
    /// A count or a percentage, rendered as Kubernetes' int-or-string.
    pub max_surge: serde_json::Value,
    pub max_unavailable: serde_json::Value,
    pub progress_deadline_seconds: u32,
    pub termination_grace_period_seconds: u32,
    pub pre_stop_seconds: u32,
    /// `strategy: canary`: the steps and their analysis; `None`: a rolling update.
    pub canary: Option<Canary>,
}

/// A canary rollout: a second Deployment of the new version takes each step's share of
/// the pods while its metrics are compared with the stable pods'.
#[derive(Debug, Clone, Serialize)]
pub struct Canary {
    pub steps: Vec<CanaryStep>,
    pub analysis: Analysis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CanaryStep {
    /// Percent of the pods running the new version, 1-99.
    pub weight: u32,
    pub analyze_seconds: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub interval_seconds: u64,
    /// The `$window` of the queries: the interval, at least four scrape intervals.
    pub window_seconds: u64,
    pub failure_limit: u32,
    pub inconclusive_limit: u32,
    pub baseline: bool,
    pub metrics: Vec<Metric>,
    pub prometheus: AnalysisPrometheus,
}

/// The Prometheus a canary's analysis reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnalysisPrometheus {
    /// The bundled one, through the Kubernetes API server's service proxy.
    Bundled,
    /// `rollout.analysis.prometheus`: this URL, directly.
    Url(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub name: String,
    /// PromQL with `$track` and `$window` still in it.
    pub query: String,
    pub bound: Bound,
}

/// Which side of a threshold passes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    Min(f64),
    Max(f64),
}

/// What the alert rules fire on; the canary's default metrics derive from the same numbers.
pub mod slo {
    /// `AddressServiceHighErrorRatio`: more than this share of requests answered with 5xx.
    pub const ERROR_RATIO: f64 = 0.05;
    /// `AddressServiceHighLatency`: p95 above this many seconds.
    pub const P95_SECONDS: f64 = 0.25;
}

#[derive(Debug, Clone, Serialize)]
pub struct Ingress {
    /// Render a Kubernetes Ingress (the local nginx proxy uses the same settings).
    pub enabled: bool,
    pub host: Option<String>,
    pub class_name: String,
    pub tls: Option<Tls>,
    pub rate_limit: RateLimit,
    pub body_size: String,
    pub timeouts: Timeouts,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tls {
    pub issuer: Option<String>,
    pub secret_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RateLimit {
    pub requests_per_second: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timeouts {
    pub connect_seconds: u64,
    pub read_seconds: u64,
    pub send_seconds: u64,
}

/// Supporting services; `None` when disabled.
#[derive(Debug, Clone, Serialize)]
pub struct Components {
    pub postgres: Option<Component>,
    pub redis: Option<Component>,
    pub prometheus: Option<Component>,
    pub grafana: Option<Component>,
    pub nginx: Option<Component>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Component {
    pub image: String,
    pub storage: String,
    pub resources: Resources,
    pub scrape_interval: String,
    pub retention: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretRef {
    pub secret: String,
    pub key: String,
}

/// Where the trusted CA bundle comes from and where the pod sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustedCa {
    pub source: TrustedCaKind,
    /// The Secret's or ConfigMap's name.
    pub name: String,
    pub key: String,
    /// The directory it is mounted at, read-only.
    pub mount_dir: String,
    /// `SSL_CERT_FILE` for the service: the key's file under `mount_dir`.
    pub file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TrustedCaKind {
    Secret,
    ConfigMap,
}

#[derive(Debug, Clone, Serialize)]
pub struct Smoke {
    pub url: Option<String>,
    pub deadline_seconds: u64,
    pub request_timeout_ms: u64,
    pub checks: Vec<SmokeCheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SmokeCheck {
    pub name: String,
    pub method: String,
    pub path: String,
    pub body: Option<serde_json::Value>,
    pub status: u16,
    pub expect: BTreeMap<String, serde_json::Value>,
    pub max_latency_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Github {
    pub repository: Option<String>,
    pub environment: String,
    pub deployments: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Local {
    pub project: String,
    /// Host port on 127.0.0.1 per local service.
    pub ports: BTreeMap<String, u16>,
}
