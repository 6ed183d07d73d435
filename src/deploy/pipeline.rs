//! One deploy: build → render → plan → (confirm) → lock → apply → track → prune → smoke →
//! record, and the automatic rollback when anything after the apply fails.

use super::signals::{finish, until_signal};
use super::{
    Confirmation, DeployError, DeployObserver, DeployOptions, DeployReport, EventKind, FailureCode,
    Outcome, PlanCounts, RecordedObject, Stage, StageFailure, Stages, Started, confirm, git_commit,
    inventory, lock, plan_objects, record_success, recorded, roll_out, start_revision,
    stop_lock_lost,
};
use crate::build::{BuildEvent, BuildProgress};
use crate::cluster::revision::{self, Revision, RevisionStatus};
use crate::cluster::{ClusterError, DeployLock, Plan};
use crate::config::Environment;
use crate::render::{self, RenderOptions};
use kube::Client;

/// Runs the whole pipeline for `env`, telling `observer` what happens and asking it
/// before a protected environment is changed.
pub async fn deploy(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    observer: &dyn DeployObserver,
) -> Result<DeployReport, DeployError> {
    let mut stages = Stages::new(env, observer);
    let mut held = None;
    let stopped = until_signal(
        options.stop_on_signals,
        run_deploy(client, env, options, &mut stages, &mut held),
    )
    .await;
    finish(client, env, options, stopped, stages, held).await
}

/// Build events, forwarded to the deploy's observer.
struct BuildEvents<'a, 'b>(&'a Stages<'b>);

impl BuildProgress for BuildEvents<'_, '_> {
    fn event(&self, event: &BuildEvent) {
        self.0.emit(EventKind::Build(event.clone()));
    }
}

/// Builds and pushes the image; the reference to deploy (pinned by digest when pushed).
async fn build(
    env: &Environment,
    options: &DeployOptions,
    stages: &mut Stages<'_>,
) -> Result<String, DeployError> {
    let Some(build_options) = &options.build else {
        return Err(DeployError::BuildUnavailable);
    };
    let started = stages.start(Stage::Build);
    let built =
        super::build_and_push(env, &options.templates, build_options, &BuildEvents(stages)).await;
    let built = match built {
        Ok(built) => built,
        Err(error) => {
            stages.done(Stage::Build, started, false, error.to_string());
            return Err(error);
        }
    };
    let reference = built.pinned().unwrap_or_else(|| built.reference.clone());
    let detail = match (built.skipped, built.pushed) {
        (true, false) => format!("reused {reference} (same inputs; nothing built or pushed)"),
        (true, true) => format!("pushed {reference} (same inputs: reused the local build)"),
        _ => format!("pushed {reference}"),
    };
    stages.done(Stage::Build, started, true, detail);
    Ok(reference)
}

/// Renders `env` with `image` into the objects to apply.
fn render_objects(
    env: &Environment,
    options: &DeployOptions,
    image: Option<String>,
) -> Result<Vec<RecordedObject>, DeployError> {
    let rendered = render::render(
        env,
        &RenderOptions {
            image,
            templates: options.templates.clone(),
        },
    )?;
    Ok(recorded(&rendered))
}

/// A protected environment is asked before anything is written, the build and push
/// included: its plan is made with the definition's image first.
async fn confirm_before_build(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    stages: &Stages<'_>,
) -> Result<(), DeployError> {
    let objects = render_objects(env, options, None)?;
    let revisions = revision::list(client, &env.cluster.namespace, &env.name).await?;
    let plan = plan_objects(client, &objects, &revisions, options.apply).await?;
    stages.emit(EventKind::Planned(plan.clone()));
    confirm_plan(env, stages, plan, true)
}

/// Asks before `plan` is applied to a protected environment (`build`: before the image is
/// built, too).
fn confirm_plan(
    env: &Environment,
    stages: &Stages<'_>,
    plan: Plan,
    build: bool,
) -> Result<(), DeployError> {
    confirm(
        stages.observer,
        env,
        &Confirmation::Deploy {
            environment: env.name.clone(),
            plan,
            build,
        },
    )
}

