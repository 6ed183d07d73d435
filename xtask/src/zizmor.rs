//! zizmor, the GitHub Actions security linter, installed once from PyPI into a venv cached
//! outside the repository (`~/.cache/wactl/venv/zizmor-<version>`).
//!
//! `cargo xtask test` calls [`ensure`] and hands the binary to the test suite through
//! `WACTL_ZIZMOR`; `tests/github_workflows.rs` runs it on `.github/`, offline.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const VERSION: &str = "1.32.0";

/// `$WACTL_CACHE_DIR/venv/zizmor-<version>`, default under `~/.cache/wactl`: beside the
/// actionlint and infrastructure binaries, so CI's cache of `~/.cache/wactl` keeps it.
fn venv_dir() -> anyhow::Result<PathBuf> {
    let cache = match std::env::var_os("WACTL_CACHE_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache/wactl")
        }
    };
    Ok(cache.join(format!("venv/zizmor-{VERSION}")))
}

/// Whether `binary --version` names exactly [`VERSION`]: a venv left half-made by an
/// interrupted install, or holding another version, is installed again.
fn is_installed(binary: &Path) -> bool {
    Command::new(binary)
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).trim() == format!("zizmor {VERSION}")
        })
}

/// The cached zizmor binary, installed with `pip install zizmor==<version>` when absent.
pub fn ensure() -> anyhow::Result<PathBuf> {
    let venv = venv_dir()?;
    let binary = venv.join("bin/zizmor");
    if is_installed(&binary) {
        return Ok(binary);
    }
    if !venv.join("bin/python").is_file() {
        if let Some(parent) = venv.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("running python3 -m venv (is python3 installed?)")?;
        if !status.success() {
            bail!(
                "python3 -m venv {} failed ({status}); install python3-venv",
                venv.display()
            );
        }
    }
    eprintln!(
        "xtask: installing zizmor {VERSION} from PyPI into {}",
        venv.display()
    );
    let status = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("zizmor=={VERSION}"),
        ])
        .status()
        .context("running pip install zizmor")?;
    if !status.success() {
        bail!(
            "pip install zizmor=={VERSION} into {} failed ({status}); check that PyPI is reachable",
            venv.display()
        );
    }
    if !is_installed(&binary) {
        bail!(
            "pip installed zizmor=={VERSION}, but `{} --version` does not answer `zizmor {VERSION}`",
            binary.display()
        );
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    #[test]
    #[ignore = "needs PyPI: installs zizmor into the cache"]
    fn ensure_installs_the_pinned_version() {
        let binary = super::ensure().expect("zizmor installed");
        assert!(super::is_installed(&binary), "{}", binary.display());
    }
}
