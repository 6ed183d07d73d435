//! The tera engine: built-in templates, overridden by relative path from a directory.

use super::RenderError;
use include_dir::{Dir, include_dir};
use std::path::{Path, PathBuf};

static BUILT_IN: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// Relative paths of every built-in template (the names an override may use).
pub static TEMPLATE_NAMES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    let mut names = Vec::new();
    collect(&BUILT_IN, &mut names);
    names.sort();
    names
});

fn collect(dir: &Dir<'static>, names: &mut Vec<String>) {
    for file in dir.files() {
        names.push(file.path().to_string_lossy().replace('\\', "/"));
    }
    for sub in dir.dirs() {
        collect(sub, names);
    }
}

/// Template overrides are small text files; anything larger is refused.
const MAX_OVERRIDE_BYTES: u64 = 256 * 1024;

pub struct Engine {
    tera: tera::Tera,
    /// Where each overridden template came from, so an error in one names the user's file.
    overrides: Vec<(String, PathBuf)>,
}

impl Engine {
    /// Compiles the built-in templates `names` and every template `override_dir`
    /// overrides: compiling is a large part of a render, and an environment renders only
    /// some of the built-ins (which their own tests compile), while a broken override is
    /// reported whichever environment is rendered.
    pub fn new(names: &[&str], override_dir: Option<&Path>) -> Result<Self, RenderError> {
        let overrides = read_overrides(override_dir)?;
        let built_in = names
            .iter()
            .copied()
            .filter(|name| !overrides.iter().any(|o| o.name == *name));
        Self::compile(built_in)?.with(overrides)
    }

    /// Every built-in template compiled, before anyone knows which an environment renders
    /// or overrides (`wactl render` compiles them while it reads the definition).
    pub fn built_in() -> Result<Self, RenderError> {
        Self::compile(TEMPLATE_NAMES.iter().map(String::as_str))
    }

    /// This engine with the templates `override_dir` overrides compiled in their place.
    pub fn with_overrides(self, override_dir: Option<&Path>) -> Result<Self, RenderError> {
        self.with(read_overrides(override_dir)?)
    }

    fn compile<'n>(names: impl Iterator<Item = &'n str>) -> Result<Self, RenderError> {
        let mut tera = tera::Tera::new();
        tera.autoescape_on(Vec::<&str>::new());
        tera.register_filter("json_encode", json_encode);
        // Templates see only the context wactl gives them: no environment variables.
        tera.register_function(
            "get_env",
            |_: tera::Kwargs, _: &tera::State| -> tera::TeraResult<tera::Value> {
                Err(tera::Error::message(
                    "get_env is disabled: templates only see the environment definition",
                ))
            },
        );
        let sources = names.map(|name| {
            let text = BUILT_IN
                .get_file(name)
                .and_then(|f| f.contents_utf8())
                .unwrap_or_default();
            (name, text)
        });
        tera.add_raw_templates(sources)
            .map_err(|e| template_error(&[], None, &e))?;
        Ok(Self {
            tera,
            overrides: Vec::new(),
        })
    }

    fn with(mut self, overrides: Vec<Override>) -> Result<Self, RenderError> {
        if overrides.is_empty() {
            return Ok(self);
        }
        self.overrides = overrides
            .iter()
            .map(|o| (o.name.clone(), o.path.clone()))
            .collect();
        self.tera
            .add_raw_templates(overrides.iter().map(|o| (o.name.as_str(), o.text.as_str())))
            .map_err(|e| template_error(&self.overrides, None, &e))?;
        Ok(self)
    }

    pub fn render(&self, name: &str, context: &tera::Context) -> Result<String, RenderError> {
        self.tera
            .render(name, context)
            .map_err(|e| template_error(&self.overrides, Some(name), &e))
    }
}

