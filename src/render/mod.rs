//! Rendering: one resolved [`Environment`] becomes every artifact, as a pure function.
//!
//! Templates are tera files embedded at compile time; an environment's `templates`
//! directory (or `--templates DIR`) overrides any of them by relative path. Each
//! Kubernetes document is parsed into its `k8s-openapi` type while rendering, so a
//! template mistake is a render error that names the template.

mod kube;
pub mod operator;
mod output;
mod templates;

pub use kube::Manifest;
pub use output::MANIFEST;
pub use templates::TEMPLATE_NAMES;

use crate::config::Environment;
use crate::config::model::{Discovery, MonitoringMode};
use crate::config::quantity::Quantity;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template override directory {dir}: {message}")]
    Overrides { dir: PathBuf, message: String },
    #[error("template {template}: {message}")]
    Template { template: String, message: String },
    #[error("cannot give the templates `{key}`: {message}")]
    Context { key: String, message: String },
    #[error("template {template} rendered an invalid {what}: {message}")]
    InvalidOutput {
        template: String,
        what: String,
        message: String,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot render into {out}: {file} is a file, not a directory; choose another --out")]
    NotADirectory { out: PathBuf, file: PathBuf },
    #[error(
        "not rendering into {dir}: it would replace {} that wactl did not write ({}); move {} or choose another --out",
        plural(files.len()), files.join(", "), if files.len() == 1 { "it" } else { "them" }
    )]
    ForeignFiles { dir: PathBuf, files: Vec<String> },
    #[error(
        "{path} does not list what wactl rendered there: {message}; remove it only if the directory holds nothing of yours that wactl should replace"
    )]
    BadManifest { path: PathBuf, message: String },
}

impl RenderError {
    /// A problem with what the user asked for (a template, an output path), not with
    /// the machine: exit code 2.
    pub fn is_invalid_input(&self) -> bool {
        !matches!(self, Self::Write { .. } | Self::Context { .. })
    }
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 file".to_owned()
    } else {
        format!("{n} files")
    }
}

/// What to render beyond the definition itself.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Image reference to deploy (a built digest); defaults to the definition's tag.
    pub image: Option<String>,
    /// Template overrides; takes precedence over the definition's `templates`.
    pub templates: Option<PathBuf>,
}

/// Every rendered artifact, by path relative to the output directory.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub files: BTreeMap<String, String>,
    /// The Kubernetes objects, in apply order.
    pub manifests: Vec<Manifest>,
}

/// Renders every artifact of `env`.
pub fn render(env: &Environment, options: &RenderOptions) -> Result<Rendered, RenderError> {
    Renderer::new(env, options.templates.as_deref())?.render(options.image.as_deref())
}

/// The Dockerfile of `env` alone, as [`render`] writes it (the renderer with a plan of that
/// one file; a configuration file's template sees only the definition): what a build needs,
/// without rendering and checking every other artifact. Every override is still compiled.
pub fn dockerfile(env: &Environment, templates: Option<&Path>) -> Result<String, RenderError> {
    let plan = vec![("Dockerfile.tera", Output::File("Dockerfile"))];
    let mut rendered = Renderer::with_plan(env, templates, plan)?.render(None)?;
    // Never empty by construction; an error rather than building an empty Dockerfile.
    rendered
        .files
        .remove("Dockerfile")
        .ok_or_else(|| RenderError::InvalidOutput {
            template: "Dockerfile.tera".to_owned(),
            what: "Dockerfile".to_owned(),
            message: "the render produced no Dockerfile".to_owned(),
        })
}

/// Every built-in template compiled, before the environment (which says which of them it
/// renders, and what overrides them) is known.
pub struct BuiltInTemplates(templates::Engine);

impl BuiltInTemplates {
    pub fn compile() -> Result<Self, RenderError> {
        templates::Engine::built_in().map(Self)
    }
}

/// An environment with its templates compiled, ready to render: compiling is a large part
/// of a render's work, so a caller can do it while it does something else (`wactl render`
/// compiles the built-ins while it reads the definition, see [`BuiltInTemplates`]).
pub struct Renderer<'a> {
    env: &'a Environment,
    plan: Vec<(&'static str, Output)>,
    engine: templates::Engine,
}

