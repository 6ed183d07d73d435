//! GitHub Actions' files and workflow commands: annotations, the step summary and step outputs.
//!
//! Inside a workflow run (`GITHUB_ACTIONS=true`) the runner reads workflow commands
//! (`::error file=…::…`) from the step's output, renders `$GITHUB_STEP_SUMMARY` as Markdown
//! on the run page, and exposes `$GITHUB_OUTPUT` entries as `steps.<id>.outputs.<name>`.

use super::summary::DeploySummary;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// True inside a GitHub Actions run: no spinners, no colour, annotations on.
pub fn is_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Where an annotation points.
#[derive(Debug, Clone, Copy, Default)]
pub struct Place<'a> {
    pub file: Option<&'a Path>,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// Severity of a workflow annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

/// One workflow command line such as `::error file=a.yaml,line=3,col=5::bad value`.
pub fn annotation(level: Level, place: Place<'_>, message: &str) -> String {
    let mut properties = Vec::new();
    if let Some(file) = place.file {
        properties.push(format!(
            "file={}",
            escape_property(&file.display().to_string())
        ));
        if let Some(line) = place.line {
            properties.push(format!("line={line}"));
            if let Some(column) = place.column {
                properties.push(format!("col={column}"));
            }
        }
    }
    let properties = if properties.is_empty() {
        String::new()
    } else {
        format!(" {}", properties.join(","))
    };
    format!(
        "::{}{properties}::{}",
        level.command(),
        escape_data(message)
    )
}

