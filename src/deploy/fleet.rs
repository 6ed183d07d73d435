//! Deploys to an environment that lives in several clusters: one image build, then wave
//! after wave, the clusters of one wave in parallel, each through the single-cluster
//! pipeline with its own client, lock, plan, revision and rollback; one report.
//!
//! A failed cluster rolls itself back (the pipeline does that) and no later wave starts;
//! clusters that already succeeded keep their new revision unless the definition says
//! `fleet.onFailure: rollback-all`. A cluster that cannot be reached, or whose API server
//! dies, fails with its own reason while the others of its wave go on.

use super::{
    DeployError, DeployEvent, DeployObserver, DeployOptions, DeployReport, EventKind, Outcome,
    Signal, Stage, StageReport,
};
use crate::cluster::{self, Access};
use crate::config::Environment;
use crate::config::model::{OnFailure, Target};
use futures_util::future::join_all;
use kube::Client;
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// `--cluster NAME` names no cluster of the environment (exit 2).
    #[error("{environment} has no cluster `{name}` (clusters: {known}){}", hint.as_ref().map(|h| format!("; did you mean `{h}`?")).unwrap_or_default())]
    UnknownCluster {
        environment: String,
        name: String,
        known: String,
        hint: Option<String>,
    },
    /// `--cluster` on an environment with a single `cluster:` (exit 2).
    #[error("{environment} names no `clusters:`, so --cluster {name} has nothing to choose from")]
    NotSeveralClusters { environment: String, name: String },
    /// `--context` would send every cluster to one context (exit 2).
    #[error(
        "--context cannot choose a context for the {count} clusters of {environment}: pick one with --cluster NAME, or set each cluster's `context` in the definition"
    )]
    ContextForSeveral { environment: String, count: usize },
    /// `deploy --plan FILE` with several clusters selected: the file holds one cluster's
    /// plan (exit 2).
    #[error(
        "{environment} names several clusters and a saved plan holds one cluster's plan, but {} are selected ({}): pick the one it was saved for with --cluster NAME",
        selected.len(),
        selected.join(", ")
    )]
    PlanForSeveral {
        environment: String,
        selected: Vec<String>,
    },
    /// `diff --save-plan FILE` with several clusters selected: a plan file holds one
    /// cluster's plan (exit 2).
    #[error(
        "{environment} names several clusters and --save-plan saves one cluster's plan, but {} are selected ({}): pick one with --cluster NAME",
        selected.len(),
        selected.join(", ")
    )]
    SavePlanForSeveral {
        environment: String,
        selected: Vec<String>,
    },
    /// The image build before the first wave failed: no cluster was touched.
    #[error(transparent)]
    Build(Box<DeployError>),
    /// A verb run cluster by cluster failed in some; each error is already reported (the
    /// exit code is the highest of theirs).
    #[error("{verb} failed in {} of {total} clusters: {}", failed.len(), failed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "))]
    Clusters {
        verb: &'static str,
        total: usize,
        /// Each failed cluster and its exit code.
        failed: Vec<(String, u8)>,
    },
    /// At least one cluster failed; the report says what happened in each (exit 1, or 3
    /// when a rollback failed too, or 130/143 when a signal stopped it).
    #[error("{}", report.error_text())]
    Failed { report: Box<FleetReport> },
}

impl FleetError {
    /// The report of a deploy that reached the clusters, for `--output json`.
    pub fn report(&self) -> Option<&FleetReport> {
        match self {
            Self::Failed { report } => Some(report),
            _ => None,
        }
    }

    /// Whether what went wrong has been printed already (`--output json` adds nothing).
    pub fn is_reported(&self) -> bool {
        matches!(self, Self::Failed { .. } | Self::Clusters { .. })
    }
}

