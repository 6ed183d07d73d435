//! Deploy output: the terminal observer of a deploy's events (stage and rollout progress
//! lines, the coloured plan, the final report on stdout) and its confirmation prompt (never
//! shown without a terminal).

use super::build::BuildReporter;
use super::{OutputFormat, Ui};
use crate::build::BuildProgress;
use crate::cluster::{Change, Plan, TrackEvent};
use crate::deploy::{
    Confirmation, Decision, DeployEvent, DeployObserver, DeployReport, EventKind, Outcome, Stage,
    StageReport, StageStatus,
};
use std::io::IsTerminal;
use std::sync::Mutex;

pub struct DeployUi {
    format: OutputFormat,
    quiet: bool,
    verbose: u8,
    color_out: bool,
    color_err: bool,
    assume_yes: bool,
    /// A person can answer a prompt: stdin and stderr are terminals and this is not CI.
    interactive: bool,
    /// Print nothing at all, the final report included (tests and benchmarks).
    silent: bool,
    /// The image build's progress while the build stage runs.
    build: Mutex<Option<BuildReporter>>,
    /// The plan lines last shown, so the same plan is not printed twice in a row.
    shown_plan: Mutex<Vec<String>>,
    /// The command's UI, through which JSON results are printed (or captured).
    json: Option<Ui>,
}

fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

impl DeployUi {
    /// The deploy output for the command line's choices: `ui`'s format and verbosity,
    /// `--yes`, `--no-color`.
    pub fn new(ui: &Ui, assume_yes: bool, no_color: bool) -> Self {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        Self {
            format: ui.format,
            quiet: ui.quiet,
            verbose: ui.verbose,
            color_out: crate::ui::colour(&std::io::stdout(), no_color),
            color_err: crate::ui::colour(&std::io::stderr(), no_color),
            assume_yes,
            interactive: !ci && std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
            silent: false,
            build: Mutex::new(None),
            shown_plan: Mutex::new(Vec::new()),
            json: Some(ui.clone()),
        }
    }

    /// A UI that prints nothing and never asks (for tests and benchmarks): every
    /// confirmation is approved with `assume_yes`, unanswered without.
    pub fn silent(assume_yes: bool) -> Self {
        Self {
            format: OutputFormat::Json,
            quiet: true,
            verbose: 0,
            color_out: false,
            color_err: false,
            assume_yes,
            interactive: false,
            silent: true,
            build: Mutex::new(None),
            shown_plan: Mutex::new(Vec::new()),
            json: None,
        }
    }

    /// Whether a confirmation can be answered: `--yes`, or a person at a terminal (and no
    /// `--output json`, whose stdout a program reads).
    pub fn can_answer(&self) -> bool {
        self.assume_yes || (self.interactive && self.format != OutputFormat::Json)
    }

    /// Progress of the image build inside a deploy: live steps on stderr, nothing on
    /// stdout (with `--output json`, stdout holds only the deploy report).
    fn build_progress(&self) -> BuildReporter {
        let quiet = self.quiet || self.format == OutputFormat::Json;
        let ui = Ui::new(OutputFormat::Text, quiet, self.verbose, !self.color_err);
        BuildReporter::new(&ui)
    }

    fn stage(&self, stage: &StageReport) {
        if stage.name == Stage::Build
            && let Ok(mut build) = self.build.lock()
            && let Some(progress) = build.take()
        {
            progress.finish();
        }
        if self.quiet {
            return;
        }
        let mark = match stage.status {
            StageStatus::Ok => paint(self.color_err, "32", "✓"),
            StageStatus::Failed => paint(self.color_err, "31", "✗"),
            StageStatus::Skipped => paint(self.color_err, "2", "-"),
        };
        let time = if stage.status == StageStatus::Skipped {
            String::new()
        } else {
            format!(" ({} ms)", stage.duration_ms)
        };
        let first = stage.detail.lines().next().unwrap_or_default();
        eprintln!("{mark} {}{time}: {first}", stage.name);
    }

    fn progress(&self, event: &TrackEvent) {
        if !self.quiet {
            let mark = if event.done {
                paint(self.color_err, "32", "✓")
            } else {
                " ".to_owned()
            };
            eprintln!("  {mark} {event}");
        }
    }

    fn note(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// The plan of a deploy on stderr: each change, and the diffs with `-v`. The same plan
    /// is shown once; `force` shows it even with `-q` (before a question about it).
    fn plan(&self, plan: &Plan, force: bool) {
        if self.quiet && !force {
            return;
        }
        let changed: Vec<_> = plan
            .objects
            .iter()
            .filter(|o| o.change != Change::Unchanged)
            .collect();
        let lines: Vec<String> = changed
            .iter()
            .map(|o| format!("{} {}", change_word(o.change, false), o.object))
            .collect();
        if let Ok(mut shown) = self.shown_plan.lock() {
            if *shown == lines {
                return;
            }
            shown.clone_from(&lines);
        }
        for o in changed {
            eprintln!("  {} {}", change_word(o.change, self.color_err), o.object);
            if self.verbose > 0 {
                eprint!("{}", colour_diff(&o.diff, self.color_err));
            }
        }
    }

    /// A JSON result on stdout (through the command's UI, which may capture it).
    fn print_json(&self, value: &serde_json::Value) {
        match &self.json {
            Some(ui) => ui.print_json(value),
            None => println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            ),
        }
    }

