//! actionlint for `.github/workflows/*.yml`, built once from the Go module proxy and cached
//! outside the repository (`~/.cache/wactl/bin/actionlint-<version>`).
//!
//! `cargo xtask test` calls [`ensure`] and hands the binary to the test suite through
//! `WACTL_ACTIONLINT`; `tests/github_workflows.rs` runs it.

use anyhow::{Context, bail};
use std::path::PathBuf;
use std::process::Command;

pub const VERSION: &str = "1.7.12";
const MODULE: &str = "github.com/rhysd/actionlint/cmd/actionlint";

/// `$WACTL_CACHE_DIR/bin`, default `~/.cache/wactl/bin`: the cache the infra binaries use.
fn bin_dir() -> anyhow::Result<PathBuf> {
    let cache = match std::env::var_os("WACTL_CACHE_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache/wactl")
        }
    };
    Ok(cache.join("bin"))
}

/// Go from /usr/local/go (where the machine has it), else from PATH.
fn go() -> Option<PathBuf> {
    let local = PathBuf::from("/usr/local/go/bin/go");
    if local.is_file() {
        return Some(local);
    }
    crate::tools::which("go")
}

/// The cached actionlint binary, built with `go install` when absent.
pub fn ensure() -> anyhow::Result<PathBuf> {
    let dir = bin_dir()?;
    let binary = dir.join(format!("actionlint-{VERSION}"));
    if binary.is_file() {
        return Ok(binary);
    }
    let Some(go) = go() else {
        bail!(
            "actionlint {VERSION} is built from the Go module proxy, but Go is not installed \
             (neither /usr/local/go/bin/go nor `go` on PATH; Go 1.24 or newer)"
        );
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!("xtask: building actionlint {VERSION} (go install {MODULE}@v{VERSION})");
    // Build into a scratch directory and move into place, so a failed build leaves nothing.
    let scratch = tempfile::tempdir_in(&dir).context("creating a scratch directory")?;
    let status = Command::new(&go)
        .args(["install", &format!("{MODULE}@v{VERSION}")])
        .env("GOBIN", scratch.path())
        .env("CGO_ENABLED", "0")
        .status()
        .with_context(|| format!("running {}", go.display()))?;
    if !status.success() {
        bail!(
            "building actionlint {VERSION} from the Go module proxy failed ({status}); \
             check that GOPROXY is reachable: GOBIN={} go install {MODULE}@v{VERSION}",
            dir.display()
        );
    }
    std::fs::rename(scratch.path().join("actionlint"), &binary)
        .with_context(|| format!("moving actionlint to {}", binary.display()))?;
    Ok(binary)
}
