//! What the repository says about the source being built: commit, dirtiness, release tag.

use std::path::Path;
use std::time::Duration;

/// Source revision of the build context; empty when the context is not a git checkout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revision {
    /// Full commit id of HEAD.
    pub commit: Option<String>,
    /// The work tree has changes (tracked or untracked, not ignored).
    pub dirty: bool,
    /// `1.2.3` from a release tag (`v1.2.3` or `1.2.3`) on HEAD.
    pub version: Option<String>,
}

impl Revision {
    /// `git-<12 hex>[-dirty]`.
    pub fn tag(&self) -> Option<String> {
        self.commit.as_ref().map(|commit| {
            let short = &commit[..commit.len().min(12)];
            let dirty = if self.dirty { "-dirty" } else { "" };
            format!("git-{short}{dirty}")
        })
    }
}

/// Reads the revision through the `git` CLI; a missing `git` or a tree outside a
/// repository gives an empty revision rather than an error.
///
/// One `git status` process says both the commit (its `# branch.oid` line) and whether
/// the tree is dirty; `git tag --points-at HEAD` runs beside it only when the repository
/// has tags at all, which reading its refs tells without a process. Each `git` process
/// costs milliseconds, and `wactl render` of an environment tagged `latest` waits for them.
pub async fn revision(dir: &Path) -> Revision {
    let status = git(
        dir,
        &[
            "status",
            "--porcelain=v2",
            "--branch",
            "--untracked-files=normal",
        ],
    );
    let tags = async {
        if tags::absent(dir) {
            None
        } else {
            git(dir, &["tag", "--points-at", "HEAD"]).await
        }
    };
    let (status, tags) = tokio::join!(status, tags);
    let (commit, dirty) = match status {
        Some(status) => match Status::parse(&status) {
            Some(status) => (status.commit, status.dirty),
            // No commit yet (an unborn branch): nothing to tag.
            None => return Revision::default(),
        },
        // `git status` needs a work tree (a bare repository has none); HEAD alone still
        // names the commit, as a clean one.
        None => match git(dir, &["rev-parse", "--verify", "HEAD"]).await {
            Some(commit) => (commit.trim().to_owned(), false),
            None => return Revision::default(),
        },
    };
    Revision {
        commit: Some(commit),
        dirty,
        version: tags.and_then(|tags| release_version(&tags)),
    }
}

/// What `git status --porcelain=v2 --branch` says about HEAD and the tree.
#[derive(Debug, PartialEq, Eq)]
struct Status {
    commit: String,
    /// Any entry at all: a change (staged or not) or an untracked file.
    dirty: bool,
}

impl Status {
    /// `None` when HEAD has no commit (`# branch.oid (initial)`) or the output has no
    /// `branch.oid` header.
    fn parse(output: &str) -> Option<Self> {
        let mut commit = None;
        let mut dirty = false;
        for line in output.lines() {
            if let Some(header) = line.strip_prefix("# ") {
                if let Some(oid) = header.strip_prefix("branch.oid ") {
                    commit = Some(oid.trim().to_owned());
                }
            } else if !line.trim().is_empty() {
                dirty = true;
            }
        }
        commit
            .filter(|oid| oid.chars().all(|c| c.is_ascii_hexdigit()) && !oid.is_empty())
            .map(|commit| Self { commit, dirty })
    }
}

/// Runs `git` read-only. `GIT_OPTIONAL_LOCKS=0`: `git status` otherwise refreshes the
/// index and writes it back under `index.lock`, and a `git commit` the user runs meanwhile
/// (or their editor's) fails on that lock; wactl reads the repository, never writes it.
async fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_OPTIONAL_LOCKS", "0")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The highest release among tag names (one per line), without its `v`: tags that are
/// not Semantic Versioning 2.0 (`v1.2`, `v01.2.3`, `nightly`) are not releases.
pub fn release_version(tags: &str) -> Option<String> {
    tags.lines()
        .map(str::trim)
        .filter_map(|tag| semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok())
        .max()
        .map(|version| version.to_string())
}

/// Whether a repository has tags, read from its refs directly.
mod tags {
    use std::path::{Path, PathBuf};

    /// True only when the repository holding `dir` certainly has no tag: no loose ref
    /// under `refs/tags` and none in `packed-refs`. Anything unusual (a `GIT_DIR` from
    /// the environment, the reftable format, an unreadable file) answers false, so
    /// `git tag` decides.
    pub fn absent(dir: &Path) -> bool {
        if ["GIT_DIR", "GIT_COMMON_DIR"]
            .iter()
            .any(|var| std::env::var_os(var).is_some())
        {
            return false;
        }
        let Some(common) = common_dir(dir) else {
            return false;
        };
        if common.join("reftable").exists() {
            return false;
        }
        no_loose_tags(&common.join("refs/tags")) && no_packed_tags(&common.join("packed-refs"))
    }

