//! The deploy pipeline: build → render → plan → apply → track → smoke → record, with
//! automatic rollback to the last successful revision when anything after apply fails.

mod report;

pub use report::{DeployReport, ErrorReport, Outcome, StageReport};

use crate::cluster::revision::{self, RecordedObject, Revision, RevisionStatus};
use crate::cluster::{
    self, ApplyOptions, ClusterError, LeaseWatch, LockOptions, ObjectRef, Plan, Resolver,
    RolloutFailure, track::is_tracked,
};
use crate::config::Environment;
use crate::render::{self, RenderError, RenderOptions};
use crate::ui::deploy::DeployUi;
use kube::Client;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Cluster(Box<ClusterError>),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(
        "environment {environment} is protected and needs confirmation, but there is no terminal to ask on; rerun with --yes"
    )]
    ConfirmationRequired { environment: String },
    #[error("--image: {message}")]
    InvalidImage { message: String },
    #[error("deploy of {environment} cancelled: not confirmed")]
    Declined { environment: String },
    #[error("no build settings were given: pass build options, or skip the build with an image")]
    BuildUnavailable,
    #[error(transparent)]
    Build(Box<crate::build::BuildError>),
    #[error("{environment}: rollback impossible: {message}")]
    NothingToRollBack {
        environment: String,
        message: String,
    },
    /// The deploy failed; the report says whether it was rolled back (exit 1).
    #[error("{}", report.error_text())]
    Failed { report: Box<DeployReport> },
    /// The deploy failed and so did the rollback (exit 3).
    #[error("{}", report.error_text())]
    RollbackFailed { report: Box<DeployReport> },
    /// SIGINT or SIGTERM stopped the deploy; what it had started is recorded as
    /// interrupted and the lock released (exit 130, or 143 for SIGTERM).
    #[error("{message}")]
    Interrupted {
        signal: &'static str,
        message: String,
        report: Box<DeployReport>,
    },
}

impl From<ClusterError> for DeployError {
    fn from(error: ClusterError) -> Self {
        Self::Cluster(Box::new(error))
    }
}

impl DeployError {
    /// Exit code per the CLI contract: 2 invalid input, 3 rollback failed too, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::ConfirmationRequired { .. }
            | Self::BuildUnavailable
            | Self::InvalidImage { .. } => 2,
            Self::Cluster(e) => e.exit_code(),
            Self::Build(e) if e.is_invalid_input() => 2,
            Self::RollbackFailed { .. } => 3,
            Self::Interrupted { signal, .. } => {
                if *signal == "SIGTERM" {
                    143
                } else {
                    130
                }
            }
            Self::Render(e) if e.is_invalid_input() => 2,
            _ => 1,
        }
    }

    /// The report of a deploy that got as far as applying, for `--output json`.
    pub fn report(&self) -> Option<&DeployReport> {
        match self {
            Self::Failed { report }
            | Self::RollbackFailed { report }
            | Self::Interrupted { report, .. } => Some(report),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Image reference to deploy instead of building one.
    pub image: Option<String>,
    pub skip_build: bool,
    /// How to build and push when not skipping the build.
    pub build: Option<crate::build::BuildOptions>,
    /// Template overrides (`--templates DIR`).
    pub templates: Option<PathBuf>,
    pub apply: ApplyOptions,
    /// Roll back automatically when the deploy fails.
    pub rollback: bool,
    pub force_unlock: bool,
    pub lock_duration: Duration,
    /// How often the lock is renewed (`None`: a third of `lock_duration`); a test sets it
    /// longer than `lock_duration` to lose the lock mid-deploy.
    pub lock_renew_every: Option<Duration>,
    /// Rollout deadline; default: the definition's progress deadline plus 30 s.
    pub timeout: Option<Duration>,
    /// Stop cleanly on SIGINT and SIGTERM (the CLI; a library caller keeps its own
    /// handlers): mark the revision interrupted, release the lock.
    pub stop_on_signals: bool,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            image: None,
            skip_build: false,
            build: None,
            templates: None,
            apply: ApplyOptions::default(),
            rollback: true,
            force_unlock: false,
            lock_duration: Duration::from_secs(30),
            lock_renew_every: None,
            timeout: None,
            stop_on_signals: false,
        }
    }
}

