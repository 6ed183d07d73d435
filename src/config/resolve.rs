//! Resolution: a merged [`EnvironmentSource`] becomes a complete [`Environment`], with
//! defaults applied and every problem collected (not just the first).

use super::duration;
use super::error::Problem;
use super::model::*;
use super::names;
use super::quantity::Quantity;
use super::source::{self, EnvironmentSource, IntOrPercent};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Builds a located [`Problem`] for a field path of the merged definition.
pub trait Locate {
    fn problem(&self, field: &str, message: String) -> Problem;
}

/// The largest `ingress.rateLimit.burst`: to see a 429 the smoke suite's rate-limit check
/// must send more than the burst plus a second's rate, and it sends at most 2,000 requests.
pub const MAX_RATE_LIMIT_BURST: u32 = 500;

/// The local services whose host ports `local.ports` may set, with their defaults.
pub const LOCAL_SERVICES: &[(&str, u16)] = &[
    ("address-service", 8080),
    ("nginx", 8081),
    ("prometheus", 9090),
    ("grafana", 3000),
    ("postgres", 5432),
    ("redis", 6379),
];

struct Resolver<'a> {
    locate: &'a dyn Locate,
    problems: Vec<Problem>,
}

impl Resolver<'_> {
    fn report(&mut self, field: &str, message: impl Into<String>) {
        self.problems
            .push(self.locate.problem(field, message.into()));
    }

    fn report_hint(&mut self, field: &str, message: impl Into<String>, hint: impl Into<String>) {
        let problem = self.locate.problem(field, message.into()).with_hint(hint);
        self.problems.push(problem);
    }

    fn check(&mut self, field: &str, result: Result<(), String>) {
        if let Err(message) = result {
            self.report(field, message);
        }
    }

    fn quantity(&mut self, field: &str, text: Option<&String>) -> Option<f64> {
        let text = text?;
        match Quantity::parse(text) {
            Ok(q) if q.value < 0.0 => {
                self.report(field, format!("`{text}` is negative"));
                None
            }
            Ok(q) => Some(q.value),
            Err(message) => {
                self.report(field, message);
                None
            }
        }
    }

    fn duration(&mut self, field: &str, text: Option<&String>, default: Duration) -> Duration {
        let Some(text) = text else { return default };
        duration::parse(text, duration::Zero::Refused).unwrap_or_else(|e| {
            self.report_hint(field, e.to_string(), e.hint());
            default
        })
    }

    fn port(&mut self, field: &str, port: u32) -> u16 {
        match u16::try_from(port) {
            Ok(p) if p > 0 => p,
            _ => {
                self.report(field, format!("port {port} is outside 1-65535"));
                1
            }
        }
    }

    fn resources(
        &mut self,
        field: &str,
        src: Option<&source::ResourcesSource>,
        default: Resources,
    ) -> Resources {
        let Some(src) = src else { return default };
        let requests = src.requests.clone().unwrap_or_default();
        let limits = src.limits.clone().unwrap_or_default();
        for (kind, req, lim) in [
            ("cpu", &requests.cpu, &limits.cpu),
            ("memory", &requests.memory, &limits.memory),
        ] {
            let r = self.quantity(&format!("{field}.requests.{kind}"), req.as_ref());
            let l = self.quantity(&format!("{field}.limits.{kind}"), lim.as_ref());
            if let (Some(r), Some(l), Some(rt), Some(lt)) = (r, l, req, lim)
                && r > l
            {
                self.report_hint(
                    &format!("{field}.requests.{kind}"),
                    format!("{kind} request {rt} is larger than its limit {lt}"),
                    format!("raise `{field}.limits.{kind}` or lower the request"),
                );
            }
        }
        Resources {
            requests: ResourceAmounts {
                cpu: requests.cpu.or(default.requests.cpu),
                memory: requests.memory.or(default.requests.memory),
            },
            limits: ResourceAmounts {
                cpu: limits.cpu.or(default.limits.cpu),
                memory: limits.memory.or(default.limits.memory),
            },
        }
    }

    fn probe(&mut self, field: &str, src: Option<&source::ProbeSource>, default: Probe) -> Probe {
        let src = src.cloned().unwrap_or_default();
        let probe = Probe {
            path: src.path.unwrap_or(default.path),
            initial_delay_seconds: src
                .initial_delay_seconds
                .unwrap_or(default.initial_delay_seconds),
            period_seconds: src.period_seconds.unwrap_or(default.period_seconds),
            timeout_seconds: src.timeout_seconds.unwrap_or(default.timeout_seconds),
            failure_threshold: src.failure_threshold.unwrap_or(default.failure_threshold),
        };
        if !probe.path.starts_with('/') {
            self.report(
                &format!("{field}.path"),
                format!("probe path `{}` must start with `/`", probe.path),
            );
        }
        for (name, value) in [
            ("periodSeconds", probe.period_seconds),
            ("timeoutSeconds", probe.timeout_seconds),
            ("failureThreshold", probe.failure_threshold),
        ] {
            if value == 0 {
                self.report(
                    &format!("{field}.{name}"),
                    format!("{name} must be at least 1"),
                );
            }
        }
        probe
    }

    fn int_or_percent(
        &mut self,
        field: &str,
        value: Option<&IntOrPercent>,
        default: serde_json::Value,
    ) -> serde_json::Value {
        match value {
            None => default,
            Some(IntOrPercent::Int(n)) => serde_json::Value::from(*n),
            Some(IntOrPercent::Percent(text)) => {
                let ok = text
                    .strip_suffix('%')
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| n <= 100);
                if !ok {
                    self.report(
                        field,
                        format!("`{text}` is neither a pod count nor a percentage such as 25%"),
                    );
                }
                serde_json::Value::from(text.clone())
            }
        }
    }

    fn component(
        &mut self,
        field: &str,
        src: Option<&source::ComponentSource>,
        defaults: ComponentDefaults,
    ) -> Option<Component> {
        let src = src.cloned().unwrap_or_default();
        if !src.enabled.unwrap_or(defaults.enabled) {
            return None;
        }
        let image = src.image.unwrap_or_else(|| defaults.image.to_owned());
        self.check(
            &format!("{field}.image"),
            names::check_image_reference(&image),
        );
        let storage = src.storage.unwrap_or_else(|| defaults.storage.to_owned());
        self.quantity(&format!("{field}.storage"), Some(&storage));
        let resources = self.resources(
            &format!("{field}.resources"),
            src.resources.as_ref(),
            defaults.resources(),
        );
        // Given as text and checked as durations (the default only stands in for a bad one).
        let scrape_interval = src
            .scrape_interval
            .unwrap_or_else(|| defaults::SCRAPE_INTERVAL.to_owned());
        self.duration(
            &format!("{field}.scrapeInterval"),
            Some(&scrape_interval),
            Duration::ZERO,
        );
        let retention = src
            .retention
            .unwrap_or_else(|| defaults::RETENTION.to_owned());
        self.duration(
            &format!("{field}.retention"),
            Some(&retention),
            Duration::ZERO,
        );
        Some(Component {
            image,
            storage,
            resources,
            scrape_interval,
            retention,
        })
    }
}