async fn run_deploy(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    stages: &mut Stages<'_>,
    held: &mut Option<DeployLock>,
) -> Result<(), DeployError> {
    if let Some((path, saved)) = &options.plan {
        return run_saved_plan(client, env, options, stages, held, path, saved).await;
    }
    let confirmed_before_build = env.protected && !options.skip_build;
    let image = if options.skip_build {
        let image = match &options.image {
            Some(given) => {
                let (image, note) = super::resolve_given_image(given).await?;
                if let Some(note) = note {
                    stages.emit(EventKind::Note(format!("warning: {note}")));
                }
                image
            }
            None => env.image.tagged(),
        };
        stages.skipped(Stage::Build, &format!("--skip-build: deploying {image}"));
        image
    } else {
        if confirmed_before_build {
            confirm_before_build(client, env, options, stages).await?;
        }
        // Build and push, then deploy the pushed digest.
        build(env, options, stages).await?
    };
    stages.report.image = image.clone();

    let started = stages.start(Stage::Render);
    let objects = render_objects(env, options, Some(image.clone()))?;
    stages.report.digests = revision::images(&objects);
    stages.done(
        Stage::Render,
        started,
        true,
        format!("{} objects", objects.len()),
    );

    let started = stages.start(Stage::Plan);
    let revisions = revision::list(client, &env.cluster.namespace, &env.name).await?;
    let plan = plan_objects(client, &objects, &revisions, options.apply).await?;
    stages.done(Stage::Plan, started, true, plan.summary());
    stages.report.plan = Some(PlanCounts::of(&plan));
    if plan.is_noop() {
        stages.report.outcome = Outcome::Unchanged;
        stages.report.revision = revisions.last().map(|r| r.number);
        return unchanged(client, env, options, stages, held, &objects).await;
    }
    stages.emit(EventKind::Planned(plan.clone()));
    if !confirmed_before_build {
        confirm_plan(env, stages, plan, false)?;
    }

    let guard = lock(client, env, &objects, options).await?;
    stages.lease = Some(guard.watch());
    *held = Some(guard);
    deploy_locked(client, env, options, stages, objects, image).await
}

/// `deploy --plan`: applies exactly the saved plan's objects, after checking that the
/// definition renders them still, and (before and again under the lock) that nothing the
/// plan read in the cluster has changed since.
async fn run_saved_plan(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    stages: &mut Stages<'_>,
    held: &mut Option<DeployLock>,
    path: &std::path::Path,
    saved: &super::plan_file::SavedPlan,
) -> Result<(), DeployError> {
    use super::plan_file;
    let image = saved.image.clone();
    stages.skipped(
        Stage::Build,
        &format!("--plan {}: deploying {image}", path.display()),
    );
    stages.report.image = image.clone();

    let started = stages.start(Stage::Render);
    let rendered = plan_file::render_for(env, saved, options.templates.clone())?;
    let objects = match saved.objects_to_apply(&rendered, path) {
        Ok(objects) => objects,
        Err(error) => {
            stages.done(Stage::Render, started, false, error.to_string());
            return Err(error.into());
        }
    };
    stages.report.digests = revision::images(&objects);
    stages.done(
        Stage::Render,
        started,
        true,
        format!(
            "{} objects from plan {} (hash {})",
            objects.len(),
            path.display(),
            saved.hash()
        ),
    );

    let started = stages.start(Stage::Plan);
    let checked = async {
        plan_file::verify_live(client, saved, path, false).await?;
        let revisions = revision::list(client, &env.cluster.namespace, &env.name).await?;
        let plan = plan_objects(client, &objects, &revisions, options.apply).await?;
        plan_file::check_same_changes(saved, &plan, path)?;
        Ok::<_, DeployError>((plan, revisions))
    }
    .await;
    let (plan, revisions) = match checked {
        Ok(found) => found,
        Err(error) => {
            stages.done(Stage::Plan, started, false, error.to_string());
            return Err(error);
        }
    };
    stages.done(
        Stage::Plan,
        started,
        true,
        format!(
            "{} (as reviewed, made {})",
            plan.summary(),
            saved.created_at
        ),
    );
    stages.report.plan = Some(PlanCounts::of(&plan));
    if plan.is_noop() {
        stages.report.outcome = Outcome::Unchanged;
        stages.report.revision = revisions.last().map(|r| r.number);
        return unchanged(client, env, options, stages, held, &objects).await;
    }
    stages.emit(EventKind::Planned(plan.clone()));
    confirm_plan(env, stages, plan, false)?;

    let guard = lock(client, env, &objects, options).await?;
    stages.lease = Some(guard.watch());
    *held = Some(guard);
    // Again under the lock: nobody deploys in between now, but someone may have before.
    plan_file::verify_live(client, saved, path, true).await?;
    deploy_locked(client, env, options, stages, objects, image).await
}

