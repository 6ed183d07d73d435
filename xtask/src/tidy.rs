//! Repository hygiene: checks that plain `cargo test` enforces too.

use crate::project;
use anyhow::bail;
use std::path::{Path, PathBuf};

pub fn run() -> anyhow::Result<()> {
    let problems = check(&project::root());
    if problems.is_empty() {
        println!("tidy: ok");
        return Ok(());
    }
    for p in &problems {
        eprintln!("tidy: {p}");
    }
    bail!("{} tidy problem(s)", problems.len())
}

/// Every problem found in the tree, so one run reports them all.
pub fn check(root: &std::path::Path) -> Vec<String> {
    let mut problems = Vec::new();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    if manifest.contains("serde_yaml") {
        problems.push("Cargo.toml: serde_yaml is deprecated; use serde-saphyr".to_owned());
    }
    for required in ["README.md", ".ci/run", "docs/environment.schema.json"] {
        if !root.join(required).exists() {
            problems.push(format!("{required} is missing"));
        }
    }
    problems.extend(import_direction(root));
    problems
}

/// The library's stages: data flows one way out of them, so none may import the
/// presentation (`ui`) or the command line (`cli`); they report through events instead.
const LIBRARY_MODULES: [&str; 8] = [
    "config", "render", "build", "cluster", "deploy", "smoke", "local", "github",
];
const PRESENTATION_MODULES: [&str; 2] = ["ui", "cli"];

/// Every `src/<library module>/**.rs` (and `src/<library module>.rs`) line that names
/// `crate::ui` or `crate::cli`, as `path:line: …`.
pub fn import_direction(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for module in LIBRARY_MODULES {
        let dir = root.join("src").join(module);
        rust_files(&dir, &mut files);
        let file = root.join("src").join(format!("{module}.rs"));
        if file.is_file() {
            files.push(file);
        }
    }
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            problems.push(format!("{}: unreadable", file.display()));
            continue;
        };
        for (line, module) in presentation_imports(&text) {
            let shown = file.strip_prefix(root).unwrap_or(file);
            problems.push(format!(
                "{}:{line}: a library module imports crate::{module}; report through events (deploy::DeployObserver, build::BuildProgress) instead",
                shown.display()
            ));
        }
    }
    problems
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each place (1-based line) where `text` names a presentation module through `crate::`:
/// `crate::ui::x`, or inside a `use crate::{…}` group over several lines. Comments ignored.
fn presentation_imports(text: &str) -> Vec<(usize, &'static str)> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at + "crate::".len();
        from = start;
        let rest = &code[start..];
        let names: Vec<(usize, &str)> = match rest.strip_prefix('{') {
            Some(group) => top_level_names(group)
                .into_iter()
                .map(|(offset, name)| (start + 1 + offset, name))
                .collect(),
            None => vec![(start, rest)],
        };
        for (at, name) in names {
            let ident: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if let Some(module) = PRESENTATION_MODULES.iter().find(|m| **m == ident) {
                found.push((line_of(at), *module));
            }
        }
    }
    found
}

/// The first name of each top-level item of a `{…}` group (the text after `{`), with its
/// offset; nested groups are skipped.
fn top_level_names(group: &str) -> Vec<(usize, &str)> {
    let mut starts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                starts.push(start);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                starts.push(start);
                start = i + 1;
            }
            _ => {}
        }
    }
    starts
        .into_iter()
        .map(|start| {
            let item = &group[start..];
            let trimmed = item.trim_start();
            (start + item.len() - trimmed.len(), trimmed)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_is_tidy() {
        let problems = super::check(&crate::project::root());
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn a_library_module_importing_the_ui_is_found() {
        let cases = [
            ("use crate::ui::deploy::DeployUi;", vec![(1, "ui")]),
            (
                "fn f() {\n    crate::cli::exit_code(&e)\n}",
                vec![(2, "cli")],
            ),
            ("use crate::{cluster, ui};", vec![(1, "ui")]),
            (
                "use crate::{\n    cluster::{self, Plan},\n    cli::GlobalArgs,\n};",
                vec![(3, "cli")],
            ),
            ("use crate::uid::Thing;", vec![]),
            ("use crate::cluster::ui_hint;", vec![]),
            ("use crate::{cluster::{ui, x}, config};", vec![]),
            ("// crate::ui is not imported here", vec![]),
        ];
        for (text, expected) in &cases {
            assert_eq!(presentation_imports(text), *expected, "{text}");
        }
        assert_eq!(cases.len(), 8);

        let root = tempfile::tempdir().expect("tempdir");
        let deploy = root.path().join("src/deploy/sub");
        std::fs::create_dir_all(&deploy).expect("mkdir");
        std::fs::write(deploy.join("a.rs"), "//! x\nuse crate::ui::Ui;\n").expect("write");
        std::fs::create_dir_all(root.path().join("src/ui")).expect("mkdir");
        std::fs::write(root.path().join("src/ui/b.rs"), "use crate::cli::X;\n").expect("write");
        let problems = import_direction(root.path());
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].starts_with("src/deploy/sub/a.rs:2: "),
            "{problems:#?}"
        );
    }
}
