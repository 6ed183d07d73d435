//! A canary rollout without a controller: a second Deployment (`<name>-canary`) of the new
//! pod template behind the same Service takes each step's share of the pods while the
//! bundled Prometheus compares its metrics with the stable pods'; the stable Deployment is
//! only changed (by the ordinary rollout, which promotes) once every step has passed.
//! Where the environment renders an (ingress-nginx) Ingress, that routes to the stable
//! pods only and each step adds a canary Service and Ingress carrying the step's weight.

use super::{EventKind, FailureCode, RecordedObject, StageFailure, Stages};
pub use crate::cluster::evidence::{CanaryReport, Measurement, MetricValue, StepReport, Verdict};
use crate::cluster::prometheus::{self, PrometheusAt, PrometheusService};
use crate::cluster::revision::Revision;
use crate::cluster::{self, ObjectRef, Resolver};
use crate::config::Environment;
use crate::config::model::{AnalysisPrometheus, Bound, Canary, Metric};
use crate::render::{TRACK_LABEL, ingress_service, weighs_ingress};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The canary Deployment's (and ConfigMap's) name.
pub fn canary_name(env: &Environment) -> String {
    format!("{}-canary", env.app.name)
}

/// The fewest canary pods that make at least `weight` percent of `stable + canary`, and
/// at least one: `ceil(weight × stable / (100 − weight))`. With 3 stable pods, 25% gives
/// 1 canary pod (25%), 30% gives 2 (40%), 50% gives 3 (50%).
pub fn canary_replicas(stable: u32, weight: u32) -> u32 {
    let weight = u64::from(weight.min(99));
    let stable = u64::from(stable);
    let c = (weight * stable).div_ceil(100 - weight);
    u32::try_from(c.max(1)).unwrap_or(u32::MAX)
}

/// Judges one metric: beyond its bound it fails, unless the baseline is on and the stable
/// pods do no better over the same window (then the release is not what made it bad).
pub fn judge(bound: Bound, canary: Option<f64>, stable: Option<f64>, baseline: bool) -> Verdict {
    let Some(value) = canary.filter(|v| !v.is_nan()) else {
        return Verdict::Inconclusive;
    };
    let within = |v: f64| match bound {
        Bound::Min(min) => v >= min,
        Bound::Max(max) => v <= max,
    };
    if within(value) {
        return Verdict::Passed;
    }
    let no_worse = |s: f64| match bound {
        Bound::Min(_) => value >= s,
        Bound::Max(_) => value <= s,
    };
    match stable.filter(|v| !v.is_nan()) {
        Some(s) if baseline && no_worse(s) => Verdict::Passed,
        _ => Verdict::Failed,
    }
}

/// The verdict of a measurement: failed when a metric fails, else inconclusive when one
/// is, else passed.
pub fn overall(metrics: &[MetricValue]) -> Verdict {
    if metrics.iter().any(|m| m.verdict == Verdict::Failed) {
        Verdict::Failed
    } else if metrics.is_empty() || metrics.iter().any(|m| m.verdict == Verdict::Inconclusive) {
        Verdict::Inconclusive
    } else {
        Verdict::Passed
    }
}

/// Counts failed and inconclusive measurements over the whole analysis against the limits.
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    pub failure_limit: u32,
    pub inconclusive_limit: u32,
    pub failures: u32,
    pub inconclusives: u32,
}

impl Tally {
    pub fn new(failure_limit: u32, inconclusive_limit: u32) -> Self {
        Self {
            failure_limit,
            inconclusive_limit,
            failures: 0,
            inconclusives: 0,
        }
    }

    /// Adds a measurement; `Some` with the verdict that stops the canary once a limit is hit.
    pub fn add(&mut self, verdict: Verdict) -> Option<Verdict> {
        match verdict {
            Verdict::Passed => None,
            Verdict::Failed => {
                self.failures += 1;
                (self.failures >= self.failure_limit).then_some(Verdict::Failed)
            }
            Verdict::Inconclusive => {
                self.inconclusives += 1;
                (self.inconclusives >= self.inconclusive_limit).then_some(Verdict::Inconclusive)
            }
        }
    }
}

/// `query` for one track over `window_seconds`.
pub fn query_for(metric: &Metric, track: &str, window_seconds: u64) -> String {
    metric
        .query
        .replace("$track", track)
        .replace("$window", &format!("{window_seconds}s"))
}

fn bound_text(bound: Bound) -> String {
    match bound {
        Bound::Min(v) => format!("min {v}"),
        Bound::Max(v) => format!("max {v}"),
    }
}

fn value_text(v: Option<f64>) -> String {
    v.map_or("no data".to_owned(), |v| format!("{v:.4}"))
}

