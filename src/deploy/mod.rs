//! The deploy pipeline: build → render → plan → apply → track → smoke → record, with
//! automatic rollback to the last successful revision when anything after apply fails.
//!
//! The pipeline reports through [`DeployObserver`] events and asks its questions there; it
//! never prints and never reads a terminal. [`pipeline`] runs a deploy, [`rollback`] and
//! [`destroy`] the other two verbs that write, [`signals`] a clean stop on SIGINT/SIGTERM.

pub mod canary;
mod destroy;
mod events;
pub mod fleet;
mod pipeline;
pub mod plan_file;
pub mod preview;
mod report;
mod rollback;
mod signals;

pub use destroy::{DestroyReport, destroy};
pub use events::{
    Action, Confirmation, Decision, DeployEvent, DeployObserver, EventKind, Observers, Unattended,
};
pub use pipeline::deploy;
pub use report::{
    DeployReport, ErrorReport, FailureCode, Outcome, PlanCounts, Stage, StageReport, StageStatus,
};
pub use rollback::rollback;
pub use signals::Signal;

use crate::cluster::revision::{self, RecordedObject, Revision, RevisionStatus};
use crate::cluster::{self, ApplyOptions, ClusterError, LockOptions, ObjectRef, Plan, Resolver};
use crate::config::Environment;
use crate::render::{self, RenderError, RenderOptions};
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
    /// A saved plan that is unreadable (exit 2) or no longer true (exit 1).
    #[error(transparent)]
    Plan(Box<plan_file::PlanFileError>),
    /// A confirmation is needed and nobody can give it (exit 2).
    #[error(
        "{} {environment} needs confirmation{}, but there is no terminal to ask on; rerun with --yes",
        action.gerund(),
        if *protected { " (the environment is protected)" } else { "" }
    )]
    ConfirmationRequired {
        action: Action,
        environment: String,
        protected: bool,
    },
    #[error("--image: {message}")]
    InvalidImage { message: String },
    /// The person asked said no (exit 2: a decision, not a failure).
    #[error("{} of {environment} cancelled: not confirmed", action.noun())]
    Declined { action: Action, environment: String },
    #[error("no build settings were given: pass build options, or skip the build with an image")]
    BuildUnavailable,
    #[error(transparent)]
    Build(Box<crate::build::BuildError>),
    #[error("{environment}: rollback impossible: {message}")]
    NothingToRollBack {
        environment: String,
        message: String,
    },
    /// `rollback --to N` names a revision that is not recorded (exit 2).
    #[error(
        "{environment} has no revision {revision} in namespace {namespace} (recorded: {recorded}; see `wactl history {environment}`)"
    )]
    NoSuchRevision {
        environment: String,
        namespace: String,
        revision: u32,
        /// The recorded revision numbers, for the message.
        recorded: String,
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
        signal: Signal,
        message: String,
        report: Box<DeployReport>,
    },
}

impl From<ClusterError> for DeployError {
    fn from(error: ClusterError) -> Self {
        Self::Cluster(Box::new(error))
    }
}

impl From<plan_file::PlanFileError> for DeployError {
    fn from(error: plan_file::PlanFileError) -> Self {
        Self::Plan(Box::new(error))
    }
}

impl DeployError {
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
    /// Apply exactly this reviewed plan (`deploy --plan FILE`) instead of building and
    /// rendering: the file it was read from, and the plan.
    pub plan: Option<(PathBuf, std::sync::Arc<plan_file::SavedPlan>)>,
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
            plan: None,
        }
    }
}

/// Who deploys, for revisions and the lock: `(deployer, host)`. The deployer is named as
/// users expect: `GITHUB_ACTOR` in GitHub Actions, else the git user of the checkout
/// (`Name <email>`), else `$USER@host`.
pub fn identity() -> (String, String) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let actor = std::env::var("GITHUB_ACTOR").ok();
    let git = |key: &str| {
        let out = std::process::Command::new("git")
            .args(["config", "--get", key])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    // Asked only when needed: in Actions the actor is who deployed, whatever git says.
    let deployer = match actor.filter(|a| !a.trim().is_empty()) {
        Some(actor) => actor,
        None => deployer(
            None,
            git("user.name"),
            git("user.email"),
            &login_user(),
            &host,
        ),
    };
    (deployer, host)
}

