//! CLI behaviour pinned by transcripts: `tests/cmd/*.md` and `*.toml` (trycmd).
//! Regenerate after an intended change with `TRYCMD=overwrite cargo test --test cli`.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

#[test]
fn transcripts() {
    trycmd::TestCases::new()
        .case("tests/cmd/*.md")
        .case("tests/cmd/*.toml");
}

/// Too large to commit as a transcript fixture: a 10 MB definition is refused before
/// parsing, with its file named, exit code 2 and no panic.
#[test]
fn a_ten_megabyte_definition_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let envs = dir.path().join("environments");
    std::fs::create_dir(&envs).unwrap();
    let mut text = String::from("config:\n");
    while text.len() < 10 * 1024 * 1024 {
        text.push_str(&format!("  KEY_{}: value\n", text.len()));
    }
    std::fs::write(envs.join("huge.yaml"), text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wactl"))
        .args(["validate", "huge"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("environments/huge.yaml: file is larger than 1024 KiB"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