/// Why a metric did not pass, for events and the error.
fn metric_reason(m: &MetricValue, baseline: bool) -> String {
    let stable = if baseline {
        format!(", stable {}", value_text(m.stable))
    } else {
        String::new()
    };
    format!(
        "{}: canary {}{stable}, threshold {}",
        m.name,
        value_text(m.canary),
        bound_text(m.bound)
    )
}

fn failure(message: String) -> StageFailure {
    StageFailure {
        code: FailureCode::CanaryFailed,
        message,
    }
}

/// The live stable Deployment, when there is one.
async fn live_deployment(client: &Client, env: &Environment, name: &str) -> Option<Deployment> {
    Api::<Deployment>::namespaced(client.clone(), &env.cluster.namespace)
        .get_opt(name)
        .await
        .ok()
        .flatten()
}

/// Why this deploy needs no canary, or `None` when it does: no stable pods with their
/// track label yet (the first deploy with `strategy: canary` labels them), or the pods
/// would not change (same template and configuration as the last successful revision).
async fn skip_reason(
    client: &Client,
    env: &Environment,
    objects: &[RecordedObject],
    last_good: Option<&Revision>,
) -> Option<String> {
    let live = live_deployment(client, env, &env.app.name).await;
    let labelled = live
        .as_ref()
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get(TRACK_LABEL))
        .is_some_and(|t| t == "stable");
    if !labelled {
        return Some(
            "no stable pods with their track label yet: a rolling update labels them, the next deploy runs the canary"
                .to_owned(),
        );
    }
    let pod_inputs = |objects: &[RecordedObject]| {
        (
            find(objects, "Deployment", &env.app.name).map(|d| d["spec"]["template"].clone()),
            find(objects, "ConfigMap", &env.app.name).map(|c| c["data"].clone()),
        )
    };
    let last = last_good.map(|r| pod_inputs(&r.objects));
    (last == Some(pod_inputs(objects)))
        .then(|| "the pods do not change: nothing to judge".to_owned())
}

fn find<'a>(objects: &'a [RecordedObject], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .map(|o| &o.object)
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

/// The canary's ConfigMap and Deployment, derived from the rendered ones: other names,
/// the `canary` track in labels and selector, `replicas` pods.
pub fn canary_objects(
    env: &Environment,
    objects: &[RecordedObject],
    replicas: u32,
) -> Option<Vec<(String, Value)>> {
    let name = canary_name(env);
    let mut config = find(objects, "ConfigMap", &env.app.name)?.clone();
    config["metadata"]["name"] = name.clone().into();
    config["metadata"]["labels"][TRACK_LABEL] = "canary".into();
    let mut deployment = find(objects, "Deployment", &env.app.name)?.clone();
    deployment["metadata"]["name"] = name.clone().into();
    deployment["metadata"]["labels"][TRACK_LABEL] = "canary".into();
    deployment["spec"]["replicas"] = replicas.into();
    deployment["spec"]["selector"]["matchLabels"][TRACK_LABEL] = "canary".into();
    let pod = &mut deployment["spec"]["template"];
    pod["metadata"]["labels"][TRACK_LABEL] = "canary".into();
    if let Some(containers) = pod["spec"]["containers"].as_array_mut() {
        for container in containers {
            if let Some(sources) = container["envFrom"].as_array_mut() {
                for source in sources {
                    if source["configMapRef"]["name"] == env.app.name {
                        source["configMapRef"]["name"] = name.clone().into();
                    }
                }
            }
        }
    }
    Some(vec![
        ("k8s/20-configmap-canary.yaml".to_owned(), config),
        ("k8s/50-deployment-canary.yaml".to_owned(), deployment),
    ])
}

/// ingress-nginx's annotations that make an Ingress the canary of the one for the same
/// host and path, and give it its share of the requests.
pub const CANARY_ANNOTATION: &str = "nginx.ingress.kubernetes.io/canary";
pub const CANARY_WEIGHT_ANNOTATION: &str = "nginx.ingress.kubernetes.io/canary-weight";