struct ComponentDefaults {
    enabled: bool,
    image: &'static str,
    storage: &'static str,
    cpu: &'static str,
    memory: &'static str,
}

impl ComponentDefaults {
    fn resources(&self) -> Resources {
        Resources {
            requests: ResourceAmounts {
                cpu: Some(self.cpu.to_owned()),
                memory: Some(self.memory.to_owned()),
            },
            limits: ResourceAmounts {
                cpu: None,
                memory: Some(self.memory.to_owned()),
            },
        }
    }
}

/// What a definition gets for what it does not say, by section. The docs of each field in
/// `source.rs` name the same values.
mod defaults {
    use super::ComponentDefaults;
    use std::time::Duration;

    pub const APP_NAME: &str = "address-service";
    pub const APP_PORT: u32 = 8080;
    pub const LOG_LEVEL: &str = "info";
    pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

    pub const IMAGE_TAG: &str = "latest";
    pub const BUILDER: &str = "docker.io/library/rust:1.95-bookworm";
    pub const RUNTIME: &str = "gcr.io/distroless/cc-debian12:nonroot";

    pub const REPLICAS: u32 = 2;
    /// `autoscaling.max` when unset: this many times `min`.
    pub const AUTOSCALING_MAX_PER_MIN: u32 = 5;
    /// (stabilizationSeconds, percent, periodSeconds)
    pub const SCALE_UP: (u32, u32, u32) = (0, 100, 15);
    pub const SCALE_DOWN: (u32, u32, u32) = (300, 50, 60);

    pub const CPU_REQUEST: &str = "100m";
    pub const MEMORY_REQUEST: &str = "64Mi";
    pub const MEMORY_LIMIT: &str = "256Mi";

    /// (path, periodSeconds, failureThreshold)
    pub const LIVENESS: (&str, u32, u32) = ("/healthz", 10, 3);
    pub const READINESS: (&str, u32, u32) = ("/readyz", 5, 2);
    pub const STARTUP: (&str, u32, u32) = ("/healthz", 2, 30);
    pub const PROBE_TIMEOUT_SECONDS: u32 = 2;

    pub const MAX_SURGE: &str = "25%";
    pub const MAX_UNAVAILABLE: u32 = 0;
    pub const PROGRESS_DEADLINE_SECONDS: u32 = 300;
    pub const TERMINATION_GRACE_PERIOD_SECONDS: u32 = 30;
    pub const PRE_STOP_SECONDS: u32 = 5;

    pub const INGRESS_CLASS: &str = "nginx";
    pub const REQUESTS_PER_SECOND: u32 = 20;
    pub const BURST: u32 = 40;
    pub const BODY_SIZE: &str = "64k";
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    pub const READ_TIMEOUT: Duration = Duration::from_secs(30);
    pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

    pub const SCRAPE_INTERVAL: &str = "15s";
    pub const RETENTION: &str = "15d";
    pub const POSTGRES: ComponentDefaults = ComponentDefaults {
        enabled: false,
        image: "docker.io/library/postgres:15",
        storage: "10Gi",
        cpu: "100m",
        memory: "256Mi",
    };
    pub const REDIS: ComponentDefaults = ComponentDefaults {
        enabled: false,
        image: "docker.io/library/redis:7",
        storage: "1Gi",
        cpu: "50m",
        memory: "64Mi",
    };
    pub const PROMETHEUS: ComponentDefaults = ComponentDefaults {
        enabled: false,
        image: "docker.io/prom/prometheus:v2.53.0",
        storage: "10Gi",
        cpu: "100m",
        memory: "512Mi",
    };
    pub const GRAFANA: ComponentDefaults = ComponentDefaults {
        enabled: false,
        image: "docker.io/grafana/grafana:11.1.0",
        storage: "1Gi",
        cpu: "50m",
        memory: "128Mi",
    };
    pub const NGINX: ComponentDefaults = ComponentDefaults {
        enabled: false,
        image: "docker.io/library/nginx:1.27",
        storage: "0",
        cpu: "50m",
        memory: "64Mi",
    };

    /// Canary steps when none are given: (weight percent, analysed seconds).
    pub const CANARY_STEPS: &[(u32, u64)] = &[(25, 60), (50, 60)];
    pub const ANALYSIS_INTERVAL: Duration = Duration::from_secs(10);
    pub const SMOKE_DEADLINE: Duration = Duration::from_secs(120);
    pub const SMOKE_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
    pub const CHECK_METHOD: &str = "GET";
    pub const CHECK_PATH: &str = "/";
    pub const CHECK_STATUS: u16 = 200;
    pub const HTTP_METHODS: [&str; 7] =
        ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
}

