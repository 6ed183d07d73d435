//! Progress of the local stack per service on stderr, and `ps` / `up` results on stdout.

use super::{OutputFormat, Ui};
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
