//! `wactl render --out`: what the binary does to a directory it renders into. Foreign
//! files always survive; `-` is a stream on stdout; a path through a file is refused.

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch project: a copy of the environments plus files the user owns.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let envs = dir.path().join("environments");
        std::fs::create_dir(&envs).unwrap();
        for entry in std::fs::read_dir(root().join("environments")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, envs.join(path.file_name().unwrap())).unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "my notes\n").unwrap();
        std::fs::create_dir_all(dir.path().join("src/deep")).unwrap();
        std::fs::write(dir.path().join("src/deep/main.rs"), "fn main() {}\n").unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn wactl(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wactl"))
            .args(args)
            .current_dir(self.path())
            .env_remove("WACTL_ENV_DIR")
            .output()
            .unwrap()
    }

    /// Every file under the scratch tree with its content, except what `render` wrote.
    fn foreign_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push((path.clone(), std::fs::read(&path).unwrap()));
                }
            }
        }
        let mut files = Vec::new();
        walk(self.path(), &mut files);
        files.sort();
        files
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn rendering_into_dot_keeps_every_foreign_file() {
    let scratch = Scratch::new();
    let before = scratch.foreign_files();
    assert!(before.len() >= 8, "the scratch tree holds {}", before.len());

    for _ in 0..2 {
        let output = scratch.wactl(&["render", "dev", "--out", "."]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    for (path, content) in &before {
        assert_eq!(
            &std::fs::read(path).unwrap(),
            content,
            "{} changed",
            path.display()
        );
    }
    assert!(scratch.path().join("Dockerfile").is_file());
    assert!(scratch.path().join("k8s").is_dir());
    assert!(scratch.path().join(wactl::render::MANIFEST).is_file());

    // The environment changes what it renders: only wactl's files move.
    let local = scratch.wactl(&["render", "local", "--out", "."]);
    assert!(local.status.success(), "{}", stderr(&local));
    for (path, content) in &before {
        assert_eq!(&std::fs::read(path).unwrap(), content, "{}", path.display());
    }
}

#[test]
fn a_directory_with_a_foreign_file_in_the_way_is_refused_and_left_as_it_was() {
    let scratch = Scratch::new();
    let out = scratch.path().join("out");
    std::fs::create_dir_all(out.join("nginx")).unwrap();
    std::fs::write(out.join("Dockerfile"), "FROM mine\n").unwrap();
    std::fs::write(out.join("nginx/nginx.conf"), "events {}\n").unwrap();
    std::fs::write(out.join("README"), "mine\n").unwrap();

    let output = scratch.wactl(&["render", "dev", "--out", "out"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("wactl did not write (Dockerfile, nginx/nginx.conf)"),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");
    assert_eq!(
        std::fs::read_to_string(out.join("Dockerfile")).unwrap(),
        "FROM mine\n"
    );
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        3,
        "nothing was added"
    );
}

#[test]
fn a_path_through_a_file_is_refused_with_exit_2() {
    let scratch = Scratch::new();
    let output = scratch.wactl(&["render", "dev", "--out", "notes.txt/sub"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("notes.txt is a file, not a directory"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("notes.txt")).unwrap(),
        "my notes\n"
    );
}

#[test]
fn dash_writes_one_stream_to_stdout_and_no_folder() {
    let scratch = Scratch::new();
    let output = scratch.wactl(&["render", "dev", "--out", "-"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!scratch.path().join("-").exists());
    let stream = String::from_utf8(output.stdout).unwrap();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&stream).unwrap();
    let sources: Vec<&str> = stream
        .lines()
        .filter_map(|line| line.strip_prefix("# Source: "))
        .collect();
    assert!(sources.len() > 20, "{} files in the stream", sources.len());
    assert!(sources.contains(&"Dockerfile") && sources.contains(&"nginx/nginx.conf"));
    // Every YAML or JSON file is one document; the Dockerfile and nginx.conf are comments.
    let structured = sources
        .iter()
        .filter(|s| [".yaml", ".yml", ".json"].iter().any(|x| s.ends_with(x)))
        .count();
    assert_eq!(documents.len(), structured, "one document per YAML file");
    let kinds: Vec<&str> = documents
        .iter()
        .filter_map(|d| d.get("kind").and_then(|k| k.as_str()))
        .collect();
    assert!(kinds.contains(&"Deployment"), "{kinds:?}");
}

#[test]
fn a_reader_that_stops_early_is_not_an_error() {
    let scratch = Scratch::new();
    for _ in 0..20 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wactl"))
            .args(["render", "dev", "--out", "-"])
            .current_dir(scratch.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader goes away before the first byte
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(stderr(&output).is_empty(), "{}", stderr(&output));
    }
}

#[test]
fn latest_never_reaches_a_rendered_tree() {
    let scratch = Scratch::new();
    // Outside a git checkout the tag a build would make is unknown: refused, exit 2.
    let staging = scratch.wactl(&["render", "staging", "--out", "-"]);
    assert_eq!(staging.status.code(), Some(2), "{}", stderr(&staging));
    assert!(
        stderr(&staging).contains("pass --image"),
        "{}",
        stderr(&staging)
    );
    // A protected environment is refused whatever git says.
    let production = scratch.wactl(&["render", "production", "--out", "-"]);
    assert_eq!(production.status.code(), Some(2), "{}", stderr(&production));
    assert!(
        stderr(&production).contains("is protected"),
        "{}",
        stderr(&production)
    );

    // In a checkout, the commit's tag stands in for `latest`.
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(scratch.path())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .output()
            .unwrap();
        assert!(status.status.success(), "git {args:?}: {}", stderr(&status));
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "scratch"]);
    let staging = scratch.wactl(&["render", "staging", "--out", "-"]);
    assert!(staging.status.success(), "{}", stderr(&staging));
    let stream = String::from_utf8(staging.stdout).unwrap();
    assert!(!stream.contains(":latest"), "{stream}");
    assert!(stream.contains("address-service:git-"), "{stream}");

    let pinned = "ghcr.io/world-address/address-service@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let production = scratch.wactl(&["render", "production", "--out", "-", "--image", pinned]);
    assert!(production.status.success(), "{}", stderr(&production));
    assert!(
        String::from_utf8(production.stdout)
            .unwrap()
            .contains(pinned)
    );
}

/// Runs git in `dir` with a fixed identity (and git's own locking); its stdout.
fn git_in(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_OPTIONAL_LOCKS")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {}", stderr(&output));
    String::from_utf8(output.stdout).unwrap()
}

/// The image `wactl render staging` picks in `dir` for the `latest` tag.
fn rendered_image(scratch: &Scratch, dir: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_wactl"))
        .args(["--env-dir"])
        .arg(scratch.path().join("environments"))
        .args(["render", "staging", "--out", "-"])
        .current_dir(dir)
        .env_remove("WACTL_ENV_DIR")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let stream = String::from_utf8(output.stdout).unwrap();
    let line = stream
        .lines()
        .find(|l| l.trim_start().starts_with("image: ghcr.io/"))
        .unwrap_or_else(|| panic!("no image line in {stream}"));
    line.trim_start()["image: ".len()..]
        .trim_matches('"')
        .to_owned()
}

/// The image repository of the environments' definitions.
const REPOSITORY: &str = "ghcr.io/world-address/address-service";

/// A scratch checkout with everything committed, and the image `render` gives it in place
/// of `latest` (`git-<commit>`).
fn committed_scratch() -> (Scratch, String) {
    let scratch = Scratch::new();
    let dir = scratch.path();
    git_in(dir, &["init", "-q"]);
    git_in(dir, &["add", "."]);
    git_in(dir, &["commit", "-qm", "scratch"]);
    let commit = git_in(dir, &["rev-parse", "HEAD"]);
    let clean = format!("{REPOSITORY}:git-{}", &commit[..12]);
    (scratch, clean)
}

#[test]
fn the_tag_for_latest_is_the_one_a_build_gives() {
    let (scratch, clean) = committed_scratch();
    let dir = scratch.path();
    let dirty = format!("{clean}-dirty");
    let mut tried = 0;
    let mut expect = |at: &Path, image: &str| {
        assert_eq!(rendered_image(&scratch, at), image, "in {}", at.display());
        tried += 1;
    };
    expect(dir, &clean);
    // From a subdirectory, the whole checkout counts.
    expect(&dir.join("src/deep"), &clean);

    // An untracked file, a changed tracked file, a staged change: each makes it dirty.
    std::fs::write(dir.join("new.txt"), "new\n").unwrap();
    expect(dir, &dirty);
    std::fs::write(dir.join(".gitignore"), "new.txt\n").unwrap();
    git_in(dir, &["add", ".gitignore"]);
    git_in(dir, &["commit", "-qm", "ignore"]);
    let commit = git_in(dir, &["rev-parse", "HEAD"]);
    let clean = format!("{REPOSITORY}:git-{}", &commit[..12]);
    // Ignored files do not count.
    expect(dir, &clean);
    std::fs::write(dir.join("notes.txt"), "changed\n").unwrap();
    expect(dir, &format!("{clean}-dirty"));
    git_in(dir, &["add", "notes.txt"]);
    expect(dir, &format!("{clean}-dirty"));
    git_in(dir, &["commit", "-qm", "notes"]);

    // A release tag on HEAD wins, loose or packed, lightweight or annotated; a tag that
    // is not a release or that is on another commit does not.
    git_in(dir, &["tag", "nightly"]);
    git_in(dir, &["tag", "v0.9.0", "HEAD~1"]);
    let commit = git_in(dir, &["rev-parse", "HEAD"]);
    expect(dir, &format!("{REPOSITORY}:git-{}", &commit[..12]));
    git_in(dir, &["tag", "v1.2.3"]);
    expect(dir, &format!("{REPOSITORY}:1.2.3"));
    git_in(dir, &["pack-refs", "--all"]);
    assert!(!dir.join(".git/refs/tags/v1.2.3").exists());
    expect(dir, &format!("{REPOSITORY}:1.2.3"));
    git_in(dir, &["tag", "-a", "-m", "release", "v1.3.0"]);
    expect(dir, &format!("{REPOSITORY}:1.3.0"));

    // A linked work tree reads the tags of the repository it belongs to.
    let linked_root = tempfile::tempdir().unwrap();
    let linked = linked_root.path().join("linked");
    git_in(
        dir,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            linked.to_str().unwrap(),
        ],
    );
    expect(&linked, &format!("{REPOSITORY}:1.3.0"));
    assert_eq!(tried, 11);
}