/// The canary's Service and Ingress for a step of `weight` percent, derived from the
/// rendered stable-only Service and Ingress (same host, paths and TLS): the Service selects
/// the canary's pods, the Ingress carries ingress-nginx's canary annotations and routes to
/// it. `None` when the environment does not weigh an Ingress (or the rendered objects lack
/// either).
pub fn canary_traffic(
    env: &Environment,
    objects: &[RecordedObject],
    weight: u32,
) -> Option<Vec<(String, Value)>> {
    if !weighs_ingress(env) {
        return None;
    }
    let name = canary_name(env);
    let mut service = find(objects, "Service", &ingress_service(env))?.clone();
    service["metadata"]["name"] = name.clone().into();
    service["metadata"]["labels"][TRACK_LABEL] = "canary".into();
    service["spec"]["selector"][TRACK_LABEL] = "canary".into();
    let mut ingress = find(objects, "Ingress", &env.app.name)?.clone();
    ingress["metadata"]["name"] = name.clone().into();
    ingress["metadata"]["labels"][TRACK_LABEL] = "canary".into();
    if let Some(annotations) = ingress["metadata"]["annotations"].as_object_mut() {
        // cert-manager would issue a second certificate into the same Secret for it;
        // ingress-nginx serves the canary with the main Ingress's TLS anyway.
        annotations.retain(|k, _| !k.starts_with("cert-manager.io/"));
    }
    ingress["metadata"]["annotations"][CANARY_ANNOTATION] = "true".into();
    ingress["metadata"]["annotations"][CANARY_WEIGHT_ANNOTATION] = weight.to_string().into();
    if let Some(rules) = ingress["spec"]["rules"].as_array_mut() {
        for rule in rules {
            if let Some(paths) = rule["http"]["paths"].as_array_mut() {
                for path in paths {
                    path["backend"]["service"]["name"] = name.clone().into();
                }
            }
        }
    }
    Some(vec![
        ("k8s/30-service-canary.yaml".to_owned(), service),
        ("k8s/63-ingress-canary.yaml".to_owned(), ingress),
    ])
}

/// The canary's Deployment: what a step waits for.
fn canary_workload(env: &Environment) -> ObjectRef {
    ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some(env.cluster.namespace.clone()),
        name: canary_name(env),
    }
}

/// The canary's objects, for deleting and finding them; deleted last first, so the
/// Ingress stops sending it requests before its pods go, and the Deployment (by which a
/// leftover is found) goes last. The Service and Ingress are listed whatever the
/// definition says now: a leftover may be from when it weighed the Ingress.
pub fn canary_refs(env: &Environment) -> Vec<ObjectRef> {
    let name = canary_name(env);
    let namespace = Some(env.cluster.namespace.clone());
    let object = |api_version: &str, kind: &str| ObjectRef {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.clone(),
        name: name.clone(),
    };
    vec![
        object("v1", "ConfigMap"),
        canary_workload(env),
        object("v1", "Service"),
        object("networking.k8s.io/v1", "Ingress"),
    ]
}

/// Whether a canary Deployment is live in the environment (in progress, or left by a
/// killed deploy).
pub async fn in_progress(client: &Client, env: &Environment) -> Option<Deployment> {
    live_deployment(client, env, &canary_name(env)).await
}

/// Whether the live main Ingress routes to the stable pods' own Service: not yet when this
/// deploy is the one that brings that routing (it is applied with the promotion), and a
/// canary Ingress beside one that routes to every pod would add its weight to their share.
async fn ingress_routes_to_stable(client: &Client, env: &Environment) -> bool {
    let Ok(Some(live)) = Api::<Ingress>::namespaced(client.clone(), &env.cluster.namespace)
        .get_opt(&env.app.name)
        .await
    else {
        return false;
    };
    let stable = ingress_service(env);
    let backends: Vec<String> = live
        .spec
        .iter()
        .flat_map(|s| s.rules.iter().flatten())
        .flat_map(|r| r.http.iter().flat_map(|h| h.paths.iter()))
        .filter_map(|p| Some(p.backend.service.as_ref()?.name.clone()))
        .collect();
    !backends.is_empty() && backends.iter().all(|b| *b == stable)
}

/// Whether anything of a canary is live: its Deployment, or its Ingress (a removal that
/// failed half-way may leave that alone).
pub async fn is_live(client: &Client, env: &Environment) -> bool {
    in_progress(client, env).await.is_some() || ingress_weight(client, env).await.is_some()
}

/// The weight the live canary Ingress carries (`None`: there is none, or it has no weight).
pub async fn ingress_weight(client: &Client, env: &Environment) -> Option<u32> {
    Api::<Ingress>::namespaced(client.clone(), &env.cluster.namespace)
        .get_opt(&canary_name(env))
        .await
        .ok()
        .flatten()?
        .metadata
        .annotations?
        .get(CANARY_WEIGHT_ANNOTATION)?
        .parse()
        .ok()
}