/// What happened in one cluster; spelled in snake_case everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterOutcome {
    /// Nothing to change there.
    Unchanged,
    Succeeded,
    /// Failed, and its last successful revision is live again.
    RolledBack,
    /// Failed and not rolled back (`--no-rollback`, nothing to roll back to, or the
    /// failure came before anything was written: unreachable, locked).
    Failed,
    /// Failed, and the rollback failed too.
    RollbackFailed,
    /// A signal stopped it (its revision is marked interrupted).
    Interrupted,
    /// Succeeded, then rolled back because another cluster failed
    /// (`fleet.onFailure: rollback-all`).
    Undone,
    /// Not started: an earlier wave failed.
    Skipped,
}

impl ClusterOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unchanged => "unchanged",
            Self::Succeeded => "succeeded",
            Self::RolledBack => "rolled_back",
            Self::Failed => "failed",
            Self::RollbackFailed => "rollback_failed",
            Self::Interrupted => "interrupted",
            Self::Undone => "undone",
            Self::Skipped => "skipped",
        }
    }

    /// Whether the cluster ended where this deploy meant it to.
    pub fn is_success(self) -> bool {
        matches!(self, Self::Unchanged | Self::Succeeded)
    }
}

impl std::fmt::Display for ClusterOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One cluster's row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    pub name: String,
    pub wave: u32,
    pub namespace: String,
    pub outcome: ClusterOutcome,
    /// The revision this deploy recorded there (the live one when nothing changed).
    pub revision: Option<u32>,
    /// The revision live again after a rollback (its own, or `rollback-all`'s).
    pub rolled_back_to: Option<u32>,
    /// Why it failed, was skipped or undone.
    pub error: Option<String>,
    pub duration_ms: u64,
    /// The cluster's full deploy report (stages, plan, digests), once it got that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployReport>,
}

/// The report of a deploy to several clusters (what `--output json` prints).
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    pub environment: String,
    /// `succeeded` or `unchanged` when every cluster is; otherwise the worst cluster outcome
    /// as a deploy outcome (`rolled_back`, `failed`, `rollback_failed`).
    pub outcome: Outcome,
    pub image: String,
    pub on_failure: OnFailure,
    pub build: Option<StageReport>,
    pub clusters: Vec<ClusterReport>,
    /// The signal that stopped the deploy, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<&'static str>,
}

impl FleetReport {
    fn outcome_of(clusters: &[ClusterReport]) -> Outcome {
        let any = |o: ClusterOutcome| clusters.iter().any(|c| c.outcome == o);
        if any(ClusterOutcome::RollbackFailed) {
            Outcome::RollbackFailed
        } else if any(ClusterOutcome::Failed) || any(ClusterOutcome::Interrupted) {
            Outcome::Failed
        } else if any(ClusterOutcome::RolledBack) {
            Outcome::RolledBack
        } else if clusters
            .iter()
            .all(|c| c.outcome == ClusterOutcome::Unchanged)
        {
            Outcome::Unchanged
        } else {
            Outcome::Succeeded
        }
    }

    /// One line per cluster that did not succeed, after a headline.
    pub fn error_text(&self) -> String {
        let failed: Vec<&str> = self
            .clusters
            .iter()
            .filter(|c| {
                matches!(
                    c.outcome,
                    ClusterOutcome::Failed
                        | ClusterOutcome::RolledBack
                        | ClusterOutcome::RollbackFailed
                        | ClusterOutcome::Interrupted
                )
            })
            .map(|c| c.name.as_str())
            .collect();
        let mut text = format!(
            "deploy of {} failed in {}",
            self.environment,
            failed.join(", ")
        );
        for c in &self.clusters {
            let detail = match (c.outcome, &c.error) {
                (ClusterOutcome::Succeeded | ClusterOutcome::Unchanged, _) => format!(
                    "keeps revision {}",
                    c.revision.map_or("-".to_owned(), |r| r.to_string())
                ),
                (_, Some(error)) => error.clone(),
                (_, None) => String::new(),
            };
            text.push_str(&format!("\n  {} ({}): {}", c.name, c.outcome, detail));
        }
        text
    }