/// Reading the revision never writes the repository: a plain `git status` refreshes a
/// stale index and writes it back under `index.lock`, and a `git commit` the user runs at
/// that moment fails on the lock.
#[test]
fn the_tag_for_latest_is_read_without_writing_the_repository() {
    let (scratch, clean) = committed_scratch();
    let dir = scratch.path();
    // Same content, another modification time: the index's stat data is stale.
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(dir.join("notes.txt"))
        .and_then(|file| file.set_modified(an_hour_ago))
        .unwrap();
    let index = || std::fs::read(dir.join(".git/index")).unwrap();
    let before = index();
    assert_eq!(rendered_image(&scratch, dir), clean);
    assert!(index() == before, "wactl's git wrote the index");
    // The set-up is one git would have written: its own `git status` rewrites the index.
    git_in(dir, &["status", "--porcelain"]);
    assert!(index() != before, "the index was not stale");
}

#[test]
fn a_closed_stdout_never_panics_whatever_prints() {
    let scratch = Scratch::new();
    let mut tried = 0;
    for args in [
        &["schema"][..],
        &["--output", "json", "validate"][..],
        &["render", "dev", "--out", "-"][..],
    ] {
        for _ in 0..15 {
            let mut child = Command::new(env!("CARGO_BIN_EXE_wactl"))
                .args(args)
                .current_dir(scratch.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // The reader is gone before the first write: every write meets a closed pipe.
            drop(child.stdout.take());
            let output = child.wait_with_output().unwrap();
            let stderr = stderr(&output);
            assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
            tried += 1;
        }
    }
    assert_eq!(tried, 45);
}
