//! Repository hygiene: checks that plain `cargo test` enforces too.

use crate::project;
use anyhow::bail;

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
    problems
}

#[cfg(test)]
mod tests {
    #[test]
    fn tree_is_tidy() {
        let problems = super::check(&crate::project::root());
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