    /// The rows without the per-cluster deploy reports (step outputs, messages).
    pub fn clusters_brief(&self) -> Vec<ClusterReport> {
        self.clusters
            .iter()
            .map(|c| ClusterReport {
                deploy: None,
                ..c.clone()
            })
            .collect()
    }

    /// The exit-code relevant ending: a signal, a failed rollback, or a plain failure.
    pub fn signal(&self) -> Option<Signal> {
        match self.interrupted_by {
            Some("SIGINT") => Some(Signal::Interrupt),
            Some("SIGTERM") => Some(Signal::Terminate),
            _ => None,
        }
    }
}

/// Tags each event of one cluster's pipeline with the cluster's name, and names the
/// cluster in the questions it asks.
pub struct ClusterObserver<'a> {
    pub cluster: &'a str,
    pub inner: &'a dyn DeployObserver,
}

impl DeployObserver for ClusterObserver<'_> {
    fn event(&self, event: &DeployEvent) {
        let mut tagged = event.clone();
        tagged.cluster = Some(self.cluster.to_owned());
        self.inner.event(&tagged);
    }

    fn confirm(&self, question: &super::Confirmation) -> super::Decision {
        use super::Confirmation;
        let named = |environment: &str| format!("{environment} (cluster {})", self.cluster);
        let question = match question.clone() {
            Confirmation::Deploy {
                environment,
                plan,
                build,
            } => Confirmation::Deploy {
                environment: named(&environment),
                plan,
                build,
            },
            Confirmation::Rollback { environment, to } => Confirmation::Rollback {
                environment: named(&environment),
                to,
            },
            Confirmation::Destroy {
                environment,
                namespace,
                objects,
            } => Confirmation::Destroy {
                environment: named(&environment),
                namespace,
                objects,
            },
        };
        self.inner.confirm(&question)
    }
}

/// The clusters `names` selects (all when empty), in wave order; an unknown name, or
/// `--cluster` on a single-cluster environment, is a usage error.
pub fn select(env: &Environment, names: &[String]) -> Result<Vec<Target>, FleetError> {
    let targets = env.targets();
    if names.is_empty() {
        return Ok(targets);
    }
    if !env.is_fleet() {
        return Err(FleetError::NotSeveralClusters {
            environment: env.name.clone(),
            name: names.join(", "),
        });
    }
    let known = env.cluster_names();
    if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
        return Err(FleetError::UnknownCluster {
            environment: env.name.clone(),
            name: unknown.clone(),
            known: known.join(", "),
            hint: crate::config::closest(unknown, known.iter().copied()).map(str::to_owned),
        });
    }
    Ok(targets
        .into_iter()
        .filter(|t| t.name.as_ref().is_some_and(|n| names.contains(n)))
        .collect())
}

/// The access to use for `target`: the command line's, else the cluster's own kubeconfig.
/// `--context` is refused when it would send several clusters to one context.
pub fn access_for(
    env: &Environment,
    targets: &[Target],
    access: &Access,
) -> Result<Vec<Access>, FleetError> {
    if access.context.is_some() && env.is_fleet() && targets.len() > 1 {
        return Err(FleetError::ContextForSeveral {
            environment: env.name.clone(),
            count: targets.len(),
        });
    }
    Ok(targets
        .iter()
        .map(|t| Access {
            kubeconfig: access.kubeconfig.clone().or_else(|| t.kubeconfig.clone()),
            context: access.context.clone(),
        })
        .collect())
}

/// The clusters of `targets` grouped by wave, lowest first (targets come in wave order).
pub fn waves(targets: &[Target]) -> Vec<(u32, Vec<&Target>)> {
    let mut waves: Vec<(u32, Vec<&Target>)> = Vec::new();
    for target in targets {
        match waves.last_mut() {
            Some((wave, members)) if *wave == target.wave => members.push(target),
            _ => waves.push((target.wave, vec![target])),
        }
    }
    waves
}

