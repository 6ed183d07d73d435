//! The one report a deploy produces: stages with durations, revision, digests, outcome and
//! stable error codes (`--output json` prints it as is).

use crate::cluster::{Change, FailureReason, Plan};
use crate::config::Environment;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Not finished (never printed for a finished deploy).
    Running,
    /// Nothing to change: nothing was written.
    Unchanged,
    Succeeded,
    /// Failed, and the last successful revision is live again.
    RolledBack,
    /// Failed and not rolled back (`--no-rollback`, or nothing to roll back to).
    Failed,
    /// Failed, and the rollback failed too.
    RollbackFailed,
}

impl Outcome {
    /// The one spelling of an outcome: in the JSON report, step outputs and summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Unchanged => "unchanged",
            Self::Succeeded => "succeeded",
            Self::RolledBack => "rolled_back",
            Self::Failed => "failed",
            Self::RollbackFailed => "rollback_failed",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step of the pipeline, as named in reports and on the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Build,
    Render,
    Plan,
    Apply,
    Track,
    Prune,
    Smoke,
    /// The stages of the automatic rollback after a failed deploy.
    RollbackApply,
    RollbackTrack,
    RollbackPrune,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::Render => "render",
            Self::Plan => "plan",
            Self::Apply => "apply",
            Self::Track => "track",
            Self::Prune => "prune",
            Self::Smoke => "smoke",
            Self::RollbackApply => "rollback apply",
            Self::RollbackTrack => "rollback track",
            Self::RollbackPrune => "rollback prune",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Stage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    Ok,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub name: Stage,
    pub status: StageStatus,
    pub duration_ms: u64,
    pub detail: String,
}

impl StageReport {
    pub fn new(name: Stage, duration: Duration, ok: bool, detail: String) -> Self {
        Self {
            name,
            status: if ok {
                StageStatus::Ok
            } else {
                StageStatus::Failed
            },
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            detail,
        }
    }

    pub fn skipped(name: Stage, detail: &str) -> Self {
        Self {
            name,
            status: StageStatus::Skipped,
            duration_ms: 0,
            detail: detail.to_owned(),
        }
    }
}

/// Why a deploy (or its rollback) failed, as a stable code for `--output json` and scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCode {
    /// The rollout failed: `image_pull`, `crash_loop`, `config_error`, `unschedulable`,
    /// `readiness_timeout`, `progress_deadline_exceeded`, `job_failed`.
    Rollout(FailureReason),
    /// Another field manager owns fields wactl applies.
    Conflict,
    ApplyFailed,
    PruneFailed,
    SmokeFailed,
    /// SIGINT or SIGTERM stopped the deploy.
    Interrupted,
    /// The deploy lock was lost (taken over, deleted or expired): stopped before writing
    /// anything more, not rolled back.
    LockLost,
    /// The canary analysis failed or stayed inconclusive: the canary was removed, the
    /// stable pods never changed.
    CanaryFailed,
}

impl FailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rollout(reason) => reason.code(),
            Self::Conflict => "conflict",
            Self::ApplyFailed => "apply_failed",
            Self::PruneFailed => "prune_failed",
            Self::SmokeFailed => "smoke_failed",
            Self::Interrupted => "interrupted",
            Self::LockLost => "lock_lost",
            Self::CanaryFailed => "canary_failed",
        }
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FailureCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A stable code and the full message.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    pub code: FailureCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct PlanCounts {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub unchanged: usize,
}

impl PlanCounts {
    pub fn of(plan: &Plan) -> Self {
        Self {
            create: plan.count(Change::Create),
            update: plan.count(Change::Update),
            delete: plan.count(Change::Delete),
            unchanged: plan.count(Change::Unchanged),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    pub environment: String,
    pub namespace: String,
    pub outcome: Outcome,
    /// The revision recorded for this deploy (the live one when nothing changed).
    pub revision: Option<u32>,
    pub rolled_back_to: Option<u32>,
    pub image: String,
    pub digests: BTreeMap<String, String>,
    pub plan: Option<PlanCounts>,
    pub stages: Vec<StageReport>,
    pub error: Option<ErrorReport>,
    pub rollback_error: Option<ErrorReport>,
    pub rollback_note: Option<String>,
    /// `rollout.strategy: canary`: each step with its measurements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<super::canary::CanaryReport>,
}

impl DeployReport {
    pub fn new(env: &Environment) -> Self {
        Self {
            environment: env.name.clone(),
            namespace: env.cluster.namespace.clone(),
            outcome: Outcome::Running,
            revision: None,
            rolled_back_to: None,
            image: String::new(),
            digests: BTreeMap::new(),
            plan: None,
            stages: Vec::new(),
            error: None,
            rollback_error: None,
            rollback_note: None,
            canary: None,
        }
    }

    /// The error message of a failed deploy, both outcomes included.
    pub fn error_text(&self) -> String {
        let revision = self
            .revision
            .map(|r| format!(" (revision {r})"))
            .unwrap_or_default();
        let cause = self
            .error
            .as_ref()
            .map_or("unknown failure", |e| e.message.as_str());
        match self.outcome {
            Outcome::RolledBack => format!(
                "deploy of {}{revision} failed and was rolled back to revision {}: {cause}",
                self.environment,
                self.rolled_back_to.unwrap_or_default()
            ),
            Outcome::RollbackFailed => format!(
                "deploy of {}{revision} failed: {cause}\nrollback to revision {} failed too: {}",
                self.environment,
                self.rolled_back_to.unwrap_or_default(),
                self.rollback_error
                    .as_ref()
                    .map_or("unknown failure", |e| e.message.as_str())
            ),
            _ => format!(
                "deploy of {}{revision} failed: {cause}{}",
                self.environment,
                self.rollback_note
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
        }
    }
}