/// Deletes the canary's objects ([`canary_refs`]) and waits (bounded by the pods' grace
/// period) until its pods are gone, so that the next canary's window holds no series of
/// theirs; the names of what was deleted.
pub async fn remove(
    client: &Client,
    env: &Environment,
) -> Result<Vec<String>, cluster::ClusterError> {
    let deleted = delete(client, env).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &env.cluster.namespace);
    let selector = format!(
        "app.kubernetes.io/name={},app.kubernetes.io/instance={},{TRACK_LABEL}=canary",
        env.app.name, env.name
    );
    let limit = Duration::from_secs(u64::from(env.rollout.termination_grace_period_seconds) + 15);
    let started = Instant::now();
    while started.elapsed() < limit {
        match pods.list(&ListParams::default().labels(&selector)).await {
            Ok(list) if list.items.is_empty() => break,
            Ok(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            // Deleted already; whether its pods are gone is only a matter of time.
            Err(_) => break,
        }
    }
    Ok(deleted)
}

/// Deletes the canary's objects ([`canary_refs`]) without waiting for its pods (after a
/// signal, where the clean-up has seconds); the names of what was deleted.
pub async fn delete(
    client: &Client,
    env: &Environment,
) -> Result<Vec<String>, cluster::ClusterError> {
    let resolver = Resolver::new(client.clone());
    let deleted = cluster::delete_owned(&resolver, &canary_refs(env)).await?;
    Ok(deleted.iter().map(ToString::to_string).collect())
}

/// Removes a canary that a killed deploy left behind (it serves a version nobody judged),
/// whatever the strategy is now; says so in an event and in the report. Called under the
/// lock: a canary seen without it may be another deploy's, in progress.
pub(super) async fn remove_leftover(
    client: &Client,
    env: &Environment,
    stages: &mut Stages<'_>,
) -> Result<(), StageFailure> {
    if !is_live(client, env).await {
        return Ok(());
    }
    let removed = remove(client, env)
        .await
        .map_err(|e| failure(format!("could not remove the leftover canary: {e}")))?;
    stages.emit(EventKind::Note(format!(
        "removed a leftover canary from an earlier deploy: {}",
        removed.join(", ")
    )));
    stages
        .report
        .canary
        .get_or_insert_default()
        .leftover_removed = removed;
    Ok(())
}

/// Runs the canary's steps for `objects` (the rendered new version). `Ok` when every step
/// passed (or no canary was needed): the caller promotes with the ordinary rollout and
/// then removes the canary. `Err` after the canary was removed: stable never changed.
pub(super) async fn run(
    client: &Client,
    env: &Environment,
    canary: &Canary,
    objects: &[RecordedObject],
    last_good: Option<&Revision>,
    stages: &mut Stages<'_>,
) -> Result<(), StageFailure> {
    if let Some(reason) = skip_reason(client, env, objects, last_good).await {
        stages.emit(EventKind::Note(format!("canary skipped: {reason}")));
        stages.report.canary.get_or_insert_default().skipped = Some(reason);
        return Ok(());
    }
    stages.report.canary.get_or_insert_default();
    let judged = steps(client, env, canary, objects, stages).await;
    if judged.is_ok() {
        return Ok(());
    }
    // Failed, inconclusive or not deployable: remove the canary; stable was never touched.
    let removed = remove(client, env).await;
    judged.map_err(|f| match removed {
        Ok(_) => StageFailure {
            message: format!("{}; the canary is removed, stable unchanged", f.message),
            ..f
        },
        Err(e) => StageFailure {
            message: format!("{}; the canary could not be removed: {e}", f.message),
            ..f
        },
    })
}

