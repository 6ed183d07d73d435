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
}

impl Engine {
    /// Compiles the built-in templates `names` and every template `override_dir`
    /// overrides: compiling is a large part of a render, and an environment renders only
    /// some of the built-ins (which their own tests compile), while a broken override is
    /// reported whichever environment is rendered.
    pub fn new(names: &[&str], override_dir: Option<&Path>) -> Result<Self, RenderError> {
        let mut sources: Vec<(String, String)> = Vec::new();
        for name in TEMPLATE_NAMES.iter() {
            let text = BUILT_IN
                .get_file(name)
                .and_then(|f| f.contents_utf8())
                .unwrap_or_default();
            sources.push((name.clone(), text.to_owned()));
        }
        let overridden = match override_dir {
            Some(dir) => apply_overrides(dir, &mut sources)?,
            None => Vec::new(),
        };
        sources.retain(|(name, _)| {
            names.contains(&name.as_str()) || overridden.iter().any(|o| o == name)
        });
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![]);
        // Templates see only the context wactl gives them: no environment variables.
        tera.register_function(
            "get_env",
            |_: &std::collections::HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
                Err(tera::Error::msg(
                    "get_env is disabled: templates only see the environment definition",
                ))
            },
        );
        tera.add_raw_templates(sources)
            .map_err(|e| RenderError::Template {
                template: first_template(&e),
                message: chain(&e),
            })?;
        Ok(Self { tera })
    }

    pub fn render(&self, name: &str, context: &tera::Context) -> Result<String, RenderError> {
        self.tera
            .render(name, context)
            .map_err(|e| RenderError::Template {
                template: name.to_owned(),
                message: chain(&e),
            })
    }
}

/// Replaces built-in templates by the files of `dir` with the same relative path.
/// Files that match no template are an error, so a misspelt override never goes unnoticed.
/// Returns the names of the templates replaced.
fn apply_overrides(
    dir: &Path,
    sources: &mut [(String, String)],
) -> Result<Vec<String>, RenderError> {
    let fail = |message: String| RenderError::Overrides {
        dir: dir.to_owned(),
        message,
    };
    let root = dir
        .canonicalize()
        .map_err(|e| fail(format!("cannot open: {e}")))?;
    let mut found = Vec::new();
    walk(&root, &root, &mut found).map_err(|e| fail(e.to_string()))?;
    let mut overridden = Vec::new();
    for (relative, path) in found {
        let Some(slot) = sources.iter_mut().find(|(name, _)| *name == relative) else {
            let guess =
                crate::config::closest(&relative, TEMPLATE_NAMES.iter().map(String::as_str));
            let hint = guess
                .map(|g| format!("; did you mean `{g}`?"))
                .unwrap_or_default();
            return Err(fail(format!(
                "`{relative}` does not override any template{hint}"
            )));
        };
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
                 whole template, and tera has no depth limit, so a template that includes itself \
                 or a recursive macro would overflow the stack"
            )));
        }
        slot.1 = text;
        overridden.push(relative);
    }
    Ok(overridden)
}

/// The first tag that composes templates (`include`, `import`, `extends`, `macro`), if any.
/// The built-in templates use none; in an override they are the only way to recurse.
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
        if let Some(tag) = ["include", "import", "extends", "macro"]
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

fn first_template(error: &tera::Error) -> String {
    match &error.kind {
        tera::ErrorKind::TemplateNotFound(name) => name.clone(),
        _ => "(templates)".to_owned(),
    }
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
