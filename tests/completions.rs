//! `wactl completions SHELL`: each script is valid syntax for its shell.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn script(shell: &str) -> tempfile::NamedTempFile {
    let output = Command::new(env!("CARGO_BIN_EXE_wactl"))
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("rollback"), "{shell} script names no verbs");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

/// `shell -n FILE` parses without running; a syntax error exits non-zero.
fn parses(shell: &str, file: &tempfile::NamedTempFile) {
    let check = Command::new(shell)
        .arg("-n")
        .arg(file.path())
        .output()
        .unwrap_or_else(|e| panic!("{shell} (cargo xtask test installs it): {e}"));
    assert!(
        check.status.success(),
        "{shell} -n rejected the script: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn bash_accepts_the_bash_script() {
    parses("bash", &script("bash"));
}

/// The check can fail: bash rejects a script with a broken line.
#[test]
fn bash_rejects_a_broken_script() {
    let file = script("bash");
    let mut text = std::fs::read_to_string(file.path()).unwrap();
    text.push_str("\nif then fi (\n");
    std::fs::write(file.path(), text).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(file.path())
        .status()
        .unwrap();
    assert!(!check.success());
}

#[test]
#[ignore = "needs infra: cargo xtask infra up (installs zsh)"]
fn zsh_accepts_the_zsh_script() {
    parses("zsh", &script("zsh"));
}