impl<'a> Renderer<'a> {
    /// Compiles the templates `env` renders (and every override, so a broken one is
    /// reported even when this environment does not use it). `templates` takes
    /// precedence over the definition's `templates`.
    pub fn new(env: &'a Environment, templates: Option<&Path>) -> Result<Self, RenderError> {
        Self::with_plan(env, templates, plan(env))
    }

    fn with_plan(
        env: &'a Environment,
        templates: Option<&Path>,
        plan: Vec<(&'static str, Output)>,
    ) -> Result<Self, RenderError> {
        let override_dir = templates.or(env.templates.as_deref());
        let names: Vec<&str> = plan.iter().map(|(template, _)| *template).collect();
        let engine = templates::Engine::new(&names, override_dir)?;
        Ok(Self { env, plan, engine })
    }

    /// As [`Renderer::new`], from built-in templates compiled beforehand (while the
    /// definition was read): only the overrides are compiled here.
    pub fn with_built_ins(
        env: &'a Environment,
        templates: Option<&Path>,
        built_ins: BuiltInTemplates,
    ) -> Result<Self, RenderError> {
        let override_dir = templates.or(env.templates.as_deref());
        let engine = built_ins.0.with_overrides(override_dir)?;
        Ok(Self {
            env,
            plan: plan(env),
            engine,
        })
    }

    /// Renders every artifact; `image` is the image reference to deploy, by default
    /// the definition's tag.
    pub fn render(&self, image: Option<&str>) -> Result<Rendered, RenderError> {
        let (env, engine) = (self.env, &self.engine);
        let image = image.map_or_else(|| env.image.tagged(), str::to_owned);
        let header = format!(
            "Rendered by wactl from {}. Do not edit: change the definition and run `wactl render {}`.",
            env.source_description(),
            env.name
        );
        let mut context = context(env, &image, &header)?;

        // The configuration files first: the Kubernetes templates that embed them see them
        // all. Each is checked on its own, so they are checked on every core.
        let mut rendered_files = Vec::new();
        let mut kubernetes = Vec::new();
        for (template, output) in &self.plan {
            match output {
                Output::File(path) => {
                    rendered_files.push((*template, *path, engine.render(template, &context)?));
                }
                Output::Kubernetes(order) => kubernetes.push((*template, *order)),
            }
        }
        let checked = on_every_core(&rendered_files, |(template, path, text)| {
            check_output(template, path, text)
        });
        let mut files = BTreeMap::new();
        let mut artifacts = BTreeMap::new();
        for ((_, path, text), data) in rendered_files.into_iter().zip(checked) {
            let data = data?;
            let body = if path.ends_with(".json") {
                text
            } else {
                format!("# {header}\n{text}")
            };
            let body = ensure_newline(body);
            artifacts.insert(path, to_value("artifacts", &artifact(&body, data))?);
            files.insert(path.to_owned(), body);
        }
        context.insert_value("artifacts", tera::Value::from(artifacts));

        let mut documents = Vec::new();
        for (template, order) in kubernetes {
            let text = engine.render(template, &context)?;
            documents.push(kube::Document {
                template,
                order,
                text,
            });
        }
        // Parsing and checking the objects is most of a render's work, and each object
        // stands alone: they are checked on every core, then taken in the plan's order.
        let mut manifests = Vec::new();
        let parsed = on_every_core(&documents, |d| {
            kube::parse_all(d.template, d.order, &d.text)
        });
        for (document, parsed) in documents.iter().zip(parsed) {
            let template = document.template;
            for manifest in parsed? {
                let body = format!("# {header}\n# Template: {template}\n{}", manifest.yaml);
                if files
                    .insert(manifest.file.clone(), ensure_newline(body))
                    .is_some()
                {
                    return Err(RenderError::InvalidOutput {
                        template: template.to_owned(),
                        what: "Kubernetes object".to_owned(),
                        message: format!(
                            "{} `{}` is rendered twice (names must be unique per kind)",
                            manifest.kind, manifest.name
                        ),
                    });
                }
                manifests.push(manifest);
            }
        }
        manifests.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(Rendered { files, manifests })
    }
}

/// `work` done for every item on as many threads as there are cores (each item stands
/// alone); the results are in the items' order, so the first error reported is the same on
/// every machine.
fn on_every_core<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(items.len());
    if workers <= 1 {
        return items.iter().map(work).collect();
    }
    // Each worker takes the next item not taken yet: their sizes differ tenfold.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, work(item)));
        }
    };
    let mut results: Vec<_> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers).map(|_| scope.spawn(worker)).collect();
        let mut results = worker();
        for helper in helpers {
            match helper.join() {
                Ok(theirs) => results.extend(theirs),
                // A panic is a bug in the work: the same as if it happened on this thread.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, result)| result).collect()
}

enum Output {
    File(&'static str),
    /// A Kubernetes object; the number is its apply order.
    Kubernetes(u8),
}

/// Which templates apply to `env`, and where each goes.
fn plan(env: &Environment) -> Vec<(&'static str, Output)> {
    use Output::{File, Kubernetes as K};
    let c = &env.components;
    let mut plan = vec![
        ("Dockerfile.tera", File("Dockerfile")),
        ("compose.yaml.tera", File("compose.yaml")),
        (
            "prometheus/prometheus.yml.tera",
            File("prometheus/prometheus.yml"),
        ),
        ("prometheus/rules.yml.tera", File("prometheus/rules.yml")),
        (
            "prometheus/rules.test.yml.tera",
            File("prometheus/rules.test.yml"),
        ),
        (
            "grafana/provisioning/datasources/datasources.yml.tera",
            File("grafana/provisioning/datasources/datasources.yml"),
        ),
        (
            "grafana/provisioning/dashboards/dashboards.yml.tera",
            File("grafana/provisioning/dashboards/dashboards.yml"),
        ),
        (
            "grafana/dashboards/address-service.json.tera",
            File("grafana/dashboards/address-service.json"),
        ),
        ("nginx/nginx.conf.tera", File("nginx/nginx.conf")),
    ];
    if env.monitoring.mode == MonitoringMode::Bundled {
        plan.push((
            "prometheus/prometheus-kubernetes.yml.tera",
            File("prometheus/prometheus-kubernetes.yml"),
        ));
    }
    plan.extend([
        ("k8s/namespace.yaml.tera", K(0)),
        ("k8s/serviceaccount.yaml.tera", K(10)),
        ("k8s/role.yaml.tera", K(11)),
        ("k8s/rolebinding.yaml.tera", K(12)),
        ("k8s/configmap.yaml.tera", K(20)),
        ("k8s/service.yaml.tera", K(30)),
        ("k8s/deployment.yaml.tera", K(50)),
        ("k8s/pdb.yaml.tera", K(61)),
        ("k8s/networkpolicy-default-deny.yaml.tera", K(62)),
        ("k8s/networkpolicy.yaml.tera", K(62)),
    ]);
    if c.postgres.is_some() {
        plan.extend([
            ("k8s/postgres-service.yaml.tera", K(31)),
            ("k8s/postgres-statefulset.yaml.tera", K(40)),
            ("k8s/postgres-networkpolicy.yaml.tera", K(62)),
        ]);
    }
    if c.redis.is_some() {
        plan.extend([
            ("k8s/redis-service.yaml.tera", K(31)),
            ("k8s/redis-statefulset.yaml.tera", K(40)),
            ("k8s/redis-networkpolicy.yaml.tera", K(62)),
        ]);
    }
    match env.monitoring.mode {
        MonitoringMode::Off => {}
        MonitoringMode::Bundled => {
            plan.extend([
                ("k8s/prometheus-serviceaccount.yaml.tera", K(10)),
                ("k8s/prometheus-configmap.yaml.tera", K(20)),
                ("k8s/prometheus-service.yaml.tera", K(31)),
                ("k8s/prometheus-statefulset.yaml.tera", K(40)),
                ("k8s/prometheus-networkpolicy.yaml.tera", K(62)),
            ]);
            match env.monitoring.discovery {
                Discovery::Kubernetes => plan.extend([
                    ("k8s/prometheus-role.yaml.tera", K(11)),
                    ("k8s/prometheus-rolebinding.yaml.tera", K(12)),
                ]),
                Discovery::Dns => {
                    plan.push(("k8s/prometheus-pods-service.yaml.tera", K(31)));
                    if env.rollout.canary.is_some() {
                        plan.push(("k8s/prometheus-canary-pods-service.yaml.tera", K(31)));
                    }
                }
            }
            if c.grafana.is_some() {
                plan.extend([
                    ("k8s/grafana-configmap.yaml.tera", K(20)),
                    ("k8s/grafana-service.yaml.tera", K(31)),
                    ("k8s/grafana-deployment.yaml.tera", K(50)),
                    ("k8s/grafana-networkpolicy.yaml.tera", K(62)),
                ]);
            }
        }
        MonitoringMode::Operator => plan.extend([
            ("k8s/grafana-dashboard-configmap.yaml.tera", K(20)),
            // After the workloads: the objects only tell the operator what to watch.
            ("k8s/servicemonitor.yaml.tera", K(64)),
            ("k8s/prometheusrule.yaml.tera", K(64)),
        ]),
    }
    if env.autoscaling.is_some() {
        plan.push(("k8s/hpa.yaml.tera", K(60)));
    }
    if env.ingress.enabled {
        plan.push(("k8s/ingress.yaml.tera", K(63)));
    }
    if weighs_ingress(env) {
        plan.push(("k8s/service-stable.yaml.tera", K(30)));
    }
    plan
}

/// The pod label that tells a canary's pods (`canary`) from the stable ones (`stable`).
pub const TRACK_LABEL: &str = "wactl.dev/track";

/// Whether a canary's weight is set in the Ingress (`rollout.strategy: canary` with the
/// Ingress on; validation keeps its class to ingress-nginx's): the Ingress then routes to
/// the stable pods' own Service and each step adds a weighted canary Ingress.
pub fn weighs_ingress(env: &Environment) -> bool {
    env.rollout.canary.is_some() && env.ingress.enabled
}

/// The Service the Ingress routes to: the stable pods' own one when a canary weighs the
/// Ingress, else the one Service of every pod.
pub fn ingress_service(env: &Environment) -> String {
    if weighs_ingress(env) {
        format!("{}-stable", env.app.name)
    } else {
        env.app.name.clone()
    }
}

fn context(env: &Environment, image: &str, header: &str) -> Result<tera::Context, RenderError> {
    let labels = json!({
        "app.kubernetes.io/name": env.app.name,
        "app.kubernetes.io/instance": env.name,
        "app.kubernetes.io/part-of": "world-address",
        "app.kubernetes.io/managed-by": "wactl",
    });
    let selector =
        json!({ "app.kubernetes.io/name": env.app.name, "app.kubernetes.io/instance": env.name });
    let component = |suffix: &str| {
        let name = format!("{}-{suffix}", env.app.name);
        (
            json!({ "app.kubernetes.io/name": name, "app.kubernetes.io/instance": env.name, "app.kubernetes.io/part-of": "world-address", "app.kubernetes.io/managed-by": "wactl" }),
            json!({ "app.kubernetes.io/name": name, "app.kubernetes.io/instance": env.name }),
        )
    };
    // A canary rollout tells its two tracks apart by one pod label: the stable pods carry
    // `wactl.dev/track: stable` (the Deployment's selector stays as it is, it is immutable),
    // the canary's `canary`, so Prometheus can judge each over the same window.
    let with_track = |base: &Value, track: &str| {
        let mut out = base.clone();
        if env.rollout.canary.is_some()
            && let Value::Object(map) = &mut out
        {
            map.insert(TRACK_LABEL.to_owned(), json!(track));
        }
        out
    };
    let mut ctx = tera::Context::new();
    put(&mut ctx, "pod_labels", &with_track(&labels, "stable"))?;
    put(
        &mut ctx,
        "stable_selector",
        &with_track(&selector, "stable"),
    )?;
    put(
        &mut ctx,
        "canary_selector",
        &with_track(&selector, "canary"),
    )?;
    put(&mut ctx, "ingress_service", &ingress_service(env))?;
    put(&mut ctx, "env", env)?;
    put(&mut ctx, "image", image)?;
    put(&mut ctx, "header", header)?;
    put(&mut ctx, "labels", &labels)?;
    put(&mut ctx, "selector", &selector)?;
    put(&mut ctx, "config_hash", &config_hash(env))?;
    put(&mut ctx, "alert", &alert_thresholds(env))?;
    // Per-component templates use the same names; each template knows its component.
    let merged = |extra: &BTreeMap<String, String>| {
        let mut merged = labels.clone();
        if let Value::Object(map) = &mut merged {
            map.extend(extra.iter().map(|(k, v)| (k.clone(), json!(v))));
        }
        merged
    };
    put(&mut ctx, "operator_labels", &merged(&env.monitoring.labels))?;
    let sidecar = BTreeMap::from([("grafana_dashboard".to_owned(), "1".to_owned())]);
    put(&mut ctx, "dashboard_labels", &merged(&sidecar))?;
    put(&mut ctx, "artifacts", &BTreeMap::<String, Value>::new())?;
    for (suffix, key) in [
        ("postgres", "postgres"),
        ("redis", "redis"),
        ("prometheus", "prometheus"),
        ("grafana", "grafana"),
    ] {
        let (labels, selector) = component(suffix);
        put(&mut ctx, format!("{key}_labels"), &labels)?;
        put(&mut ctx, format!("{key}_selector"), &selector)?;
    }
    Ok(ctx)
}

/// Adds `value` to the templates' context under `key`.
fn put<T: serde::Serialize + ?Sized>(
    context: &mut tera::Context,
    key: impl Into<std::borrow::Cow<'static, str>>,
    value: &T,
) -> Result<(), RenderError> {
    let key = key.into();
    let value = to_value(&key, value)?;
    context.insert_value(key, value);
    Ok(())
}

/// `value` as the templates see it; `key` names it in the error.
fn to_value<T: serde::Serialize + ?Sized>(
    key: &str,
    value: &T,
) -> Result<tera::Value, RenderError> {
    tera::Value::try_from_serializable(value).map_err(|e| RenderError::Context {
        key: key.to_owned(),
        message: e.to_string(),
    })
}

/// A rendered file as later templates see it: its text, a checksum of it (for the pod
/// annotations that roll a workload when its configuration changes) and, for YAML, its data
/// (as [`check_output`] parsed it).
fn artifact(body: &str, data: Value) -> Value {
    let checksum = hex::encode(&Sha256::digest(body.as_bytes())[..8]);
    json!({ "text": body, "checksum": checksum, "data": data })
}

/// Thresholds the alert rules and their tests share.
fn alert_thresholds(env: &Environment) -> Value {
    let limit = env
        .resources
        .limits
        .memory
        .as_deref()
        .and_then(|m| Quantity::parse(m).ok())
        .map_or(256.0 * 1024.0 * 1024.0, |q| q.value);
    let (error_ratio, p95_seconds) = (
        crate::config::model::slo::ERROR_RATIO,
        crate::config::model::slo::P95_SECONDS,
    );
    json!({
        "error_ratio": error_ratio,
        "p95_seconds": p95_seconds,
        // For the alerts' text: tera prints a float with its decimal point (`5.0`).
        "error_percent": readable(error_ratio * 100.0),
        "p95_ms": readable(p95_seconds * 1000.0),
        "slow_bucket": 0.25,
        "memory_bytes": (limit * 0.9).round() as u64,
    })
}

/// `x` as a person writes it: a whole number without a decimal point (`5`, not `5.0`),
/// any other as it is (`2.5`).
fn readable(x: f64) -> Value {
    // Whole numbers up to 2^53 are exact in an f64, so the cast loses nothing.
    if x.fract() == 0.0 && x.abs() <= 9_007_199_254_740_992.0 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// Hash of everything the pods read from configuration, so a change rolls them.
fn config_hash(env: &Environment) -> String {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&(&env.config, &env.secrets, &env.app)).unwrap_or_default());
    hex::encode(&hasher.finalize()[..8])
}

/// Structured outputs must parse, so a broken template fails here and not in a consumer.
/// Returns a YAML file's data (`null` for any other file): the one parse it needs.
fn check_output(template: &str, path: &str, text: &str) -> Result<Value, RenderError> {
    let invalid = |what: &str, message: String| RenderError::InvalidOutput {
        template: template.to_owned(),
        what: what.to_owned(),
        message,
    };
    if path.ends_with(".json") {
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| invalid("JSON document", e.to_string()))?;
    } else if path.ends_with(".yaml") || path.ends_with(".yml") {
        return serde_saphyr::from_str::<Value>(text)
            .map_err(|e| invalid("YAML document", e.to_string()));
    }
    Ok(Value::Null)
}

fn ensure_newline(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests;
