//! Problems found in environment definitions, each with its place.

use super::locate::Position;
use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a definition: where, which field, what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// File the problem is in.
    pub file: PathBuf,
    /// Line and column, when the problem points at a place in the file.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub at: Option<Position>,
    /// Field path such as `autoscaling.max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The offending source line, shown under the message.
    #[serde(skip)]
    pub source_line: Option<String>,
    /// A second place the problem involves (the first of two duplicate keys), shown as
    /// its own snippet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related: Option<Related>,
}

/// Another place in the same file that a problem involves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Related {
    #[serde(flatten)]
    pub at: Position,
    /// What the place is ("first set here").
    pub label: String,
    #[serde(skip)]
    pub source_line: Option<String>,
}

impl Problem {
    pub fn in_file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            at: None,
            field: None,
            message: message.into(),
            hint: None,
            source_line: None,
            related: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Places the problem at `at`, quoting that line of `text`.
    pub fn at(mut self, at: Option<Position>, text: &str) -> Self {
        self.at = at;
        self.source_line = at
            .and_then(|p| text.lines().nth(p.line.saturating_sub(1)))
            .map(str::to_owned);
        self
    }

    /// Adds a second place in the same `text`, labelled (`first set here`).
    pub fn related(mut self, at: Position, label: impl Into<String>, text: &str) -> Self {
        self.related = Some(Related {
            at,
            label: label.into(),
            source_line: text
                .lines()
                .nth(at.line.saturating_sub(1))
                .map(str::to_owned),
        });
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(at) = self.at {
            write!(f, ":{}:{}", at.line, at.column)?;
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "`{field}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if let (Some(line), Some(at)) = (&self.source_line, self.at) {
            snippet(f, at, line)?;
        }
        if let Some(Related {
            at,
            label,
            source_line: Some(line),
        }) = &self.related
        {
            write!(
                f,
                "\n{}:{}:{}: {label}",
                self.file.display(),
                at.line,
                at.column
            )?;
            snippet(f, *at, line)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  = help: {hint}")?;
        }
        Ok(())
    }
}

/// The quoted line with a caret under `at`'s column (tabs shown as one space each, so
/// the caret stays under its character).
fn snippet(f: &mut fmt::Formatter<'_>, at: Position, line: &str) -> fmt::Result {
    let gutter = at.line.to_string().len();
    write!(
        f,
        "\n{:gutter$} |\n{} | {}\n{:gutter$} | {:>col$}",
        "",
        at.line,
        line.replace('\t', " "),
        "",
        "^",
        col = at.column
    )
}

/// Everything wrong with the definitions that were asked for; never empty.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl From<Problem> for ConfigError {
    fn from(problem: Problem) -> Self {
        Self {
            problems: vec![problem],
        }
    }
}

impl From<Vec<Problem>> for ConfigError {
    /// Problems are shown in file order, so they read top to bottom.
    fn from(mut problems: Vec<Problem>) -> Self {
        problems.sort_by(|a, b| (&a.file, a.at).cmp(&(&b.file, b.at)));
        Self { problems }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.problems.len() > 1 {
            writeln!(
                f,
                "{} problems in environment definitions:",
                self.problems.len()
            )?;
        }
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}
