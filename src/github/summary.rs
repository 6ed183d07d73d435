//! What a deploy reports to people: stages, plan, rollout, smoke results, as Markdown.
//!
//! `DeploySummary` is plain data filled in from the deploy's events as they come
//! ([`DeploySummary::record`]); rendering it is pure, so the same Markdown serves the Actions
//! step summary and pull-request comments.

use crate::deploy::{DeployEvent, DeployReport, EventKind, StageStatus};
use std::time::Duration;

/// How a deploy ended: the deploy report's own outcome, spelled the same in the step
/// outputs, the summary and `--output json`.
pub use crate::deploy::Outcome;

fn headline(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Running => "⏳ running",
        Outcome::Succeeded => "✅ deployed",
        Outcome::Unchanged => "✅ nothing to change",
        Outcome::RolledBack => "⚠️ failed and rolled back",
        Outcome::Failed => "❌ failed",
        Outcome::RollbackFailed => "❌ failed, and the rollback failed too",
    }
}

/// One pipeline stage and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageTiming {
    /// `build`, `render`, `plan`, `apply`, `track`, `prune`, `smoke`, `rollback apply`, …
    pub name: String,
    pub duration: Duration,
    pub ok: bool,
}

/// What the plan does to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectAction {
    Create,
    Update,
    Delete,
    Unchanged,
}

impl ObjectAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectAction::Create => "create",
            ObjectAction::Update => "update",
            ObjectAction::Delete => "delete",
            ObjectAction::Unchanged => "unchanged",
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            ObjectAction::Create => "+",
            ObjectAction::Update => "~",
            ObjectAction::Delete => "-",
            ObjectAction::Unchanged => "=",
        }
    }
}

/// One Kubernetes object in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedObject {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub action: ObjectAction,
}

/// Rollout state of one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutRow {
    /// `Deployment/address-service`.
    pub workload: String,
    pub desired: u32,
    pub updated: u32,
    pub ready: u32,
    pub available: u32,
    /// `complete`, `progress deadline exceeded`, …
    pub status: String,
}

/// Result of one smoke check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeRow {
    pub name: String,
    /// `GET /healthz`.
    pub request: String,
    /// HTTP status received, `None` when no answer came.
    pub status: Option<u16>,
    pub latency: Duration,
    pub passed: bool,
    /// Why it failed.
    pub detail: Option<String>,
}

/// Everything a deploy reports, filled in by the deploy pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploySummary {
    /// wactl environment name.
    pub environment: String,
    pub outcome: Outcome,
    /// Image reference deployed (`registry/repo:tag`).
    pub image: Option<String>,
    /// Image digest (`sha256:…`).
    pub digest: Option<String>,
    /// Recorded revision number.
    pub revision: Option<u64>,
    /// Environment URL.
    pub url: Option<String>,
    pub stages: Vec<StageTiming>,
    pub objects: Vec<PlannedObject>,
    pub rollout: Vec<RolloutRow>,
    pub smoke: Vec<SmokeRow>,
    /// The error chain when the deploy failed.
    pub failure: Option<String>,
    /// `rollout.strategy: canary`: each step and each measurement, one line each.
    pub canary: Vec<String>,
}