/// Resolves `src`, the merge of `files` (most specific first), for environment `name`:
/// one resolver per section, every problem of every section collected.
pub fn resolve(
    name: &str,
    files: Vec<String>,
    base_dir: &std::path::Path,
    src: EnvironmentSource,
    locate: &dyn Locate,
) -> Result<Environment, Vec<Problem>> {
    let mut r = Resolver {
        locate,
        problems: Vec::new(),
    };
    let app = r.app(src.app.unwrap_or_default());
    let image = r.image(src.image.unwrap_or_default(), &app.name);
    let cluster = r.cluster(src.cluster.unwrap_or_default(), &app.name);
    let replicas = src.replicas.unwrap_or(defaults::REPLICAS);
    let autoscaling = r.autoscaling(src.autoscaling.unwrap_or_default(), replicas);
    let resources = r.resources(
        "resources",
        src.resources.as_ref(),
        Resources {
            requests: ResourceAmounts {
                cpu: Some(defaults::CPU_REQUEST.into()),
                memory: Some(defaults::MEMORY_REQUEST.into()),
            },
            limits: ResourceAmounts {
                cpu: None,
                memory: Some(defaults::MEMORY_LIMIT.into()),
            },
        },
    );
    if autoscaling.as_ref().is_some_and(|a| a.cpu.is_some()) && resources.requests.cpu.is_none() {
        r.report(
            "resources.requests.cpu",
            "CPU autoscaling needs a CPU request",
        );
    }
    let probes = r.probes(src.probes.unwrap_or_default());
    let mut rollout_src = src.rollout.unwrap_or_default();
    let canary_src = (
        rollout_src.strategy.take(),
        rollout_src.steps.take(),
        rollout_src.analysis.take(),
    );
    let mut rollout = r.rollout(rollout_src);
    let ingress = r.ingress(src.ingress.unwrap_or_default(), &app.name);
    let components = r.components(src.components.unwrap_or_default());
    let monitoring = resolve_monitoring(&mut r, src.monitoring.unwrap_or_default(), &components);
    rollout.canary = resolve_canary(&mut r, canary_src, &monitoring, &components);
    // A canary's weight reaches the Ingress through ingress-nginx's canary annotations; a
    // second Ingress for the same host under another controller would be served as it sees
    // fit (all, none or half of the requests), so the combination is refused, not guessed.
    if rollout.canary.is_some() && ingress.enabled && ingress.class_name != defaults::INGRESS_CLASS
    {
        r.report_hint(
            "ingress.className",
            format!(
                "a canary weights the Ingress's traffic with ingress-nginx's canary annotations, and class `{}` is not `{}`",
                ingress.class_name,
                defaults::INGRESS_CLASS
            ),
            "use ingress-nginx's class `nginx`, or `ingress.enabled: false` (the canary's share then follows the replica ratio), or `rollout.strategy: rolling`",
        );
    }
    let config = src.config.unwrap_or_default();
    for (key, value) in &config {
        r.check(&format!("config.{key}"), names::check_env_var(key));
        if let Some(e) = duration::check_service_setting(key, value) {
            r.report_hint(&format!("config.{key}"), e.to_string(), e.hint());
        }
    }
    let secrets = r.secrets(src.secrets.unwrap_or_default(), &config);
    let trusted_ca = resolve_trusted_ca(&mut r, src.trusted_ca, &config, &secrets);
    let scheduling = r.scheduling(src.scheduling.unwrap_or_default());
    let service = r.service(src.service.unwrap_or_default());
    let smoke = r.smoke(src.smoke.unwrap_or_default());
    let github = r.github(src.github.unwrap_or_default(), name);
    let local = r.local(src.local.unwrap_or_default(), name);
    let templates = src.templates.map(|dir| r.templates(&dir, base_dir));
    let clusters = r.clusters(src.clusters, &cluster, replicas, &config, &smoke);
    let fleet = Fleet {
        on_failure: match src.fleet.and_then(|f| f.on_failure) {
            Some(source::OnFailureSource::RollbackAll) => OnFailure::RollbackAll,
            Some(source::OnFailureSource::Stop) | None => OnFailure::Stop,
        },
    };

    if !r.problems.is_empty() {
        return Err(r.problems);
    }
    Ok(Environment {
        name: name.to_owned(),
        files,
        app,
        image,
        cluster,
        clusters,
        fleet,
        replicas,
        autoscaling,
        resources,
        probes,
        rollout,
        ingress,
        components,
        monitoring,
        scheduling,
        service,
        config,
        secrets,
        protected: src.protected.unwrap_or(false),
        previews: src.previews.unwrap_or(false),
        smoke,
        github,
        local,
        templates,
        trusted_ca,
    })
}