/// Deploys `env` to `targets` (from [`select`]): the image is built once (unless
/// `options.skip_build`), then each wave's clusters are deployed in parallel.
pub async fn deploy(
    env: &Environment,
    targets: &[Target],
    access: &Access,
    options: &DeployOptions,
    observer: &dyn DeployObserver,
) -> Result<FleetReport, FleetError> {
    let accesses = access_for(env, targets, access)?;
    let (image, build) = if options.skip_build {
        let image = options.image.clone().unwrap_or_else(|| env.image.tagged());
        (image, None)
    } else {
        let (image, stage) = build_once(env, options, observer)
            .await
            .map_err(|e| FleetError::Build(Box::new(e)))?;
        (image, Some(stage))
    };
    let per_cluster = DeployOptions {
        image: Some(image.clone()),
        skip_build: true,
        build: None,
        ..options.clone()
    };

    // A signal between two waves (no pipeline listening) still stops the deploy there.
    let signalled: std::sync::Arc<std::sync::Mutex<Option<Signal>>> = Default::default();
    let listener = options.stop_on_signals.then(|| {
        let signalled = signalled.clone();
        tokio::spawn(async move {
            let signal = super::signals::stop_signal(true).await;
            if let Ok(mut slot) = signalled.lock() {
                *slot = Some(signal);
            }
        })
    });
    let mut runs: Vec<ClusterRun> = Vec::new();
    let mut stopped = false;
    for (wave, members) in waves(targets) {
        let signal = signalled.lock().ok().and_then(|s| *s);
        if stopped || signal.is_some() {
            runs.extend(members.iter().map(|t| {
                let mut run = ClusterRun::skipped(t, wave);
                if let Some(signal) = signal {
                    run.report.error = Some(format!("not started: stopped by {}", signal.name()));
                    run.interrupted = Some(signal);
                }
                run
            }));
            continue;
        }
        observer.event(&DeployEvent {
            environment: env.name.clone(),
            cluster: None,
            kind: EventKind::WaveStarted {
                wave,
                clusters: members.iter().filter_map(|t| t.name.clone()).collect(),
            },
        });
        let deploys = members.iter().map(|target| {
            let index = targets
                .iter()
                .position(|t| t.name == target.name)
                .unwrap_or_default();
            deploy_cluster(target, &accesses[index], &per_cluster, observer)
        });
        let ended = join_all(deploys).await;
        stopped = ended.iter().any(|r| !r.report.outcome.is_success());
        runs.extend(ended);
    }

    let signal = runs.iter().any(|r| r.interrupted.is_some());
    if stopped && !signal && env.fleet.on_failure == OnFailure::RollbackAll {
        let undo = runs
            .iter_mut()
            .filter(|r| r.report.outcome == ClusterOutcome::Succeeded)
            .filter(|r| r.interrupted.is_none());
        let undos = undo.map(|run| undo_cluster(run, &per_cluster, observer));
        join_all(undos).await;
    }

    if let Some(listener) = listener {
        listener.abort();
    }
    let interrupted_by = runs.iter().find_map(|r| r.interrupted).map(Signal::name);
    let clusters: Vec<ClusterReport> = runs.into_iter().map(|r| r.report).collect();
    let report = FleetReport {
        environment: env.name.clone(),
        outcome: match interrupted_by {
            Some(_) => Outcome::Failed,
            None => FleetReport::outcome_of(&clusters),
        },
        image,
        on_failure: env.fleet.on_failure,
        build,
        clusters,
        interrupted_by,
    };
    observer.event(&DeployEvent {
        environment: env.name.clone(),
        cluster: None,
        kind: EventKind::FleetFinished(Box::new(report.clone())),
    });
    if report.clusters.iter().all(|c| c.outcome.is_success()) {
        Ok(report)
    } else {
        Err(FleetError::Failed {
            report: Box::new(report),
        })
    }
}