impl DeploySummary {
    /// An empty summary for `environment`; the pipeline fills in the rest.
    pub fn new(environment: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            environment: environment.into(),
            outcome,
            image: None,
            digest: None,
            revision: None,
            url: None,
            stages: Vec::new(),
            objects: Vec::new(),
            rollout: Vec::new(),
            smoke: Vec::new(),
            failure: None,
            canary: Vec::new(),
        }
    }

    /// Takes in one event of the deploy: the plan, each workload's rollout, each smoke
    /// check, each stage, and at the end the report (outcome, image, revision, failure).
    pub fn record(&mut self, event: &DeployEvent) {
        match &event.kind {
            EventKind::Planned(plan) => self.objects = planned_objects(plan),
            EventKind::Rollout(progress) => {
                let row = RolloutRow {
                    workload: progress.workload.clone(),
                    desired: count(progress.desired),
                    updated: count(progress.updated),
                    ready: count(progress.ready),
                    // The tracker counts a workload's pods ready once they are available.
                    available: count(progress.ready),
                    status: if progress.done {
                        "complete".to_owned()
                    } else if progress.note.is_empty() {
                        "progressing".to_owned()
                    } else {
                        progress.note.clone()
                    },
                };
                match self.rollout.iter_mut().find(|r| r.workload == row.workload) {
                    Some(existing) => *existing = row,
                    None => self.rollout.push(row),
                }
            }
            EventKind::Smoke(report) => {
                self.smoke = report
                    .checks
                    .iter()
                    .map(|c| SmokeRow {
                        name: c.name.clone(),
                        request: c.request.clone(),
                        status: c.status,
                        latency: Duration::from_millis(c.latency_ms),
                        passed: c.outcome == crate::smoke::Outcome::Passed,
                        detail: c.failure.as_ref().map(|f| f.reason.clone()),
                    })
                    .collect();
            }
            EventKind::StageFinished(stage) if stage.status != StageStatus::Skipped => {
                self.stages.push(StageTiming {
                    name: stage.name.to_string(),
                    duration: Duration::from_millis(stage.duration_ms),
                    ok: stage.status == StageStatus::Ok,
                });
            }
            EventKind::Finished(report) => self.finish(report),
            EventKind::CanaryStep {
                step,
                of,
                weight,
                canary_replicas,
                stable_replicas,
            } => self.canary.push(format!(
                "step {step}/{of}: {weight}% ({canary_replicas} canary pod(s) next to {stable_replicas} stable)"
            )),
            EventKind::CanaryMeasurement(m) => {
                let mark = match m.verdict {
                    crate::deploy::canary::Verdict::Passed => "✅",
                    crate::deploy::canary::Verdict::Failed => "❌",
                    crate::deploy::canary::Verdict::Inconclusive => "❔",
                };
                self.canary.push(format!(
                    "{mark} {}",
                    crate::deploy::canary::measurement_line(m)
                ));
            }
            _ => {}
        }
    }

    /// Outcome, image, digest, revision and failure from the deploy's final report.
    fn finish(&mut self, report: &DeployReport) {
        let image = Some(report.image.clone()).filter(|i| !i.is_empty());
        self.digest = report
            .digests
            .iter()
            .find(|(name, _)| {
                image
                    .as_deref()
                    .is_some_and(|i| i.starts_with(name.as_str()))
            })
            .or_else(|| report.digests.iter().next())
            .map(|(_, digest)| digest.clone());
        self.image = image;
        self.revision = report.revision.map(u64::from);
        self.outcome = report.outcome;
        self.failure = matches!(
            report.outcome,
            Outcome::RolledBack | Outcome::Failed | Outcome::RollbackFailed | Outcome::Running
        )
        .then(|| report.error_text());
    }

    /// Step outputs: `image`, `digest`, `revision`, `url`, `outcome` (empty when unknown).
    pub fn outputs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("image", self.image.clone().unwrap_or_default()),
            ("digest", self.digest.clone().unwrap_or_default()),
            (
                "revision",
                self.revision.map(|r| r.to_string()).unwrap_or_default(),
            ),
            ("url", self.url.clone().unwrap_or_default()),
            ("outcome", self.outcome.as_str().to_owned()),
        ]
    }

    /// The Markdown shown on the workflow run page.
    pub fn to_markdown(&self) -> String {
        let mut md = format!(
            "## wactl deploy `{}`: {}\n\n",
            code(&self.environment),
            headline(self.outcome)
        );
        let mut facts = Vec::new();
        if let Some(image) = &self.image {
            facts.push(format!("| image | `{}` |", cell(&code(image))));
        }
        if let Some(digest) = &self.digest {
            facts.push(format!("| digest | `{}` |", cell(&code(digest))));
        }
        if let Some(revision) = self.revision {
            facts.push(format!("| revision | {revision} |"));
        }
        if let Some(url) = &self.url {
            facts.push(format!("| url | {} |", cell(url)));
        }
        if !facts.is_empty() {
            md.push_str("| | |\n| --- | --- |\n");
            for fact in facts {
                md.push_str(&fact);
                md.push('\n');
            }
            md.push('\n');
        }
        if let Some(failure) = &self.failure {
            md.push_str("### Failure\n\n```text\n");
            md.push_str(&failure.replace("```", "'''"));
            md.push_str("\n```\n\n");
        }
        if !self.stages.is_empty() {
            md.push_str("### Stages\n\n| stage | result | duration |\n| --- | --- | ---: |\n");
            for stage in &self.stages {
                md.push_str(&format!(
                    "| {} | {} | {} |\n",
                    cell(&stage.name),
                    if stage.ok { "✅" } else { "❌" },
                    seconds(stage.duration)
                ));
            }
            md.push('\n');
        }
        if !self.canary.is_empty() {
            md.push_str("### Canary\n\n");
            for line in &self.canary {
                md.push_str(&format!("- {}\n", line.replace('|', "\\|")));
            }
            md.push('\n');
        }
        if !self.objects.is_empty() {
            md.push_str("### Plan\n\n");
            md.push_str(&plan_table(&self.objects));
            md.push('\n');
        }
        if !self.rollout.is_empty() {
            md.push_str("### Rollout\n\n| workload | desired | updated | ready | available | status |\n| --- | ---: | ---: | ---: | ---: | --- |\n");
            for row in &self.rollout {
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    cell(&row.workload),
                    row.desired,
                    row.updated,
                    row.ready,
                    row.available,
                    cell(&row.status)
                ));
            }
            md.push('\n');
        }
        if !self.smoke.is_empty() {
            let passed = self.smoke.iter().filter(|s| s.passed).count();
            md.push_str(&format!(
                "### Smoke tests: {passed}/{} passed\n\n| check | request | status | latency | result |\n| --- | --- | ---: | ---: | --- |\n",
                self.smoke.len()
            ));
            for row in &self.smoke {
                let result = match (&row.detail, row.passed) {
                    (_, true) => "✅".to_owned(),
                    (Some(detail), false) => format!("❌ {}", cell(detail)),
                    (None, false) => "❌".to_owned(),
                };
                md.push_str(&format!(
                    "| {} | `{}` | {} | {} ms | {result} |\n",
                    cell(&row.name),
                    cell(&code(&row.request)),
                    row.status.map(|s| s.to_string()).unwrap_or("—".into()),
                    row.latency.as_millis()
                ));
            }
            md.push('\n');
        }
        md
    }
}