/// The resolvers of the sections, in the order of the definition.
impl Resolver<'_> {
    fn app(&mut self, src: source::AppSource) -> App {
        let name = src.name.unwrap_or_else(|| defaults::APP_NAME.to_owned());
        self.check("app.name", names::check_dns_label(&name));
        let port = self.port("app.port", src.port.unwrap_or(defaults::APP_PORT));
        let log_level = src
            .log_level
            .unwrap_or_else(|| defaults::LOG_LEVEL.to_owned());
        if !defaults::LOG_LEVELS.contains(&log_level.as_str()) {
            self.report(
                "app.logLevel",
                format!("`{log_level}` is not a log level (error, warn, info, debug, trace)"),
            );
        }
        App {
            name,
            port,
            log_level,
        }
    }

    fn image(&mut self, src: source::ImageSource, app_name: &str) -> Image {
        if let Some(registry) = &src.registry {
            self.check("image.registry", names::check_registry(registry));
        }
        let repository = src
            .repository
            .unwrap_or_else(|| format!("world-address/{app_name}"));
        self.check("image.repository", names::check_repository(&repository));
        let tag = src.tag.unwrap_or_else(|| defaults::IMAGE_TAG.to_owned());
        self.check("image.tag", names::check_tag(&tag));
        let builder = src.builder.unwrap_or_else(|| defaults::BUILDER.to_owned());
        self.check("image.builder", names::check_image_reference(&builder));
        let runtime = src.runtime.unwrap_or_else(|| defaults::RUNTIME.to_owned());
        self.check("image.runtime", names::check_image_reference(&runtime));
        let build_args = src.build_args.unwrap_or_default();
        for key in build_args.keys() {
            self.check(&format!("image.buildArgs.{key}"), names::check_env_var(key));
        }
        Image {
            registry: src.registry,
            repository,
            tag,
            builder,
            runtime,
            build_args,
            target: src.target,
        }
    }

    fn cluster(&mut self, src: source::ClusterSource, app_name: &str) -> Cluster {
        let namespace = src.namespace.unwrap_or_else(|| app_name.to_owned());
        self.check("cluster.namespace", names::check_dns_label(&namespace));
        Cluster {
            context: src.context,
            kubeconfig: src.kubeconfig.map(|k| expand_home(&k)),
            namespace,
        }
    }

    /// `clusters:`: each entry over the defaults of `cluster:`; names unique, waves from 1,
    /// and no two entries deploying to the same namespace of the same cluster.
    fn clusters(
        &mut self,
        src: Option<Vec<source::ClusterEntrySource>>,
        defaults: &Cluster,
        replicas: u32,
        config: &BTreeMap<String, String>,
        smoke: &Smoke,
    ) -> Vec<ClusterTarget> {
        let Some(entries) = src else {
            return Vec::new();
        };
        if entries.is_empty() {
            self.report_hint(
                "clusters",
                "`clusters` is empty",
                "name at least one cluster, or remove `clusters` to use `cluster` alone",
            );
        }
        let mut targets: Vec<ClusterTarget> = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let field = format!("clusters[{i}]");
            let Some(name) = entry.name else {
                self.report_hint(
                    &field,
                    "a cluster needs a `name`",
                    "add `name: eu-1` (a DNS-1123 label)",
                );
                continue;
            };
            self.check(&format!("{field}.name"), names::check_dns_label(&name));
            if targets.iter().any(|t| t.name == name) {
                self.report_hint(
                    &format!("{field}.name"),
                    format!("cluster `{name}` is named twice"),
                    "each entry of `clusters` needs its own name",
                );
            }
            let wave = entry.wave.unwrap_or(1);
            if wave == 0 {
                self.report_hint(
                    &format!("{field}.wave"),
                    "wave 0 does not exist",
                    "waves count from 1 (the first wave deployed)",
                );
            }
            let namespace = entry
                .namespace
                .unwrap_or_else(|| defaults.namespace.clone());
            if let Err(message) = names::check_dns_label(&namespace) {
                self.report(&format!("{field}.namespace"), message);
            }
            if let Some(url) = &entry.smoke_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                self.report(
                    &format!("{field}.smokeUrl"),
                    format!("`{url}` is not an http:// or https:// URL"),
                );
            }
            let mut merged = config.clone();
            for (key, value) in entry.config.unwrap_or_default() {
                let at = format!("{field}.config.{key}");
                self.check(&at, names::check_env_var(&key));
                if let Some(e) = duration::check_service_setting(&key, &value) {
                    self.report_hint(&at, e.to_string(), e.hint());
                }
                merged.insert(key, value);
            }
            let own_kubeconfig = entry.kubeconfig.is_some();
            let cluster = Cluster {
                context: entry.context.or_else(|| defaults.context.clone()),
                kubeconfig: entry
                    .kubeconfig
                    .map(|k| expand_home(&k))
                    .or_else(|| defaults.kubeconfig.clone()),
                namespace,
            };
            let same_place = targets.iter().find(|t| {
                t.cluster.context == cluster.context
                    && t.cluster.kubeconfig == cluster.kubeconfig
                    && t.cluster.namespace == cluster.namespace
            });
            if let Some(other) = same_place {
                self.report_hint(
                    &field,
                    format!(
                        "cluster `{name}` deploys to the same context and namespace as `{}`",
                        other.name
                    ),
                    "give each cluster its own `context` (or `kubeconfig`) or `namespace`",
                );
            }
            targets.push(ClusterTarget {
                name,
                wave,
                cluster,
                replicas: entry.replicas.unwrap_or(replicas),
                config: merged,
                smoke_url: entry.smoke_url.or_else(|| smoke.url.clone()),
                own_kubeconfig,
            });
        }
        targets
    }

    fn autoscaling(
        &mut self,
        src: source::AutoscalingSource,
        replicas: u32,
    ) -> Option<Autoscaling> {
        if !src.enabled.unwrap_or(false) {
            return None;
        }
        let min = src.min.unwrap_or(replicas.max(1));
        let max = src
            .max
            .unwrap_or(min.max(1) * defaults::AUTOSCALING_MAX_PER_MIN);
        if min == 0 {
            self.report("autoscaling.min", "autoscaling.min must be at least 1");
        }
        if min > max {
            self.report_hint(
                "autoscaling.min",
                format!("autoscaling.min ({min}) is greater than autoscaling.max ({max})"),
                "make `min` at most `max`",
            );
        }
        if src.cpu.is_none() && src.memory.is_none() {
            self.report_hint(
                "autoscaling",
                "autoscaling is enabled without a target",
                "set `cpu` or `memory` (target utilisation in percent)",
            );
        }
        for (field, value) in [
            ("autoscaling.cpu", src.cpu),
            ("autoscaling.memory", src.memory),
        ] {
            if let Some(v) = value
                && !(1..=1000).contains(&v)
            {
                self.report(field, format!("target utilisation {v}% is outside 1-1000"));
            }
        }
        let behaviour = |b: Option<source::ScalingBehaviourSource>, (stab, percent, period)| {
            let b = b.unwrap_or_default();
            ScalingBehaviour {
                stabilization_seconds: b.stabilization_seconds.unwrap_or(stab),
                percent: b.percent.unwrap_or(percent),
                period_seconds: b.period_seconds.unwrap_or(period),
            }
        };
        let scale_up = behaviour(src.scale_up, defaults::SCALE_UP);
        let scale_down = behaviour(src.scale_down, defaults::SCALE_DOWN);
        for (field, b) in [
            ("autoscaling.scaleUp", &scale_up),
            ("autoscaling.scaleDown", &scale_down),
        ] {
            if b.percent == 0 {
                self.report(&format!("{field}.percent"), "percent must be at least 1");
            }
            if !(1..=1800).contains(&b.period_seconds) {
                self.report(
                    &format!("{field}.periodSeconds"),
                    format!("periodSeconds {} is outside 1-1800", b.period_seconds),
                );
            }
            if b.stabilization_seconds > 3600 {
                self.report(
                    &format!("{field}.stabilizationSeconds"),
                    "stabilizationSeconds is at most 3600",
                );
            }
        }
        Some(Autoscaling {
            min,
            max,
            cpu: src.cpu,
            memory: src.memory,
            scale_up,
            scale_down,
        })
    }

    fn probes(&mut self, src: source::ProbesSource) -> Probes {
        let probe = |(path, period, failures): (&str, u32, u32)| Probe {
            path: path.to_owned(),
            initial_delay_seconds: 0,
            period_seconds: period,
            timeout_seconds: defaults::PROBE_TIMEOUT_SECONDS,
            failure_threshold: failures,
        };
        Probes {
            liveness: self.probe(
                "probes.liveness",
                src.liveness.as_ref(),
                probe(defaults::LIVENESS),
            ),
            readiness: self.probe(
                "probes.readiness",
                src.readiness.as_ref(),
                probe(defaults::READINESS),
            ),
            startup: self.probe(
                "probes.startup",
                src.startup.as_ref(),
                probe(defaults::STARTUP),
            ),
        }
    }

    fn rollout(&mut self, src: source::RolloutSource) -> Rollout {
        let rollout = Rollout {
            max_surge: self.int_or_percent(
                "rollout.maxSurge",
                src.max_surge.as_ref(),
                serde_json::Value::from(defaults::MAX_SURGE),
            ),
            max_unavailable: self.int_or_percent(
                "rollout.maxUnavailable",
                src.max_unavailable.as_ref(),
                serde_json::Value::from(defaults::MAX_UNAVAILABLE),
            ),
            progress_deadline_seconds: src
                .progress_deadline_seconds
                .unwrap_or(defaults::PROGRESS_DEADLINE_SECONDS),
            termination_grace_period_seconds: src
                .termination_grace_period_seconds
                .unwrap_or(defaults::TERMINATION_GRACE_PERIOD_SECONDS),
            pre_stop_seconds: src.pre_stop_seconds.unwrap_or(defaults::PRE_STOP_SECONDS),
            canary: None,
        };
        let is_zero = |v: &serde_json::Value| {
            v == &serde_json::Value::from(0) || v == &serde_json::Value::from("0%")
        };
        if is_zero(&rollout.max_surge) && is_zero(&rollout.max_unavailable) {
            self.report_hint(
                "rollout.maxSurge",
                "maxSurge and maxUnavailable are both zero, so a rollout can never start",
                "allow a surge, such as maxSurge: 1",
            );
        }
        if rollout.progress_deadline_seconds == 0 {
            self.report(
                "rollout.progressDeadlineSeconds",
                "progressDeadlineSeconds must be at least 1",
            );
        }
        if rollout.pre_stop_seconds >= rollout.termination_grace_period_seconds {
            self.report_hint(
                "rollout.preStopSeconds",
                format!("preStopSeconds ({}) leaves no time to drain within terminationGracePeriodSeconds ({})", rollout.pre_stop_seconds, rollout.termination_grace_period_seconds),
                "make preStopSeconds smaller than terminationGracePeriodSeconds",
            );
        }
        rollout
    }

    fn ingress(&mut self, src: source::IngressSource, app_name: &str) -> Ingress {
        let enabled = src.enabled.unwrap_or(false);
        if let Some(host) = &src.host {
            self.check("ingress.host", names::check_host(host));
        } else if enabled {
            self.report_hint(
                "ingress",
                "the Ingress is enabled but has no host",
                "set `ingress.host`, such as address.example.com",
            );
        }
        let tls = src.tls.map(|tls| {
            if tls.issuer.is_none() && tls.secret_name.is_none() {
                self.report_hint(
                    "ingress.tls",
                    "TLS needs an issuer or a secret",
                    "set `issuer` (cert-manager) or `secretName`",
                );
            }
            let secret_name = tls.secret_name.unwrap_or_else(|| format!("{app_name}-tls"));
            self.check(
                "ingress.tls.secretName",
                names::check_dns_subdomain(&secret_name),
            );
            Tls {
                issuer: tls.issuer,
                secret_name,
            }
        });
        let rate = src.rate_limit.unwrap_or_default();
        let rate_limit = RateLimit {
            requests_per_second: rate
                .requests_per_second
                .unwrap_or(defaults::REQUESTS_PER_SECOND),
            burst: rate.burst.unwrap_or(defaults::BURST),
        };
        if rate_limit.requests_per_second == 0 {
            self.report(
                "ingress.rateLimit.requestsPerSecond",
                "requestsPerSecond must be at least 1",
            );
        }
        if rate_limit.burst > MAX_RATE_LIMIT_BURST {
            self.report(
                "ingress.rateLimit.burst",
                format!(
                    "burst must be at most {MAX_RATE_LIMIT_BURST} (got {})",
                    rate_limit.burst
                ),
            );
        }
        let body_size = src
            .body_size
            .unwrap_or_else(|| defaults::BODY_SIZE.to_owned());
        let body_ok = body_size
            .trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G'])
            .parse::<u64>()
            .is_ok();
        if !body_ok {
            self.report_hint(
                "ingress.bodySize",
                format!("`{body_size}` is not a size"),
                "write bytes, or a number with k, m or g, such as 64k or 1m",
            );
        }
        let timeouts = src.timeouts.unwrap_or_default();
        let mut seconds = |field: &str, text: Option<&String>, default: Duration| {
            self.duration(field, text, default).as_secs().max(1)
        };
        let timeouts = Timeouts {
            connect_seconds: seconds(
                "ingress.timeouts.connect",
                timeouts.connect.as_ref(),
                defaults::CONNECT_TIMEOUT,
            ),
            read_seconds: seconds(
                "ingress.timeouts.read",
                timeouts.read.as_ref(),
                defaults::READ_TIMEOUT,
            ),
            send_seconds: seconds(
                "ingress.timeouts.send",
                timeouts.send.as_ref(),
                defaults::SEND_TIMEOUT,
            ),
        };
        Ingress {
            enabled,
            host: src.host,
            class_name: src
                .class_name
                .unwrap_or_else(|| defaults::INGRESS_CLASS.to_owned()),
            tls,
            rate_limit,
            body_size,
            timeouts,
        }
    }

    fn components(&mut self, src: source::ComponentsSource) -> Components {
        Components {
            postgres: self.component(
                "components.postgres",
                src.postgres.as_ref(),
                defaults::POSTGRES,
            ),
            redis: self.component("components.redis", src.redis.as_ref(), defaults::REDIS),
            prometheus: self.component(
                "components.prometheus",
                src.prometheus.as_ref(),
                defaults::PROMETHEUS,
            ),
            grafana: self.component(
                "components.grafana",
                src.grafana.as_ref(),
                defaults::GRAFANA,
            ),
            nginx: self.component("components.nginx", src.nginx.as_ref(), defaults::NGINX),
        }
    }

    fn secrets(
        &mut self,
        src: BTreeMap<String, source::SecretRefSource>,
        config: &BTreeMap<String, String>,
    ) -> BTreeMap<String, SecretRef> {
        let mut secrets = BTreeMap::new();
        for (var, reference) in src {
            let field = format!("secrets.{var}");
            self.check(&field, names::check_env_var(&var));
            if config.contains_key(&var) {
                self.report_hint(
                    &field,
                    format!("`{var}` is both a plain config value and a secret"),
                    format!("remove `config.{var}`"),
                );
            }
            let (Some(secret), Some(key)) = (reference.secret, reference.key) else {
                self.report_hint(
                    &field,
                    "a secret reference needs both `secret` and `key`",
                    "for example { secret: address-service-db, key: url }",
                );
                continue;
            };
            self.check(
                &format!("{field}.secret"),
                names::check_dns_subdomain(&secret),
            );
            let key_ok = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
            if !key_ok {
                self.report(
                    &format!("{field}.key"),
                    format!("`{key}` is not a valid Secret key"),
                );
            }
            secrets.insert(var, SecretRef { secret, key });
        }
        secrets
    }

    fn scheduling(&mut self, src: source::SchedulingSource) -> Scheduling {
        let scheduling = Scheduling {
            node_selector: src.node_selector.unwrap_or_default(),
            tolerate: src.tolerate.unwrap_or_default(),
        };
        for (key, value) in &scheduling.node_selector {
            let field = format!("scheduling.nodeSelector.{key}");
            self.check(&field, names::check_label_key(key));
            self.check(&field, names::check_label_value(value));
        }
        for (i, key) in scheduling.tolerate.iter().enumerate() {
            self.check(
                &format!("scheduling.tolerate[{i}]"),
                names::check_label_key(key),
            );
        }
        scheduling
    }

    fn service(&mut self, src: source::ServiceSource) -> ServiceExposure {
        let node_port = src.node_port.and_then(|port| match u16::try_from(port) {
            Ok(p) if (30000..=32767).contains(&p) => Some(p),
            _ => {
                self.report_hint(
                    "service.nodePort",
                    format!("{port} is outside the NodePort range 30000–32767"),
                    "pick a port between 30000 and 32767",
                );
                None
            }
        });
        ServiceExposure { node_port }
    }

    fn smoke(&mut self, src: source::SmokeSource) -> Smoke {
        if let Some(url) = &src.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            self.report(
                "smoke.url",
                format!("`{url}` is not an http:// or https:// URL"),
            );
        }
        let deadline = self.duration(
            "smoke.deadline",
            src.deadline.as_ref(),
            defaults::SMOKE_DEADLINE,
        );
        let request_timeout = self.duration(
            "smoke.requestTimeout",
            src.request_timeout.as_ref(),
            defaults::SMOKE_REQUEST_TIMEOUT,
        );
        let checks = src
            .checks
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, check)| self.smoke_check(&format!("smoke.checks[{i}]"), check))
            .collect();
        Smoke {
            url: src.url,
            deadline_seconds: deadline.as_secs().max(1),
            request_timeout_ms: u64::try_from(request_timeout.as_millis()).unwrap_or(u64::MAX),
            checks,
        }
    }

    fn smoke_check(&mut self, field: &str, check: source::SmokeCheckSource) -> SmokeCheck {
        let method = check
            .method
            .unwrap_or_else(|| defaults::CHECK_METHOD.to_owned())
            .to_ascii_uppercase();
        if !defaults::HTTP_METHODS.contains(&method.as_str()) {
            self.report(
                &format!("{field}.method"),
                format!("`{method}` is not an HTTP method"),
            );
        }
        let path = check
            .path
            .unwrap_or_else(|| defaults::CHECK_PATH.to_owned());
        if !path.starts_with('/') {
            self.report(
                &format!("{field}.path"),
                format!("path `{path}` must start with `/`"),
            );
        }
        let status = check.status.unwrap_or(defaults::CHECK_STATUS);
        if !(100..=599).contains(&status) {
            self.report(
                &format!("{field}.status"),
                format!("{status} is not an HTTP status"),
            );
        }
        let expect = check.expect.unwrap_or_default();
        for pointer in expect.keys() {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                self.report_hint(
                    &format!("{field}.expect"),
                    format!("`{pointer}` is not a JSON pointer"),
                    format!("write `/{pointer}`"),
                );
            }
        }
        SmokeCheck {
            name: check.name,
            method,
            path,
            body: check.body,
            status,
            expect,
            max_latency_ms: check.max_latency_ms,
        }
    }

    fn github(&mut self, src: source::GithubSource, name: &str) -> Github {
        if let Some(repo) = &src.repository {
            let ok = repo.split('/').count() == 2
                && repo.split('/').all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                });
            if !ok {
                self.report("github.repository", format!("`{repo}` is not `owner/name`"));
            }
        }
        Github {
            repository: src.repository,
            environment: src.environment.unwrap_or_else(|| name.to_owned()),
            deployments: src.deployments.unwrap_or(true),
        }
    }

    fn local(&mut self, src: source::LocalSource, name: &str) -> Local {
        let project = src.project.unwrap_or_else(|| format!("wactl-{name}"));
        self.check("local.project", names::check_dns_label(&project));
        let mut ports: BTreeMap<String, u16> = LOCAL_SERVICES
            .iter()
            .map(|(s, p)| ((*s).to_owned(), *p))
            .collect();
        for (service, port) in src.ports.unwrap_or_default() {
            let field = format!("local.ports.{service}");
            if !ports.contains_key(&service) {
                let known: Vec<&str> = LOCAL_SERVICES.iter().map(|(s, _)| *s).collect();
                self.report_hint(
                    &field,
                    format!("`{service}` is not a local service"),
                    format!("use one of {}", known.join(", ")),
                );
                continue;
            }
            let port = self.port(&field, port);
            ports.insert(service, port);
        }
        Local { project, ports }
    }

    fn templates(&mut self, dir: &str, base_dir: &std::path::Path) -> PathBuf {
        let path = PathBuf::from(dir);
        if path.is_absolute()
            || path
                .components()
                .filter(|c| matches!(c, std::path::Component::ParentDir))
                .count()
                > 1
        {
            self.report_hint(
                "templates",
                format!("template directory `{dir}` is outside the project"),
                "use a path relative to the environment file, at most one `..` deep",
            );
        }
        base_dir.join(path)
    }
}

