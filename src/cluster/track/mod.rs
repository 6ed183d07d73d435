//! Rollout tracking by watching: Deployments through their new ReplicaSet, StatefulSets
//! through their update revision, Jobs through their conditions, and the Pods of all three. The first sign of a failure a
//! person would act on ends the wait with its reason, the pod's events and logs.
//!
//! Four seams: `classify` reads one pod's status and `assess` judges one workload from
//! everything watched (both pure), `watch` keeps the watches and decides when to stop, and
//! `diagnose` gathers the evidence (events, logs) for a failure.

mod assess;
mod classify;
mod diagnose;
mod watch;

use super::ObjectRef;
use serde::Serialize;
use std::fmt;

pub use assess::{is_job_complete, job_failure};
pub use classify::{
    CrashTolerance, FAILURES_ALLOWED_ANNOTATION, FAILURES_ALLOWED_PER_REPLICA,
    MAX_FAILURES_ALLOWED, PodProblem, classify_pod,
};
pub use diagnose::recent_events;
pub use watch::track;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    ImagePull,
    CrashLoop,
    ConfigError,
    Unschedulable,
    ReadinessTimeout,
    ProgressDeadlineExceeded,
    /// A Job gave up: its backoff limit or active deadline was reached.
    JobFailed,
}

impl FailureReason {
    /// Stable code for `--output json` and scripts.
    pub fn code(self) -> &'static str {
        match self {
            Self::ImagePull => "image_pull",
            Self::CrashLoop => "crash_loop",
            Self::ConfigError => "config_error",
            Self::Unschedulable => "unschedulable",
            Self::ReadinessTimeout => "readiness_timeout",
            Self::ProgressDeadlineExceeded => "progress_deadline_exceeded",
            Self::JobFailed => "job_failed",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::ImagePull => "image cannot be pulled",
            Self::CrashLoop => "container is crash-looping",
            Self::ConfigError => "container configuration is invalid",
            Self::Unschedulable => "pod cannot be scheduled",
            Self::ReadinessTimeout => "pods never became ready",
            Self::ProgressDeadlineExceeded => "progress deadline exceeded",
            Self::JobFailed => "job failed",
        }
    }
}

/// Why a rollout failed, with the evidence.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutFailure {
    pub reason: FailureReason,
    pub workload: String,
    pub pod: Option<String>,
    pub container: Option<String>,
    pub message: String,
    /// The pod's (or workload's) latest events, oldest first.
    pub events: Vec<String>,
    /// The container's last log lines, when any could be read.
    pub logs: Vec<String>,
    /// Why there are no logs, when there are none.
    pub logs_note: Option<String>,
}

impl fmt::Display for RolloutFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.workload, self.reason.describe())?;
        if let Some(pod) = &self.pod {
            write!(f, " (pod {pod}")?;
            if let Some(c) = &self.container {
                write!(f, ", container {c}")?;
            }
            write!(f, ")")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.events.is_empty() {
            write!(f, "\n  events:")?;
            for e in &self.events {
                write!(f, "\n    {e}")?;
            }
        }
        if !self.logs.is_empty() {
            write!(f, "\n  last log lines:")?;
            for l in &self.logs {
                write!(f, "\n    {l}")?;
            }
        } else if let Some(note) = &self.logs_note {
            write!(f, "\n  logs: {note}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RolloutFailure {}

/// One progress line for a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackEvent {
    pub workload: String,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub done: bool,
    pub note: String,
}

impl fmt::Display for TrackEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}/{} updated, {}/{} ready",
            self.workload, self.updated, self.desired, self.ready, self.desired
        )?;
        if !self.note.is_empty() {
            write!(f, " ({})", self.note)?;
        }
        Ok(())
    }
}

/// Kinds whose rollout [`track`] follows.
pub fn is_tracked(object: &ObjectRef) -> bool {
    matches!(
        (object.api_version.as_str(), object.kind.as_str()),
        ("apps/v1", "Deployment" | "StatefulSet") | ("batch/v1", "Job")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_report_names_workload_pod_events_and_missing_logs() {
        let failure = RolloutFailure {
            reason: FailureReason::CrashLoop,
            workload: "Deployment ns/app".into(),
            pod: Some("app-1".into()),
            container: Some("app".into()),
            message: "restarted 3 times".into(),
            events: vec!["Warning BackOff: Back-off restarting failed container".into()],
            logs: vec![],
            logs_note: Some("not retrievable".into()),
        };
        assert_eq!(
            failure.to_string(),
            "Deployment ns/app: container is crash-looping (pod app-1, container app): restarted 3 times\n  events:\n    Warning BackOff: Back-off restarting failed container\n  logs: not retrievable"
        );
        assert_eq!(failure.reason.code(), "crash_loop");
    }

    #[test]
    fn deployments_statefulsets_and_jobs_are_tracked_and_nothing_else() {
        let object = |api_version: &str, kind: &str| ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: Some("ns".into()),
            name: "x".into(),
        };
        let tracked = [
            ("apps/v1", "Deployment"),
            ("apps/v1", "StatefulSet"),
            ("batch/v1", "Job"),
        ];
        let untracked = [
            ("v1", "Service"),
            ("apps/v1", "DaemonSet"),
            ("batch/v1", "CronJob"),
            ("extensions/v1beta1", "Deployment"),
        ];
        for (api_version, kind) in tracked {
            assert!(is_tracked(&object(api_version, kind)), "{kind}");
        }
        for (api_version, kind) in untracked {
            assert!(
                !is_tracked(&object(api_version, kind)),
                "{api_version} {kind}"
            );
        }
    }
}
