//! `wactl rollback`: re-applies a recorded revision as a new revision.

use super::signals::{finish, until_signal};
use super::{
    Confirmation, DeployError, DeployObserver, DeployOptions, DeployReport, ErrorReport, EventKind,
    FailureCode, Outcome, PlanCounts, Stage, Stages, confirm, lock, plan_objects, record_success,
    roll_out, start_revision, stop_lock_lost,
};
use crate::cluster::DeployLock;
use crate::cluster::revision::{self, Revision, RevisionStatus};
use crate::config::Environment;
use kube::Client;

/// Re-applies revision `to` (default: the successful revision before the current one) as a
/// new revision.
pub async fn rollback(
    client: &Client,
    env: &Environment,
    to: Option<u32>,
    options: &DeployOptions,
    observer: &dyn DeployObserver,
) -> Result<DeployReport, DeployError> {
    let revisions = revision::list(client, &env.cluster.namespace, &env.name).await?;
    let target = target(env, &revisions, to)?.clone();
    let mut stages = Stages::new(env, observer);
    stages.report.image = target.image.clone();
    stages.report.digests = target.digests.clone();
    // What changes, before anything is asked or written: the revision live now → the
    // target, and the plan of re-applying the target's objects.
    let live = revisions
        .iter()
        .rev()
        .find(|r| r.status == RevisionStatus::Succeeded)
        .map_or_else(|| "none".to_owned(), |r| r.number.to_string());
    stages.emit(EventKind::Note(format!(
        "rollback {}: revision {live} → {} ({})",
        env.name, target.number, target.image
    )));
    let started = stages.start(Stage::Plan);
    let plan = plan_objects(client, &target.objects, &revisions, options.apply).await?;
    stages.done(Stage::Plan, started, true, plan.summary());
    stages.report.plan = Some(PlanCounts::of(&plan));
    stages.emit(EventKind::Planned(plan));
    confirm(
        observer,
        env,
        &Confirmation::Rollback {
            environment: env.name.clone(),
            to: target.number,
        },
    )?;
    let mut held = None;
    let stopped = until_signal(
        options.stop_on_signals,
        run_rollback(client, env, &target, options, &mut stages, &mut held),
    )
    .await;
    finish(client, env, options, stopped, stages, held).await
}

/// The revision to re-apply: `to`, or the successful one before the current.
fn target<'r>(
    env: &Environment,
    revisions: &'r [Revision],
    to: Option<u32>,
) -> Result<&'r Revision, DeployError> {
    let namespace = &env.cluster.namespace;
    if let Some(n) = to {
        return revisions.iter().find(|r| r.number == n).ok_or_else(|| {
            DeployError::NoSuchRevision {
                environment: env.name.clone(),
                namespace: namespace.clone(),
                revision: n,
                recorded: recorded_numbers(revisions),
            }
        });
    }
    let succeeded: Vec<&Revision> = revisions
        .iter()
        .filter(|r| r.status == RevisionStatus::Succeeded)
        .collect();
    match succeeded.as_slice() {
        [.., before, _current] => Ok(before),
        _ => Err(DeployError::NothingToRollBack {
            environment: env.name.clone(),
            message: format!(
                "fewer than two successful revisions in namespace {namespace} (see `wactl history {}`)",
                env.name
            ),
        }),
    }
}

/// `3, 4, 5`, or `none`.
fn recorded_numbers(revisions: &[Revision]) -> String {
    if revisions.is_empty() {
        return "none".to_owned();
    }
    revisions
        .iter()
        .map(|r| r.number.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn run_rollback(
    client: &Client,
    env: &Environment,
    target: &Revision,
    options: &DeployOptions,
    stages: &mut Stages<'_>,
    held: &mut Option<DeployLock>,
) -> Result<(), DeployError> {
    let guard = lock(client, env, &target.objects, options).await?;
    stages.lease = Some(guard.watch());
    *held = Some(guard);
    let draft = Revision {
        rollback_of: Some(target.number),
        // The target's canary evidence judged that deploy, not this re-apply.
        canary: None,
        ..target.clone()
    };
    let mut started = start_revision(client, env, draft, stages).await?;
    stages.report.rolled_back_to = Some(target.number);
    let outcome = roll_out(
        client,
        env,
        &target.objects,
        &started.owned_before,
        options,
        stages,
        false,
    )
    .await;
    match outcome {
        Ok(()) => {
            record_success(client, env, started).await?;
            stages.report.outcome = Outcome::Succeeded;
            Ok(())
        }
        Err(failure) if failure.code == FailureCode::LockLost => {
            let namespace = &env.cluster.namespace;
            let current = &mut started.current;
            Err(stop_lock_lost(client, namespace, current, stages, &failure.message).await)
        }
        Err(failure) => {
            let current = &mut started.current;
            current.finished_at = Some(super::now());
            current.status = RevisionStatus::Failed;
            current.message = Some(failure.message.clone());
            revision::update(client, &env.cluster.namespace, current).await?;
            stages.report.outcome = Outcome::Failed;
            stages.report.error = Some(ErrorReport {
                code: failure.code,
                message: failure.message,
            });
            Err(DeployError::Failed {
                report: Box::new(stages.report.clone()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(number: u32, status: RevisionStatus) -> Revision {
        Revision {
            number,
            environment: "dev".into(),
            status,
            image: format!("app:{number}"),
            digests: Default::default(),
            git_commit: None,
            user: "u".into(),
            host: "h".into(),
            started_at: String::new(),
            finished_at: None,
            message: None,
            rollback_of: None,
            canary: None,
            inventory: vec![],
            objects: vec![],
        }
    }

    #[test]
    fn the_target_is_named_or_the_success_before_the_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments");
        let env = crate::config::load(&dir, "dev").expect("dev.yaml");
        let revisions = [
            revision(1, RevisionStatus::Succeeded),
            revision(2, RevisionStatus::Failed),
            revision(3, RevisionStatus::Succeeded),
        ];
        assert_eq!(target(&env, &revisions, None).expect("default").number, 1);
        assert_eq!(target(&env, &revisions, Some(2)).expect("named").number, 2);
        let missing = target(&env, &revisions, Some(999)).expect_err("no 999");
        assert!(matches!(missing, DeployError::NoSuchRevision { .. }));
        assert_eq!(
            missing.to_string(),
            format!(
                "dev has no revision 999 in namespace {} (recorded: 1, 2, 3; see `wactl history dev`)",
                env.cluster.namespace
            )
        );
        assert!(matches!(
            target(&env, &revisions[..2], None),
            Err(DeployError::NothingToRollBack { .. })
        ));
    }
}
