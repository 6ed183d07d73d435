//! A canary's evidence: each step with every measurement's values, thresholds and
//! verdicts, as the deploy report shows it and its revision records it (the same shape in
//! both, so `wactl history --output json` reads as the deploy's report did).

use crate::config::model::Bound;
use serde::{Deserialize, Serialize};

/// How a measurement (or one metric of it) came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Passed,
    Failed,
    /// No data, or Prometheus did not answer: counted against `inconclusiveLimit`.
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Inconclusive => "inconclusive",
        }
    }
}

/// One metric of one measurement: both tracks' values over the same window, and the bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    pub name: String,
    pub canary: Option<f64>,
    /// The stable pods' value (baseline), when the analysis compares.
    pub stable: Option<f64>,
    pub bound: Bound,
    pub verdict: Verdict,
    /// Why it failed or was inconclusive.
    pub reason: Option<String>,
}

/// Every metric read once, at `elapsed_seconds` into step `step` (1-based).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub step: usize,
    pub elapsed_seconds: u64,
    pub verdict: Verdict,
    pub metrics: Vec<MetricValue>,
    /// For a measurement without metrics: why (the canary's pods not scraped yet).
    pub reason: Option<String>,
}

/// One step as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub step: usize,
    pub weight: u32,
    pub canary_replicas: u32,
    pub stable_replicas: u32,
    pub verdict: Verdict,
    pub measurements: Vec<Measurement>,
}

/// What the canary did, in the deploy report: each step with its evidence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CanaryReport {
    /// Why no canary ran (the first deploy, or the pods do not change).
    pub skipped: Option<String>,
    /// The objects of a canary that an earlier, killed deploy left behind, removed under
    /// the lock before anything else (also when nothing else changes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leftover_removed: Vec<String>,
    #[serde(default)]
    pub steps: Vec<StepReport>,
}

impl CanaryReport {
    /// One line of evidence per step, for the revision's message.
    pub fn evidence(&self) -> String {
        self.steps
            .iter()
            .map(|s| {
                let passed = s
                    .measurements
                    .iter()
                    .filter(|m| m.verdict == Verdict::Passed)
                    .count();
                format!(
                    "step {} ({}%, {} canary / {} stable pods): {}, {passed}/{} measurements passed",
                    s.step,
                    s.weight,
                    s.canary_replicas,
                    s.stable_replicas,
                    s.verdict.as_str(),
                    s.measurements.len()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}