/// The error placed where it is (file, line and column, with the line quoted) when tera
/// knows the place; an overridden template is named by the user's file.
fn template_error(
    overrides: &[(String, PathBuf)],
    rendering: Option<&str>,
    error: &tera::Error,
) -> RenderError {
    let place = match error.kind() {
        tera::ErrorKind::SyntaxError(report) | tera::ErrorKind::RenderingError(report) => {
            let name = if report.filename().is_empty() {
                rendering.unwrap_or_default()
            } else {
                report.filename()
            };
            let span = report.span();
            Some(Place {
                name: name.to_owned(),
                line: span.start_line,
                column: span.start_col + 1,
                width: if span.end_line == span.start_line {
                    span.end_col.saturating_sub(span.start_col).max(1)
                } else {
                    1
                },
                message: report.message().to_owned(),
            })
        }
        // Unknown filters, tests and functions come as one message holding tera's report.
        tera::ErrorKind::Msg(text) => Place::from_report(text),
        _ => None,
    };
    match place {
        Some(place) => {
            let source = source(overrides, &place.name);
            let quoted = source
                .as_deref()
                .and_then(|text| text.lines().nth(place.line.saturating_sub(1)))
                .map(|line| place.snippet(line))
                .unwrap_or_default();
            RenderError::Template {
                template: format!(
                    "{}:{}:{}",
                    file(overrides, &place.name),
                    place.line,
                    place.column
                ),
                message: format!("{}{quoted}", place.message),
            }
        }
        None => RenderError::Template {
            template: match (error.kind(), rendering) {
                (tera::ErrorKind::TemplateNotFound(name), _) => name.clone(),
                (_, Some(name)) => file(overrides, name),
                (_, None) => "(templates)".to_owned(),
            },
            message: chain(error),
        },
    }
}

/// The file a template comes from: the override's path, or the built-in template's name.
fn file(overrides: &[(String, PathBuf)], name: &str) -> String {
    overrides
        .iter()
        .find(|(n, _)| n == name)
        .map_or_else(|| name.to_owned(), |(_, path)| path.display().to_string())
}

fn source(overrides: &[(String, PathBuf)], name: &str) -> Option<String> {
    match overrides.iter().find(|(n, _)| n == name) {
        Some((_, path)) => std::fs::read_to_string(path).ok(),
        None => BUILT_IN
            .get_file(name)
            .and_then(|f| f.contents_utf8())
            .map(str::to_owned),
    }
}

/// Where in a template something went wrong, and what.
#[derive(Debug, PartialEq)]
struct Place {
    name: String,
    /// 1-based.
    line: usize,
    /// 1-based, in characters.
    column: usize,
    /// Characters to underline.
    width: usize,
    message: String,
}

impl Place {
    /// Reads the first report of a message tera built from its reports
    /// (`error: MESSAGE` then `--> NAME:LINE:COLUMN`, then the quoted line).
    fn from_report(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let message = lines.next()?.strip_prefix("error: ")?;
        let at = lines.next()?.trim_start().strip_prefix("--> ")?;
        let mut parts = at.rsplitn(3, ':');
        let column = parts.next()?.parse().ok()?;
        let line = parts.next()?.parse().ok()?;
        let name = parts.next()?;
        let width = lines
            .nth(2)
            .map_or(1, |underline| underline.matches('^').count().max(1));
        Some(Self {
            name: name.to_owned(),
            line,
            column,
            width,
            message: message.to_owned(),
        })
    }

    /// The quoted line with the place underlined, as configuration errors quote theirs.
    fn snippet(&self, line: &str) -> String {
        let gutter = self.line.to_string().len();
        let indent: String = line
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!(
            "\n{:gutter$} |\n{} | {line}\n{:gutter$} | {indent}{}",
            "",
            self.line,
            "",
            "^".repeat(self.width)
        )
    }
}

