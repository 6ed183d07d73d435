//! Progress of the local stack per service on stderr, and `ps` / `up` results on stdout.

use super::{OutputFormat, Ui};
use crate::local::watch::{CycleStep, WatchEvent, WatchObserver};
use crate::local::{ContainerStatus, Phase, UpProgress, UpReport};

impl UpProgress for Ui {
    fn service(&self, service: &str, phase: &Phase) {
        if self.quiet {
            return;
        }
        let text = match phase {
            Phase::Building => "building".to_owned(),
            Phase::Built(image) => format!("built {image}"),
            Phase::Unchanged => "unchanged".to_owned(),
            Phase::Creating => "creating".to_owned(),
            Phase::Recreating => "configuration changed, recreating".to_owned(),
            Phase::Starting => "starting".to_owned(),
            Phase::WaitingForHealth => "waiting for health".to_owned(),
            Phase::Healthy(ms) => format!("healthy ({:.1}s)", *ms as f64 / 1000.0),
            Phase::Running => "running".to_owned(),
            Phase::Failed(reason) => format!("FAILED: {reason}"),
            Phase::Removed => "removed (no longer in the definition)".to_owned(),
        };
        let (on, off) = match (self.color, phase) {
            (true, Phase::Healthy(_) | Phase::Running | Phase::Unchanged) => {
                ("\x1b[32m", "\x1b[0m")
            }
            (true, Phase::Failed(_)) => ("\x1b[31m", "\x1b[0m"),
            _ => ("", ""),
        };
        eprintln!("  {service:<16} {on}{text}{off}");
    }
}

impl Ui {
    /// The result of `up`: the URLs on stdout (no credentials in them).
    pub fn up_report(&self, report: &UpReport) {
        if self.format == OutputFormat::Json {
            self.json(&serde_json::to_value(report).unwrap_or_default());
            return;
        }
        for (service, url) in &report.urls {
            println!("{service:<16} {url}");
        }
    }

    /// `ps` as a table, or JSON.
    pub fn local_ps(&self, containers: &[ContainerStatus]) {
        if self.format == OutputFormat::Json {
            self.json(&serde_json::to_value(containers).unwrap_or_default());
            return;
        }
        let rows: Vec<[String; 4]> = containers
            .iter()
            .map(|c| {
                [
                    c.service.clone(),
                    c.name.clone(),
                    c.status.clone(),
                    c.ports.join(", "),
                ]
            })
            .collect();
        let header = ["SERVICE", "CONTAINER", "STATUS", "PORTS"].map(str::to_owned);
        let mut widths = header.clone().map(|h| h.len());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            let line: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            println!("{}", line.join("  ").trim_end());
        }
    }
}

impl WatchObserver for Ui {
    fn watch(&self, event: &WatchEvent) {
        let seconds = |ms: u64| ms as f64 / 1000.0;
        match event {
            WatchEvent::Log { service, line } => {
                if !self.quiet {
                    eprintln!("{service:<16} | {line}");
                }
            }
            WatchEvent::Watching { context } => {
                if !self.quiet {
                    eprintln!("watching {} (Ctrl-C stops)", context.display());
                }
            }
            WatchEvent::ChangeSeen { cycle, paths, more } => {
                if !self.quiet {
                    let more = if *more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    };
                    eprintln!("cycle {cycle}: changed {}{more}", paths.join(", "));
                }
            }
            WatchEvent::CycleSucceeded {
                cycle,
                replaced,
                timings,
            } => {
                let replaced = if replaced.is_empty() {
                    "nothing replaced".to_owned()
                } else {
                    format!("replaced {}", replaced.join(", "))
                };
                let smoke = timings
                    .smoke_passed_ms
                    .map(|ms| format!(" → smoke passed {:.1}s", seconds(ms)))
                    .unwrap_or_default();
                self.success(&format!(
                    "cycle {cycle}: {replaced}; change seen → built {:.1}s → healthy {:.1}s{smoke}",
                    seconds(timings.built_ms),
                    seconds(timings.healthy_ms),
                ));
            }
            WatchEvent::CycleFailed {
                cycle,
                step,
                reason,
            } => {
                let (on, off) = if self.color {
                    ("\x1b[31m", "\x1b[0m")
                } else {
                    ("", "")
                };
                let state = match step {
                    CycleStep::Load | CycleStep::Build | CycleStep::Candidate => {
                        "nothing was replaced: the previous containers keep serving"
                    }
                    CycleStep::Converge | CycleStep::Smoke => {
                        "the stack is as this cycle left it (`wactl ps`)"
                    }
                };
                eprintln!(
                    "{on}cycle {cycle} failed at {step}{off}: {reason}\n{state}; waiting for the next change"
                );
            }
        }
    }
}