/// Who deploys, for revisions and the lock: `user@host`.
pub fn identity() -> (String, String) {
    let user = std::env::var("GITHUB_ACTOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    (user, host)
}

/// The commit being deployed: `GITHUB_SHA`, else `git rev-parse HEAD` here.
fn git_commit() -> Option<String> {
    if let Ok(sha) = std::env::var("GITHUB_SHA") {
        return Some(sha);
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

fn lock_options(options: &DeployOptions) -> LockOptions {
    let (user, host) = identity();
    LockOptions {
        holder: format!("{user}@{host} (pid {})", std::process::id()),
        duration: options.lock_duration,
        force_unlock: options.force_unlock,
        renew_every: options.lock_renew_every,
    }
}

/// Objects wactl may still own from earlier deploys: those of the last successful revision
/// and of every revision after it (a failed deploy may have created objects).
pub fn previously_owned(revisions: &[Revision]) -> Vec<ObjectRef> {
    let start = revisions
        .iter()
        .rposition(|r| r.status == RevisionStatus::Succeeded)
        .unwrap_or(0);
    let mut seen = BTreeSet::new();
    revisions[start..]
        .iter()
        .flat_map(|r| r.inventory.iter())
        .filter(|o| seen.insert((*o).clone()))
        .cloned()
        .collect()
}

fn recorded(rendered: &render::Rendered) -> Vec<RecordedObject> {
    rendered
        .manifests
        .iter()
        .map(|m| RecordedObject {
            file: m.file.clone(),
            object: m.object.clone(),
        })
        .collect()
}

fn pairs(objects: &[RecordedObject]) -> Vec<(String, serde_json::Value)> {
    objects
        .iter()
        .map(|o| (o.file.clone(), o.object.clone()))
        .collect()
}

fn inventory(objects: &[RecordedObject]) -> Vec<ObjectRef> {
    objects
        .iter()
        .filter_map(|o| ObjectRef::of(&o.object))
        .collect()
}

/// Renders `env` and plans it against the live cluster (what `wactl diff` shows).
pub async fn plan(
    client: &Client,
    env: &Environment,
    render_options: &RenderOptions,
    apply: ApplyOptions,
) -> Result<Plan, DeployError> {
    let rendered = render::render(env, render_options)?;
    let revisions = revision::list(client, &env.cluster.namespace, &env.name).await?;
    let resolver = Resolver::new(client.clone());
    Ok(cluster::plan(
        &resolver,
        &pairs(&recorded(&rendered)),
        &previously_owned(&revisions),
        apply,
    )
    .await?)
}

/// Times stages into the report.
/// The smoke suite after a rollout: a failed check is a failed deploy (and rolls back).
async fn smoke(env: &Environment, stages: &mut Stages<'_>) -> Result<(), (String, String)> {
    let Some(url) = env.smoke.url.as_deref() else {
        // Reaching pods without a URL needs a port-forward through a kubelet.
        stages.skipped("smoke", "no smoke.url in the definition");
        return Ok(());
    };
    let started = Instant::now();
    let options = crate::smoke::SmokeOptions::for_environment(env, url);
    let report = crate::smoke::run(env, url, &options).await;
    let failed: Vec<String> = report
        .failed()
        .map(|c| {
            let reason = c.failure.as_ref().map_or("failed", |f| f.reason.as_str());
            format!("{} ({}): {reason}", c.name, c.request)
        })
        .collect();
    let summary = format!(
        "{}/{} checks passed against {url}",
        report.checks.len() - failed.len(),
        report.checks.len()
    );
    stages.done("smoke", started, report.passed, summary.clone());
    if report.passed {
        Ok(())
    } else {
        Err((
            "smoke_failed".to_owned(),
            format!("{summary}; failed: {}", failed.join("; ")),
        ))
    }
}

struct Stages<'a> {
    report: DeployReport,
    ui: &'a DeployUi,
    /// The deploy lock, once taken: checked before every write to the cluster.
    lease: Option<LeaseWatch>,
}

impl Stages<'_> {
    /// `Ok` while this deploy holds its lock; the `lock_lost` failure otherwise.
    fn ensure_held(&self) -> Result<(), (String, String)> {
        match &self.lease {
            Some(lease) => lease.ensure_held().map_err(lock_lost),
            None => Err((
                LOCK_LOST.to_owned(),
                "the deploy lock was not taken".to_owned(),
            )),
        }
    }

    fn done(&mut self, name: &'static str, started: Instant, ok: bool, detail: String) {
        let stage = StageReport::new(name, started.elapsed(), ok, detail);
        self.ui.stage(&stage);
        self.report.stages.push(stage);
    }

    fn skipped(&mut self, name: &'static str, detail: &str) {
        let stage = StageReport::skipped(name, detail);
        self.ui.stage(&stage);
        self.report.stages.push(stage);
    }
}

/// Applies `objects`, waits for their rollout and prunes what `owned_before` has that
/// `objects` no longer does.
async fn roll_out(
    client: &Client,
    env: &Environment,
    objects: &[RecordedObject],
    owned_before: &[ObjectRef],
    options: &DeployOptions,
    stages: &mut Stages<'_>,
    prefix: &str,
) -> Result<(), (String, String)> {
    let resolver = Resolver::new(client.clone());
    let names = |s: &'static str| -> &'static str {
        match (prefix.is_empty(), s) {
            (true, _) => s,
            (false, "apply") => "rollback apply",
            (false, "track") => "rollback track",
            (false, _) => "rollback prune",
        }
    };
    let started = Instant::now();
    stages.ensure_held()?;
    match cluster::apply_all(&resolver, &pairs(objects), options.apply).await {
        Ok(applied) => stages.done(
            names("apply"),
            started,
            true,
            format!("{} objects", applied.len()),
        ),
        Err(e) => {
            let code = match e {
                ClusterError::Conflict { .. } => "conflict",
                _ => "apply_failed",
            };
            stages.done(names("apply"), started, false, e.to_string());
            return Err((code.to_owned(), e.to_string()));
        }
    }
    let started = Instant::now();
    let workloads: Vec<ObjectRef> = inventory(objects).into_iter().filter(is_tracked).collect();
    let timeout = options.timeout.unwrap_or(Duration::from_secs(
        u64::from(env.rollout.progress_deadline_seconds) + 30,
    ));
    let ui = stages.ui;
    let tracked: Result<(), RolloutFailure> =
        cluster::track(client, &env.cluster.namespace, &workloads, timeout, &|e| {
            ui.progress(e)
        })
        .await;
    match tracked {
        Ok(()) => stages.done(
            names("track"),
            started,
            true,
            format!("{} workloads ready", workloads.len()),
        ),
        Err(failure) => {
            stages.done(names("track"), started, false, failure.to_string());
            return Err((failure.reason.code().to_owned(), failure.to_string()));
        }
    }
    let started = Instant::now();
    let current = inventory(objects);
    let stale: Vec<ObjectRef> = owned_before
        .iter()
        .filter(|o| !current.contains(o))
        .cloned()
        .collect();
    stages.ensure_held()?;
    match cluster::delete_owned(&resolver, &stale).await {
        Ok(deleted) => stages.done(
            names("prune"),
            started,
            true,
            if deleted.is_empty() {
                "nothing to prune".to_owned()
            } else {
                deleted
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        Err(e) => {
            stages.done(names("prune"), started, false, e.to_string());
            return Err(("prune_failed".to_owned(), e.to_string()));
        }
    }
    Ok(())
}

/// Applies the Namespace objects (so the lock and revisions have somewhere to live), then
/// takes the environment's deploy lock.
async fn lock(
    client: &Client,
    env: &Environment,
    objects: &[RecordedObject],
    options: &DeployOptions,
) -> Result<cluster::DeployLock, DeployError> {
    let resolver = Resolver::new(client.clone());
    let namespaces: Vec<(String, serde_json::Value)> = pairs(objects)
        .into_iter()
        .filter(|(_, o)| o.get("kind").and_then(|k| k.as_str()) == Some("Namespace"))
        .collect();
    cluster::apply_all(&resolver, &namespaces, options.apply).await?;
    Ok(cluster::acquire_lock(
        client,
        &env.cluster.namespace,
        &env.name,
        &lock_options(options),
    )
    .await?)
}

/// The error code of a deploy that stopped because its lock was lost.
const LOCK_LOST: &str = "lock_lost";

fn lock_lost(lost: cluster::LockLost) -> (String, String) {
    (LOCK_LOST.to_owned(), lost.to_string())
}

/// Ends a deploy whose lock was lost at a safe point: nothing more is applied (not even a
/// rollback: another deploy may own the environment now) and its revision is marked
/// interrupted.
async fn stop_lock_lost(
    client: &Client,
    namespace: &str,
    current: &mut Revision,
    stages: &mut Stages<'_>,
    message: &str,
) -> DeployError {
    let message = format!("{message}; stopped before writing anything more to the cluster");
    current.status = RevisionStatus::Interrupted;
    current.finished_at = Some(now());
    current.message = Some(message.clone());
    let recorded = match revision::update(client, namespace, current).await {
        Ok(()) => format!("revision {} is marked interrupted", current.number),
        Err(e) => format!(
            "could not mark revision {} interrupted ({e})",
            current.number
        ),
    };
    stages.report.outcome = Outcome::Failed;
    stages.report.error = Some(ErrorReport {
        code: LOCK_LOST.to_owned(),
        message,
    });
    stages.report.rolled_back_to = None;
    stages.report.rollback_note = Some(format!("not rolled back; {recorded}"));
    DeployError::Failed {
        report: Box::new(stages.report.clone()),
    }
}

/// What a killed deploy's pending revision is marked with by the next one.
const KILLED: &str = "the deploy stopped before finishing (its lock expired)";

/// Marks pending revisions as interrupted: under the lock, a pending revision belongs to a
/// deploy that is gone (or, after a signal, to this one).
async fn close_interrupted(
    client: &Client,
    namespace: &str,
    revisions: &mut [Revision],
    message: &str,
) -> Result<(), ClusterError> {
    for r in revisions
        .iter_mut()
        .filter(|r| r.status == RevisionStatus::Pending)
    {
        r.status = RevisionStatus::Interrupted;
        r.finished_at = Some(now());
        r.message = Some(message.to_owned());
        revision::update(client, namespace, r).await?;
    }
    Ok(())
}

/// Resolves with the signal's name on SIGINT or SIGTERM when `enabled`; never otherwise.
/// The handlers are installed on first poll and replace the default (killing) action.
async fn stop_signal(enabled: bool) -> &'static str {
    if !enabled {
        return std::future::pending().await;
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "SIGINT",
            Err(_) => std::future::pending().await,
        }
    }
}

/// Leaves the cluster consistent after a signal: the pending revision (only when this
/// deploy held the lock) marked interrupted, then the lock released. Bounded, so a
/// cluster that does not answer cannot hold the process; what is left undone the next
/// deploy finishes (it closes pending revisions, and the lease expires by itself).
async fn stop(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    held: Option<cluster::DeployLock>,
    mut stages: Stages<'_>,
    signal: &'static str,
) -> DeployError {
    let namespace = &env.cluster.namespace;
    let after = stages
        .report
        .stages
        .last()
        .map_or("before the first stage finished".to_owned(), |s| {
            format!("after the {} stage", s.name)
        });
    let mut message = format!("{}: interrupted by {signal} {after}", env.name);
    let had_lock = held.is_some();
    let cleanup = async {
        if had_lock {
            let mut revisions = revision::list(client, namespace, &env.name).await?;
            close_interrupted(
                client,
                namespace,
                &mut revisions,
                &format!("interrupted by {signal} {after}"),
            )
            .await?;
        }
        // Also when the lock was being taken as the signal came: the lease is ours by name.
        drop(held);
        cluster::release_lock(client, namespace, &env.name, &lock_options(options).holder).await?;
        Ok::<_, ClusterError>(())
    };
    match tokio::time::timeout(Duration::from_secs(10), cleanup).await {
        Ok(Ok(())) => {
            if let (true, Some(n)) = (had_lock, stages.report.revision) {
                message.push_str(&format!("; revision {n} is marked interrupted"));
            }
            message.push_str("; the lock is released: run the deploy again to finish it");
        }
        Ok(Err(e)) => message.push_str(&format!(
            "; could not clean up ({e}): the next deploy marks the revision interrupted once the lock expires"
        )),
        Err(_) => message.push_str(
            "; the cluster did not answer within 10 s: the next deploy marks the revision interrupted once the lock expires",
        ),
    }
    stages.ui.note(&message);
    stages.report.outcome = Outcome::Failed;
    stages.report.error = Some(ErrorReport {
        code: "interrupted".to_owned(),
        message: message.clone(),
    });
    DeployError::Interrupted {
        signal,
        message,
        report: Box::new(stages.report),
    }
}

/// Runs the whole pipeline for `env`.
pub async fn deploy(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    ui: &DeployUi,
) -> Result<DeployReport, DeployError> {
    let mut stages = Stages {
        report: DeployReport::new(env),
        ui,
        lease: None,
    };
    let mut held = None;
    let stopped = tokio::select! {
        result = run_deploy(client, env, options, &mut stages, &mut held) => Ok(result),
        signal = stop_signal(options.stop_on_signals) => Err(signal),
    };
    match stopped {
        Ok(result) => {
            if let Some(held) = held {
                held.release().await;
            }
            result.map(|()| stages.report)
        }
        Err(signal) => Err(stop(client, env, options, held, stages, signal).await),
    }
}

async fn run_deploy(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    stages: &mut Stages<'_>,
    held: &mut Option<cluster::DeployLock>,
) -> Result<(), DeployError> {
    let ui = stages.ui;
    let namespace = env.cluster.namespace.clone();

    // Build and push, then deploy the pushed digest.
    let image = if options.skip_build {
        let image = options.image.clone().unwrap_or_else(|| env.image.tagged());
        stages.skipped("build", &format!("--skip-build: deploying {image}"));
        image
    } else {
        let Some(build_options) = &options.build else {
            return Err(DeployError::BuildUnavailable);
        };
        let started = Instant::now();
        let dockerfile = render::render(
            env,
            &RenderOptions {
                image: None,
                templates: options.templates.clone(),
            },
        )?
        .files
        .get("Dockerfile")
        .cloned()
        .unwrap_or_default();
        let progress = ui.build_progress();
        let built = async {
            let docker = crate::build::connect().await?;
            let image =
                crate::build::build(&docker, env, &dockerfile, build_options, &progress).await?;
            crate::build::push(&docker, env, &image, build_options, &progress).await
        }
        .await;
        progress.finish();
        let built = built.map_err(|e| DeployError::Build(Box::new(e)))?;
        let reference = built.pinned().unwrap_or_else(|| built.reference.clone());
        let reused = if built.skipped {
            " (same inputs: reused)"
        } else {
            ""
        };
        stages.done(
            "build",
            started,
            true,
            format!("pushed {reference}{reused}"),
        );
        reference
    };
    stages.report.image = image.clone();

    let started = Instant::now();
    let rendered = render::render(
        env,
        &RenderOptions {
            image: Some(image.clone()),
            templates: options.templates.clone(),
        },
    )?;
    let objects = recorded(&rendered);
    stages.report.digests = revision::images(&objects);
    stages.done(
        "render",
        started,
        true,
        format!("{} objects", objects.len()),
    );

    let started = Instant::now();
    let revisions = revision::list(client, &namespace, &env.name).await?;
    let resolver = Resolver::new(client.clone());
    let owned_before = previously_owned(&revisions);
    let plan = cluster::plan(&resolver, &pairs(&objects), &owned_before, options.apply).await?;
    stages.done("plan", started, true, plan.summary());
    stages.report.plan = Some(report::PlanCounts::of(&plan));
    if plan.is_noop() {
        stages.report.outcome = Outcome::Unchanged;
        stages.report.revision = revisions.last().map(|r| r.number);
        return Ok(());
    }
    ui.plan(&plan);
    ui.confirm(env, &plan)?;

    let guard = lock(client, env, &objects, options).await?;
    stages.lease = Some(guard.watch());
    *held = Some(guard);
    deploy_locked(client, env, options, stages, objects, image).await
}

async fn deploy_locked(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    stages: &mut Stages<'_>,
    objects: Vec<RecordedObject>,
    image: String,
) -> Result<(), DeployError> {
    let namespace = &env.cluster.namespace;
    // Read again under the lock: another deploy may have finished meanwhile.
    let mut revisions = revision::list(client, namespace, &env.name).await?;
    close_interrupted(client, namespace, &mut revisions, KILLED).await?;
    let owned_before = previously_owned(&revisions);
    let last_good = revisions
        .iter()
        .rev()
        .find(|r| r.status == RevisionStatus::Succeeded)
        .cloned();
    let (user, host) = identity();
    let mut current = Revision {
        number: revisions.last().map_or(1, |r| r.number + 1),
        environment: env.name.clone(),
        status: RevisionStatus::Pending,
        image,
        digests: revision::images(&objects),
        git_commit: git_commit(),
        user,
        host,
        started_at: now(),
        finished_at: None,
        message: None,
        rollback_of: None,
        inventory: inventory(&objects),
        objects,
    };
    revision::create(client, namespace, &current).await?;
    stages.report.revision = Some(current.number);

    let outcome = roll_out(
        client,
        env,
        &current.objects,
        &owned_before,
        options,
        stages,
        "",
    )
    .await;
    let outcome = match outcome {
        Ok(()) => smoke(env, stages).await,
        failed => failed,
    };
    if let Err((code, message)) = &outcome
        && code == LOCK_LOST
    {
        return Err(stop_lock_lost(client, namespace, &mut current, stages, message).await);
    }
    let Err((code, message)) = outcome else {
        current.status = RevisionStatus::Succeeded;
        current.finished_at = Some(now());
        revision::update(client, namespace, &current).await?;
        revisions.push(current);
        revision::trim(client, namespace, &revisions).await?;
        stages.report.outcome = Outcome::Succeeded;
        return Ok(());
    };
    stages.report.error = Some(ErrorReport {
        code,
        message: message.clone(),
    });
    current.message = Some(message);
    current.finished_at = Some(now());

    let target = match (options.rollback, last_good) {
        (true, Some(target)) => target,
        (rollback, _) => {
            current.status = RevisionStatus::Failed;
            revision::update(client, namespace, &current).await?;
            stages.report.outcome = Outcome::Failed;
            stages.report.rollback_note = Some(if rollback {
                "no earlier successful revision to roll back to".to_owned()
            } else {
                "--no-rollback: left as it is".to_owned()
            });
            return Err(DeployError::Failed {
                report: Box::new(stages.report.clone()),
            });
        }
    };
    stages.report.rolled_back_to = Some(target.number);
    stages.ui.rolling_back(target.number);
    let mut owned = owned_before;
    owned.extend(
        current
            .inventory
            .iter()
            .filter(|o| !owned.contains(o))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let rollback = roll_out(
        client,
        env,
        &target.objects,
        &owned,
        options,
        stages,
        "rollback",
    )
    .await;
    match rollback {
        Err((code, message)) if code == LOCK_LOST => {
            Err(stop_lock_lost(client, namespace, &mut current, stages, &message).await)
        }
        Ok(()) => {
            current.status = RevisionStatus::RolledBack;
            revision::update(client, namespace, &current).await?;
            stages.report.outcome = Outcome::RolledBack;
            Err(DeployError::Failed {
                report: Box::new(stages.report.clone()),
            })
        }
        Err((code, message)) => {
            current.status = RevisionStatus::Failed;
            revision::update(client, namespace, &current).await?;
            stages.report.outcome = Outcome::RollbackFailed;
            stages.report.rollback_error = Some(ErrorReport { code, message });
            Err(DeployError::RollbackFailed {
                report: Box::new(stages.report.clone()),
            })
        }
    }
}

/// Re-applies revision `to` (default: the successful revision before the current one) as a
/// new revision.
pub async fn rollback(
    client: &Client,
    env: &Environment,
    to: Option<u32>,
    options: &DeployOptions,
    ui: &DeployUi,
) -> Result<DeployReport, DeployError> {
    let namespace = &env.cluster.namespace;
    let revisions = revision::list(client, namespace, &env.name).await?;
    let succeeded: Vec<&Revision> = revisions
        .iter()
        .filter(|r| r.status == RevisionStatus::Succeeded)
        .collect();
    let target = match to {
        Some(n) => revisions.iter().find(|r| r.number == n).ok_or(ClusterError::NoSuchRevision {
            environment: env.name.clone(),
            namespace: namespace.clone(),
            revision: n,
        })?,
        None => match succeeded.as_slice() {
            [.., before, _current] => before,
            _ => {
                return Err(DeployError::NothingToRollBack {
                    environment: env.name.clone(),
                    message: format!("fewer than two successful revisions in namespace {namespace} (see `wactl history {}`)", env.name),
                });
            }
        },
    }
    .clone();
    let mut stages = Stages {
        report: DeployReport::new(env),
        ui,
        lease: None,
    };
    stages.report.image = target.image.clone();
    stages.report.digests = target.digests.clone();
    ui.confirm_rollback(env, target.number)?;
    let mut held = None;
    let run = async {
        let guard = lock(client, env, &target.objects, options).await?;
        stages.lease = Some(guard.watch());
        held = Some(guard);
        let mut revisions = revision::list(client, namespace, &env.name).await?;
        close_interrupted(client, namespace, &mut revisions, KILLED).await?;
        let owned_before = previously_owned(&revisions);
        let (user, host) = identity();
        let mut current = Revision {
            number: revisions.last().map_or(1, |r| r.number + 1),
            status: RevisionStatus::Pending,
            git_commit: target.git_commit.clone(),
            user,
            host,
            started_at: now(),
            finished_at: None,
            message: None,
            rollback_of: Some(target.number),
            ..target.clone()
        };
        revision::create(client, namespace, &current).await?;
        stages.report.revision = Some(current.number);
        stages.report.rolled_back_to = Some(target.number);
        let outcome = roll_out(
            client,
            env,
            &target.objects,
            &owned_before,
            options,
            &mut stages,
            "",
        )
        .await;
        current.finished_at = Some(now());
        match outcome {
            Err((code, message)) if code == LOCK_LOST => {
                Err(stop_lock_lost(client, namespace, &mut current, &mut stages, &message).await)
            }
            Ok(()) => {
                current.status = RevisionStatus::Succeeded;
                revision::update(client, namespace, &current).await?;
                revisions.push(current);
                revision::trim(client, namespace, &revisions).await?;
                stages.report.outcome = Outcome::Succeeded;
                Ok(())
            }
            Err((code, message)) => {
                current.status = RevisionStatus::Failed;
                current.message = Some(message.clone());
                revision::update(client, namespace, &current).await?;
                stages.report.outcome = Outcome::Failed;
                stages.report.error = Some(ErrorReport { code, message });
                Err(DeployError::Failed {
                    report: Box::new(stages.report.clone()),
                })
            }
        }
    };
    let stopped = tokio::select! {
        result = run => Ok(result),
        signal = stop_signal(options.stop_on_signals) => Err(signal),
    };
    match stopped {
        Ok(result) => {
            if let Some(held) = held {
                held.release().await;
            }
            result.map(|()| stages.report)
        }
        Err(signal) => Err(stop(client, env, options, held, stages, signal).await),
    }
}

/// What `destroy` removed and what it left.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DestroyReport {
    pub deleted: Vec<ObjectRef>,
    pub kept_namespace: Option<String>,
}

/// Deletes every object wactl owns in `env` (per the recorded revisions), the revisions,
/// and the namespace when it holds nothing else.
pub async fn destroy(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    ui: &DeployUi,
) -> Result<DestroyReport, DeployError> {
    let namespace = &env.cluster.namespace;
    let revisions = revision::list(client, namespace, &env.name).await?;
    let mut owned: Vec<ObjectRef> = Vec::new();
    for r in &revisions {
        for o in &r.inventory {
            if !owned.contains(o) {
                owned.push(o.clone());
            }
        }
    }
    ui.confirm_destroy(env, &owned)?;
    if revisions.is_empty() {
        return Ok(DestroyReport {
            deleted: vec![],
            kept_namespace: None,
        });
    }
    let held = cluster::acquire_lock(client, namespace, &env.name, &lock_options(options)).await?;
    let resolver = Resolver::new(client.clone());
    // Everything but the namespaces first (reverse apply order), revisions, then namespaces.
    let (namespaces, objects): (Vec<ObjectRef>, Vec<ObjectRef>) = owned
        .into_iter()
        .partition(|o| o.kind == "Namespace" && o.api_version == "v1");
    let mut sorted = objects;
    let order = |o: &ObjectRef| {
        revisions
            .iter()
            .rev()
            .flat_map(|r| r.objects.iter())
            .find(|r| ObjectRef::of(&r.object).as_ref() == Some(o))
            .map_or(u8::MAX, |r| cluster::apply_group(&r.file))
    };
    sorted.sort_by_key(order);
    let result = async {
        let mut deleted = cluster::delete_owned(&resolver, &sorted).await?;
        for r in &revisions {
            let name = Revision::config_map_name(&r.environment, r.number);
            let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
                kube::Api::namespaced(client.clone(), namespace);
            let _ = api.delete(&name, &Default::default()).await;
        }
        let mut kept = None;
        for ns in &namespaces {
            match foreign_objects(client, &ns.name).await? {
                None => deleted
                    .extend(cluster::delete_owned(&resolver, std::slice::from_ref(ns)).await?),
                Some(what) => {
                    ui.note(&format!(
                        "kept namespace {}: it also holds {what}, which wactl does not own",
                        ns.name
                    ));
                    kept = Some(ns.name.clone());
                }
            }
        }
        Ok::<_, DeployError>(DestroyReport {
            deleted,
            kept_namespace: kept,
        })
    }
    .await;
    held.release().await;
    result
}

/// Something in `namespace` that wactl does not own, if any (checked for the common kinds).
async fn foreign_objects(client: &Client, namespace: &str) -> Result<Option<String>, ClusterError> {
    use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
    use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
    use kube::api::ListParams;
    async fn first_foreign<K>(
        client: &Client,
        namespace: &str,
        skip: &[&str],
    ) -> Result<Option<String>, ClusterError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: kube::Api<K> = kube::Api::namespaced(client.clone(), namespace);
        let list = api
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| ClusterError::Api {
                action: "list",
                object: format!("{} in namespace {namespace}", K::kind(&())),
                message: cluster::api_message(&e),
            })?;
        Ok(list
            .items
            .iter()
            .find(|o| {
                let name = o.metadata.name.as_deref().unwrap_or_default();
                let owned = o
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(cluster::MANAGED_BY.0))
                    .map(String::as_str)
                    == Some(cluster::MANAGED_BY.1);
                !owned && !skip.contains(&name) && o.metadata.deletion_timestamp.is_none()
            })
            .map(|o| {
                format!(
                    "{} {}",
                    K::kind(&()),
                    o.metadata.name.as_deref().unwrap_or_default()
                )
            }))
    }
    if let Some(found) = first_foreign::<Deployment>(client, namespace, &[]).await? {
        return Ok(Some(found));
    }
    if let Some(found) = first_foreign::<StatefulSet>(client, namespace, &[]).await? {
        return Ok(Some(found));
    }
    if let Some(found) = first_foreign::<Service>(client, namespace, &[]).await? {
        return Ok(Some(found));
    }
    if let Some(found) =
        first_foreign::<ConfigMap>(client, namespace, &["kube-root-ca.crt"]).await?
    {
        return Ok(Some(found));
    }
    first_foreign::<Secret>(client, namespace, &[]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_exits_with_128_plus_its_number_and_keeps_the_report() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
        let env = crate::config::load(&dir, "dev").expect("dev.yaml");
        let interrupted = |signal| DeployError::Interrupted {
            signal,
            message: format!("dev: interrupted by {signal} after the apply stage"),
            report: Box::new(DeployReport::new(&env)),
        };
        assert_eq!(interrupted("SIGINT").exit_code(), 130);
        assert_eq!(interrupted("SIGTERM").exit_code(), 143);
        let error = interrupted("SIGINT");
        assert!(
            error.report().is_some(),
            "--output json still prints a report"
        );
        assert_eq!(
            error.to_string(),
            "dev: interrupted by SIGINT after the apply stage"
        );
    }

    #[tokio::test]
    async fn without_stop_on_signals_no_handler_is_installed() {
        let waited = tokio::time::timeout(Duration::from_millis(20), stop_signal(false)).await;
        assert!(waited.is_err(), "never resolves when disabled");
    }
}