/// The deployer from what is known: the GitHub actor, else the git user (`Name <email>`,
/// or whichever of the two is set), else `user@host`.
fn deployer(
    actor: Option<String>,
    git_name: Option<String>,
    git_email: Option<String>,
    user: &str,
    host: &str,
) -> String {
    let set = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    if let Some(actor) = set(actor) {
        return actor;
    }
    match (set(git_name), set(git_email)) {
        (Some(name), Some(email)) => format!("{name} <{email}>"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => format!("{user}@{host}"),
    }
}

/// The login name: `USER`, else `LOGNAME`, else the passwd entry of this process' user
/// (containers and CI shells often set neither variable), else `uid N`.
fn login_user() -> String {
    use std::os::unix::fs::MetadataExt;
    for key in ["USER", "LOGNAME"] {
        if let Ok(user) = std::env::var(key)
            && !user.is_empty()
        {
            return user;
        }
    }
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".to_owned();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.get(2) == Some(&uid.to_string().as_str())).then(|| fields[0].to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// The reference to deploy for `deploy --image REF` (and to diff for `diff --image`): the
/// registry is asked first, so the revision records the digest it resolved
/// (`REF@sha256:…`). A reference already pinned by digest is used as given, unchecked: that
/// is also how to deploy an image that no registry serves (one preloaded on the nodes).
///
/// A tag the registry does not have is refused before anything is applied: pods would
/// never start, and the rollout would fail only after the apply. A registry that cannot be
/// asked (unreachable, no credentials here) leaves the tag unpinned, and the note says so.
pub async fn resolve_given_image(given: &str) -> Result<(String, Option<String>), DeployError> {
    if given.contains('@') {
        return Ok((given.to_owned(), None));
    }
    match crate::build::look_up(given, None).await {
        crate::build::RegistryImage::Found { digest } => Ok((format!("{given}@{digest}"), None)),
        crate::build::RegistryImage::Missing { registry } => Err(DeployError::InvalidImage {
            message: format!(
                "{registry} has no image {given}: push it first, or pin a digest (NAME@sha256:…) to deploy an image the nodes already have"
            ),
        }),
        crate::build::RegistryImage::Unchecked { reason } => Ok((
            given.to_owned(),
            Some(format!(
                "could not check that the registry has {given} ({reason}); using the tag unpinned"
            )),
        )),
    }
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
        holder: format!("{user} on {host} (pid {})", std::process::id()),
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
    plan_objects(client, &recorded(&rendered), &revisions, apply).await
}

/// Plans `objects` against the live cluster, pruning what `revisions` owned and they drop.
async fn plan_objects(
    client: &Client,
    objects: &[RecordedObject],
    revisions: &[Revision],
    apply: ApplyOptions,
) -> Result<Plan, DeployError> {
    let resolver = Resolver::new(client.clone());
    Ok(cluster::plan(
        &resolver,
        &pairs(objects),
        &previously_owned(revisions),
        apply,
    )
    .await?)
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

/// Refuses, before anything is contacted, an `action` on `env` that will need a
/// confirmation nobody can give (`can_answer`: `--yes`, or a person at a terminal).
pub fn check_confirmable(
    action: Action,
    env: &Environment,
    can_answer: bool,
) -> Result<(), DeployError> {
    if can_answer || !action.needs_confirmation(env.protected) {
        return Ok(());
    }
    Err(DeployError::ConfirmationRequired {
        action,
        environment: env.name.clone(),
        protected: env.protected,
    })
}

/// Asks `question` through `observer` when its action needs asking in `env`.
fn confirm(
    observer: &dyn DeployObserver,
    env: &Environment,
    question: &Confirmation,
) -> Result<(), DeployError> {
    let action = question.action();
    if !action.needs_confirmation(env.protected) {
        return Ok(());
    }
    match observer.confirm(question) {
        Decision::Approved => Ok(()),
        Decision::Declined => Err(DeployError::Declined {
            action,
            environment: env.name.clone(),
        }),
        Decision::Unanswered => Err(DeployError::ConfirmationRequired {
            action,
            environment: env.name.clone(),
            protected: env.protected,
        }),
    }
}

/// Times stages into the report and tells the observer about each.
struct Stages<'a> {
    report: DeployReport,
    observer: &'a dyn DeployObserver,
    /// The deploy lock, once taken: checked before every write to the cluster.
    lease: Option<cluster::LeaseWatch>,
}

impl<'a> Stages<'a> {
    fn new(env: &Environment, observer: &'a dyn DeployObserver) -> Self {
        Self {
            report: DeployReport::new(env),
            observer,
            lease: None,
        }
    }

    /// `Ok` while this deploy holds its lock; the `lock_lost` failure otherwise.
    fn ensure_held(&self) -> Result<(), StageFailure> {
        let lost = match &self.lease {
            Some(lease) => lease.ensure_held().map_err(|lost| lost.to_string()),
            None => Err("the deploy lock was not taken".to_owned()),
        };
        lost.map_err(|message| StageFailure {
            code: FailureCode::LockLost,
            message,
        })
    }

    fn emit(&self, kind: EventKind) {
        self.observer.event(&DeployEvent {
            environment: self.report.environment.clone(),
            cluster: None,
            kind,
        });
    }

    fn start(&self, stage: Stage) -> Instant {
        self.emit(EventKind::StageStarted(stage));
        Instant::now()
    }

    fn done(&mut self, stage: Stage, started: Instant, ok: bool, detail: String) {
        let report = StageReport::new(stage, started.elapsed(), ok, detail);
        self.emit(EventKind::StageFinished(report.clone()));
        self.report.stages.push(report);
    }

    fn skipped(&mut self, stage: Stage, detail: &str) {
        let report = StageReport::skipped(stage, detail);
        self.emit(EventKind::StageFinished(report.clone()));
        self.report.stages.push(report);
    }

    /// Records a failure of the deploy itself (not of its rollback).
    fn failed(&mut self, failure: StageFailure) {
        self.report.error = Some(ErrorReport {
            code: failure.code,
            message: failure.message,
        });
    }
}

/// Why a stage after the lock failed: its code and message.
#[derive(Debug)]
struct StageFailure {
    code: FailureCode,
    message: String,
}

/// Ends a deploy or rollback whose lock was lost at a safe point: nothing more is applied
/// (not even a rollback: another deploy may own the environment now) and its revision is
/// marked interrupted.
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
        code: FailureCode::LockLost,
        message,
    });
    stages.report.rolled_back_to = None;
    stages.report.rollback_note = Some(format!("not rolled back; {recorded}"));
    DeployError::Failed {
        report: Box::new(stages.report.clone()),
    }
}

