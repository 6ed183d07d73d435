//! The GitHub Actions step of a deploy as an observer of its events: the step summary
//! (plan, each workload's rollout, each smoke check, stages, outcome) and the step outputs,
//! written when the deploy's final report comes.

use super::actions::Actions;
use super::summary::{DeploySummary, Outcome};
use crate::config::Environment;
use crate::deploy::{DeployEvent, DeployObserver, EventKind};
use std::sync::Mutex;

/// Fills a [`DeploySummary`] from a deploy's events and writes it, with the step outputs,
/// when the deploy finishes. A file that cannot be written is a warning annotation: the
/// deploy's own result matters more.
pub struct DeployStep {
    actions: Actions,
    summary: Mutex<DeploySummary>,
}

impl DeployStep {
    pub fn new(actions: Actions, env: &Environment) -> Self {
        Self {
            actions,
            summary: Mutex::new(DeploySummary {
                url: env.smoke.url.clone(),
                ..DeploySummary::new(&env.name, Outcome::Running)
            }),
        }
    }

    /// The summary as recorded so far.
    pub fn summary(&self) -> Option<DeploySummary> {
        self.summary.lock().ok().map(|s| s.clone())
    }
}

impl DeployObserver for DeployStep {
    fn event(&self, event: &DeployEvent) {
        let Ok(mut summary) = self.summary.lock() else {
            return;
        };
        summary.record(event);
        if matches!(event.kind, EventKind::Finished(_))
            && let Err(error) = self
                .actions
                .summary(&summary)
                .and_then(|()| self.actions.deploy_outputs(&summary))
        {
            self.actions.annotate_warning(&format!(
                "could not write the job summary or outputs: {error}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{Change, ObjectRef, Plan, PlannedObject, TrackEvent};
    use crate::deploy::{DeployReport, Stage, StageReport};
    use std::time::Duration;

    fn event(kind: EventKind) -> DeployEvent {
        DeployEvent {
            environment: "staging".into(),
            cluster: None,
            kind,
        }
    }

    #[test]
    fn the_summary_shows_plan_rollout_and_smoke_from_the_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (summary_file, outputs_file) = (dir.path().join("summary.md"), dir.path().join("out"));
        let env = crate::config::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments"),
            "staging",
        )
        .expect("staging loads");
        let step = DeployStep::new(
            Actions::with_files(Some(summary_file.clone()), Some(outputs_file.clone())),
            &env,
        );
        step.event(&event(EventKind::Planned(Plan {
            objects: vec![PlannedObject {
                object: ObjectRef {
                    api_version: "apps/v1".into(),
                    kind: "Deployment".into(),
                    namespace: Some("wa-staging".into()),
                    name: "address-service".into(),
                },
                change: Change::Update,
                diff: String::new(),
            }],
        })));
        for (ready, done) in [(1, false), (2, true)] {
            step.event(&event(EventKind::Rollout(TrackEvent {
                workload: "Deployment/address-service".into(),
                desired: 2,
                updated: 2,
                ready,
                done,
                note: String::new(),
            })));
        }
        let smoke = crate::smoke::SmokeReport {
            base_url: "http://127.0.0.1:1".into(),
            passed: true,
            elapsed_ms: 4,
            checks: vec![crate::smoke::CheckResult {
                name: "health".into(),
                outcome: crate::smoke::Outcome::Passed,
                request: "GET /healthz".into(),
                status: Some(200),
                latency_ms: 3,
                attempts: 1,
                waited_for_rate_limit_ms: None,
                failure: None,
            }],
        };
        step.event(&event(EventKind::Smoke(smoke)));
        step.event(&event(EventKind::StageFinished(StageReport::new(
            Stage::Apply,
            Duration::from_millis(1500),
            true,
            String::new(),
        ))));
        assert!(
            !summary_file.exists(),
            "nothing is written before the deploy finishes"
        );
        let mut report = DeployReport::new(&env);
        report.outcome = Outcome::Succeeded;
        report.image = "reg/app@sha256:abc".into();
        report.revision = Some(3);
        step.event(&event(EventKind::Finished(Box::new(report))));

        let md = std::fs::read_to_string(&summary_file).expect("summary written");
        assert!(
            md.starts_with("## wactl deploy `staging`: ✅ deployed"),
            "{md}"
        );
        assert!(
            md.contains("| `~` | update | Deployment | address-service | wa-staging |"),
            "{md}"
        );
        assert!(
            md.contains("| Deployment/address-service | 2 | 2 | 2 | 2 | complete |"),
            "{md}"
        );
        assert_eq!(
            md.matches("Deployment/address-service").count(),
            1,
            "one row per workload: {md}"
        );
        assert!(md.contains("### Smoke tests: 1/1 passed"), "{md}");
        assert!(md.contains("| apply | ✅ | 1.5 s |"), "{md}");
        let outputs = std::fs::read_to_string(&outputs_file).expect("outputs written");
        assert!(
            outputs.lines().any(|l| l == "outcome=succeeded"),
            "{outputs}"
        );
        assert!(outputs.lines().any(|l| l == "revision=3"), "{outputs}");
    }
}