async fn steps(
    client: &Client,
    env: &Environment,
    canary: &Canary,
    objects: &[RecordedObject],
    stages: &mut Stages<'_>,
) -> Result<(), StageFailure> {
    let service = match &canary.analysis.prometheus {
        AnalysisPrometheus::Url(url) => PrometheusAt::Url(url.clone()),
        AnalysisPrometheus::Bundled => PrometheusService::bundled(env)
            .map(PrometheusAt::Proxy)
            .ok_or_else(|| failure("a canary needs the bundled Prometheus".to_owned()))?,
    };
    let stable_replicas = live_deployment(client, env, &env.app.name)
        .await
        .and_then(|d| d.spec?.replicas)
        .and_then(|r| u32::try_from(r).ok())
        .unwrap_or(env.replicas)
        .max(1);
    let analysis = &canary.analysis;
    let mut tally = Tally::new(analysis.failure_limit, analysis.inconclusive_limit);
    let resolver = Resolver::new(client.clone());
    let scrape_grace = Duration::from_secs(30.max(analysis.window_seconds));
    let weighs = weighs_ingress(env) && ingress_routes_to_stable(client, env).await;
    if weighs_ingress(env) && !weighs {
        stages.emit(EventKind::Note(format!(
            "the Ingress does not route to Service {} yet (this deploy brings that): no canary Ingress this time, the canary's share of the Ingress's requests follows the replica ratio",
            ingress_service(env)
        )));
    }
    for (i, step) in canary.steps.iter().enumerate() {
        let number = i + 1;
        let replicas = canary_replicas(stable_replicas, step.weight);
        stages.emit(EventKind::CanaryStep {
            step: number,
            of: canary.steps.len(),
            weight: step.weight,
            canary_replicas: replicas,
            stable_replicas,
        });
        let canary_objects = canary_objects(env, objects, replicas).ok_or_else(|| {
            failure(format!(
                "the rendered objects have no Deployment and ConfigMap `{}` to make a canary of",
                env.app.name
            ))
        })?;
        stages.ensure_held()?;
        let applied = Instant::now();
        cluster::apply_all(&resolver, &canary_objects, Default::default())
            .await
            .map_err(|e| failure(format!("step {number}: applying the canary failed: {e}")))?;
        let workload = [canary_workload(env)];
        let timeout = Duration::from_secs(u64::from(env.rollout.progress_deadline_seconds) + 30);
        {
            let stages = &*stages;
            cluster::track(client, &env.cluster.namespace, &workload, timeout, &|e| {
                stages.emit(EventKind::Rollout(e.clone()));
            })
            .await
            .map_err(|e| {
                failure(format!(
                    "step {number}: the canary did not become ready: {e}"
                ))
            })?;
        }
        // Only once its pods are ready: ingress-nginx would answer the weight's share of
        // the requests with 503 while the canary Service has no endpoints.
        if weighs {
            let traffic = canary_traffic(env, objects, step.weight).ok_or_else(|| {
                failure(format!(
                    "the rendered objects have no Service `{}` and Ingress `{}` to make the canary's of",
                    ingress_service(env),
                    env.app.name
                ))
            })?;
            stages.ensure_held()?;
            cluster::apply_all(&resolver, &traffic, Default::default())
                .await
                .map_err(|e| {
                    failure(format!(
                        "step {number}: applying the canary's Service and Ingress failed: {e}"
                    ))
                })?;
            stages.emit(EventKind::Note(format!(
                "Ingress {} takes {}% of the Ingress's requests (ingress-nginx canary weight)",
                canary_name(env),
                step.weight
            )));
        }
        let mut report = StepReport {
            step: number,
            weight: step.weight,
            canary_replicas: replicas,
            stable_replicas,
            verdict: Verdict::Passed,
            measurements: Vec::new(),
        };
        let started = Instant::now();
        // Prometheus must scrape the new pods before their numbers mean anything.
        if let Err(reason) = scraped(client, env, &service, scrape_grace).await {
            let m = Measurement {
                step: number,
                elapsed_seconds: started.elapsed().as_secs(),
                verdict: Verdict::Inconclusive,
                metrics: Vec::new(),
                reason: Some(reason),
            };
            if let Some(stop) = record(stages, &mut report, &mut tally, m) {
                return Err(stopped(stages, report, stop, analysis.baseline));
            }
        }
        // The first window holds the canary's pods only once they run for a whole window
        // (an earlier canary's series may still be in it otherwise).
        let window = Duration::from_secs(analysis.window_seconds);
        let interval = Duration::from_secs(analysis.interval_seconds);
        if number == 1 {
            let settle = window.saturating_sub(applied.elapsed() + interval);
            tokio::time::sleep(settle).await;
        }
        let analysed = Instant::now();
        let length = Duration::from_secs(step.analyze_seconds);
        while analysed.elapsed() + interval <= length + Duration::from_millis(500) {
            tokio::time::sleep(interval).await;
            let m = measure(client, &service, canary, number, started.elapsed()).await;
            if let Some(stop) = record(stages, &mut report, &mut tally, m) {
                return Err(stopped(stages, report, stop, analysis.baseline));
            }
        }
        if let Some(c) = stages.report.canary.as_mut() {
            c.steps.push(report);
        }
    }
    Ok(())
}

/// Emits `m`, adds it to the step and the tally; `Some` when it stops the canary.
fn record(
    stages: &mut Stages<'_>,
    report: &mut StepReport,
    tally: &mut Tally,
    m: Measurement,
) -> Option<Verdict> {
    stages.emit(EventKind::CanaryMeasurement(m.clone()));
    let stop = tally.add(m.verdict);
    report.measurements.push(m);
    stop
}

