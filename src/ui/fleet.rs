//! Output of a deploy to several clusters: one live line per cluster on a terminal, lines
//! prefixed `[cluster]` otherwise (CI logs), and the fleet report on stdout at the end.
//! Events of no cluster (the shared build) and questions go to the single-cluster output.

use super::deploy::DeployUi;
use super::{OutputFormat, Ui};
use crate::deploy::fleet::{ClusterOutcome, FleetReport};
use crate::deploy::{
    Confirmation, Decision, DeployEvent, DeployObserver, EventKind, StageReport, StageStatus,
};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;

pub struct FleetUi {
    single: DeployUi,
    format: OutputFormat,
    quiet: bool,
    color: bool,
    /// A terminal: one redrawn line per cluster instead of a log.
    live: Option<MultiProgress>,
    lines: Mutex<BTreeMap<String, ProgressBar>>,
}

fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

impl FleetUi {
    pub fn new(ui: &Ui, assume_yes: bool, no_color: bool) -> Self {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        let quiet = ui.is_quiet();
        let live = (!ci && !quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            single: DeployUi::new(ui, assume_yes, no_color),
            format: ui.format,
            quiet,
            color: super::colour(&std::io::stderr(), no_color),
            live,
            lines: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether a confirmation can be answered (see [`DeployUi::can_answer`]).
    pub fn can_answer(&self) -> bool {
        self.single.can_answer()
    }

    fn mark(&self, status: StageStatus) -> String {
        match status {
            StageStatus::Ok => paint(self.color, "32", "✓"),
            StageStatus::Failed => paint(self.color, "31", "✗"),
            StageStatus::Skipped => paint(self.color, "2", "-"),
        }
    }

    fn stage_line(&self, stage: &StageReport) -> String {
        let time = if stage.status == StageStatus::Skipped {
            String::new()
        } else {
            format!(" ({} ms)", stage.duration_ms)
        };
        let first = stage.detail.lines().next().unwrap_or_default();
        format!("{} {}{time}: {first}", self.mark(stage.status), stage.name)
    }

    /// One line about `cluster`: its live line on a terminal (and, when it matters, a
    /// permanent line above), else a `[cluster]` line on stderr.
    fn say(&self, cluster: &str, line: &str, keep: bool) {
        if self.quiet {
            return;
        }
        let Some(live) = &self.live else {
            eprintln!("[{cluster}] {line}");
            return;
        };
        if let Ok(mut lines) = self.lines.lock() {
            let bar = lines.entry(cluster.to_owned()).or_insert_with(|| {
                let bar = live.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} [{prefix}] {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(cluster.to_owned());
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar
            });
            bar.set_message(line.to_owned());
            if keep {
                let _ = live.println(format!("[{cluster}] {line}"));
            }
        }
    }

    fn finish_line(&self, cluster: &str, line: String) {
        if let Ok(lines) = self.lines.lock()
            && let Some(bar) = lines.get(cluster)
        {
            bar.finish_with_message(line);
        }
    }

    fn cluster_event(&self, cluster: &str, kind: &EventKind) {
        match kind {
            EventKind::StageStarted(stage) => self.say(cluster, &format!("{stage}…"), false),
            EventKind::StageFinished(stage) => self.say(
                cluster,
                &self.stage_line(stage),
                stage.status == StageStatus::Failed,
            ),
            EventKind::Rollout(e) => self.say(cluster, &format!("  {e}"), false),
            EventKind::Note(message) => self.say(cluster, message, true),
            EventKind::RollingBack { to } => self.say(
                cluster,
                &paint(self.color, "33", &format!("rolling back to revision {to}")),
                true,
            ),
            EventKind::Finished(report) => {
                let revision = report
                    .revision
                    .map(|r| format!(", revision {r}"))
                    .unwrap_or_default();
                let line = format!("{}{revision}", report.outcome);
                self.say(cluster, &line, self.live.is_none());
                self.finish_line(cluster, line);
            }
            _ => {}
        }
    }

    /// The fleet report on stdout: JSON with `--output json`, else a row per cluster.
    pub fn report(&self, report: &FleetReport) {
        if let Ok(lines) = self.lines.lock() {
            for bar in lines.values().filter(|b| !b.is_finished()) {
                bar.finish();
            }
        }
        if self.format == OutputFormat::Json {
            println!(
                "{}",
                serde_json::to_string_pretty(report).unwrap_or_default()
            );
            return;
        }
        println!(
            "{}: {} in {} clusters ({})",
            report.environment,
            report.outcome,
            report.clusters.len(),
            report.image
        );
        for c in &report.clusters {
            let revision = match (c.revision, c.rolled_back_to) {
                (_, Some(to)) => format!("revision {to} (rolled back)"),
                (Some(r), None) => format!("revision {r}"),
                (None, None) => "-".to_owned(),
            };
            let error = match (&c.error, c.outcome) {
                (Some(e), o) if o != ClusterOutcome::Succeeded => {
                    format!("  {}", e.lines().next().unwrap_or_default())
                }
                _ => String::new(),
            };
            println!(
                "  {:<12} wave {:<2} {:<16} {revision}{error}",
                c.name, c.wave, c.outcome
            );
        }
    }
}

impl DeployObserver for FleetUi {
    fn event(&self, event: &DeployEvent) {
        match (&event.cluster, &event.kind) {
            (_, EventKind::FleetFinished(report)) => self.report(report),
            (None, EventKind::WaveStarted { wave, clusters }) => {
                if !self.quiet {
                    let line = format!("wave {wave}: {}", clusters.join(", "));
                    match &self.live {
                        Some(live) => {
                            let _ = live.println(line);
                        }
                        None => eprintln!("{line}"),
                    }
                }
            }
            (Some(cluster), kind) => self.cluster_event(cluster, kind),
            (None, _) => self.single.event(event),
        }
    }

    fn confirm(&self, question: &Confirmation) -> Decision {
        // A prompt under redrawn lines would be overwritten: hide them while asking.
        match &self.live {
            Some(live) => live.suspend(|| self.single.confirm(question)),
            None => self.single.confirm(question),
        }
    }
}