/// A revision started under the lock: what was recorded before it, and the new one.
struct Started {
    revisions: Vec<Revision>,
    owned_before: Vec<ObjectRef>,
    current: Revision,
}

/// Under the lock: closes what killed deploys left pending, then records `draft` as the
/// next revision, pending (the same for a deploy and a rollback).
async fn start_revision(
    client: &Client,
    env: &Environment,
    draft: Revision,
    stages: &mut Stages<'_>,
) -> Result<Started, DeployError> {
    let namespace = &env.cluster.namespace;
    // Read again under the lock: another deploy may have finished meanwhile.
    let mut revisions = revision::list(client, namespace, &env.name).await?;
    close_interrupted(client, namespace, &mut revisions, KILLED).await?;
    let owned_before = previously_owned(&revisions);
    let (user, host) = identity();
    let current = Revision {
        number: revisions.last().map_or(1, |r| r.number + 1),
        status: RevisionStatus::Pending,
        user,
        host,
        started_at: now(),
        finished_at: None,
        message: None,
        ..draft
    };
    revision::create(client, namespace, &current).await?;
    stages.report.revision = Some(current.number);
    Ok(Started {
        revisions,
        owned_before,
        current,
    })
}

/// Marks `started`'s revision succeeded and trims the history.
async fn record_success(
    client: &Client,
    env: &Environment,
    started: Started,
) -> Result<(), DeployError> {
    let namespace = &env.cluster.namespace;
    let Started {
        mut revisions,
        mut current,
        ..
    } = started;
    current.status = RevisionStatus::Succeeded;
    current.finished_at = Some(now());
    revision::update(client, namespace, &current).await?;
    revisions.push(current);
    revision::trim(client, namespace, &revisions).await?;
    Ok(())
}