/// The failure for a canary stopped by `verdict`, naming the last measurement's metrics.
fn stopped(
    stages: &mut Stages<'_>,
    mut report: StepReport,
    verdict: Verdict,
    baseline: bool,
) -> StageFailure {
    report.verdict = verdict;
    let last = report.measurements.last();
    let why = last
        .map(|m| {
            let bad: Vec<String> = m
                .metrics
                .iter()
                .filter(|v| v.verdict == verdict)
                .map(|v| match &v.reason {
                    Some(r) if v.canary.is_none() => format!("{}: {r}", v.name),
                    _ => metric_reason(v, baseline),
                })
                .collect();
            if bad.is_empty() {
                m.reason.clone().unwrap_or_default()
            } else {
                bad.join("; ")
            }
        })
        .unwrap_or_default();
    let (count, what) = match verdict {
        Verdict::Inconclusive => (
            report
                .measurements
                .iter()
                .filter(|m| m.verdict == Verdict::Inconclusive)
                .count(),
            "inconclusive (failing closed)",
        ),
        _ => (
            report
                .measurements
                .iter()
                .filter(|m| m.verdict == Verdict::Failed)
                .count(),
            "failed",
        ),
    };
    let message = format!(
        "canary {what} at step {} ({}%, {} of {} pods) after {count} such measurement(s): {why}",
        report.step,
        report.weight,
        report.canary_replicas,
        report.canary_replicas + report.stable_replicas
    );
    if let Some(c) = stages.report.canary.as_mut() {
        c.steps.push(report);
    }
    failure(message)
}

/// The addresses of the canary's running pods (as Prometheus names its targets' hosts).
async fn canary_pod_addresses(client: &Client, env: &Environment) -> Vec<String> {
    let selector = format!(
        "app.kubernetes.io/name={},app.kubernetes.io/instance={},{TRACK_LABEL}=canary",
        env.app.name, env.name
    );
    Api::<Pod>::namespaced(client.clone(), &env.cluster.namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.status?.pod_ip)
        .collect()
}

