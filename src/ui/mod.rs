//! Everything wactl tells a person or a machine: results on stdout, progress and errors
//! on stderr, colour only on a terminal, JSON when asked.

pub mod build;
pub mod deploy;
pub mod fleet;
pub mod local;
pub mod smoke;
pub mod table;
pub mod time;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

fn in_github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Whether what goes to `stream` is coloured. Never with `--no-color`, nor in GitHub
/// Actions (its log is read for annotations); otherwise the convention of the Rust CLI
/// ecosystem, as anstream decides it for clap: `NO_COLOR` set and non-empty turns colour
/// off, then `CLICOLOR_FORCE` (non-empty, not `0`) on, then `CLICOLOR=0` off; without
/// those, colour only on a terminal whose `TERM` is not `dumb`.
pub fn colour(stream: &impl anstream::stream::RawStream, no_color: bool) -> bool {
    !no_color
        && !in_github_actions()
        && anstream::AutoStream::choice(stream) != anstream::ColorChoice::Never
}

/// An image reference with its digest cut to 12 hex digits, as a listing shows it (the full
/// reference stays in `--output json`): `repo@sha256:0123456789ab`.
pub fn short_image(reference: &str) -> String {
    match reference.split_once("@sha256:") {
        Some((name, hex)) if hex.len() > 12 => format!("{name}@sha256:{}", &hex[..12]),
        _ => reference.to_owned(),
    }
}

/// Paints `text` with the SGR `code` when `on`.
pub fn paint(on: bool, code: &str, text: &str) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

#[derive(Debug, Clone)]
pub struct Ui {
    pub format: OutputFormat,
    quiet: bool,
    pub verbose: u8,
    color: bool,
    /// Whether results on stdout are coloured (a terminal, no `--no-color`).
    pub color_out: bool,
    /// Running inside GitHub Actions: errors also become workflow annotations.
    github_actions: bool,
    /// Where JSON results go instead of stdout (see [`Ui::capturing`]).
    capture: Option<JsonCapture>,
}

/// JSON results kept instead of printed: a verb run cluster by cluster prints one document
/// for all clusters, each cluster's result inside it.
#[derive(Debug, Clone, Default)]
pub struct JsonCapture(std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>);

impl JsonCapture {
    fn push(&self, value: serde_json::Value) {
        if let Ok(mut kept) = self.0.lock() {
            kept.push(value);
        }
    }

    /// The documents kept so far, oldest first; the capture is empty afterwards.
    pub fn take(&self) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .map(|mut kept| std::mem::take(&mut *kept))
            .unwrap_or_default()
    }
}

impl Ui {
    pub fn new(format: OutputFormat, quiet: bool, verbose: u8, no_color: bool) -> Self {
        Self {
            format,
            quiet,
            verbose,
            color: colour(&std::io::stderr(), no_color),
            color_out: colour(&std::io::stdout(), no_color),
            github_actions: in_github_actions(),
            capture: None,
        }
    }

    /// This UI, except that its JSON results are kept in the returned capture instead of
    /// printed (everything else still goes to stderr).
    pub fn capturing(&self) -> (Self, JsonCapture) {
        let capture = JsonCapture::default();
        let ui = Self {
            capture: Some(capture.clone()),
            ..self.clone()
        };
        (ui, capture)
    }

    /// A JSON document on stdout, or into the capture of [`Ui::capturing`].
    fn print_json(&self, value: &serde_json::Value) {
        match &self.capture {
            Some(capture) => capture.push(value.clone()),
            None => println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            ),
        }
    }

    /// Only errors on stderr (`-q`).
    pub fn is_quiet(&self) -> bool {
        self.quiet
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

    /// Something worth knowing about the result, on stderr (`note: …`).
    pub fn note(&self, message: &str) {
        if !self.quiet {
            eprintln!("note: {message}");
        }
    }

    /// A JSON result on stdout, only with `--output json`.
    pub fn json(&self, value: &serde_json::Value) {
        if self.format == OutputFormat::Json {
            self.print_json(value);
        }
    }

    /// The full error chain on stderr, and annotations in GitHub Actions (no JSON: for an
    /// error that is part of a result, as one cluster's in a verb run on several).
    pub fn error_text(&self, error: &anyhow::Error) {
        let label = if self.color {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        eprintln!("{label}: {error:#}");
        if self.github_actions {
            for line in crate::github::actions::error_annotations(error) {
                eprintln!("{line}");
            }
        }
    }

    /// Reports a failed command: the full error chain on stderr, a JSON error on stdout
    /// with `--output json`, and annotations in GitHub Actions.
    pub fn error(&self, error: &anyhow::Error, exit_code: u8) {
        self.error_text(error);
        let problems = error
            .chain()
            .find_map(|c| c.downcast_ref::<crate::config::ConfigError>())
            .map(|e| e.problems.clone())
            .unwrap_or_default();
        // A failed deploy has already printed its JSON report, error codes included; so
        // has a command that failed with its result printed.
        let reported = error.chain().any(|cause| {
            cause.is::<ReportedFailure>()
                || cause
                    .downcast_ref::<crate::deploy::DeployError>()
                    .is_some_and(|e| e.report().is_some())
                || cause
                    .downcast_ref::<crate::deploy::fleet::FleetError>()
                    .is_some_and(|e| e.is_reported())
        });
        if self.format == OutputFormat::Json && !reported {
            let code = if exit_code == 2 {
                "invalid_input"
            } else {
                "operation_failed"
            };
            // The problems carry the detail; the message stays one line.
            let message = match problems.len() {
                0 => format!("{error:#}"),
                1 => "1 problem in environment definitions".to_owned(),
                n => format!("{n} problems in environment definitions"),
            };
            self.json(&serde_json::json!({ "error": { "code": code, "message": message, "problems": problems } }));
        }
    }
}

/// A failure whose result the command has already printed on stdout (`wactl drift` finding
/// drift): the error goes to stderr only, and `--output json` prints no second document.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReportedFailure(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_shows_a_short_digest() {
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            short_image(&format!("127.0.0.1:5000/wa/address-service@{digest}")),
            "127.0.0.1:5000/wa/address-service@sha256:0123456789ab"
        );
        assert_eq!(short_image("a:v1"), "a:v1");
        assert_eq!(short_image("a@sha256:abc"), "a@sha256:abc");
    }
}