/// A Markdown table of the plan, with a count line: `2 to create, 1 to update, …`.
pub fn plan_table(objects: &[PlannedObject]) -> String {
    let count = |action| objects.iter().filter(|o| o.action == action).count();
    let mut md = format!(
        "{} to create, {} to update, {} to delete, {} unchanged\n\n| | action | kind | name | namespace |\n| --- | --- | --- | --- | --- |\n",
        count(ObjectAction::Create),
        count(ObjectAction::Update),
        count(ObjectAction::Delete),
        count(ObjectAction::Unchanged),
    );
    for object in objects {
        md.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            object.action.symbol(),
            object.action.as_str(),
            cell(&object.kind),
            cell(&object.name),
            object.namespace.as_deref().map(cell).unwrap_or_default()
        ));
    }
    md
}

/// GitHub rejects comments over 65,536 characters; the plan table and framing fit in the rest.
const COMMENT_DIFF_LIMIT: usize = 60_000;

/// The pull-request comment for `wactl diff ENV --comment-pr N`: the plan table and, when
/// given, the diff folded into a `<details>` block. `Reporter::upsert_pr_comment` adds the
/// marker that later runs find it by.
pub fn plan_comment(environment: &str, objects: &[PlannedObject], diff: Option<&str>) -> String {
    let changes = objects
        .iter()
        .filter(|o| o.action != ObjectAction::Unchanged)
        .count();
    let mut md = format!("## wactl plan for `{}`\n\n", code(environment));
    if changes == 0 {
        md.push_str("No changes: the cluster matches this branch.\n\n");
    }
    if !objects.is_empty() {
        md.push_str(&plan_table(objects));
        md.push('\n');
    }
    if let Some(diff) = diff.filter(|d| !d.trim().is_empty()) {
        let (diff, truncated) = match diff.char_indices().nth(COMMENT_DIFF_LIMIT) {
            Some((cut, _)) => (&diff[..cut], true),
            None => (diff, false),
        };
        // A fence longer than any backtick run inside the diff cannot be closed by it.
        let longest = diff.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        md.push_str(&format!(
            "<details><summary>Diff</summary>\n\n{fence}diff\n{}\n{fence}\n",
            diff.trim_end_matches('\n')
        ));
        if truncated {
            md.push_str(&format!(
                "\n(diff truncated: run `wactl diff {}` for all of it)\n",
                code(environment)
            ));
        }
        md.push_str("\n</details>\n");
    }
    md
}