/// Where the trusted CA bundle is mounted in the pod.
const TRUSTED_CA_DIR: &str = "/etc/address-service/ca";

/// `trustedCa`: one of `secret` or `configMap`, and a key; the service then reads the bundle
/// through `SSL_CERT_FILE`, which the definition must not also set.
fn resolve_trusted_ca(
    r: &mut Resolver<'_>,
    src: Option<source::TrustedCaSource>,
    config: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, SecretRef>,
) -> Option<TrustedCa> {
    let src = src?;
    let (source, name) = match (src.secret, src.config_map) {
        (Some(name), None) => (TrustedCaKind::Secret, name),
        (None, Some(name)) => (TrustedCaKind::ConfigMap, name),
        _ => {
            r.report_hint(
                "trustedCa",
                "give exactly one of `secret` and `configMap`",
                "for example { configMap: rds-ca-bundle, key: ca.pem }",
            );
            return None;
        }
    };
    let field = match source {
        TrustedCaKind::Secret => "trustedCa.secret",
        TrustedCaKind::ConfigMap => "trustedCa.configMap",
    };
    r.check(field, names::check_dns_subdomain(&name));
    let Some(key) = src.key else {
        r.report_hint(
            "trustedCa.key",
            "the key holding the PEM bundle is missing",
            "for example key: ca.pem",
        );
        return None;
    };
    let key_ok = !key.is_empty()
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !key_ok {
        r.report("trustedCa.key", format!("`{key}` is not a valid key"));
        return None;
    }
    if config.contains_key("SSL_CERT_FILE") || secrets.contains_key("SSL_CERT_FILE") {
        r.report_hint(
            "trustedCa",
            "`trustedCa` sets the service's SSL_CERT_FILE, which `config` or `secrets` sets too",
            "remove SSL_CERT_FILE from `config`/`secrets`",
        );
    }
    Some(TrustedCa {
        source,
        name,
        file: format!("{TRUSTED_CA_DIR}/{key}"),
        key,
        mount_dir: TRUSTED_CA_DIR.to_owned(),
    })
}

