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
        let scrape_interval = src.scrape_interval.unwrap_or_else(|| "15s".to_owned());
        self.duration(
            &format!("{field}.scrapeInterval"),
            Some(&scrape_interval),
            Duration::from_secs(15),
        );
        let retention = src.retention.unwrap_or_else(|| "15d".to_owned());
        self.duration(
            &format!("{field}.retention"),
            Some(&retention),
            Duration::from_secs(15 * 86400),
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

/// Resolves `src`, the merge of `files` (most specific first), for environment `name`.
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

    let app_src = src.app.unwrap_or_default();
    let app_name = app_src.name.unwrap_or_else(|| "address-service".to_owned());
    r.check("app.name", names::check_dns_label(&app_name));
    let port = r.port("app.port", app_src.port.unwrap_or(8080));
    let log_level = app_src.log_level.unwrap_or_else(|| "info".to_owned());
    if !["error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
        r.report(
            "app.logLevel",
            format!("`{log_level}` is not a log level (error, warn, info, debug, trace)"),
        );
    }

    let image_src = src.image.unwrap_or_default();
    if let Some(registry) = &image_src.registry {
        r.check("image.registry", names::check_registry(registry));
    }
    let repository = image_src
        .repository
        .unwrap_or_else(|| format!("world-address/{app_name}"));
    r.check("image.repository", names::check_repository(&repository));
    let tag = image_src.tag.unwrap_or_else(|| "latest".to_owned());
    r.check("image.tag", names::check_tag(&tag));
    let builder = image_src
        .builder
        .unwrap_or_else(|| "docker.io/library/rust:1.95-bookworm".to_owned());
    r.check("image.builder", names::check_image_reference(&builder));
    let runtime = image_src
        .runtime
        .unwrap_or_else(|| "gcr.io/distroless/cc-debian12:nonroot".to_owned());
    r.check("image.runtime", names::check_image_reference(&runtime));
    let build_args = image_src.build_args.unwrap_or_default();
    for key in build_args.keys() {
        r.check(&format!("image.buildArgs.{key}"), names::check_env_var(key));
    }

    let cluster_src = src.cluster.unwrap_or_default();
    let namespace = cluster_src.namespace.unwrap_or_else(|| app_name.clone());
    r.check("cluster.namespace", names::check_dns_label(&namespace));
    let kubeconfig = cluster_src.kubeconfig.map(|k| expand_home(&k));

    let replicas = src.replicas.unwrap_or(2);
    let autoscaling = src.autoscaling.unwrap_or_default();
    let autoscaling = if autoscaling.enabled.unwrap_or(false) {
        let min = autoscaling.min.unwrap_or(replicas.max(1));
        let max = autoscaling.max.unwrap_or(min.max(1) * 5);
        if min == 0 {
            r.report("autoscaling.min", "autoscaling.min must be at least 1");
        }
        if min > max {
            r.report_hint(
                "autoscaling.min",
                format!("autoscaling.min ({min}) is greater than autoscaling.max ({max})"),
                "make `min` at most `max`",
            );
        }
        if autoscaling.cpu.is_none() && autoscaling.memory.is_none() {
            r.report_hint(
                "autoscaling",
                "autoscaling is enabled without a target",
                "set `cpu` or `memory` (target utilisation in percent)",
            );
        }
        for (field, value) in [
            ("autoscaling.cpu", autoscaling.cpu),
            ("autoscaling.memory", autoscaling.memory),
        ] {
            if let Some(v) = value
                && !(1..=1000).contains(&v)
            {
                r.report(field, format!("target utilisation {v}% is outside 1-1000"));
            }
        }
        let behaviour =
            |b: Option<source::ScalingBehaviourSource>, stab: u32, percent: u32, period: u32| {
                let b = b.unwrap_or_default();
                ScalingBehaviour {
                    stabilization_seconds: b.stabilization_seconds.unwrap_or(stab),
                    percent: b.percent.unwrap_or(percent),
                    period_seconds: b.period_seconds.unwrap_or(period),
                }
            };
        let scale_up = behaviour(autoscaling.scale_up, 0, 100, 15);
        let scale_down = behaviour(autoscaling.scale_down, 300, 50, 60);
        for (field, b) in [
            ("autoscaling.scaleUp", &scale_up),
            ("autoscaling.scaleDown", &scale_down),
        ] {
            if b.percent == 0 {
                r.report(&format!("{field}.percent"), "percent must be at least 1");
            }
            if !(1..=1800).contains(&b.period_seconds) {
                r.report(
                    &format!("{field}.periodSeconds"),
                    format!("periodSeconds {} is outside 1-1800", b.period_seconds),
                );
            }
            if b.stabilization_seconds > 3600 {
                r.report(
                    &format!("{field}.stabilizationSeconds"),
                    "stabilizationSeconds is at most 3600",
                );
            }
        }
        Some(Autoscaling {
            min,
            max,
            cpu: autoscaling.cpu,
            memory: autoscaling.memory,
            scale_up,
            scale_down,
        })
    } else {
        None
    };

    let resources = r.resources(
        "resources",
        src.resources.as_ref(),
        Resources {
            requests: ResourceAmounts {
                cpu: Some("100m".into()),
                memory: Some("64Mi".into()),
            },
            limits: ResourceAmounts {
                cpu: None,
                memory: Some("256Mi".into()),
            },
        },
    );
    if autoscaling.as_ref().is_some_and(|a| a.cpu.is_some()) && resources.requests.cpu.is_none() {
        r.report(
            "resources.requests.cpu",
            "CPU autoscaling needs a CPU request",
        );
    }

    let probes_src = src.probes.unwrap_or_default();
    let probe = |path: &str, period, failures| Probe {
        path: path.to_owned(),
        initial_delay_seconds: 0,
        period_seconds: period,
        timeout_seconds: 2,
        failure_threshold: failures,
    };
    let probes = Probes {
        liveness: r.probe(
            "probes.liveness",
            probes_src.liveness.as_ref(),
            probe("/healthz", 10, 3),
        ),
        readiness: r.probe(
            "probes.readiness",
            probes_src.readiness.as_ref(),
            probe("/readyz", 5, 2),
        ),
        startup: r.probe(
            "probes.startup",
            probes_src.startup.as_ref(),
            probe("/healthz", 2, 30),
        ),
    };

    let rollout_src = src.rollout.unwrap_or_default();
    let rollout = Rollout {
        max_surge: r.int_or_percent(
            "rollout.maxSurge",
            rollout_src.max_surge.as_ref(),
            serde_json::Value::from("25%"),
        ),
        max_unavailable: r.int_or_percent(
            "rollout.maxUnavailable",
            rollout_src.max_unavailable.as_ref(),
            serde_json::Value::from(0),
        ),
        progress_deadline_seconds: rollout_src.progress_deadline_seconds.unwrap_or(300),
        termination_grace_period_seconds: rollout_src
            .termination_grace_period_seconds
            .unwrap_or(30),
        pre_stop_seconds: rollout_src.pre_stop_seconds.unwrap_or(5),
    };
    let is_zero = |v: &serde_json::Value| {
        v == &serde_json::Value::from(0) || v == &serde_json::Value::from("0%")
    };
    if is_zero(&rollout.max_surge) && is_zero(&rollout.max_unavailable) {
        r.report_hint(
            "rollout.maxSurge",
            "maxSurge and maxUnavailable are both zero, so a rollout can never start",
            "allow a surge, such as maxSurge: 1",
        );
    }
    if rollout.progress_deadline_seconds == 0 {
        r.report(
            "rollout.progressDeadlineSeconds",
            "progressDeadlineSeconds must be at least 1",
        );
    }
    if rollout.pre_stop_seconds >= rollout.termination_grace_period_seconds {
        r.report_hint(
            "rollout.preStopSeconds",
            format!("preStopSeconds ({}) leaves no time to drain within terminationGracePeriodSeconds ({})", rollout.pre_stop_seconds, rollout.termination_grace_period_seconds),
            "make preStopSeconds smaller than terminationGracePeriodSeconds",
        );
    }

    let ingress_src = src.ingress.unwrap_or_default();
    let enabled = ingress_src.enabled.unwrap_or(false);
    if let Some(host) = &ingress_src.host {
        r.check("ingress.host", names::check_host(host));
    } else if enabled {
        r.report_hint(
            "ingress",
            "the Ingress is enabled but has no host",
            "set `ingress.host`, such as address.example.com",
        );
    }
    let tls = ingress_src.tls.map(|tls| {
        if tls.issuer.is_none() && tls.secret_name.is_none() {
            r.report_hint(
                "ingress.tls",
                "TLS needs an issuer or a secret",
                "set `issuer` (cert-manager) or `secretName`",
            );
        }
        let secret_name = tls.secret_name.unwrap_or_else(|| format!("{app_name}-tls"));
        r.check(
            "ingress.tls.secretName",
            names::check_dns_subdomain(&secret_name),
        );
        Tls {
            issuer: tls.issuer,
            secret_name,
        }
    });
    let rate = ingress_src.rate_limit.unwrap_or_default();
    let rate_limit = RateLimit {
        requests_per_second: rate.requests_per_second.unwrap_or(20),
        burst: rate.burst.unwrap_or(40),
    };
    if rate_limit.requests_per_second == 0 {
        r.report(
            "ingress.rateLimit.requestsPerSecond",
            "requestsPerSecond must be at least 1",
        );
    }
    if rate_limit.burst > MAX_RATE_LIMIT_BURST {
        r.report(
            "ingress.rateLimit.burst",
            format!(
                "burst must be at most {MAX_RATE_LIMIT_BURST} (got {})",
                rate_limit.burst
            ),
        );
    }
    let body_size = ingress_src.body_size.unwrap_or_else(|| "64k".to_owned());
    let body_ok = body_size
        .trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G'])
        .parse::<u64>()
        .is_ok();
    if !body_ok {
        r.report_hint(
            "ingress.bodySize",
            format!("`{body_size}` is not a size"),
            "write bytes, or a number with k, m or g, such as 64k or 1m",
        );
    }
    let timeouts = ingress_src.timeouts.unwrap_or_default();
    let timeouts = Timeouts {
        connect_seconds: r
            .duration(
                "ingress.timeouts.connect",
                timeouts.connect.as_ref(),
                Duration::from_secs(5),
            )
            .as_secs()
            .max(1),
        read_seconds: r
            .duration(
                "ingress.timeouts.read",
                timeouts.read.as_ref(),
                Duration::from_secs(30),
            )
            .as_secs()
            .max(1),
        send_seconds: r
            .duration(
                "ingress.timeouts.send",
                timeouts.send.as_ref(),
                Duration::from_secs(30),
            )
            .as_secs()
            .max(1),
    };
    let ingress = Ingress {
        enabled,
        host: ingress_src.host,
        class_name: ingress_src.class_name.unwrap_or_else(|| "nginx".to_owned()),
        tls,
        rate_limit,
        body_size,
        timeouts,
    };

    let c = src.components.unwrap_or_default();
    let components = Components {
        postgres: r.component(
            "components.postgres",
            c.postgres.as_ref(),
            ComponentDefaults {
                enabled: false,
                image: "docker.io/library/postgres:15",
                storage: "10Gi",
                cpu: "100m",
                memory: "256Mi",
            },
        ),
        redis: r.component(
            "components.redis",
            c.redis.as_ref(),
            ComponentDefaults {
                enabled: false,
                image: "docker.io/library/redis:7",
                storage: "1Gi",
                cpu: "50m",
                memory: "64Mi",
            },
        ),
        prometheus: r.component(
            "components.prometheus",
            c.prometheus.as_ref(),
            ComponentDefaults {
                enabled: false,
                image: "docker.io/prom/prometheus:v2.53.0",
                storage: "10Gi",
                cpu: "100m",
                memory: "512Mi",
            },
        ),
        grafana: r.component(
            "components.grafana",
            c.grafana.as_ref(),
            ComponentDefaults {
                enabled: false,
                image: "docker.io/grafana/grafana:11.1.0",
                storage: "1Gi",
                cpu: "50m",
                memory: "128Mi",
            },
        ),
        nginx: r.component(
            "components.nginx",
            c.nginx.as_ref(),
            ComponentDefaults {
                enabled: false,
                image: "docker.io/library/nginx:1.27",
                storage: "0",
                cpu: "50m",
                memory: "64Mi",
            },
        ),
    };

    let monitoring = resolve_monitoring(&mut r, src.monitoring.unwrap_or_default(), &components);

    let config = src.config.unwrap_or_default();
    for (key, value) in &config {
        r.check(&format!("config.{key}"), names::check_env_var(key));
        if let Some(e) = duration::check_service_setting(key, value) {
            r.report_hint(&format!("config.{key}"), e.to_string(), e.hint());
        }
    }
    let mut secrets = BTreeMap::new();
    for (var, reference) in src.secrets.unwrap_or_default() {
        let field = format!("secrets.{var}");
        r.check(&field, names::check_env_var(&var));
        if config.contains_key(&var) {
            r.report_hint(
                &field,
                format!("`{var}` is both a plain config value and a secret"),
                format!("remove `config.{var}`"),
            );
        }
        let (Some(secret), Some(key)) = (reference.secret, reference.key) else {
            r.report_hint(
                &field,
                "a secret reference needs both `secret` and `key`",
                "for example { secret: address-service-db, key: url }",
            );
            continue;
        };
        r.check(
            &format!("{field}.secret"),
            names::check_dns_subdomain(&secret),
        );
        let key_ok = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !key_ok {
            r.report(
                &format!("{field}.key"),
                format!("`{key}` is not a valid Secret key"),
            );
        }
        secrets.insert(var, SecretRef { secret, key });
    }
    let trusted_ca = resolve_trusted_ca(&mut r, src.trusted_ca, &config, &secrets);

    let scheduling_src = src.scheduling.unwrap_or_default();
    let scheduling = Scheduling {
        node_selector: scheduling_src.node_selector.unwrap_or_default(),
        tolerate: scheduling_src.tolerate.unwrap_or_default(),
    };
    for (key, value) in &scheduling.node_selector {
        let field = format!("scheduling.nodeSelector.{key}");
        r.check(&field, names::check_label_key(key));
        r.check(&field, names::check_label_value(value));
    }
    for (i, key) in scheduling.tolerate.iter().enumerate() {
        r.check(
            &format!("scheduling.tolerate[{i}]"),
            names::check_label_key(key),
        );
    }
    let node_port = src
        .service
        .unwrap_or_default()
        .node_port
        .and_then(|port| match u16::try_from(port) {
            Ok(p) if (30000..=32767).contains(&p) => Some(p),
            _ => {
                r.report_hint(
                    "service.nodePort",
                    format!("{port} is outside the NodePort range 30000–32767"),
                    "pick a port between 30000 and 32767",
                );
                None
            }
        });

    let smoke_src = src.smoke.unwrap_or_default();
    if let Some(url) = &smoke_src.url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        r.report(
            "smoke.url",
            format!("`{url}` is not an http:// or https:// URL"),
        );
    }
    let deadline = r.duration(
        "smoke.deadline",
        smoke_src.deadline.as_ref(),
        Duration::from_secs(120),
    );
    let request_timeout = r.duration(
        "smoke.requestTimeout",
        smoke_src.request_timeout.as_ref(),
        Duration::from_secs(5),
    );
    let mut checks = Vec::new();
    for (i, check) in smoke_src.checks.unwrap_or_default().into_iter().enumerate() {
        let field = format!("smoke.checks[{i}]");
        let method = check
            .method
            .unwrap_or_else(|| "GET".to_owned())
            .to_ascii_uppercase();
        if !["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"].contains(&method.as_str())
        {
            r.report(
                &format!("{field}.method"),
                format!("`{method}` is not an HTTP method"),
            );
        }
        let path = check.path.unwrap_or_else(|| "/".to_owned());
        if !path.starts_with('/') {
            r.report(
                &format!("{field}.path"),
                format!("path `{path}` must start with `/`"),
            );
        }
        let status = check.status.unwrap_or(200);
        if !(100..=599).contains(&status) {
            r.report(
                &format!("{field}.status"),
                format!("{status} is not an HTTP status"),
            );
        }
        let expect = check.expect.unwrap_or_default();
        for pointer in expect.keys() {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                r.report_hint(
                    &format!("{field}.expect"),
                    format!("`{pointer}` is not a JSON pointer"),
                    format!("write `/{pointer}`"),
                );
            }
        }
        checks.push(SmokeCheck {
            name: check.name,
            method,
            path,
            body: check.body,
            status,
            expect,
            max_latency_ms: check.max_latency_ms,
        });
    }

    let github_src = src.github.unwrap_or_default();
    if let Some(repo) = &github_src.repository {
        let ok = repo.split('/').count() == 2
            && repo.split('/').all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if !ok {
            r.report("github.repository", format!("`{repo}` is not `owner/name`"));
        }
    }

    let local_src = src.local.unwrap_or_default();
    let project = local_src.project.unwrap_or_else(|| format!("wactl-{name}"));
    r.check("local.project", names::check_dns_label(&project));
    let mut ports: BTreeMap<String, u16> = LOCAL_SERVICES
        .iter()
        .map(|(s, p)| ((*s).to_owned(), *p))
        .collect();
    for (service, port) in local_src.ports.unwrap_or_default() {
        let field = format!("local.ports.{service}");
        if !ports.contains_key(&service) {
            let known: Vec<&str> = LOCAL_SERVICES.iter().map(|(s, _)| *s).collect();
            r.report_hint(
                &field,
                format!("`{service}` is not a local service"),
                format!("use one of {}", known.join(", ")),
            );
            continue;
        }
        let port = r.port(&field, port);
        ports.insert(service, port);
    }

    let templates = src.templates.map(|dir| {
        let path = PathBuf::from(&dir);
        if path.is_absolute()
            || path
                .components()
                .filter(|c| matches!(c, std::path::Component::ParentDir))
                .count()
                > 1
        {
            r.report_hint(
                "templates",
                format!("template directory `{dir}` is outside the project"),
                "use a path relative to the environment file, at most one `..` deep",
            );
        }
        base_dir.join(path)
    });

    if !r.problems.is_empty() {
        return Err(r.problems);
    }
    Ok(Environment {
        name: name.to_owned(),
        files,
        app: App {
            name: app_name,
            port,
            log_level,
        },
        image: Image {
            registry: image_src.registry,
            repository,
            tag,
            builder,
            runtime,
            build_args,
            target: image_src.target,
        },
        cluster: Cluster {
            context: cluster_src.context,
            kubeconfig,
            namespace,
        },
        replicas,
        autoscaling,
        resources,
        probes,
        rollout,
        ingress,
        components,
        monitoring,
        scheduling,
        service: ServiceExposure { node_port },
        config,
        secrets,
        trusted_ca,
        protected: src.protected.unwrap_or(false),
        smoke: Smoke {
            url: smoke_src.url,
            deadline_seconds: deadline.as_secs().max(1),
            request_timeout_ms: u64::try_from(request_timeout.as_millis()).unwrap_or(u64::MAX),
            checks,
        },
        github: Github {
            repository: github_src.repository,
            environment: github_src.environment.unwrap_or_else(|| name.to_owned()),
            deployments: github_src.deployments.unwrap_or(true),
        },
        local: Local { project, ports },
        templates,
    })
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

/// Expands a leading `~/` to the home directory.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}
