//! A deploy to several clusters in GitHub Actions: one step summary with a row per
//! cluster, and the step outputs (`outcome`, `image`, `clusters` as JSON), written when the
//! fleet report comes. The per-cluster Deployments are posted by the caller through
//! [`super::Reporter`], one per cluster (GitHub environment `<environment>/<cluster>`).

use super::actions::Actions;
use super::api::State;
use crate::deploy::fleet::{ClusterOutcome, ClusterReport, FleetReport};
use crate::deploy::{DeployEvent, DeployObserver, EventKind};

/// Writes the fleet summary and outputs when the deploy's fleet report comes.
pub struct FleetStep {
    actions: Actions,
}

impl FleetStep {
    pub fn new(actions: Actions) -> Self {
        Self { actions }
    }
}

impl DeployObserver for FleetStep {
    fn event(&self, event: &DeployEvent) {
        let EventKind::FleetFinished(report) = &event.kind else {
            return;
        };
        let clusters = serde_json::to_string(&report.clusters_brief()).unwrap_or_default();
        let written = self
            .actions
            .append_summary(&fleet_markdown(report))
            .and_then(|()| {
                self.actions.outputs(&[
                    ("outcome", report.outcome.as_str()),
                    ("image", &report.image),
                    ("clusters", &clusters),
                ])
            });
        if let Err(error) = written {
            self.actions.annotate_warning(&format!(
                "could not write the job summary or outputs: {error}"
            ));
        }
    }
}

/// The step summary: a headline, then one row per cluster in wave order.
pub fn fleet_markdown(report: &FleetReport) -> String {
    let mut md = format!(
        "## wactl deploy `{}`: {} in {} clusters\n\n| | |\n| --- | --- |\n| image | `{}` |\n\n",
        report.environment.replace('`', "'"),
        report.outcome,
        report.clusters.len(),
        report.image.replace('`', "'"),
    );
    md.push_str("| cluster | wave | outcome | revision | rolled back to | detail |\n");
    md.push_str("| --- | --- | --- | --- | --- | --- |\n");
    for c in &report.clusters {
        let number = |n: Option<u32>| n.map_or("-".to_owned(), |n| n.to_string());
        let detail = match (&c.error, c.outcome) {
            (Some(e), _) => e.lines().next().unwrap_or_default().to_owned(),
            (None, _) => String::new(),
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            c.name,
            c.wave,
            c.outcome,
            number(c.revision),
            number(c.rolled_back_to),
            detail.replace('|', "\\|")
        ));
    }
    md
}

/// The Deployment status of one cluster's row, with its description.
pub fn cluster_status(row: &ClusterReport) -> (State, String) {
    let revision = row
        .revision
        .map(|r| format!(", revision {r}"))
        .unwrap_or_default();
    match row.outcome {
        ClusterOutcome::Succeeded | ClusterOutcome::Unchanged => {
            (State::Success, format!("{}{revision}", row.outcome))
        }
        // Never started: superseded rather than failed.
        ClusterOutcome::Skipped => (
            State::Inactive,
            row.error.clone().unwrap_or_else(|| "skipped".to_owned()),
        ),
        _ => (
            State::Failure,
            format!(
                "{}: {}",
                row.outcome,
                row.error.as_deref().unwrap_or("failed")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::OnFailure;
    use crate::deploy::Outcome;

    fn row(name: &str, outcome: ClusterOutcome, error: Option<&str>) -> ClusterReport {
        ClusterReport {
            name: name.into(),
            wave: 1,
            namespace: "wa".into(),
            outcome,
            revision: Some(3),
            rolled_back_to: (outcome == ClusterOutcome::RolledBack).then_some(2),
            error: error.map(str::to_owned),
            duration_ms: 5,
            deploy: None,
        }
    }

    #[test]
    fn a_row_per_cluster_and_a_status_each() {
        let report = FleetReport {
            environment: "production".into(),
            outcome: Outcome::RolledBack,
            image: "reg/app@sha256:ab".into(),
            on_failure: OnFailure::Stop,
            build: None,
            clusters: vec![
                row("eu-1", ClusterOutcome::Succeeded, None),
                row(
                    "us-1",
                    ClusterOutcome::RolledBack,
                    Some("crash | loop\nmore"),
                ),
                row("ap-1", ClusterOutcome::Skipped, Some("not started")),
            ],
            interrupted_by: None,
        };
        let md = fleet_markdown(&report);
        assert!(md.starts_with("## wactl deploy `production`: rolled_back in 3 clusters"));
        assert!(md.contains("| eu-1 | 1 | succeeded | 3 | - |  |\n"), "{md}");
        assert!(
            md.contains("| us-1 | 1 | rolled_back | 3 | 2 | crash \\| loop |\n"),
            "{md}"
        );
        assert!(md.contains("| ap-1 | 1 | skipped |"), "{md}");
        let states: Vec<State> = report
            .clusters
            .iter()
            .map(|c| cluster_status(c).0)
            .collect();
        assert_eq!(states, [State::Success, State::Failure, State::Inactive]);
        assert_eq!(
            cluster_status(&report.clusters[0]).1,
            "succeeded, revision 3"
        );
    }
}