/// A deploy with nothing to change still removes a canary that a killed deploy left
/// behind (it serves a version nobody judged), under the lock, which it takes only then.
/// While another deploy holds the lock the canary is taken to be that deploy's: left, and
/// said so.
async fn unchanged(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    stages: &mut Stages<'_>,
    held: &mut Option<DeployLock>,
    objects: &[RecordedObject],
) -> Result<(), DeployError> {
    if !super::canary::is_live(client, env).await {
        return Ok(());
    }
    let guard = match lock(client, env, objects, options).await {
        Ok(guard) => guard,
        Err(DeployError::Cluster(e)) if matches!(*e, ClusterError::Locked { .. }) => {
            stages.emit(EventKind::Note(format!(
                "warning: a canary is live and {e}; it is left to that deploy"
            )));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    stages.lease = Some(guard.watch());
    *held = Some(guard);
    if let Err(failure) = super::canary::remove_leftover(client, env, stages).await {
        stages.failed(failure);
        stages.report.outcome = Outcome::Failed;
        return Err(DeployError::Failed {
            report: Box::new(stages.report.clone()),
        });
    }
    Ok(())
}

/// The smoke suite after a rollout: a failed check is a failed deploy (and rolls back).
async fn smoke(env: &Environment, stages: &mut Stages<'_>) -> Result<(), StageFailure> {
    let Some(url) = env.smoke.url.as_deref() else {
        // Reaching pods without a URL needs a port-forward through a kubelet.
        stages.skipped(Stage::Smoke, "no smoke.url in the definition");
        return Ok(());
    };
    let started = stages.start(Stage::Smoke);
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
    let passed = report.passed;
    stages.emit(EventKind::Smoke(report));
    stages.done(Stage::Smoke, started, passed, summary.clone());
    if passed {
        Ok(())
    } else {
        Err(StageFailure {
            code: FailureCode::SmokeFailed,
            message: format!("{summary}; failed: {}", failed.join("; ")),
        })
    }
}

async fn deploy_locked(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    stages: &mut Stages<'_>,
    objects: Vec<RecordedObject>,
    image: String,
) -> Result<(), DeployError> {
    let draft = Revision {
        number: 0,
        environment: env.name.clone(),
        status: RevisionStatus::Pending,
        image,
        digests: revision::images(&objects),
        git_commit: git_commit(),
        user: String::new(),
        host: String::new(),
        started_at: String::new(),
        finished_at: None,
        message: None,
        rollback_of: None,
        canary: None,
        inventory: inventory(&objects),
        objects,
    };
    let mut started = start_revision(client, env, draft, stages).await?;
    let last_good = started
        .revisions
        .iter()
        .rev()
        .find(|r| r.status == RevisionStatus::Succeeded)
        .cloned();

    // A canary a killed deploy left behind serves an unjudged version: it goes first,
    // whatever the strategy is now.
    if let Err(failure) = super::canary::remove_leftover(client, env, stages).await {
        return canary_failed(client, env, stages, started, failure).await;
    }
    started.current.canary = stages.report.canary.clone();
    if let Some(canary) = &env.rollout.canary {
        let judged = super::canary::run(
            client,
            env,
            canary,
            &started.current.objects,
            last_good.as_ref(),
            stages,
        )
        .await;
        // The evidence goes with the revision, whatever happens next.
        started.current.canary = stages.report.canary.clone();
        if let Err(failure) = judged {
            return canary_failed(client, env, stages, started, failure).await;
        }
    }
    let outcome = roll_out(
        client,
        env,
        &started.current.objects,
        &started.owned_before,
        options,
        stages,
        false,
    )
    .await;
    if env.rollout.canary.is_some() {
        // Promoted (or failed to): the canary's pods go either way.
        remove_canary(client, env, stages).await;
    }
    let outcome = match outcome {
        Ok(()) => smoke(env, stages).await,
        failed => failed,
    };
    let Err(failure) = outcome else {
        if let Some(evidence) = stages.report.canary.as_ref().map(|c| c.evidence())
            && !evidence.is_empty()
        {
            started.current.message = Some(format!("canary promoted: {evidence}"));
        }
        record_success(client, env, started).await?;
        stages.report.outcome = Outcome::Succeeded;
        return Ok(());
    };
    let Started {
        owned_before,
        mut current,
        ..
    } = started;
    if failure.code == FailureCode::LockLost {
        let namespace = &env.cluster.namespace;
        return Err(
            stop_lock_lost(client, namespace, &mut current, stages, &failure.message).await,
        );
    }
    current.message = Some(failure.message.clone());
    current.finished_at = Some(super::now());
    stages.failed(failure);
    roll_back(
        client,
        env,
        options,
        stages,
        current,
        owned_before,
        last_good,
    )
    .await
}

/// Removes the canary after its promotion; a failure to is told, not fatal (its pods run
/// the version just promoted).
async fn remove_canary(client: &Client, env: &Environment, stages: &Stages<'_>) {
    match super::canary::remove(client, env).await {
        Ok(removed) if removed.is_empty() => {}
        Ok(removed) => stages.emit(EventKind::Note(format!(
            "canary removed: {}",
            removed.join(", ")
        ))),
        Err(e) => stages.emit(EventKind::Note(format!(
            "the canary could not be removed ({e}); the next deploy removes it"
        ))),
    }
}

/// A canary that did not pass: it is removed already and stable never changed, so there
/// is nothing to roll back; the revision is marked failed with the evidence.
async fn canary_failed(
    client: &Client,
    env: &Environment,
    stages: &mut Stages<'_>,
    started: Started,
    failure: StageFailure,
) -> Result<(), DeployError> {
    let namespace = &env.cluster.namespace;
    let mut current = started.current;
    if failure.code == FailureCode::LockLost {
        return Err(
            stop_lock_lost(client, namespace, &mut current, stages, &failure.message).await,
        );
    }
    current.status = RevisionStatus::Failed;
    current.message = Some(failure.message.clone());
    current.finished_at = Some(super::now());
    revision::update(client, namespace, &current).await?;
    stages.failed(failure);
    stages.report.outcome = Outcome::Failed;
    stages.report.rollback_note =
        Some("nothing to roll back: the stable pods never changed".to_owned());
    Err(DeployError::Failed {
        report: Box::new(stages.report.clone()),
    })
}

/// After a failed deploy: re-applies the last successful revision (unless told not to, or
/// there is none) and records how that went.
async fn roll_back(
    client: &Client,
    env: &Environment,
    options: &DeployOptions,
    stages: &mut Stages<'_>,
    mut current: Revision,
    owned_before: Vec<crate::cluster::ObjectRef>,
    last_good: Option<Revision>,
) -> Result<(), DeployError> {
    let namespace = &env.cluster.namespace;
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
    stages.emit(EventKind::RollingBack { to: target.number });
    let mut owned = owned_before;
    for o in &current.inventory {
        if !owned.contains(o) {
            owned.push(o.clone());
        }
    }
    let rollback = roll_out(client, env, &target.objects, &owned, options, stages, true).await;
    match rollback {
        Err(failure) if failure.code == FailureCode::LockLost => {
            Err(stop_lock_lost(client, namespace, &mut current, stages, &failure.message).await)
        }
        Ok(()) => {
            current.status = RevisionStatus::RolledBack;
            revision::update(client, namespace, &current).await?;
            stages.report.outcome = Outcome::RolledBack;
            Err(DeployError::Failed {
                report: Box::new(stages.report.clone()),
            })
        }
        Err(failure) => {
            current.status = RevisionStatus::Failed;
            revision::update(client, namespace, &current).await?;
            stages.report.outcome = Outcome::RollbackFailed;
            stages.report.rollback_error = Some(super::ErrorReport {
                code: failure.code,
                message: failure.message,
            });
            Err(DeployError::RollbackFailed {
                report: Box::new(stages.report.clone()),
            })
        }
    }
}