/// Applies `objects`, waits for their rollout and prunes what `owned_before` has that
/// `objects` no longer does. `rollback` names the stages of an automatic rollback.
async fn roll_out(
    client: &Client,
    env: &Environment,
    objects: &[RecordedObject],
    owned_before: &[ObjectRef],
    options: &DeployOptions,
    stages: &mut Stages<'_>,
    rollback: bool,
) -> Result<(), StageFailure> {
    let resolver = Resolver::new(client.clone());
    let [apply, track, prune] = if rollback {
        [
            Stage::RollbackApply,
            Stage::RollbackTrack,
            Stage::RollbackPrune,
        ]
    } else {
        [Stage::Apply, Stage::Track, Stage::Prune]
    };
    stages.ensure_held()?;
    let started = stages.start(apply);
    match cluster::apply_all(&resolver, &pairs(objects), options.apply).await {
        Ok(applied) => stages.done(apply, started, true, format!("{} objects", applied.len())),
        Err(e) => {
            let code = match e {
                ClusterError::Conflict { .. } => FailureCode::Conflict,
                _ => FailureCode::ApplyFailed,
            };
            stages.done(apply, started, false, e.to_string());
            return Err(StageFailure {
                code,
                message: e.to_string(),
            });
        }
    }
    let started = stages.start(track);
    let workloads: Vec<ObjectRef> = inventory(objects)
        .into_iter()
        .filter(cluster::track::is_tracked)
        .collect();
    let timeout = options.timeout.unwrap_or(Duration::from_secs(
        u64::from(env.rollout.progress_deadline_seconds) + 30,
    ));
    let tracked = {
        let stages = &*stages;
        cluster::track(client, &env.cluster.namespace, &workloads, timeout, &|e| {
            stages.emit(EventKind::Rollout(e.clone()));
        })
        .await
    };
    match tracked {
        Ok(()) => stages.done(
            track,
            started,
            true,
            format!("{} workloads ready", workloads.len()),
        ),
        Err(failure) => {
            stages.done(track, started, false, failure.to_string());
            return Err(StageFailure {
                code: FailureCode::Rollout(failure.reason),
                message: failure.to_string(),
            });
        }
    }
    stages.ensure_held()?;
    let started = stages.start(prune);
    let current = inventory(objects);
    let stale: Vec<ObjectRef> = owned_before
        .iter()
        .filter(|o| !current.contains(o))
        .cloned()
        .collect();
    match cluster::delete_owned(&resolver, &stale).await {
        Ok(deleted) => stages.done(
            prune,
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
            stages.done(prune, started, false, e.to_string());
            return Err(StageFailure {
                code: FailureCode::PruneFailed,
                message: e.to_string(),
            });
        }
    }
    Ok(())
}

/// Renders the Dockerfile of `env` (with the template overrides in `templates`), builds the
/// image from `build` and pushes it, each step reported to `progress`: what a deploy runs
/// first, to one cluster or (once for all) to several.
pub async fn build_and_push(
    env: &Environment,
    templates: &Option<PathBuf>,
    build: &crate::build::BuildOptions,
    progress: &dyn crate::build::BuildProgress,
) -> Result<crate::build::BuiltImage, DeployError> {
    // Every artifact, not only the Dockerfile (as `wactl build` renders): a mistake in any
    // template is found before a long build and push.
    let dockerfile = render::render(
        env,
        &RenderOptions {
            image: None,
            templates: templates.clone(),
        },
    )?
    .files
    .get("Dockerfile")
    .cloned()
    .unwrap_or_default();
    let built = async {
        let docker = crate::build::connect().await?;
        let image = crate::build::build(&docker, env, &dockerfile, build, progress).await?;
        crate::build::push(&docker, env, &image, build, progress).await
    }
    .await;
    built.map_err(|e| DeployError::Build(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deployer_is_named_as_users_expect() {
        let s = |v: &str| Some(v.to_owned());
        let cases = [
            // In GitHub Actions the actor, whatever git says.
            (s("octocat"), s("Jane"), s("jane@example.com"), "octocat"),
            (
                s(""),
                s("Jane Doe"),
                s("jane@example.com"),
                "Jane Doe <jane@example.com>",
            ),
            (None, s("Jane Doe"), None, "Jane Doe"),
            (None, None, s("jane@example.com"), "jane@example.com"),
            (None, s(" "), None, "alice@vm"),
            (None, None, None, "alice@vm"),
        ];
        for (actor, name, email, expected) in cases.clone() {
            assert_eq!(deployer(actor, name, email, "alice", "vm"), expected);
        }
        assert_eq!(cases.len(), 6);
    }

    #[test]
    fn a_login_name_is_found_without_user_variables() {
        // Whatever the environment, never empty and never "unknown" on Linux.
        let user = login_user();
        assert!(!user.is_empty());
        assert_ne!(user, "unknown");
    }
}