/// Waits until Prometheus scrapes every running canary pod successfully (by address: a
/// target of an earlier canary does not count); the last reason when it does not within
/// `grace`.
async fn scraped(
    client: &Client,
    env: &Environment,
    service: &PrometheusAt,
    grace: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    let mut last;
    loop {
        let pods = canary_pod_addresses(client, env).await;
        match prometheus::targets(client, service).await {
            Ok(targets) => {
                let up: Vec<&str> = targets
                    .iter()
                    .filter(|t| t.labels.get("track").is_some_and(|t| t == "canary"))
                    .filter(|t| t.health == "up")
                    .filter_map(|t| t.labels.get("instance")?.split(':').next())
                    .collect();
                let scraped = pods.iter().filter(|p| up.contains(&p.as_str())).count();
                if !pods.is_empty() && scraped == pods.len() {
                    return Ok(());
                }
                last = format!(
                    "Prometheus scrapes {scraped} of the {} canary pods",
                    pods.len()
                );
            }
            Err(e) => last = e.to_string(),
        }
        if started.elapsed() >= grace {
            return Err(format!("after {} s: {last}", grace.as_secs()));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Reads every metric for the canary (and the stable pods) once.
async fn measure(
    client: &Client,
    service: &PrometheusAt,
    canary: &Canary,
    step: usize,
    elapsed: Duration,
) -> Measurement {
    let analysis = &canary.analysis;
    let mut metrics = Vec::new();
    for metric in &analysis.metrics {
        let read = |track: &'static str| {
            let promql = query_for(metric, track, analysis.window_seconds);
            async move {
                prometheus::query(client, service, &promql)
                    .await
                    .map(|samples| samples.first().and_then(prometheus::Sample::number))
                    .map(|v| v.filter(|v| !v.is_nan()))
            }
        };
        let canary_value = read("canary").await;
        let stable_value = if analysis.baseline {
            read("stable").await
        } else {
            Ok(None)
        };
        let value = match (canary_value, stable_value) {
            (Ok(c), Ok(s)) => {
                let verdict = judge(metric.bound, c, s, analysis.baseline);
                MetricValue {
                    name: metric.name.clone(),
                    canary: c,
                    stable: s,
                    bound: metric.bound,
                    verdict,
                    reason: (verdict == Verdict::Inconclusive)
                        .then(|| "no data for the canary".to_owned()),
                }
            }
            (Err(e), _) | (_, Err(e)) => MetricValue {
                name: metric.name.clone(),
                canary: None,
                stable: None,
                bound: metric.bound,
                verdict: Verdict::Inconclusive,
                reason: Some(e.to_string()),
            },
        };
        metrics.push(value);
    }
    Measurement {
        step,
        elapsed_seconds: elapsed.as_secs(),
        verdict: overall(&metrics),
        metrics,
        reason: None,
    }
}

/// One line for a measurement, for terminals and summaries.
pub fn measurement_line(m: &Measurement) -> String {
    if m.metrics.is_empty() {
        return format!(
            "step {} +{}s: {} ({})",
            m.step,
            m.elapsed_seconds,
            m.verdict.as_str(),
            m.reason.as_deref().unwrap_or("no metrics")
        );
    }
    let metrics: Vec<String> = m
        .metrics
        .iter()
        .map(|v| {
            let stable = v
                .stable
                .map(|s| format!(" (stable {s:.4})"))
                .unwrap_or_default();
            let reason = match (&v.reason, v.canary) {
                (Some(r), None) => format!(": {r}"),
                _ => String::new(),
            };
            format!(
                "{} {}{stable} {} {}{reason}",
                v.name,
                value_text(v.canary),
                bound_text(v.bound),
                v.verdict.as_str()
            )
        })
        .collect();
    format!(
        "step {} +{}s: {}: {}",
        m.step,
        m.elapsed_seconds,
        m.verdict.as_str(),
        metrics.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weight_is_rounded_up_to_whole_pods_and_at_least_one() {
        let cases = [
            (3, 25, 1),
            (3, 30, 2),
            (3, 50, 3),
            (3, 1, 1),
            (2, 50, 2),
            (10, 10, 2),
            (1, 99, 99),
            (4, 20, 1),
        ];
        for (stable, weight, expected) in cases {
            let c = canary_replicas(stable, weight);
            assert_eq!(c, expected, "{stable} stable pods, {weight}%");
            // The share reached is at least the weight, and one pod fewer would not reach it.
            assert!(100 * c >= weight * (stable + c));
            assert!(c == 1 || 100 * (c - 1) < weight * (stable + c - 1));
        }
        assert_eq!(cases.len(), 8);
    }

    #[test]
    fn a_metric_beyond_its_bound_fails_unless_the_stable_pods_do_no_better() {
        let min = Bound::Min(0.95);
        let max = Bound::Max(0.25);
        assert_eq!(judge(min, Some(0.99), Some(1.0), true), Verdict::Passed);
        assert_eq!(judge(min, Some(0.0), Some(1.0), true), Verdict::Failed);
        assert_eq!(judge(min, Some(0.0), Some(1.0), false), Verdict::Failed);
        // Both tracks bad over the same window: not the release's fault.
        assert_eq!(judge(min, Some(0.90), Some(0.89), true), Verdict::Passed);
        assert_eq!(judge(min, Some(0.90), Some(0.89), false), Verdict::Failed);
        assert_eq!(judge(max, Some(0.3), Some(0.1), true), Verdict::Failed);
        assert_eq!(judge(max, Some(0.3), Some(0.4), true), Verdict::Passed);
        assert_eq!(judge(max, Some(0.2), None, true), Verdict::Passed);
        // No data for the canary (or NaN, as 0/0 gives): inconclusive, whatever stable says.
        assert_eq!(judge(min, None, Some(1.0), true), Verdict::Inconclusive);
        assert_eq!(
            judge(min, Some(f64::NAN), Some(1.0), true),
            Verdict::Inconclusive
        );
        // Stable without data: the bound alone decides.
        assert_eq!(judge(min, Some(0.5), None, true), Verdict::Failed);
    }

    fn value(verdict: Verdict) -> MetricValue {
        MetricValue {
            name: "m".into(),
            canary: Some(1.0),
            stable: None,
            bound: Bound::Min(0.5),
            verdict,
            reason: None,
        }
    }

    #[test]
    fn one_failed_metric_fails_the_measurement_and_one_without_data_makes_it_inconclusive() {
        use Verdict::*;
        assert_eq!(overall(&[value(Passed), value(Passed)]), Passed);
        assert_eq!(overall(&[value(Passed), value(Inconclusive)]), Inconclusive);
        assert_eq!(overall(&[value(Inconclusive), value(Failed)]), Failed);
        assert_eq!(overall(&[]), Inconclusive);
    }

    #[test]
    fn the_limits_count_over_the_whole_analysis() {
        use Verdict::*;
        let mut tally = Tally::new(2, 2);
        let stops: Vec<Option<Verdict>> = [Passed, Failed, Inconclusive, Passed, Failed]
            .into_iter()
            .map(|v| tally.add(v))
            .collect();
        assert_eq!(stops, [None, None, None, None, Some(Failed)]);
        let mut tally = Tally::new(1, 2);
        assert_eq!(tally.add(Inconclusive), None);
        assert_eq!(tally.add(Inconclusive), Some(Inconclusive));
        let mut tally = Tally::new(1, 2);
        assert_eq!(
            tally.add(Failed),
            Some(Failed),
            "failureLimit 1: the first stops it"
        );
    }

    /// `staging` (an nginx Ingress with cert-manager TLS) with `extra`, and its rendered
    /// objects as a revision records them.
    fn staging_with(extra: &str) -> (Environment, Vec<RecordedObject>) {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
        let dir = tempfile::tempdir().unwrap();
        for name in ["base.yaml", "staging.yaml"] {
            std::fs::copy(repo.join(name), dir.path().join(name)).unwrap();
        }
        std::fs::write(
            dir.path().join("c.yaml"),
            format!("extends: staging\n{extra}"),
        )
        .unwrap();
        let env = crate::config::load(dir.path(), "c").unwrap_or_else(|e| panic!("{e}"));
        let rendered = crate::render::render(&env, &Default::default()).unwrap();
        (env, super::super::recorded(&rendered))
    }

    #[test]
    fn each_step_weighs_a_canary_ingress_beside_the_stable_one() {
        let (env, objects) = staging_with("rollout: { strategy: canary }\n");
        let stable = find(&objects, "Service", "address-service-stable").unwrap();
        assert_eq!(stable["spec"]["selector"][TRACK_LABEL], "stable");
        let main = find(&objects, "Ingress", "address-service").unwrap();
        let backend = &main["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
        assert_eq!(backend["name"], "address-service-stable");
        assert!(main["metadata"]["annotations"][CANARY_ANNOTATION].is_null());

        let mut tried = 0;
        for weight in [10, 25, 50] {
            tried += 1;
            let traffic = canary_traffic(&env, &objects, weight).unwrap();
            let files: Vec<&str> = traffic.iter().map(|(f, _)| f.as_str()).collect();
            assert_eq!(
                files,
                ["k8s/30-service-canary.yaml", "k8s/63-ingress-canary.yaml"]
            );
            let (service, ingress) = (&traffic[0].1, &traffic[1].1);
            assert_eq!(service["metadata"]["name"], "address-service-canary");
            assert_eq!(service["spec"]["selector"][TRACK_LABEL], "canary");
            assert_eq!(
                service["spec"]["selector"]["app.kubernetes.io/name"],
                "address-service"
            );
            assert_eq!(service["spec"]["ports"], stable["spec"]["ports"]);
            let annotations = &ingress["metadata"]["annotations"];
            assert_eq!(annotations[CANARY_ANNOTATION], "true");
            assert_eq!(annotations[CANARY_WEIGHT_ANNOTATION], weight.to_string());
            // The main Ingress's settings stay; its certificate is not issued twice.
            assert_eq!(
                annotations["nginx.ingress.kubernetes.io/proxy-body-size"],
                main["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
            );
            assert!(main["metadata"]["annotations"]["cert-manager.io/cluster-issuer"].is_string());
            assert!(annotations["cert-manager.io/cluster-issuer"].is_null());
            // Same class, host, paths and TLS; only the backend differs.
            let mut expected = main["spec"].clone();
            expected["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] =
                "address-service-canary".into();
            assert_eq!(ingress["spec"], expected);
            assert_eq!(ingress["metadata"]["name"], "address-service-canary");
            assert_eq!(ingress["metadata"]["labels"][TRACK_LABEL], "canary");
        }
        assert_eq!(tried, 3);
        // Deleted in reverse: the Ingress first, the Deployment (how a leftover is found)
        // after the traffic is gone.
        let kinds: Vec<String> = canary_refs(&env).into_iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["ConfigMap", "Deployment", "Service", "Ingress"]);
    }

    #[test]
    fn without_a_canary_or_an_ingress_nothing_is_weighed() {
        let (rolling, objects) = staging_with("");
        assert!(canary_traffic(&rolling, &objects, 25).is_none());
        assert!(find(&objects, "Service", "address-service-stable").is_none());
        let main = find(&objects, "Ingress", "address-service").unwrap();
        assert_eq!(
            main["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
            "address-service"
        );
        let (no_ingress, objects) =
            staging_with("rollout: { strategy: canary }\ningress: { enabled: false }\n");
        assert!(canary_traffic(&no_ingress, &objects, 25).is_none());
        assert!(find(&objects, "Service", "address-service-stable").is_none());
        assert!(find(&objects, "Ingress", "address-service").is_none());
    }

    #[test]
    fn a_query_gets_its_track_and_window() {
        let metric = &crate::config::default_metrics()[0];
        let q = query_for(metric, "canary", 20);
        assert!(
            q.contains(r#"track="canary""#) && q.contains("[20s]"),
            "{q}"
        );
        assert!(!q.contains('$'), "{q}");
    }
}