/// tera 1's `json_encode`, which tera 2 does not have: compact JSON (`pretty=true`: indented),
/// map keys in the order the context built them.
fn json_encode(
    value: &tera::Value,
    kwargs: tera::Kwargs,
    _: &tera::State,
) -> tera::TeraResult<String> {
    // tera 1 failed on an undefined value before the filter ran; tera 2 passes it on, and
    // `null` in its place would hide a misspelt name.
    if value.kind() == tera::value::ValueKind::Undefined {
        // As an invalid argument, so tera places the error on the value, not the filter.
        return Err(tera::Error::new(tera::ErrorKind::InvalidArgument {
            expected_type: "a defined value (is the name misspelt?)".to_owned(),
            actual_type: "undefined".to_owned(),
        }));
    }
    let pretty = kwargs.get::<bool>("pretty")?.unwrap_or(false);
    let encoded = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    encoded.map_err(|e| tera::Error::message(format!("json_encode: {e}")))
}

/// A template override read from the user's directory.
struct Override {
    /// The built-in template it replaces.
    name: String,
    path: PathBuf,
    text: String,
}

/// Every file of `dir`, each replacing the built-in template of the same relative path.
/// A file that matches no template is an error, so a misspelt override never goes unnoticed.
fn read_overrides(dir: Option<&Path>) -> Result<Vec<Override>, RenderError> {
    let Some(dir) = dir else {
        return Ok(Vec::new());
    };
    let fail = |message: String| RenderError::Overrides {
        dir: dir.to_owned(),
        message,
    };
    let root = dir
        .canonicalize()
        .map_err(|e| fail(format!("cannot open: {e}")))?;
    let mut found = Vec::new();
    walk(&root, &root, &mut found).map_err(|e| fail(e.to_string()))?;
    let mut overrides = Vec::new();
    for (relative, path) in found {
        if !TEMPLATE_NAMES.contains(&relative) {
            let guess =
                crate::config::closest(&relative, TEMPLATE_NAMES.iter().map(String::as_str));
            let hint = guess
                .map(|g| format!("; did you mean `{g}`?"))
                .unwrap_or_default();
            return Err(fail(format!(
                "`{relative}` does not override any template{hint}"
            )));
        }
        let meta = std::fs::metadata(&path).map_err(|e| fail(format!("{relative}: {e}")))?;
        if meta.len() > MAX_OVERRIDE_BYTES {
            return Err(fail(format!(
                "{relative} is larger than {} KiB",
                MAX_OVERRIDE_BYTES / 1024
            )));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| fail(format!("{relative}: {e}")))?;
        if let Some(tag) = composition_tag(&text) {
            return Err(fail(format!(
                "{relative}: `{{% {tag} %}}` is not allowed in an override: an override replaces one \
                 whole template and composes with no other (no include, extends, block, component, \
                 or tera 1's import and macro)"
            )));
        }
        overrides.push(Override {
            path: dir.join(&relative),
            name: relative,
            text,
        });
    }
    Ok(overrides)
}

/// The first tag that composes templates, if any: tera 2's `include`, `extends`, `block` and
/// `component`, and tera 1's `import` and `macro` (named, rather than left to a syntax error,
/// for an override written for tera 1). The built-in templates use none; in an override they
/// are the only way to recurse (tera 1 overflowed the stack on it; tera 2 refuses include
/// cycles but still allows a component 20 calls deep, each calling itself several times).
fn composition_tag(text: &str) -> Option<&'static str> {
    let mut rest = text;
    while let Some(at) = rest.find("{%") {
        rest = &rest[at + 2..];
        let word = rest
            .trim_start_matches('-')
            .trim_start()
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .next()
            .unwrap_or_default();
        if let Some(tag) = [
            "include",
            "extends",
            "block",
            "component",
            "import",
            "macro",
        ]
        .into_iter()
        .find(|t| *t == word)
        {
            return Some(tag);
        }
    }
    None
}

/// Regular files under `dir`; symlinks are refused so an override cannot reach outside it.
fn walk(root: &Path, dir: &Path, found: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type()?;
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        if kind.is_symlink() {
            return Err(std::io::Error::other(format!(
                "{relative} is a symbolic link; overrides must be regular files"
            )));
        } else if kind.is_dir() {
            walk(root, &path, found)?;
        } else if kind.is_file() {
            found.push((relative, path));
        }
    }
    Ok(())
}

/// Tera nests the useful message in its source chain.
fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}
