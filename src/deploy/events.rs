//! What a deploy tells the outside world, and the questions it asks it: typed events and
//! confirmations through one [`DeployObserver`]. The terminal, the `--output json` report and
//! the GitHub Actions step summary are observers; the pipeline knows none of them.

use super::Stage;
use super::report::{DeployReport, StageReport};
use crate::build::BuildEvent;
use crate::cluster::{ObjectRef, Plan, TrackEvent};
use crate::smoke::SmokeReport;

/// Receives a deploy's events and answers its questions.
///
/// Events come in pipeline order from one task; an observer shared by several pipelines
/// (one per cluster) tells them apart by [`DeployEvent::cluster`].
pub trait DeployObserver: Send + Sync {
    fn event(&self, event: &DeployEvent);

    /// Answers a question before something irreversible. An observer that cannot ask a
    /// person leaves the question [`Decision::Unanswered`] (the default).
    fn confirm(&self, _question: &Confirmation) -> Decision {
        Decision::Unanswered
    }
}

/// One thing that happened in a deploy, rollback or destroy.
#[derive(Debug, Clone)]
pub struct DeployEvent {
    pub environment: String,
    /// The cluster the event comes from, when the environment names several.
    pub cluster: Option<String>,
    pub kind: EventKind,
}

/// What happened. New kinds (canary analysis steps, waves) are added here; observers
/// ignore kinds they do not know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EventKind {
    StageStarted(Stage),
    /// A stage ended, successfully or not, or was skipped.
    StageFinished(StageReport),
    /// What the deploy is about to change, before anything is written.
    Planned(Plan),
    /// A step of the image build or push.
    Build(BuildEvent),
    /// Rollout progress of one workload.
    Rollout(TrackEvent),
    /// Every smoke check of the suite that ran after the rollout.
    Smoke(SmokeReport),
    /// Something a person should know that is not a stage (a kept namespace, a signal).
    Note(String),
    /// A canary step starts: `canary_replicas` pods of the new version next to
    /// `stable_replicas` (step numbers from 1).
    CanaryStep {
        step: usize,
        of: usize,
        weight: u32,
        canary_replicas: u32,
        stable_replicas: u32,
    },
    /// One measurement of the canary analysis: each metric's values, bound and verdict.
    CanaryMeasurement(super::canary::Measurement),
    /// The deploy failed and the last successful revision is being re-applied.
    RollingBack {
        to: u32,
    },
    /// The deploy's final report: after success, or after a failure once it got as far as
    /// applying (the same report `--output json` prints).
    Finished(Box<DeployReport>),
    /// A wave of an environment's clusters starts (deploys to several clusters).
    WaveStarted {
        wave: u32,
        clusters: Vec<String>,
    },
    /// The report of a deploy to several clusters, every cluster's outcome in it (the one
    /// `--output json` prints for such an environment).
    FleetFinished(Box<super::fleet::FleetReport>),
}

/// A question the pipeline asks before it writes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Confirmation {
    /// Apply `plan` to a protected environment. `build` is true when the image is built
    /// and pushed only after the answer (the plan then shows the definition's tag).
    Deploy {
        environment: String,
        plan: Plan,
        build: bool,
    },
    /// Re-apply revision `to` of a protected environment.
    Rollback { environment: String, to: u32 },
    /// Delete everything wactl owns in the environment (always asked).
    Destroy {
        environment: String,
        namespace: String,
        objects: Vec<ObjectRef>,
    },
}

impl Confirmation {
    pub fn environment(&self) -> &str {
        match self {
            Self::Deploy { environment, .. }
            | Self::Rollback { environment, .. }
            | Self::Destroy { environment, .. } => environment,
        }
    }

    /// The action asked about, for messages: `deploying production`.
    pub fn action(&self) -> Action {
        match self {
            Self::Deploy { .. } => Action::Deploy,
            Self::Rollback { .. } => Action::Rollback,
            Self::Destroy { .. } => Action::Destroy,
        }
    }
}

/// The answer to a [`Confirmation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approved,
    Declined,
    /// Nobody could be asked (no terminal, `--output json`, CI).
    Unanswered,
}

/// What needs confirmation, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Deploy,
    Rollback,
    Destroy,
}

impl Action {
    /// Whether the action needs a confirmation in `env` (without `--yes`): destroying
    /// always does, deploying and rolling back only a protected environment.
    pub fn needs_confirmation(self, protected: bool) -> bool {
        match self {
            Self::Destroy => true,
            Self::Deploy | Self::Rollback => protected,
        }
    }

    pub fn gerund(self) -> &'static str {
        match self {
            Self::Deploy => "deploying",
            Self::Rollback => "rolling back",
            Self::Destroy => "destroying",
        }
    }

    pub fn noun(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Rollback => "rollback",
            Self::Destroy => "destroy",
        }
    }
}

/// Sends every event to each observer in turn; a question goes to each until one answers.
pub struct Observers<'a>(pub Vec<&'a dyn DeployObserver>);

impl DeployObserver for Observers<'_> {
    fn event(&self, event: &DeployEvent) {
        for observer in &self.0 {
            observer.event(event);
        }
    }

    fn confirm(&self, question: &Confirmation) -> Decision {
        self.0
            .iter()
            .map(|o| o.confirm(question))
            .find(|d| *d != Decision::Unanswered)
            .unwrap_or(Decision::Unanswered)
    }
}

/// Ignores every event and answers every question with `Approved` (library callers that
/// decided beforehand, tests, benchmarks).
#[derive(Debug, Clone, Copy, Default)]
pub struct Unattended;

impl DeployObserver for Unattended {
    fn event(&self, _event: &DeployEvent) {}

    fn confirm(&self, _question: &Confirmation) -> Decision {
        Decision::Approved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Recorder {
        answer: Decision,
        seen: Mutex<Vec<String>>,
    }

    impl DeployObserver for Recorder {
        fn event(&self, event: &DeployEvent) {
            if let EventKind::Note(note) = &event.kind
                && let Ok(mut seen) = self.seen.lock()
            {
                seen.push(note.clone());
            }
        }

        fn confirm(&self, _question: &Confirmation) -> Decision {
            self.answer
        }
    }

    fn recorder(answer: Decision) -> Recorder {
        Recorder {
            answer,
            seen: Mutex::new(Vec::new()),
        }
    }

    #[test]
    fn every_observer_sees_every_event_and_the_first_answer_counts() {
        let silent = recorder(Decision::Unanswered);
        let no = recorder(Decision::Declined);
        let yes = recorder(Decision::Approved);
        let all = Observers(vec![&silent, &no, &yes]);
        all.event(&DeployEvent {
            environment: "dev".into(),
            cluster: None,
            kind: EventKind::Note("hello".into()),
        });
        for r in [&silent, &no, &yes] {
            assert_eq!(*r.seen.lock().expect("lock"), ["hello"]);
        }
        let question = Confirmation::Destroy {
            environment: "dev".into(),
            namespace: "wa-dev".into(),
            objects: vec![],
        };
        assert_eq!(all.confirm(&question), Decision::Declined);
        assert_eq!(
            Observers(vec![&silent]).confirm(&question),
            Decision::Unanswered
        );
        assert_eq!(Observers(vec![]).confirm(&question), Decision::Unanswered);
    }

    #[test]
    fn only_destroy_asks_in_an_unprotected_environment() {
        assert!(Action::Destroy.needs_confirmation(false));
        assert!(!Action::Deploy.needs_confirmation(false));
        assert!(!Action::Rollback.needs_confirmation(false));
        assert!(Action::Deploy.needs_confirmation(true));
    }
}