/// The lines a PR plan comment gets when the plan was saved: its hash (what the deploy
/// workflow applies, and checks), when and by which wactl it was made, and the image.
pub fn saved_plan_markdown(saved: &crate::deploy::plan_file::SavedPlan) -> String {
    format!(
        "\nSaved plan `{}`: made {} by wactl {} for image `{}`. Deploying applies exactly this \
         plan (`wactl deploy {} --plan`) and refuses it when anything it was made from has \
         changed since.\n",
        code(&saved.hash()),
        code(&saved.created_at),
        code(&saved.wactl_version),
        code(&saved.image),
        code(&saved.environment),
    )
}

/// The deploy engine's report as a summary: stages (skipped ones left out), image, digest,
/// revision, outcome and failure; `url` is the definition's smoke URL. A summary recorded
/// from the events ([`DeploySummary::record`]) has the rollout and smoke rows too.
pub fn from_report(
    env: &crate::config::Environment,
    report: &DeployReport,
    plan: Option<&crate::cluster::Plan>,
) -> DeploySummary {
    let mut summary = DeploySummary {
        url: env.smoke.url.clone(),
        objects: plan.map(planned_objects).unwrap_or_default(),
        ..DeploySummary::new(&report.environment, report.outcome)
    };
    for stage in &report.stages {
        summary.record(&DeployEvent {
            environment: report.environment.clone(),
            cluster: None,
            kind: EventKind::StageFinished(stage.clone()),
        });
    }
    summary.finish(report);
    summary
}

/// A count from the cluster (never negative) as a table number.
fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// A cluster plan's objects as summary rows.
pub fn planned_objects(plan: &crate::cluster::Plan) -> Vec<PlannedObject> {
    use crate::cluster::Change;
    plan.objects
        .iter()
        .map(|o| PlannedObject {
            kind: o.object.kind.clone(),
            name: o.object.name.clone(),
            namespace: o.object.namespace.clone(),
            action: match o.change {
                Change::Create => ObjectAction::Create,
                Change::Update => ObjectAction::Update,
                Change::Delete => ObjectAction::Delete,
                Change::Unchanged => ObjectAction::Unchanged,
            },
        })
        .collect()
}