/// Builds and pushes the image every cluster deploys; the reference pinned by digest.
async fn build_once(
    env: &Environment,
    options: &DeployOptions,
    observer: &dyn DeployObserver,
) -> Result<(String, StageReport), DeployError> {
    let Some(build_options) = &options.build else {
        return Err(DeployError::BuildUnavailable);
    };
    let emit = |kind| {
        observer.event(&DeployEvent {
            environment: env.name.clone(),
            cluster: None,
            kind,
        })
    };
    emit(EventKind::StageStarted(Stage::Build));
    let started = Instant::now();
    let progress = BuildEvents { env, observer };
    let built = super::build_and_push(env, &options.templates, build_options, &progress).await;
    match built {
        Ok(built) => {
            let reference = built.pinned().unwrap_or_else(|| built.reference.clone());
            let stage = StageReport::new(
                Stage::Build,
                started.elapsed(),
                true,
                format!("pushed {reference} (for every cluster)"),
            );
            emit(EventKind::StageFinished(stage.clone()));
            Ok((reference, stage))
        }
        Err(error) => {
            let stage = StageReport::new(Stage::Build, started.elapsed(), false, error.to_string());
            emit(EventKind::StageFinished(stage));
            Err(error)
        }
    }
}

/// The shared build's events, forwarded untagged (the build serves every cluster).
struct BuildEvents<'a> {
    env: &'a Environment,
    observer: &'a dyn DeployObserver,
}

impl crate::build::BuildProgress for BuildEvents<'_> {
    fn event(&self, event: &crate::build::BuildEvent) {
        self.observer.event(&DeployEvent {
            environment: self.env.name.clone(),
            cluster: None,
            kind: EventKind::Build(event.clone()),
        });
    }
}

/// One cluster's deploy as it ended, with what undoing it needs.
struct ClusterRun {
    report: ClusterReport,
    target: Option<Target>,
    client: Option<Client>,
    interrupted: Option<Signal>,
}

impl ClusterRun {
    fn skipped(target: &Target, wave: u32) -> Self {
        Self {
            report: ClusterReport {
                name: target.name.clone().unwrap_or_default(),
                wave,
                namespace: target.environment.cluster.namespace.clone(),
                outcome: ClusterOutcome::Skipped,
                revision: None,
                rolled_back_to: None,
                error: Some("not started: an earlier wave failed".to_owned()),
                duration_ms: 0,
                deploy: None,
            },
            target: None,
            client: None,
            interrupted: None,
        }
    }
}

