//! Everything wactl tells a person or a machine: results on stdout, progress and errors
//! on stderr, colour only on a terminal, JSON when asked.

pub mod smoke;

use std::io::IsTerminal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Ui {
    pub format: OutputFormat,
    quiet: bool,
    pub verbose: u8,
    color: bool,
    /// Running inside GitHub Actions: errors also become workflow annotations.
    github_actions: bool,
}

impl Ui {
    pub fn new(format: OutputFormat, quiet: bool, verbose: u8, no_color: bool) -> Self {
        let color =
            !no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
        let github_actions = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
        Self {
            format,
            quiet,
            verbose,
            color: color && !github_actions,
            github_actions,
        }
    }

    /// A finished step, on stderr (stdout stays for results).
    pub fn success(&self, message: &str) {
        if !self.quiet {
            let mark = if self.color {
                "\x1b[32m✓\x1b[0m"
            } else {
                "✓"
            };
            eprintln!("{mark} {message}");
        }
    }

    /// A JSON result on stdout, only with `--output json`.
    pub fn json(&self, value: &serde_json::Value) {
        if self.format == OutputFormat::Json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        }
    }

    /// Reports a failed command: the full error chain on stderr, a JSON error on stdout
    /// with `--output json`, and annotations in GitHub Actions.
    pub fn error(&self, error: &anyhow::Error, exit_code: u8) {
        let label = if self.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        eprintln!("{label}: {error:#}");
        let problems = error
            .chain()
            .find_map(|c| c.downcast_ref::<crate::config::ConfigError>())
            .map(|e| e.problems.clone())
            .unwrap_or_default();
        if self.github_actions {
            for p in &problems {
                let place = match p.at {
                    Some(at) => format!(
                        "file={},line={},col={}",
                        p.file.display(),
                        at.line,
                        at.column
                    ),
                    None => format!("file={}", p.file.display()),
                };
                let field = p
                    .field
                    .as_deref()
                    .map(|f| format!("{f}: "))
                    .unwrap_or_default();
                println!(
                    "::error {place}::{}",
                    escape_annotation(&format!("{field}{}", p.message))
                );
            }
            if problems.is_empty() {
                println!("::error::{}", escape_annotation(&format!("{error:#}")));
            }
        }
        if self.format == OutputFormat::Json {
            let code = if exit_code == 2 {
                "invalid_input"
            } else {
                "operation_failed"
            };
            self.json(&serde_json::json!({ "error": { "code": code, "message": format!("{error:#}"), "problems": problems } }));
        }
    }
}

/// GitHub workflow commands need `%`, CR and LF escaped.
fn escape_annotation(message: &str) -> String {
    message
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}
