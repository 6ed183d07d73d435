//! Build progress and results: a spinner with the current step on a terminal, plain lines
//! in CI or without a terminal, one JSON event per line with `--output json`.

use super::{OutputFormat, Ui};
use crate::build::{BuildEvent, BuildProgress, BuiltImage};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

enum Mode {
    Spinner(ProgressBar),
    Lines,
    Json,
    Quiet,
}

/// Draws [`BuildEvent`]s on stderr (stdout stays for the result).
pub struct BuildReporter {
    mode: Mode,
    verbose: bool,
    /// Last push status per line, so repeated statuses are not printed again.
    last_status: Mutex<String>,
}

impl BuildReporter {
    pub fn new(ui: &Ui) -> Self {
        let mode = if ui.format == OutputFormat::Json {
            Mode::Json
        } else if ui.quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() && !ui.github_actions {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            Mode::Spinner(bar)
        } else {
            Mode::Lines
        };
        Self {
            mode,
            verbose: ui.verbose > 0,
            last_status: Mutex::new(String::new()),
        }
    }

    /// Stops the spinner (before the result or an error is printed).
    pub fn finish(&self) {
        if let Mode::Spinner(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }

    fn text(event: &BuildEvent) -> Option<String> {
        Some(match event {
            BuildEvent::Context {
                files,
                bytes,
                content_hash,
            } => format!(
                "context: {files} entries, {} (content {})",
                human_bytes(*bytes),
                &content_hash[..content_hash.len().min(12)]
            ),
            BuildEvent::Skipped { reference, reason } => {
                format!("skipping the build: {reason} ({reference})")
            }
            BuildEvent::ContextSent { bytes, seconds } => {
                format!("sent the context: {} in {seconds:.2}s", human_bytes(*bytes))
            }
            BuildEvent::Step {
                number,
                total,
                instruction,
                line,
            } => {
                let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
                format!("step {number}/{total}{at}: {instruction}")
            }
            BuildEvent::Output { line } => format!("  {line}"),
            BuildEvent::Built { image_id } => format!("built {image_id}"),
            BuildEvent::Tagged { reference } => format!("tagged {reference}"),
            BuildEvent::Pushing { reference } => format!("pushing {reference}"),
            BuildEvent::PushStatus { status } => format!("  {status}"),
            BuildEvent::Pushed { reference, digest } => format!("pushed {reference} ({digest})"),
            BuildEvent::Warning { message } => format!("warning: {message}"),
        })
    }
}

impl BuildProgress for BuildReporter {
    fn event(&self, event: &BuildEvent) {
        match &self.mode {
            Mode::Quiet => {
                if let BuildEvent::Warning { message } = event {
                    eprintln!("warning: {message}");
                }
            }
            Mode::Json => {
                if let Ok(line) = serde_json::to_string(event) {
                    eprintln!("{line}");
                }
            }
            Mode::Lines => {
                if let BuildEvent::PushStatus { status } = event {
                    let Ok(mut last) = self.last_status.lock() else {
                        return;
                    };
                    if *last == *status || !self.verbose {
                        return;
                    }
                    last.clone_from(status);
                }
                if let Some(text) = Self::text(event) {
                    eprintln!("{text}");
                }
            }
            Mode::Spinner(bar) => match event {
                BuildEvent::Output { line } => {
                    if self.verbose {
                        bar.println(format!("  {line}"));
                    } else {
                        bar.set_message(line.clone());
                    }
                }
                BuildEvent::PushStatus { status } => bar.set_message(status.clone()),
                BuildEvent::Step { .. } | BuildEvent::Pushing { .. } => {
                    if let Some(text) = Self::text(event) {
                        bar.println(&text);
                        bar.set_message(text);
                    }
                }
                other => {
                    if let Some(text) = Self::text(other) {
                        bar.println(text);
                    }
                }
            },
        }
    }
}

impl Ui {
    /// The result of `wactl build`: the reference to deploy on stdout (text), or the whole
    /// result as JSON.
    pub fn built_image(&self, image: &BuiltImage) {
        if self.format == OutputFormat::Json {
            self.json(&serde_json::json!({
                "reference": image.reference,
                "pinned": image.pinned(),
                "tags": image.tags,
                "digest": image.digest,
                "content_hash": image.content_hash,
                "image_id": image.image_id,
                "skipped": image.skipped,
                "skip_reason": image.skip_reason,
                "pushed": image.pushed,
            }));
            return;
        }
        let verb = match (image.skipped, image.pushed) {
            (true, true) => "found unchanged and pushed",
            (true, false) => "found unchanged",
            (false, true) => "built and pushed",
            (false, false) => "built",
        };
        self.success(&format!("{verb} {}", image.reference));
        println!(
            "{}",
            image.pinned().unwrap_or_else(|| image.reference.clone())
        );
    }
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_lines_and_json() {
        let step = BuildEvent::Step {
            number: 2,
            total: 9,
            instruction: "RUN cargo build".to_owned(),
            line: Some(8),
        };
        assert_eq!(
            BuildReporter::text(&step).as_deref(),
            Some("step 2/9 (line 8): RUN cargo build")
        );
        let json = serde_json::to_value(&step).expect("json");
        assert_eq!(json["event"], "step");
        assert_eq!(json["line"], 8);
        assert_eq!(human_bytes(2_936_012), "2.8 MiB");
    }
}