fn millis(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Connects to one cluster and runs the single-cluster pipeline there.
async fn deploy_cluster(
    target: &Target,
    access: &Access,
    options: &DeployOptions,
    observer: &dyn DeployObserver,
) -> ClusterRun {
    let name = target.name.clone().unwrap_or_default();
    let env = &target.environment;
    let tagged = ClusterObserver {
        cluster: &name,
        inner: observer,
    };
    let started = Instant::now();
    let mut run = ClusterRun {
        report: ClusterReport {
            name: name.clone(),
            wave: target.wave,
            namespace: env.cluster.namespace.clone(),
            outcome: ClusterOutcome::Failed,
            revision: None,
            rolled_back_to: None,
            error: None,
            duration_ms: 0,
            deploy: None,
        },
        target: Some(target.clone()),
        client: None,
        interrupted: None,
    };
    let client = match cluster::connect(env, access).await {
        Ok(client) => client,
        Err(error) => {
            let message = error.to_string();
            tagged.event(&DeployEvent {
                environment: env.name.clone(),
                cluster: None,
                kind: EventKind::Note(format!("cannot reach the cluster: {message}")),
            });
            run.report.error = Some(message);
            run.report.duration_ms = millis(started);
            return run;
        }
    };
    run.client = Some(client.clone());
    let result = super::deploy(&client, env, options, &tagged).await;
    run.report.duration_ms = millis(started);
    match result {
        Ok(report) => {
            run.report.outcome = if report.outcome == Outcome::Unchanged {
                ClusterOutcome::Unchanged
            } else {
                ClusterOutcome::Succeeded
            };
            run.report.revision = report.revision;
            run.report.deploy = Some(report);
        }
        Err(error) => {
            run.report.outcome = match &error {
                DeployError::RollbackFailed { .. } => ClusterOutcome::RollbackFailed,
                DeployError::Interrupted { signal, .. } => {
                    run.interrupted = Some(*signal);
                    ClusterOutcome::Interrupted
                }
                DeployError::Failed { report } if report.outcome == Outcome::RolledBack => {
                    ClusterOutcome::RolledBack
                }
                _ => ClusterOutcome::Failed,
            };
            if let Some(report) = error.report() {
                run.report.revision = report.revision;
                run.report.rolled_back_to = report.rolled_back_to;
                run.report.deploy = Some(report.clone());
            }
            run.report.error = Some(error.to_string());
        }
    }
    run
}

/// `rollback-all`: re-applies the successful revision before the one this deploy recorded.
async fn undo_cluster(
    run: &mut ClusterRun,
    options: &DeployOptions,
    observer: &dyn DeployObserver,
) {
    let (Some(target), Some(client)) = (&run.target, &run.client) else {
        return;
    };
    let name = run.report.name.clone();
    let tagged = ClusterObserver {
        cluster: &name,
        inner: observer,
    };
    let options = DeployOptions {
        image: None,
        ..options.clone()
    };
    match super::rollback(client, &target.environment, None, &options, &tagged).await {
        Ok(report) => {
            run.report.outcome = ClusterOutcome::Undone;
            run.report.rolled_back_to = report.rolled_back_to;
            run.report.error = Some(format!(
                "succeeded as revision {}, then rolled back because another cluster failed (fleet.onFailure: rollback-all)",
                run.report.revision.unwrap_or_default()
            ));
            run.report.revision = report.revision;
        }
        Err(DeployError::NothingToRollBack { .. }) => {
            run.report.error = Some(
                "kept: no earlier successful revision to roll back to (fleet.onFailure: rollback-all)"
                    .to_owned(),
            );
        }
        Err(error) => {
            run.report.outcome = ClusterOutcome::RollbackFailed;
            run.report.error = Some(format!(
                "succeeded, then the rollback asked by fleet.onFailure: rollback-all failed: {error}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(yaml: &str) -> Environment {
        crate::config::load_from_str("p", yaml).expect("valid definition")
    }

    const THREE: &str = "cluster: { namespace: wa }\nclusters:\n  - { name: us-1, context: us, wave: 2 }\n  - { name: eu-1, context: eu }\n  - { name: eu-2, context: eu2 }\n";

    #[test]
    fn waves_group_clusters_lowest_first_in_definition_order() {
        let env = fleet(THREE);
        let targets = select(&env, &[]).expect("all");
        let grouped: Vec<(u32, Vec<&str>)> = waves(&targets)
            .into_iter()
            .map(|(w, m)| (w, m.iter().filter_map(|t| t.name.as_deref()).collect()))
            .collect();
        assert_eq!(
            grouped,
            [(1, vec!["eu-1", "eu-2"]), (2, vec!["us-1"])],
            "two waves"
        );
    }

    #[test]
    fn cluster_subsets_keep_wave_order_and_unknown_names_are_usage_errors() {
        let env = fleet(THREE);
        let picked = select(&env, &["us-1".into(), "eu-2".into()]).expect("known names");
        let names: Vec<_> = picked.iter().filter_map(|t| t.name.as_deref()).collect();
        assert_eq!(names, ["eu-2", "us-1"]);
        let unknown = select(&env, &["us-2".into()]).expect_err("unknown");
        assert_eq!(
            unknown.to_string(),
            "p has no cluster `us-2` (clusters: us-1, eu-1, eu-2); did you mean `us-1`?"
        );
        let single = fleet("cluster: { namespace: wa }\n");
        assert!(matches!(
            select(&single, &["eu-1".into()]),
            Err(FleetError::NotSeveralClusters { .. })
        ));
        assert_eq!(select(&single, &[]).expect("one").len(), 1);
    }

    #[test]
    fn a_context_override_is_refused_for_several_clusters_only() {
        let env = fleet(THREE);
        let all = select(&env, &[]).expect("all");
        let access = Access {
            kubeconfig: None,
            context: Some("x".into()),
        };
        assert!(matches!(
            access_for(&env, &all, &access),
            Err(FleetError::ContextForSeveral { count: 3, .. })
        ));
        let one = select(&env, &["eu-1".into()]).expect("one");
        assert_eq!(access_for(&env, &one, &access).expect("one").len(), 1);
    }

    /// Records each event's cluster and the environment each question names.
    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<String>>);

    impl DeployObserver for Seen {
        fn event(&self, event: &DeployEvent) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push(format!("event {:?}", event.cluster));
            }
        }

        fn confirm(&self, question: &super::super::Confirmation) -> super::super::Decision {
            if let Ok(mut seen) = self.0.lock() {
                seen.push(format!("asked {}", question.environment()));
            }
            super::super::Decision::Declined
        }
    }

    #[test]
    fn a_cluster_observer_tags_events_and_names_the_cluster_in_questions() {
        let seen = Seen::default();
        let tagged = ClusterObserver {
            cluster: "eu-1",
            inner: &seen,
        };
        tagged.event(&DeployEvent {
            environment: "production".into(),
            cluster: None,
            kind: EventKind::Note("hello".into()),
        });
        let answer = tagged.confirm(&super::super::Confirmation::Rollback {
            environment: "production".into(),
            to: 3,
        });
        assert_eq!(answer, super::super::Decision::Declined);
        assert_eq!(
            *seen.0.lock().expect("lock"),
            ["event Some(\"eu-1\")", "asked production (cluster eu-1)"]
        );
    }

    fn row(name: &str, outcome: ClusterOutcome) -> ClusterReport {
        ClusterReport {
            name: name.into(),
            wave: 1,
            namespace: "wa".into(),
            outcome,
            revision: Some(4),
            rolled_back_to: None,
            error: Some(format!("{name} went wrong")),
            duration_ms: 0,
            deploy: None,
        }
    }

    #[test]
    fn the_fleet_outcome_is_the_worst_cluster_outcome() {
        use ClusterOutcome::*;
        let cases = [
            (vec![Succeeded, Unchanged], Outcome::Succeeded),
            (vec![Unchanged, Unchanged], Outcome::Unchanged),
            (vec![Succeeded, RolledBack, Skipped], Outcome::RolledBack),
            (vec![Undone, RolledBack], Outcome::RolledBack),
            (vec![RolledBack, Failed], Outcome::Failed),
            (vec![Failed, RollbackFailed], Outcome::RollbackFailed),
        ];
        for (outcomes, expected) in &cases {
            let rows: Vec<_> = outcomes.iter().map(|o| row("c", *o)).collect();
            assert_eq!(FleetReport::outcome_of(&rows), *expected, "{outcomes:?}");
        }
        assert_eq!(cases.len(), 6);
    }

    #[test]
    fn the_error_names_each_cluster_and_what_it_keeps() {
        let report = FleetReport {
            environment: "production".into(),
            outcome: Outcome::RolledBack,
            image: "i".into(),
            on_failure: OnFailure::Stop,
            build: None,
            clusters: vec![
                row("eu-1", ClusterOutcome::Succeeded),
                row("us-1", ClusterOutcome::RolledBack),
                row("ap-1", ClusterOutcome::Skipped),
            ],
            interrupted_by: None,
        };
        assert_eq!(
            report.error_text(),
            "deploy of production failed in us-1\n  eu-1 (succeeded): keeps revision 4\n  us-1 (rolled_back): us-1 went wrong\n  ap-1 (skipped): ap-1 went wrong"
        );
    }
}
