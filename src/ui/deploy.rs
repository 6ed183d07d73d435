//! Deploy output: stage and rollout progress lines, the coloured plan diff, the final
//! report, and the confirmation prompt (never shown without a terminal).

use super::OutputFormat;
use crate::cli::GlobalArgs;
use crate::cluster::{Change, ObjectRef, Plan, TrackEvent};
use crate::config::Environment;
use crate::deploy::{DeployError, DeployReport, Outcome, StageReport};
use std::io::IsTerminal;

#[derive(Debug, Clone)]
pub struct DeployUi {
    format: OutputFormat,
    quiet: bool,
    verbose: u8,
    color_out: bool,
    color_err: bool,
    assume_yes: bool,
    /// A person can answer a prompt: stdin and stderr are terminals and this is not CI.
    interactive: bool,
}

fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

impl DeployUi {
    pub fn new(global: &GlobalArgs) -> Self {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        Self {
            format: global.output,
            quiet: global.quiet,
            verbose: global.verbose,
            color_out: crate::ui::colour(&std::io::stdout(), global.no_color),
            color_err: crate::ui::colour(&std::io::stderr(), global.no_color),
            assume_yes: global.yes,
            interactive: !ci && std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }

    /// Progress of the image build inside a deploy: live steps on stderr, nothing on
    /// stdout (with `--output json`, stdout holds only the deploy report).
    pub fn build_progress(&self) -> crate::ui::build::BuildReporter {
        let quiet = self.quiet || self.format == OutputFormat::Json;
        let ui = crate::ui::Ui::new(OutputFormat::Text, quiet, self.verbose, !self.color_err);
        crate::ui::build::BuildReporter::new(&ui)
    }

    /// A UI that prints nothing and never asks (for tests and benchmarks).
    pub fn silent(assume_yes: bool) -> Self {
        Self {
            format: OutputFormat::Json,
            quiet: true,
            verbose: 0,
            color_out: false,
            color_err: false,
            assume_yes,
            interactive: false,
        }
    }

    pub fn stage(&self, stage: &StageReport) {
        if self.quiet {
            return;
        }
        let mark = match stage.status {
            "ok" => paint(self.color_err, "32", "✓"),
            "failed" => paint(self.color_err, "31", "✗"),
            _ => paint(self.color_err, "2", "-"),
        };
        let time = if stage.status == "skipped" {
            String::new()
        } else {
            format!(" ({} ms)", stage.duration_ms)
        };
        let first = stage.detail.lines().next().unwrap_or_default();
        eprintln!("{mark} {}{time}: {first}", stage.name);
    }

    pub fn progress(&self, event: &TrackEvent) {
        if !self.quiet {
            let mark = if event.done {
                paint(self.color_err, "32", "✓")
            } else {
                " ".to_owned()
            };
            eprintln!("  {mark} {event}");
        }
    }

    pub fn note(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    pub fn rolling_back(&self, to: u32) {
        self.note(&paint(
            self.color_err,
            "33",
            &format!("rolling back to revision {to}"),
        ));
    }

    /// The plan of a deploy on stderr: the summary, and the diffs with `-v`.
    pub fn plan(&self, plan: &Plan) {
        if self.quiet {
            return;
        }
        for o in plan
            .objects
            .iter()
            .filter(|o| o.change != Change::Unchanged)
        {
            eprintln!("  {} {}", change_word(o.change, self.color_err), o.object);
            if self.verbose > 0 {
                eprint!("{}", colour_diff(&o.diff, self.color_err));
            }
        }
    }

    /// `wactl diff`: every changed object's diff and the summary, on stdout.
    pub fn print_diff(&self, plan: &Plan) {
        if self.format == OutputFormat::Json {
            println!("{}", serde_json::to_string_pretty(plan).unwrap_or_default());
            return;
        }
        for o in plan
            .objects
            .iter()
            .filter(|o| o.change != Change::Unchanged)
        {
            println!("{} {}", change_word(o.change, self.color_out), o.object);
            print!("{}", colour_diff(&o.diff, self.color_out));
        }
        println!("{}", plan.summary());
    }

    /// The final report on stdout: JSON with `--output json`, else a summary line.
    pub fn report(&self, report: &DeployReport) {
        if self.format == OutputFormat::Json {
            println!(
                "{}",
                serde_json::to_string_pretty(report).unwrap_or_default()
            );
            return;
        }
        let revision = report
            .revision
            .map(|r| format!("revision {r}"))
            .unwrap_or_default();
        match report.outcome {
            Outcome::Unchanged => {
                println!("{}: nothing to change ({revision})", report.environment)
            }
            Outcome::Succeeded => println!(
                "{}: deployed {} as {revision}",
                report.environment, report.image
            ),
            _ => {}
        }
    }

    fn ask(&self, environment: &str, question: String) -> Result<(), DeployError> {
        if self.assume_yes {
            return Ok(());
        }
        if !self.interactive || self.format == OutputFormat::Json {
            return Err(DeployError::ConfirmationRequired {
                environment: environment.to_owned(),
            });
        }
        let answer = dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact_on_opt(&dialoguer::console::Term::stderr());
        match answer {
            Ok(Some(true)) => Ok(()),
            _ => Err(DeployError::Declined {
                environment: environment.to_owned(),
            }),
        }
    }

    /// Asks before applying to a protected environment.
    pub fn confirm(&self, env: &Environment, plan: &Plan) -> Result<(), DeployError> {
        if !env.protected {
            return Ok(());
        }
        self.ask(
            &env.name,
            format!("{} is protected. Apply {}?", env.name, plan.summary()),
        )
    }

    pub fn confirm_rollback(&self, env: &Environment, to: u32) -> Result<(), DeployError> {
        if !env.protected {
            return Ok(());
        }
        self.ask(
            &env.name,
            format!("{} is protected. Roll back to revision {to}?", env.name),
        )
    }

    /// Always asks: destroying is never routine.
    pub fn confirm_destroy(
        &self,
        env: &Environment,
        owned: &[ObjectRef],
    ) -> Result<(), DeployError> {
        self.ask(
            &env.name,
            format!(
                "Delete the {} objects wactl owns in {} (namespace {})?",
                owned.len(),
                env.name,
                env.cluster.namespace
            ),
        )
    }
}

fn change_word(change: Change, color: bool) -> String {
    match change {
        Change::Create => paint(color, "32", "create"),
        Change::Update => paint(color, "33", "update"),
        Change::Delete => paint(color, "31", "delete"),
        Change::Unchanged => "unchanged".to_owned(),
    }
}

/// Colours a unified diff line by line.
pub fn colour_diff(diff: &str, color: bool) -> String {
    diff.lines()
        .map(|l| {
            let code = if l.starts_with("+++") || l.starts_with("---") {
                "1"
            } else if l.starts_with('+') {
                "32"
            } else if l.starts_with('-') {
                "31"
            } else if l.starts_with("@@") {
                "36"
            } else {
                ""
            };
            if code.is_empty() {
                format!("{l}\n")
            } else {
                format!("{}\n", paint(color, code, l))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_colours_only_on_request() {
        let diff = "--- live\n+++ rendered\n@@ -1 +1 @@\n-a: 1\n+a: 2\n";
        assert_eq!(colour_diff(diff, false), diff);
        let coloured = colour_diff(diff, true);
        assert!(coloured.contains("\x1b[31m-a: 1\x1b[0m"));
        assert!(coloured.contains("\x1b[32m+a: 2\x1b[0m"));
    }

    #[test]
    fn no_terminal_never_prompts() {
        let ui = DeployUi::silent(false);
        let error = ui.ask("production", "?".into()).expect_err("refused");
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("--yes"));
        assert!(DeployUi::silent(true).ask("production", "?".into()).is_ok());
    }
}
