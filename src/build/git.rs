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
pub async fn revision(dir: &Path) -> Revision {
    let Some(commit) = git(dir, &["rev-parse", "--verify", "HEAD"]).await else {
        return Revision::default();
    };
    let dirty = git(dir, &["status", "--porcelain", "--untracked-files=normal"])
        .await
        .is_some_and(|out| !out.trim().is_empty());
    let version = git(dir, &["tag", "--points-at", "HEAD"])
        .await
        .and_then(|tags| release_version(&tags));
    Revision {
        commit: Some(commit.trim().to_owned()),
        dirty,
        version,
    }
}

async fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
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