/// The `monitoring` section: the bundled Prometheus and Grafana take their image, storage and
/// resources from `components.prometheus` and `components.grafana`.
fn resolve_monitoring(
    r: &mut Resolver<'_>,
    src: source::MonitoringSource,
    components: &Components,
) -> Monitoring {
    let mode = match src.mode.unwrap_or(source::MonitoringModeSource::Off) {
        source::MonitoringModeSource::Off => MonitoringMode::Off,
        source::MonitoringModeSource::Bundled => MonitoringMode::Bundled,
        source::MonitoringModeSource::Operator => MonitoringMode::Operator,
    };
    if mode == MonitoringMode::Bundled && components.prometheus.is_none() {
        r.report_hint(
            "monitoring.mode",
            "`bundled` deploys the Prometheus of `components.prometheus`, which is disabled",
            "set `components.prometheus.enabled: true`, or choose `mode: operator` or `off`",
        );
    }
    if src.discovery.is_some() && mode != MonitoringMode::Bundled {
        r.report(
            "monitoring.discovery",
            "`discovery` only applies to `mode: bundled`",
        );
    }
    let labels = src.labels.unwrap_or_default();
    if !labels.is_empty() && mode != MonitoringMode::Operator {
        r.report(
            "monitoring.labels",
            "`labels` only applies to `mode: operator`",
        );
    }
    for (key, value) in &labels {
        let field = format!("monitoring.labels.{key}");
        r.check(&field, names::check_label_key(key));
        r.check(&field, names::check_label_value(value));
    }
    Monitoring {
        mode,
        discovery: match src.discovery.unwrap_or(source::DiscoverySource::Kubernetes) {
            source::DiscoverySource::Kubernetes => Discovery::Kubernetes,
            source::DiscoverySource::Dns => Discovery::Dns,
        },
        labels,
    }
}