    /// `wactl diff`: every changed object's diff and the summary, on stdout.
    pub fn print_diff(&self, plan: &Plan) {
        if self.format == OutputFormat::Json {
            self.print_json(&serde_json::to_value(plan).unwrap_or_default());
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
            self.print_json(&serde_json::to_value(report).unwrap_or_default());
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
            // Only `wactl rollback` succeeds with a revision it rolled back to.
            Outcome::Succeeded if let Some(to) = report.rolled_back_to => println!(
                "{}: rolled back to revision {to} (recorded as {revision})",
                report.environment
            ),
            Outcome::Succeeded => println!(
                "{}: deployed {} as {revision}",
                report.environment, report.image
            ),
            _ => {}
        }
    }

    /// The question, after what it is about.
    fn question(&self, question: &Confirmation) -> String {
        match question {
            Confirmation::Deploy {
                environment,
                plan,
                build,
            } => {
                self.plan(plan, true);
                if *build {
                    format!(
                        "{environment} is protected. Build and push the image, then apply {} (the plan shows the definition's tag; the pushed digest is deployed)?",
                        plan.summary()
                    )
                } else {
                    format!("{environment} is protected. Apply {}?", plan.summary())
                }
            }
            Confirmation::Rollback { environment, to } => {
                format!("{environment} is protected. Roll back to revision {to}?")
            }
            Confirmation::Destroy {
                environment,
                namespace,
                objects,
            } => {
                for o in objects {
                    eprintln!("  {} {o}", change_word(Change::Delete, self.color_err));
                }
                format!(
                    "Delete the {} objects wactl owns in {environment} (namespace {namespace})?",
                    objects.len()
                )
            }
        }
    }
}

impl DeployObserver for DeployUi {
    fn event(&self, event: &DeployEvent) {
        if self.silent {
            return;
        }
        match &event.kind {
            EventKind::StageStarted(Stage::Build) => {
                if let Ok(mut build) = self.build.lock() {
                    *build = Some(self.build_progress());
                }
            }
            EventKind::Build(e) => {
                if let Ok(build) = self.build.lock()
                    && let Some(progress) = build.as_ref()
                {
                    progress.event(e);
                }
            }
            EventKind::StageFinished(stage) => self.stage(stage),
            EventKind::Planned(plan) => self.plan(plan, false),
            EventKind::Rollout(e) => self.progress(e),
            EventKind::Note(message) => self.note(message),
            EventKind::RollingBack { to } => self.note(&paint(
                self.color_err,
                "33",
                &format!("rolling back to revision {to}"),
            )),
            EventKind::Finished(report) => self.report(report),
            EventKind::CanaryStep {
                step,
                of,
                weight,
                canary_replicas,
                stable_replicas,
            } => self.note(&format!(
                "canary step {step}/{of}: {weight}% ({canary_replicas} canary pod(s) next to {stable_replicas} stable)"
            )),
            EventKind::CanaryMeasurement(m) => {
                let code = match m.verdict {
                    crate::deploy::canary::Verdict::Passed => "32",
                    crate::deploy::canary::Verdict::Failed => "31",
                    crate::deploy::canary::Verdict::Inconclusive => "33",
                };
                self.note(&paint(
                    self.color_err,
                    code,
                    &crate::deploy::canary::measurement_line(m),
                ));
            }
            _ => {}
        }
    }

    fn confirm(&self, question: &Confirmation) -> Decision {
        if self.assume_yes {
            return Decision::Approved;
        }
        if !self.can_answer() {
            return Decision::Unanswered;
        }
        let prompt = self.question(question);
        let answer = dialoguer::Confirm::new()
            .with_prompt(prompt)
            .default(false)
            .interact_on_opt(&dialoguer::console::Term::stderr());
        match answer {
            Ok(Some(true)) => Decision::Approved,
            _ => Decision::Declined,
        }
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
        let question = Confirmation::Destroy {
            environment: "dev".into(),
            namespace: "wa-dev".into(),
            objects: vec![],
        };
        let ui = DeployUi::silent(false);
        assert!(!ui.can_answer());
        assert_eq!(ui.confirm(&question), Decision::Unanswered);
        let yes = DeployUi::silent(true);
        assert!(yes.can_answer());
        assert_eq!(yes.confirm(&question), Decision::Approved);
    }
}