/// Workflow command messages need `%`, CR and LF escaped.
pub fn escape_data(message: &str) -> String {
    message
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Property values (`file=…`) additionally need `:` and `,` escaped.
pub fn escape_property(value: &str) -> String {
    escape_data(value).replace(':', "%3A").replace(',', "%2C")
}

/// Annotations for a failed command: one per configuration problem (with its file, line
/// and column), or one for the whole error chain when it is not a configuration error.
pub fn error_annotations(error: &anyhow::Error) -> Vec<String> {
    let problems = error
        .chain()
        .find_map(|c| c.downcast_ref::<crate::config::ConfigError>())
        .map(|e| e.problems.as_slice())
        .unwrap_or_default();
    if problems.is_empty() {
        return vec![annotation(
            Level::Error,
            Place::default(),
            &format!("{error:#}"),
        )];
    }
    problems
        .iter()
        .map(|p| {
            let field = p
                .field
                .as_deref()
                .map(|f| format!("{f}: "))
                .unwrap_or_default();
            let hint = p
                .hint
                .as_deref()
                .map(|h| format!("\n{h}"))
                .unwrap_or_default();
            annotation(
                Level::Error,
                Place {
                    file: Some(&p.file),
                    line: p.at.map(|at| at.line),
                    column: p.at.map(|at| at.column),
                },
                &format!("{field}{}{hint}", p.message),
            )
        })
        .collect()
}

/// A failure writing one of the Actions files.
#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    #[error("writing the GitHub step summary {}: {source}", path.display())]
    Summary {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing GitHub step outputs to {}: {source}", path.display())]
    Outputs {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("step output name `{0}` is not a valid name (letters, digits, `-` and `_` only)")]
    OutputName(String),
}

/// The Actions side of a run: where the summary and outputs go.
#[derive(Debug, Clone)]
pub struct Actions {
    summary_path: Option<PathBuf>,
    output_path: Option<PathBuf>,
}

impl Actions {
    /// `Some` only inside GitHub Actions; each file is used when its variable is set.
    pub fn from_env() -> Option<Self> {
        if !is_actions() {
            return None;
        }
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Some(Self::with_files(
            path("GITHUB_STEP_SUMMARY"),
            path("GITHUB_OUTPUT"),
        ))
    }

    /// An `Actions` writing to the given files (tests, or a caller that knows better).
    pub fn with_files(summary_path: Option<PathBuf>, output_path: Option<PathBuf>) -> Self {
        Self {
            summary_path,
            output_path,
        }
    }

    /// Prints annotations for a failed command on stderr (the runner reads workflow
    /// commands from both streams; stdout stays for results and `--output json`).
    pub fn annotate_error(&self, error: &anyhow::Error) {
        for line in error_annotations(error) {
            eprintln!("{line}");
        }
    }

    /// Prints a warning annotation on stderr.
    pub fn annotate_warning(&self, message: &str) {
        eprintln!("{}", annotation(Level::Warning, Place::default(), message));
    }

    /// Appends a deploy's Markdown summary to `$GITHUB_STEP_SUMMARY`.
    pub fn summary(&self, summary: &DeploySummary) -> Result<(), ActionsError> {
        self.append_summary(&summary.to_markdown())
    }

    /// Appends Markdown to `$GITHUB_STEP_SUMMARY` (several steps may each add a section).
    pub fn append_summary(&self, markdown: &str) -> Result<(), ActionsError> {
        let Some(path) = &self.summary_path else {
            return Ok(());
        };
        let mut text = markdown.to_owned();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        append(path, &text).map_err(|source| ActionsError::Summary {
            path: path.clone(),
            source,
        })
    }

    /// Writes step outputs to `$GITHUB_OUTPUT`; multi-line values use the heredoc form.
    pub fn outputs(&self, outputs: &[(&str, &str)]) -> Result<(), ActionsError> {
        let Some(path) = &self.output_path else {
            return Ok(());
        };
        let text = format_outputs(outputs)?;
        append(path, &text).map_err(|source| ActionsError::Outputs {
            path: path.clone(),
            source,
        })
    }

    /// Writes a deploy's outputs: `image`, `digest`, `revision`, `url` and `outcome`.
    pub fn deploy_outputs(&self, summary: &DeploySummary) -> Result<(), ActionsError> {
        let outputs = summary.outputs();
        let pairs: Vec<(&str, &str)> = outputs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.outputs(&pairs)
    }
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// The `$GITHUB_OUTPUT` text for `outputs`: `name=value`, or for a value with a line
/// break `name<<DELIM` … `DELIM`, with a delimiter that occurs nowhere in the value.
pub fn format_outputs(outputs: &[(&str, &str)]) -> Result<String, ActionsError> {
    let mut text = String::new();
    for (name, value) in outputs {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(ActionsError::OutputName((*name).to_owned()));
        }
        if value.contains('\n') || value.contains('\r') {
            let delimiter = delimiter_for(value);
            text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
        } else {
            text.push_str(&format!("{name}={value}\n"));
        }
    }
    Ok(text)
}

fn delimiter_for(value: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let candidate = format!("ghadelimiter_{}_{nanos:x}_{n}", std::process::id());
        if !value.contains(&candidate) {
            return candidate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_carries_file_line_and_column() {
        let line = annotation(
            Level::Error,
            Place {
                file: Some(Path::new("environments/staging.yaml")),
                line: Some(12),
                column: Some(3),
            },
            "replicas: expected a number\nfound `three`",
        );
        assert_eq!(
            line,
            "::error file=environments/staging.yaml,line=12,col=3::replicas: expected a number%0Afound `three`"
        );
    }

    #[test]
    fn annotation_escapes_properties_and_data() {
        let line = annotation(
            Level::Warning,
            Place {
                file: Some(Path::new("a,b:c.yaml")),
                ..Place::default()
            },
            "100% done\r\n",
        );
        assert_eq!(line, "::warning file=a%2Cb%3Ac.yaml::100%25 done%0D%0A");
        assert_eq!(
            annotation(Level::Notice, Place::default(), "hi"),
            "::notice::hi"
        );
    }

    #[test]
    fn outputs_use_heredoc_for_multiline_values() {
        let text = format_outputs(&[("image", "reg/app:1"), ("plan", "a\nb")]).expect("valid");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("image=reg/app:1"));
        let header = lines.next().expect("heredoc header");
        let delimiter = header.strip_prefix("plan<<").expect("heredoc form");
        assert!(delimiter.starts_with("ghadelimiter_"));
        assert_eq!(lines.next(), Some("a"));
        assert_eq!(lines.next(), Some("b"));
        assert_eq!(lines.next(), Some(delimiter));
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn heredoc_delimiter_never_occurs_in_the_value() {
        let tricky = format!("x\n{}\n", delimiter_for(""));
        let d = delimiter_for(&tricky);
        assert!(!tricky.contains(&d));
    }

    #[test]
    fn output_names_are_checked() {
        assert!(matches!(
            format_outputs(&[("bad name", "v")]),
            Err(ActionsError::OutputName(_))
        ));
        assert!(matches!(
            format_outputs(&[("evil\nname", "v")]),
            Err(ActionsError::OutputName(_))
        ));
    }

    #[test]
    fn files_are_appended_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let summary = dir.path().join("summary.md");
        let output = dir.path().join("output");
        std::fs::write(&summary, "# earlier step\n").expect("seed");
        let actions = Actions::with_files(Some(summary.clone()), Some(output.clone()));
        actions.append_summary("## wactl").expect("summary");
        actions.outputs(&[("outcome", "success")]).expect("outputs");
        actions.outputs(&[("url", "https://x")]).expect("outputs");
        assert_eq!(
            std::fs::read_to_string(&summary).expect("read"),
            "# earlier step\n## wactl\n"
        );
        assert_eq!(
            std::fs::read_to_string(&output).expect("read"),
            "outcome=success\nurl=https://x\n"
        );
    }

    /// Each half without its file writes nothing, not even beside the other half's file.
    #[test]
    fn without_files_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let listing = || {
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .expect("read dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let output = dir.path().join("output");
        let only_outputs = Actions::with_files(None, Some(output.clone()));
        only_outputs.append_summary("x").expect("no-op");
        assert!(listing().is_empty(), "{:?}", listing());
        only_outputs.outputs(&[("a", "b")]).expect("outputs");
        assert_eq!(listing(), ["output"]);

        let summary = dir.path().join("summary.md");
        let only_summary = Actions::with_files(Some(summary.clone()), None);
        only_summary.outputs(&[("c", "d")]).expect("no-op");
        only_summary.append_summary("x").expect("summary");
        assert_eq!(listing(), ["output", "summary.md"]);
        assert_eq!(std::fs::read_to_string(&output).expect("read"), "a=b\n");
        assert_eq!(std::fs::read_to_string(&summary).expect("read"), "x\n");

        let neither = Actions::with_files(None, None);
        neither.append_summary("y").expect("no-op");
        neither.outputs(&[("e", "f")]).expect("no-op");
        assert_eq!(listing(), ["output", "summary.md"]);
        assert_eq!(std::fs::read_to_string(&output).expect("read"), "a=b\n");
        assert_eq!(std::fs::read_to_string(&summary).expect("read"), "x\n");
    }
}
