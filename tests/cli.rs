//! CLI behaviour pinned by transcripts: `tests/cmd/*.md` and `*.toml` (trycmd).
//! Regenerate after an intended change with `TRYCMD=overwrite cargo test --test cli`.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

#[test]
fn transcripts() {
    // The transcripts show what a user without a cluster sees: `cargo xtask test` exports
    // KUBECONFIG for the infra tests, and it would send them to the test cluster.
    trycmd::TestCases::new()
        .env("KUBECONFIG", "")
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

/// Success output of the verbs that need a cluster (`deploy`, `status`, `history`, `diff`,
/// `rollback`, `destroy`), pinned by `tests/cmd/cluster/*.md` against the test cluster.
#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn cluster_transcripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd/cluster");
    let destroy = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_wactl"))
            .args(["destroy", "t", "--yes", "--quiet"])
            .current_dir(dir.join("lifecycle.in"))
            .output()
            .unwrap()
    };
    /// Empties the namespace again when the transcripts fail half-way.
    struct Cleanup<F: Fn() -> std::process::Output>(F);
    impl<F: Fn() -> std::process::Output> Drop for Cleanup<F> {
        fn drop(&mut self) {
            // Best effort: a failed transcript already failed the test.
            let _ = (self.0)();
        }
    }
    push_transcript_image();
    let before = destroy();
    assert!(
        before.status.success(),
        "{}",
        String::from_utf8_lossy(&before.stderr)
    );
    let _cleanup = Cleanup(destroy);
    trycmd::TestCases::new()
        .case("tests/cmd/cluster/*.md")
        .run();
}

/// The image the transcript deploys with `--image` (pinned to the digest the registry
/// answers), pushed here so that the transcript does not depend on an earlier test having
/// pushed one: kwok's nodes never run it, so it is the pause image of `cargo xtask infra
/// images` under the transcript's tag.
fn push_transcript_image() {
    const IMAGE: &str = "127.0.0.1:5000/world-address/address-service:cli-transcript";
    for args in [
        ["tag", "wactl.local/pause:3.10", IMAGE].as_slice(),
        ["push", "--quiet", IMAGE].as_slice(),
    ] {
        let out = std::process::Command::new("docker")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