/// The `wactl diff ENV --comment-pr N` comment for a cluster plan: table and every
/// object's diff (Secret values are already redacted by the plan).
pub fn plan_markdown(environment: &str, plan: &crate::cluster::Plan) -> String {
    let diff: String = plan
        .objects
        .iter()
        .map(|o| o.diff.as_str())
        .filter(|d| !d.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    plan_comment(environment, &planned_objects(plan), Some(&diff))
}

/// Table cells: a `|` would end the cell and a line break would end the table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Inline code cannot hold a backtick.
fn code(text: &str) -> String {
    text.replace('`', "'")
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canary_steps_and_measurements_are_listed() {
        use crate::config::model::Bound;
        use crate::deploy::canary::{Measurement, MetricValue, Verdict};
        let mut summary = DeploySummary::new("staging", Outcome::Running);
        let event = |kind| DeployEvent {
            environment: "staging".into(),
            cluster: None,
            kind,
        };
        summary.record(&event(EventKind::CanaryStep {
            step: 1,
            of: 2,
            weight: 25,
            canary_replicas: 1,
            stable_replicas: 3,
        }));
        summary.record(&event(EventKind::CanaryMeasurement(Measurement {
            step: 1,
            elapsed_seconds: 10,
            verdict: Verdict::Failed,
            metrics: vec![MetricValue {
                name: "success-rate".into(),
                canary: Some(0.0),
                stable: Some(1.0),
                bound: Bound::Min(0.95),
                verdict: Verdict::Failed,
                reason: None,
            }],
            reason: None,
        })));
        let md = summary.to_markdown();
        assert!(
            md.contains("### Canary\n\n- step 1/2: 25% (1 canary pod(s) next to 3 stable)\n"),
            "{md}"
        );
        assert!(
            md.contains(
                "- ❌ step 1 +10s: failed: success-rate 0.0000 (stable 1.0000) min 0.95 failed\n"
            ),
            "{md}"
        );
    }

    fn example() -> DeploySummary {
        DeploySummary {
            image: Some("127.0.0.1:5000/address-service:1a2b3c".into()),
            digest: Some("sha256:abc123".into()),
            revision: Some(7),
            url: Some("https://staging.example.org".into()),
            stages: vec![
                StageTiming {
                    name: "build".into(),
                    duration: Duration::from_millis(12_345),
                    ok: true,
                },
                StageTiming {
                    name: "smoke".into(),
                    duration: Duration::from_millis(800),
                    ok: false,
                },
            ],
            objects: vec![
                PlannedObject {
                    kind: "Deployment".into(),
                    name: "address-service".into(),
                    namespace: Some("wa-staging".into()),
                    action: ObjectAction::Update,
                },
                PlannedObject {
                    kind: "ConfigMap".into(),
                    name: "a|b".into(),
                    namespace: Some("wa-staging".into()),
                    action: ObjectAction::Create,
                },
            ],
            rollout: vec![RolloutRow {
                workload: "Deployment/address-service".into(),
                desired: 3,
                updated: 3,
                ready: 2,
                available: 2,
                status: "progressing".into(),
            }],
            smoke: vec![
                SmokeRow {
                    name: "health".into(),
                    request: "GET /healthz".into(),
                    status: Some(200),
                    latency: Duration::from_millis(4),
                    passed: true,
                    detail: None,
                },
                SmokeRow {
                    name: "validate".into(),
                    request: "POST /v1/addresses/validate".into(),
                    status: None,
                    latency: Duration::from_millis(5000),
                    passed: false,
                    detail: Some("timed out\nafter 5s".into()),
                },
            ],
            failure: Some("smoke check `validate` failed".into()),
            ..DeploySummary::new("staging", Outcome::RolledBack)
        }
    }

    #[test]
    fn markdown_has_every_section() {
        let md = example().to_markdown();
        assert!(md.starts_with("## wactl deploy `staging`: ⚠️ failed and rolled back\n"));
        assert!(md.contains("| image | `127.0.0.1:5000/address-service:1a2b3c` |"));
        assert!(md.contains("| digest | `sha256:abc123` |"));
        assert!(md.contains("| revision | 7 |"));
        assert!(md.contains("| build | ✅ | 12.3 s |"));
        assert!(md.contains("| smoke | ❌ | 0.8 s |"));
        assert!(md.contains("1 to create, 1 to update, 0 to delete, 0 unchanged"));
        assert!(md.contains("| `~` | update | Deployment | address-service | wa-staging |"));
        assert!(md.contains("| `+` | create | ConfigMap | a\\|b | wa-staging |"));
        assert!(md.contains("| Deployment/address-service | 3 | 3 | 2 | 2 | progressing |"));
        assert!(md.contains("### Smoke tests: 1/2 passed"));
        assert!(md.contains(
            "| validate | `POST /v1/addresses/validate` | — | 5000 ms | ❌ timed out after 5s |"
        ));
        assert!(md.contains("```text\nsmoke check `validate` failed\n```"));
    }

    #[test]
    fn plan_comment_folds_the_diff_in_a_safe_fence() {
        let objects = example().objects;
        let md = plan_comment(
            "staging",
            &objects,
            Some("-replicas: 2\n+replicas: 3\n``` not a fence\n"),
        );
        assert!(md.starts_with("## wactl plan for `staging`\n\n1 to create, 1 to update"));
        assert!(md.contains("<details><summary>Diff</summary>\n\n````diff\n-replicas: 2\n+replicas: 3\n``` not a fence\n````\n"));
        assert!(md.ends_with("</details>\n"));

        let unchanged = plan_comment("dev", &[], None);
        assert_eq!(
            unchanged,
            "## wactl plan for `dev`\n\nNo changes: the cluster matches this branch.\n\n"
        );

        let huge = "+x\n".repeat(40_000);
        let md = plan_comment("dev", &[], Some(&huge));
        assert!(md.len() < 65_536);
        assert!(md.contains("(diff truncated: run `wactl diff dev` for all of it)"));
    }

    #[test]
    fn a_deploy_report_becomes_a_summary() {
        use crate::cluster::{Change, ObjectRef, Plan};
        let env = crate::config::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("environments"),
            "staging",
        )
        .expect("staging loads");
        let mut report = crate::deploy::DeployReport::new(&env);
        report.outcome = crate::deploy::Outcome::Succeeded;
        report.image = "ghcr.io/world-address/address-service@sha256:abc".into();
        report.digests.insert(
            "ghcr.io/world-address/address-service".into(),
            "sha256:abc".into(),
        );
        report.revision = Some(4);
        report.stages = vec![
            crate::deploy::StageReport::new(
                crate::deploy::Stage::Apply,
                Duration::from_millis(2500),
                true,
                String::new(),
            ),
            crate::deploy::StageReport::skipped(crate::deploy::Stage::Smoke, "--no-smoke"),
        ];
        let plan = Plan {
            objects: vec![crate::cluster::PlannedObject {
                object: ObjectRef {
                    api_version: "apps/v1".into(),
                    kind: "Deployment".into(),
                    namespace: Some("world-address-staging".into()),
                    name: "address-service".into(),
                },
                change: Change::Update,
                diff: "-  replicas: 2\n+  replicas: 3\n".into(),
            }],
        };
        let summary = from_report(&env, &report, Some(&plan));
        assert_eq!(summary.outcome, Outcome::Succeeded);
        assert_eq!(summary.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(summary.revision, Some(4));
        assert_eq!(summary.url, env.smoke.url);
        assert_eq!(summary.stages.len(), 1, "skipped stages are left out");
        assert_eq!(summary.objects[0].action, ObjectAction::Update);
        assert_eq!(summary.failure, None);

        let comment = plan_markdown("staging", &plan);
        assert!(comment.contains("0 to create, 1 to update, 0 to delete, 0 unchanged"));
        assert!(comment.contains("```diff\n-  replicas: 2\n+  replicas: 3\n```"));

        report.outcome = crate::deploy::Outcome::RollbackFailed;
        let failed = from_report(&env, &report, None);
        assert_eq!(failed.outcome.as_str(), "rollback_failed");
        assert!(failed.failure.is_some());
    }

    #[test]
    fn empty_sections_are_left_out() {
        let md = DeploySummary::new("dev", Outcome::Unchanged).to_markdown();
        assert_eq!(md, "## wactl deploy `dev`: ✅ nothing to change\n\n");
    }

    #[test]
    fn outputs_name_every_field() {
        let outputs = example().outputs();
        let names: Vec<&str> = outputs.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["image", "digest", "revision", "url", "outcome"]);
        assert_eq!(outputs[2].1, "7");
        assert_eq!(outputs[4].1, "rolled_back");
        let empty = DeploySummary::new("dev", Outcome::Succeeded).outputs();
        assert_eq!(empty[0].1, "");
    }
}
