//! The one report a deploy produces: stages with durations, revision, digests, outcome and
//! stable error codes (`--output json` prints it as is).

use crate::cluster::{Change, Plan};
use crate::config::Environment;
use serde::Serialize;
use std::collections::BTreeMap;
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

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub name: &'static str,
    /// `ok`, `failed` or `skipped`.
    pub status: &'static str,
    pub duration_ms: u64,
    pub detail: String,
}

impl StageReport {
    pub fn new(name: &'static str, duration: Duration, ok: bool, detail: String) -> Self {
        Self {
            name,
            status: if ok { "ok" } else { "failed" },
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            detail,
        }
    }

    pub fn skipped(name: &'static str, detail: &str) -> Self {
        Self {
            name,
            status: "skipped",
            duration_ms: 0,
            detail: detail.to_owned(),
        }
    }
}

/// A stable `code` (`image_pull`, `crash_loop`, `config_error`, `unschedulable`,
/// `readiness_timeout`, `progress_deadline_exceeded`, `conflict`, `apply_failed`,
/// `prune_failed`) and the full message.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorReport {
    pub code: String,
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