/// The canary part of `rollout` (`strategy`, `steps`, `analysis`); `None` for `rolling`.
fn resolve_canary(
    r: &mut Resolver<'_>,
    (strategy, steps, analysis): (
        Option<source::RolloutStrategy>,
        Option<Vec<source::CanaryStepSource>>,
        Option<source::AnalysisSource>,
    ),
    monitoring: &Monitoring,
    components: &Components,
) -> Option<Canary> {
    if strategy != Some(source::RolloutStrategy::Canary) {
        for (given, field) in [
            (steps.is_some(), "rollout.steps"),
            (analysis.is_some(), "rollout.analysis"),
        ] {
            if given {
                r.report_hint(
                    field,
                    format!("`{}` only applies to `strategy: canary`", &field[8..]),
                    "set `rollout.strategy: canary`, or remove it",
                );
            }
        }
        return None;
    }
    if monitoring.mode != MonitoringMode::Bundled {
        r.report_hint(
            "rollout.strategy",
            "a canary is judged by the bundled Prometheus, and `monitoring.mode` is not `bundled`",
            "set `monitoring.mode: bundled` (with `components.prometheus.enabled: true`)",
        );
    }
    let steps: Vec<CanaryStep> = match steps {
        None => defaults::CANARY_STEPS
            .iter()
            .map(|&(weight, analyze_seconds)| CanaryStep {
                weight,
                analyze_seconds,
            })
            .collect(),
        Some(steps) if steps.is_empty() => {
            r.report_hint(
                "rollout.steps",
                "a canary needs at least one step",
                "add a step such as `- { weight: 25, analyze: 60s }`",
            );
            Vec::new()
        }
        Some(steps) => steps
            .into_iter()
            .enumerate()
            .map(|(i, step)| {
                let field = format!("rollout.steps[{i}]");
                let weight = step.weight.unwrap_or(0);
                if step.weight.is_none() {
                    r.report(
                        &format!("{field}.weight"),
                        "a step needs its `weight` (percent, 1-99)",
                    );
                } else if !(1..=99).contains(&weight) {
                    r.report_hint(
                        &format!("{field}.weight"),
                        format!("weight {weight} is outside 1-99"),
                        "100% is the promotion that follows the last step",
                    );
                }
                if step.analyze.is_none() {
                    r.report(
                        &format!("{field}.analyze"),
                        "a step needs its `analyze` duration, such as 60s",
                    );
                }
                let analyze = r.duration(
                    &format!("{field}.analyze"),
                    step.analyze.as_ref(),
                    Duration::from_secs(1),
                );
                CanaryStep {
                    weight,
                    analyze_seconds: analyze.as_secs().max(1),
                }
            })
            .collect(),
    };
    for (i, pair) in steps.windows(2).enumerate() {
        if pair[1].weight <= pair[0].weight && pair[0].weight > 0 {
            r.report(
                &format!("rollout.steps[{}].weight", i + 1),
                format!(
                    "weight {} does not grow from the step before ({})",
                    pair[1].weight, pair[0].weight
                ),
            );
        }
    }
    let src = analysis.unwrap_or_default();
    let interval = r.duration(
        "rollout.analysis.interval",
        src.interval.as_ref(),
        defaults::ANALYSIS_INTERVAL,
    );
    let interval_seconds = interval.as_secs().max(1);
    for (i, step) in steps.iter().enumerate() {
        if step.analyze_seconds < interval_seconds {
            r.report_hint(
                &format!("rollout.steps[{i}].analyze"),
                format!(
                    "{} s is shorter than the analysis interval ({interval_seconds} s): the step would never be measured",
                    step.analyze_seconds
                ),
                "make `analyze` at least `rollout.analysis.interval`",
            );
        }
    }
    let scrape = components
        .prometheus
        .as_ref()
        .and_then(|p| humantime::parse_duration(&p.scrape_interval).ok())
        .map_or(15, |d| d.as_secs().max(1));
    let mut limit = |field: &str, value: Option<u32>, default: u32| {
        let value = value.unwrap_or(default);
        if value == 0 {
            r.report(field, format!("`{}` must be at least 1", &field[17..]));
        }
        value
    };
    let failure_limit = limit("rollout.analysis.failureLimit", src.failure_limit, 1);
    let inconclusive_limit = limit(
        "rollout.analysis.inconclusiveLimit",
        src.inconclusive_limit,
        2,
    );
    let metrics = match src.metrics {
        None => default_metrics(),
        Some(metrics) if metrics.is_empty() => {
            r.report_hint(
                "rollout.analysis.metrics",
                "a canary needs at least one metric to be judged by",
                "remove `metrics` to use the defaults (success rate and p95 latency)",
            );
            Vec::new()
        }
        Some(metrics) => {
            let mut seen = std::collections::BTreeSet::new();
            let mut resolved = Vec::new();
            for (i, m) in metrics.into_iter().enumerate() {
                let field = format!("rollout.analysis.metrics[{i}]");
                let name = m.name.unwrap_or_default();
                if name.trim().is_empty() {
                    r.report(&format!("{field}.name"), "a metric needs a `name`");
                } else if !seen.insert(name.clone()) {
                    r.report(
                        &format!("{field}.name"),
                        format!("metric `{name}` is given twice"),
                    );
                }
                let query = m.query.unwrap_or_default();
                if query.trim().is_empty() {
                    r.report(&format!("{field}.query"), "a metric needs a PromQL `query`");
                } else if !query.contains("$track") {
                    r.report_hint(
                        &format!("{field}.query"),
                        "the query does not tell the canary from the stable pods",
                        "select the track in it, such as `{job=\"address-service\",track=\"$track\"}`",
                    );
                }
                let bound = match (m.min, m.max) {
                    (Some(v), None) => Bound::Min(v),
                    (None, Some(v)) => Bound::Max(v),
                    (min, _) => {
                        r.report_hint(
                            &field,
                            if min.is_some() {
                                "a metric has `min` and `max`".to_owned()
                            } else {
                                "a metric needs a threshold".to_owned()
                            },
                            "give exactly one of `min` (lowest passing value) or `max` (highest)",
                        );
                        Bound::Min(0.0)
                    }
                };
                if let Bound::Min(v) | Bound::Max(v) = bound
                    && !v.is_finite()
                {
                    r.report(&field, "the threshold is not a finite number");
                }
                resolved.push(Metric { name, query, bound });
            }
            resolved
        }
    };
    let prometheus = match src.prometheus {
        None => AnalysisPrometheus::Bundled,
        Some(url) => {
            let parsed = reqwest::Url::parse(&url);
            let usable = parsed.as_ref().is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some_and(|h| !h.is_empty())
                    && u.query().is_none()
                    && u.fragment().is_none()
                    // Credentials in it would be shown wherever the URL is.
                    && u.username().is_empty()
                    && u.password().is_none()
            });
            if !usable {
                let why = match parsed {
                    // Not echoed: the user name and password would be shown with it.
                    Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                        "the URL carries credentials, which wactl would show wherever it names the URL"
                            .to_owned()
                    }
                    Err(e) => format!("`{url}` is not a URL ({e})"),
                    Ok(_) => format!(
                        "`{url}` is not an http:// or https:// URL of a host (without credentials, query or fragment)"
                    ),
                };
                r.report_hint(
                    "rollout.analysis.prometheus",
                    why,
                    "give the Prometheus base URL, such as `http://127.0.0.1:9090`, or remove it to use the bundled one",
                );
            }
            AnalysisPrometheus::Url(url.trim_end_matches('/').to_owned())
        }
    };
    Some(Canary {
        steps,
        analysis: Analysis {
            interval_seconds,
            window_seconds: interval_seconds.max(4 * scrape),
            failure_limit,
            inconclusive_limit,
            baseline: src.baseline.unwrap_or(true),
            metrics,
            prometheus,
        },
    })
}

/// The canary's default metrics, from the numbers the alert rules fire on, over the API's
/// requests. A request fails when it gets a 5xx, 401, 403 or 429: a release that turns on authentication or tightens
/// a limit by mistake fails requests the stable version serves.
pub fn default_metrics() -> Vec<Metric> {
    // The API's routes only: scrapes and probes answer 200 whatever the release does. No
    // successful request at all is a rate of 0 (`or vector(0)`), not "no data"; no request
    // at all stays "no data".
    let selector = r#"job="address-service",track="$track",route=~"/v1/.*""#;
    vec![
        Metric {
            name: "success-rate".to_owned(),
            query: format!(
                r#"(sum(rate(http_requests_total{{{selector},status!~"5..|401|403|429"}}[$window])) or vector(0)) / sum(rate(http_requests_total{{{selector}}}[$window]))"#
            ),
            bound: Bound::Min(1.0 - slo::ERROR_RATIO),
        },
        Metric {
            name: "p95-latency-seconds".to_owned(),
            query: format!(
                "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{{selector}}}[$window])))"
            ),
            bound: Bound::Max(slo::P95_SECONDS),
        },
    ]
}

/// Expands a leading `~/` to the home directory.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}