    /// The directory holding the repository's shared refs: the `.git` found from `dir`
    /// upwards, or for a linked work tree (a `.git` file) the main one's, as its
    /// `commondir` names it.
    fn common_dir(dir: &Path) -> Option<PathBuf> {
        let start = dir.canonicalize().ok()?;
        let dot_git = start
            .ancestors()
            .map(|a| a.join(".git"))
            .find(|p| p.symlink_metadata().is_ok())?;
        let git_dir = if dot_git.is_dir() {
            dot_git
        } else {
            let text = std::fs::read_to_string(&dot_git).ok()?;
            let target = PathBuf::from(text.strip_prefix("gitdir:")?.trim());
            dot_git.parent()?.join(target)
        };
        match std::fs::read_to_string(git_dir.join("commondir")) {
            Ok(common) => Some(git_dir.join(common.trim())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(git_dir),
            Err(_) => None,
        }
    }

    fn no_loose_tags(dir: &Path) -> bool {
        match std::fs::read_dir(dir) {
            Ok(entries) => entries.into_iter().all(|entry| {
                entry.is_ok_and(|e| {
                    e.file_type().is_ok_and(|t| t.is_dir()) && no_loose_tags(&e.path())
                })
            }),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        }
    }

    fn no_packed_tags(path: &Path) -> bool {
        match std::fs::read_to_string(path) {
            Ok(text) => !text.lines().any(|line| {
                line.split_once(' ')
                    .is_some_and(|(_, name)| name.trim().starts_with("refs/tags/"))
            }),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_tags_are_semver_with_an_optional_v() {
        assert_eq!(release_version("v1.2.3\n"), Some("1.2.3".to_owned()));
        assert_eq!(
            release_version("nightly\n2.0.0-rc.1\n"),
            Some("2.0.0-rc.1".to_owned())
        );
        assert_eq!(
            release_version("v2.0.0-rc.1\nv2.0.0\n"),
            Some("2.0.0".to_owned())
        );
        assert_eq!(release_version("v1.2\nlatest\nv1.2.3.4\n"), None);
    }

    #[test]
    fn pre_releases_compare_by_identifier_and_leading_zeros_are_not_versions() {
        // Numeric identifiers compare as numbers: rc.10 is after rc.2.
        assert_eq!(
            release_version("v1.0.0-rc.2\nv1.0.0-rc.10\nv1.0.0-rc.9\n"),
            Some("1.0.0-rc.10".to_owned())
        );
        assert_eq!(
            release_version("v1.0.0-alpha\nv1.0.0-alpha.1\nv1.0.0-beta\n"),
            Some("1.0.0-beta".to_owned())
        );
        assert_eq!(
            release_version("v1.0.0-rc.10\nv1.0.0\n"),
            Some("1.0.0".to_owned())
        );
        assert_eq!(
            release_version("v1.10.0\nv1.9.0\n"),
            Some("1.10.0".to_owned())
        );
        let mut tried = 0;
        for leading_zero in ["v01.2.3", "v1.02.3", "v1.2.03", "v1.2.3-rc.01"] {
            tried += 1;
            assert_eq!(release_version(leading_zero), None, "{leading_zero}");
        }
        assert_eq!(tried, 4);
        // A bad tag does not hide a good one.
        assert_eq!(
            release_version("v01.2.3\nv1.2.3\n"),
            Some("1.2.3".to_owned())
        );
    }

    #[test]
    fn status_names_the_commit_and_any_entry_makes_it_dirty() {
        let head = "# branch.oid 0123456789abcdef0123456789abcdef01234567\n# branch.head main\n";
        let clean = Status::parse(head).unwrap();
        assert_eq!(clean.commit, "0123456789abcdef0123456789abcdef01234567");
        assert!(!clean.dirty);
        let mut tried = 0;
        for entry in [
            "1 .M N... 100644 100644 100644 aaaa bbbb src/main.rs",
            "? notes.txt",
            "2 R. N... 100644 100644 100644 aaaa aaaa R100 new\told",
            "u UU N... 100644 100644 100644 100644 a b c file",
        ] {
            tried += 1;
            assert!(
                Status::parse(&format!("{head}{entry}\n")).unwrap().dirty,
                "{entry}"
            );
        }
        assert_eq!(tried, 4);
        assert_eq!(
            Status::parse("# branch.oid (initial)\n# branch.head main\n"),
            None
        );
        assert_eq!(Status::parse("? a\n"), None);
    }

    #[test]
    fn tags_are_absent_only_when_no_ref_names_one() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/tags/nested")).unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        assert!(
            tags::absent(&dir.path().join("src")),
            "empty tag directories"
        );
        std::fs::write(
            git.join("packed-refs"),
            "# pack-refs with: peeled fully-peeled sorted \n0123 refs/heads/main\n",
        )
        .unwrap();
        assert!(tags::absent(dir.path()), "packed branches only");
        std::fs::write(git.join("refs/tags/nested/v1.0.0"), "0123\n").unwrap();
        assert!(!tags::absent(dir.path()), "a loose tag");
        std::fs::remove_file(git.join("refs/tags/nested/v1.0.0")).unwrap();
        std::fs::write(
            git.join("packed-refs"),
            "0123 refs/heads/main\n4567 refs/tags/v1.0.0\n^0123\n",
        )
        .unwrap();
        assert!(!tags::absent(dir.path()), "a packed tag");

        // A linked work tree: its `.git` file leads to the main repository's refs.
        let linked = tempfile::tempdir().unwrap();
        let own = git.join("worktrees/linked");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join("commondir"), "../..\n").unwrap();
        std::fs::write(
            linked.path().join(".git"),
            format!("gitdir: {}\n", own.display()),
        )
        .unwrap();
        assert!(
            !tags::absent(linked.path()),
            "the main repository's packed tag"
        );
        std::fs::remove_file(git.join("packed-refs")).unwrap();
        assert!(tags::absent(linked.path()));

        // The reftable format is not read here: git decides.
        std::fs::create_dir(git.join("reftable")).unwrap();
        assert!(!tags::absent(dir.path()));
    }

    #[test]
    fn the_commit_tag_is_short_and_marks_dirty_trees() {
        let revision = Revision {
            commit: Some("0123456789abcdef0123".to_owned()),
            dirty: true,
            version: None,
        };
        assert_eq!(revision.tag().as_deref(), Some("git-0123456789ab-dirty"));
        assert_eq!(Revision::default().tag(), None);
    }
}
