//! Smoke results: a table on stdout (check, result, status, latency), the failing answers
//! on stderr, or the whole report as JSON.

use super::{OutputFormat, Ui};
use crate::smoke::{Outcome, SmokeReport};

impl Ui {
    /// Prints a smoke report in the chosen output format.
    pub fn smoke_report(&self, report: &SmokeReport) {
        if self.format == OutputFormat::Json {
            self.json(&serde_json::to_value(report).unwrap_or_default());
            return;
        }
        println!("{}", smoke_table(report, self.color));
        for failed in report.failed() {
            let Some(failure) = &failed.failure else {
                continue;
            };
            eprintln!("{}: {}", failed.name, failure.reason);
            eprintln!("  request: {}", failed.request);
            if let Some(status) = failed.status {
                eprintln!("  status:  {status}");
            }
            if let Some(body) = failure.body.as_deref().filter(|b| !b.is_empty()) {
                for line in body.lines() {
                    eprintln!("  | {line}");
                }
            }
        }
    }
}

/// The report as an aligned text table.
pub fn smoke_table(report: &SmokeReport, color: bool) -> String {
    let rows: Vec<[String; 4]> = report
        .checks
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                match c.outcome {
                    Outcome::Passed => "ok",
                    Outcome::Failed => "FAILED",
                    Outcome::Skipped => "skipped",
                }
                .to_owned(),
                c.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                format!("{} ms", c.latency_ms),
            ]
        })
        .collect();
    let header = ["CHECK", "RESULT", "STATUS", "LATENCY"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (i, row) in std::iter::once(&header).chain(&rows).enumerate() {
        let mut line = String::new();
        for (j, (cell, w)) in row.iter().zip(widths).enumerate() {
            let padded = if j == 3 {
                format!("{cell:>w$}")
            } else {
                format!("{cell:<w$}")
            };
            let painted = match (color, i > 0 && j == 1, cell.as_str()) {
                (true, true, "ok") => format!("\x1b[32m{padded}\x1b[0m"),
                (true, true, "FAILED") => format!("\x1b[31m{padded}\x1b[0m"),
                _ => padded,
            };
            line.push_str(&painted);
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for c in &report.checks {
        if let Some(waited) = c.waited_for_rate_limit_ms {
            out.push_str(&format!(
                "{}: waited {waited} ms for the rate limit (429 answers) before its request\n",
                c.name
            ));
        }
    }
    let failed = report.failed().count();
    out.push_str(&if failed == 0 {
        format!(
            "{} checks passed against {} in {} ms",
            report.checks.len(),
            report.base_url,
            report.elapsed_ms
        )
    } else {
        format!(
            "{failed} of {} checks failed against {}",
            report.checks.len(),
            report.base_url
        )
    });
    out
}
